// SPDX-License-Identifier: MIT
/*
 * hoard volume ls | clone | rm | merge, hoard mount, hoard umount.
 *
 * The volume commands go to the daemon when one serves the store (it
 * holds the store's lock: only it can clone a mounted volume consistently
 * and refuse to remove a mounted one); otherwise hoard opens the store and
 * runs the same request itself (volumectl.h), so the answers are the
 * same.  mount and umount need the daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hoard/ctl.h"
#include "hoard/fs.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "hoard/volumectl.h"
#include "cli.h"
#include "volume_cmds.h"

#define LONG_TIMEOUT_S (7 * 86400) /* a merge of a big volume */

char *vol_word(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c == 0x7f || c == '%')
			o += sprintf(o, "%%%02X", c);
		else
			*o++ = (char)c;
	}
	*o = '\0';
	return out;
}

static int offline(const char *store, const char *req, char **ret_out)
{
	struct hoard_store *st;
	struct hoard_fs *fs;
	char err[512] = "";
	int r = hoard_store_open(store, &st, err, sizeof(err));

	if (r < 0) {
		if (r == -EBUSY)
			snprintf(err + strlen(err), sizeof(err) - strlen(err),
				 " (and no daemon answers on its control "
				 "socket)");
		*ret_out = strdup(*err ? err : strerror(-r));
		return r;
	}
	r = hoard_fs_new(st, NULL, &fs);
	if (r < 0) {
		hoard_store_close(st);
		if (asprintf(ret_out, "opening the filesystem of %s: %s", store,
			     strerror(-r)) < 0)
			*ret_out = NULL;
		return r;
	}
	r = hoard_volume_request(fs, req, NULL, ret_out);
	hoard_fs_free(fs);
	hoard_store_close(st);
	return r;
}

int vol_request(const char *store, const char *req, char **ret_out,
		bool *ret_no_daemon)
{
	char *sock = NULL, *reply = NULL;
	int r;

	*ret_out = NULL;
	*ret_no_daemon = false;
	if (asprintf(&sock, "%s/%s", store, CTL_SOCKET) < 0)
		return -ENOMEM;
	r = hoard_ctl_call_timeout(sock, req, LONG_TIMEOUT_S, &reply);
	if ((r == -ENOENT || r == -ECONNREFUSED) && !reply) {
		*ret_no_daemon = true;
		if (!strncmp(req, "volume ", 7)) {
			r = offline(store, req, &reply);
		} else {
			r = -ENOTCONN;
			if (asprintf(&reply,
				     "no hoardfs daemon serves %s: start one "
				     "first (hoardfs --store %s --persist)",
				     store, store) < 0)
				reply = NULL;
		}
	} else if (r < 0 && !reply) {
		if (asprintf(&reply, "cannot ask the hoardfs daemon on %s: %s",
			     sock, strerror(-r)) < 0)
			reply = NULL;
	}
	free(sock);
	*ret_out = reply;
	return r;
}

/* ---- output ------------------------------------------------------------- */

static json_int_t jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void print_human(const char *op, json_t *o, const char *a, const char *b)
{
	if (!strcmp(op, "ls")) {
		json_t *v = json_object_get(o, "volumes"), *e;
		size_t i;

		printf("%-40s %12s  %s\n", "VOLUME", "ROOT", "MOUNTPOINT");
		json_array_foreach(v, i, e)
		{
			const char *mp = json_string_value(
				json_object_get(e, "mountpoint"));

			printf("%-40s %12lld  %s\n",
			       json_string_value(json_object_get(e, "name")),
			       (long long)jint(e, "root"), mp ? mp : "-");
		}
	} else if (!strcmp(op, "clone")) {
		printf("cloned volume '%s' to '%s': %lld files, %lld bytes, "
		       "%lld chunks shared (no chunk data written) in %.3f s\n",
		       a, b, (long long)jint(o, "files"),
		       (long long)jint(o, "bytes"),
		       (long long)jint(o, "chunks"),
		       json_real_value(json_object_get(o, "seconds")));
	} else if (!strcmp(op, "create")) {
		printf("volume '%s' %s\n", a,
		       json_is_true(json_object_get(o, "created"))
			       ? "created"
			       : "exists already");
	} else if (!strcmp(op, "rm")) {
		printf("removed volume '%s': %lld files, %lld bytes; %lld "
		       "chunks freed\n",
		       a, (long long)jint(o, "files"),
		       (long long)jint(o, "bytes"),
		       (long long)jint(o, "chunks_freed"));
	} else if (!strcmp(op, "merge")) {
		printf("merged volume '%s' into '%s': %lld added, %lld "
		       "replaced, %lld identical, %lld kept (newer in '%s'), "
		       "%lld conflicts\n",
		       a, b, (long long)jint(o, "added"),
		       (long long)jint(o, "replaced"),
		       (long long)jint(o, "identical"),
		       (long long)jint(o, "kept_newer"), b,
		       (long long)jint(o, "conflicts"));
	} else {
		printf("%s\n",
		       json_string_value(json_object_get(o, "mountpoint")));
	}
}

/* Print a reply: as is with --json, else a line for a human. */
static int print_reply(const char *op, const char *reply, bool json,
		       const char *a, const char *b)
{
	json_t *o;

	if (json) {
		fputs(reply, stdout);
		return cli_finish_output();
	}
	o = json_loads(reply, 0, NULL);
	if (!o)
		return cli_fail("the reply is not understood: %.200s", reply);
	print_human(op, o, a, b);
	json_decref(o);
	return cli_finish_output();
}

static int status_of(int r)
{
	return r == -EINVAL ? EXIT_USAGE : EXIT_FAILURE;
}

static int cli_vfail(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int cli_vfail(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vreport(status, fmt, ap);
	va_end(ap);
	return status;
}

/* ---- commands ----------------------------------------------------------- */

static const char volume_help[] =
	"Usage: hoard volume ls [--json]\n"
	"       hoard volume create NAME [--json]\n"
	"       hoard volume clone SRC DST [--json]\n"
	"       hoard volume rm NAME [--json]\n"
	"       hoard volume merge SRC DST [--json]\n"
	"\n"
	"ls     the store's volumes, their root inodes and where the daemon\n"
	"       mounts them.\n"
	"create an empty volume NAME (0755 root:root) unless it exists.\n"
	"clone  a new volume DST with SRC's whole tree that shares every\n"
	"       chunk with it: metadata only (inodes, names, extents, xattrs;\n"
	"       chunk refcounts raised), no chunk data written.  SRC may be\n"
	"       mounted: the clone is SRC as of one instant (every file as\n"
	"       its last close or fsync left it), as push takes it.\n"
	"rm     remove volume NAME (refused while it is mounted); chunks that\n"
	"       no other file uses go with it.\n"
	"merge  fold SRC's files into DST with pull's merge rule: files\n"
	"       absent in DST are added, identical ones left, a differing\n"
	"       one replaced only when SRC's copy is newer (mtime); nothing\n"
	"       is deleted, no chunk data copied.\n"
	"\n"
	"Through the daemon when it serves the store, else on the store\n"
	"directly.  Exit status: 0 done, 1 failure, 2 usage error.\n";

/* --store, --json, --verbose, -h; operands may come anywhere (getopt
 * permutes them to argv[optind..]).  -1: go on, else the exit status. */
static int parse_simple(const char *cmd, const char *help, const char **store,
			int argc, char **argv, bool *json)
{
	return cli_parse_with(cmd, help, store, argc, argv, json, CLI_ARGS_ANY,
			      NULL, NULL, NULL);
}

int hoard_cmd_volume(const char **store, int argc, char **argv)
{
	static const struct {
		const char *op;
		int args;
	} ops[] = {
		{"ls", 0}, {"create", 1}, {"clone", 2}, {"rm", 1}, {"merge", 2}};
	char *req = NULL, *reply = NULL;
	const char *op, *a, *b;
	bool json = false, nd;
	int r, n;
	size_t i;

	r = parse_simple("volume", volume_help, store, argc, argv, &json);
	if (r >= 0)
		return r;
	if (optind >= argc)
		return cli_usage_error(
			"volume: which? (ls, create, clone, rm, merge)");
	op = argv[optind];
	n = argc - optind - 1;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(ops[i].op, op))
			break;
	if (i == sizeof(ops) / sizeof(ops[0]))
		return cli_usage_error("volume: unknown subcommand '%s'", op);
	if (n != ops[i].args)
		return cli_usage_error("volume %s: expected %d argument%s, got "
				       "%d",
				       op, ops[i].args,
				       ops[i].args == 1 ? "" : "s", n);
	a = n > 0 ? argv[optind + 1] : NULL;
	b = n > 1 ? argv[optind + 2] : NULL;
	if ((a && !hoard_fs_volume_name_ok(a)) ||
	    (b && !hoard_fs_volume_name_ok(b)))
		return cli_usage_error(
			"volume %s: '%s' is not a volume name "
			"(1-64 of A-Z a-z 0-9 . _ -, not "
			"starting with '.')",
			op, a && !hoard_fs_volume_name_ok(a) ? a : b);
	if (asprintf(&req, "volume %s%s%s%s%s", op, a ? " " : "", a ? a : "",
		     b ? " " : "", b ? b : "") < 0)
		return cli_fail("%s", strerror(ENOMEM));
	r = vol_request(*store, req, &reply, &nd);
	free(req);
	if (r < 0)
		r = cli_vfail(status_of(r), "volume %s: %s", op,
			      reply ? reply : strerror(-r));
	else
		r = print_reply(op, reply, json, a, b);
	free(reply);
	return r;
}

static const char mount_help[] =
	"Usage: hoard mount NAME PATH [--json]\n"
	"       hoard umount NAME\n"
	"\n"
	"Ask the daemon serving the store to mount volume NAME (made if\n"
	"missing) at the directory PATH, with the options of its other\n"
	"mounts, or to unmount it (answered once its files are committed;\n"
	"fusermount3 -u PATH works too).  mount prints PATH.  A daemon\n"
	"started with volumes exits when its last mount, of either kind,\n"
	"goes; one started with --persist or with none stays.\n";

int hoard_cmd_mount(const char **store, int argc, char **argv)
{
	char *req = NULL, *reply = NULL, *w1 = NULL, *w2 = NULL;
	bool json = false, nd;
	int r = parse_simple("mount", mount_help, store, argc, argv, &json);

	if (r >= 0)
		return r;
	if (argc - optind != 2)
		return cli_usage_error("mount: expected NAME PATH");
	if (!hoard_fs_volume_name_ok(argv[optind]))
		return cli_usage_error("mount: '%s' is not a volume name",
				       argv[optind]);
	w1 = vol_word(argv[optind]);
	w2 = vol_word(argv[optind + 1]);
	if (!w1 || !w2 || asprintf(&req, "mount %s %s", w1, w2) < 0)
		req = NULL;
	free(w1);
	free(w2);
	if (!req)
		return cli_fail("%s", strerror(ENOMEM));
	r = vol_request(*store, req, &reply, &nd);
	free(req);
	if (r < 0)
		r = cli_fail("mount: %s", reply ? reply : strerror(-r));
	else
		r = print_reply("mount", reply, json, NULL, NULL);
	free(reply);
	return r;
}

int hoard_cmd_umount(const char **store, int argc, char **argv)
{
	char *req = NULL, *reply = NULL;
	bool json = false, nd;
	int r = parse_simple("umount", mount_help, store, argc, argv, &json);

	if (r >= 0)
		return r;
	if (argc - optind != 1 || !hoard_fs_volume_name_ok(argv[optind]))
		return cli_usage_error("umount: expected a volume NAME");
	if (asprintf(&req, "umount %s", argv[optind]) < 0)
		return cli_fail("%s", strerror(ENOMEM));
	r = vol_request(*store, req, &reply, &nd);
	free(req);
	if (r < 0)
		r = cli_fail("umount: %s", reply ? reply : strerror(-r));
	else
		r = print_reply("umount", reply, json, NULL, NULL);
	free(reply);
	return r;
}
