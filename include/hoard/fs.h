/* SPDX-License-Identifier: MIT */
/*
 * fs: the filesystem core, with no FUSE in it.  Layer 4 (meta) and the data
 * path: uses store, chunker, hash, codec.  hoardfs.c is a thin front end
 * that turns FUSE requests into these calls and errno values into replies.
 *
 * Inode numbers here are the store's (>= 16, never reused).  The front end
 * maps each mount's FUSE_ROOT_ID to its volume's root inode.
 *
 * Lookup counting follows the FUSE contract: every successful call that
 * returns a struct stat for a (new) name -- lookup, mknod, mkdir, symlink,
 * link, create -- counts one lookup, and hoard_fs_forget() drops them.  An
 * inode whose nlink is 0 is deleted when its last lookup and its last open
 * handle are gone (until then it is listed in the orphans column family, so
 * a crash cannot leak it).
 *
 * Thread contract: every function may be called from any thread at once.
 * One mutex (fs->lock) serializes metadata changes and chunk refcounts;
 * each inode's data has a reader/writer lock; data is chunked, hashed and
 * compressed outside both.  Lock order: inode rwlock, then fs->lock, then an
 * inode's field mutex.  All functions return 0 / a size, or -errno; a
 * corrupt chunk is -EBADMSG (the front end answers EIO).
 */
#ifndef HOARD_FS_H
#define HOARD_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "hoard/store.h"

struct hoard_fs;
struct hoard_fh;
struct hoard_dirh;

struct hoard_fs_opts {
	size_t cache_bytes; /* decompressed-chunk cache (default 64 MiB) */
};

/* Open the filesystem over an open store: recovers from a crash (drops
 * uncommitted staging files, purges orphans, sweeps frames of interrupted
 * commits). */
int hoard_fs_new(struct hoard_store *st, const struct hoard_fs_opts *o,
		 struct hoard_fs **ret_fs);
/* Commit what is dirty, purge orphans, mark the store clean; accepts NULL.
 * Does not close the store. */
void hoard_fs_free(struct hoard_fs *fs);
struct hoard_store *hoard_fs_store(struct hoard_fs *fs);

/* Root inode of a volume; create it when missing and create is true. */
int hoard_fs_volume(struct hoard_fs *fs, const char *name, bool create,
		    uint64_t *ret_root);
/* 1 when name is a valid volume name (hoard_name_ok, util.h). */
bool hoard_fs_volume_name_ok(const char *name);

/* Caller identity for new inodes. */
struct hoard_ctx {
	uid_t uid;
	gid_t gid;
};

int hoard_fs_lookup(struct hoard_fs *fs, uint64_t parent, const char *name,
		    struct stat *ret_st);
void hoard_fs_forget(struct hoard_fs *fs, uint64_t ino, uint64_t nlookup);
/* Count a lookup the front end made itself (e.g. for a mount's root). */
void hoard_fs_ref(struct hoard_fs *fs, uint64_t ino);
int hoard_fs_getattr(struct hoard_fs *fs, uint64_t ino, struct stat *ret_st);

#define HOARD_SET_MODE	    (1 << 0)
#define HOARD_SET_UID	    (1 << 1)
#define HOARD_SET_GID	    (1 << 2)
#define HOARD_SET_SIZE	    (1 << 3)
#define HOARD_SET_ATIME	    (1 << 4)
#define HOARD_SET_MTIME	    (1 << 5)
#define HOARD_SET_ATIME_NOW (1 << 7)
#define HOARD_SET_MTIME_NOW (1 << 8)
#define HOARD_SET_CTIME	    (1 << 10)
/* to_set: HOARD_SET_*; fh may be NULL. */
int hoard_fs_setattr(struct hoard_fs *fs, uint64_t ino, const struct stat *attr,
		     int to_set, struct hoard_fh *fh, struct stat *ret_st);

int hoard_fs_mknod(struct hoard_fs *fs, uint64_t parent, const char *name,
		   mode_t mode, dev_t rdev, const struct hoard_ctx *ctx,
		   struct stat *ret_st);
int hoard_fs_mkdir(struct hoard_fs *fs, uint64_t parent, const char *name,
		   mode_t mode, const struct hoard_ctx *ctx,
		   struct stat *ret_st);
int hoard_fs_symlink(struct hoard_fs *fs, uint64_t parent, const char *name,
		     const char *target, const struct hoard_ctx *ctx,
		     struct stat *ret_st);
int hoard_fs_link(struct hoard_fs *fs, uint64_t ino, uint64_t newparent,
		  const char *newname, struct stat *ret_st);
int hoard_fs_unlink(struct hoard_fs *fs, uint64_t parent, const char *name);
int hoard_fs_rmdir(struct hoard_fs *fs, uint64_t parent, const char *name);
#define HOARD_RENAME_NOREPLACE (1 << 0)
#define HOARD_RENAME_EXCHANGE  (1 << 1)
int hoard_fs_rename(struct hoard_fs *fs, uint64_t parent, const char *name,
		    uint64_t newparent, const char *newname, unsigned flags);
/* Target into buf (not NUL-terminated); returns its length. */
ssize_t hoard_fs_readlink(struct hoard_fs *fs, uint64_t ino, char *buf,
			  size_t size);

/* Files.  open flags as open(2); O_TRUNC is honoured. */
int hoard_fs_open(struct hoard_fs *fs, uint64_t ino, int flags,
		  struct hoard_fh **ret_fh);
/* mknod + open in one step (also counts a lookup).  With
 * hoard_fs_defer_creates on, the new entry and record may wait in memory
 * for the next batch (fs/core/pend.c): every reader sees them, and
 * hoard_fs_creates_pending says the front end should land them soon
 * (hoard_fs_land_creates; a batch that commits a file lands them too). */
int hoard_fs_create(struct hoard_fs *fs, uint64_t parent, const char *name,
		    mode_t mode, int flags, const struct hoard_ctx *ctx,
		    struct stat *ret_st, struct hoard_fh **ret_fh);
/* Creates answered from memory (set before serving; off by default). */
void hoard_fs_defer_creates(struct hoard_fs *fs, bool on);
/* Some create waits for its batch (no lock: a hint). */
bool hoard_fs_creates_pending(struct hoard_fs *fs);
/* Land every waiting create now, in one batch: 0, or the batch's error
 * (each lost file's next fsync returns it too). */
int hoard_fs_land_creates(struct hoard_fs *fs);
/*
 * FUSE passthrough (docs/FORMAT.md 7.3): the front end's hooks.  open
 * registers fd as a backing file and returns its id (> 0) or -errno;
 * close unregisters an id.  ud: the request being answered.
 */
struct hoard_pt_ops {
	int (*open)(void *ud, int fd);
	void (*close)(void *ud, int backing_id);
	void *ud;
};
struct hoard_open_reply {
	int backing_id;	 /* > 0: answer with passthrough to this id */
	bool keep_cache; /* false: the kernel must drop its cached pages */
};
/*
 * hoard_fs_open with passthrough (pt NULL: never).  While an inode has
 * passthrough opens every open of it is one (a write open turns the copy
 * into the staging file); while it has other opens none is; a read-only
 * open of a committed file with a plain copy and no other opens starts
 * passthrough, and one without a copy asks the tier for one.
 */
int hoard_fs_open_pt(struct hoard_fs *fs, uint64_t ino, int flags,
		     const struct hoard_pt_ops *pt, struct hoard_fh **ret_fh,
		     struct hoard_open_reply *ret);
/* hoard_fs_release; pt closes the backing id with the last passthrough
 * open (NULL: the session is gone).  Returns the error of the commit the
 * last release made (the file then kept its previous content). */
int hoard_fs_release_pt(struct hoard_fs *fs, struct hoard_fh *fh,
			const struct hoard_pt_ops *pt);
ssize_t hoard_fs_read(struct hoard_fs *fs, struct hoard_fh *fh, void *buf,
		      size_t size, off_t off);

/*
 * A read answered by reference, without copying the bytes: iov[0..n) are
 * the bytes of [off, off + returned size) in order, pointing into the
 * decompressed-chunk cache (each entry used is pinned: it stays valid even
 * if the cache evicts it), into a shared block of zeros for holes, or into
 * a buffer of the read's own (a file being written, or a read of more than
 * HOARD_RVEC_MAX pieces, is copied there).  Pass iov to writev() or
 * fuse_reply_iov(), then hoard_fs_read_done(); the bytes are immutable
 * until then.  A corrupt chunk is -EBADMSG and pins nothing.
 */
#define HOARD_RVEC_MAX 256
struct hoard_pin;
struct hoard_rvec {
	struct iovec iov[HOARD_RVEC_MAX];
	int n;
	struct hoard_pin *pins[HOARD_RVEC_MAX];
	int npins;
	void *own; /* malloc()ed */
};
ssize_t hoard_fs_read_vec(struct hoard_fs *fs, struct hoard_fh *fh, size_t size,
			  off_t off, struct hoard_rvec *rv);
/* Unpin and free what rv holds (also after an error, or twice). */
void hoard_fs_read_done(struct hoard_fs *fs, struct hoard_rvec *rv);
ssize_t hoard_fs_write(struct hoard_fs *fs, struct hoard_fh *fh,
		       const void *buf, size_t size, off_t off);
/*
 * hoard_fs_write, but an append to a file that streams (README "Writes
 * and durability") is answered early: ack(ud, size) is called, with the
 * file's lock held, before its bytes are chunked and stored, and buf must
 * stay valid until the call returns.  Returns size or -errno as
 * hoard_fs_write does; when ack was called, an error is for the log only
 * (the file's next write, flush or fsync reports it).  ack NULL: never.
 */
ssize_t hoard_fs_write_ack(struct hoard_fs *fs, struct hoard_fh *fh,
			   const void *buf, size_t size, off_t off,
			   void (*ack)(void *ud, size_t n), void *ud);
/*
 * Close without waiting for the commit.  True when fh's close needs no
 * FLUSH: a read-only handle (its flush does nothing), or one for writing
 * while the store's filesystem has room (256 MiB free); then its commit
 * happens at the last release, which the kernel does not wait for.  Until
 * that commit every open, stat and read through the daemon sees the
 * staged content (the inode stays open in the daemon).  A commit there
 * that fails is logged, counted (hoard_fs_commit_errors) and returned by
 * the file's next flush or fsync (once; also after the kernel forgot the
 * inode, until the daemon stops); the file keeps its previous content.
 */
bool hoard_fs_defer_close(struct hoard_fs *fs, struct hoard_fh *fh);
/* fh is one for writing whose close did not wait (its release commits). */
bool hoard_fs_fh_deferred(const struct hoard_fh *fh);
/* Keep fh's inode state (a lookup of the daemon's own, dropped with
 * hoard_fs_forget(fs, returned ino, 1)) when its release is made after the
 * RELEASE was answered: the kernel may then forget the inode first. */
uint64_t hoard_fs_fh_pin(struct hoard_fs *fs, struct hoard_fh *fh);
/*
 * Commit the file parent/name names now if it has uncommitted content (a
 * close that did not wait, or a file still open): before a rename, as
 * ext4's auto_da_alloc writes a file's delayed data before a rename over
 * another, so that a crash after the rename never finds the new name on
 * a file without the content it was closed with.  An error is not the
 * rename's: the content stays staged for the file's own commit, which
 * reports it.
 */
void hoard_fs_commit_named(struct hoard_fs *fs, uint64_t parent,
			   const char *name);
uint64_t hoard_fs_commit_errors(struct hoard_fs *fs);
/*
 * The releases of n handles at once (the committer's, for the handles of
 * closes that did not wait; none with passthrough): as
 * hoard_fs_release_pt(fs, fhs[i], NULL) each, done(ud, i, its result)
 * called as soon as each is made (fhs[i] is freed then), but the last
 * releases of small files created here land their commits in one batch
 * (a failed batch fails each of them, as a failed commit at a last
 * release does).
 */
void hoard_fs_release_many(struct hoard_fs *fs, struct hoard_fh **fhs, size_t n,
			   void (*done)(void *ud, size_t i, int r), void *ud);
/* Commit every file with uncommitted writes now (before a snapshot: a
 * closed file whose release has not arrived yet is one); files that
 * stream (large, written by appends) only when `streams`. */
int hoard_fs_commit_dirty(struct hoard_fs *fs, bool streams);
int hoard_fs_flush(struct hoard_fs *fs, struct hoard_fh *fh);
int hoard_fs_fsync(struct hoard_fs *fs, struct hoard_fh *fh, bool datasync);
void hoard_fs_release(struct hoard_fs *fs, struct hoard_fh *fh);
int hoard_fs_fallocate(struct hoard_fs *fs, struct hoard_fh *fh, int mode,
		       off_t off, off_t len);

/* Directories: a snapshot of the entries is taken at opendir and at every
 * read from offset 0; offsets are positions in that snapshot. */
int hoard_fs_opendir(struct hoard_fs *fs, uint64_t ino,
		     struct hoard_dirh **ret_dh);
/* Calls fill(ud, name, ino, type (DT_*), next_off) for entries from off on
 * until it returns non-zero. */
typedef int (*hoard_fill_fn)(void *ud, const char *name, uint64_t ino,
			     unsigned type, off_t next_off);
int hoard_fs_readdir(struct hoard_fs *fs, struct hoard_dirh *dh, off_t off,
		     hoard_fill_fn fill, void *ud);
/* READDIRPLUS: fill(ud, name, st, counted, next_off) gets each entry.
 * counted: st holds the entry's attributes and a lookup of st->st_ino was
 * counted.  Not counted ("." and "..", an entry gone since the snapshot,
 * one whose inode the kernel already holds a lookup of): st has st_ino and
 * the type in st_mode only, to be sent without attributes.  When fill
 * returns non-zero the entry was not taken and its lookup is dropped
 * again; a caller that cannot deliver taken entries must
 * hoard_fs_forget() them. */
typedef int (*hoard_fillplus_fn)(void *ud, const char *name,
				 const struct stat *st, bool counted,
				 off_t next_off);
int hoard_fs_readdirplus(struct hoard_fs *fs, struct hoard_dirh *dh, off_t off,
			 hoard_fillplus_fn fill, void *ud);
void hoard_fs_releasedir(struct hoard_fs *fs, struct hoard_dirh *dh);
int hoard_fs_fsyncdir(struct hoard_fs *fs, uint64_t ino);

/* xattrs.  get/list: size 0 asks for the needed size. */
int hoard_fs_setxattr(struct hoard_fs *fs, uint64_t ino, const char *name,
		      const void *value, size_t size, int flags);
ssize_t hoard_fs_getxattr(struct hoard_fs *fs, uint64_t ino, const char *name,
			  void *buf, size_t size);
ssize_t hoard_fs_listxattr(struct hoard_fs *fs, uint64_t ino, char *buf,
			   size_t size);
int hoard_fs_removexattr(struct hoard_fs *fs, uint64_t ino, const char *name);

int hoard_fs_statfs(struct hoard_fs *fs, struct statvfs *ret);

/*
 * What a regular file is made of, from its committed extents (a file being
 * written reports its last commit and dirty).  Also readable as the JSON
 * value of the xattr HOARD_INFO_XATTR, which is not listed by listxattr
 * and cannot be set or removed (-EPERM).  -ENODATA for other file types.
 */
#define HOARD_INFO_XATTR "user.hoard.info"
struct hoard_file_info {
	uint64_t chunks;	/* extents */
	uint64_t unique_chunks; /* distinct chunks among them */
	uint64_t logical_bytes; /* the file's size */
	uint64_t data_bytes;	/* bytes in extents (size minus holes) */
	uint64_t stored_bytes;	/* frames of its distinct chunks */
	uint64_t local_bytes;	/* of those, frames present in this store */
	bool dirty;
	bool plain; /* a verified plain copy is present (plain.h) */
};
int hoard_fs_file_info(struct hoard_fs *fs, uint64_t ino,
		       struct hoard_file_info *ret);
/* Lookups in the decompressed-chunk cache since hoard_fs_new (reads and
 * dedup confirmations). */
void hoard_fs_cache_counts(struct hoard_fs *fs, uint64_t *ret_hits,
			   uint64_t *ret_misses);
/* LOOKUP windows (README "Lookups") since hoard_fs_new: windows of
 * entries read (scans), LOOKUPs answered from them, and bytes of table
 * files the kernel was asked to read ahead for them. */
void hoard_fs_lookup_counts(struct hoard_fs *fs, uint64_t *ret_scans,
			    uint64_t *ret_hits, uint64_t *ret_pf_bytes);

/* Resolve a path (relative to a volume root, "/"-separated, no symlinks
 * followed) to an inode; for tools and tests. */
int hoard_fs_resolve(struct hoard_fs *fs, uint64_t root, const char *path,
		     uint64_t *ret_ino);

#endif
