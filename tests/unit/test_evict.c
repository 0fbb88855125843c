// SPDX-License-Identifier: MIT
/*
 * Tests of the size budget's selection (evict.h) on a real store in a
 * mkdtemp() directory, with files made through the filesystem core and
 * hoard_evict_pass run in this thread: least recently used first (mtime,
 * atime, and the daemon's in-memory uses), pinned files and trees, open
 * files, a file whose chunks another file shares (removing it frees
 * nothing, so the pass goes on), a file with two names (both go), the
 * bytes counted as freed equal to what the store really lost, and a use
 * kept across a restart through the stored last use (not the atime).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoard/evict.h"
#include "hoard/fs.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "check.h"
#include "tmpstore.h"

#define FILE_SIZE (100 * 1024)

static char tmp_root[] = "/tmp/hoard-test-evict-XXXXXX";

/* A file with given content, its atime and mtime set to t seconds. */
static uint64_t put_file(struct hoard_fs *fs, uint64_t dir, const char *name,
			 const void *data, size_t len, time_t t)
{
	uint64_t ino = tmp_file_put(fs, dir, name, data, len);
	struct stat attr = {0};

	attr.st_atim.tv_sec = attr.st_mtim.tv_sec = t;
	CHECK_EQ(hoard_fs_setattr(fs, ino, &attr,
				  HOARD_SET_ATIME | HOARD_SET_MTIME, NULL,
				  &attr),
		 0);
	hoard_fs_forget(fs, ino, 1);
	return ino;
}

static bool exists(struct hoard_fs *fs, uint64_t root, const char *path)
{
	uint64_t ino;

	return hoard_fs_resolve(fs, root, path, &ino) == 0;
}

static uint8_t *random_bytes(size_t n)
{
	uint8_t *p = malloc(n);

	if (!p || hoard_random(p, n) < 0)
		abort();
	return p;
}

/* Files of FILE_SIZE random bytes differ in stored size by a byte per
 * chunk (the frame's tag). */
static bool near(uint64_t a, uint64_t b)
{
	return a > b ? a - b <= 32 : b - a <= 32;
}

static uint64_t stored(struct hoard_store *st)
{
	uint64_t v = 0;

	CHECK_EQ(hoard_budget_stored_bytes(st, &v), 0);
	return v;
}

int main(void)
{
	struct hoard_store_init_opts io = {.zstd_level = 1};
	struct hoard_ctx ctx = {0, 0};
	struct hoard_evict_opts eo = {0};
	struct hoard_evict_counts cnt;
	struct hoard_store *st = NULL;
	struct hoard_evict *ev;
	struct hoard_fs *fs;
	struct hoard_fh *open_fh;
	char name[16];
	uint8_t *data[10], *hdata = random_bytes(FILE_SIZE);
	uint64_t root, pdir, ino_a5, ino_a6, unit, s0, s1, pinned, v;
	struct stat sb;

	hoard_log_set_level(LOG_WARNING); /* no report of each pass */
	st = tmp_store_new(tmp_root, &io);
	if (!st)
		return 1;

	/* the store setting */
	CHECK_EQ(hoard_budget_get(st, &v), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(hoard_budget_set(st, 12345), 0);
	CHECK_EQ(hoard_budget_get(st, &v), 0);
	CHECK_EQ(v, 12345);
	CHECK_EQ(hoard_budget_set(st, 0), 0);
	CHECK_EQ(hoard_budget_get(st, &v), 0);
	CHECK_EQ(v, 0);

	CHECK_EQ(hoard_fs_new(st, NULL, &fs), 0);
	CHECK_EQ(hoard_fs_volume(fs, "v", true, &root), 0);
	for (int i = 0; i < 10; i++) {
		data[i] = random_bytes(FILE_SIZE);
		snprintf(name, sizeof(name), "a%d", i);
		/* written newest first: only the times give the order */
		put_file(fs, root, name, data[i], FILE_SIZE, 1000 + i);
	}
	s0 = stored(st);
	unit = s0 / 10;
	CHECK(s0 >= 10 * FILE_SIZE && s0 < 10 * FILE_SIZE + 1000);

	/* no budget, or under it: nothing happens */
	eo.low_pct = 70;
	CHECK_EQ(hoard_evict_new(fs, &eo, &ev), 0);
	CHECK_EQ(hoard_evict_pass(ev, &v), 0);
	hoard_evict_set_budget(ev, s0);
	CHECK_EQ(hoard_evict_pass(ev, &v), 0);
	CHECK_EQ(stored(st), s0);

	/* over: oldest first, down to 70% of the budget */
	hoard_evict_set_budget(ev, unit * 95 / 10);
	CHECK_EQ(hoard_evict_pass(ev, &v), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "a%d", i);
		CHECK_EQ(exists(fs, root, name), i >= 4);
	}
	CHECK_EQ(v, stored(st));
	CHECK(near(v, s0 - 4 * unit));
	hoard_evict_get_counts(ev, &cnt);
	CHECK_EQ(cnt.files, 4);
	CHECK_EQ(cnt.bytes, s0 - v); /* what it counted is what went */
	CHECK_EQ(cnt.max_bytes, unit * 95 / 10);
	hoard_evict_free(ev);

	/* pins (a file, a tree), an open file, a recent use, a shared
	 * content, two names of one file */
	CHECK_EQ(hoard_fs_resolve(fs, root, "a4", &v), 0);
	CHECK_EQ(hoard_fs_setxattr(fs, v, HOARD_PIN_XATTR, "1", 1, 0), 0);
	CHECK_EQ(hoard_fs_mkdir(fs, root, "p", 0755, &ctx, &sb), 0);
	hoard_fs_forget(fs, (uint64_t)sb.st_ino, 1);
	pdir = (uint64_t)sb.st_ino;
	CHECK_EQ(hoard_fs_mkdir(fs, pdir, "q", 0755, &ctx, &sb), 0);
	hoard_fs_forget(fs, (uint64_t)sb.st_ino, 1);
	CHECK_EQ(hoard_fs_setxattr(fs, pdir, HOARD_PIN_XATTR, "", 0, 0), 0);
	put_file(fs, (uint64_t)sb.st_ino, "x", data[0], FILE_SIZE, 500);
	put_file(fs, root, "dup", data[7], FILE_SIZE, 1);
	v = put_file(fs, root, "h", hdata, FILE_SIZE, 2);
	CHECK_EQ(hoard_fs_link(fs, v, pdir, "h2", &sb), 0); /* also pinned */
	hoard_fs_forget(fs, v, 1);
	CHECK_EQ(hoard_fs_mkdir(fs, root, "d", 0755, &ctx, &sb), 0);
	hoard_fs_forget(fs, (uint64_t)sb.st_ino, 1);
	CHECK_EQ(hoard_fs_unlink(fs, pdir, "h2"), 0);
	CHECK_EQ(hoard_fs_link(fs, v, (uint64_t)sb.st_ino, "h2", &sb), 0);
	hoard_fs_forget(fs, v, 1);
	CHECK_EQ(hoard_fs_resolve(fs, root, "a5", &ino_a5), 0);
	CHECK_EQ(hoard_fs_resolve(fs, root, "a6", &ino_a6), 0);
	CHECK_EQ(hoard_fs_open(fs, ino_a6, O_RDONLY, &open_fh), 0);

	CHECK_EQ(hoard_budget_pinned_bytes(st, &pinned), 0);
	CHECK(near(pinned, 2 * unit)); /* a4 and p/q/x */
	s1 = stored(st);
	CHECK(near(s1, 8 * unit)); /* a4..a9, p/q/x, h */

	eo.low_pct = 100;
	eo.max_bytes = unit * 25 / 10;
	CHECK_EQ(hoard_evict_new(fs, &eo, &ev), 0);
	hoard_evict_touch(ev, ino_a5); /* now: the most recent use */
	CHECK_EQ(hoard_evict_pass(ev, &v), 0);
	CHECK(!exists(fs, root, "dup"));
	CHECK(!exists(fs, root, "h"));
	CHECK(!exists(fs, root, "d/h2"));
	CHECK(!exists(fs, root, "a7"));
	CHECK(!exists(fs, root, "a8"));
	CHECK(!exists(fs, root, "a9"));
	CHECK(!exists(fs, root, "a5"));
	CHECK(exists(fs, root, "a4"));
	CHECK(exists(fs, root, "a6"));
	CHECK(exists(fs, root, "p/q/x"));
	CHECK_EQ(v, stored(st));
	CHECK(near(v, 3 * unit)); /* over the budget: the rest is exempt */
	hoard_evict_get_counts(ev, &cnt);
	CHECK_EQ(cnt.files, 6);
	CHECK_EQ(cnt.bytes, s1 - v);
	hoard_evict_free(ev);

	/* the recent use outranks an older one: a5 went last, so with a
	 * budget that removes one more file after closing a6, a6 goes */
	hoard_fs_release(fs, open_fh);
	eo.max_bytes = 25 * unit / 10;
	CHECK_EQ(hoard_evict_new(fs, &eo, &ev), 0);
	CHECK_EQ(hoard_evict_pass(ev, &v), 0);
	CHECK(!exists(fs, root, "a6"));
	CHECK(exists(fs, root, "a4"));
	CHECK(near(v, 2 * unit));
	hoard_evict_free(ev);

	/* a use outlives the daemon: stored (HOARD_USE_XATTR) when the
	 * evictor stops, so a new one (no uses in memory) ranks by it; the
	 * atime the user set is left alone */
	ino_a5 = put_file(fs, root, "r0", data[1], FILE_SIZE, 2000);
	put_file(fs, root, "r1", data[2], FILE_SIZE, 2001);
	eo.max_bytes = 0;
	CHECK_EQ(hoard_evict_new(fs, &eo, &ev), 0);
	hoard_evict_touch(ev, ino_a5);
	hoard_evict_free(ev); /* stores the use */
	CHECK_EQ(hoard_fs_getattr(fs, ino_a5, &sb), 0);
	CHECK_EQ(sb.st_atim.tv_sec, 2000);
	CHECK_EQ(sb.st_mtim.tv_sec, 2000);
	CHECK_EQ(hoard_fs_listxattr(fs, ino_a5, NULL, 0), 0);
	eo.max_bytes = 35 * unit / 10;
	CHECK_EQ(hoard_evict_new(fs, &eo, &ev), 0);
	CHECK_EQ(hoard_evict_pass(ev, &v), 0);
	CHECK(exists(fs, root, "r0"));
	CHECK(!exists(fs, root, "r1"));
	CHECK(near(v, 3 * unit));
	hoard_evict_free(ev);

	hoard_fs_free(fs);
	hoard_store_close(st);
	for (int i = 0; i < 10; i++)
		free(data[i]);
	free(hdata);
	tmp_tree_remove(tmp_root);
	return CHECK_DONE();
}
