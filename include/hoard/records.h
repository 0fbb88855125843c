/* SPDX-License-Identifier: MIT */
/*
 * records: the codec of every record the store keeps in RocksDB
 * (docs/FORMAT.md section 2): inode records (2.2), directory entries,
 * extents, extended attributes' keys, chunk records (2.3) and the integer
 * settings (2.1).  Bytes in, structs out and back; nothing here touches
 * the store, the filesystem or a lock, so the core, fsck, stats, sync and
 * the fuzz targets share one decoder per record.
 *
 * Every decoder checks the length and the version it is given and answers
 * -EBADMSG for bytes that are not a record of its kind (never reads past
 * n); encoders write into a caller's buffer of the size named here.
 *
 * Thread contract: none needed (pure functions, no shared state).
 */
#ifndef HOARD_RECORDS_H
#define HOARD_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hoard/hash.h"

#define INODE_REC_SIZE	  80		/* 2.2, without a symlink's target */
#define INODE_TARGET_MAX  4095		/* a symlink target's longest length */
#define INODE_HOME_MAX	  (8 + 1 + 255) /* version 2's home entry */
#define INODE_LINKS_MAX	  (2 * INODE_HOME_MAX) /* version 3's two entries */
#define INODE_REC_MAX	  (INODE_REC_SIZE + INODE_TARGET_MAX + INODE_LINKS_MAX)
#define CHUNK_REC_SIZE	  24 /* version 1: no remote location */
#define CHUNK_REC_V2_SIZE 64 /* version 2: + pack SHA-256 + offset */
#define EXTENT_KEY_SIZE	  16
#define EXTENT_VAL_SIZE	  20
#define DIRENT_VAL_SIZE	  9
#define NAME_MAX_LEN	  255
#define DIRENT_KEY_MAX	  (8 + NAME_MAX_LEN)
/* An entry with a copy of its child's record (version 1, no home). */
#define DIRENT_VAL_MAX (DIRENT_VAL_SIZE + INODE_REC_SIZE + INODE_TARGET_MAX)

/*
 * Decoded inode record (2.2).  home_parent/home_name: a non-directory with
 * one link whose directory entry carries a copy of this record (version 2
 * records, store format 3); home_parent 0 for none.  Whoever writes the
 * record writes that copy too (the core's inode_put).  link_*: a
 * non-directory with two links whose two entries are known (version 3
 * records), so that the one left when the other goes becomes its home;
 * link_parent[0] 0 for not known.  Neither of those entries carries a copy.
 */
struct hoard_inode {
	uint32_t mode, uid, gid, nlink, rdev;
	uint64_t size, volume;
	struct timespec atime, mtime, ctime;
	char *target; /* symlinks: malloc()ed, NUL-terminated */
	uint64_t home_parent;
	uint8_t home_len;
	char home_name[NAME_MAX_LEN + 1];
	uint64_t link_parent[2];
	uint8_t link_len[2];
	char link_name[2][NAME_MAX_LEN + 1];
};

/* Decoded chunk record (2.3). */
struct chunk_rec {
	uint8_t flags; /* bit 0: frame present in chunkdata */
	uint32_t raw_size, frame_size;
	uint64_t refcount;
	bool has_loc;	  /* version 2: where the frame lives remotely */
	uint8_t pack[32]; /* SHA-256 of the pack (its name) */
	uint64_t pack_off;
};

/* Decoded extent (key and value, 2). */
struct extent_rec {
	uint64_t ino, off;
	struct hoard_id id;
	uint32_t len;
};

/* Key of the inodes, orphans column families and the prefix of the others'
 * keys: an inode number, u64 big-endian. */
void ino_key(uint8_t k[8], uint64_t ino);
/* ino_key_decode: a key that is exactly an inode number (inodes,
 * orphans); ino_prefix_decode: the inode number opening a longer key
 * (extents, dirents, xattrs: at least 8 bytes).  -EBADMSG otherwise. */
int ino_prefix_decode(const uint8_t *k, size_t kl, uint64_t *ret_ino);
/* A value that is one u64 big-endian and nothing else (the last-use
 * xattr, docs/FORMAT.md "Pins"): -EBADMSG unless n is 8.  An inode key
 * and a u64 setting are the same encoding, so they share this check. */
int u64_val_decode(const uint8_t *v, size_t n, uint64_t *ret);
static inline int ino_key_decode(const uint8_t *k, size_t kl, uint64_t *ret_ino)
{
	return u64_val_decode(k, kl, ret_ino);
}
/* The same value, and the integer settings (2.1) and volume roots (2),
 * written: u64 big-endian into v. */
void u64_val_encode(uint8_t v[8], uint64_t u);

/*
 * Inode records.  inode_decode: -EBADMSG when n is short, the version is
 * not 1, 2 or 3, a symlink's length disagrees with its size, a version 2
 * record's home entry is malformed or a version 3 record's two entries are
 * (or it is not a non-directory with two links); ret is written only
 * for a record that checks (a symlink's target becomes a malloc()ed
 * string: -ENOMEM leaves ret without one; free with inode_clear).
 * inode_decode_attrs: the same without the target (no allocation; a
 * symlink's size is its target's length).  inode_encode: writes the
 * record into v (INODE_REC_MAX bytes) and returns its length: version 2
 * with the home entry when home_parent is set, version 3 with the two
 * entries when link_parent[0] is, else version 1; a
 * symlink's size is taken from its target (at most INODE_TARGET_MAX
 * bytes, longer is cut).  inode_encode_v1: the same without the home
 * entry (the copy a directory entry carries).  inode_set_home: home
 * (parent, name) for a non-directory with nlink 1, none otherwise.
 * inode_set_links: the two entries (p0, n0) and (p1, n1) for a
 * non-directory with nlink 2 and two different entries, none otherwise.
 * inode_link_index: 0 or 1 when (parent, name) is one of the two known
 * entries, else -1.  inode_link_move: the known entry (parent, name)
 * becomes (to_parent, to_name) (a rename); when it is not one of them,
 * the entries are no longer known.
 */
int inode_decode(const uint8_t *v, size_t n, struct hoard_inode *ret);
int inode_decode_attrs(const uint8_t *v, size_t n, struct hoard_inode *ret);
size_t inode_encode(const struct hoard_inode *in, uint8_t *v);
size_t inode_encode_v1(const struct hoard_inode *in, uint8_t *v);
void inode_set_home(struct hoard_inode *in, uint64_t parent, const char *name);
bool inode_home_is(const struct hoard_inode *in, uint64_t parent,
		   const char *name, size_t name_len);
void inode_set_links(struct hoard_inode *in, uint64_t p0, const char *n0,
		     uint64_t p1, const char *n1);
int inode_link_index(const struct hoard_inode *in, uint64_t parent,
		     const char *name, size_t name_len);
void inode_link_move(struct hoard_inode *in, uint64_t parent, const char *name,
		     uint64_t to_parent, const char *to_name);
void inode_clear(struct hoard_inode *in);

/* Chunk records: encode r (version 1, or 2 when has_loc) into v
 * (CHUNK_REC_V2_SIZE bytes) and return its length; decode -EBADMSG when
 * malformed. */
size_t chunk_rec_encode(const struct chunk_rec *r, uint8_t *v);
/* A chunks or chunkdata key: the chunk id, exactly HOARD_ID_SIZE bytes
 * (-EBADMSG otherwise). */
int chunk_key_decode(const uint8_t *k, size_t kl, struct hoard_id *ret_id);
int chunk_rec_decode(const uint8_t *v, size_t n, struct chunk_rec *ret);

/* Directory entries: key parent + name (1..NAME_MAX_LEN bytes, no '/' or
 * NUL), value child + type ((mode & S_IFMT) >> 12), in store format 3
 * optionally followed by a copy of the child's inode record (version 1).
 * dirent_key: the key of name (whose length the caller checked) into k
 * (DIRENT_KEY_MAX), its length returned.  dirent_key_decode: the parent,
 * and the name as a pointer into k (not NUL-terminated) with its length.
 * dirent_encode: the 9-byte value; dirent_encode_copy: the value with a
 * copy of in (DIRENT_VAL_MAX bytes), its length returned.  dirent_decode
 * accepts both (-EBADMSG for a copy that does not decode or whose type
 * is not the entry's); dirent_copy: the copy's attributes (no target),
 * -ENOENT when the entry has none. */
size_t dirent_key(uint8_t *k, uint64_t parent, const char *name);
int dirent_key_decode(const uint8_t *k, size_t kl, uint64_t *ret_parent,
		      const char **ret_name, size_t *ret_name_len);
void dirent_encode(uint8_t v[DIRENT_VAL_SIZE], uint64_t ino, uint32_t mode);
size_t dirent_encode_copy(uint8_t *v, uint64_t ino,
			  const struct hoard_inode *in);
int dirent_decode(const uint8_t *v, size_t n, uint64_t *ret_ino,
		  uint8_t *ret_type);
int dirent_copy(const uint8_t *v, size_t n, struct hoard_inode *ret);

/* Extents: key ino + offset, value chunk id + length. */
void extent_encode(const struct extent_rec *e, uint8_t k[EXTENT_KEY_SIZE],
		   uint8_t v[EXTENT_VAL_SIZE]);
int extent_decode(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
		  struct extent_rec *ret);
/* The value alone (the key's inode and offset are the caller's). */
int extent_val_decode(const uint8_t *v, size_t vl, struct hoard_id *ret_id,
		      uint32_t *ret_len);

/* Extended attributes (2): key inode + name (1..XATTR_NAME_LEN bytes, no
 * NUL; the core's names, the daemon's "hoard.*" rows among them), value
 * the attribute's bytes.  xattr_key: the key of name (whose length the
 * caller checked) into k (XATTR_KEY_MAX), its length returned.
 * xattr_key_decode: the inode, and the name as a pointer into k (not
 * NUL-terminated) with its length; -EBADMSG when malformed. */
#define XATTR_NAME_LEN 255
#define XATTR_KEY_MAX  (8 + XATTR_NAME_LEN)
size_t xattr_key(uint8_t *k, uint64_t ino, const char *name);
int xattr_key_decode(const uint8_t *k, size_t kl, uint64_t *ret_ino,
		     const char **ret_name, size_t *ret_name_len);

/* Volumes (2): key the name (1..VOLUME_NAME_MAX bytes; the characters
 * are the volume code's to check), value the root inode, u64. */
#define VOLUME_NAME_MAX 64
int volume_rec_decode(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
		      uint64_t *ret_root);

/* The clone.<DST> setting (2.1): the clone's root, u64, then (once
 * refcounts are being raised) the 16-byte id of the last chunk raised.
 * clone_rec_encode: raised NULL for none; returns the length (8 or
 * CLONE_REC_MAX).  clone_rec_decode: -EBADMSG unless n is 8 or
 * CLONE_REC_MAX; *ret_any says whether an id followed. */
#define CLONE_REC_MAX (8 + HOARD_ID_SIZE)
size_t clone_rec_encode(uint8_t v[CLONE_REC_MAX], uint64_t root,
			const struct hoard_id *raised);
int clone_rec_decode(const uint8_t *v, size_t n, uint64_t *ret_root,
		     struct hoard_id *ret_raised, bool *ret_any);

/* Integer settings (2.1): u32 or u64 big-endian, exactly that long. */
int setting_u32_decode(const uint8_t *v, size_t n, uint32_t *ret);
static inline int setting_u64_decode(const uint8_t *v, size_t n, uint64_t *ret)
{
	return u64_val_decode(v, n, ret);
}

/* A chunk's digest row (2.1): key "sha256." + the 16-byte chunk id,
 * value the 32-byte SHA-256 of its raw bytes.  sha_row_key: the key of
 * id into k.  sha_row_key_decode: the id; -EBADMSG unless k is exactly
 * such a key.  sha_row_val_decode: -EBADMSG unless n is 32. */
#define SHA_ROW_PREFIX	   "sha256."
#define SHA_ROW_PREFIX_LEN 7
#define SHA_ROW_KEY_LEN	   (SHA_ROW_PREFIX_LEN + HOARD_ID_SIZE)
#define SHA_ROW_VAL_LEN	   32
void sha_row_key(uint8_t k[SHA_ROW_KEY_LEN], const struct hoard_id *id);
int sha_row_key_decode(const uint8_t *k, size_t kl, struct hoard_id *ret_id);
int sha_row_val_decode(const uint8_t *v, size_t n,
		       uint8_t ret[SHA_ROW_VAL_LEN]);

/* The rollback mark (2.1, `signed-ref ` + location + ref): the newest
 * signed ref a trusted pull accepted from there, its time (i64,
 * big-endian), then its manifest's 32-byte SHA-256.
 * signed_ref_val_decode: -EBADMSG unless n is SIGNED_REF_VAL_LEN. */
#define SIGNED_REF_VAL_LEN (8 + 32)
void signed_ref_val_encode(uint8_t v[SIGNED_REF_VAL_LEN], int64_t time,
			   const uint8_t manifest[32]);
int signed_ref_val_decode(const uint8_t *v, size_t n, int64_t *ret_time,
			  uint8_t ret_manifest[32]);

#endif
