// SPDX-License-Identifier: MIT
/*
 * Tests of the store (a real RocksDB store in a mkdtemp() directory), of
 * stats over hand-built records (docs/FORMAT.md 2.2, 2.3) and of the control
 * socket (FORMAT 6).
 *
 * The -EBUSY test forks before this process first touches RocksDB, so the
 * child starts without RocksDB's background threads half-copied.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hoard/ctl.h"
#include "hoard/stats.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "check.h"

static char tmp_root[] = "/tmp/hoard-test-store-XXXXXX";

/* ---- helpers ---- */

/* A malloc()ed path "dir/name" (aborts on ENOMEM). */
static char *join(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

static char *path_in(const char *name)
{
	return join(tmp_root, name);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	CHECK(fclose(f) == 0);
}

/* The whole file as a string ("" if unreadable). */
static char *read_text(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static int is_dir(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

static struct hoard_store *open_ok(const char *dir)
{
	struct hoard_store *st = NULL;
	char err[256] = "";
	int r = hoard_store_open(dir, &st, err, sizeof(err));

	CHECK_EQ(r, 0);
	if (r < 0)
		fprintf(stderr, "open %s: %s\n", dir, err);
	return st;
}

static int init_store(const char *dir, int level, const uint8_t *secret)
{
	struct hoard_store_init_opts o = {.zstd_level = level,
					  .secret = secret};
	char err[256] = "";
	int r = hoard_store_init(dir, &o, err, sizeof(err));

	if (r < 0)
		fprintf(stderr, "init %s: %d %s\n", dir, r, err);
	return r;
}

static void fixed_secret(uint8_t *s, uint8_t seed)
{
	for (int i = 0; i < HOARD_SECRET_SIZE; i++)
		s[i] = (uint8_t)(seed + i * 7);
}

static int rm_one(const char *p, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* ---- store directory ---- */

/* A second process holding the store makes open fail with -EBUSY. */
static void test_busy(void)
{
	char *dir = path_in("busy");
	int go[2], ready[2];
	char c = 0, err[256] = "";
	struct hoard_store *st = NULL;
	pid_t pid;
	int status, r;

	CHECK(pipe(go) == 0 && pipe(ready) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* child: wait for the store, hold it until told to stop */
		struct hoard_store *cst = NULL;
		int ok;

		if (read(go[0], &c, 1) != 1)
			_exit(2);
		ok = hoard_store_open(dir, &cst, NULL, 0) == 0;
		c = ok ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(3);
		hoard_store_close(cst);
		_exit(ok ? 0 : 1);
	}
	CHECK_EQ(init_store(dir, 1, NULL), 0);
	CHECK(write(go[1], "g", 1) == 1);
	CHECK(read(ready[0], &c, 1) == 1);
	CHECK_EQ(c, 'y');

	r = hoard_store_open(dir, &st, err, sizeof(err));
	CHECK_EQ(r, -EBUSY);
	CHECK(strlen(err) > 0);
	CHECK(strstr(err, "in use") != NULL);
	CHECK_EQ(hoard_store_lock_owner(dir), pid);

	CHECK(write(go[1], "s", 1) == 1);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* released: opens now, and nobody else owns the lock */
	st = open_ok(dir);
	CHECK_EQ(hoard_store_lock_owner(dir), getpid());
	hoard_store_close(st);
	CHECK_EQ(hoard_store_lock_owner(dir), 0);
	close(go[0]);
	close(go[1]);
	close(ready[0]);
	close(ready[1]);
	free(dir);
}

static void test_init(void)
{
	char *dir = path_in("init/nested/store");
	char *marker, *db, *lock, *before;
	uint8_t key1[HOARD_SECRET_SIZE];
	struct hoard_store *st;
	char err[256] = "";

	CHECK_EQ(init_store(dir, 1, NULL), 0);
	marker = join(dir, "HOARD");
	db = join(dir, "db");
	lock = join(dir, "lock");
	CHECK(strcmp(read_text(marker), "hoard-store 1\n") == 0);
	CHECK(is_dir(db));
	CHECK(exists(lock));

	st = open_ok(dir);
	if (st)
		memcpy(key1, hoard_store_key(st)->secret, sizeof(key1));
	CHECK_EQ(hoard_store_zstd_level(st), 1);
	CHECK(strcmp(hoard_store_dir(st), dir) == 0);
	hoard_store_close(st);

	/* again: -EEXIST, with an explanation, and nothing changed */
	before = strdup(read_text(marker));
	CHECK_EQ(hoard_store_init(dir, NULL, err, sizeof(err)), -EEXIST);
	CHECK(strlen(err) > 0);
	CHECK(strcmp(read_text(marker), before) == 0);
	st = open_ok(dir);
	if (st)
		CHECK(memcmp(hoard_store_key(st)->secret, key1, sizeof(key1)) ==
		      0);
	hoard_store_close(st);
	free(before);

	/* bad levels */
	free(dir);
	dir = path_in("init-bad-level");
	CHECK_EQ(hoard_store_init(
			 dir, &(struct hoard_store_init_opts){.zstd_level = 20},
			 NULL, 0),
		 -EINVAL);
	CHECK_EQ(hoard_store_init(
			 dir, &(struct hoard_store_init_opts){.zstd_level = -1},
			 NULL, 0),
		 -EINVAL);

	/* a foreign, non-empty directory is left alone */
	free(dir);
	dir = path_in("init-foreign");
	CHECK(mkdir(dir, 0700) == 0);
	free(marker);
	marker = join(dir, "precious");
	write_file(marker, "data\n");
	CHECK_EQ(hoard_store_init(dir, NULL, NULL, 0), -ENOTEMPTY);
	CHECK(strcmp(read_text(marker), "data\n") == 0);

	free(marker);
	free(db);
	free(lock);
	free(dir);
}

static void test_open_errors(void)
{
	char *missing = path_in("does-not-exist");
	char *foreign = path_in("foreign");
	char *badmark = path_in("badmarker");
	char *newer = path_in("newer");
	char *p, err[256] = "";
	struct hoard_store *st = NULL;

	CHECK_EQ(hoard_store_open(missing, &st, err, sizeof(err)), -ENOENT);
	CHECK(strlen(err) > 0);
	CHECK(st == NULL);

	CHECK(mkdir(foreign, 0700) == 0);
	p = join(foreign, "somefile");
	write_file(p, "x");
	free(p);
	err[0] = '\0';
	CHECK_EQ(hoard_store_open(foreign, &st, err, sizeof(err)),
		 -EMEDIUMTYPE);
	CHECK(strlen(err) > 0);

	CHECK(mkdir(badmark, 0700) == 0);
	p = join(badmark, "HOARD");
	write_file(p, "not a hoard marker\n");
	free(p);
	CHECK_EQ(hoard_store_open(badmark, &st, NULL, 0), -EMEDIUMTYPE);

	/* a store of a newer format is refused, before touching the db */
	CHECK_EQ(init_store(newer, 1, NULL), 0);
	p = join(newer, "HOARD");
	write_file(p, "hoard-store 99\n");
	err[0] = '\0';
	CHECK_EQ(hoard_store_open(newer, &st, err, sizeof(err)),
		 -EPROTONOSUPPORT);
	CHECK(strlen(err) > 0);
	write_file(p, "hoard-store 1\n");
	st = open_ok(newer);
	hoard_store_close(st);
	free(p);

	hoard_store_close(NULL);
	free(missing);
	free(foreign);
	free(badmark);
	free(newer);
}

static void test_settings_persist(void)
{
	char *dir = path_in("settings"), *dir2 = path_in("settings-random");
	uint8_t secret[HOARD_SECRET_SIZE], key2[HOARD_SECRET_SIZE];
	struct hoard_store *st;
	void *val = NULL;
	size_t len = 0;

	fixed_secret(secret, 42);
	CHECK_EQ(init_store(dir, 7, secret), 0);
	for (int round = 0; round < 2; round++) {
		st = open_ok(dir);
		if (!st)
			break;
		CHECK(memcmp(hoard_store_key(st)->secret, secret,
			     sizeof(secret)) == 0);
		CHECK_EQ(hoard_store_zstd_level(st), 7);
		CHECK_EQ(hoard_store_get(st, HOARD_CF_DEFAULT, "secret", 6,
					 &val, &len),
			 0);
		CHECK_EQ(len, HOARD_SECRET_SIZE);
		CHECK(val && memcmp(val, secret, sizeof(secret)) == 0);
		free(val);
		val = NULL;
		hoard_store_close(st);
	}

	/* a generated secret persists too, and is not the fixed one */
	CHECK_EQ(init_store(dir2, 0, NULL), 0);
	st = open_ok(dir2);
	if (st) {
		memcpy(key2, hoard_store_key(st)->secret, sizeof(key2));
		CHECK(memcmp(key2, secret, sizeof(secret)) != 0);
		CHECK_EQ(hoard_store_zstd_level(st), 0);
		hoard_store_close(st);
	}
	st = open_ok(dir2);
	if (st)
		CHECK(memcmp(hoard_store_key(st)->secret, key2, sizeof(key2)) ==
		      0);
	hoard_store_close(st);
	free(dir);
	free(dir2);
}

/* ---- key-value operations ---- */

static void test_kv(struct hoard_store *st)
{
	uint8_t buf[8];
	struct hoard_batch *b;
	void *val = NULL;
	size_t len = 0;

	CHECK_EQ(hoard_store_put(st, HOARD_CF_XATTRS, "k1", 2, "hello", 5), 0);
	CHECK_EQ(hoard_store_exists(st, HOARD_CF_XATTRS, "k1", 2), 1);
	CHECK_EQ(hoard_store_exists(st, HOARD_CF_XATTRS, "k2", 2), 0);
	/* column families are separate key spaces */
	CHECK_EQ(hoard_store_exists(st, HOARD_CF_DIRENTS, "k1", 2), 0);

	CHECK_EQ(hoard_store_get(st, HOARD_CF_XATTRS, "k1", 2, &val, &len), 0);
	CHECK_EQ(len, 5);
	CHECK(val && memcmp(val, "hello", 5) == 0);
	free(val);
	val = NULL;
	CHECK_EQ(hoard_store_get(st, HOARD_CF_XATTRS, "k2", 2, &val, &len),
		 -ENOENT);
	CHECK(val == NULL);

	len = 0;
	CHECK_EQ(hoard_store_get_into(st, HOARD_CF_XATTRS, "k1", 2, buf,
				      sizeof(buf), &len),
		 0);
	CHECK_EQ(len, 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ(hoard_store_get_into(st, HOARD_CF_XATTRS, "k1", 2, buf, 3,
				      &len),
		 -ENOBUFS);
	CHECK_EQ(len, 5);
	CHECK_EQ(hoard_store_get_into(st, HOARD_CF_XATTRS, "nope", 4, buf,
				      sizeof(buf), &len),
		 -ENOENT);

	/* overwrite */
	CHECK_EQ(hoard_store_put(st, HOARD_CF_XATTRS, "k1", 2, "bye", 3), 0);
	CHECK_EQ(hoard_store_get_into(st, HOARD_CF_XATTRS, "k1", 2, buf,
				      sizeof(buf), &len),
		 0);
	CHECK(len == 3 && memcmp(buf, "bye", 3) == 0);

	/* an empty value (orphans) exists */
	hoard_put_be64(buf, 77);
	CHECK_EQ(hoard_store_put(st, HOARD_CF_ORPHANS, buf, 8, "", 0), 0);
	CHECK_EQ(hoard_store_exists(st, HOARD_CF_ORPHANS, buf, 8), 1);
	CHECK_EQ(hoard_store_get(st, HOARD_CF_ORPHANS, buf, 8, &val, &len), 0);
	CHECK_EQ(len, 0);
	free(val);
	val = NULL;

	/* delete goes through a batch */
	b = hoard_batch_new(st);
	CHECK(b != NULL);
	hoard_batch_delete(b, HOARD_CF_XATTRS, "k1", 2);
	hoard_batch_delete(b, HOARD_CF_ORPHANS, buf, 8);
	CHECK_EQ(hoard_batch_count(b), 2);
	CHECK_EQ(hoard_store_exists(st, HOARD_CF_XATTRS, "k1", 2), 1);
	CHECK_EQ(hoard_store_write(st, b, true), 0);
	hoard_batch_free(b);
	CHECK_EQ(hoard_store_exists(st, HOARD_CF_XATTRS, "k1", 2), 0);
	CHECK_EQ(hoard_store_exists(st, HOARD_CF_ORPHANS, buf, 8), 0);
	CHECK_EQ(hoard_store_sync(st), 0);
	hoard_batch_free(NULL);
}

static void test_batch(struct hoard_store *st)
{
	struct hoard_batch *b = hoard_batch_new(st);
	uint8_t key[12], val[16];
	size_t len;
	int before = 0, after = 0, right = 0;

	CHECK(b != NULL);
	if (!b)
		return;
	for (uint32_t i = 0; i < 100; i++) {
		memcpy(key, "batch", 5);
		hoard_put_be32(key + 5, i);
		hoard_put_be32(val, i * 3);
		hoard_batch_put(b, HOARD_CF_XATTRS, key, 9, val, 4);
	}
	/* put then delete in one batch: the delete wins */
	hoard_batch_put(b, HOARD_CF_XATTRS, "gone", 4, "x", 1);
	hoard_batch_delete(b, HOARD_CF_XATTRS, "gone", 4);
	CHECK_EQ(hoard_batch_count(b), 102);

	for (uint32_t i = 0; i < 100; i++) {
		memcpy(key, "batch", 5);
		hoard_put_be32(key + 5, i);
		before += hoard_store_exists(st, HOARD_CF_XATTRS, key, 9);
	}
	CHECK_EQ(before, 0);

	CHECK_EQ(hoard_store_write(st, b, false), 0);
	hoard_batch_free(b);
	for (uint32_t i = 0; i < 100; i++) {
		memcpy(key, "batch", 5);
		hoard_put_be32(key + 5, i);
		after += hoard_store_exists(st, HOARD_CF_XATTRS, key, 9);
		if (hoard_store_get_into(st, HOARD_CF_XATTRS, key, 9, val,
					 sizeof(val), &len) == 0 &&
		    len == 4 && hoard_get_be32(val) == i * 3)
			right++;
	}
	CHECK_EQ(after, 100);
	CHECK_EQ(right, 100);
	CHECK_EQ(hoard_store_exists(st, HOARD_CF_XATTRS, "gone", 4), 0);
}

static void ext_key(uint8_t *k, uint64_t ino, uint64_t off)
{
	hoard_put_be64(k, ino);
	hoard_put_be64(k + 8, off);
}

/* Key of the iterator's position as (ino, off); ino 0 when invalid. */
static void iter_at(struct hoard_iter *it, uint64_t *ino, uint64_t *off)
{
	const uint8_t *k;
	size_t n;

	*ino = *off = 0;
	if (!hoard_iter_valid(it))
		return;
	k = hoard_iter_key(it, &n);
	CHECK_EQ(n, 16);
	if (n != 16)
		return;
	*ino = hoard_get_be64(k);
	*off = hoard_get_be64(k + 8);
}

static void test_iter(struct hoard_store *st)
{
	static const uint64_t keys[][2] = {
		{19, 5},
		{20, 0},
		{20, 100},
		{20, 200},
		{21, 0},
		{0x100000014ULL, 0}, /* shares no 8-byte prefix with 20 */
	};
	uint8_t k[16], p[8];
	struct hoard_iter *it;
	uint64_t ino, off, n = 0, last = 0;
	size_t vlen;
	int sorted = 1;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		uint8_t v[20] = {0};

		ext_key(k, keys[i][0], keys[i][1]);
		hoard_put_be32(v + 16, (uint32_t)i);
		CHECK_EQ(hoard_store_put(st, HOARD_CF_EXTENTS, k, 16, v, 20),
			 0);
	}

	/* the whole column family, in numeric order */
	it = hoard_iter_new(st, HOARD_CF_EXTENTS, NULL, 0);
	CHECK(it != NULL);
	for (; it && hoard_iter_valid(it); hoard_iter_next(it)) {
		iter_at(it, &ino, &off);
		if (ino * 1000 + off < last)
			sorted = 0;
		last = ino * 1000 + off;
		n++;
	}
	CHECK_EQ(n, 6);
	CHECK(sorted);
	hoard_iter_free(it);

	/* prefix: exactly ino 20's extents, in order, with their values */
	hoard_put_be64(p, 20);
	it = hoard_iter_new(st, HOARD_CF_EXTENTS, p, 8);
	CHECK(it != NULL);
	if (!it)
		return;
	n = 0;
	for (; hoard_iter_valid(it); hoard_iter_next(it)) {
		const uint8_t *v = hoard_iter_value(it, &vlen);

		iter_at(it, &ino, &off);
		CHECK_EQ(ino, 20);
		CHECK_EQ(off, n * 100);
		CHECK_EQ(vlen, 20);
		CHECK_EQ(hoard_get_be32(v + 16), n + 1);
		n++;
	}
	CHECK_EQ(n, 3);

	ext_key(k, 20, 150);
	hoard_iter_seek(it, k, 16);
	iter_at(it, &ino, &off);
	CHECK(ino == 20 && off == 200);
	hoard_iter_seek_for_prev(it, k, 16);
	iter_at(it, &ino, &off);
	CHECK(ino == 20 && off == 100);

	ext_key(k, 20, 100); /* exact hits */
	hoard_iter_seek(it, k, 16);
	iter_at(it, &ino, &off);
	CHECK(ino == 20 && off == 100);
	hoard_iter_seek_for_prev(it, k, 16);
	iter_at(it, &ino, &off);
	CHECK(ino == 20 && off == 100);

	ext_key(k, 20, UINT64_MAX);
	hoard_iter_seek_for_prev(it, k, 16);
	iter_at(it, &ino, &off);
	CHECK(ino == 20 && off == 200);
	hoard_iter_seek(it, k, 16); /* past the prefix: (21, 0) is out */
	CHECK(!hoard_iter_valid(it));

	hoard_iter_seek_for_prev(it, p, 8); /* before (20, 0): (19, 5) is out */
	CHECK(!hoard_iter_valid(it));
	hoard_iter_free(it);

	/* a prefix with no keys */
	hoard_put_be64(p, 22);
	it = hoard_iter_new(st, HOARD_CF_EXTENTS, p, 8);
	CHECK(it && !hoard_iter_valid(it));
	hoard_iter_free(it);
	hoard_iter_free(NULL);

	/* clean up for the stats test */
	{
		struct hoard_batch *b = hoard_batch_new(st);

		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			ext_key(k, keys[i][0], keys[i][1]);
			hoard_batch_delete(b, HOARD_CF_EXTENTS, k, 16);
		}
		CHECK_EQ(hoard_store_write(st, b, false), 0);
		hoard_batch_free(b);
	}
}

/* ---- stats over hand-built records ---- */

static void put_volume(struct hoard_store *st, const char *name, uint64_t root)
{
	uint8_t v[8];

	hoard_put_be64(v, root);
	CHECK_EQ(
		hoard_store_put(st, HOARD_CF_VOLUMES, name, strlen(name), v, 8),
		0);
}

/* An inode record, FORMAT 2.2. */
static void put_inode(struct hoard_store *st, uint64_t ino, uint32_t mode,
		      uint32_t nlink, uint64_t size, uint64_t vol)
{
	uint8_t k[8], v[80 + 16] = {0};
	size_t len = 80;

	v[0] = 1;
	hoard_put_be32(v + 4, mode);
	hoard_put_be32(v + 8, 1000);
	hoard_put_be32(v + 12, 1000);
	hoard_put_be32(v + 16, nlink);
	hoard_put_be64(v + 24, size);
	hoard_put_be64(v + 32, vol);
	hoard_put_be64(v + 40, 1700000000);
	hoard_put_be64(v + 52, 1700000000);
	hoard_put_be64(v + 64, 1700000000);
	if (S_ISLNK(mode)) {
		memset(v + 80, 't', size);
		len += size;
	}
	hoard_put_be64(k, ino);
	CHECK_EQ(hoard_store_put(st, HOARD_CF_INODES, k, 8, v, len), 0);
}

static void mk_id(struct hoard_id *id, uint8_t tag)
{
	memset(id->b, 0, sizeof(id->b));
	id->b[0] = 0xc0;
	id->b[15] = tag;
}

static void put_extent(struct hoard_store *st, uint64_t ino, uint64_t off,
		       uint8_t tag, uint32_t len)
{
	uint8_t k[16], v[20];
	struct hoard_id id;

	mk_id(&id, tag);
	ext_key(k, ino, off);
	memcpy(v, id.b, 16);
	hoard_put_be32(v + 16, len);
	CHECK_EQ(hoard_store_put(st, HOARD_CF_EXTENTS, k, 16, v, 20), 0);
}

/* A chunk record, FORMAT 2.3. */
static void put_chunk(struct hoard_store *st, uint8_t tag, uint32_t raw,
		      uint32_t frame, uint64_t refs)
{
	uint8_t v[24] = {0};
	struct hoard_id id;

	mk_id(&id, tag);
	v[0] = 1;
	v[1] = 1;
	hoard_put_be32(v + 4, raw);
	hoard_put_be32(v + 8, frame);
	hoard_put_be64(v + 16, refs);
	CHECK_EQ(hoard_store_put(st, HOARD_CF_CHUNKS, id.b, 16, v, 24), 0);
}

static void check_figs(const struct hoard_stats_figs *f, uint64_t files,
		       uint64_t dirs, uint64_t symlinks, uint64_t others,
		       uint64_t logical, uint64_t unique, uint64_t stored,
		       uint64_t chunks)
{
	CHECK_EQ(f->files, files);
	CHECK_EQ(f->dirs, dirs);
	CHECK_EQ(f->symlinks, symlinks);
	CHECK_EQ(f->others, others);
	CHECK_EQ(f->logical_bytes, logical);
	CHECK_EQ(f->unique_bytes, unique);
	CHECK_EQ(f->stored_bytes, stored);
	CHECK_EQ(f->chunks, chunks);
}

static int figs_equal(const struct hoard_stats_figs *a,
		      const struct hoard_stats_figs *b)
{
	return a->files == b->files && a->dirs == b->dirs &&
	       a->symlinks == b->symlinks && a->others == b->others &&
	       a->logical_bytes == b->logical_bytes &&
	       a->unique_bytes == b->unique_bytes &&
	       a->stored_bytes == b->stored_bytes && a->chunks == b->chunks;
}

static void check_roundtrip(const struct hoard_stats *s)
{
	struct hoard_stats *back = NULL;
	char *json = hoard_stats_json(s);

	CHECK(json != NULL);
	if (!json)
		return;
	CHECK_EQ(hoard_stats_from_json(json, &back), 0);
	if (back) {
		CHECK(figs_equal(&back->total, &s->total));
		CHECK_EQ(back->db_bytes, s->db_bytes);
		CHECK_EQ(back->n_volumes, s->n_volumes);
		for (size_t i = 0; i < s->n_volumes && i < back->n_volumes;
		     i++) {
			CHECK(strcmp(back->volumes[i].name,
				     s->volumes[i].name) == 0);
			CHECK(figs_equal(&back->volumes[i].f,
					 &s->volumes[i].f));
		}
	}
	hoard_stats_free(back);
	free(json);
}

static void test_stats(struct hoard_store *st)
{
	struct hoard_stats *s = NULL;
	char *json, *text, expect[512];

	/* an empty store */
	CHECK_EQ(hoard_stats_compute(st, &s), 0);
	if (!s)
		return;
	check_figs(&s->total, 0, 0, 0, 0, 0, 0, 0, 0);
	CHECK_EQ(s->n_volumes, 0);
	json = hoard_stats_json(s);
	snprintf(expect, sizeof(expect),
		 "{\"files\":0,\"logical_bytes\":0,\"unique_bytes\":0,"
		 "\"stored_bytes\":0,\"chunks\":0,\"dirs\":0,\"symlinks\":0,"
		 "\"others\":0,\"db_bytes\":%llu,\"dedup_ratio\":1.0,"
		 "\"volumes\":{}}\n",
		 (unsigned long long)s->db_bytes);
	CHECK(json && strcmp(json, expect) == 0);
	free(json);
	hoard_stats_free(s);
	s = NULL;

	/*
	 * Two volumes sharing chunk A.
	 *   alpha (root 16): dir 19, file 18 (A, B), symlink 20, empty file
	 *                    24, file 25 with a hole and B again
	 *   beta  (root 17): file 21 with two links (A, C), fifo 22,
	 *                    unlinked but open file 23 (D)
	 *   inode 30 names a volume that does not exist: totals only
	 *   chunk E has refcount 0: counted nowhere
	 */
	put_volume(st, "alpha", 16);
	put_volume(st, "beta", 17);
	put_inode(st, 16, S_IFDIR | 0755, 3, 0, 16);
	put_inode(st, 17, S_IFDIR | 0755, 2, 0, 17);
	put_inode(st, 18, S_IFREG | 0644, 1, 100000, 16);
	put_inode(st, 19, S_IFDIR | 0755, 2, 0, 16);
	put_inode(st, 20, S_IFLNK | 0777, 1, 5, 16);
	put_inode(st, 21, S_IFREG | 0644, 2, 70000, 17);
	put_inode(st, 22, S_IFIFO | 0644, 1, 0, 17);
	put_inode(st, 23, S_IFREG | 0644, 0, 1000, 17);
	put_inode(st, 24, S_IFREG | 0644, 1, 0, 16);
	put_inode(st, 25, S_IFREG | 0644, 1, 200000, 16);
	put_inode(st, 30, S_IFREG | 0600, 1, 7, 99);
	put_extent(st, 18, 0, 'A', 65536);
	put_extent(st, 18, 65536, 'B', 34464);
	put_extent(st, 21, 0, 'A', 65536);
	put_extent(st, 21, 65536, 'C', 4464);
	put_extent(st, 23, 0, 'D', 1000);
	put_extent(st, 25, 131072, 'B', 34464);
	put_extent(st, 30, 0, 'F', 7);
	put_chunk(st, 'A', 65536, 30000, 2);
	put_chunk(st, 'B', 34464, 34465, 2);
	put_chunk(st, 'C', 4464, 2000, 1);
	put_chunk(st, 'D', 1000, 1001, 1);
	put_chunk(st, 'E', 999, 500, 0);
	put_chunk(st, 'F', 7, 8, 1);

	CHECK_EQ(hoard_stats_compute(st, &s), 0);
	if (!s)
		return;
	/* files 18 21 24 25 30; dirs 16 17 19; chunks A B C D F */
	check_figs(&s->total, 5, 3, 1, 1, 370007,
		   65536 + 34464 + 4464 + 1000 + 7,
		   30000 + 34465 + 2000 + 1001 + 8, 5);
	CHECK_EQ(s->n_volumes, 2);
	if (s->n_volumes == 2) {
		CHECK(strcmp(s->volumes[0].name, "alpha") == 0);
		CHECK_EQ(s->volumes[0].root_ino, 16);
		check_figs(&s->volumes[0].f, 3, 2, 1, 0, 300000, 65536 + 34464,
			   30000 + 34465, 2);
		CHECK(strcmp(s->volumes[1].name, "beta") == 0);
		CHECK_EQ(s->volumes[1].root_ino, 17);
		check_figs(&s->volumes[1].f, 1, 1, 0, 1, 70000,
			   65536 + 4464 + 1000, 30000 + 2000 + 1001, 3);
	}

	json = hoard_stats_json(s);
	CHECK(json != NULL);
	if (json) {
		static const char head[] =
			"{\"files\":5,\"logical_bytes\":370007,"
			"\"unique_bytes\":105471,\"stored_bytes\":67474,"
			"\"chunks\":5,\"dirs\":3,\"symlinks\":1,"
			"\"others\":1,\"db_bytes\":";

		CHECK(strncmp(json, head, sizeof(head) - 1) == 0);
		/* 370007 / 67474 = 5.4837... */
		CHECK(strstr(json,
			     ",\"dedup_ratio\":5.484,\"volumes\":{"
			     "\"alpha\":{\"files\":3,\"logical_bytes\":300000,"
			     "\"unique_bytes\":100000,\"stored_bytes\":64465,"
			     "\"chunks\":2,\"dirs\":2,\"symlinks\":1,"
			     "\"others\":0,\"dedup_ratio\":4.654},"
			     "\"beta\":{\"files\":1,\"logical_bytes\":70000,"
			     "\"unique_bytes\":71000,\"stored_bytes\":33001,"
			     "\"chunks\":3,\"dirs\":1,\"symlinks\":0,"
			     "\"others\":1,\"dedup_ratio\":2.121}}}\n") !=
		      NULL);
	}
	free(json);
	check_roundtrip(s);

	text = hoard_stats_text(s);
	CHECK(text != NULL);
	if (text) {
		CHECK(strstr(text, "alpha") != NULL);
		CHECK(strstr(text, "beta") != NULL);
		CHECK(strstr(text, "(total)") != NULL);
		CHECK(strstr(text, "361.3 KiB") != NULL); /* 370007 B */
		CHECK(strstr(text, "5.48x") != NULL);
	}
	free(text);
	hoard_stats_free(s);
	hoard_stats_free(NULL);
}

/* JSON escaping and reading, without a store. */
static void test_stats_json(void)
{
	struct hoard_stats_volume vols[3] = {0};
	struct hoard_stats s = {.n_volumes = 3, .volumes = vols};
	struct hoard_stats *back = NULL;
	static const char *const bad[] = {
		"",
		"{",
		"[]",
		"{\"files\":-1}",
		"{\"files\":1} x",
		"{\"files\":99999999999999999999}",
		"{\"files\":\"1\"}",
		"{\"volumes\":{\"a\":1}}",
		"{\"volumes\":{\"a\\u0000\":{}}}",
		"{\"files\":1,}",
		"{\"volumes\":{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":{}}}",
	};
	char *json;

	strcpy(vols[0].name, "we\"ird\\name\x01");
	strcpy(vols[1].name, "caf\xc3\xa9");
	strcpy(vols[2].name, "bad\xff");
	vols[0].f.files = 1;
	vols[1].f.dirs = 2;
	vols[2].f.chunks = UINT64_MAX;
	json = hoard_stats_json(&s);
	CHECK(json != NULL);
	if (!json)
		return;
	CHECK(strstr(json, "\"we\\\"ird\\\\name\\u0001\":{\"files\":1,") !=
	      NULL);
	CHECK(strstr(json, "\"caf\xc3\xa9\":{") != NULL);
	/* not UTF-8: U+FFFD (raw UTF-8, as jansson writes it) */
	CHECK(strstr(json, "\"bad\xef\xbf\xbd\":{") != NULL);
	/* jansson's integers are signed 64-bit: clamped (json.h) */
	CHECK(strstr(json, "\"chunks\":9223372036854775807") != NULL);
	CHECK_EQ(hoard_stats_from_json(json, &back), 0);
	if (back && back->n_volumes == 3) {
		CHECK(strcmp(back->volumes[0].name, vols[0].name) == 0);
		CHECK(strcmp(back->volumes[1].name, vols[1].name) == 0);
		CHECK(strcmp(back->volumes[2].name, "bad\xef\xbf\xbd") == 0);
		CHECK_EQ(back->volumes[0].f.files, 1);
		CHECK_EQ(back->volumes[1].f.dirs, 2);
		CHECK(back->volumes[2].f.chunks == INT64_MAX);
	}
	hoard_stats_free(back);
	back = NULL;
	free(json);

	/* unknown keys (a newer daemon) are skipped */
	CHECK_EQ(hoard_stats_from_json(
			 " {\"files\": 3, \"new\": {\"a\": [1, -2.5e3, {\"b\": "
			 "null}], \"c\": true}, \"volumes\": {\"v\": "
			 "{\"dirs\": 4, \"extra\": "
			 "\"\\u00e9\\ud83d\\ude00\"}}}\n",
			 &back),
		 0);
	if (back) {
		CHECK_EQ(back->total.files, 3);
		CHECK_EQ(back->n_volumes, 1);
		CHECK(back->n_volumes == 1 &&
		      strcmp(back->volumes[0].name, "v") == 0 &&
		      back->volumes[0].f.dirs == 4);
	}
	hoard_stats_free(back);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		back = NULL;
		CHECK_EQ(hoard_stats_from_json(bad[i], &back), -EBADMSG);
		CHECK(back == NULL);
	}
}

/* ---- the control socket ---- */

static int ctl_handler(void *ud, const char *req, char **ret_out)
{
	int *calls = ud;

	__atomic_fetch_add(calls, 1, __ATOMIC_RELAXED);
	if (!strcmp(req, "ping")) {
		*ret_out = strdup("pong");
		return 0;
	}
	if (!strncmp(req, "echo ", 5)) {
		*ret_out = strdup(req + 5);
		return 0;
	}
	if (!strcmp(req, "empty"))
		return 0;
	if (!strcmp(req, "big")) {
		char *p = malloc((1 << 20) + 1);

		if (!p)
			return -ENOMEM;
		memset(p, 'x', 1 << 20);
		p[1 << 20] = '\0';
		*ret_out = p;
		return 0;
	}
	if (!strcmp(req, "deny")) {
		*ret_out = strdup("not you\nreally");
		return -EACCES;
	}
	if (!strcmp(req, "enoent")) {
		*ret_out = strdup("no such volume");
		return -ENOENT;
	}
	if (!strcmp(req, "bare"))
		return -EIO;
	return -EINVAL;
}

static void *ping_thread(void *arg)
{
	const char *path = arg;
	long ok = 0;

	for (int i = 0; i < 20; i++) {
		char *out = NULL;

		if (hoard_ctl_call(path, "ping", &out) == 0 && out &&
		    !strcmp(out, "pong"))
			ok++;
		free(out);
	}
	return (void *)ok;
}

/* A socket file nobody listens on. */
static void make_stale_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	CHECK(fd >= 0 && strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	close(fd);
}

static void ctl_expect(const char *path, const char *req, int want_r,
		       const char *want_out)
{
	char *out = NULL;
	int r = hoard_ctl_call(path, req, &out);

	CHECK_EQ(r, want_r);
	if (want_out) {
		CHECK(out != NULL);
		if (out && strcmp(out, want_out))
			fprintf(stderr,
				"ctl %.20s: got '%.60s', want '%.60s'\n", req,
				out, want_out);
		CHECK(out && strcmp(out, want_out) == 0);
	} else {
		CHECK(out == NULL);
	}
	free(out);
}

static void test_ctl(void)
{
	char *path = path_in("ctl.sock"), *other = path_in("ctl-file");
	struct hoard_ctl_server *srv = NULL, *srv2 = NULL;
	char *req, *out = NULL, *longdir, *longpath;
	pthread_t th[4];
	struct stat sb;
	int calls = 0;
	long total = 0;

	CHECK_EQ(hoard_ctl_server_start(path, ctl_handler, &calls, &srv), 0);
	CHECK(stat(path, &sb) == 0 && S_ISSOCK(sb.st_mode));
	CHECK_EQ(sb.st_mode & 0777, 0600);

	ctl_expect(path, "ping", 0, "pong");
	ctl_expect(path, "ping\n", 0, "pong");
	ctl_expect(path, "echo hello  world", 0, "hello  world");
	ctl_expect(path, "empty", 0, "");
	ctl_expect(path, "deny", -EACCES, "not you really");
	ctl_expect(path, "enoent", -ENOENT, "no such volume");
	ctl_expect(path, "bare", -EIO, strerror(EIO));
	ctl_expect(path, "what", -EINVAL, strerror(EINVAL));
	ctl_expect(path, "two\nlines", -EINVAL, NULL);
	CHECK_EQ(hoard_ctl_call(path, "ping", NULL), 0);

	CHECK_EQ(hoard_ctl_call(path, "big", &out), 0);
	CHECK(out && strlen(out) == 1 << 20 && out[12345] == 'x');
	free(out);

	/* 64 KiB lines are served, longer ones are refused */
	req = malloc(70001);
	memcpy(req, "echo ", 5);
	memset(req + 5, 'e', 70000 - 5);
	req[65536] = '\0';
	out = NULL;
	CHECK_EQ(hoard_ctl_call(path, req, &out), 0);
	CHECK(out && strlen(out) == 65536 - 5);
	free(out);
	req[65536] = 'e';
	req[70000] = '\0';
	out = NULL;
	CHECK_EQ(hoard_ctl_call(path, req, &out), -EMSGSIZE);
	CHECK(out != NULL);
	free(out);
	free(req);

	/* clients at once are served one by one */
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, ping_thread, path) == 0);
	for (int i = 0; i < 4; i++) {
		void *ok;

		pthread_join(th[i], &ok);
		total += (long)ok;
	}
	CHECK_EQ(total, 80);

	/* a live socket is not taken over */
	CHECK_EQ(hoard_ctl_server_start(path, ctl_handler, &calls, &srv2),
		 -EADDRINUSE);
	CHECK(srv2 == NULL);
	ctl_expect(path, "ping", 0, "pong");

	hoard_ctl_server_stop(srv);
	CHECK(!exists(path));
	CHECK_EQ(hoard_ctl_call(path, "ping", NULL), -ENOENT);
	CHECK_EQ(calls, 92);
	hoard_ctl_server_stop(NULL);

	/* a stale socket refuses, and a new server replaces it */
	make_stale_socket(path);
	out = NULL;
	CHECK_EQ(hoard_ctl_call(path, "ping", &out), -ECONNREFUSED);
	CHECK(out == NULL);
	srv = NULL;
	CHECK_EQ(hoard_ctl_server_start(path, ctl_handler, &calls, &srv), 0);
	ctl_expect(path, "ping", 0, "pong");
	hoard_ctl_server_stop(srv);

	/* not a socket: left alone */
	write_file(other, "keep");
	CHECK_EQ(hoard_ctl_server_start(other, ctl_handler, &calls, &srv),
		 -EEXIST);
	CHECK(strcmp(read_text(other), "keep") == 0);

	/* a path longer than sun_path */
	longdir = path_in(
		"long-directory-name-long-directory-name-long-"
		"directory-name-long-directory-name-long-directory-name");
	longpath = join(longdir, "control.sock");
	CHECK(strlen(longpath) >= sizeof(((struct sockaddr_un *)0)->sun_path));
	CHECK(mkdir(longdir, 0700) == 0);
	srv = NULL;
	CHECK_EQ(hoard_ctl_server_start(longpath, ctl_handler, &calls, &srv),
		 0);
	ctl_expect(longpath, "echo long", 0, "long");
	hoard_ctl_server_stop(srv);
	CHECK(!exists(longpath));
	CHECK_EQ(hoard_ctl_call(longpath, "ping", NULL), -ENOENT);

	free(longpath);
	free(longdir);
	free(other);
	free(path);
}

/*
 * storecrc.c: the program's rocksdb::crc32c::Extend (what RocksDB calls
 * through the PLT) computes exactly the library's CRC32C: the check value,
 * chaining, and every length and alignment against the library's own
 * function (the next definition, dlsym RTLD_NEXT).
 */
typedef uint32_t (*crc_fn)(uint32_t, const char *, size_t);
uint32_t rdb_crc_extend(uint32_t crc, const char *p,
			size_t n) __asm__("_ZN7rocksdb6crc32c6ExtendEjPKcm");
bool store_crc_hw(void);

static void test_crc32c(void)
{
	crc_fn lib = (crc_fn)dlsym(RTLD_NEXT,
				   "_ZN7rocksdb6crc32c6ExtendEjPKcm");
	static char buf[70000];
	uint64_t seed = 7;

	CHECK_EQ(rdb_crc_extend(0, "123456789", 9), 0xe3069283u);
	CHECK_EQ(rdb_crc_extend(rdb_crc_extend(0, "1234", 4), "56789", 5),
		 0xe3069283u);
	if (__builtin_cpu_supports("sse4.2"))
		CHECK(store_crc_hw());
	CHECK(lib != NULL && lib != rdb_crc_extend);
	if (!lib)
		return;
	for (size_t i = 0; i < sizeof(buf); i++) {
		seed = seed * 6364136223846793005u + 1442695040888963407u;
		buf[i] = (char)(seed >> 56);
	}
	for (size_t off = 0; off < 9; off++)
		for (size_t n = 0; n + off <= sizeof(buf); n += 1 + n / 2)
			CHECK_EQ(rdb_crc_extend((uint32_t)n, buf + off, n),
				 lib((uint32_t)n, buf + off, n));
	/* around the three-lane blocks (storecrc.c: 3 x 8 KiB), and a CRC
	 * continued from one piece into the next */
	for (size_t k = 1; k <= 2; k++)
		for (size_t n = k * 24576 - 9; n <= k * 24576 + 9; n++)
			for (size_t off = 0; off < 9; off += 3) {
				uint32_t c = rdb_crc_extend(5, buf + off, 100);

				CHECK_EQ(rdb_crc_extend(c, buf + off + 100, n),
					 lib(lib(5, buf + off, 100),
					     buf + off + 100, n));
			}
}

int main(void)
{
	struct hoard_store *st;
	char *dir;

	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	test_busy(); /* first: it forks */
	test_crc32c();
	test_init();
	test_open_errors();
	test_settings_persist();

	dir = path_in("kv");
	CHECK_EQ(init_store(dir, 1, NULL), 0);
	st = open_ok(dir);
	if (st) {
		test_kv(st);
		test_batch(st);
		test_iter(st);
		test_stats(st);
		hoard_store_close(st);
	}
	free(dir);

	test_stats_json();
	test_ctl();

	nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return CHECK_DONE();
}
