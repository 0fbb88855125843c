/* SPDX-License-Identifier: MIT */
/*
 * test_records: the record codecs of hoard/records.h (docs/FORMAT.md 2)
 * on hand-made bytes: every decoder round-trips what its encoder wrote
 * and answers -EBADMSG for each length and byte it refuses (never reading
 * past the length it is given).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "hoard/records.h"
#include "hoard/util.h"

#include "check.h"

static void test_ino_keys(void)
{
	uint8_t k[16] = {0};
	uint64_t ino = 0;

	ino_key(k, 0x0102030405060708ull);
	CHECK_EQ(k[0], 1);
	CHECK_EQ(k[7], 8);
	CHECK_EQ(ino_key_decode(k, 8, &ino), 0);
	CHECK(ino == 0x0102030405060708ull);
	CHECK_EQ(ino_key_decode(k, 7, &ino), -EBADMSG);
	CHECK_EQ(ino_key_decode(k, 9, &ino), -EBADMSG);
	CHECK_EQ(ino_key_decode(k, 0, &ino), -EBADMSG);
	ino = 0;
	CHECK_EQ(ino_prefix_decode(k, 16, &ino), 0);
	CHECK(ino == 0x0102030405060708ull);
	CHECK_EQ(ino_prefix_decode(k, 8, &ino), 0);
	CHECK_EQ(ino_prefix_decode(k, 7, &ino), -EBADMSG);
	CHECK_EQ(ino_prefix_decode(NULL, 0, &ino), -EBADMSG);

	CHECK_EQ(u64_val_decode(k, 8, &ino), 0);
	CHECK(ino == 0x0102030405060708ull);
	CHECK_EQ(u64_val_decode(k, 7, &ino), -EBADMSG);
	CHECK_EQ(u64_val_decode(k, 9, &ino), -EBADMSG);

	memset(k, 0, sizeof(k));
	u64_val_encode(k, 0xa1b2c3d4e5f60718ull);
	CHECK_EQ(k[0], 0xa1);
	CHECK_EQ(k[7], 0x18);
	CHECK_EQ(u64_val_decode(k, 8, &ino), 0);
	CHECK(ino == 0xa1b2c3d4e5f60718ull);
}

static void test_xattr_keys(void)
{
	uint8_t k[XATTR_KEY_MAX + 8];
	char name[XATTR_NAME_LEN + 2];
	const char *got = NULL;
	uint64_t ino = 0;
	size_t kl, len = 0;

	kl = xattr_key(k, 42, "user.hoard.pin");
	CHECK_EQ(kl, 8 + strlen("user.hoard.pin"));
	CHECK_EQ(xattr_key_decode(k, kl, &ino, &got, &len), 0);
	CHECK_EQ(ino, 42);
	CHECK(got == (const char *)k + 8);
	CHECK_EQ(len, strlen("user.hoard.pin"));
	CHECK(!memcmp(got, "user.hoard.pin", len));
	/* no name, a NUL in it, too long */
	CHECK_EQ(xattr_key_decode(k, 8, &ino, &got, &len), -EBADMSG);
	CHECK_EQ(xattr_key_decode(k, 3, &ino, &got, &len), -EBADMSG);
	k[10] = '\0';
	CHECK_EQ(xattr_key_decode(k, kl, &ino, &got, &len), -EBADMSG);
	memset(name, 'a', sizeof(name));
	name[XATTR_NAME_LEN] = '\0';
	kl = xattr_key(k, 7, name);
	CHECK_EQ(kl, XATTR_KEY_MAX);
	CHECK_EQ(xattr_key_decode(k, kl, &ino, &got, &len), 0);
	CHECK_EQ(len, XATTR_NAME_LEN);
	k[kl] = 'a';
	CHECK_EQ(xattr_key_decode(k, kl + 1, &ino, &got, &len), -EBADMSG);
	/* the name is cut at XATTR_NAME_LEN, never written past */
	name[XATTR_NAME_LEN] = 'a';
	name[XATTR_NAME_LEN + 1] = '\0';
	CHECK_EQ(xattr_key(k, 7, name), XATTR_KEY_MAX);
}

static void test_dirents(void)
{
	uint8_t k[DIRENT_KEY_MAX], v[DIRENT_VAL_SIZE];
	const char *name = NULL;
	uint64_t parent = 0, ino = 0;
	uint8_t type = 0;
	size_t kl, len = 0;

	kl = dirent_key(k, 9, "f");
	CHECK_EQ(kl, 9);
	CHECK_EQ(dirent_key_decode(k, kl, &parent, &name, &len), 0);
	CHECK_EQ(parent, 9);
	CHECK_EQ(len, 1);
	CHECK_EQ(name[0], 'f');
	CHECK_EQ(dirent_key_decode(k, 8, &parent, &name, &len), -EBADMSG);
	k[8] = '/';
	CHECK_EQ(dirent_key_decode(k, kl, &parent, &name, &len), -EBADMSG);
	dirent_encode(v, 77, S_IFDIR | 0755);
	CHECK_EQ(dirent_decode(v, sizeof(v), &ino, &type), 0);
	CHECK_EQ(ino, 77);
	CHECK_EQ(type, S_IFDIR >> 12);
	CHECK_EQ(dirent_decode(v, 8, &ino, &type), -EBADMSG);
	CHECK_EQ(dirent_decode(v, 10, &ino, &type), -EBADMSG);
}

static void test_extents(void)
{
	struct extent_rec e = {.ino = 5, .off = 1 << 20, .len = 4096}, g;
	uint8_t k[EXTENT_KEY_SIZE], v[EXTENT_VAL_SIZE];

	memset(e.id.b, 0xab, sizeof(e.id.b));
	extent_encode(&e, k, v);
	CHECK_EQ(extent_decode(k, sizeof(k), v, sizeof(v), &g), 0);
	CHECK_EQ(g.ino, 5);
	CHECK_EQ(g.off, 1 << 20);
	CHECK_EQ(g.len, 4096);
	CHECK(!memcmp(g.id.b, e.id.b, sizeof(e.id.b)));
	CHECK_EQ(extent_decode(k, 15, v, sizeof(v), &g), -EBADMSG);
	CHECK_EQ(extent_decode(k, sizeof(k), v, 19, &g), -EBADMSG);
	CHECK_EQ(extent_val_decode(v, 21, &g.id, &g.len), -EBADMSG);
}

static void test_chunks(void)
{
	struct chunk_rec r = {.flags = 1,
			      .raw_size = 100,
			      .frame_size = 60,
			      .refcount = 3},
			 g;
	uint8_t v[CHUNK_REC_V2_SIZE];
	struct hoard_id id;
	size_t n;

	memset(v, 0x5a, sizeof(v));
	CHECK_EQ(chunk_key_decode(v, HOARD_ID_SIZE, &id), 0);
	CHECK(!memcmp(id.b, v, HOARD_ID_SIZE));
	CHECK_EQ(chunk_key_decode(v, HOARD_ID_SIZE - 1, &id), -EBADMSG);
	CHECK_EQ(chunk_key_decode(v, HOARD_ID_SIZE + 1, &id), -EBADMSG);

	n = chunk_rec_encode(&r, v);
	CHECK_EQ(n, CHUNK_REC_SIZE);
	CHECK_EQ(chunk_rec_decode(v, n, &g), 0);
	CHECK_EQ(g.refcount, 3);
	CHECK(!g.has_loc);
	CHECK_EQ(chunk_rec_decode(v, n - 1, &g), -EBADMSG);
	r.has_loc = true;
	r.pack_off = 99;
	memset(r.pack, 7, sizeof(r.pack));
	n = chunk_rec_encode(&r, v);
	CHECK_EQ(n, CHUNK_REC_V2_SIZE);
	CHECK_EQ(chunk_rec_decode(v, n, &g), 0);
	CHECK(g.has_loc);
	CHECK_EQ(g.pack_off, 99);
	v[0] = 1; /* a version 1 record is 24 bytes */
	CHECK_EQ(chunk_rec_decode(v, n, &g), -EBADMSG);
}

static void test_inodes(void)
{
	struct hoard_inode in = {.mode = S_IFLNK | 0777,
				 .nlink = 1,
				 .target = "some/target"},
			   g;
	uint8_t v[INODE_REC_MAX];
	size_t n = inode_encode(&in, v);

	CHECK_EQ(n, INODE_REC_SIZE + strlen("some/target"));
	CHECK_EQ(inode_decode(v, n, &g), 0);
	CHECK(g.target && !strcmp(g.target, "some/target"));
	CHECK_EQ(g.size, strlen("some/target"));
	inode_clear(&g);
	CHECK(!g.target);
	CHECK_EQ(inode_decode(v, n - 1, &g), -EBADMSG);
	CHECK_EQ(inode_decode_attrs(v, INODE_REC_SIZE - 1, &g), -EBADMSG);
	v[0] = 2;
	CHECK_EQ(inode_decode_attrs(v, n, &g), -EBADMSG);
}

/* Store format 3: a record's home (version 2) and an entry's copy. */
static void test_homes(void)
{
	struct hoard_inode in = {.mode = S_IFREG | 0644,
				 .nlink = 1,
				 .size = 600},
			   g, dir = {.mode = S_IFDIR | 0755, .nlink = 2};
	uint8_t v[INODE_REC_MAX], d[DIRENT_VAL_MAX], type = 0;
	uint64_t ino = 0;
	size_t n, dn;

	inode_set_home(&in, 17, "name");
	n = inode_encode(&in, v);
	CHECK_EQ(n, INODE_REC_SIZE + 9 + 4);
	CHECK_EQ(v[0], 2);
	CHECK_EQ(inode_decode(v, n, &g), 0);
	CHECK_EQ(g.home_parent, 17);
	CHECK(inode_home_is(&g, 17, "name", 4));
	CHECK(!inode_home_is(&g, 17, "nam", 3));
	CHECK(!inode_home_is(&g, 18, "name", 4));
	CHECK_EQ(inode_encode_v1(&in, v), INODE_REC_SIZE);
	CHECK_EQ(v[0], 1);
	n = inode_encode(&in, v);
	CHECK_EQ(inode_decode_attrs(v, n - 1, &g), -EBADMSG); /* cut */
	CHECK_EQ(inode_decode_attrs(v, INODE_REC_SIZE, &g), -EBADMSG);
	v[INODE_REC_SIZE + 9] = '/';
	CHECK_EQ(inode_decode_attrs(v, n, &g), -EBADMSG);
	v[INODE_REC_SIZE + 9] = 'n';
	v[INODE_REC_SIZE + 8] = 0; /* length 0 */
	CHECK_EQ(inode_decode_attrs(v, n, &g), -EBADMSG);
	/* no home for two links or a directory */
	in.nlink = 2;
	inode_set_home(&in, 17, "name");
	CHECK_EQ(in.home_parent, 0);
	inode_set_home(&dir, 17, "d");
	CHECK_EQ(dir.home_parent, 0);
	CHECK_EQ(inode_encode(&in, v), INODE_REC_SIZE);
	/* two links, both entries known: version 3 */
	inode_set_links(&in, 17, "name", 18, "other");
	CHECK_EQ(in.link_parent[0], 17);
	n = inode_encode(&in, v);
	CHECK_EQ(n, INODE_REC_SIZE + 9 + 4 + 9 + 5);
	CHECK_EQ(v[0], 3);
	CHECK_EQ(inode_decode(v, n, &g), 0);
	CHECK_EQ(g.home_parent, 0);
	CHECK_EQ(inode_link_index(&g, 18, "other", 5), 1);
	CHECK_EQ(inode_link_index(&g, 17, "name", 4), 0);
	CHECK_EQ(inode_link_index(&g, 17, "nam", 3), -1);
	CHECK_EQ(inode_decode_attrs(v, n - 1, &g), -EBADMSG); /* cut */
	CHECK_EQ(inode_decode_attrs(v, INODE_REC_SIZE + 13, &g), -EBADMSG);
	hoard_put_be32(v + 16, 1); /* version 3 is two links only */
	CHECK_EQ(inode_decode_attrs(v, n, &g), -EBADMSG);
	hoard_put_be32(v + 16, 2);
	inode_link_move(&in, 18, "other", 17, "moved");
	CHECK_EQ(inode_link_index(&in, 17, "moved", 5), 1);
	CHECK_EQ(inode_link_index(&in, 17, "name", 4), 0);
	inode_link_move(&in, 19, "x", 17, "y"); /* not one of them */
	CHECK_EQ(in.link_parent[0], 0);
	CHECK_EQ(inode_encode(&in, v), INODE_REC_SIZE);
	inode_set_links(&in, 17, "same", 17, "same"); /* one entry twice */
	CHECK_EQ(in.link_parent[0], 0);
	in.nlink = 3;
	inode_set_links(&in, 17, "name", 18, "other");
	CHECK_EQ(in.link_parent[0], 0);
	in.nlink = 2;
	inode_set_links(&dir, 17, "a", 17, "b");
	CHECK_EQ(dir.link_parent[0], 0);
	/* the entry: 9 bytes, or 9 + the record without its home */
	in.nlink = 1;
	inode_set_home(&in, 17, "name");
	dn = dirent_encode_copy(d, 99, &in);
	CHECK_EQ(dn, DIRENT_VAL_SIZE + INODE_REC_SIZE);
	CHECK_EQ(dirent_decode(d, dn, &ino, &type), 0);
	CHECK_EQ(ino, 99);
	CHECK_EQ(type, S_IFREG >> 12);
	CHECK_EQ(dirent_copy(d, dn, &g), 0);
	CHECK_EQ(g.size, 600);
	CHECK_EQ(g.home_parent, 0);
	CHECK_EQ(dirent_copy(d, DIRENT_VAL_SIZE, &g), -ENOENT);
	CHECK_EQ(dirent_decode(d, dn - 1, &ino, &type), -EBADMSG);
	d[8] = S_IFDIR >> 12; /* the copy's type is not the entry's */
	CHECK_EQ(dirent_decode(d, dn, &ino, &type), -EBADMSG);
	dn = dirent_encode_copy(d, 99, &dir); /* never a directory's */
	CHECK_EQ(dirent_copy(d, dn, &g), -EBADMSG);
}

static void test_small(void)
{
	uint8_t v[8] = {0, 0, 0, 0, 0, 0, 1, 0};
	uint64_t u64 = 0;
	uint32_t u32 = 0;

	CHECK_EQ(volume_rec_decode((const uint8_t *)"v", 1, v, 8, &u64), 0);
	CHECK_EQ(u64, 256);
	CHECK_EQ(volume_rec_decode((const uint8_t *)"v", 0, v, 8, &u64),
		 -EBADMSG);
	CHECK_EQ(volume_rec_decode((const uint8_t *)"v", 1, v, 7, &u64),
		 -EBADMSG);
	CHECK_EQ(setting_u32_decode(v + 4, 4, &u32), 0);
	CHECK_EQ(u32, 256);
	CHECK_EQ(setting_u32_decode(v, 8, &u32), -EBADMSG);
	CHECK_EQ(setting_u64_decode(v, 4, &u64), -EBADMSG);
}

static void test_clone_rec(void)
{
	uint8_t v[CLONE_REC_MAX + 1];
	struct hoard_id id, got;
	uint64_t root = 0;
	bool any = true;

	memset(id.b, 0x5a, sizeof(id.b));
	CHECK_EQ(clone_rec_encode(v, 77, NULL), 8);
	CHECK_EQ(clone_rec_decode(v, 8, &root, &got, &any), 0);
	CHECK(root == 77 && !any);
	CHECK_EQ(clone_rec_encode(v, 78, &id), CLONE_REC_MAX);
	CHECK_EQ(clone_rec_decode(v, CLONE_REC_MAX, &root, &got, &any), 0);
	CHECK(root == 78 && any && !memcmp(got.b, id.b, HOARD_ID_SIZE));
	CHECK_EQ(clone_rec_decode(v, 7, &root, &got, &any), -EBADMSG);
	CHECK_EQ(clone_rec_decode(v, 9, &root, &got, &any), -EBADMSG);
	CHECK_EQ(clone_rec_decode(v, CLONE_REC_MAX + 1, &root, &got, &any),
		 -EBADMSG);
}

static void test_digest_rows(void)
{
	uint8_t k[SHA_ROW_KEY_LEN + 1], v[SIGNED_REF_VAL_LEN + 1];
	uint8_t sha[32], got_sha[32];
	struct hoard_id id, got;
	int64_t t = 0;

	memset(id.b, 0xa5, sizeof(id.b));
	sha_row_key(k, &id);
	CHECK(!memcmp(k, "sha256.", 7));
	CHECK_EQ(sha_row_key_decode(k, SHA_ROW_KEY_LEN, &got), 0);
	CHECK(!memcmp(got.b, id.b, HOARD_ID_SIZE));
	CHECK_EQ(sha_row_key_decode(k, SHA_ROW_KEY_LEN - 1, &got), -EBADMSG);
	CHECK_EQ(sha_row_key_decode(k, SHA_ROW_KEY_LEN + 1, &got), -EBADMSG);
	k[0] = 'S';
	CHECK_EQ(sha_row_key_decode(k, SHA_ROW_KEY_LEN, &got), -EBADMSG);
	for (int i = 0; i < 32; i++)
		sha[i] = (uint8_t)(i * 7);
	CHECK_EQ(sha_row_val_decode(sha, 32, got_sha), 0);
	CHECK(!memcmp(got_sha, sha, 32));
	CHECK_EQ(sha_row_val_decode(sha, 31, got_sha), -EBADMSG);
	/* the rollback mark: a negative time too (i64) */
	signed_ref_val_encode(v, -5, sha);
	CHECK_EQ(signed_ref_val_decode(v, SIGNED_REF_VAL_LEN, &t, got_sha), 0);
	CHECK(t == -5 && !memcmp(got_sha, sha, 32));
	signed_ref_val_encode(v, 1796610000, sha);
	CHECK_EQ(hoard_get_be64(v), 1796610000);
	CHECK_EQ(signed_ref_val_decode(v, SIGNED_REF_VAL_LEN, &t, got_sha), 0);
	CHECK(t == 1796610000);
	CHECK_EQ(signed_ref_val_decode(v, SIGNED_REF_VAL_LEN - 1, &t, got_sha),
		 -EBADMSG);
	CHECK_EQ(signed_ref_val_decode(v, SIGNED_REF_VAL_LEN + 1, &t, got_sha),
		 -EBADMSG);
}

int main(void)
{
	test_ino_keys();
	test_xattr_keys();
	test_clone_rec();
	test_digest_rows();
	test_dirents();
	test_extents();
	test_chunks();
	test_inodes();
	test_homes();
	test_small();
	return CHECK_DONE();
}
