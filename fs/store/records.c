/* SPDX-License-Identifier: MIT */
/* records: the store's record codecs (docs/FORMAT.md 2; records.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hoard/records.h"
#include "hoard/util.h"

void ino_key(uint8_t k[8], uint64_t ino)
{
	hoard_put_be64(k, ino);
}

int ino_prefix_decode(const uint8_t *k, size_t kl, uint64_t *ret_ino)
{
	if (kl < 8)
		return -EBADMSG;
	*ret_ino = hoard_get_be64(k);
	return 0;
}

int u64_val_decode(const uint8_t *v, size_t n, uint64_t *ret)
{
	if (n != 8)
		return -EBADMSG;
	*ret = hoard_get_be64(v);
	return 0;
}

void u64_val_encode(uint8_t v[8], uint64_t u)
{
	hoard_put_be64(v, u);
}

/* ---- inode records (2.2) ------------------------------------------------ */

static void put_ts(uint8_t *p, const struct timespec *ts)
{
	hoard_put_be64(p, (uint64_t)ts->tv_sec);
	hoard_put_be32(p + 8, (uint32_t)ts->tv_nsec);
}

static void get_ts(const uint8_t *p, struct timespec *ts)
{
	ts->tv_sec = (time_t)(int64_t)hoard_get_be64(p);
	ts->tv_nsec = (long)hoard_get_be32(p + 8);
}

/* One entry after the record's body (version 2's home, version 3's two):
 * parent u64 (not 0) + name length u8 (1..255) + the name (no '/' or
 * NUL).  Its length, or -EBADMSG; ret_name NULL: only checked. */
static ssize_t entry_decode(const uint8_t *p, size_t n, uint64_t *ret_parent,
			    uint8_t *ret_len, char *ret_name)
{
	size_t len;

	if (n < 10)
		return -EBADMSG;
	len = p[8];
	if (len == 0 || n < 9 + len || memchr(p + 9, '/', len) ||
	    memchr(p + 9, '\0', len) || hoard_get_be64(p) == 0)
		return -EBADMSG;
	if (ret_name) {
		*ret_parent = hoard_get_be64(p);
		*ret_len = (uint8_t)len;
		memcpy(ret_name, p + 9, len);
		ret_name[len] = 0;
	}
	return (ssize_t)(9 + len);
}

/* What follows the body (p, n) of a record of version ver: nothing for
 * version 1 (checked for symlinks only, as ever), the home and nothing
 * after it for version 2, two different entries and nothing after them
 * for version 3 (a non-directory with two links).  0 or -EBADMSG. */
static int tail_check(const uint8_t *p, size_t n, uint8_t ver, uint32_t mode,
		      uint32_t nlink)
{
	ssize_t a, b;

	if (ver == 1)
		return S_ISLNK(mode) && n ? -EBADMSG : 0;
	if (S_ISDIR(mode))
		return -EBADMSG;
	a = entry_decode(p, n, NULL, NULL, NULL);
	if (ver == 2)
		return a == (ssize_t)n ? 0 : -EBADMSG;
	if (a < 0 || nlink != 2)
		return -EBADMSG;
	b = entry_decode(p + a, n - (size_t)a, NULL, NULL, NULL);
	if (b < 0 || (size_t)(a + b) != n)
		return -EBADMSG;
	if (a == b && !memcmp(p, p + a, (size_t)a))
		return -EBADMSG; /* one entry twice */
	return 0;
}

/* Decoded in place (no struct copied: the names make it ~800 bytes, and
 * a LOOKUP decodes one); ret is written only once the record checked. */
int inode_decode_attrs(const uint8_t *v, size_t n, struct hoard_inode *ret)
{
	uint32_t mode, nlink;
	uint64_t size;
	size_t body;
	ssize_t a;

	if (n < INODE_REC_SIZE || v[0] < 1 || v[0] > 3)
		return -EBADMSG;
	mode = hoard_get_be32(v + 4);
	nlink = hoard_get_be32(v + 16);
	size = hoard_get_be64(v + 24);
	body = INODE_REC_SIZE;
	if (S_ISLNK(mode)) {
		if (size > n - INODE_REC_SIZE)
			return -EBADMSG;
		body += size;
	}
	if (tail_check(v + body, n - body, v[0], mode, nlink) < 0)
		return -EBADMSG;
	ret->mode = mode;
	ret->uid = hoard_get_be32(v + 8);
	ret->gid = hoard_get_be32(v + 12);
	ret->nlink = nlink;
	ret->rdev = hoard_get_be32(v + 20);
	ret->size = size;
	ret->volume = hoard_get_be64(v + 32);
	get_ts(v + 40, &ret->atime);
	get_ts(v + 52, &ret->mtime);
	get_ts(v + 64, &ret->ctime);
	ret->target = NULL;
	ret->home_parent = 0;
	ret->home_len = 0;
	ret->home_name[0] = 0;
	ret->link_parent[0] = ret->link_parent[1] = 0;
	ret->link_len[0] = ret->link_len[1] = 0;
	if (v[0] == 2)
		entry_decode(v + body, n - body, &ret->home_parent,
			     &ret->home_len, ret->home_name);
	if (v[0] == 3) {
		a = entry_decode(v + body, n - body, &ret->link_parent[0],
				 &ret->link_len[0], ret->link_name[0]);
		entry_decode(v + body + a, n - body - (size_t)a,
			     &ret->link_parent[1], &ret->link_len[1],
			     ret->link_name[1]);
	}
	return 0;
}

int inode_decode(const uint8_t *v, size_t n, struct hoard_inode *ret)
{
	int r = inode_decode_attrs(v, n, ret);

	if (r < 0)
		return r;
	if (S_ISLNK(ret->mode)) {
		ret->target = strndup((const char *)v + INODE_REC_SIZE,
				      ret->size);
		if (!ret->target)
			return -ENOMEM;
	}
	return 0;
}

size_t inode_encode_v1(const struct hoard_inode *in, uint8_t *v)
{
	size_t tlen = in->target ? strnlen(in->target, INODE_TARGET_MAX) : 0;

	memset(v, 0, INODE_REC_SIZE);
	v[0] = 1;
	hoard_put_be32(v + 4, in->mode);
	hoard_put_be32(v + 8, in->uid);
	hoard_put_be32(v + 12, in->gid);
	hoard_put_be32(v + 16, in->nlink);
	hoard_put_be32(v + 20, in->rdev);
	hoard_put_be64(v + 24, in->target ? tlen : in->size);
	hoard_put_be64(v + 32, in->volume);
	put_ts(v + 40, &in->atime);
	put_ts(v + 52, &in->mtime);
	put_ts(v + 64, &in->ctime);
	if (tlen)
		memcpy(v + INODE_REC_SIZE, in->target, tlen);
	return INODE_REC_SIZE + tlen;
}

static size_t entry_encode(uint8_t *p, uint64_t parent, uint8_t len,
			   const char *name)
{
	hoard_put_be64(p, parent);
	p[8] = len;
	memcpy(p + 9, name, len);
	return 9 + (size_t)len;
}

size_t inode_encode(const struct hoard_inode *in, uint8_t *v)
{
	size_t n = inode_encode_v1(in, v);

	if (in->home_parent && in->home_len) {
		v[0] = 2;
		return n + entry_encode(v + n, in->home_parent, in->home_len,
					in->home_name);
	}
	if (in->link_parent[0] && in->link_parent[1] && in->nlink == 2 &&
	    !S_ISDIR(in->mode)) {
		v[0] = 3;
		n += entry_encode(v + n, in->link_parent[0], in->link_len[0],
				  in->link_name[0]);
		n += entry_encode(v + n, in->link_parent[1], in->link_len[1],
				  in->link_name[1]);
	}
	return n;
}

void inode_set_home(struct hoard_inode *in, uint64_t parent, const char *name)
{
	size_t len = name ? strnlen(name, NAME_MAX_LEN + 1) : 0;

	if (!parent || len == 0 || len > NAME_MAX_LEN || S_ISDIR(in->mode) ||
	    in->nlink != 1) {
		in->home_parent = 0;
		in->home_len = 0;
		in->home_name[0] = 0;
		return;
	}
	in->home_parent = parent;
	in->home_len = (uint8_t)len;
	memcpy(in->home_name, name, len);
	in->home_name[len] = 0;
}

bool inode_home_is(const struct hoard_inode *in, uint64_t parent,
		   const char *name, size_t name_len)
{
	return in->home_parent && in->home_parent == parent &&
	       in->home_len == name_len &&
	       !memcmp(in->home_name, name, name_len);
}

void inode_set_links(struct hoard_inode *in, uint64_t p0, const char *n0,
		     uint64_t p1, const char *n1)
{
	size_t l0 = n0 ? strnlen(n0, NAME_MAX_LEN + 1) : 0;
	size_t l1 = n1 ? strnlen(n1, NAME_MAX_LEN + 1) : 0;
	char a[NAME_MAX_LEN + 1], b[NAME_MAX_LEN + 1];

	if (!p0 || !p1 || l0 == 0 || l0 > NAME_MAX_LEN || l1 == 0 ||
	    l1 > NAME_MAX_LEN || S_ISDIR(in->mode) || in->nlink != 2 ||
	    (p0 == p1 && l0 == l1 && !memcmp(n0, n1, l0))) {
		in->link_parent[0] = in->link_parent[1] = 0;
		in->link_len[0] = in->link_len[1] = 0;
		return;
	}
	/* n0 or n1 may be one of in's own names */
	memcpy(a, n0, l0);
	memcpy(b, n1, l1);
	memcpy(in->link_name[0], a, l0);
	in->link_name[0][l0] = 0;
	memcpy(in->link_name[1], b, l1);
	in->link_name[1][l1] = 0;
	in->link_parent[0] = p0;
	in->link_len[0] = (uint8_t)l0;
	in->link_parent[1] = p1;
	in->link_len[1] = (uint8_t)l1;
}

int inode_link_index(const struct hoard_inode *in, uint64_t parent,
		     const char *name, size_t name_len)
{
	for (int i = 0; i < 2 && in->link_parent[0]; i++) {
		if (in->link_parent[i] == parent &&
		    in->link_len[i] == name_len &&
		    !memcmp(in->link_name[i], name, name_len))
			return i;
	}
	return -1;
}

void inode_link_move(struct hoard_inode *in, uint64_t parent, const char *name,
		     uint64_t to_parent, const char *to_name)
{
	int i = inode_link_index(in, parent, name, strlen(name));
	char keep[NAME_MAX_LEN + 1];
	uint64_t keep_parent;

	if (i < 0) {
		inode_set_links(in, 0, NULL, 0, NULL);
		return;
	}
	keep_parent = in->link_parent[1 - i];
	memcpy(keep, in->link_name[1 - i], in->link_len[1 - i] + 1u);
	inode_set_links(in, keep_parent, keep, to_parent, to_name);
}

void inode_clear(struct hoard_inode *in)
{
	free(in->target);
	in->target = NULL;
}

/* ---- chunk records (2.3) ------------------------------------------------ */

size_t chunk_rec_encode(const struct chunk_rec *r, uint8_t *v)
{
	size_t n = r->has_loc ? CHUNK_REC_V2_SIZE : CHUNK_REC_SIZE;

	memset(v, 0, n);
	v[0] = r->has_loc ? 2 : 1;
	v[1] = r->flags;
	hoard_put_be32(v + 4, r->raw_size);
	hoard_put_be32(v + 8, r->frame_size);
	hoard_put_be64(v + 16, r->refcount);
	if (r->has_loc) {
		memcpy(v + 24, r->pack, 32);
		hoard_put_be64(v + 56, r->pack_off);
	}
	return n;
}

int chunk_key_decode(const uint8_t *k, size_t kl, struct hoard_id *ret_id)
{
	if (kl != HOARD_ID_SIZE)
		return -EBADMSG;
	memcpy(ret_id->b, k, HOARD_ID_SIZE);
	return 0;
}

int chunk_rec_decode(const uint8_t *v, size_t n, struct chunk_rec *ret)
{
	if (!((n == CHUNK_REC_SIZE && v[0] == 1) ||
	      (n == CHUNK_REC_V2_SIZE && v[0] == 2)))
		return -EBADMSG;
	memset(ret, 0, sizeof(*ret));
	ret->flags = v[1];
	ret->raw_size = hoard_get_be32(v + 4);
	ret->frame_size = hoard_get_be32(v + 8);
	ret->refcount = hoard_get_be64(v + 16);
	if (v[0] == 2) {
		ret->has_loc = true;
		memcpy(ret->pack, v + 24, 32);
		ret->pack_off = hoard_get_be64(v + 56);
	}
	return 0;
}

/* ---- directory entries -------------------------------------------------- */

size_t dirent_key(uint8_t *k, uint64_t parent, const char *name)
{
	size_t n = strnlen(name, NAME_MAX_LEN);

	ino_key(k, parent);
	memcpy(k + 8, name, n);
	return 8 + n;
}

int dirent_key_decode(const uint8_t *k, size_t kl, uint64_t *ret_parent,
		      const char **ret_name, size_t *ret_name_len)
{
	if (kl <= 8 || kl > DIRENT_KEY_MAX || memchr(k + 8, '/', kl - 8) ||
	    memchr(k + 8, '\0', kl - 8))
		return -EBADMSG;
	*ret_parent = hoard_get_be64(k);
	*ret_name = (const char *)k + 8;
	*ret_name_len = kl - 8;
	return 0;
}

void dirent_encode(uint8_t v[DIRENT_VAL_SIZE], uint64_t ino, uint32_t mode)
{
	hoard_put_be64(v, ino);
	v[8] = (uint8_t)((mode & S_IFMT) >> 12);
}

size_t dirent_encode_copy(uint8_t *v, uint64_t ino,
			  const struct hoard_inode *in)
{
	dirent_encode(v, ino, in->mode);
	return DIRENT_VAL_SIZE + inode_encode_v1(in, v + DIRENT_VAL_SIZE);
}

int dirent_copy(const uint8_t *v, size_t n, struct hoard_inode *ret)
{
	uint32_t mode;

	if (n == DIRENT_VAL_SIZE)
		return -ENOENT;
	if (n < DIRENT_VAL_SIZE + INODE_REC_SIZE || v[DIRENT_VAL_SIZE] != 1)
		return -EBADMSG;
	mode = hoard_get_be32(v + DIRENT_VAL_SIZE + 4);
	if (((mode & S_IFMT) >> 12) != v[8] || S_ISDIR(mode))
		return -EBADMSG;
	return inode_decode_attrs(v + DIRENT_VAL_SIZE, n - DIRENT_VAL_SIZE,
				  ret);
}

int dirent_decode(const uint8_t *v, size_t n, uint64_t *ret_ino,
		  uint8_t *ret_type)
{
	struct hoard_inode in;

	if (n != DIRENT_VAL_SIZE && dirent_copy(v, n, &in) < 0)
		return -EBADMSG;
	*ret_ino = hoard_get_be64(v);
	if (ret_type)
		*ret_type = v[8];
	return 0;
}

/* ---- extents ------------------------------------------------------------ */

void extent_encode(const struct extent_rec *e, uint8_t k[EXTENT_KEY_SIZE],
		   uint8_t v[EXTENT_VAL_SIZE])
{
	hoard_put_be64(k, e->ino);
	hoard_put_be64(k + 8, e->off);
	memcpy(v, e->id.b, HOARD_ID_SIZE);
	hoard_put_be32(v + HOARD_ID_SIZE, e->len);
}

int extent_val_decode(const uint8_t *v, size_t vl, struct hoard_id *ret_id,
		      uint32_t *ret_len)
{
	if (vl != EXTENT_VAL_SIZE)
		return -EBADMSG;
	memcpy(ret_id->b, v, HOARD_ID_SIZE);
	*ret_len = hoard_get_be32(v + HOARD_ID_SIZE);
	return 0;
}

int extent_decode(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
		  struct extent_rec *ret)
{
	if (kl != EXTENT_KEY_SIZE)
		return -EBADMSG;
	ret->ino = hoard_get_be64(k);
	ret->off = hoard_get_be64(k + 8);
	return extent_val_decode(v, vl, &ret->id, &ret->len);
}

/* ---- extended attributes ------------------------------------------------ */

size_t xattr_key(uint8_t *k, uint64_t ino, const char *name)
{
	size_t n = strnlen(name, XATTR_NAME_LEN);

	ino_key(k, ino);
	memcpy(k + 8, name, n);
	return 8 + n;
}

int xattr_key_decode(const uint8_t *k, size_t kl, uint64_t *ret_ino,
		     const char **ret_name, size_t *ret_name_len)
{
	if (kl <= 8 || kl > XATTR_KEY_MAX || memchr(k + 8, '\0', kl - 8))
		return -EBADMSG;
	*ret_ino = hoard_get_be64(k);
	*ret_name = (const char *)k + 8;
	*ret_name_len = kl - 8;
	return 0;
}

/* ---- volumes ------------------------------------------------------------ */

int volume_rec_decode(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
		      uint64_t *ret_root)
{
	(void)k;
	if (kl == 0 || kl > VOLUME_NAME_MAX || vl != 8)
		return -EBADMSG;
	*ret_root = hoard_get_be64(v);
	return 0;
}

/* ---- clone progress (2.1) --------------------------------------------- */

size_t clone_rec_encode(uint8_t v[CLONE_REC_MAX], uint64_t root,
			const struct hoard_id *raised)
{
	hoard_put_be64(v, root);
	if (!raised)
		return 8;
	memcpy(v + 8, raised->b, HOARD_ID_SIZE);
	return CLONE_REC_MAX;
}

int clone_rec_decode(const uint8_t *v, size_t n, uint64_t *ret_root,
		     struct hoard_id *ret_raised, bool *ret_any)
{
	if (n != 8 && n != CLONE_REC_MAX)
		return -EBADMSG;
	*ret_root = hoard_get_be64(v);
	*ret_any = n == CLONE_REC_MAX;
	if (*ret_any)
		memcpy(ret_raised->b, v + 8, HOARD_ID_SIZE);
	return 0;
}

/* ---- settings (2.1) ----------------------------------------------------- */

int setting_u32_decode(const uint8_t *v, size_t n, uint32_t *ret)
{
	if (n != 4)
		return -EBADMSG;
	*ret = hoard_get_be32(v);
	return 0;
}

/* ---- chunk digests (2.1) -------------------------------------------------- */

void sha_row_key(uint8_t k[SHA_ROW_KEY_LEN], const struct hoard_id *id)
{
	memcpy(k, SHA_ROW_PREFIX, SHA_ROW_PREFIX_LEN);
	memcpy(k + SHA_ROW_PREFIX_LEN, id->b, HOARD_ID_SIZE);
}

int sha_row_key_decode(const uint8_t *k, size_t kl, struct hoard_id *ret_id)
{
	if (kl != SHA_ROW_KEY_LEN ||
	    memcmp(k, SHA_ROW_PREFIX, SHA_ROW_PREFIX_LEN))
		return -EBADMSG;
	memcpy(ret_id->b, k + SHA_ROW_PREFIX_LEN, HOARD_ID_SIZE);
	return 0;
}

int sha_row_val_decode(const uint8_t *v, size_t n, uint8_t ret[SHA_ROW_VAL_LEN])
{
	if (n != SHA_ROW_VAL_LEN)
		return -EBADMSG;
	memcpy(ret, v, SHA_ROW_VAL_LEN);
	return 0;
}

/* ---- the rollback mark (2.1) ---------------------------------------------- */

void signed_ref_val_encode(uint8_t v[SIGNED_REF_VAL_LEN], int64_t time,
			   const uint8_t manifest[32])
{
	hoard_put_be64(v, (uint64_t)time);
	memcpy(v + 8, manifest, 32);
}

int signed_ref_val_decode(const uint8_t *v, size_t n, int64_t *ret_time,
			  uint8_t ret_manifest[32])
{
	if (n != SIGNED_REF_VAL_LEN)
		return -EBADMSG;
	*ret_time = (int64_t)hoard_get_be64(v);
	memcpy(ret_manifest, v + 8, 32);
	return 0;
}
