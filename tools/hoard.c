// SPDX-License-Identifier: MIT
/*
 * hoard: the command-line tool, a thin front end over the core library.
 *
 *   hoard [--store DIR] COMMAND [OPTIONS]
 *
 * Each command is a row of the command table and a cmd_*() function that
 * parses its own options with getopt_long (the options every command takes,
 * such as --store, may come before or after the command's name) and returns
 * the exit status.  Errors are reported here, once, as exactly one line
 * "hoard: <message>" on stderr; the library only logs at debug level.
 *
 * Exit status: 0 success, 1 runtime error, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/ctl.h"
#include "hoard/evict.h"
#include "hoard/stats.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "budget_cmds.h"
#include "key_cmds.h"
#include "lazy_cmds.h"
#include "cli.h"
#include "fsck_cmds.h"
#include "sync_cmds.h"
#include "volume_cmds.h"

#define DEFAULT_STORE "/var/lib/hoard"
#define DEFAULT_LEVEL 1
#define MAX_LEVEL     19

/* The usage text is laid out as it prints. */
/* clang-format off */
static const char usage_text[] =
"Usage: hoard [--store DIR] COMMAND [OPTIONS]\n"
"\n"
"Manage a hoard store: the directory in which the hoardfs filesystem keeps\n"
"file content as deduplicated, zstd-compressed chunks in RocksDB.\n"
"\n"
"Commands:\n"
"  init [--level N]\n"
"      Create a new store in DIR (DIR is created if missing and must be\n"
"      empty otherwise).  N is the zstd level used for new chunks, from 0\n"
"      (store chunks raw) to 19; the default is 1.  A fresh random secret\n"
"      for chunk ids is made and kept in the store.\n"
"\n"
"  stats [--json | --format json|text|prometheus]\n"
"      Show, for the whole store and for each volume: files, directories,\n"
"      symlinks and other inodes; logical bytes (the files' sizes); unique\n"
"      bytes (the distinct chunks they use); stored bytes (those chunks\n"
"      after compression); the number of chunks; and the ratio logical /\n"
"      stored.  A chunk shared by two volumes counts in each volume.  While\n"
"      hoardfs serves the store, the figures come from the daemon through\n"
"      DIR/control.sock, with the hits and misses of its decompressed-\n"
"      chunk cache and the LOOKUPs it answered from entries read ahead;\n"
"      otherwise hoard opens the store itself.  --json (the\n"
"      same as --format json) prints one JSON object instead of a table;\n"
"      --format prometheus prints the Prometheus text format (0.0.4) for\n"
"      node_exporter's textfile collector, with the daemon's counters\n"
"      (reads answered EIO, lazy fetch failures and retries, evictions).\n"
"\n"
"  fsck [--repair] [--json]\n"
"      Check the store (stop hoardfs first): every chunk re-hashed against\n"
"      its id, every reference, refcount and link count.  Exit 0 clean, 1\n"
"      problems found (and not repaired).  --repair removes files whose data\n"
"      is lost (listed, never truncated) and fixes the rest.  See 'hoard fsck\n"
"      --help'.\n"
"\n"
"  gc [--json]\n"
"      Give the space of deleted chunks back to the filesystem (RocksDB\n"
"      compaction and blob garbage collection); reports the store's disk\n"
"      use before and after.  Through the daemon when it runs.\n"
"\n"
"  init --from s3://BUCKET[/PREFIX] [--level N]\n"
"      Create a new store keyed like that repository (it adopts the\n"
"      repository's chunk secret), ready for 'hoard pull'.\n"
"\n"
"  push s3://BUCKET[/PREFIX] [--volume V] [--ref NAME] [--jobs N]\n"
"       [--sign KEYFILE] [--json]\n"
"      Upload a snapshot of volume V (default $HOARD_VOLUME) to the\n"
"      repository: the chunks the bucket lacks, in packs of about 32 MiB,\n"
"      N requests at a time (default 8, up to 64), then the volume's\n"
"      manifest, then the ref V/NAME (default main), which is the commit.\n"
"      A push of unchanged data uploads nothing.  A new repository takes\n"
"      this store's chunk secret; a repository with another secret is\n"
"      refused (exit 3).  While hoardfs serves the store, the daemon does\n"
"      the work (a consistent snapshot of a mounted volume); otherwise\n"
"      hoard opens the store itself and shows progress on a terminal.\n"
"      Prints one summary line (new bytes, bytes deduplicated away,\n"
"      requests), or one JSON object with --json.  S3 settings come from\n"
"      the AWS environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
"      AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL, AWS_PROFILE and\n"
"      ~/.aws/{credentials,config}.  --sign KEYFILE signs the ref (a key\n"
"      of 'hoard key generate'; docs/REMOTE.md 6.1); the manifest then\n"
"      carries the SHA-256 of every chunk, so the signature covers the\n"
"      bytes (every chunk is read and hashed: lazy ones need a trusted\n"
"      pull's digest, or 'hoard prefetch').\n"
"\n"
"  pull s3://BUCKET[/PREFIX] [--volume V] [--ref NAME] [--jobs N] [--lazy]\n"
"       [--trust PUBFILE]... [--allow-rollback] [--json]\n"
"      Bring the ref V/NAME into volume V (made if missing), mounted or\n"
"      not: only the chunks the store lacks are fetched (ranged GETs,\n"
"      grouped per pack) and each is verified against its id.  A file\n"
"      appears only once all its data is in.  Merge rule: files absent\n"
"      here are added, identical ones left alone, and a differing one is\n"
"      replaced only when the remote copy's mtime is newer; a local\n"
"      directory is never replaced.  The store's secret must be the\n"
"      repository's (see init --from).\n"
"      --lazy: fetch no chunk data; every file appears at once with\n"
"      records of where its chunks are in the bucket, and hoardfs fetches\n"
"      a chunk on its first read (the store remembers the URL).\n"
"      --trust PUBFILE (repeatable), or the store's 'config trust': accept\n"
"      only a ref signed by one of those keys; an unsigned ref, another\n"
"      key, or a signature that does not match (altered, or copied from\n"
"      another ref) is refused with exit 3 and the store left unchanged.\n"
"      A trusted pull also checks the SHA-256 the signed manifest gives\n"
"      every chunk it fetches (and keeps them, so a lazy read checks\n"
"      too: EIO on a mismatch), refuses a signed ref whose manifest has\n"
"      no digests (pushed by an older hoard), and refuses a signed ref\n"
"      older than the newest it took from there (a rollback), exit 3.\n"
"      --allow-rollback: take such an older ref anyway.\n"
"\n"
"  ls-remote s3://BUCKET[/PREFIX] [--trust PUBFILE]... [--json]\n"
"      List the repository's refs: manifest, files, bytes, manifest size,\n"
"      the time of the push and the signature: unsigned, valid (or, with\n"
"      --trust, trusted / untrusted) or invalid, with the key id.\n"
"\n"
"  key generate FILE\n"
"      Make an Ed25519 key pair for signed refs: the secret key in FILE\n"
"      (0600), the public key in FILE.pub; never overwrites.\n"
"\n"
"  config [--json] [max-size [SIZE|none]]\n"
"  config trust [PUBFILE...|none]\n"
"      Show or set the store's size budget: when stored bytes pass SIZE\n"
"      (K, M, G, T suffixes), hoardfs removes least recently used files\n"
"      down to 90% of it.  Through the daemon when it runs (applied at\n"
"      once).  hoardfs --max-size overrides it.  trust: the public keys\n"
"      whose signed refs every pull into this store requires.  See 'hoard\n"
"      config --help'.\n"
"\n"
"  prefetch [--json] PATH...\n"
"      Make files (or trees) of a lazily pulled volume fully local, for\n"
"      an offline host: the daemon fetches their chunks that are not\n"
"      local.  See 'hoard prefetch --help'.\n"
"\n"
"  pin PATH... / unpin PATH...\n"
"      Exempt files or whole trees of a mounted volume from the budget\n"
"      (the xattr user.hoard.pin, kept in the store).\n"
"\n"
"  gc --remote s3://BUCKET[/PREFIX] [--grace DURATION] [--dry-run] [--json]\n"
"      Remote mark and sweep: the chunks of every ref's manifest are live;\n"
"      a pack with none of them, older than the grace period (default\n"
"      24h; 90s, 15m, 12h, 7d), is condemned, and deleted by a later gc\n"
"      once condemned for the grace period (a push that used it again\n"
"      revives it).  Unreferenced manifests older than the grace period\n"
"      go too.  Safe while other hosts push, if a push takes less than\n"
"      the grace period.  A pack less than half live is repacked: its\n"
"      live chunks go to a new pack and the old one is condemned.\n"
"\n"
"  volume ls | clone SRC DST | rm NAME | merge SRC DST [--json]\n"
"      List the volumes; clone one (metadata only: the clone shares\n"
"      every chunk, no chunk data is written; SRC may be mounted); remove\n"
"      one (not while mounted; its chunks that nothing else uses go);\n"
"      fold one's files into another with pull's merge rule.  See 'hoard\n"
"      volume --help'.\n"
"\n"
"  mount NAME PATH / umount NAME\n"
"      Have the running daemon mount volume NAME at PATH, or unmount it.\n"
"\n"
"  job start ID [--from V]... / job finish ID [--keep|--discard]\n"
"      [--push URL [--sign KEYFILE]]\n"
"      A per-job clone of each V for a CI job (mounted, its path printed\n"
"      for a bind mount), and at the end its files folded back into V\n"
"      (--keep, trusted jobs) or dropped.  See 'hoard job --help'.\n"
"\n"
"  help\n"
"      Show this text.\n"
"\n"
"Options (accepted before or after COMMAND; config, pin, unpin and\n"
"prefetch take theirs before their arguments):\n"
"  --store DIR   the store directory (default: $HOARD_STORE, else\n"
"                " DEFAULT_STORE ")\n"
"  --verbose     also print the library's debug messages on stderr\n"
"  -h, --help    show this text and exit\n"
"  --version     show the version and exit\n"
"\n"
"Environment:\n"
"  HOARD_STORE   the store directory when --store is not given\n"
"  HOARD_VOLUME  the volume of push and pull when --volume is not given\n"
"\n"
"Exit status:\n"
"  0  success\n"
"  1  runtime error (no such store, store in use, damaged data, ...); one\n"
"     line on stderr says what went wrong\n"
"     (fsck: also \"problems found and not repaired\")\n"
"  2  usage error (unknown command or option, bad value)\n"
"  3  push, pull, ls-remote, init --from, gc --remote: the repository\n"
"     lacks or refuses what was asked (no such bucket, no repository,\n"
"     no such ref, a corrupt or invalid remote object, another chunk\n"
"     secret, a ref not signed by a trusted key, a rollback)\n"
"\n"
"Examples:\n"
"  hoard init --store /var/lib/hoard --level 3\n"
"  HOARD_STORE=/srv/hoard hoard stats\n"
"  hoard stats --store /srv/hoard --json | jq .dedup_ratio\n";
/* clang-format on */

struct ctx {
	const char *store; /* --store, $HOARD_STORE or DEFAULT_STORE */
};

/* ---- messages ---- */

/* The library's one-line explanation if it gave one, else what + errno. */
static int fail_errbuf(const char *errbuf, int err, const char *what)
{
	if (errbuf && *errbuf)
		return cli_fail("%s", errbuf);
	return cli_fail("%s: %s", what, strerror(-err));
}

/* ---- options ---- */

enum {
	OPT_STORE = 0x100, /* long-only options: not a printable char */
	OPT_VERBOSE,
	OPT_VERSION,
	OPT_JSON,
	OPT_FORMAT,
	OPT_LEVEL,
	OPT_FROM,
};

/* clang-format off */
#define COMMON_OPTIONS                                                  \
	{ "store", required_argument, NULL, OPT_STORE },                \
	{ "verbose", no_argument, NULL, OPT_VERBOSE },                  \
	{ "help", no_argument, NULL, 'h' }
/* clang-format on */

/* getopt_long's answer for an option every command takes, or an error.
 * Returns -1 to go on parsing, else the exit status. */
static int common_option(struct ctx *c, int opt, char **argv)
{
	/* a short option names itself in optopt; a long one is the element */
	const char *bad = argv[optind - 1];
	char shortname[3] = {'-', (char)optopt, '\0'};

	if (optopt > 0 && optopt < 0x100 && strncmp(bad, "--", 2))
		bad = shortname;
	switch (opt) {
	case OPT_STORE:
		if (!*optarg)
			return cli_usage_error("--store needs a directory");
		c->store = optarg;
		return -1;
	case OPT_VERBOSE:
		hoard_log_set_level(LOG_DEBUG);
		return -1;
	case 'h':
		fputs(usage_text, stdout);
		return EXIT_SUCCESS;
	case ':':
		return cli_usage_error("option '%s' needs a value", bad);
	default:
		if (optopt && (optopt >= 0x100 || strchr(bad, '=')))
			return cli_usage_error("option '%.*s' takes no value",
					       (int)strcspn(bad, "="), bad);
		return cli_usage_error("unknown option '%s'", bad);
	}
}

/* After a command's options: no operands are expected. */
static int no_operands(const char *cmd, int argc, char **argv)
{
	if (optind < argc)
		return cli_usage_error("%s: unexpected argument '%s'", cmd,
				       argv[optind]);
	return -1;
}

/* A decimal integer in [min, max], the whole string; 0 or -EINVAL. */
static int parse_int(const char *s, long min, long max, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* ---- init ---- */

static int cmd_init(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{"level", required_argument, NULL, OPT_LEVEL},
		{"from", required_argument, NULL, OPT_FROM},
		{0},
	};
	struct hoard_store_init_opts o = {.zstd_level = DEFAULT_LEVEL};
	const char *from = NULL;
	char err[512] = "";
	long level = DEFAULT_LEVEL;
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (opt == OPT_FROM) {
			from = optarg;
			continue;
		}
		if (opt == OPT_LEVEL) {
			if (parse_int(optarg, 0, MAX_LEVEL, &level) < 0)
				return cli_usage_error(
					"init: invalid zstd level "
					"'%s' (0 to %d)",
					optarg, MAX_LEVEL);
			continue;
		}
		r = common_option(c, opt, argv);
		if (r >= 0)
			return r;
	}
	r = no_operands("init", argc, argv);
	if (r >= 0)
		return r;

	if (from)
		return sync_init_from(c->store, (int)level, from);
	o.zstd_level = (int)level;
	r = hoard_store_init(c->store, &o, err, sizeof(err));
	if (r < 0)
		return fail_errbuf(err, r, c->store);
	printf("initialized hoard store at %s (zstd level %d)\n", c->store,
	       o.zstd_level);
	return cli_finish_output();
}

/* ---- stats ---- */

enum stats_format { STATS_TEXT, STATS_JSON, STATS_PROMETHEUS };

static int print_stats(const struct hoard_stats *s, enum stats_format fmt)
{
	char *out = fmt == STATS_JSON	      ? hoard_stats_json(s)
		    : fmt == STATS_PROMETHEUS ? hoard_stats_prometheus(s)
					      : hoard_stats_text(s);

	if (!out)
		return cli_fail("formatting stats: %s", strerror(ENOMEM));
	fputs(out, stdout);
	free(out);
	return cli_finish_output();
}

/* The daemon answered: its JSON as is, or as a table. */
static int print_daemon_stats(const char *reply, enum stats_format fmt)
{
	struct hoard_stats *s;
	int r;

	if (fmt == STATS_JSON) {
		fputs(reply, stdout);
		if (!*reply || reply[strlen(reply) - 1] != '\n')
			fputc('\n', stdout);
		return cli_finish_output();
	}
	r = hoard_stats_from_json(reply, &s);
	if (r < 0)
		return cli_fail(
			"the daemon's stats reply is not understood: %s",
			strerror(-r));
	r = print_stats(s, fmt);
	hoard_stats_free(s);
	return r;
}

/* No daemon listens (ctl_err says why): open the store ourselves. */
static int offline_stats(struct ctx *c, const char *sock, int ctl_err,
			 enum stats_format fmt)
{
	struct hoard_store *st;
	struct hoard_stats *s;
	char err[512] = "";
	int r, pid;

	/* read-only: stats write nothing, and so work on a full disk */
	r = hoard_store_open_readonly(c->store, &st, err, sizeof(err));
	if (r == -EBUSY) {
		pid = hoard_store_lock_owner(c->store);
		/* locked, yet nobody answers: a daemon starting or stuck */
		if (pid > 0)
			return cli_fail("store %s is in use by pid %d, but no "
					"daemon answers on %s (%s)",
					c->store, pid, sock,
					strerror(-ctl_err));
		return cli_fail("%s; no daemon answers on %s (%s)",
				*err ? err : strerror(EBUSY), sock,
				strerror(-ctl_err));
	}
	if (r < 0)
		return fail_errbuf(err, r, c->store);
	r = hoard_stats_compute(st, &s);
	if (r == 0) { /* the budget's figures; evictions are the daemon's */
		s->have_budget = true;
		r = hoard_budget_get(st, &s->max_size);
		if (r == 0)
			r = hoard_budget_pinned_bytes(st, &s->pinned_bytes);
		if (r < 0)
			hoard_stats_free(s);
	}
	hoard_store_close(st);
	if (r < 0)
		return cli_fail("computing stats of %s: %s", c->store,
				strerror(-r));
	r = print_stats(s, fmt);
	hoard_stats_free(s);
	return r;
}

static int cmd_stats(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{"json", no_argument, NULL, OPT_JSON},
		{"format", required_argument, NULL, OPT_FORMAT},
		{0},
	};
	static const char *const names[] = {"text", "json", "prometheus"};
	enum stats_format fmt = STATS_TEXT;
	bool json = false, format = false;
	char *sock, *reply = NULL;
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (opt == OPT_JSON) {
			json = true;
			continue;
		}
		if (opt == OPT_FORMAT) {
			size_t i = 0;

			while (i < 3 && strcmp(optarg, names[i]))
				i++;
			if (i == 3)
				return cli_usage_error(
					"stats: --format must be json, text "
					"or prometheus, not '%s'",
					optarg);
			fmt = (enum stats_format)i;
			format = true;
			continue;
		}
		r = common_option(c, opt, argv);
		if (r >= 0)
			return r;
	}
	r = no_operands("stats", argc, argv);
	if (r >= 0)
		return r;
	if (json && format && fmt != STATS_JSON)
		return cli_usage_error("stats: --json and --format %s disagree",
				       names[fmt]);
	if (json)
		fmt = STATS_JSON;

	if (asprintf(&sock, "%s/%s", c->store, CTL_SOCKET) < 0)
		return cli_fail("%s", strerror(ENOMEM));
	/* A daemon holds the store's lock: ask it.  ERR replies always carry
	 * a message, which tells a daemon's -ENOENT from a missing socket. */
	r = hoard_ctl_call(sock, "stats", &reply);
	if (r == 0)
		r = print_daemon_stats(reply, fmt);
	else if ((r == -ENOENT || r == -ECONNREFUSED) && !reply)
		r = offline_stats(c, sock, r, fmt);
	else if (reply)
		r = cli_fail("the hoardfs daemon could not compute stats: %s",
			     reply);
	else if (r == -ETIMEDOUT)
		r = cli_fail("the hoardfs daemon did not answer on %s in time",
			     sock);
	else
		r = cli_fail("cannot ask the hoardfs daemon on %s: %s", sock,
			     strerror(-r));
	free(reply);
	free(sock);
	return r;
}

/* ---- help ---- */

static int cmd_help(struct ctx *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	(void)argv;
	fputs(usage_text, stdout);
	return cli_finish_output();
}

/* ---- fsck, gc (tools/fsck_cmds.c) ---- */

static int cmd_fsck(struct ctx *c, int argc, char **argv)
{
	return hoard_cmd_fsck(&c->store, argc, argv);
}

static int cmd_gc(struct ctx *c, int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--remote") ||
		    !strncmp(argv[i], "--remote=", 9))
			return sync_cmd_gc_remote(&c->store, argc, argv);
	return hoard_cmd_gc(&c->store, argc, argv);
}

/* ---- push, pull, ls-remote (tools/sync_cmds.c) ---- */

static int cmd_push(struct ctx *c, int argc, char **argv)
{
	return sync_cmd_push(&c->store, argc, argv);
}

static int cmd_pull(struct ctx *c, int argc, char **argv)
{
	return sync_cmd_pull(&c->store, argc, argv);
}

static int cmd_ls_remote(struct ctx *c, int argc, char **argv)
{
	return sync_cmd_ls_remote(&c->store, argc, argv);
}

static int cmd_key(struct ctx *c, int argc, char **argv)
{
	return hoard_cmd_key(&c->store, argc, argv);
}

/* ---- config, pin, unpin (tools/budget_cmds.c) ---- */

static int cmd_config(struct ctx *c, int argc, char **argv)
{
	return hoard_cmd_config(&c->store, argc, argv);
}

static int cmd_pin(struct ctx *c, int argc, char **argv)
{
	return hoard_cmd_pin(&c->store, argc, argv);
}

static int cmd_unpin(struct ctx *c, int argc, char **argv)
{
	return hoard_cmd_unpin(&c->store, argc, argv);
}

static int cmd_prefetch(struct ctx *c, int argc, char **argv)
{
	return hoard_cmd_prefetch(&c->store, argc, argv);
}

/* ---- volume, mount, umount, job (tools/volume_cmds.c, job_cmds.c) ---- */

static int cmd_volume(struct ctx *c, int argc, char **argv)
{
	return hoard_cmd_volume(&c->store, argc, argv);
}

static int cmd_mount(struct ctx *c, int argc, char **argv)
{
	return hoard_cmd_mount(&c->store, argc, argv);
}

static int cmd_umount(struct ctx *c, int argc, char **argv)
{
	return hoard_cmd_umount(&c->store, argc, argv);
}

static int cmd_job(struct ctx *c, int argc, char **argv)
{
	return hoard_cmd_job(&c->store, argc, argv);
}

/* ---- the command table ---- */

/*
 * To come: push and pull (sync with a remote).  Each is a row
 * here, a cmd_*() function and a paragraph of usage_text.
 */
static const struct command {
	const char *name;
	int (*run)(struct ctx *c, int argc, char **argv);
} commands[] = {
	{"init", cmd_init},	      /* create a store */
	{"stats", cmd_stats},	      /* figures, via the daemon if it runs */
	{"fsck", cmd_fsck},	      /* check / repair; store to itself */
	{"gc", cmd_gc},		      /* compaction, blob gc; via the daemon */
	{"push", cmd_push},	      /* to S3; via the daemon if it runs */
	{"pull", cmd_pull},	      /* from S3; via the daemon if it runs */
	{"ls-remote", cmd_ls_remote}, /* a repository's refs */
	{"key", cmd_key},	      /* signing keys for refs */
	{"config", cmd_config},	      /* store settings (max-size) */
	{"pin", cmd_pin},	      /* exempt from the size budget */
	{"unpin", cmd_unpin},
	{"prefetch", cmd_prefetch}, /* make lazy files local */
	{"volume", cmd_volume},	    /* ls, clone, rm, merge */
	{"mount", cmd_mount},	    /* through the daemon */
	{"umount", cmd_umount},
	{"job", cmd_job},   /* per-job clones for CI */
	{"help", cmd_help}, /* usage_text */
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{"version", no_argument, NULL, OPT_VERSION},
		{0},
	};
	struct ctx c = {.store = getenv("HOARD_STORE")};
	const struct command *cmd;
	int opt, r;

	if (!c.store || !*c.store)
		c.store = DEFAULT_STORE;
	opterr = 0; /* our own one-line messages */

	/* Options before the command ("+": stop at the first operand). */
	while ((opt = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (opt == OPT_VERSION) {
			printf("hoard %s\n", HOARD_VERSION);
			return cli_finish_output();
		}
		r = common_option(&c, opt, argv);
		if (r >= 0)
			return r;
	}
	if (optind >= argc)
		return cli_usage_error("no command given");
	cmd = find_command(argv[optind]);
	if (!cmd)
		return cli_usage_error("unknown command '%s'", argv[optind]);

	/* The command parses the rest, argv[0] being its name. */
	argc -= optind;
	argv += optind;
	optind = 0; /* glibc: restart scanning from scratch */
	return cmd->run(&c, argc, argv);
}
