/* SPDX-License-Identifier: MIT */
/*
 * evict: the size budget (cache policy, layer 6).  Uses the filesystem core
 * (fs.h and its internals: the metadata lock, in-memory inode states, the
 * unlink path) and the store.  No FUSE: the daemon learns of each eviction
 * through a callback and tells the kernel.
 *
 * Budget: when the store's stored bytes (frames of chunks with a reference,
 * what `hoard stats` calls stored_bytes) pass max_bytes, whole regular files
 * are removed, least recently used first, until stored bytes are at or under
 * the low-water mark (low_pct percent of max_bytes, default 90).  Without a
 * remote a removal is an unlink of every name of the file, through the same
 * code as unlink(2), so link counts, orphans and refcounts stay right.  Each
 * removal is counted by what it really frees: the frames of the chunks that
 * no other file shares.
 *
 * Never removed: files that are open or have uncommitted data, files with a
 * name under a pin (HOARD_PIN_XATTR on the file or on any directory above
 * it), and anything that is not a regular file.
 *
 * Recency: the daemon's last use of a file (open or release, kept in memory,
 * nanoseconds), else the latest of its stored last use (HOARD_USE_XATTR),
 * atime and mtime.  A use is stored at most once per
 * HOARD_EVICT_ATIME_GRAN_S per file (by the eviction thread, and when it
 * stops), so that ranking survives a restart without a write per open.
 * The inode's atime is never touched: it stays what the user set.
 *
 * Thread contract: all functions may be called from any thread.  The pass
 * takes fs->lock once per file it removes (never for the whole pass), so
 * readers and writers wait at most for one file's unlink.  The callback is
 * called from the eviction thread with no lock held.
 */
#ifndef HOARD_EVICT_H
#define HOARD_EVICT_H

#include <stdbool.h>
#include <stdint.h>

#include "hoard/fs.h"
#include "hoard/store.h"

/* The xattr that pins a file or a whole tree (value ignored). */
#define HOARD_PIN_XATTR "user.hoard.pin"
/* The file's last use (u64 ns, big-endian), a row of the xattrs column
 * family under a name outside every xattr namespace: no one can get, set
 * or list it (dir.c), and purging the inode deletes it with its xattrs. */
#define HOARD_USE_XATTR "hoard.use"
/* The store setting (docs/FORMAT.md 2.1). */
#define HOARD_MAX_SIZE_KEY	 "max_size"
#define HOARD_EVICT_LOW_PCT	 90
#define HOARD_EVICT_ATIME_GRAN_S 600

/* A file was removed: its name in directory parent of a volume whose root
 * is volume_root. */
typedef void (*hoard_evict_fn)(void *ud, uint64_t volume_root, uint64_t parent,
			       uint64_t ino, const char *name);

struct hoard_evict_opts {
	uint64_t max_bytes; /* 0: no budget (only recency is kept) */
	unsigned low_pct;   /* 1..100; 0 means HOARD_EVICT_LOW_PCT */
	hoard_evict_fn evicted;
	void *ud;
};

struct hoard_evict_counts {
	uint64_t max_bytes, low_bytes; /* the budget in force (0: none) */
	uint64_t files, bytes;	       /* removed since start, bytes freed */
	uint64_t passes;	       /* passes that found the store over */
};

struct hoard_evict;

/* Make the state; no thread runs until hoard_evict_start. */
int hoard_evict_new(struct hoard_fs *fs, const struct hoard_evict_opts *o,
		    struct hoard_evict **ret);
/* Start the background thread. */
int hoard_evict_start(struct hoard_evict *ev);
/* Stop the thread, write pending atimes, free; accepts NULL. */
void hoard_evict_free(struct hoard_evict *ev);

/* A use of ino (open, release).  Cheap: one mutex, no I/O. */
void hoard_evict_touch(struct hoard_evict *ev, uint64_t ino);
/* Stored bytes may have grown: check within about a second. */
void hoard_evict_poke(struct hoard_evict *ev);
/* Change the budget (0: none). */
void hoard_evict_set_budget(struct hoard_evict *ev, uint64_t max_bytes);
void hoard_evict_get_counts(struct hoard_evict *ev,
			    struct hoard_evict_counts *ret);

/*
 * One pass now, in the caller's thread: if stored bytes exceed the budget,
 * remove files down to the low-water mark.  *ret_stored (may be NULL) gets
 * the stored bytes after the pass as counted by it (0 with no budget: then
 * nothing is scanned).  0 or -errno.
 */
int hoard_evict_pass(struct hoard_evict *ev, uint64_t *ret_stored);

/* Store-level helpers (no filesystem needed; the CLI uses them offline). */
/* The store's max_size setting; 0 when none. */
int hoard_budget_get(struct hoard_store *st, uint64_t *ret);
/* Set it; 0 removes it. */
int hoard_budget_set(struct hoard_store *st, uint64_t max_bytes);
/* Sum of frame sizes of chunks with a reference (stats' stored_bytes). */
int hoard_budget_stored_bytes(struct hoard_store *st, uint64_t *ret);
/* Frames of the distinct chunks of pinned files (counted once each). */
int hoard_budget_pinned_bytes(struct hoard_store *st, uint64_t *ret);

#endif
