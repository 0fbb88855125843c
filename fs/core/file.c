/* SPDX-License-Identifier: MIT */
/*
 * file: the data path.  Reads come from the staging file of a file being
 * written, or from its extents (chunks, verified, through the cache).
 * Writes go to the staging file; a commit (at flush, fsync, the last
 * release, or a truncate with no open handle) chunks the staging file and
 * lands the new extents, refcounts and inode in one batch (FORMAT 2.4).
 *
 * Small files stage in memory instead (is->mem, up to MEM_FILE_MAX bytes
 * each and MEM_TOTAL_MAX in all): a staging file on ext4 costs an open, a
 * truncate, a writeback at close (ext4's auto_da_alloc after the truncate)
 * and an unlink, which made creating a small file ~8x slower than on the
 * local disk.  A file that grows past the limit spills to a staging file,
 * unless it was written only by appends: then it streams (is->stream): each
 * chunk is cut, hashed, compressed and stored as the writes arrive, and
 * only the bytes after the last cut are held, so a large file never goes
 * through a staging file (written, maybe written back to disk, and read
 * again at the commit).  A write elsewhere, a truncate or an fallocate
 * turns a stream into a staging file (its content read back from its
 * chunks).  Either way staging is lost on a crash, as uncommitted data
 * may be.
 *
 * Here: opens (passthrough or not), writes into the staging, truncate,
 * fallocate, flush, fsync and release.  The read path is read.c; the
 * commit and streams are commit.c (file_land_locked: the one commit path).
 * Thread contract: is->rw is held for writing by a write, a truncate, an
 * fallocate and a commit, for reading by a read; is->mu guards the size,
 * times and flags shared with getattr; fs->lock the open counts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "hoard/chunker.h"
#include "hoard/util.h"
#include "fs-internal.h"

#define MEM_FILE_MAX  (1u << 20)  /* in-memory staging per file */
#define MEM_TOTAL_MAX (32u << 20) /* and for all files */

/*
 * A close may return before its commit (hoard_fs_defer_close) while the
 * store's filesystem has this much free: then a commit that runs after the
 * close can hardly meet a full disk.  Below it, closes commit and return
 * the commit's error as before.
 */
#define DEFER_ROOM (256ull << 20)

/* Grow is->mem to hold at least n bytes (zeroed beyond the old end). */
static int mem_reserve(struct hoard_fs *fs, struct istate *is, size_t n)
{
	size_t cap = is->mem_cap ? is->mem_cap : 4096;
	uint8_t *m;

	if (n <= is->mem_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if (cap > MEM_FILE_MAX)
		cap = MEM_FILE_MAX;
	if (cap < n)
		return -EFBIG;
	if (__atomic_add_fetch(&fs->staging_mem, cap - is->mem_cap,
			       __ATOMIC_RELAXED) > MEM_TOTAL_MAX) {
		__atomic_sub_fetch(&fs->staging_mem, cap - is->mem_cap,
				   __ATOMIC_RELAXED);
		return -ENOSPC;
	}
	m = realloc(is->mem, cap);
	if (!m) {
		__atomic_sub_fetch(&fs->staging_mem, cap - is->mem_cap,
				   __ATOMIC_RELAXED);
		return -ENOMEM;
	}
	memset(m + is->mem_cap, 0, cap - is->mem_cap);
	is->mem = m;
	is->mem_cap = cap;
	return 0;
}

/* Copy the committed content of is below limit into fd (the new staging
 * file), or into is->mem when fd < 0 (up to is->mem_cap). */
static int staging_fill(struct hoard_fs *fs, struct istate *is, int fd,
			uint64_t limit)
{
	uint8_t k[8], *buf = malloc(HOARD_CHUNK_MAX);
	struct hoard_iter *it;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	ino_key(k, is->ino);
	it = hoard_iter_new(fs->st, HOARD_CF_EXTENTS, k, 8);
	for (; r == 0 && it && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *key = hoard_iter_key(it, &kl);
		const uint8_t *v = hoard_iter_value(it, &vl);
		struct extent_rec e;
		uint64_t off;
		uint32_t len;

		r = extent_decode(key, kl, v, vl, &e);
		if (r < 0)
			break;
		off = e.off;
		if (off >= limit)
			break;
		len = e.len;
		r = chunks_copy(fs, &e.id, len, 0, buf, len);
		if (r < 0)
			break;
		if (fd < 0) {
			if (off < is->mem_cap)
				memcpy(is->mem + off, buf,
				       len < is->mem_cap - off
					       ? len
					       : is->mem_cap - off);
		} else if (hoard_pwrite_full(fd, buf, len, (off_t)off) < 0) {
			r = -errno;
		}
	}
	hoard_iter_free(it);
	free(buf);
	return r;
}

int staging_file_new(struct hoard_fs *fs, struct istate *is, fill_fn fill,
		     uint64_t arg)
{
	char name[32];
	int fd, r;

	staging_name(name, sizeof(name), is->ino);
	fd = openat(fs->staging_dirfd, name,
		    O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = fill ? fill(fs, is, fd, arg) : 0;
	if (r == 0 && ftruncate(fd, (off_t)is->size) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		unlinkat(fs->staging_dirfd, name, 0);
		return r;
	}
	is->staging_fd = fd;
	return 0;
}

/*
 * The inode has passthrough opens and is about to change (a write open,
 * a truncate, an fallocate): the kernel sends their reads and writes to
 * the copy, so the copy becomes the staging file (FORMAT 7.3) and stays
 * dirty until the last passthrough open goes.
 */
static int pt_to_staging(struct hoard_fs *fs, struct istate *is)
{
	struct hoard_inode in;
	struct stat sb;
	int fd, r;

	r = inode_load(fs, is->ino, &in);
	if (r < 0)
		return r;
	r = plain_detach(fs, is->ino);
	fd = r < 0 ? -1 : dup(is->pt_fd);
	if (r == 0 && (fd < 0 || fstat(fd, &sb) < 0))
		r = -errno;
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		inode_clear(&in);
		hoard_log(LOG_ERR,
			  "inode %llu: its plain copy cannot become "
			  "its staging file: %s",
			  (unsigned long long)is->ino, strerror(-r));
		return r;
	}
	pthread_mutex_lock(&is->mu);
	is->staging_fd = fd;
	is->pt_staging = true;
	is->pt_wrote = true;
	is->pt_mtime = sb.st_mtim;
	is->mtime = in.mtime;
	is->ctime = in.ctime;
	pt_sync_locked(is);
	pthread_mutex_unlock(&is->mu);
	inode_clear(&in);
	return 0;
}

/* Give is a staging file holding its current content up to keep bytes.
 * is->rw held for writing. */
static int staging_open(struct hoard_fs *fs, struct istate *is, uint64_t keep)
{
	int r = 0;

	if (staged(is))
		return 0;
	if (is->pt_fd >= 0)
		return pt_to_staging(fs, is);
	plain_drop(fs, is->ino); /* the committed content is changing */
	if (keep > is->size)
		keep = is->size;
	if (is->size <= MEM_FILE_MAX &&
	    mem_reserve(fs, is, is->size ? is->size : 1) == 0) {
		r = keep ? staging_fill(fs, is, -1, keep) : 0;
		is->seq = is->size == 0;
		/* beyond size: zeros, as the invariant wants */
		if (r == 0 && is->mem_cap > is->size)
			memset(is->mem + is->size, 0, is->mem_cap - is->size);
		if (r < 0)
			mem_release(fs, is);
		return r;
	}
	return staging_file_new(fs, is, keep ? staging_fill : NULL, keep);
}

static int fill_from_mem(struct hoard_fs *fs, struct istate *is, int fd,
			 uint64_t unused)
{
	return hoard_pwrite_full(fd, is->mem, (size_t)is->size, 0) < 0 ? -errno
								       : 0;
}

/* Move in-memory staging to a staging file. */
static int staging_spill(struct hoard_fs *fs, struct istate *is)
{
	int r = staging_file_new(fs, is, fill_from_mem, 0);

	if (r == 0)
		mem_release(fs, is);
	return r;
}

/* An append to a stream that is answered with its error: a failed feed may
 * have kept the write's first chunks (stream_cut), so the stream no longer
 * matches is->size, and a retry of the write would land after them.  The
 * stream breaks instead (struct stream, err), as after an answered append
 * that failed. */
static int stream_feed_write(struct hoard_fs *fs, struct istate *is,
			     const void *buf, size_t size)
{
	int r = stream_feed(fs, is, buf, size);

	if (r < 0 && !is->stream->err)
		stream_break(fs, is, r);
	return r;
}

/* The staging operations; is->rw held for writing, staging open. */
static int staging_pwrite(struct hoard_fs *fs, struct istate *is,
			  const void *buf, size_t size, uint64_t off)
{
	int r;

	if (is->stream) {
		if (off == is->size)
			return stream_feed_write(fs, is, buf, size);
		r = stream_to_file(fs, is);
		if (r < 0)
			return r;
	}
	if (is->mem) {
		if (off != is->size)
			is->seq = false;
		if (off + size <= MEM_FILE_MAX &&
		    mem_reserve(fs, is, (size_t)(off + size)) == 0) {
			memcpy(is->mem + off, buf, size);
			return 0;
		}
		if (is->seq && stream_start(fs, is) == 0)
			return stream_feed_write(fs, is, buf, size);
		r = staging_spill(fs, is);
		if (r < 0)
			return r;
	}
	if (hoard_pwrite_full(is->staging_fd, buf, size, (off_t)off) < 0)
		return -errno;
	return 0;
}

static int staging_truncate(struct hoard_fs *fs, struct istate *is,
			    uint64_t size)
{
	int r;

	if (is->stream) {
		r = stream_to_file(fs, is);
		if (r < 0)
			return r;
	}
	if (is->mem) {
		is->seq = size == 0;
		if (size < is->size) {
			memset(is->mem + size, 0, (size_t)(is->size - size));
			return 0;
		}
		if (size <= MEM_FILE_MAX &&
		    mem_reserve(fs, is, (size_t)size) == 0)
			return 0; /* beyond the old size: zeros already */
		r = staging_spill(fs, is);
		if (r < 0)
			return r;
	}
	if (ftruncate(is->staging_fd, (off_t)size) < 0)
		return -errno;
	return 0;
}

static void mark_dirty(struct istate *is, uint64_t new_size)
{
	struct timespec now;

	now_ts(&now);
	pthread_mutex_lock(&is->mu);
	is->size = new_size;
	is->size_valid = true;
	is->dirty = true;
	is->mtime = is->ctime = now;
	pthread_mutex_unlock(&is->mu);
}

/* ---- file operations ---------------------------------------------------- */

static int ensure_size(struct hoard_fs *fs, struct istate *is)
{
	struct hoard_inode in;
	bool valid;
	int r;

	pthread_mutex_lock(&is->mu); /* size_valid: see istate */
	valid = is->size_valid;
	pthread_mutex_unlock(&is->mu);
	if (valid)
		return 0;
	r = inode_load(fs, is->ino, &in);
	if (r < 0)
		return r;
	pthread_mutex_lock(&is->mu);
	if (!is->size_valid) {
		is->size = in.size;
		is->size_valid = true;
	}
	pthread_mutex_unlock(&is->mu);
	inode_clear(&in);
	return 0;
}

/*
 * Which path an open takes (FORMAT 7.3); is->rw held for writing.  The
 * kernel refuses an inode cached opens and passthrough opens at once, so:
 * while the inode has passthrough opens, this one is one too; while it has
 * other opens, it is not; else a read-only open of a committed file with a
 * copy starts passthrough, and one without asks the tier for a copy.
 */
static int pt_decide(struct hoard_fs *fs, struct hoard_fh *fh,
		     const struct hoard_pt_ops *pt,
		     struct hoard_open_reply *ret)
{
	struct istate *is = fh->is;
	bool rdonly = (fh->flags & O_ACCMODE) == O_RDONLY;
	unsigned others;
	int fd, id, r = 0;

	if (is->pt_fd >= 0) {
		if (!rdonly)
			r = staging_open(fs, is, UINT64_MAX);
		if (r < 0)
			return r;
		is->pt_opens++;
		fh->pt = true;
		ret->backing_id = is->backing_id;
		if (rdonly)
			plain_hit(fs);
		return 0;
	}
	pthread_mutex_lock(&fs->lock);
	others = is->opens - 1;
	pthread_mutex_unlock(&fs->lock);
	if (!rdonly || (fh->flags & O_TRUNC) || others || staged(is) ||
	    is->dirty)
		goto out_cached;
	if (plain_open(fs, is->ino, &fd) < 0) {
		plain_want(fs, is->ino, is->size);
		goto out_cached;
	}
	id = pt->open(pt->ud, fd);
	if (id <= 0) {
		hoard_log(LOG_WARNING,
			  "inode %llu: passthrough refused (%s): served "
			  "by the daemon",
			  (unsigned long long)is->ino, strerror(-id));
		close(fd);
		plain_unuse(fs, is->ino);
		goto out_cached;
	}
	is->pt_fd = fd;
	is->backing_id = id;
	is->pt_opens = 1;
	fh->pt = true;
	ret->backing_id = id;
	return 0;
out_cached:
	if (is->pt_wrote) { /* pages of before the passthrough writes */
		ret->keep_cache = false;
		is->pt_wrote = false;
	}
	return 0;
}

/* The last passthrough open went (is->rw held for writing): close the
 * backing file; a copy that became staging is an ordinary one now. */
static void pt_end(struct hoard_fs *fs, struct istate *is,
		   const struct hoard_pt_ops *pt)
{
	if (pt && pt->close)
		pt->close(pt->ud, is->backing_id);
	pthread_mutex_lock(&is->mu);
	pt_sync_locked(is);
	is->pt_staging = false;
	pthread_mutex_unlock(&is->mu);
	plain_unuse(fs, is->ino);
	close(is->pt_fd);
	is->pt_fd = -1;
	is->backing_id = 0;
}

/* The open of is, whose opens count it already, with fh (allocated). */
static int open_counted(struct hoard_fs *fs, struct istate *is,
			struct hoard_fh *fh, int flags,
			const struct hoard_pt_ops *pt, struct hoard_fh **ret_fh,
			struct hoard_open_reply *ret)
{
	int r;

	fh->deferred = false;
	fh->is = is;
	fh->flags = flags;
	fh->pt = false;
	r = ensure_size(fs, is);
	if (r == 0 && pt && fs->plain) {
		pthread_rwlock_wrlock(&is->rw);
		r = pt_decide(fs, fh, pt, ret);
		pthread_rwlock_unlock(&is->rw);
	}
	if (r == 0 && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY)
		r = file_truncate(fs, is, 0);
	if (r < 0) {
		hoard_fs_release_pt(fs, fh, pt);
		return r;
	}
	*ret_fh = fh;
	return 0;
}

int hoard_fs_open_pt(struct hoard_fs *fs, uint64_t ino, int flags,
		     const struct hoard_pt_ops *pt, struct hoard_fh **ret_fh,
		     struct hoard_open_reply *ret)
{
	struct hoard_fh *fh = malloc(sizeof(*fh));
	struct istate *is;

	ret->backing_id = 0;
	ret->keep_cache = true;
	if (!fh)
		return -ENOMEM;
	pthread_mutex_lock(&fs->lock);
	is = istate_get(fs, ino);
	if (is)
		is->opens++;
	pthread_mutex_unlock(&fs->lock);
	if (!is) {
		free(fh);
		return -ENOMEM;
	}
	return open_counted(fs, is, fh, flags, pt, ret_fh, ret);
}

int hoard_fs_open(struct hoard_fs *fs, uint64_t ino, int flags,
		  struct hoard_fh **ret_fh)
{
	struct hoard_open_reply rep;

	return hoard_fs_open_pt(fs, ino, flags, NULL, ret_fh, &rep);
}

/* mknod (meta.c) and open: here, so that meta.c never calls up into file.c */
int hoard_fs_create(struct hoard_fs *fs, uint64_t parent, const char *name,
		    mode_t mode, int flags, const struct hoard_ctx *ctx,
		    struct stat *ret_st, struct hoard_fh **ret_fh)
{
	struct hoard_fh *fh = malloc(sizeof(*fh));
	struct hoard_open_reply rep = {.keep_cache = true};
	struct istate *is;
	int r;

	if (!fh)
		return -ENOMEM;
	/* the file is open from its create on (its opens counted under the
	 * same lock): a create waiting for its batch (pend.c) is an open
	 * file's */
	r = create_file(fs, parent, name, mode, ctx, ret_st, &is);
	if (r < 0) {
		free(fh);
		return r;
	}
	r = open_counted(fs, is, fh, flags & ~O_TRUNC, NULL, ret_fh, &rep);
	if (r < 0)
		hoard_fs_forget(fs, ret_st->st_ino, 1);
	return r;
}

/* r, returned to a write, truncate, fallocate, flush or fsync, is the
 * broken stream's error (is->rw held for writing). */
static void stream_told(struct istate *is, int r)
{
	if (r < 0 && is->stream && is->stream->err == r)
		is->stream->told = true;
}

ssize_t hoard_fs_write(struct hoard_fs *fs, struct hoard_fh *fh,
		       const void *buf, size_t size, off_t off)
{
	return hoard_fs_write_ack(fs, fh, buf, size, off, NULL, NULL);
}

/*
 * An append to a streaming file is answered (ack) before it is cut: the
 * writer (`cp`) prepares its next write while this thread cuts, hashes
 * and stores this one.  The inode's lock is held from before the answer
 * to the end, so every later request on the file that takes it (the next
 * write, a read, the close's FLUSH, an fsync) comes after this write's
 * work; a stat sees the new size at once.  When
 * that work fails, the answered bytes are lost: the stream keeps the
 * error (struct stream, err) and every later append, read and commit of
 * the file fails with it, up to the last close, which drops the new
 * content (the file keeps its previous one, as after any failed commit).
 */
static ssize_t stream_append_acked(struct hoard_fs *fs, struct istate *is,
				   const void *buf, size_t size,
				   void (*ack)(void *ud, size_t n), void *ud)
{
	int r;

	mark_dirty(is, is->size + size);
	ack(ud, size);
	r = stream_feed(fs, is, buf, size);
	if (r < 0 && !is->stream->err) {
		stream_break(fs, is, r);
		hoard_log(LOG_ERR,
			  "inode %llu: an answered write failed (%s): the "
			  "file's new content is lost; its next flush, fsync "
			  "or write reports the error",
			  (unsigned long long)is->ino, strerror(-r));
	}
	return r < 0 ? r : (ssize_t)size;
}

ssize_t hoard_fs_write_ack(struct hoard_fs *fs, struct hoard_fh *fh,
			   const void *buf, size_t size, off_t off,
			   void (*ack)(void *ud, size_t n), void *ud)
{
	struct istate *is = fh->is;
	uint64_t end = (uint64_t)off + size;
	int r;

	if (off < 0)
		return -EINVAL;
	pthread_rwlock_wrlock(&is->rw);
	r = staging_open(fs, is, UINT64_MAX);
	if (r == 0 && ack && size && is->stream && !is->stream->err &&
	    (uint64_t)off == is->size) {
		ssize_t n = stream_append_acked(fs, is, buf, size, ack, ud);

		pthread_rwlock_unlock(&is->rw);
		return n;
	}
	if (r == 0)
		r = staging_pwrite(fs, is, buf, size, (uint64_t)off);
	if (r == 0)
		mark_dirty(is, end > is->size ? end : is->size);
	else
		stream_told(is, r);
	pthread_rwlock_unlock(&is->rw);
	return r < 0 ? r : (ssize_t)size;
}

int file_truncate(struct hoard_fs *fs, struct istate *is, uint64_t size)
{
	unsigned opens;
	int r;

	r = ensure_size(fs, is);
	if (r < 0)
		return r;
	pthread_rwlock_wrlock(&is->rw);
	r = staging_open(fs, is, size);
	if (r == 0)
		r = staging_truncate(fs, is, size);
	if (r == 0)
		mark_dirty(is, size);
	else
		stream_told(is, r);
	pthread_mutex_lock(&fs->lock);
	opens = is->opens;
	pthread_mutex_unlock(&fs->lock);
	if (r == 0 && opens == 0) {
		r = file_commit(fs, is, false);
		staging_drop(fs, is, false);
	}
	pthread_rwlock_unlock(&is->rw);
	return r;
}

/* The error of a commit that ran after its close returned, once (is->rw
 * held for writing). */
static int take_commit_err(struct istate *is)
{
	int r;

	pthread_mutex_lock(&is->mu);
	r = is->commit_err;
	is->commit_err = 0;
	pthread_mutex_unlock(&is->mu);
	return r;
}

int hoard_fs_flush(struct hoard_fs *fs, struct hoard_fh *fh)
{
	int r;

	if ((fh->flags & O_ACCMODE) == O_RDONLY)
		return 0;
	pthread_rwlock_wrlock(&fh->is->rw);
	r = file_commit(fs, fh->is, false);
	stream_told(fh->is, r);
	if (r == 0)
		r = take_commit_err(fh->is);
	pthread_rwlock_unlock(&fh->is->rw);
	return r;
}

int hoard_fs_fsync(struct hoard_fs *fs, struct hoard_fh *fh, bool datasync)
{
	int r;

	/* its entry, if its create is not landed yet (pend.c): the commit
	 * below or its WAL sync makes it durable */
	r = pend_land(fs);
	if (r < 0)
		return r;
	pthread_rwlock_wrlock(&fh->is->rw);
	r = file_commit(fs, fh->is, true);
	stream_told(fh->is, r);
	if (r == 0)
		r = take_commit_err(fh->is);
	pthread_rwlock_unlock(&fh->is->rw);
	return r;
}

bool hoard_fs_defer_close(struct hoard_fs *fs, struct hoard_fh *fh)
{
	struct statvfs sv;
	bool low;

	if ((fh->flags & O_ACCMODE) == O_RDONLY)
		return true; /* its flush does nothing */
	if (fh->pt)
		return false;
	low = statvfs(hoard_store_dir(fs->st), &sv) < 0 ||
	      (uint64_t)sv.f_bavail * sv.f_frsize < DEFER_ROOM;
	/* short of room: the next creates write at once too (pend.c) */
	__atomic_store_n(&fs->low_room, low, __ATOMIC_RELAXED);
	if (low)
		return false;
	fh->deferred = true;
	return true;
}

bool hoard_fs_fh_deferred(const struct hoard_fh *fh)
{
	return fh->deferred;
}

uint64_t hoard_fs_fh_pin(struct hoard_fs *fs, struct hoard_fh *fh)
{
	pthread_mutex_lock(&fs->lock);
	fh->is->nlookup++;
	pthread_mutex_unlock(&fs->lock);
	return fh->is->ino;
}

/* Commit ino if it has uncommitted content (an error: still staged).
 * is: pinned by the caller (nlookup), dropped here. */
static void commit_pinned(struct hoard_fs *fs, struct istate *is)
{
	uint64_t ino = is->ino;

	pthread_rwlock_wrlock(&is->rw);
	if (is->dirty && staged(is))
		file_commit(fs, is, false); /* an error: still staged */
	pthread_rwlock_unlock(&is->rw);
	hoard_fs_forget(fs, ino, 1);
}

/* commit_pinned for ino, if the daemon knows it */
static void commit_ino(struct hoard_fs *fs, uint64_t ino)
{
	struct istate *is;

	pthread_mutex_lock(&fs->lock);
	is = istate_find(fs, ino);
	if (is) /* (no open: its last release may be committing) */
		is->nlookup++;
	pthread_mutex_unlock(&fs->lock);
	if (is)
		commit_pinned(fs, is);
}

void hoard_fs_commit_named(struct hoard_fs *fs, uint64_t parent,
			   const char *name)
{
	uint64_t ino;

	pthread_mutex_lock(&fs->lock);
	if (dirent_ino(fs, parent, name, &ino) < 0) {
		pthread_mutex_unlock(&fs->lock);
		return;
	}
	pthread_mutex_unlock(&fs->lock);
	commit_ino(fs, ino);
}

uint64_t hoard_fs_commit_errors(struct hoard_fs *fs)
{
	return __atomic_load_n(&fs->commit_errors, __ATOMIC_RELAXED);
}

/* A commit at the last release failed: nobody waits for it, so keep the
 * error for the file's next flush or fsync, count it, and say it. */
static void release_failed(struct hoard_fs *fs, struct istate *is, int r)
{
	__atomic_add_fetch(&fs->commit_errors, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&is->mu);
	is->commit_err = r;
	pthread_mutex_unlock(&is->mu);
	hoard_log(LOG_ERR,
		  "inode %llu: the commit after its close failed (%s): "
		  "it keeps its previous content",
		  (unsigned long long)is->ino, strerror(-r));
}

int hoard_fs_commit_dirty(struct hoard_fs *fs, bool streams)
{
	struct istate **v = NULL, **nv;
	size_t n = 0, cap = 0;
	struct hoard_inode in;
	int r = 0, e;

	/* pinned by a lookup of our own while we commit them */
	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; i < fs->itab_cap; i++) {
		for (struct istate *is = fs->itab[i]; is; is = is->next) {
			bool dirty;

			pthread_mutex_lock(&is->mu);
			dirty = is->dirty;
			pthread_mutex_unlock(&is->mu);
			if (!dirty || !is->opens)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					r = -ENOMEM;
					break;
				}
				v = nv;
			}
			is->nlookup++;
			v[n++] = is;
		}
	}
	pthread_mutex_unlock(&fs->lock);
	for (size_t i = 0; i < n; i++) {
		struct istate *is = v[i];

		pthread_rwlock_wrlock(&is->rw);
		if ((streams || !is->stream) &&
		    inode_load(fs, is->ino, &in) == 0) {
			if (in.nlink) {
				e = file_commit(fs, is, false);
				if (e < 0 && r == 0)
					r = e;
			}
			inode_clear(&in);
		}
		pthread_rwlock_unlock(&is->rw);
		hoard_fs_forget(fs, is->ino, 1);
	}
	free(v);
	return r;
}

void hoard_fs_release(struct hoard_fs *fs, struct hoard_fh *fh)
{
	hoard_fs_release_pt(fs, fh, NULL);
}

/* An orphan's last link went: its last release commits nothing (is->rw
 * held).  Only an orphan can have lost its last link (the mark is set
 * where every last link goes, as for FORGET): no record read at the last
 * close of a file that still has a name. */
static bool release_gone(struct hoard_fs *fs, struct istate *is, bool orphan)
{
	struct hoard_inode in;
	bool gone = false;

	if (orphan && inode_load(fs, is->ino, &in) == 0) {
		gone = in.nlink == 0;
		inode_clear(&in);
	}
	return gone;
}

/* After the last release's commit (r) or none: drop the staging unless
 * the file was opened again meanwhile, and is->rw. */
static void release_done(struct hoard_fs *fs, struct istate *is, int r)
{
	pthread_mutex_lock(&fs->lock);
	if (is->opens == 0) {
		/* a new file's record is kept until its first commit or, at
		 * the latest, its last close */
		if (is->recc && S_ISREG(is->recc->mode))
			istate_uncache(fs, is->ino);
		pthread_mutex_lock(&is->mu); /* dirty: see istate */
		is->dirty = false;
		if (r < 0) /* the size is the inode's again */
			is->size_valid = false;
		pthread_mutex_unlock(&is->mu);
		staging_drop(fs, is, true);
	}
	pthread_mutex_unlock(&fs->lock);
	pthread_rwlock_unlock(&is->rw);
}

static void release_free(struct hoard_fs *fs, struct hoard_fh *fh, bool gone)
{
	struct istate *is = fh->is;

	pthread_mutex_lock(&fs->lock);
	if (gone && !is->opens && !is->nlookup)
		inode_purge(fs, is->ino);
	istate_maybe_free(fs, is);
	pthread_mutex_unlock(&fs->lock);
	free(fh);
}

/* fh's release without passthrough: true when it was the inode's last
 * (then *ret_orphan says whether it was an orphan). */
static bool release_last(struct hoard_fs *fs, struct hoard_fh *fh,
			 bool *ret_orphan)
{
	bool last;

	pthread_mutex_lock(&fs->lock);
	last = --fh->is->opens == 0;
	*ret_orphan = fh->is->orphan;
	pthread_mutex_unlock(&fs->lock);
	return last;
}

/* The last release's commit (is->rw held for writing, dropped here):
 * its error, none when the orphan is gone (*ret_gone). */
static int release_commit(struct hoard_fs *fs, struct istate *is, bool orphan,
			  bool *ret_gone)
{
	int r = 0;

	*ret_gone = release_gone(fs, is, orphan);
	if (!*ret_gone) {
		/* a broken stream whose error a write, flush or fsync
		 * returned: reported already */
		bool told = is->stream && is->stream->told;

		r = file_commit(fs, is, false);
		if (r < 0 && !told)
			release_failed(fs, is, r);
	}
	release_done(fs, is, r);
	return r;
}

int hoard_fs_release_pt(struct hoard_fs *fs, struct hoard_fh *fh,
			const struct hoard_pt_ops *pt)
{
	struct istate *is = fh->is;
	bool orphan, gone = false;
	int r = 0;

	if (fh->pt) {
		pthread_rwlock_wrlock(&is->rw);
		if (--is->pt_opens == 0)
			pt_end(fs, is, pt);
		pthread_rwlock_unlock(&is->rw);
	}
	if (release_last(fs, fh, &orphan)) {
		pthread_rwlock_wrlock(&is->rw);
		r = release_commit(fs, is, orphan, &gone);
	}
	release_free(fs, fh, gone);
	return r;
}

/* At most this many files in a group: their locks are held together
 * (and TSan's deadlock detector follows 64 locks per thread at most). */
#define RELEASE_GROUP_MAX 32

/* The end of fh's last release made by the committer, whose commit gave
 * r (is->rw held, dropped here; gone: the orphan lost its last link). */
static void release_end(struct hoard_fs *fs, struct hoard_fh *fh, int r,
			bool gone)
{
	if (r < 0)
		release_failed(fs, fh->is, r);
	release_done(fs, fh->is, r);
	release_free(fs, fh, gone);
}

/* Land the group v[0..n) (their handles fhs[at[k]]) and finish their
 * releases. */
static void group_land(struct hoard_fs *fs, struct hoard_fh **fhs,
		       struct commit_one *v, const size_t *at, size_t n,
		       void (*done)(void *ud, size_t i, int r), void *ud)
{
	commit_group(fs, v, n);
	for (size_t k = 0; k < n; k++) {
		release_end(fs, fhs[at[k]], v[k].r, false);
		done(ud, at[k], v[k].r);
	}
}

/*
 * The committer's releases (fs.h): the last releases of small files this
 * daemon created commit as one group (commit.c's essay); every other
 * release is made as hoard_fs_release_pt makes it, after the group.  A
 * file whose lock another thread holds is not waited for while the
 * group's files are held: its release comes after the group too.
 */
void hoard_fs_release_many(struct hoard_fs *fs, struct hoard_fh **fhs, size_t n,
			   void (*done)(void *ud, size_t i, int r), void *ud)
{
	struct commit_one *v = calloc(n, sizeof(*v));
	size_t *at = calloc(n, sizeof(*at));
	bool *later = calloc(n, sizeof(*later));
	size_t nv = 0;

	if (!v || !at || !later) {
		for (size_t i = 0; i < n; i++)
			done(ud, i, hoard_fs_release_pt(fs, fhs[i], NULL));
		goto out_free;
	}
	for (size_t i = 0; i < n; i++) {
		struct hoard_fh *fh = fhs[i];
		struct istate *is = fh->is;
		bool orphan, gone, last;

		pthread_mutex_lock(&fs->lock);
		last = is->opens == 1;
		pthread_mutex_unlock(&fs->lock);
		if (!last || fh->pt) {
			later[i] = true;
			continue;
		}
		if (!nv)
			pthread_rwlock_wrlock(&is->rw);
		else if (pthread_rwlock_trywrlock(&is->rw) != 0) {
			later[i] = true;
			continue;
		}
		if (!commit_groupable(fs, is)) {
			pthread_rwlock_unlock(&is->rw);
			later[i] = true;
			continue;
		}
		if (!release_last(fs, fh, &orphan)) { /* opened again */
			pthread_rwlock_unlock(&is->rw);
			release_free(fs, fh, false);
			done(ud, i, 0);
			continue;
		}
		if (orphan && (gone = release_gone(fs, is, orphan))) {
			release_end(fs, fh, 0, gone);
			done(ud, i, 0);
			continue;
		}
		v[nv].is = is;
		if (commit_prepare(fs, &v[nv]) == 0) {
			at[nv++] = i;
			if (nv == RELEASE_GROUP_MAX) {
				group_land(fs, fhs, v, at, nv, done, ud);
				nv = 0;
			}
			continue;
		}
		release_end(fs, fh, v[nv].r, false);
		done(ud, i, v[nv].r);
	}
	group_land(fs, fhs, v, at, nv, done, ud);
	for (size_t i = 0; i < n; i++) {
		if (later[i])
			done(ud, i, hoard_fs_release_pt(fs, fhs[i], NULL));
	}
out_free:
	free(v);
	free(at);
	free(later);
}

int hoard_fs_fallocate(struct hoard_fs *fs, struct hoard_fh *fh, int mode,
		       off_t off, off_t len)
{
	uint64_t end = (uint64_t)off + (uint64_t)len;
	struct istate *is = fh->is;
	int r = pend_land(fs); /* not whitelisted (pend.c) */

	if (r < 0)
		return r;
	if (mode != 0)
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	pthread_rwlock_wrlock(&is->rw);
	pthread_mutex_lock(&is->mu);
	pt_sync_locked(is);
	pthread_mutex_unlock(&is->mu);
	r = 0;
	if (end > is->size) {
		r = staging_open(fs, is, UINT64_MAX);
		if (r == 0)
			r = staging_truncate(fs, is, end);
		if (r == 0)
			mark_dirty(is, end);
		else
			stream_told(is, r);
	}
	pthread_rwlock_unlock(&is->rw);
	return r;
}

int fs_commit_all(struct hoard_fs *fs)
{
	int r = 0;

	/* Called at unmount with no FUSE thread left: no locking races. */
	for (size_t i = 0; i < fs->itab_cap; i++) {
		for (struct istate *is = fs->itab[i]; is; is = is->next) {
			if (is->dirty && file_commit(fs, is, false) < 0)
				r = -EIO;
			staging_drop(fs, is, false);
		}
	}
	ingest_quiesce(fs); /* orphaned jobs use fs */
	return r;
}
