/* SPDX-License-Identifier: MIT */
/*
 * idmap: a hash map from chunk id to counters over the one hash table
 * (htab.h: open addressing, linear probing, backward-shift deletion), the
 * core's (fs/core/idmap.c) and the layers' above it that count or
 * deduplicate chunk ids (push, pull).
 *
 * Thread contract: none inside; a map is used by one thread at a time, or
 * under the lock its owner documents (the core's in-flight map: fs->lock).
 */
#ifndef HOARD_IDMAP_H
#define HOARD_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hoard/hash.h"
#include "hoard/htab.h"

struct idmap_ent {
	struct hoard_id id;
	int64_t count;
	uint32_t raw_size, frame_size;
	bool writing;	/* inflight only: the frame is being written */
	bool unflushed; /* inflight only: written without the WAL, no flush
			 * has made it durable yet */
	/* inflight only: the chunk's record as the stage read it, while
	 * hoard_store_chunk_writes() is still rec_gen (fs/core/chunks.c):
	 * rec 0 unknown, 1 none, 2 a record without a remote location
	 * (rec_flags, rec_raw, rec_frame, rec_refcount) */
	uint8_t rec, rec_flags;
	uint32_t rec_raw, rec_frame;
	uint64_t rec_refcount, rec_gen;
};
struct idmap {
	struct hoard_htab t; /* entries: struct idmap_ent (htab.h) */
};

int idmap_init(struct idmap *m, size_t cap);
void idmap_free(struct idmap *m);
struct idmap_ent *idmap_get(struct idmap *m, const struct hoard_id *id);
/* Find or insert (count 0); NULL on ENOMEM. */
struct idmap_ent *idmap_add(struct idmap *m, const struct hoard_id *id);
void idmap_del(struct idmap *m, const struct hoard_id *id);
/* Walk: the entry after prev (NULL: the first), or NULL at the end; not
 * across an add or del. */
struct idmap_ent *idmap_next(const struct idmap *m,
			     const struct idmap_ent *prev);

#endif
