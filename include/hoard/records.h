/* SPDX-License-Identifier: MIT */
/*
 * records: the bytes of the core's records in the store (docs/FORMAT.md 2):
 * their sizes, decoded forms and codecs, for the core and for the layers
 * above that read the store directly (fsck, the budget's scans, push's
 * snapshot).  Implemented in fs/core (meta.c: inodes; chunks.c: chunk
 * records); issue 15 item 2 gathers every record codec in one module.
 *
 * Thread contract: pure functions of their arguments, callable from any
 * thread; nothing here takes a lock.
 */
#ifndef HOARD_RECORDS_H
#define HOARD_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define INODE_REC_SIZE	  80
#define CHUNK_REC_SIZE	  24 /* version 1: no remote location */
#define CHUNK_REC_V2_SIZE 64 /* version 2: + pack SHA-256 + offset */
#define EXTENT_KEY_SIZE	  16
#define EXTENT_VAL_SIZE	  20
#define NAME_MAX_LEN	  255

/* Decoded inode record (docs/FORMAT.md 2.2). */
struct hoard_inode {
	uint32_t mode, uid, gid, nlink, rdev;
	uint64_t size, volume;
	struct timespec atime, mtime, ctime;
	char *target; /* symlinks: malloc()ed, NUL-terminated */
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

/* meta.c */
/* The 8-byte big-endian key (or key prefix) of ino. */
void ino_key(uint8_t k[8], uint64_t ino);
/* Decode an inode record; -EBADMSG when malformed. */
int inode_decode(const uint8_t *v, size_t n, struct hoard_inode *ret);
/* Free what a decoded inode holds (its target). */
void inode_clear(struct hoard_inode *in);

/* chunks.c */
/* Encode r (version 1, or 2 when has_loc) into v; returns its length. */
size_t chunk_rec_encode(const struct chunk_rec *r, uint8_t *v);
/* Decode a record value; -EBADMSG when malformed. */
int chunk_rec_decode(const uint8_t *v, size_t n, struct chunk_rec *ret);

#endif
