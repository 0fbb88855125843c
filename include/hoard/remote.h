/* SPDX-License-Identifier: MIT */
/*
 * remote: the objects hoard keeps in an S3 bucket (docs/REMOTE.md), encoded
 * and decoded with strict validation.  Layer 5: uses util, hash and digest
 * only; it does no I/O (fs/sync*.c move the bytes).
 *
 *   config          PREFIX/config: format, chunker, the chunk-id secret
 *   pack            PREFIX/packs/<sha256>.pack: header, then chunk frames
 *   pack index      PREFIX/packs/<sha256>.idx: what the pack holds, where
 *   manifest        PREFIX/manifests/<sha256>: one volume's tree
 *   ref             PREFIX/refs/<volume>/<name>: names a manifest
 *
 * Every decoder checks every field and returns -EBADMSG (or -EPROTONOSUPPORT
 * for a newer version) with one line in errbuf naming what is wrong; nothing
 * a decoder accepts can name a path outside the volume.
 *
 * Thread contract: no shared state; a struct belongs to one thread at a
 * time.
 */
#ifndef HOARD_REMOTE_H
#define HOARD_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hoard/digest.h"
#include "hoard/hash.h"
#include "hoard/sign.h"

#define HOARD_REMOTE_FORMAT   1
#define HOARD_CONFIG_SIZE     256
#define HOARD_PACK_TARGET     (32u << 20) /* cut a pack at this many bytes */
#define HOARD_PACK_MAX	      (64u << 20)
#define HOARD_PACK_MAGIC      "HOARDPK1"
#define HOARD_PACK_HEADER     24 /* magic + 16 random bytes */
#define HOARD_IDX_ENTRY_SIZE  32
#define HOARD_MANIFEST_MAX    (1u << 30)
#define HOARD_MANIFEST_HEADER 40
#define HOARD_MANIFEST_V1     1 /* extents: offset, length, chunk id */
#define HOARD_MANIFEST_V2     2 /* + SHA-256 of the chunk's bytes */
#define HOARD_REF_MAX	      4096
#define HOARD_SYMLINK_MAX     4095
#define HOARD_REMOTE_NAME_MAX 255
/* The largest file size, and the largest sum of a volume's file sizes, a
 * manifest or ref may hold: off_t's range (docs/REMOTE.md 5.3). */
#define HOARD_REMOTE_SIZE_MAX ((uint64_t)INT64_MAX)

/* ---- config ----------------------------------------------------------- */

struct hoard_remote_config {
	uint32_t format, chunker_version;
	uint32_t chunk_min, chunk_avg, chunk_max;
	uint32_t zstd_level; /* of the store that made it; informational */
	uint8_t secret[HOARD_SECRET_SIZE];
};

/* The config of a store keyed by secret, with this build's chunker. */
void hoard_remote_config_make(struct hoard_remote_config *c,
			      const uint8_t *secret, int zstd_level);
void hoard_remote_config_encode(const struct hoard_remote_config *c,
				uint8_t out[HOARD_CONFIG_SIZE]);
/* -EBADMSG (bad size, magic, checksum), -EPROTONOSUPPORT (a newer format or
 * another chunker than this build's). */
int hoard_remote_config_decode(const void *buf, size_t len,
			       struct hoard_remote_config *ret, char *errbuf,
			       size_t errlen);

/* ---- pack index -------------------------------------------------------- */

struct hoard_idx_entry {
	struct hoard_id id;
	uint64_t off;	    /* of the frame in the pack */
	uint32_t frame_len; /* bytes of the frame */
	uint32_t raw_len;   /* bytes of the chunk */
};

struct hoard_pack_index {
	uint8_t pack_sha[HOARD_SHA256_SIZE]; /* the pack's name */
	uint64_t pack_size;
	uint32_t n;
	struct hoard_idx_entry *e; /* in pack order */
};

/* Encoded size of an index of n entries. */
size_t hoard_pack_index_size(uint32_t n);
/* Encode into out (hoard_pack_index_size(ix->n) bytes). */
void hoard_pack_index_encode(const struct hoard_pack_index *ix, uint8_t *out);
/* Decode and check (frames back to back from HOARD_PACK_HEADER up to
 * pack_size, sane
 * lengths, checksum); *ret owns e (free with hoard_pack_index_clear). */
int hoard_pack_index_decode(const void *buf, size_t len,
			    struct hoard_pack_index *ret, char *errbuf,
			    size_t errlen);
void hoard_pack_index_clear(struct hoard_pack_index *ix);

/* ---- manifest ---------------------------------------------------------- */

enum hoard_mtype {
	HOARD_M_DIR = 1,
	HOARD_M_FILE = 2,
	HOARD_M_SYMLINK = 3,
	HOARD_M_HARDLINK = 4, /* another name of an earlier file entry */
	HOARD_M_NODE = 5,     /* fifo, socket, device */
};

struct hoard_mextent {
	uint64_t off;
	uint32_t len;
	struct hoard_id id;
	/* version 2: SHA-256 of the chunk's raw bytes (REMOTE.md 5.4) */
	uint8_t sha[HOARD_SHA256_SIZE];
};

struct hoard_mentry {
	uint8_t type;	 /* enum hoard_mtype */
	uint32_t parent; /* index of a directory entry; 0 for the root */
	char *name;	 /* "" for the root (entry 0) */
	uint32_t mode, uid, gid, rdev;
	int64_t mtime_s;
	uint32_t mtime_ns;
	uint64_t size; /* files; symlinks: target length */
	uint32_t n_ext;
	struct hoard_mextent *ext; /* files: sorted, not overlapping */
	char *target;		   /* symlinks */
	uint32_t link;		   /* hard links: the file entry's index */
};

struct hoard_manifest {
	uint32_t version;  /* HOARD_MANIFEST_V1 (0 is read as 1) or _V2 */
	uint8_t nonce[16]; /* random per push: a new name every time */
	size_t n, cap;
	struct hoard_mentry *e;
};

/* Entry 0 (the root directory) is added by hoard_manifest_init. */
int hoard_manifest_init(struct hoard_manifest *m, uint32_t root_mode,
			uint32_t uid, uint32_t gid, int64_t mtime_s,
			uint32_t mtime_ns);
void hoard_manifest_clear(struct hoard_manifest *m);
/* Append an entry (fields copied; name and target duplicated, ext moved:
 * on success the manifest owns e->ext).  Returns the new index or -errno.
 * Validation happens at encode and decode. */
long hoard_manifest_add(struct hoard_manifest *m, const struct hoard_mentry *e);
/* Validate and encode; *ret_buf is malloc()ed. */
int hoard_manifest_encode(const struct hoard_manifest *m, uint8_t **ret_buf,
			  size_t *ret_len, char *errbuf, size_t errlen);
/* Decode and validate every rule of docs/REMOTE.md section 5. */
int hoard_manifest_decode(const void *buf, size_t len,
			  struct hoard_manifest *ret, char *errbuf,
			  size_t errlen);
/* The entry's path from the volume root ("a/b"), for messages. */
void hoard_manifest_path(const struct hoard_manifest *m, size_t i, char *buf,
			 size_t n);

/* ---- chunk digests (manifest version 2, REMOTE.md 5.4) -------------------- */

/* One chunk of a manifest: its id, length and SHA-256. */
struct hoard_chunk_sha {
	struct hoard_id id;
	uint32_t len;
	uint8_t sha[HOARD_SHA256_SIZE];
};

/*
 * The distinct chunks a manifest names, sorted by id (*ret malloc()ed,
 * NULL when none).  with_sha: the manifest's digests are copied (version 2
 * only, else -EBADMSG), and one id with two digests or two lengths is
 * -EBADMSG (explained); without, only one id with two lengths is, and sha
 * is zero.
 */
int hoard_manifest_chunks(const struct hoard_manifest *m, bool with_sha,
			  struct hoard_chunk_sha **ret, size_t *ret_n,
			  char *errbuf, size_t errlen);
/* Give every extent its chunk's digest from t (sorted by id) and make m
 * version 2; -ENOENT when a chunk is not in t. */
int hoard_manifest_set_shas(struct hoard_manifest *m,
			    const struct hoard_chunk_sha *t, size_t n);
/* The entry of id in t (sorted by id), or NULL. */
const struct hoard_chunk_sha *hoard_chunk_sha_find(
	const struct hoard_chunk_sha *t, size_t n, const struct hoard_id *id);
/* 0 when the SHA-256 of the n bytes at raw is sha, else -EBADMSG. */
int hoard_chunk_sha_verify(const void *raw, size_t n,
			   const uint8_t sha[HOARD_SHA256_SIZE]);

/* ---- ref ---------------------------------------------------------------- */

struct hoard_ref {
	char manifest[HOARD_SHA256_HEX_SIZE]; /* hex SHA-256 */
	uint64_t files, bytes;		      /* of the volume */
	int64_t time;			      /* unix seconds of the push */
	bool is_signed;			      /* version 2 (REMOTE.md 6.1) */
	struct hoard_pubkey key;	      /* signed: the signer */
	uint8_t sig[HOARD_SIGN_SIG_SIZE];     /* signed: Ed25519 */
};

/* Where a ref lives: what its signature binds besides its own fields. */
struct hoard_ref_site {
	uint8_t repo[HOARD_SHA256_SIZE]; /* SHA-256 of the config object */
	const char *bucket;
	const char *prefix; /* "" or ends with '/' */
	const char *volume, *name;
};

/* Version 1 text, or version 2 when r->is_signed; *ret is malloc()ed. */
int hoard_ref_encode(const struct hoard_ref *r, char **ret, size_t *ret_len);
/* Versions 1 and 2; -EPROTONOSUPPORT for a later one. */
int hoard_ref_decode(const void *buf, size_t len, struct hoard_ref *ret,
		     char *errbuf, size_t errlen);
/* The bytes a signature covers (REMOTE.md 6.1); *ret is malloc()ed. */
int hoard_ref_signed_text(const struct hoard_ref *r,
			  const struct hoard_ref_site *site, char **ret,
			  size_t *ret_len);
/* Sign r where it will live (sets is_signed, key, sig). */
int hoard_ref_sign(struct hoard_ref *r, const struct hoard_sign_key *k,
		   const struct hoard_ref_site *site);
/* 0 when r is signed and its signature verifies for site; -EBADMSG when
 * it does not, -ENOKEY when r is unsigned. */
int hoard_ref_verify(const struct hoard_ref *r,
		     const struct hoard_ref_site *site);
/*
 * The pull's rule: with no trusted key, an unsigned ref passes and a signed
 * one must verify; with trusted keys, the ref must be signed by one of them
 * and verify.  -EKEYREJECTED (unsigned, or another key) or -EBADMSG (a
 * signature that does not verify), explained in errbuf.
 */
int hoard_ref_check_trust(const struct hoard_ref *r,
			  const struct hoard_ref_site *site,
			  const struct hoard_pubkey *trusted, size_t n_trusted,
			  char *errbuf, size_t errlen);
/* A ref name: 1-64 of [A-Za-z0-9._-], not starting with '.'. */
bool hoard_ref_name_ok(const char *name);

/* ---- remote chunk index: id -> where ------------------------------------ */

struct hoard_rloc {
	uint32_t pack; /* index into the caller's pack table */
	uint32_t frame_len, raw_len;
	uint64_t off;
};

struct hoard_rindex;
struct hoard_rindex *hoard_rindex_new(void);
void hoard_rindex_free(struct hoard_rindex *x);
/* Add (keeps the first location of an id).  0 or -ENOMEM. */
int hoard_rindex_add(struct hoard_rindex *x, const struct hoard_id *id,
		     const struct hoard_rloc *loc);
const struct hoard_rloc *hoard_rindex_get(const struct hoard_rindex *x,
					  const struct hoard_id *id);
size_t hoard_rindex_count(const struct hoard_rindex *x);
/* Call fn for every id until it returns non-zero (then returns that). */
int hoard_rindex_foreach(const struct hoard_rindex *x,
			 int (*fn)(void *ud, const struct hoard_id *id,
				   const struct hoard_rloc *loc),
			 void *ud);

#endif
