/* SPDX-License-Identifier: MIT */
/*
 * volume: whole-volume operations of the filesystem core (layer 4, over
 * fs.h's internals): list the store's volumes, clone one (metadata only:
 * the clone shares every chunk), remove one.  Folding one volume's files
 * into another with pull's merge rule is hoard_sync_merge (sync.h).
 *
 * Thread contract: every function may be called from any thread while
 * FUSE threads use the same struct hoard_fs.  Clone walks a RocksDB
 * snapshot taken under fs->lock (the source as of that instant: every
 * file as its last commit left it, as push's snapshot) and writes the
 * new volume's records in batches without the lock; it holds fs->lock
 * only to take the snapshot, to reserve inode numbers and to publish
 * (refcounts and the volume's row in one batch), so the mounts' requests
 * go on meanwhile.  Until published the records belong to no volume; a
 * crash leaves them behind a settings key (docs/FORMAT.md 2.1, `clone.`)
 * that the next start removes (hoard_volume_recover).  Remove (volrm.c)
 * walks a snapshot without fs->lock too, unlists the volume and writes a
 * settings key (`rm.`) in one synced batch, then removes the inodes in
 * short holds of fs->lock; a crash leaves the key, and the next start
 * finishes the removal.  All return 0 or -errno, with one line in
 * errbuf.
 */
#ifndef HOARD_VOLUME_H
#define HOARD_VOLUME_H

#include <stddef.h>
#include <stdint.h>

#include "hoard/fs.h"

struct hoard_volume_info {
	char name[65];
	uint64_t root; /* the root directory's inode number */
};

/* Every volume, in name order; *ret is malloc()ed (free it). */
int hoard_volume_list(struct hoard_fs *fs, struct hoard_volume_info **ret,
		      size_t *ret_n);

struct hoard_volume_result {
	uint64_t inodes;       /* copied or removed, the root included */
	uint64_t files;	       /* regular files among them */
	uint64_t bytes;	       /* their logical size */
	uint64_t extents;      /* extent records copied or removed */
	uint64_t chunks;       /* distinct chunks whose refcount changed */
	uint64_t chunks_freed; /* remove: chunks whose last reference went */
	uint64_t records;      /* records written (clone: in every batch) */
	double seconds;
	double locked_seconds;	   /* of them, holding fs->lock (all holds) */
	double locked_max_seconds; /* the longest single hold */
	unsigned tries;		   /* clone: snapshots walked (see below) */
};

/*
 * A new volume dst with src's whole tree: new inode numbers (from
 * next_ino), the same names, modes, owners, times, hard links, symlink
 * targets, xattrs and extents; every chunk's refcount goes up by the
 * extents that now name it, and no chunk byte is written.
 * -ENOENT: no volume src; -EEXIST: dst exists (or a clone to it is under
 * way); -EINVAL: bad name; -EBADMSG: src names a chunk with no record
 * (run fsck).  A chunk of the snapshot may be freed by a mount before the
 * clone counts it: the clone is then undone and tried again from a new
 * snapshot, and after CLONE_TRIES (3) such losses done under fs->lock.
 */
int hoard_volume_clone(struct hoard_fs *fs, const char *src, const char *dst,
		       struct hoard_volume_result *res, char *errbuf,
		       size_t errlen);

/*
 * Remove the records of clones a crash interrupted (their `clone.` keys)
 * and finish the removals it interrupted (`rm.` keys), before the
 * filesystem serves anything (hoard_fs_new).  0 or -errno; each is
 * logged.
 */
int hoard_volume_recover(struct hoard_fs *fs);

/*
 * Remove volume name and everything in it; chunks whose refcount drops to
 * 0 go with their frames.  -ENOENT: no such volume; -EBUSY: a file of it
 * is open (nothing removed), or a removal of an earlier volume of that
 * name is under way.  The caller refuses a mounted volume and mounts
 * none while it is removed (the daemon knows its mounts; fs.h does not).
 * An error after the volume was unlisted leaves the rest to the next
 * start (errbuf says so).
 */
int hoard_volume_remove(struct hoard_fs *fs, const char *name,
			struct hoard_volume_result *res, char *errbuf,
			size_t errlen);

/* One JSON object for a result (jansson), '\n'-terminated, malloc()ed;
 * NULL on ENOMEM. */
char *hoard_volume_result_json(const char *op, const char *name,
			       const struct hoard_volume_result *res);

#endif
