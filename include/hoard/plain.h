/* SPDX-License-Identifier: MIT */
/*
 * plain: the plain-file tier (docs/FORMAT.md section 7).  Decompressed
 * copies of committed regular files, kept as STORE/plain/<ino>, so that the
 * FUSE front end can hand read-only opens to the kernel (FUSE passthrough)
 * and reads, mmap and splice run at local-disk speed.  The store stays the
 * truth: a copy is made only from chunks verified against their ids, by one
 * worker thread, written under a temporary name and renamed into place; it
 * is dropped at once when its file changes (the core's change paths call
 * the hooks in fs-internal.h), least recently used first when the tier's
 * budget needs room, and all of them when the daemon starts or stops.
 *
 * Layer 4 (next to file.c): uses the store, the extents and the chunks.
 *
 * Thread contract: every function may be called from any thread at once.
 * One mutex (inside the tier) protects its index and job queue; copying
 * runs on the worker without it and without any inode lock (a change while
 * a copy is under way marks the job stale, and the copy is thrown away).
 */
#ifndef HOARD_PLAIN_H
#define HOARD_PLAIN_H

#include <stdbool.h>
#include <stdint.h>

struct hoard_fs;
struct hoard_plain;

struct hoard_plain_opts {
	uint64_t max_bytes; /* the tier's budget (bytes of copies) */
	uint64_t min_file;  /* files below this size get no copy */
};

struct hoard_plain_counts {
	uint64_t bytes, files;		/* copies present and their sizes */
	uint64_t hits;			/* opens answered with a copy */
	uint64_t made, dropped, failed; /* since the tier started */
};

/* Start the tier of fs: makes STORE/plain, deletes what is in it (copies
 * of an earlier daemon are never trusted), starts the worker, and attaches
 * itself to fs.  -errno on failure (the daemon then runs without it). */
int hoard_plain_new(struct hoard_fs *fs, const struct hoard_plain_opts *o,
		    struct hoard_plain **ret_pl);
/* Without a tier: delete what an earlier daemon left in STORE/plain. */
void hoard_plain_clear(struct hoard_fs *fs);
/* Stop the worker, delete every copy, detach from fs; accepts NULL.  Call
 * it before hoard_fs_free, with no FUSE request running. */
void hoard_plain_free(struct hoard_plain *pl);
void hoard_plain_get_counts(struct hoard_plain *pl,
			    struct hoard_plain_counts *ret);
/* 1 when ino has a verified copy now. */
bool hoard_plain_present(struct hoard_plain *pl, uint64_t ino);
/* Wait until the worker has no job (tests, the fsck of a live tier). */
void hoard_plain_idle(struct hoard_plain *pl);

#endif
