/* SPDX-License-Identifier: MIT */
/*
 * core: what the layers above the filesystem core do to its state, as
 * named operations (issue 15 item 1).  Eviction and fsck (fs/policy) and
 * push, pull and lazy fetch (fs/remote) use this header, records.h and
 * idmap.h; the core's private header (fs/core/fs-internal.h) stays inside
 * fs/core.  Implemented in fs/core/core.c over the core's internals.
 *
 * Thread and lock contract.  The core has one metadata lock (fs->lock,
 * see fs.h: it serializes metadata changes and chunk refcounts; lock
 * order: an inode's data rwlock, then fs->lock, then an inode's field
 * mutex).  Every function here takes and drops it itself, or needs none,
 * as each says; a caller never holds it.  Three callbacks run with it
 * held and must call nothing that takes it (their own locks only):
 * hoard_core_read_locked()'s fn, hoard_core_install_file()'s locate and
 * the remote's locate hook (eviction asks it under the lock).  The other
 * remote hooks (fetch, ahead, locate_refresh) are called without it, from
 * any thread, at once.  All functions may be called from any thread at
 * once.  Return values: 0 or a count, or -errno.
 */
#ifndef HOARD_CORE_H
#define HOARD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hoard/fs.h"
#include "hoard/hash.h"
#include "hoard/idmap.h"
#include "hoard/records.h"
#include "hoard/store.h"

/* ---- readers: no lock taken or needed (one record, read atomically) ---- */

/* The chunk record of id: 0, -ENOENT, -EBADMSG. */
int chunk_rec_load(struct hoard_fs *fs, const struct hoard_id *id,
		   struct chunk_rec *ret);
/* The stored inode record of ino (not the size or times of a file being
 * written, which live in memory until its commit). */
int inode_load(struct hoard_fs *fs, uint64_t ino, struct hoard_inode *ret);
/* Read and verify a local chunk (a new buffer). */
int chunks_load_local(struct hoard_fs *fs, const struct hoard_id *id,
		      uint32_t raw_size, uint8_t **ret_data);
/* Put a copy of verified chunk bytes into the decompressed cache. */
void chunks_cache_put(struct hoard_fs *fs, const struct hoard_id *id,
		      const uint8_t *data, uint32_t len);
/* The distinct chunk ids of ino's extents, in file order (a new array the
 * caller frees); -EBADMSG on an extent record of the wrong size. */
int hoard_core_file_chunk_ids(struct hoard_store *st, uint64_t ino,
			      struct hoard_id **ret_ids, size_t *ret_n);
/* The frame bytes of the distinct chunks the files inos[0..n) use. */
int hoard_core_files_frame_bytes(struct hoard_store *st, const uint64_t *inos,
				 size_t n, uint64_t *ret);

/* ---- a consistent view ---------------------------------------------------- */

/*
 * Run fn(fs, ud) with fs->lock held: no metadata change and no commit
 * lands while it runs, so what it reads (with the readers above and
 * hoard_store_* iterators) is one state of the store (push's snapshot of
 * a volume).  fn must not call anything that takes fs->lock (every
 * hoard_fs_* and hoard_core_* function but the readers above).  Returns
 * fn's value.
 */
int hoard_core_read_locked(struct hoard_fs *fs,
			   int (*fn)(struct hoard_fs *fs, void *ud), void *ud);

/* ---- the remote: lazy fetch, where chunks are (fs/remote/lazy.c) ---------- */

/* Fetches a chunk that is not local: verified raw bytes in a new buffer of
 * rec->raw_size bytes, or -EIO / -errno. */
typedef int (*hoard_fetch_fn)(void *ud, const struct hoard_id *id,
			      const struct chunk_rec *rec, uint8_t **ret_data);
/* A reader that fetched is about to read on: the next chunks of its file
 * (fetched in the background when they are not local). */
typedef void (*hoard_ahead_fn)(void *ud, const struct hoard_id *ids,
			       const uint32_t *lens, size_t n);

struct hoard_core_remote {
	hoard_fetch_fn fetch;
	hoard_ahead_fn ahead;
	/* Where a local chunk is in the remote (its pack index): 0 and rec's
	 * location (and frame_size: the pack's frame) filled, or -ENOENT.
	 * Called with fs->lock held (the eviction). */
	int (*locate)(void *ud, const struct hoard_id *id,
		      struct chunk_rec *rec);
	/* Re-read the bucket's index (slow; called with no lock held). */
	void (*locate_refresh)(void *ud);
};

/* Serve chunks that are not local through h (called with ud).  Before the
 * filesystem serves; h is copied. */
void hoard_core_remote_attach(struct hoard_fs *fs,
			      const struct hoard_core_remote *h, void *ud);
/* Stop using the hooks attached with ud (nothing when others are). */
void hoard_core_remote_detach(struct hoard_fs *fs, void *ud);
/* Ask the remote to re-read where chunks are (nothing without one). */
void hoard_core_remote_refresh(struct hoard_fs *fs);

/* A fetched chunk's verified frame goes in, with the record's flag bit 0,
 * in one batch, unless the record went away (its last file was deleted)
 * or the chunk is local already: then nothing and 0. */
int hoard_core_chunk_fetched(struct hoard_fs *fs, const struct hoard_id *id,
			     const uint8_t *frame, uint32_t flen);
/* Point the record of a chunk that is not local at its new place in the
 * remote (moved's pack, pack_off, frame_size); nothing when it is local
 * now or gone. */
int hoard_core_chunk_relocate(struct hoard_fs *fs, const struct hoard_id *id,
			      const struct chunk_rec *moved);

/* ---- pull: a file's content from a remote (fs/remote/syncpull.c) ------- */

/* A trusted pull writes chunk digest rows (FORMAT 2.1 `sha256.`) before
 * the files that name those chunks: between hold (true) and release
 * (false), a chunk freed keeps its row (else a chunk freed and named
 * again by the pull would lose it); other frees delete it.  Takes the
 * core's lock itself. */
void hoard_core_digests_hold(struct hoard_fs *fs, bool hold);

/* Make sure a chunk's frame is in the store (confirming a dedup hit byte
 * for byte) and count it in flight, so that nothing deletes it before the
 * file that uses it is installed.  Returns its frame size.  Takes the
 * core's lock itself. */
int chunks_stage(struct hoard_fs *fs, const struct hoard_id *id,
		 const void *raw, size_t len, uint32_t *ret_frame_size);
/* Drop the in-flight counts of chunks_stage (m: id -> times staged). */
void hoard_core_unstage(struct hoard_fs *fs, struct idmap *m);

struct hoard_core_extent {
	uint64_t off;
	uint32_t len;
	struct hoard_id id;
};

/* A regular file's content and metadata, as a pull installs it. */
struct hoard_core_file {
	uint64_t size;
	uint32_t mode; /* permission bits (07777) */
	uint32_t uid, gid;
	struct timespec mtime;
	const struct hoard_core_extent *ext; /* sorted, not overlapping */
	size_t n_ext;
};

/*
 * Give the new, empty regular file ino f's content, in one batch through
 * the core's one commit path (the one of close and fsync): the extents,
 * the chunks' refcounts, the inode (size, mode, owner, mtime); not synced
 * (a pull syncs the store at its end).  Every chunk must be local: staged
 * (in `staged`, whose frame sizes are used) or recorded with its frame and
 * a reference; or, when remote_ok, recorded with a remote location; or,
 * with locate (lazy pull), be where locate says (filled: raw_size,
 * frame_size, pack, pack_off), and then the record made points there.
 * -EAGAIN when a chunk is none of these (it went away: fetch again).
 * Takes the core's lock; locate is called with it held and must take no
 * lock of the core.
 */
int hoard_core_install_file(struct hoard_fs *fs, uint64_t ino,
			    const struct hoard_core_file *f,
			    struct idmap *staged, bool remote_ok,
			    int (*locate)(void *ud, const struct hoard_id *id,
					  struct chunk_rec *ret),
			    void *ud);

/* ---- eviction (fs/policy/evict.c) ----------------------------------------- */

/* A name of a file as a scan saw it. */
struct hoard_core_name {
	uint64_t ino, parent;
	char *name;
};

/*
 * Evict the regular file ino with the n names (n <= 64) a scan saw: unless
 * it is open, has data not committed, was linked, unlinked or pinned
 * (pin_xattr) since, or a name no longer names it.  With a remote the
 * file stays and the local frames of the chunks only it uses and the
 * remote holds are dropped (docs/FORMAT.md 2.5); without one every name is
 * unlinked (removed[i]: name i went).  Returns the bytes freed; *ret_done
 * tells whether anything was done.
 */
uint64_t hoard_core_evict_file(struct hoard_fs *fs, uint64_t ino,
			       const struct hoard_core_name *names, size_t n,
			       const char *pin_xattr, bool *removed,
			       bool *ret_done);
/*
 * Store use as ino's last use (the xattr use_xattr) when it is at least
 * gran later than the stored one and than the file's atime and mtime
 * (which stand for it to within gran: eviction ranks by the latest of the
 * three), unless the file is gone or has data not committed.  Returns the
 * last use the store stands for afterwards (0: none; use itself when the
 * atime or mtime stands for it), or -1ull when the file was skipped.
 */
uint64_t hoard_core_store_use(struct hoard_fs *fs, uint64_t ino,
			      const char *use_xattr, uint64_t use,
			      uint64_t gran);
/* Frame bytes deleted since the last blob gc; and what a gc took away. */
uint64_t hoard_core_garbage_bytes(struct hoard_fs *fs);
void hoard_core_garbage_done(struct hoard_fs *fs, uint64_t bytes);

#endif
