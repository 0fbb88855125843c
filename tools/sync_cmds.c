// SPDX-License-Identifier: MIT
/*
 * hoard push / pull / ls-remote / init --from: the CLI side of sync.h.
 *
 * push and pull first ask a daemon that serves the store (its control
 * socket, request "push ..." or "pull ...", docs/FORMAT.md section 6): the
 * daemon holds the store's lock, so only it can take a consistent snapshot
 * of a mounted volume or add files to it (and drop the kernel's cached
 * entries).  With no daemon, the CLI opens the store and runs the same
 * engine itself, with a progress line on a terminal.
 *
 * Exit status: 0 done, 1 runtime error, 2 usage error, 3 the repository
 * lacks or refuses what was asked (no such bucket, no repository, no such
 * ref, a corrupt or invalid remote object, another chunk secret).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoard/ctl.h"
#include "hoard/fs.h"
#include "hoard/store.h"
#include "hoard/sync.h"
#include "hoard/util.h"
#include "sync_cmds.h"

#define EXIT_USAGE     2
#define CTL_SOCKET     "control.sock"
#define SYNC_TIMEOUT_S (7 * 86400) /* a daemon's push may run for long */

enum {
	OPT_STORE = 0x100,
	OPT_VERBOSE,
	OPT_JSON,
	OPT_VOLUME,
	OPT_REF,
	OPT_JOBS,
	OPT_REMOTE,
	OPT_GRACE,
	OPT_DRY_RUN,
	OPT_LAZY,
	OPT_SIGN,
	OPT_TRUST,
	OPT_ALLOW_ROLLBACK,
};

static int report(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int report(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("hoard: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (status == EXIT_USAGE)
		fputs(" (see 'hoard --help')", stderr);
	fputc('\n', stderr);
	return status;
}

/* 0 for a good s3://BUCKET[/PREFIX], else -EINVAL and the rule broken. */
static int url_check(const char *url, char *err, size_t errlen)
{
	char *bucket = NULL, *prefix = NULL;
	int r = hoard_s3_url_split(url, &bucket, &prefix, err, errlen);

	free(bucket);
	free(prefix);
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	return r;
}

/* The exit status for an engine's error. */
static int status_of(int err)
{
	switch (err) {
	case -ENXIO:
	case -ENOENT:
	case -EBADMSG:
	case -EKEYREJECTED:
	case -EPROTONOSUPPORT:
		return HOARD_EXIT_REMOTE;
	case -EINVAL:
		return EXIT_USAGE;
	default:
		return EXIT_FAILURE;
	}
}

struct args {
	const char *url, *volume, *ref;
	unsigned jobs;
	bool json, lazy, allow_rollback;
	bool sign; /* push --sign FILE: key */
	struct hoard_sign_key key;
	struct hoard_pubkey trust[HOARD_TRUST_MAX]; /* pull, ls-remote */
	size_t n_trust;
};

static const char push_usage[] =
	"Usage: hoard push s3://BUCKET[/PREFIX] [--volume V] [--ref NAME] "
	"[--jobs N] [--sign KEYFILE] [--json]\n"
	"       hoard pull s3://BUCKET[/PREFIX] [--volume V] [--ref NAME] "
	"[--jobs N] [--lazy] [--trust PUBFILE]... [--allow-rollback] "
	"[--json]\n"
	"       hoard ls-remote s3://BUCKET[/PREFIX] [--trust PUBFILE]... "
	"[--json]\n"
	"--sign signs the ref with a key of 'hoard key generate'; --trust "
	"(repeatable)\naccepts only refs signed by that key (or by a key of "
	"'hoard config trust'),\nrefusing any other ref with exit 3, and any "
	"signed ref older than the newest\none this store took from there "
	"(a rollback) unless --allow-rollback is given.\n"
	"See 'hoard help' for what they do.\n";

/* Parse the options of push, pull and ls-remote.  -1: go on. */
static int parse(const char *cmd, const char **store, int argc, char **argv,
		 struct args *a, bool sync)
{
	static const struct option opts[] = {
		{"store", required_argument, NULL, OPT_STORE},
		{"verbose", no_argument, NULL, OPT_VERBOSE},
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, OPT_JSON},
		{"volume", required_argument, NULL, OPT_VOLUME},
		{"ref", required_argument, NULL, OPT_REF},
		{"jobs", required_argument, NULL, OPT_JOBS},
		{"lazy", no_argument, NULL, OPT_LAZY},
		{"sign", required_argument, NULL, OPT_SIGN},
		{"trust", required_argument, NULL, OPT_TRUST},
		{"allow-rollback", no_argument, NULL, OPT_ALLOW_ROLLBACK},
		{0},
	};
	char err[512] = "";
	char *end;
	unsigned long v;
	int opt;

	memset(a, 0, sizeof(*a));
	a->volume = getenv("HOARD_VOLUME");
	a->ref = HOARD_SYNC_DEFAULT_REF;
	a->jobs = HOARD_SYNC_DEFAULT_JOBS;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_STORE:
			if (!*optarg)
				return report(EXIT_USAGE,
					      "--store needs a directory");
			*store = optarg;
			break;
		case OPT_VERBOSE:
			hoard_log_set_level(LOG_DEBUG);
			break;
		case 'h':
			fputs(push_usage, stdout);
			return EXIT_SUCCESS;
		case OPT_JSON:
			a->json = true;
			break;
		case OPT_LAZY:
			if (strcmp(cmd, "pull"))
				return report(EXIT_USAGE,
					      "%s: unknown option '%s'", cmd,
					      argv[optind - 1]);
			a->lazy = true;
			break;
		case OPT_ALLOW_ROLLBACK:
			if (strcmp(cmd, "pull"))
				return report(EXIT_USAGE,
					      "%s: unknown option '%s'", cmd,
					      argv[optind - 1]);
			a->allow_rollback = true;
			break;
		case OPT_SIGN:
			if (strcmp(cmd, "push"))
				return report(EXIT_USAGE,
					      "%s: unknown option '%s'", cmd,
					      argv[optind - 1]);
			hoard_sign_key_wipe(&a->key);
			if (hoard_sign_key_load(optarg, &a->key, err,
						sizeof(err)) < 0)
				return report(EXIT_USAGE, "%s: --sign: %s", cmd,
					      err);
			a->sign = true;
			break;
		case OPT_TRUST:
			if (!strcmp(cmd, "push"))
				return report(EXIT_USAGE,
					      "%s: unknown option '%s'", cmd,
					      argv[optind - 1]);
			if (a->n_trust == HOARD_TRUST_MAX)
				return report(EXIT_USAGE,
					      "%s: at most %d --trust keys",
					      cmd, HOARD_TRUST_MAX);
			if (hoard_sign_pub_load(optarg, &a->trust[a->n_trust],
						err, sizeof(err)) < 0)
				return report(EXIT_USAGE, "%s: --trust: %s",
					      cmd, err);
			a->n_trust++;
			break;
		case OPT_VOLUME:
		case OPT_REF:
		case OPT_JOBS:
			if (!sync)
				return report(EXIT_USAGE,
					      "%s: unknown option '%s'", cmd,
					      argv[optind - 1]);
			if (opt == OPT_VOLUME) {
				a->volume = optarg;
			} else if (opt == OPT_REF) {
				a->ref = optarg;
			} else {
				errno = 0;
				v = strtoul(optarg, &end, 10);
				if (errno || !*optarg || *end || v < 1 ||
				    v > HOARD_SYNC_MAX_JOBS)
					return report(EXIT_USAGE,
						      "%s: --jobs takes 1 to "
						      "%d",
						      cmd, HOARD_SYNC_MAX_JOBS);
				a->jobs = (unsigned)v;
			}
			break;
		case ':':
			return report(EXIT_USAGE, "option '%s' needs a value",
				      argv[optind - 1]);
		default:
			return report(EXIT_USAGE, "%s: unknown option '%s'",
				      cmd, argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return report(EXIT_USAGE, "%s: which s3://BUCKET/PREFIX?", cmd);
	if (optind + 1 < argc)
		return report(EXIT_USAGE, "%s: unexpected argument '%s'", cmd,
			      argv[optind + 1]);
	a->url = argv[optind];
	if (url_check(a->url, err, sizeof(err)) < 0)
		return report(EXIT_USAGE, "%s: %s", cmd, err);
	if (!sync)
		return -1;
	if (!a->volume || !*a->volume)
		return report(EXIT_USAGE,
			      "%s: which volume? (--volume V, or set "
			      "HOARD_VOLUME)",
			      cmd);
	if (!hoard_fs_volume_name_ok(a->volume))
		return report(EXIT_USAGE,
			      "%s: '%s' is not a volume name (1-64 of A-Z a-z "
			      "0-9 . _ -, not starting with '.')",
			      cmd, a->volume);
	if (!hoard_ref_name_ok(a->ref))
		return report(EXIT_USAGE,
			      "%s: '%s' is not a ref name (1-64 of A-Z a-z "
			      "0-9 . _ -, not starting with '.')",
			      cmd, a->ref);
	return -1;
}

static int load_s3(struct hoard_s3_config *cfg)
{
	char err[512] = "";
	int r = hoard_s3_config_load(cfg, err, sizeof(err));

	if (r < 0)
		return report(EXIT_FAILURE, "%s", *err ? err : strerror(-r));
	return -1;
}

static int finish(void)
{
	if (fflush(stdout) == EOF || ferror(stdout))
		return report(EXIT_FAILURE, "writing output: %s",
			      strerror(errno));
	return EXIT_SUCCESS;
}

static int print_result(const struct hoard_sync_result *res, bool json)
{
	char *out = json ? hoard_sync_result_json(res)
			 : hoard_sync_result_text(res);

	if (!out)
		return report(EXIT_FAILURE, "%s", strerror(ENOMEM));
	fputs(out, stdout);
	free(out);
	return finish();
}

/* ---- progress (a terminal only) ---------------------------------------------- */

static void human(double b, char *out, size_t n)
{
	static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;

	while (b >= 1024 && i < 4) {
		b /= 1024;
		i++;
	}
	snprintf(out, n, "%.1f %s", b, u[i]);
}

static void progress(void *ud, const struct hoard_sync_progress *p)
{
	const char *what = ud;
	double secs = (double)p->elapsed_ns / 1e9;
	double rate = secs > 0 ? (double)p->bytes_done / secs : 0;
	char done[32], total[32], r[32], eta[32] = "";

	human((double)p->bytes_done, done, sizeof(done));
	human((double)p->bytes_total, total, sizeof(total));
	human(rate, r, sizeof(r));
	if (rate > 0 && p->bytes_total > p->bytes_done)
		snprintf(eta, sizeof(eta), ", ETA %.0f s",
			 (double)(p->bytes_total - p->bytes_done) / rate);
	if (!p->bytes_total) /* reading the bucket's pack indexes */
		fprintf(stderr,
			"\r%s: reading pack indexes, %llu of %llu\033[K", what,
			(unsigned long long)p->objects_done,
			(unsigned long long)p->objects_total);
	else
		fprintf(stderr,
			"\r%s: %s of %s, %llu of %llu objects, %s/s%s\033[K",
			what, done, total, (unsigned long long)p->objects_done,
			(unsigned long long)p->objects_total, r, eta);
	fflush(stderr);
}

/* ---- push / pull --------------------------------------------------------------- */

/* No daemon answers: open the store and run the engine here. */
static int run_offline(const char *store, const char *op,
		       struct hoard_sync_opts *o, bool json, const char *sock,
		       int ctl_err)
{
	struct hoard_sync_result res;
	struct hoard_store *st;
	struct hoard_fs *fs;
	char err[1024] = "";
	bool tty = isatty(STDERR_FILENO) && !json;
	int r, pid;

	r = hoard_store_open(store, &st, err, sizeof(err));
	if (r == -EBUSY) {
		pid = hoard_store_lock_owner(store);
		return report(EXIT_FAILURE,
			      "store %s is in use by pid %d, but no daemon "
			      "answers on %s (%s)",
			      store, pid, sock, strerror(-ctl_err));
	}
	if (r < 0)
		return report(EXIT_FAILURE, "%s", *err ? err : strerror(-r));
	r = hoard_fs_new(st, NULL, &fs);
	if (r < 0) {
		hoard_store_close(st);
		return report(EXIT_FAILURE, "opening the filesystem of %s: %s",
			      store, strerror(-r));
	}
	if (tty) {
		o->progress = progress;
		o->progress_ud = (void *)op;
	}
	if (!strcmp(op, "push"))
		r = hoard_sync_push(fs, o, &res, err, sizeof(err));
	else
		r = hoard_sync_pull(fs, o, &res, err, sizeof(err));
	if (tty)
		fputs("\r\033[K", stderr);
	hoard_fs_free(fs);
	hoard_store_close(st);
	if (r < 0)
		return report(status_of(r), "%s: %s", op,
			      *err ? err : strerror(-r));
	return print_result(&res, json);
}

static int sync_cmd(const char *op, const char **store, int argc, char **argv)
{
	struct hoard_s3_config cfg;
	struct hoard_sync_opts o = {0};
	struct hoard_sync_result res;
	struct args a;
	char *sock = NULL, *line, *reply = NULL;
	int r = parse(op, store, argc, argv, &a, true);

	if (r < 0)
		r = load_s3(&cfg);
	if (r >= 0) {
		hoard_sign_key_wipe(&a.key);
		return r;
	}
	o.s3 = &cfg;
	o.url = a.url;
	o.volume = a.volume;
	o.ref = a.ref;
	o.jobs = a.jobs;
	o.lazy = a.lazy;
	o.allow_rollback = a.allow_rollback;
	o.sign = a.sign ? &a.key : NULL;
	o.trust = a.trust;
	o.n_trust = a.n_trust;
	line = hoard_sync_request_encode(op, &o);
	if (!line || asprintf(&sock, "%s/%s", *store, CTL_SOCKET) < 0) {
		free(line);
		hoard_s3_config_clear(&cfg);
		return report(EXIT_FAILURE, "%s", strerror(ENOMEM));
	}
	r = hoard_ctl_call_timeout(sock, line, SYNC_TIMEOUT_S, &reply);
	memset(line, 0, strlen(line));
	free(line);
	if (r == 0) {
		if (a.json) {
			fputs(reply, stdout);
			r = finish();
		} else if (hoard_sync_result_from_json(reply, &res) == 0) {
			r = print_result(&res, false);
		} else {
			r = report(EXIT_FAILURE,
				   "the daemon's reply is not understood");
		}
	} else if ((r == -ENOENT || r == -ECONNREFUSED) && !reply) {
		r = run_offline(*store, op, &o, a.json, sock, r);
	} else if (reply) {
		r = report(status_of(r), "%s (through the hoardfs daemon): %s",
			   op, reply);
	} else {
		r = report(EXIT_FAILURE,
			   "cannot ask the hoardfs daemon on %s: %s", sock,
			   strerror(-r));
	}
	free(reply);
	free(sock);
	hoard_s3_config_clear(&cfg);
	hoard_sign_key_wipe(&a.key);
	return r;
}

int sync_cmd_push(const char **store, int argc, char **argv)
{
	return sync_cmd("push", store, argc, argv);
}

int sync_cmd_pull(const char **store, int argc, char **argv)
{
	return sync_cmd("pull", store, argc, argv);
}

int sync_cmd_ls_remote(const char **store, int argc, char **argv)
{
	struct hoard_s3_config cfg;
	struct args a;
	char err[1024] = "", *out = NULL;
	int r = parse("ls-remote", store, argc, argv, &a, false);

	if (r >= 0)
		return r;
	r = load_s3(&cfg);
	if (r >= 0)
		return r;
	r = hoard_sync_ls_remote(&cfg, a.url, a.trust, a.n_trust, a.json, &out,
				 err, sizeof(err));
	hoard_s3_config_clear(&cfg);
	if (r < 0)
		return report(status_of(r), "ls-remote: %s",
			      *err ? err : strerror(-r));
	fputs(out, stdout);
	free(out);
	return finish();
}

int sync_init_from(const char *store, int zstd_level, const char *url)
{
	struct hoard_store_init_opts o = {.zstd_level = zstd_level};
	struct hoard_remote_config rc;
	struct hoard_s3_config cfg;
	char err[1024] = "";
	int r;

	if (url_check(url, err, sizeof(err)) < 0)
		return report(EXIT_USAGE, "init: %s", err);
	r = load_s3(&cfg);
	if (r >= 0)
		return r;
	r = hoard_sync_fetch_config(&cfg, url, &rc, err, sizeof(err));
	hoard_s3_config_clear(&cfg);
	if (r < 0)
		return report(status_of(r), "init: %s",
			      *err ? err : strerror(-r));
	o.secret = rc.secret;
	r = hoard_store_init(store, &o, err, sizeof(err));
	memset(&rc, 0, sizeof(rc));
	if (r < 0)
		return report(EXIT_FAILURE, "%s", *err ? err : strerror(-r));
	printf("initialized hoard store at %s (zstd level %d), keyed like %s\n",
	       store, zstd_level, url);
	return finish();
}

/* ---- gc --remote ------------------------------------------------------------------ */

/* "90", "90s", "15m", "12h", "7d" -> seconds; -1 when malformed. */
static long long parse_duration(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	if (!strcmp(end, "") || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!strcmp(end, "h"))
		return v * 3600;
	if (!strcmp(end, "d"))
		return v * 86400;
	return -1;
}

int sync_cmd_gc_remote(const char **store, int argc, char **argv)
{
	static const struct option opts[] = {
		{"store", required_argument, NULL, OPT_STORE},
		{"verbose", no_argument, NULL, OPT_VERBOSE},
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, OPT_JSON},
		{"remote", required_argument, NULL, OPT_REMOTE},
		{"grace", required_argument, NULL, OPT_GRACE},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"jobs", required_argument, NULL, OPT_JOBS},
		{0},
	};
	struct hoard_gc_remote_opts o = {.grace_s = HOARD_GC_DEFAULT_GRACE,
					 .jobs = HOARD_SYNC_DEFAULT_JOBS};
	struct hoard_gc_remote_result res;
	struct hoard_s3_config cfg;
	char err[1024] = "", *out;
	bool json = false;
	long long g;
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_STORE:
			*store = optarg;
			break;
		case OPT_VERBOSE:
			hoard_log_set_level(LOG_DEBUG);
			break;
		case 'h':
			fputs("Usage: hoard gc --remote s3://BUCKET[/PREFIX] "
			      "[--grace DURATION] [--dry-run] [--json]\n"
			      "See 'hoard help'.\n",
			      stdout);
			return EXIT_SUCCESS;
		case OPT_JSON:
			json = true;
			break;
		case OPT_REMOTE:
			o.url = optarg;
			break;
		case OPT_GRACE:
			g = parse_duration(optarg);
			if (g < 0)
				return report(EXIT_USAGE,
					      "gc: bad --grace '%s' (e.g. 90s, "
					      "15m, 12h, 7d)",
					      optarg);
			o.grace_s = (uint64_t)g;
			break;
		case OPT_DRY_RUN:
			o.dry_run = true;
			break;
		case OPT_JOBS:
			g = parse_duration(optarg); /* a plain number */
			if (g < 1 || g > HOARD_SYNC_MAX_JOBS ||
			    strspn(optarg, "0123456789") != strlen(optarg))
				return report(EXIT_USAGE,
					      "gc: --jobs takes 1 to %d",
					      HOARD_SYNC_MAX_JOBS);
			o.jobs = (unsigned)g;
			break;
		case ':':
			return report(EXIT_USAGE, "option '%s' needs a value",
				      argv[optind - 1]);
		default:
			return report(EXIT_USAGE, "gc: unknown option '%s'",
				      argv[optind - 1]);
		}
	}
	if (optind < argc)
		return report(EXIT_USAGE, "gc: unexpected argument '%s'",
			      argv[optind]);
	if (!o.url)
		return report(EXIT_USAGE, "gc: --remote needs an s3:// URL");
	if (url_check(o.url, err, sizeof(err)) < 0)
		return report(EXIT_USAGE, "gc --remote: %s", err);
	r = load_s3(&cfg);
	if (r >= 0)
		return r;
	o.s3 = &cfg;
	/* the pack index cache, when the store is there */
	if (access(*store, W_OK) == 0)
		o.store_dir = *store;
	r = hoard_sync_gc_remote(&o, &res, err, sizeof(err));
	hoard_s3_config_clear(&cfg);
	if (r < 0)
		return report(status_of(r), "gc --remote: %s",
			      *err ? err : strerror(-r));
	if (json) {
		out = hoard_gc_remote_result_json(&res, o.dry_run);
		if (!out)
			return report(EXIT_FAILURE, "%s", strerror(ENOMEM));
		fputs(out, stdout);
		free(out);
	} else {
		printf("%s%llu refs, %llu packs (%llu live, %llu partly dead): "
		       "%llu condemned, %llu revived, %llu deleted; %llu "
		       "manifests deleted; %llu bytes freed; %llu requests\n",
		       o.dry_run ? "dry run: " : "",
		       (unsigned long long)res.refs,
		       (unsigned long long)res.packs,
		       (unsigned long long)res.packs_live,
		       (unsigned long long)res.packs_partly_dead,
		       (unsigned long long)res.packs_condemned,
		       (unsigned long long)res.packs_revived,
		       (unsigned long long)res.packs_deleted,
		       (unsigned long long)res.manifests_deleted,
		       (unsigned long long)res.bytes_deleted,
		       (unsigned long long)res.requests);
	}
	return finish();
}
