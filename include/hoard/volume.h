/* SPDX-License-Identifier: MIT */
/*
 * volume: whole-volume operations of the filesystem core (layer 4, over
 * fs.h's internals): list the store's volumes, clone one (metadata only:
 * the clone shares every chunk), remove one.  Folding one volume's files
 * into another with pull's merge rule is hoard_sync_merge (sync.h).
 *
 * Thread contract: every function may be called from any thread while
 * FUSE threads use the same struct hoard_fs.  Clone and remove each hold
 * fs->lock for their whole walk, so they see (and leave) the store as of
 * one instant: every file as its last commit left it, as push's snapshot
 * does.  Metadata operations of the mounts wait meanwhile (clone: about
 * 0.1-0.3 s per 10,000 files here, see README).  Each is one synced
 * WriteBatch: a crash leaves the store before or after it, never between.
 * All return 0 or -errno, with one line in errbuf.
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
	uint64_t records;      /* records in the WriteBatch written */
	double seconds;
};

/*
 * A new volume dst with src's whole tree: new inode numbers (from
 * next_ino), the same names, modes, owners, times, hard links, symlink
 * targets, xattrs and extents; every chunk's refcount goes up by the
 * extents that now name it, and no chunk byte is written.
 * -ENOENT: no volume src; -EEXIST: dst exists; -EINVAL: bad name;
 * -EBADMSG: src names a chunk with no record (run fsck).
 */
int hoard_volume_clone(struct hoard_fs *fs, const char *src, const char *dst,
		       struct hoard_volume_result *res, char *errbuf,
		       size_t errlen);

/*
 * Remove volume name and everything in it; chunks whose refcount drops to
 * 0 go with their frames.  -ENOENT: no such volume; -EBUSY: a file of it
 * is open.  The caller refuses a mounted volume (the daemon knows its
 * mounts; fs.h does not).
 */
int hoard_volume_remove(struct hoard_fs *fs, const char *name,
			struct hoard_volume_result *res, char *errbuf,
			size_t errlen);

/* One JSON object for a result (jansson), '\n'-terminated, malloc()ed;
 * NULL on ENOMEM. */
char *hoard_volume_result_json(const char *op, const char *name,
			       const struct hoard_volume_result *res);

#endif
