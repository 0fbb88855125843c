// SPDX-License-Identifier: MIT
/*
 * hoard job start | finish: a per-job copy-on-write volume for CI.
 *
 * start ID [--from V]... [--dir DIR]: for each V (default pip), clone V
 *   to the volume job.ID.V, ask the daemon to mount it at DIR/ID/V
 *   (default DIR /run/hoard/jobs) and print that path, to bind-mount into
 *   the job's container.  What was made is kept in STORE/jobs/ID.json
 *   (docs/FORMAT.md 1.1) after each step, so finish can undo a start that
 *   failed half way.  A start that fails undoes what it made.
 * finish ID [--keep | --discard] [--push URL [--sign FILE] [--ref R]]:
 *   for each clone: unmount it (through the daemon: the answer comes once
 *   its files are committed), with --keep merge it into V (pull's rule,
 *   hoard_sync_merge), then remove it; then, with --push, run
 *   `hoard push URL --volume V` for each V (--sign and --ref passed on).
 *   --discard (the default) drops the clones: nothing a job wrote reaches
 *   the shared volume.
 *
 * The shared volume is never written by a job: only by a --keep merge,
 * which a trusted job's hook asks for.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "hoard/fs.h"
#include "hoard/util.h"
#include "cli.h"
#include "volume_cmds.h"

#define DEFAULT_JOB_DIR "/run/hoard/jobs"
#define MAX_FROM	8
#define JOB_ID_MAX	40

static const char job_help[] =
	"Usage: hoard job start ID [--from VOLUME]... [--dir DIR] [--json]\n"
	"       hoard job finish ID [--keep | --discard] [--push URL\n"
	"                        [--sign KEYFILE] [--ref NAME]] [--json]\n"
	"\n"
	"start   clone each VOLUME (default pip) to the volume job.ID.VOLUME\n"
	"        (metadata only: no chunk data is copied), have the daemon\n"
	"        mount it at DIR/ID/VOLUME (DIR default " DEFAULT_JOB_DIR ")\n"
	"        and print that path, one line per volume: bind-mount it into\n"
	"        the job's container.  Needs a running hoardfs (best started\n"
	"        with --persist).\n"
	"finish  unmount the job's clones; --keep folds each clone's new and\n"
	"        changed files into VOLUME with pull's merge rule (absent\n"
	"        files added, a differing one replaced only when the job's\n"
	"        copy is newer, nothing deleted), --discard (the default)\n"
	"        drops them; then the clones are removed.  --push URL then\n"
	"        runs 'hoard push URL --volume VOLUME' for each (only with\n"
	"        --keep), passing --sign KEYFILE and --ref NAME on.\n"
	"\n"
	"ID: 1-40 of A-Z a-z 0-9 . _ -, not starting with '.'.  The job's\n"
	"state is in STORE/jobs/ID.json.  Exit status: 0 done, 1 failure, 2\n"
	"usage error, 3 the push's repository refused (as hoard push).\n";

struct jvol {
	char *from, *clone, *path;
};

struct job {
	const char *store, *id, *dir;
	struct jvol v[MAX_FROM];
	int n;
	bool json;
};

static bool id_ok(const char *id)
{
	size_t n = strlen(id);

	if (!n || n > JOB_ID_MAX || id[0] == '.')
		return false;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			  "0123456789._-") == n;
}

/* ---- state: STORE/jobs/ID.json ------------------------------------------ */

static char *state_path(const struct job *j)
{
	char *p = NULL;

	if (asprintf(&p, "%s/jobs/%s.json", j->store, j->id) < 0)
		return NULL;
	return p;
}

static int state_save(const struct job *j)
{
	json_t *arr = json_array(), *o;
	char *path = state_path(j), tmp[PATH_MAX], dir[PATH_MAX];
	int r = 0;

	snprintf(dir, sizeof(dir), "%s/jobs", j->store);
	mkdir(dir, 0700);
	for (int i = 0; arr && i < j->n; i++)
		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:s}", "from", j->v[i].from,
				       "clone", j->v[i].clone, "mountpoint",
				       j->v[i].path));
	o = arr ? json_pack("{s:i, s:s, s:o}", "version", 1, "id", j->id,
			    "volumes", arr)
		: NULL;
	if (!o || !path) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_dump_file(o, tmp, JSON_COMPACT) < 0 || rename(tmp, path) < 0)
		r = -errno ? -errno : -EIO;
out:
	json_decref(o);
	free(path);
	return r;
}

static char *dup_str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? strdup(s) : NULL;
}

/* -ENOENT: no such job. */
static int state_load(struct job *j)
{
	char *path = state_path(j);
	json_error_t e;
	json_t *o, *arr, *x;
	size_t i;

	if (!path)
		return -ENOMEM;
	o = json_load_file(path, 0, &e);
	if (!o) {
		int r = access(path, F_OK) < 0 ? -ENOENT : -EBADMSG;

		if (r == -EBADMSG)
			hoard_log(LOG_ERR, "%s: %s", path, e.text);
		free(path);
		return r;
	}
	free(path);
	arr = json_object_get(o, "volumes");
	json_array_foreach(arr, i, x)
	{
		if (j->n == MAX_FROM)
			break;
		j->v[j->n].from = dup_str(x, "from");
		j->v[j->n].clone = dup_str(x, "clone");
		j->v[j->n].path = dup_str(x, "mountpoint");
		if (!j->v[j->n].from || !j->v[j->n].clone || !j->v[j->n].path)
			break;
		j->n++;
	}
	json_decref(o);
	return 0;
}

static void job_clear(struct job *j)
{
	for (int i = 0; i < j->n; i++) {
		free(j->v[i].from);
		free(j->v[i].clone);
		free(j->v[i].path);
	}
	j->n = 0;
}

/* ---- steps -------------------------------------------------------------- */

/* A request; on failure a message "what: reason" in err. */
static int call(const struct job *j, const char *req, json_t **ret, char *err,
		size_t errlen)
{
	char *reply = NULL;
	bool nd;
	int r = vol_request(j->store, req, &reply, &nd);

	if (r < 0)
		snprintf(err, errlen, "%s", reply ? reply : strerror(-r));
	else if (ret)
		*ret = json_loads(reply, 0, NULL);
	free(reply);
	return r;
}

static int umount_clone(const struct job *j, const struct jvol *v, char *err,
			size_t errlen)
{
	char req[128];
	int r;

	snprintf(req, sizeof(req), "umount %s", v->clone);
	r = call(j, req, NULL, err, errlen);
	return r == -ENOENT || r == -ENOTCONN ? 0 : r; /* not mounted */
}

static int rm_clone(const struct job *j, const struct jvol *v, char *err,
		    size_t errlen)
{
	char req[128];
	int r;

	snprintf(req, sizeof(req), "volume rm %s", v->clone);
	r = call(j, req, NULL, err, errlen);
	rmdir(v->path);
	return r == -ENOENT ? 0 : r;
}

static void job_dir_rm(const struct job *j)
{
	char *p = NULL, *s = state_path(j);

	if (s)
		unlink(s);
	free(s);
	if (j->dir && asprintf(&p, "%s/%s", j->dir, j->id) >= 0)
		rmdir(p);
	free(p);
}

/* mkdir -p */
static int mkdirs(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* ---- start -------------------------------------------------------------- */

static int start_one(struct job *j, const char *from, json_t *out, char *err,
		     size_t errlen)
{
	struct jvol *v = &j->v[j->n];
	char *req = NULL, *w = NULL;
	json_t *res = NULL;
	int r;

	if (asprintf(&v->clone, "job.%s.%s", j->id, from) < 0 ||
	    asprintf(&v->path, "%s/%s/%s", j->dir, j->id, from) < 0)
		return -ENOMEM;
	v->from = strdup(from);
	if (!v->from)
		return -ENOMEM;
	if (!hoard_fs_volume_name_ok(v->clone)) {
		snprintf(err, errlen,
			 "the clone's name job.%s.%s is too long (at most 64)",
			 j->id, from);
		free(v->from);
		free(v->clone);
		free(v->path);
		return -EINVAL;
	}
	j->n++;
	r = state_save(j);
	if (r < 0) {
		snprintf(err, errlen, "writing the job's state: %s",
			 strerror(-r));
		return r;
	}
	if (asprintf(&req, "volume clone %s %s", from, v->clone) < 0)
		return -ENOMEM;
	r = call(j, req, &res, err, errlen);
	free(req);
	if (r < 0)
		return r;
	r = mkdirs(v->path);
	if (r < 0) {
		snprintf(err, errlen, "mkdir %s: %s", v->path, strerror(-r));
		json_decref(res);
		return r;
	}
	w = vol_word(v->path);
	if (!w || asprintf(&req, "mount %s %s", v->clone, w) < 0)
		req = NULL;
	free(w);
	r = req ? call(j, req, NULL, err, errlen) : -ENOMEM;
	free(req);
	if (r == 0)
		json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:O}",
						     "volume", from, "clone",
						     v->clone, "path", v->path,
						     "clone_result", res));
	json_decref(res);
	return r;
}

static void undo(struct job *j)
{
	char err[512];

	for (int i = 0; i < j->n; i++) {
		umount_clone(j, &j->v[i], err, sizeof(err));
		rm_clone(j, &j->v[i], err, sizeof(err));
	}
	job_dir_rm(j);
}

static int job_start(struct job *j, const char **from, int n_from)
{
	json_t *out = json_array(), *o;
	char err[1024] = "", *path = state_path(j), *text;
	int r = 0;

	if (path && access(path, F_OK) == 0) {
		free(path);
		json_decref(out);
		return cli_fail("job start: job '%s' exists already (finish it "
				"first: hoard job finish %s)",
				j->id, j->id);
	}
	free(path);
	for (int i = 0; r == 0 && i < n_from; i++)
		r = start_one(j, from[i], out, err, sizeof(err));
	if (r < 0) {
		undo(j);
		job_clear(j);
		json_decref(out);
		return cli_fail("job start %s: %s", j->id,
				*err ? err : strerror(-r));
	}
	if (j->json) {
		o = json_pack("{s:s, s:o}", "id", j->id, "volumes", out);
		text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(o);
	} else {
		for (int i = 0; i < j->n; i++)
			printf("%s\n", j->v[i].path);
		json_decref(out);
	}
	job_clear(j);
	return cli_finish_output();
}

/* ---- finish ------------------------------------------------------------- */

/* 1 when volume name exists, 0 when not, -errno. */
static int volume_exists(const struct job *j, const char *name, char *err,
			 size_t errlen)
{
	json_t *o = NULL, *e;
	size_t i;
	int r = call(j, "volume ls", &o, err, errlen);

	if (r < 0)
		return r;
	r = 0;
	json_array_foreach(json_object_get(o, "volumes"), i, e)
	{
		const char *n = json_string_value(json_object_get(e, "name"));

		if (n && !strcmp(n, name))
			r = 1;
	}
	json_decref(o);
	return r;
}

/* `hoard push URL --volume V ...` as a child; its stdout into *ret_out
 * (json) or through.  Returns its exit status. */
static int run_push(const struct job *j, const char *url, const char *volume,
		    const char *sign, const char *ref, char **ret_out)
{
	const char *argv[16];
	int n = 0, p[2], st;
	pid_t pid;
	char buf[4096];
	size_t len = 0, cap = 0;
	char *out = NULL;
	ssize_t k;

	argv[n++] = "hoard";
	argv[n++] = "push";
	argv[n++] = url;
	argv[n++] = "--store";
	argv[n++] = j->store;
	argv[n++] = "--volume";
	argv[n++] = volume;
	if (sign) {
		argv[n++] = "--sign";
		argv[n++] = sign;
	}
	if (ref) {
		argv[n++] = "--ref";
		argv[n++] = ref;
	}
	if (j->json)
		argv[n++] = "--json";
	argv[n] = NULL;
	fflush(stdout);
	if (pipe2(p, O_CLOEXEC) < 0)
		return EXIT_FAILURE;
	pid = fork();
	if (pid < 0)
		return EXIT_FAILURE;
	if (pid == 0) {
		if (j->json)
			dup2(p[1], STDOUT_FILENO);
		execv("/proc/self/exe", (char **)argv);
		_exit(127);
	}
	close(p[1]);
	while ((k = read(p[0], buf, sizeof(buf))) > 0) {
		char *x = hoard_grow(out, &cap, len + (size_t)k + 1, 1, 4096);

		if (!x)
			break;
		out = x;
		memcpy(out + len, buf, (size_t)k);
		len += (size_t)k;
		out[len] = '\0';
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*ret_out = out;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EXIT_FAILURE;
}

static int job_finish(struct job *j, bool keep, const char *url,
		      const char *sign, const char *ref)
{
	json_t *vols, *o;
	char err[1024] = "", *text;
	int r = state_load(j), status = EXIT_SUCCESS;

	if (r == -ENOENT)
		return cli_fail("job finish: there is no job '%s' in %s/jobs",
				j->id, j->store);
	if (r < 0)
		return cli_fail("job finish: %s", strerror(-r));
	vols = json_array();
	if (!vols) {
		job_clear(j);
		return cli_fail("job finish: %s", strerror(ENOMEM));
	}
	if (j->n)
		j->dir = NULL; /* the paths are in the state */
	for (int i = 0; i < j->n && r == 0; i++) {
		struct jvol *v = &j->v[i];
		json_t *m = NULL;
		char req[256];

		r = umount_clone(j, v, err, sizeof(err));
		if (r == 0 && keep) {
			r = volume_exists(j, v->clone, err, sizeof(err));
			if (r == 1) {
				snprintf(req, sizeof(req), "volume merge %s %s",
					 v->clone, v->from);
				r = call(j, req, &m, err, sizeof(err));
			} /* 0: a start that failed before the clone */
		}
		if (r == 0)
			r = rm_clone(j, v, err, sizeof(err));
		json_array_append_new(vols,
				      json_pack("{s:s, s:s, s:o}", "volume",
						v->from, "clone", v->clone,
						"merge", m ? m : json_null()));
		if (r == 0 && !j->json && keep && m)
			printf("job %s: %s: %lld added, %lld replaced\n", j->id,
			       v->from,
			       (long long)json_integer_value(
				       json_object_get(m, "added")),
			       (long long)json_integer_value(
				       json_object_get(m, "replaced")));
	}
	if (r < 0) {
		json_decref(vols);
		job_clear(j);
		return cli_fail("job finish %s: %s (the job is kept: run "
				"finish again)",
				j->id, *err ? err : strerror(-r));
	}
	{
		char *p = state_path(j), *d = NULL;

		if (p) {
			unlink(p);
			free(p);
		}
		if (j->n && asprintf(&d, "%s", j->v[0].path) >= 0) {
			char *slash = strrchr(d, '/');

			if (slash) {
				*slash = '\0';
				rmdir(d);
			}
		}
		free(d);
	}
	o = json_pack("{s:s, s:b, s:O}", "id", j->id, "kept", keep, "volumes",
		      vols);
	for (int i = 0; url && i < j->n; i++) {
		char *out = NULL;
		int s = run_push(j, url, j->v[i].from, sign, ref, &out);
		json_t *pr = out && j->json ? json_loads(out, 0, NULL) : NULL;

		if (o && j->json)
			json_object_set_new(o, "push",
					    pr ? pr
					       : json_string(out ? out : ""));
		else
			json_decref(pr);
		free(out);
		if (s != 0) {
			status = s;
			break;
		}
	}
	if (j->json && o) {
		text = json_dumps(o, JSON_COMPACT);
		if (text)
			printf("%s\n", text);
		free(text);
	}
	json_decref(o);
	json_decref(vols);
	job_clear(j);
	r = cli_finish_output();
	return status ? status : r;
}

/* ---- the command -------------------------------------------------------- */

enum {
	O_FROM = CLI_OPT_CMD,
	O_DIR,
	O_KEEP,
	O_DISCARD,
	O_PUSH,
	O_SIGN,
	O_REF,
};

/* What job's options set (cli_parse_with's fn: job_opt). */
struct job_args {
	struct job *j;
	const char **from;
	int n_from, keep;
	const char *url, *sign, *ref;
};

static int job_opt(void *ud, int opt, const char *arg)
{
	struct job_args *a = ud;

	switch (opt) {
	case O_FROM:
		if (a->n_from == MAX_FROM)
			return cli_usage_error("job: at most %d --from",
					       MAX_FROM);
		if (!hoard_fs_volume_name_ok(arg))
			return cli_usage_error("job: '%s' is not a volume name",
					       arg);
		for (int i = 0; i < a->n_from; i++)
			if (!strcmp(a->from[i], arg))
				return cli_usage_error(
					"job: --from %s given twice", arg);
		a->from[a->n_from++] = arg;
		break;
	case O_DIR:
		a->j->dir = arg;
		break;
	case O_KEEP:
	case O_DISCARD:
		if (a->keep != -1 && a->keep != (opt == O_KEEP))
			return cli_usage_error(
				"job: --keep or --discard, not both");
		a->keep = opt == O_KEEP;
		break;
	case O_PUSH:
		if (strncmp(arg, "s3://", 5))
			return cli_usage_error(
				"job: --push takes an s3:// URL");
		a->url = arg;
		break;
	case O_SIGN:
		a->sign = arg;
		break;
	case O_REF:
		a->ref = arg;
		break;
	}
	return -1;
}

int hoard_cmd_job(const char **store, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		{"from", true, O_FROM},	 {"dir", true, O_DIR},
		{"keep", false, O_KEEP}, {"discard", false, O_DISCARD},
		{"push", true, O_PUSH},	 {"sign", true, O_SIGN},
		{"ref", true, O_REF},	 {0},
	};
	struct job j = {.dir = DEFAULT_JOB_DIR};
	const char *from[MAX_FROM];
	struct job_args a = {.j = &j, .from = from, .keep = -1};
	int n_from, keep, r;
	const char *url, *sign, *ref;
	bool start;
	char dirbuf[PATH_MAX];

	r = cli_parse_with("job", job_help, store, argc, argv, &j.json,
			   CLI_ARGS_ANY, opts, job_opt, &a);
	if (r >= 0)
		return r;
	n_from = a.n_from;
	keep = a.keep;
	url = a.url;
	sign = a.sign;
	ref = a.ref;
	if (argc - optind != 2 ||
	    (strcmp(argv[optind], "start") && strcmp(argv[optind], "finish")))
		return cli_usage_error("job: expected 'start ID' or 'finish "
				       "ID'");
	start = !strcmp(argv[optind], "start");
	j.id = argv[optind + 1];
	j.store = *store;
	if (!id_ok(j.id))
		return cli_usage_error("job: '%s' is not a job ID (1-%d of A-Z "
				       "a-z 0-9 . _ -, not starting with '.')",
				       j.id, JOB_ID_MAX);
	if (start && (keep != -1 || url || sign || ref))
		return cli_usage_error("job start: --keep, --discard, --push, "
				       "--sign and --ref are finish's");
	if (!start && (n_from || strcmp(j.dir, DEFAULT_JOB_DIR)))
		return cli_usage_error("job finish: --from and --dir are "
				       "start's");
	if (!start && (sign || ref) && !url)
		return cli_usage_error("job finish: --sign and --ref go with "
				       "--push");
	if (!start && url && keep != 1)
		return cli_usage_error("job finish: --push needs --keep (a "
				       "discarded job has nothing to push)");
	if (start) {
		if (!n_from)
			from[n_from++] = "pip";
		if (!realpath(j.dir, dirbuf)) {
			if (mkdirs(j.dir) < 0 || !realpath(j.dir, dirbuf))
				return cli_fail("job start: --dir %s: %s",
						j.dir, strerror(errno));
		}
		j.dir = dirbuf;
		return job_start(&j, from, n_from);
	}
	return job_finish(&j, keep == 1, url, sign, ref);
}
