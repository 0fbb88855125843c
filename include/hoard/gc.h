/* SPDX-License-Identifier: MIT */
/*
 * gc: give the space of deleted chunks back to the filesystem.  Layer 5:
 * uses store.
 *
 * Chunks themselves are reclaimed as they die: the batch that drops a
 * chunk's last reference deletes its record and its frame (docs/FORMAT.md
 * 2.3).  What stays is RocksDB's: tombstones and the dead blobs inside blob
 * files, until compaction and blob garbage collection rewrite them.
 * hoard_gc_run() forces both (hoard_store_gc) and measures the store
 * directory before and after.
 *
 * Thread contract: hoard_gc_run may run while other threads use the store
 * (the daemon answers the control request `gc` with it); it blocks until
 * the compaction is done.
 */
#ifndef HOARD_GC_H
#define HOARD_GC_H

#include <stdint.h>

#include "hoard/store.h"

struct hoard_gc_report {
	uint64_t disk_before, disk_after; /* allocated bytes under the store
					   * directory (st_blocks * 512) */
	uint64_t db_before, db_after;	  /* RocksDB's live SST + blob bytes */
	double seconds;			  /* time the compaction took */
};

int hoard_gc_run(struct hoard_store *st, struct hoard_gc_report *ret);
/* Allocated bytes of every file under dir (not following symlinks); 0 or
 * -errno. */
int hoard_gc_disk_usage(const char *dir, uint64_t *ret_bytes);
/* malloc()ed one-line JSON object + "\n"; NULL on ENOMEM. */
char *hoard_gc_json(const struct hoard_gc_report *r);
/* Read back hoard_gc_json()'s output; 0 or -EBADMSG. */
int hoard_gc_from_json(const char *json, struct hoard_gc_report *ret);

#endif
