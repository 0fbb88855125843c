// SPDX-License-Identifier: MIT
/*
 * fuzz_records: the record bytes of the store (docs/FORMAT.md section 2),
 * read by the filesystem core through its public API (fs.h), the way a
 * damaged store would be read.  The decoders are the core's (inode_decode,
 * chunk_rec_decode, and the extent, directory entry, volume and settings
 * reads inside meta.c, file.c, dir.c, store.c): this target reaches all of
 * them without a private header, so it keeps working when issue 15 item 2
 * moves them into one codec module.
 *
 * Once per process: a store in $TMPDIR with volume "v" holding a file "f"
 * (two chunks), a symlink "l" and a directory "d".  An input is one byte
 * naming a record, then the record's new value:
 *   0 f's inode   1 l's inode   2 d's inode   3 the chunk record of f's
 *   first chunk   4 f's first extent   5 the directory entry "f"
 *   6 the volume "v"   7..10 the settings format, zstd_level, chunker,
 *   secret (in a scratch store, opened again after the put)
 * The value is written with hoard_store_put, the core reads everything it
 * can (getattr, lookup, open and read, readlink, readdirplus, xattrs,
 * file info), then the old value goes back.  Promises: no crash, no leak,
 * results are a value or -errno; f reads back its own bytes or fails
 * (EIO, EBADMSG ...) unless its inode or extent was the record changed.
 *
 * Every input's value (the bytes after the first) also goes straight
 * through each decoder of hoard/records.h, as a value and as a key, the
 * way fsck and stats read them: a record that decodes must encode to one
 * that decodes to the same fields (and, for the records without reserved
 * bytes, to the same bytes).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "hoard/fs.h"
#include "hoard/records.h"
#include "hoard/store.h"
#include "hoard/util.h"

#define FILE_SIZE (150 * 1024)

static const char *const settings[] = {"format", "zstd_level", "chunker",
				       "secret"};

struct rec {
	enum hoard_cf cf;
	uint8_t key[64];
	size_t klen;
	void *val; /* the value to put back */
	size_t vlen;
};

static struct {
	char dir[4096];
	struct hoard_store *st;
	struct hoard_fs *fs;
	uint64_t root, f, l, d;
	uint8_t content[FILE_SIZE];
	struct rec recs[7];
} S;

static void die(const char *what, int r)
{
	fprintf(stderr, "fuzz_records: %s: %s\n", what, strerror(-r));
	abort();
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* At exit: the store goes, the handles stay open (reachable, so not a
 * leak; RocksDB's own statics may already be gone by now). */
static void cleanup(void)
{
	nftw(S.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void open_store(void)
{
	struct hoard_fs_opts o = {.cache_bytes = 1}; /* read records, not
						      * the cache */
	char err[512];
	int r = hoard_store_open(S.dir, &S.st, err, sizeof(err));

	if (r < 0) {
		fprintf(stderr, "fuzz_records: %s\n", err);
		abort();
	}
	r = hoard_fs_new(S.st, &o, &S.fs);
	if (r < 0)
		die("hoard_fs_new", r);
}

static void save(int i, enum hoard_cf cf, const void *key, size_t klen)
{
	struct rec *x = &S.recs[i];
	int r;

	x->cf = cf;
	memcpy(x->key, key, klen);
	x->klen = klen;
	r = hoard_store_get(S.st, cf, key, klen, &x->val, &x->vlen);
	if (r < 0)
		die("saving a record", r);
}

static void make_tree(void)
{
	struct hoard_ctx ctx = {0, 0};
	struct hoard_fh *fh;
	struct hoard_iter *it;
	struct stat st;
	uint64_t s = 0x9e3779b97f4a7c15ull;
	uint8_t k[64];
	const uint8_t *v;
	size_t vl;
	int r;

	r = hoard_fs_volume(S.fs, "v", true, &S.root);
	if (r < 0)
		die("volume", r);
	for (size_t i = 0; i < FILE_SIZE; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		S.content[i] = (uint8_t)s;
	}
	r = hoard_fs_create(S.fs, S.root, "f", S_IFREG | 0644, O_RDWR, &ctx,
			    &st, &fh);
	if (r < 0)
		die("create", r);
	S.f = st.st_ino;
	if (hoard_fs_write(S.fs, fh, S.content, FILE_SIZE, 0) != FILE_SIZE)
		die("write", -EIO);
	r = hoard_fs_flush(S.fs, fh);
	if (r < 0)
		die("flush", r);
	hoard_fs_release(S.fs, fh);
	hoard_fs_forget(S.fs, S.f, 1);
	r = hoard_fs_symlink(S.fs, S.root, "l", "some/target", &ctx, &st);
	if (r < 0)
		die("symlink", r);
	S.l = st.st_ino;
	hoard_fs_forget(S.fs, S.l, 1);
	r = hoard_fs_mkdir(S.fs, S.root, "d", S_IFDIR | 0755, &ctx, &st);
	if (r < 0)
		die("mkdir", r);
	S.d = st.st_ino;
	hoard_fs_forget(S.fs, S.d, 1);

	ino_key(k, S.f);
	save(0, HOARD_CF_INODES, k, 8);
	ino_key(k, S.l);
	save(1, HOARD_CF_INODES, k, 8);
	ino_key(k, S.d);
	save(2, HOARD_CF_INODES, k, 8);
	ino_key(k, S.f);
	it = hoard_iter_new(S.st, HOARD_CF_EXTENTS, k, 8);
	if (!it || !hoard_iter_valid(it))
		die("no extent", -ENOENT);
	v = hoard_iter_value(it, &vl);
	save(3, HOARD_CF_CHUNKS, v, 16); /* the id opens the extent value */
	v = hoard_iter_key(it, &vl);
	save(4, HOARD_CF_EXTENTS, v, vl);
	hoard_iter_free(it);
	ino_key(k, S.root);
	memcpy(k + 8, "f", 1);
	save(5, HOARD_CF_DIRENTS, k, 9);
	save(6, HOARD_CF_VOLUMES, "v", 1);
}

static void init(void)
{
	const char *tmp = getenv("TMPDIR");
	char err[512];
	int r;

	hoard_log_set_level(LOG_CRIT); /* corrupt records are logged */
	snprintf(S.dir, sizeof(S.dir), "%s/fuzz_records.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(S.dir))
		die("mkdtemp", -errno);
	atexit(cleanup);
	r = hoard_store_init(S.dir, NULL, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "fuzz_records: %s\n", err);
		abort();
	}
	open_store();
	make_tree();
}

static int fill(void *ud, const char *name, const struct stat *st, bool counted,
		off_t next_off)
{
	(void)name;
	(void)next_off;
	if (counted)
		hoard_fs_forget(ud, st->st_ino, 1);
	return 0;
}

/* Everything a reader of the volume does; f's bytes checked when
 * exact. */
static void read_all(bool exact)
{
	static uint8_t buf[FILE_SIZE + 4096];
	struct hoard_file_info fi;
	struct hoard_dirh *dh;
	struct hoard_fh *fh;
	struct stat st;
	char link[256], val[1024];
	uint64_t ino;
	ssize_t n;

	if (hoard_fs_volume(S.fs, "v", false, &ino) < 0)
		return; /* the volume record was the one changed */
	for (int i = 0; i < 3; i++) {
		uint64_t x = i == 0 ? S.f : i == 1 ? S.l : S.d;

		if (hoard_fs_getattr(S.fs, x, &st) == 0) {
			hoard_fs_readlink(S.fs, x, link, sizeof(link));
			hoard_fs_getxattr(S.fs, x, HOARD_INFO_XATTR, val,
					  sizeof(val));
			hoard_fs_listxattr(S.fs, x, val, sizeof(val));
			hoard_fs_file_info(S.fs, x, &fi);
		}
	}
	if (hoard_fs_lookup(S.fs, S.root, "f", &st) == 0) {
		ino = st.st_ino;
		if (hoard_fs_open(S.fs, ino, O_RDONLY, &fh) == 0) {
			n = hoard_fs_read(S.fs, fh, buf, sizeof(buf), 0);
			if (exact && n >= 0 &&
			    (n != FILE_SIZE || memcmp(buf, S.content, n)))
				fuzz_fail("f read back %zd wrong bytes", n);
			hoard_fs_release(S.fs, fh);
		}
		hoard_fs_forget(S.fs, ino, 1);
	}
	if (hoard_fs_opendir(S.fs, S.root, &dh) == 0) {
		hoard_fs_readdirplus(S.fs, dh, 0, fill, S.fs);
		hoard_fs_releasedir(S.fs, dh);
	}
}

/* A setting is read when the store opens: a scratch store of its own gets
 * the value, then is opened again (and thrown away). */
static void fuzz_setting(const char *name, const uint8_t *v, size_t n)
{
	struct hoard_store *st;
	struct hoard_fs *fs;
	struct hoard_fs_opts o = {.cache_bytes = 1};
	char dir[4200], err[512] = "";
	int r;

	snprintf(dir, sizeof(dir), "%s/setting", S.dir);
	r = hoard_store_init(dir, NULL, err, sizeof(err));
	if (r == 0)
		r = hoard_store_open(dir, &st, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "fuzz_records: %s\n", err);
		abort();
	}
	r = hoard_store_put(st, HOARD_CF_DEFAULT, name, strlen(name), v, n);
	if (r < 0)
		die("put", r);
	hoard_store_close(st);
	err[0] = '\0';
	r = hoard_store_open(dir, &st, err, sizeof(err));
	if (r == 0) {
		if (hoard_fs_new(st, &o, &fs) == 0)
			hoard_fs_free(fs);
		hoard_store_close(st);
	} else if (!err[0] || strchr(err, '\n')) {
		fuzz_fail("store open failed (%d) without one line", r);
	}
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool same_inode(const struct hoard_inode *a, const struct hoard_inode *b)
{
	return a->mode == b->mode && a->uid == b->uid && a->gid == b->gid &&
	       a->nlink == b->nlink && a->rdev == b->rdev &&
	       a->size == b->size && a->volume == b->volume &&
	       !memcmp(&a->atime, &b->atime, sizeof(a->atime)) &&
	       !memcmp(&a->mtime, &b->mtime, sizeof(a->mtime)) &&
	       !memcmp(&a->ctime, &b->ctime, sizeof(a->ctime)) &&
	       !a->target == !b->target &&
	       (!a->target || !strcmp(a->target, b->target)) &&
	       a->home_parent == b->home_parent && a->home_len == b->home_len &&
	       !memcmp(a->home_name, b->home_name, a->home_len) &&
	       a->link_parent[0] == b->link_parent[0] &&
	       a->link_parent[1] == b->link_parent[1] &&
	       a->link_len[0] == b->link_len[0] &&
	       a->link_len[1] == b->link_len[1] &&
	       !memcmp(a->link_name[0], b->link_name[0], a->link_len[0]) &&
	       !memcmp(a->link_name[1], b->link_name[1], a->link_len[1]);
}

/* An entry with a copy (store format 3): the copy decodes as the entry
 * says, and the entry made again from it decodes to the same fields. */
static void direct_copy(const uint8_t *p, size_t n)
{
	static uint8_t v[DIRENT_VAL_MAX];
	struct hoard_inode attrs, in, in2;
	uint64_t ino, ino2;
	uint8_t type, type2;
	size_t vl;

	if (dirent_copy(p, n, &attrs) < 0)
		return;
	if (dirent_decode(p, n, &ino, &type) < 0 || attrs.home_parent ||
	    attrs.link_parent[0] || S_ISDIR(attrs.mode) ||
	    (attrs.mode & S_IFMT) >> 12 != type)
		fuzz_fail("a copy decoded that its entry refuses");
	if (inode_decode(p + DIRENT_VAL_SIZE, n - DIRENT_VAL_SIZE, &in) < 0)
		return; /* -ENOMEM */
	if (!in.target || strlen(in.target) == in.size) {
		vl = dirent_encode_copy(v, ino, &in);
		if (dirent_decode(v, vl, &ino2, &type2) < 0 ||
		    dirent_copy(v, vl, &in2) < 0 || ino2 != ino ||
		    type2 != type || (in2.target = in.target, 0) ||
		    !same_inode(&in, &in2))
			fuzz_fail("an entry's copy does not round-trip");
	}
	inode_clear(&in);
}

static void direct_inode(const uint8_t *p, size_t n)
{
	static uint8_t v[INODE_REC_MAX];
	struct hoard_inode in, in2, attrs;
	int r = inode_decode(p, n, &in), ra = inode_decode_attrs(p, n, &attrs);
	size_t vl;

	if (r != ra && r != -ENOMEM)
		fuzz_fail("inode_decode %d, inode_decode_attrs %d", r, ra);
	if (r < 0)
		return;
	/* a target with a NUL in it is cut there by the string: only the
	 * records whose target has none round-trip */
	if (!in.target || strlen(in.target) == in.size) {
		vl = inode_encode(&in, v);
		if (inode_decode(v, vl, &in2) < 0)
			fuzz_fail("an encoded inode does not decode");
		if (!same_inode(&in, &in2))
			fuzz_fail("an inode changed across encode/decode");
		inode_clear(&in2);
	}
	inode_clear(&in);
}

static void direct(const uint8_t *p, size_t n)
{
	uint8_t v[CHUNK_REC_V2_SIZE], k[EXTENT_KEY_SIZE], ev[EXTENT_VAL_SIZE];
	uint8_t xk[XATTR_KEY_MAX];
	struct chunk_rec c, c2;
	struct extent_rec e;
	const char *name;
	uint64_t u64;
	uint32_t u32;
	uint8_t type;
	bool any;
	size_t len;

	direct_inode(p, n);
	direct_copy(p, n);
	if (chunk_rec_decode(p, n, &c) == 0 &&
	    (chunk_rec_encode(&c, v) != n || chunk_rec_decode(v, n, &c2) < 0 ||
	     memcmp(&c, &c2, sizeof(c))))
		fuzz_fail("a chunk record does not round-trip");
	/* a type byte past 15 decodes (fsck compares it with the child's
	 * mode) but no mode encodes to it */
	if (dirent_decode(p, n, &u64, &type) == 0 && type <= 15 &&
	    n == DIRENT_VAL_SIZE) {
		dirent_encode(v, u64, (uint32_t)type << 12);
		if (memcmp(v, p, DIRENT_VAL_SIZE))
			fuzz_fail("a directory entry does not round-trip");
	}
	if (dirent_key_decode(p, n, &u64, &name, &len) == 0 &&
	    (len == 0 || len > NAME_MAX_LEN || name != (const char *)p + 8))
		fuzz_fail("a bad directory entry key decoded");
	if (n >= EXTENT_KEY_SIZE &&
	    extent_decode(p, EXTENT_KEY_SIZE, p + EXTENT_KEY_SIZE,
			  n - EXTENT_KEY_SIZE, &e) == 0) {
		extent_encode(&e, k, ev);
		if (memcmp(k, p, EXTENT_KEY_SIZE) ||
		    memcmp(ev, p + EXTENT_KEY_SIZE, EXTENT_VAL_SIZE))
			fuzz_fail("an extent does not round-trip");
	}
	if (ino_key_decode(p, n, &u64) == 0 &&
	    (n != 8 || (ino_key(k, u64), memcmp(k, p, 8))))
		fuzz_fail("an inode key does not round-trip");
	if (ino_prefix_decode(p, n, &u64) == 0 &&
	    (n < 8 || (ino_key(k, u64), memcmp(k, p, 8))))
		fuzz_fail("an inode key prefix does not round-trip");
	/* a decoded xattr name has no NUL: its key is made again from a
	 * string of it */
	if (xattr_key_decode(p, n, &u64, &name, &len) == 0) {
		char s[XATTR_NAME_LEN + 1];

		if (len == 0 || len > XATTR_NAME_LEN ||
		    name != (const char *)p + 8)
			fuzz_fail("a bad xattr key decoded");
		memcpy(s, name, len);
		s[len] = '\0';
		if (xattr_key(xk, u64, s) != n || memcmp(xk, p, n))
			fuzz_fail("an xattr key does not round-trip");
	}
	if (chunk_key_decode(p, n, &e.id) == 0 &&
	    (n != HOARD_ID_SIZE || memcmp(e.id.b, p, n)))
		fuzz_fail("a bad chunk key decoded");
	if (u64_val_decode(p, n, &u64) == 0 &&
	    (u64_val_encode(k, u64), memcmp(k, p, 8)))
		fuzz_fail("a u64 value does not round-trip");
	if (clone_rec_decode(p, n, &u64, &e.id, &any) == 0 &&
	    (clone_rec_encode(v, u64, any ? &e.id : NULL) != n ||
	     memcmp(v, p, n)))
		fuzz_fail("a clone record does not round-trip");
	if (sha_row_key_decode(p, n, &e.id) == 0 &&
	    (sha_row_key(xk, &e.id), n != SHA_ROW_KEY_LEN || memcmp(xk, p, n)))
		fuzz_fail("a chunk digest key does not round-trip");
	if (sha_row_val_decode(p, n, v) == 0 &&
	    (n != SHA_ROW_VAL_LEN || memcmp(v, p, n)))
		fuzz_fail("a chunk digest does not round-trip");
	{
		uint8_t man[32], mv[SIGNED_REF_VAL_LEN];
		int64_t t;

		if (signed_ref_val_decode(p, n, &t, man) == 0 &&
		    (signed_ref_val_encode(mv, t, man), memcmp(mv, p, n)))
			fuzz_fail("a rollback mark does not round-trip");
	}
	volume_rec_decode(p, n, p, n, &u64);
	setting_u32_decode(p, n, &u32);
	setting_u64_decode(p, n, &u64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rec *x;
	unsigned kind;
	int r;

	if (!S.st)
		init();
	if (size < 1)
		return 0;
	direct(data + 1, size - 1);
	kind = data[0] % 11;
	if (kind >= 7) {
		fuzz_setting(settings[kind - 7], data + 1, size - 1);
		return 0;
	}
	x = &S.recs[kind];
	r = hoard_store_put(S.st, x->cf, x->key, x->klen, data + 1, size - 1);
	if (r < 0)
		die("put", r);
	read_all(kind == 3);
	r = hoard_store_put(S.st, x->cf, x->key, x->klen, x->val, x->vlen);
	if (r < 0)
		die("restore", r);
	return 0;
}
