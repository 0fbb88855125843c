// SPDX-License-Identifier: MIT
/*
 * hoard fsck / hoard gc (fsck_cmds.h).  Messages follow hoard.c: one line
 * "hoard: <message>" on stderr per failure; exit 0 success, 1 runtime error
 * (fsck: also "problems found and not repaired"), 2 usage error.
 *
 * fsck needs the store to itself: it opens it, which takes the store's lock,
 * so while hoardfs serves the store fsck refuses (one line naming the
 * daemon's pid).  gc goes through the daemon when one runs (control request
 * `gc`, docs/FORMAT.md section 6), else opens the store itself.
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
#include "hoard/fsck.h"
#include "hoard/gc.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "cli.h"
#include "fsck_cmds.h"

#define EXIT_PROBLEMS 1
/* A compaction of a large store runs for minutes; the daemon says nothing
 * until it is done. */
#define GC_TIMEOUT_S (6 * 3600)

/* clang-format off */
static const char fsck_help[] =
"Usage: hoard fsck [--store DIR] [--repair] [--json]\n"
"\n"
"Check a store: every chunk's bytes are read, decompressed and re-hashed\n"
"against its id; every extent's chunk exists; every refcount equals the\n"
"extents naming the chunk; no record is orphaned (chunk data without a\n"
"record, entries naming missing inodes, inodes no volume reaches, wrong\n"
"link counts).  Prints the counts of what was checked and found, and the\n"
"files whose data is lost.  Goes on past records it cannot read (a damaged\n"
"table file), listing the files they belong to, and reports write-ahead log\n"
"damage that the last open of the store found.\n"
"\n"
"  --repair  fix what is found: remove lost files (listed; never truncated),\n"
"            delete dangling records, rewrite link counts and refcounts\n"
"  --json    print one JSON object instead of text\n"
"\n"
"fsck needs the store to itself: unmount the volumes (stop hoardfs) first.\n"
"\n"
"Exit status: 0 the store is clean (or was fully repaired); 1 problems were\n"
"found and not repaired, or the check could not run (one line on stderr);\n"
"2 usage error.\n";

static const char gc_help[] =
"Usage: hoard gc [--store DIR] [--json]\n"
"\n"
"Return the space of deleted chunks to the filesystem: a full RocksDB\n"
"compaction with blob garbage collection of every blob file.  (Chunks are\n"
"deleted as soon as their last reference goes; their bytes stay in RocksDB's\n"
"files until compaction rewrites them.)  Reports the store directory's disk\n"
"use before and after.  While hoardfs serves the store the daemon does it\n"
"(through DIR/control.sock); otherwise hoard opens the store, first running\n"
"the daemon's start-up recovery (purging unlinked files, dropping data of\n"
"interrupted commits).\n"
"\n"
"  --json    print one JSON object instead of text\n"
"\n"
"Exit status: 0 done; 1 runtime error; 2 usage error.\n";
/* clang-format on */

static void human(uint64_t n, char *out, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(out, len, "%llu B", (unsigned long long)n);
		return;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, "%.1f %s", v, units[u]);
}

/* Open the store for a command that needs it to itself. */
static int open_exclusive(const char *store, const char *cmd,
			  struct hoard_store **ret, bool read_only)
{
	char err[512] = "";
	int r, pid;

	r = read_only ? hoard_store_open_readonly(store, ret, err, sizeof(err))
		      : hoard_store_open(store, ret, err, sizeof(err));
	if (r == -EBUSY) {
		pid = hoard_store_lock_owner(store);
		if (pid > 0)
			return cli_fail(
				"%s: store %s is in use by pid %d (hoardfs "
				"serving it?); unmount its volumes first",
				cmd, store, pid);
		return cli_fail("%s: store %s is in use; unmount its volumes "
				"first",
				cmd, store);
	}
	if (r == -ENOSPC)
		return cli_fail("%s: %s", cmd, err);
	if (r < 0)
		return cli_fail("%s", *err ? err : strerror(-r));
	return 0;
}

/* ---- fsck ---- */

struct prog {
	uint64_t last_ns;
	bool shown;
};

static void fsck_progress(void *ud, const char *phase, uint64_t items,
			  uint64_t bytes)
{
	struct prog *p = ud;
	uint64_t now = hoard_now_mono_ns();
	char b[32];

	if (now - p->last_ns < 200000000ull)
		return;
	p->last_ns = now;
	human(bytes, b, sizeof(b));
	fprintf(stderr, "\rhoard: fsck: %s: %llu checked, %s read   ", phase,
		(unsigned long long)items, b);
	p->shown = true;
}

int hoard_cmd_fsck(const char **store, int argc, char **argv)
{
	struct hoard_fsck_opts o = {0};
	struct hoard_fsck_report *rep;
	struct hoard_store *st = NULL;
	struct prog prog = {0};
	bool json = false;
	char *out;
	int r;

	r = cli_parse("fsck", fsck_help, store, argc, argv, &json, &o.repair,
		      false);
	if (r >= 0)
		return r;
	r = open_exclusive(*store, "fsck", &st, !o.repair);
	if (r)
		return r;
	if (isatty(STDERR_FILENO)) {
		o.progress = fsck_progress;
		o.ud = &prog;
		prog.last_ns = hoard_now_mono_ns();
	}
	r = hoard_fsck_run(st, &o, &rep);
	hoard_store_close(st);
	if (prog.shown)
		fputs("\r\033[K", stderr);
	if (r == -EUCLEAN)
		return cli_fail(
			"store %s is damaged: its settings family cannot "
			"be read (nothing was changed; restore the "
			"store or pull its volumes again)",
			*store);
	if (r < 0)
		return cli_fail("fsck of %s could not finish: %s", *store,
				strerror(-r));
	out = json ? hoard_fsck_json(rep) : hoard_fsck_text(rep);
	r = rep->problems && !rep->repaired ? EXIT_PROBLEMS : EXIT_SUCCESS;
	hoard_fsck_report_free(rep);
	if (!out)
		return cli_fail("formatting the report: %s", strerror(ENOMEM));
	fputs(out, stdout);
	free(out);
	return cli_finish_output() ?: r;
}

/* ---- gc ---- */

static int print_gc(const struct hoard_gc_report *g, const char *json_text,
		    bool json, bool via_daemon)
{
	char a[32], b[32], c[32], d[32], f[32];
	char *out = NULL;

	if (json) {
		out = json_text ? NULL : hoard_gc_json(g);
		if (!json_text && !out)
			return cli_fail("%s", strerror(ENOMEM));
		fputs(json_text ? json_text : out, stdout);
		free(out);
		return cli_finish_output();
	}
	human(g->disk_before, a, sizeof(a));
	human(g->disk_after, b, sizeof(b));
	human(g->disk_before > g->disk_after ? g->disk_before - g->disk_after
					     : 0,
	      f, sizeof(f));
	human(g->db_before, c, sizeof(c));
	human(g->db_after, d, sizeof(d));
	printf("store disk use: %s -> %s (%s freed)\n"
	       "database files: %s -> %s\n"
	       "compaction: %.2f s%s\n",
	       a, b, f, c, d, g->seconds,
	       via_daemon ? " (by the running hoardfs)" : "");
	return cli_finish_output();
}

static int offline_gc(const char *store, bool json)
{
	struct hoard_gc_report g;
	struct hoard_store *st;
	struct hoard_fs *fs;
	int r;

	r = open_exclusive(store, "gc", &st, false);
	if (r)
		return r;
	/* the daemon's start-up recovery: purge orphans, sweep frames */
	r = hoard_fs_new(st, NULL, &fs);
	if (r == 0) {
		hoard_fs_free(fs);
		r = hoard_gc_run(st, &g);
	}
	hoard_store_close(st);
	if (r < 0)
		return cli_fail("gc of %s failed: %s", store, strerror(-r));
	return print_gc(&g, NULL, json, false);
}

int hoard_cmd_gc(const char **store, int argc, char **argv)
{
	struct hoard_gc_report g;
	char *sock, *reply = NULL;
	bool json = false;
	int r;

	r = cli_parse("gc", gc_help, store, argc, argv, &json, NULL, false);
	if (r >= 0)
		return r;
	if (asprintf(&sock, "%s/%s", *store, CTL_SOCKET) < 0)
		return cli_fail("%s", strerror(ENOMEM));
	r = hoard_ctl_call_timeout(sock, "gc", GC_TIMEOUT_S, &reply);
	if (r == 0) {
		if (hoard_gc_from_json(reply, &g) < 0)
			r = cli_fail("the daemon's gc reply is not understood");
		else
			r = print_gc(&g, reply, json, true);
	} else if ((r == -ENOENT || r == -ECONNREFUSED) && !reply) {
		r = offline_gc(*store, json);
	} else if (reply) {
		r = cli_fail("the hoardfs daemon could not run gc: %s", reply);
	} else if (r == -ETIMEDOUT || r == -EAGAIN) {
		r = cli_fail("the hoardfs daemon did not finish gc in %d s",
			     GC_TIMEOUT_S);
	} else {
		r = cli_fail("cannot ask the hoardfs daemon on %s: %s", sock,
			     strerror(-r));
	}
	free(reply);
	free(sock);
	return r;
}
