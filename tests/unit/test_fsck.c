// SPDX-License-Identifier: MIT
/*
 * Tests of fsck (fsck.h) on a real store in a mkdtemp() directory: files
 * made through the filesystem core, then records damaged by hand, one of
 * each kind the e2e tests cannot make (docs/FORMAT.md section 2); each must
 * be counted exactly, --repair must leave a store fsck calls clean, and
 * the files that had nothing to do with the damage must read back.  Also
 * the gc report's JSON round trip.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoard/fs.h"
#include "hoard/fsck.h"
#include "hoard/gc.h"
#include "hoard/records.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "check.h"
#include "tmpstore.h"

static char tmp_root[] = "/tmp/hoard-test-fsck-XXXXXX";
static char store_dir[4096];

static struct hoard_store *open_store(void)
{
	struct hoard_store *st = NULL;
	char err[512];

	if (hoard_store_open(store_dir, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "open: %s\n", err);
		abort();
	}
	return st;
}

static void put_file(struct hoard_fs *fs, uint64_t dir, const char *name,
		     const void *data, size_t len)
{
	hoard_fs_forget(fs, tmp_file_put(fs, dir, name, data, len), 1);
}

static int read_file(struct hoard_fs *fs, uint64_t root, const char *path,
		     void *buf, size_t len)
{
	struct hoard_fh *fh;
	uint64_t ino;
	ssize_t n;
	int r;

	r = hoard_fs_resolve(fs, root, path, &ino);
	if (r < 0)
		return r;
	r = hoard_fs_open(fs, ino, O_RDONLY, &fh);
	if (r < 0)
		return r;
	n = hoard_fs_read(fs, fh, buf, len, 0);
	hoard_fs_release(fs, fh);
	return n == (ssize_t)len ? 0 : -EIO;
}

static struct hoard_fsck_report *fsck(bool repair)
{
	struct hoard_fsck_opts o = {.repair = repair};
	struct hoard_fsck_report *rep = NULL;
	struct hoard_store *st = open_store();

	CHECK_EQ(hoard_fsck_run(st, &o, &rep), 0);
	hoard_store_close(st);
	if (!rep)
		abort();
	return rep;
}

static uint8_t *random_bytes(size_t n)
{
	uint8_t *p = malloc(n);

	if (!p || hoard_random(p, n) < 0)
		abort();
	return p;
}

/* A volume with a directory, two files and an xattr. */
static void build(uint8_t *a, uint8_t *b, size_t n)
{
	struct hoard_ctx ctx = {0, 0};
	struct hoard_store *st = open_store();
	struct hoard_fs *fs;
	uint64_t root;
	struct stat sb;

	CHECK_EQ(hoard_fs_new(st, NULL, &fs), 0);
	CHECK_EQ(hoard_fs_volume(fs, "v", true, &root), 0);
	CHECK_EQ(hoard_fs_mkdir(fs, root, "d", 0755, &ctx, &sb), 0);
	hoard_fs_forget(fs, (uint64_t)sb.st_ino, 1);
	put_file(fs, (uint64_t)sb.st_ino, "a", a, n);
	put_file(fs, root, "b", b, n);
	CHECK_EQ(hoard_fs_setxattr(fs, root, "user.x", "1", 1, 0), 0);
	hoard_fs_free(fs);
	hoard_store_close(st);
}

static void key8(uint8_t *k, uint64_t v)
{
	hoard_put_be64(k, v);
}

/* One record of each kind of damage the e2e tests do not make. */
static void damage(void)
{
	struct hoard_store *st = open_store();
	uint8_t k[64], v[128];
	void *val;
	size_t n;

	/* a frame without a record */
	memset(k, 0xee, 16);
	CHECK_EQ(hoard_store_put(st, HOARD_CF_CHUNKDATA, k, 16, "\0x", 2), 0);
	/* an entry naming a missing inode */
	key8(k, 16); /* the volume's root (first inode) */
	memcpy(k + 8, "ghost", 5);
	key8(v, 999999);
	v[8] = 8;
	CHECK_EQ(hoard_store_put(st, HOARD_CF_DIRENTS, k, 13, v, 9), 0);
	/* an orphans entry of a missing inode, an xattr of one */
	key8(k, 999998);
	CHECK_EQ(hoard_store_put(st, HOARD_CF_ORPHANS, k, 8, "", 0), 0);
	memcpy(k + 8, "user.y", 6);
	CHECK_EQ(hoard_store_put(st, HOARD_CF_XATTRS, k, 14, "z", 1), 0);
	/* an undecodable inode record */
	key8(k, 999997);
	CHECK_EQ(hoard_store_put(st, HOARD_CF_INODES, k, 8, "\x07junk", 5), 0);
	/* a digest row of a chunk with no record (FORMAT 2.1), and one of
	 * a chunk that has one (kept) */
	{
		struct hoard_iter *it = hoard_iter_new(st, HOARD_CF_CHUNKS, "",
						       0);
		struct hoard_id id;
		size_t kl;

		memset(id.b, 0xdd, sizeof(id.b));
		sha_row_key(k, &id);
		memset(v, 0x5a, SHA_ROW_VAL_LEN);
		CHECK_EQ(hoard_store_put(st, HOARD_CF_DEFAULT, k,
					 SHA_ROW_KEY_LEN, v, SHA_ROW_VAL_LEN),
			 0);
		CHECK(it && hoard_iter_valid(it));
		memcpy(id.b, hoard_iter_key(it, &kl), sizeof(id.b));
		CHECK_EQ(kl, sizeof(id.b));
		hoard_iter_free(it);
		sha_row_key(k, &id);
		CHECK_EQ(hoard_store_put(st, HOARD_CF_DEFAULT, k,
					 SHA_ROW_KEY_LEN, v, SHA_ROW_VAL_LEN),
			 0);
	}
	/* a volume whose root is missing */
	key8(v, 999996);
	CHECK_EQ(hoard_store_put(st, HOARD_CF_VOLUMES, "lost", 4, v, 8), 0);
	/* the root's nlink off by one */
	key8(k, 16);
	CHECK_EQ(hoard_store_get(st, HOARD_CF_INODES, k, 8, &val, &n), 0);
	if (val && n >= 80) {
		uint8_t *rec = val;

		hoard_put_be32(rec + 16, hoard_get_be32(rec + 16) + 1);
		CHECK_EQ(hoard_store_put(st, HOARD_CF_INODES, k, 8, rec, n), 0);
	}
	free(val);
	hoard_store_close(st);
}

static void test_fsck(void)
{
	const size_t n = 700000;
	uint8_t *a = random_bytes(n), *b = random_bytes(n);
	uint8_t *got = malloc(n);
	struct hoard_fsck_report *rep;
	struct hoard_store *st;
	struct hoard_fs *fs;
	uint64_t root;

	build(a, b, n);
	rep = fsck(false);
	CHECK_EQ(rep->problems, 0);
	CHECK_EQ(rep->volumes, 1);
	CHECK_EQ(rep->inodes, 4);
	CHECK_EQ(rep->dirents, 3);
	CHECK_EQ(rep->xattrs, 1);
	CHECK_EQ(rep->raw_bytes, 2 * n);
	CHECK(rep->chunks >= 2 * (n / (256 * 1024)));
	hoard_fsck_report_free(rep);

	damage();
	rep = fsck(false);
	CHECK_EQ(rep->problem[HOARD_FSCK_ORPHAN_FRAMES], 1);
	CHECK_EQ(rep->problem[HOARD_FSCK_DANGLING_DIRENTS], 1);
	CHECK_EQ(rep->problem[HOARD_FSCK_STALE_ORPHANS], 1);
	CHECK_EQ(rep->problem[HOARD_FSCK_ORPHAN_XATTRS], 1);
	CHECK_EQ(rep->problem[HOARD_FSCK_BAD_RECORDS], 1);
	CHECK_EQ(rep->problem[HOARD_FSCK_BAD_VOLUMES], 1);
	CHECK_EQ(rep->problem[HOARD_FSCK_NLINKS], 1);
	CHECK_EQ(rep->problem[HOARD_FSCK_ORPHAN_DIGESTS], 1);
	CHECK_EQ(rep->digests, 2);
	CHECK_EQ(rep->problems, 7); /* orphan digests are none */
	CHECK_EQ(rep->n_lost, 0);
	CHECK(!rep->repaired);
	hoard_fsck_report_free(rep);

	rep = fsck(true);
	CHECK(rep->repaired);
	CHECK_EQ(rep->problems, 7);
	CHECK(rep->writes >= 8);
	hoard_fsck_report_free(rep);
	rep = fsck(false);
	CHECK_EQ(rep->problems, 0);
	CHECK_EQ(rep->digests, 1); /* the orphan went, the other stays */
	CHECK_EQ(rep->problem[HOARD_FSCK_ORPHAN_DIGESTS], 0);
	CHECK_EQ(rep->raw_bytes, 2 * n);
	CHECK_EQ(rep->volumes, 1);
	hoard_fsck_report_free(rep);

	/* an orphan digest alone: clean, and the repair still deletes it */
	st = open_store();
	{
		struct hoard_id id;
		uint8_t k[SHA_ROW_KEY_LEN], v[SHA_ROW_VAL_LEN] = {0};

		memset(id.b, 0xcc, sizeof(id.b));
		sha_row_key(k, &id);
		CHECK_EQ(hoard_store_put(st, HOARD_CF_DEFAULT, k, sizeof(k), v,
					 sizeof(v)),
			 0);
	}
	hoard_store_close(st);
	rep = fsck(false);
	CHECK_EQ(rep->problems, 0);
	CHECK_EQ(rep->problem[HOARD_FSCK_ORPHAN_DIGESTS], 1);
	hoard_fsck_report_free(rep);
	rep = fsck(true);
	CHECK(rep->repaired);
	CHECK_EQ(rep->writes, 1);
	hoard_fsck_report_free(rep);
	rep = fsck(false);
	CHECK_EQ(rep->problem[HOARD_FSCK_ORPHAN_DIGESTS], 0);
	CHECK_EQ(rep->digests, 1);
	hoard_fsck_report_free(rep);

	/* the files are untouched */
	st = open_store();
	CHECK_EQ(hoard_fs_new(st, NULL, &fs), 0);
	CHECK_EQ(hoard_fs_volume(fs, "v", false, &root), 0);
	CHECK_EQ(read_file(fs, root, "d/a", got, n), 0);
	CHECK(memcmp(got, a, n) == 0);
	CHECK_EQ(read_file(fs, root, "b", got, n), 0);
	CHECK(memcmp(got, b, n) == 0);
	CHECK_EQ(hoard_fs_volume(fs, "lost", false, &root), -ENOENT);
	hoard_fs_free(fs);
	hoard_store_close(st);
	free(a);
	free(b);
	free(got);
}

static void test_text_and_json(void)
{
	struct hoard_fsck_report r = {.volumes = 1, .problems = 2};
	char *lost[] = {"v:/a \"quoted\"", "inode 77 (no name)"};
	char *j, *t;

	r.problem[HOARD_FSCK_CORRUPT_CHUNKS] = 2;
	r.lost = lost;
	r.n_lost = 2;
	j = hoard_fsck_json(&r);
	t = hoard_fsck_text(&r);
	CHECK(j && strstr(j, "\"clean\":false"));
	CHECK(j && strstr(j, "\"corrupt_chunks\":2"));
	CHECK(j &&
	      strstr(j, "[\"v:/a \\\"quoted\\\"\",\"inode 77 (no name)\"]"));
	CHECK(t && strstr(t, "v:/a \"quoted\""));
	CHECK(t && strstr(t, "2 problems found"));
	free(j);
	free(t);
	CHECK(!strcmp(hoard_fsck_problem_name(HOARD_FSCK_REFCOUNTS),
		      "wrong_refcounts"));
}

static void test_gc_json(void)
{
	struct hoard_gc_report g = {5, 3, 9, 7, 0.25}, back;
	char *j = hoard_gc_json(&g);

	CHECK(j != NULL);
	CHECK_EQ(hoard_gc_from_json(j ? j : "", &back), 0);
	CHECK_EQ(back.disk_before, 5);
	CHECK_EQ(back.disk_after, 3);
	CHECK_EQ(back.db_before, 9);
	CHECK_EQ(back.db_after, 7);
	CHECK(back.seconds > 0.24 && back.seconds < 0.26);
	CHECK_EQ(hoard_gc_from_json("{\"disk_bytes_before\":1}", &back),
		 -EBADMSG);
	free(j);
}

static void test_gc_run(void)
{
	struct hoard_store *st = open_store();
	struct hoard_gc_report g;

	CHECK_EQ(hoard_gc_run(st, &g), 0);
	CHECK(g.disk_before > 0 && g.disk_after > 0);
	CHECK(g.db_after > 0);
	hoard_store_close(st);
}

int main(void)
{
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(store_dir, sizeof(store_dir), "%s/store", tmp_root);
	CHECK_EQ(hoard_store_init(store_dir, NULL, NULL, 0), 0);
	test_fsck();
	test_text_and_json();
	test_gc_json();
	test_gc_run();
	tmp_tree_remove(tmp_root);
	return CHECK_DONE();
}
