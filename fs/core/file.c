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

#define COMMIT_BUF    (4u << 20)
#define MEM_FILE_MAX  (1u << 20)  /* in-memory staging per file */
#define MEM_TOTAL_MAX (32u << 20) /* and for all files */
/* files from this size commit their new frames without the WAL */
#define HOARD_BULK_COMMIT_MIN (8u << 20)

static int stream_start(struct hoard_fs *fs, struct istate *is);
static int stream_feed(struct hoard_fs *fs, struct istate *is, const uint8_t *p,
		       size_t n);
static int stream_to_file(struct hoard_fs *fs, struct istate *is);

struct hoard_fh {
	struct istate *is;
	int flags;
	bool pt;       /* answered with passthrough (counted in is->pt_opens) */
	bool deferred; /* its close does not wait for the commit (below) */
};

/*
 * A close may return before its commit (hoard_fs_defer_close) while the
 * store's filesystem has this much free: then a commit that runs after the
 * close can hardly meet a full disk.  Below it, closes commit and return
 * the commit's error as before.
 */
#define DEFER_ROOM (256ull << 20)

/* Holes in a read by reference are pieces of this. */
static const uint8_t zeros[1 << 16];

/*
 * Where a read's bytes go: copied into buf (at file offset off), or, while
 * buf is NULL, added to rv as pieces (hoard_fs_read_vec).  A read by
 * reference that would need more than HOARD_RVEC_MAX pieces, or reads a
 * file being written, turns into a copy into rv->own (sink_flatten).
 */
struct rsink {
	uint8_t *buf;
	uint64_t off, end;
	struct hoard_rvec *rv;
};

/* Copy the pieces so far into a new buffer of the whole read, unpin them,
 * and go on by copying. */
static int sink_flatten(struct hoard_fs *fs, struct rsink *s)
{
	struct hoard_rvec *rv = s->rv;
	uint8_t *buf = malloc(s->end > s->off ? (size_t)(s->end - s->off) : 1);
	size_t at = 0;

	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < rv->n; i++) {
		memcpy(buf + at, rv->iov[i].iov_base, rv->iov[i].iov_len);
		at += rv->iov[i].iov_len;
	}
	for (int i = 0; i < rv->npins; i++)
		chunks_unpin(fs, rv->pins[i]);
	rv->n = rv->npins = 0;
	rv->own = s->buf = buf;
	return 0;
}

/* File bytes [from, to) are zeros. */
static int sink_zeros(struct hoard_fs *fs, struct rsink *s, uint64_t from,
		      uint64_t to)
{
	struct hoard_rvec *rv = s->rv;
	int r;

	while (!s->buf && from < to) {
		size_t n = to - from < sizeof(zeros) ? (size_t)(to - from)
						     : sizeof(zeros);

		if (rv->n == HOARD_RVEC_MAX) {
			r = sink_flatten(fs, s);
			if (r < 0)
				return r;
			break;
		}
		rv->iov[rv->n].iov_base = (void *)zeros;
		rv->iov[rv->n++].iov_len = n;
		from += n;
	}
	if (s->buf && from < to)
		memset(s->buf + (from - s->off), 0, (size_t)(to - from));
	return 0;
}

/* File bytes [from, to) are bytes [coff, ...) of chunk id (len bytes). */
static int sink_chunk(struct hoard_fs *fs, struct rsink *s,
		      const struct hoard_id *id, uint32_t len, uint32_t coff,
		      uint64_t from, uint64_t to)
{
	struct hoard_rvec *rv = s->rv;
	const uint8_t *data;
	int r;

	if (!s->buf && rv->n == HOARD_RVEC_MAX) {
		r = sink_flatten(fs, s);
		if (r < 0)
			return r;
	}
	if (s->buf)
		return chunks_copy(fs, id, len, coff, s->buf + (from - s->off),
				   (size_t)(to - from));
	if ((uint64_t)coff + (to - from) > len)
		return -EBADMSG;
	r = chunks_pin(fs, id, len, &rv->pins[rv->npins], &data);
	if (r < 0)
		return r;
	rv->npins++;
	rv->iov[rv->n].iov_base = (void *)(data + coff);
	rv->iov[rv->n++].iov_len = (size_t)(to - from);
	return 0;
}

/*
 * Reading [off, end) into s, which holds [off, *filled) so far: the part
 * of extent (eoff, len, id) that falls in the range, after zeros for the
 * hole before it.  Extents come in file order.
 */
static int extent_read(struct hoard_fs *fs, struct rsink *s, uint64_t off,
		       uint64_t end, uint64_t *filled, uint64_t eoff,
		       uint32_t len, const uint8_t *idb)
{
	uint64_t from = eoff > off ? eoff : off;
	uint64_t to = eoff + len < end ? eoff + len : end;
	struct hoard_id id;
	int r;

	if (from > *filled) { /* a hole reads as zeros */
		r = sink_zeros(fs, s, *filled, from);
		if (r < 0)
			return r;
	}
	*filled = to;
	memcpy(id.b, idb, HOARD_ID_SIZE);
	return sink_chunk(fs, s, &id, len, (uint32_t)(from - eoff), from, to);
}

static bool staged(const struct istate *is)
{
	return is->staging_fd >= 0 || is->mem || is->stream;
}

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

typedef int (*fill_fn)(struct hoard_fs *fs, struct istate *is, int fd,
		       uint64_t arg);

/* A new staging file for is, holding what fill writes (nothing when fill
 * is NULL) and is->size long; it becomes is->staging_fd. */
static int staging_file_new(struct hoard_fs *fs, struct istate *is,
			    fill_fn fill, uint64_t arg)
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

/* The staging operations; is->rw held for writing, staging open. */
static int staging_pwrite(struct hoard_fs *fs, struct istate *is,
			  const void *buf, size_t size, uint64_t off)
{
	int r;

	if (is->stream) {
		if (off == is->size)
			return stream_feed(fs, is, buf, size);
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
			return stream_feed(fs, is, buf, size);
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

/* ---- commit ------------------------------------------------------------- */

/* Record a chunk staged as id (frame flen bytes) at off: its refcount
 * delta and its extent.  On failure its stage count is accounted for. */
static int emit_record(struct commit *c, uint64_t ino, uint64_t off,
		       const struct hoard_id *idp, size_t len, uint32_t flen)
{
	struct hoard_id id = *idp;
	struct idmap_ent *d, *s;
	uint8_t *e;

	s = idmap_add(&c->staged, &id);
	if (s) {
		s->count++;
		s->frame_size = flen; /* for a failed commit's delete */
	}
	d = idmap_add(&c->deltas, &id);
	if (!s || !d) {
		if (!s) { /* not recorded: undo the stage count here */
			struct idmap one;

			if (idmap_init(&one, 1) == 0) {
				idmap_add(&one, &id)->count = 1;
				pthread_mutex_lock(&c->fs->lock);
				chunks_unstage_locked(c->fs, &one);
				pthread_mutex_unlock(&c->fs->lock);
				idmap_free(&one);
			}
		}
		return -ENOMEM;
	}
	d->count++;
	d->raw_size = (uint32_t)len;
	d->frame_size = flen;
	e = hoard_grow(c->ext, &c->cap_ext, c->n_ext + 1,
		       EXTENT_KEY_SIZE + EXTENT_VAL_SIZE, 64);
	if (!e)
		return -ENOMEM;
	c->ext = e;
	e = c->ext + c->n_ext++ * (EXTENT_KEY_SIZE + EXTENT_VAL_SIZE);
	extent_encode(
		&(struct extent_rec){
			.ino = ino, .off = off, .id = id, .len = (uint32_t)len},
		e, e + EXTENT_KEY_SIZE);
	return 0;
}

/* The frames of a file's first HOARD_BULK_COMMIT_MIN bytes keep the WAL
 * (file_commit). */
static bool emit_wal(const struct commit *c, uint64_t off)
{
	return !c->bulk || off < HOARD_BULK_COMMIT_MIN;
}

static int emit_chunk(struct commit *c, uint64_t ino, uint64_t off,
		      const uint8_t *p, size_t len)
{
	struct hoard_id id;
	uint32_t flen;
	int r;

	if (chunk_all_zero(p, len))
		return 0; /* a hole reads as zeros: store nothing */
	hoard_id_compute(hoard_store_key(c->fs->st), p, len, &id);
	if (!emit_wal(c, off))
		r = chunks_stage_bulk(c->fs, &id, p, len, &flen, &c->unflushed);
	else
		r = chunks_stage(c->fs, &id, p, len, &flen);
	if (r < 0)
		return r;
	return emit_record(c, ino, off, &id, len, flen);
}

/* Chunk the bytes [start, end) of fd; the chunker starts afresh at start. */
static int chunk_region(struct commit *c, uint64_t ino, int fd, uint8_t *buf,
			uint64_t start, uint64_t end)
{
	struct hoard_chunker ch;
	uint64_t base = start;
	size_t filled = 0, pos = 0, cstart = 0, n;
	ssize_t got;
	int cut, r;

	hoard_chunker_init(&ch);
	for (;;) {
		if (pos == filled) {
			if (base + filled >= end)
				break;
			memmove(buf, buf + cstart, filled - cstart);
			base += cstart;
			filled -= cstart;
			pos -= cstart;
			cstart = 0;
			n = COMMIT_BUF - filled;
			if (n > end - (base + filled))
				n = (size_t)(end - (base + filled));
			got = hoard_pread_full(fd, buf + filled, n,
					       (off_t)(base + filled));
			if (got < 0)
				return (int)got;
			if (got == 0)
				return -EIO; /* staging shorter than its size */
			filled += (size_t)got;
		}
		pos += hoard_chunker_next(&ch, buf + pos, filled - pos, &cut);
		if (cut) {
			r = emit_chunk(c, ino, base + cstart, buf + cstart,
				       pos - cstart);
			if (r < 0)
				return r;
			cstart = pos;
		}
	}
	if (pos > cstart)
		return emit_chunk(c, ino, base + cstart, buf + cstart,
				  pos - cstart);
	return 0;
}

/* Chunk n bytes of memory (all-zero chunks become holes in emit_chunk). */
static int chunk_mem(struct commit *c, uint64_t ino, const uint8_t *p, size_t n)
{
	struct hoard_chunker ch;
	size_t pos = 0, cstart = 0;
	int cut, r;

	hoard_chunker_init(&ch);
	while (pos < n) {
		pos += hoard_chunker_next(&ch, p + pos, n - pos, &cut);
		if (cut) {
			r = emit_chunk(c, ino, cstart, p + cstart,
				       pos - cstart);
			if (r < 0)
				return r;
			cstart = pos;
		}
	}
	if (pos > cstart)
		return emit_chunk(c, ino, cstart, p + cstart, pos - cstart);
	return 0;
}

/* Chunk every data region of the staging file (holes are skipped). */
static int chunk_staging(struct commit *c, struct istate *is, uint64_t size)
{
	uint8_t *buf = malloc(COMMIT_BUF);
	off_t off = 0, data, hole;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	if (is->mem) {
		free(buf);
		return chunk_mem(c, is->ino, is->mem, size);
	}
	while (r == 0 && (uint64_t)off < size) {
		data = lseek(is->staging_fd, off, SEEK_DATA);
		if (data < 0) {
			if (errno != ENXIO)
				r = -errno;
			break; /* the rest is a hole */
		}
		if ((uint64_t)data >= size)
			break;
		hole = lseek(is->staging_fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		r = chunk_region(c, is->ino, is->staging_fd, buf,
				 (uint64_t)data, (uint64_t)hole);
		off = hole;
	}
	free(buf);
	return r;
}

/*
 * The one batch that gives the file ino new content (fs->lock held), for
 * every writer of a file's extents, inode and chunk refcounts: a commit
 * (close, fsync) and a pulled file's install (core.c).  The file's old
 * extents go (their references leave deltas), the n_ext new ones (key +
 * value each, at ext) come, deltas' refcount changes apply, l->records
 * (NULL: none) adds what its caller needs, l->inode updates the inode
 * record; one write, synced when sync.
 */
int file_land_locked(struct hoard_fs *fs, uint64_t ino, const uint8_t *ext,
		     size_t n_ext, struct idmap *deltas, const struct land *l,
		     bool sync)
{
	struct hoard_batch *b = hoard_batch_new(fs->st);
	const size_t esz = EXTENT_KEY_SIZE + EXTENT_VAL_SIZE;
	struct hoard_inode in;
	int r;

	if (!b)
		return -ENOMEM;
	r = extents_count(fs, ino, deltas, -1, b);
	for (size_t i = 0; r == 0 && i < n_ext; i++) {
		const uint8_t *e = ext + i * esz;

		hoard_batch_put(b, HOARD_CF_EXTENTS, e, EXTENT_KEY_SIZE,
				e + EXTENT_KEY_SIZE, EXTENT_VAL_SIZE);
	}
	if (r == 0)
		r = chunks_apply_locked(fs, b, deltas);
	if (r == 0 && l->records)
		r = l->records(l->ud, b, deltas);
	if (r == 0)
		r = inode_load(fs, ino, &in);
	if (r == 0) {
		l->inode(l->ud, &in);
		inode_put(fs, b, ino, &in);
		inode_clear(&in);
		r = hoard_store_write(fs->st, b, sync);
	}
	hoard_batch_free(b);
	return r;
}

/* A commit's inode: the size and times of the file as written. */
static void commit_inode(void *ud, struct hoard_inode *in)
{
	struct istate *is = ud;

	pthread_mutex_lock(&is->mu);
	istate_overlay(is, in);
	pthread_mutex_unlock(&is->mu);
}

/* The batch that lands a commit (fs->lock held). */
static int commit_land(struct commit *c, struct istate *is, bool sync)
{
	const struct land l = {.inode = commit_inode, .ud = is};

	return file_land_locked(c->fs, is->ino, c->ext, c->n_ext, &c->deltas,
				&l, sync);
}

/* ---- streams ------------------------------------------------------------ */

/* Holds what follows the last cut: the chunker cuts at HOARD_CHUNK_MAX at
 * the latest, so that is less than a chunk (or one whole owed chunk), and
 * with the bytes of the next cut appended at most a chunk. */
#define STREAM_BUF HOARD_CHUNK_MAX

/*
 * Record the stream's finished jobs from the head of its queue (ingest.c)
 * until at most keep are left, waiting for them when more are; in file
 * order, as emit_chunk would have.  A job that failed is run once more
 * here; when that fails too it stays (with its bytes) and the error is
 * returned, as emit_chunk's would be.
 */
static int stream_reap(struct istate *is, unsigned keep)
{
	struct stream *st = is->stream;
	struct ingest_job *j;
	int r;

	/* one sleep for all of them: the last of those to record (the
	 * workers take jobs in order, so the earlier ones are mostly done) */
	if (st->q.n > keep)
		ingest_wait(&st->q, st->q.n - keep - 1);
	while ((j = ingest_peek(&st->q, st->q.n > keep))) {
		if (j->r < 0)
			ingest_run(j);
		r = j->r;
		if (r == 0 && !j->hole)
			r = emit_record(&st->c, is->ino, j->off, &j->id, j->len,
					j->flen);
		if (r < 0) {
			j->r = r; /* run again at the next reap */
			return r;
		}
		if (j->unflushed)
			st->c.unflushed = true;
		ingest_pop(&st->q);
	}
	return 0;
}

/*
 * Store the stream's buffered bytes buf[head, len) followed by p[0, k) as
 * its next chunk: here, or handed to the ingest pool (which copies it).
 * Here and with nothing buffered, the chunk is stored straight from p (the
 * FUSE request's buffer): a chunk that lies inside one write is never
 * copied.  On success the buffer is empty; on failure nothing changed.
 */
static int stream_emit(struct istate *is, const uint8_t *p, size_t k)
{
	struct stream *st = is->stream;
	size_t have = st->len - st->head;
	const uint8_t *chunk = p;
	int r;

	if (ingest_on()) {
		/* record what is done; when full, down to half (a sleep per
		 * half a queue, not per chunk) */
		r = stream_reap(is, ingest_full(&st->q) ? INGEST_DEPTH / 2
							: INGEST_DEPTH - 1);
		if (r == 0)
			r = ingest_submit(st->c.fs, &st->q, st->base,
					  st->buf + st->head, have, p, k,
					  emit_wal(&st->c, st->base));
	} else {
		if (have) { /* one piece: p after the buffered bytes */
			if (k)
				memcpy(st->buf + st->len, p, k);
			chunk = st->buf + st->head;
		}
		r = emit_chunk(&st->c, is->ino, st->base, chunk, have + k);
	}
	if (r < 0)
		return r;
	st->head = st->len = 0;
	st->base += have + k;
	return 0;
}

/* Keep p[0, k) after the buffered bytes (they fit: a chunk's worth). */
static void stream_keep(struct stream *st, const uint8_t *p, size_t k)
{
	if (st->head) {
		memmove(st->buf, st->buf + st->head, st->len - st->head);
		st->len -= st->head;
		st->head = 0;
	}
	memcpy(st->buf + st->len, p, k);
	st->len += k;
}

/*
 * Append n bytes at the end of a streaming file.  The chunker scans p in
 * place; only the bytes after the last cut are copied into the buffer.
 * A chunk that could not be stored stays in the buffer as a whole chunk
 * (owed) and is stored before anything else.
 */
static int stream_cut(struct hoard_fs *fs, struct istate *is, const uint8_t *p,
		      size_t n)
{
	struct stream *st = is->stream;
	int cut, r;

	if (st->owed) {
		r = stream_emit(is, NULL, 0);
		if (r < 0)
			return r;
		st->owed = false;
	}
	while (n) {
		size_t k = hoard_chunker_next(&st->ch, p, n, &cut);

		if (!cut) { /* k == n, and the chunk so far is < MAX */
			stream_keep(st, p, k);
			return 0;
		}
		r = stream_emit(is, p, k);
		if (r < 0) {
			stream_keep(st, p, k);
			st->owed = true;
			return r;
		}
		p += k;
		n -= k;
	}
	return 0;
}

static int stream_feed(struct hoard_fs *fs, struct istate *is, const uint8_t *p,
		       size_t n)
{
	int r = stream_cut(fs, is, p, n);

	if (is->stream->q.n) /* the pool: one wakeup for the whole write */
		ingest_kick();
	return r;
}

/* In-memory staging written by appends only becomes a stream; on failure
 * nothing changed. */
static int stream_start(struct hoard_fs *fs, struct istate *is)
{
	struct stream *st = calloc(1, sizeof(*st));
	int r = -ENOMEM;

	if (!st)
		return r;
	st->c.fs = fs;
	st->c.bulk = true;
	st->buf = malloc(STREAM_BUF);
	if (!st->buf || idmap_init(&st->c.deltas, 64) < 0 ||
	    idmap_init(&st->c.staged, 64) < 0) {
		idmap_free(&st->c.deltas);
		free(st->buf);
		free(st);
		return r;
	}
	hoard_chunker_init(&st->ch);
	is->stream = st;
	r = stream_feed(fs, is, is->mem, (size_t)is->size);
	if (r < 0) {
		stream_free(fs, is, false, false);
		return r;
	}
	mem_release(fs, is);
	return 0;
}

/* Bytes [off, end) of a streaming file into buf. */
static int stream_read(struct hoard_fs *fs, struct istate *is, uint8_t *buf,
		       uint64_t off, uint64_t end)
{
	const size_t esz = EXTENT_KEY_SIZE + EXTENT_VAL_SIZE;
	struct stream *st = is->stream;
	struct rsink s = {.buf = buf, .off = off, .end = end};
	uint64_t filled = off;
	size_t lo = 0, hi = st->c.n_ext;
	int r = 0;

	struct extent_rec e;

	while (lo < hi) { /* the first extent that ends after off */
		size_t mid = (lo + hi) / 2;
		const uint8_t *ek = st->c.ext + mid * esz;

		/* the stream's own encoding: the sizes are right */
		(void)extent_decode(ek, EXTENT_KEY_SIZE, ek + EXTENT_KEY_SIZE,
				    EXTENT_VAL_SIZE, &e);
		if (e.off + e.len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; r == 0 && i < st->c.n_ext; i++) {
		const uint8_t *ek = st->c.ext + i * esz;

		(void)extent_decode(ek, EXTENT_KEY_SIZE, ek + EXTENT_KEY_SIZE,
				    EXTENT_VAL_SIZE, &e);
		if (e.off >= end)
			break;
		r = extent_read(fs, &s, off, end, &filled, e.off, e.len,
				e.id.b);
	}
	if (r < 0)
		return r;
	for (unsigned i = 0; i < st->q.n; i++) { /* cut, not yet recorded */
		const struct ingest_job *j = ingest_at(&st->q, i);
		uint64_t from = off > j->off ? off : j->off;
		uint64_t to = j->off + j->len < end ? j->off + j->len : end;

		if (to <= from)
			continue;
		if (from > filled)
			memset(buf + (filled - off), 0, from - filled);
		memcpy(buf + (from - off), j->data + (from - j->off),
		       (size_t)(to - from));
		filled = to;
	}
	if (end > st->base && st->len > st->head) {
		uint64_t top = st->base + (st->len - st->head);
		uint64_t from = off > st->base ? off : st->base;
		uint64_t to = top < end ? top : end;

		if (from > filled)
			memset(buf + (filled - off), 0, from - filled);
		if (to > from) {
			memcpy(buf + (from - off),
			       st->buf + st->head + (from - st->base),
			       (size_t)(to - from));
			filled = to;
		}
	}
	if (filled < end)
		memset(buf + (filled - off), 0, end - filled);
	return 0;
}

static int fill_from_stream(struct hoard_fs *fs, struct istate *is, int fd,
			    uint64_t unused)
{
	uint8_t *buf = malloc(HOARD_CHUNK_MAX);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t off = 0; r == 0 && off < is->size;) {
		size_t n = is->size - off < HOARD_CHUNK_MAX
				   ? (size_t)(is->size - off)
				   : HOARD_CHUNK_MAX;

		r = stream_read(fs, is, buf, off, off + n);
		if (r == 0 && hoard_pwrite_full(fd, buf, n, (off_t)off) < 0)
			r = -errno;
		off += n;
	}
	free(buf);
	return r;
}

/* A write elsewhere than the end, a truncate, an fallocate: the stream's
 * content goes to a staging file, which takes over. */
static int stream_to_file(struct hoard_fs *fs, struct istate *is)
{
	int r = staging_file_new(fs, is, fill_from_stream, 0);

	if (r == 0)
		stream_free(fs, is, false, false);
	return r;
}

/* Land a stream: its last chunk, then the batch. */
static int stream_commit(struct hoard_fs *fs, struct istate *is, bool sync)
{
	struct stream *st = is->stream;
	int r = 0;

	/* the tail, then every frame stored before the batch */
	if (st->len > st->head)
		r = stream_emit(is, NULL, 0);
	if (r == 0) {
		st->owed = false;
		r = stream_reap(is, 0);
	}
	if (r == 0 && st->c.unflushed)
		r = chunks_make_durable(fs, &st->c.staged);
	if (r == 0) {
		pthread_mutex_lock(&fs->lock);
		r = commit_land(&st->c, is, sync);
		pthread_mutex_unlock(&fs->lock);
	}
	if (r < 0) {
		/* keep the content for a later commit (commit_land changed
		 * the deltas, so the stream cannot be landed again) */
		int e = stream_to_file(fs, is);

		if (e < 0) {
			hoard_log(LOG_ERR,
				  "inode %llu: content lost: %s after a "
				  "failed commit",
				  (unsigned long long)is->ino, strerror(-e));
			stream_free(fs, is, false, false);
		}
		return r;
	}
	stream_free(fs, is, false, true);
	pthread_mutex_lock(&is->mu);
	is->dirty = false;
	pthread_mutex_unlock(&is->mu);
	return 0;
}

/* Commit a dirty file; is->rw held for writing. */
int file_commit(struct hoard_fs *fs, struct istate *is, bool sync)
{
	struct commit c = {.fs = fs};
	uint64_t size;
	int r;

	pthread_mutex_lock(&is->mu);
	pt_sync_locked(is);
	pthread_mutex_unlock(&is->mu);
	if (!is->dirty || !staged(is))
		return sync ? hoard_store_sync(fs->st) : 0;
	if (is->stream) {
		r = stream_commit(fs, is, sync);
		if (r < 0)
			hoard_log(LOG_ERR, "commit of inode %llu failed: %s",
				  (unsigned long long)is->ino, strerror(-r));
		return r;
	}
	size = is->size;
	if (idmap_init(&c.deltas, 64) < 0)
		return -ENOMEM;
	if (idmap_init(&c.staged, 64) < 0) {
		idmap_free(&c.deltas);
		return -ENOMEM;
	}
	/*
	 * A large file's new frames skip the WAL: with it, RocksDB writes
	 * every frame twice (the WAL, then a blob file when the memtable is
	 * flushed), which is most of the daemon's disk writes on ingest.
	 * Instead one flush of chunkdata makes them durable before the batch
	 * that references them lands, so a crash loses the frames only
	 * together with the commit.  The first HOARD_BULK_COMMIT_MIN bytes
	 * of every file keep the WAL (emit_chunk): a flush per small file
	 * would cost more than the second write.  Streams do the same.
	 */
	c.bulk = true;
	r = chunk_staging(&c, is, size);
	if (r == 0 && c.unflushed)
		r = chunks_make_durable(fs, &c.staged);
	pthread_mutex_lock(&fs->lock);
	if (r == 0)
		r = commit_land(&c, is, sync);
	if (r == 0)
		chunks_unstage_locked(fs, &c.staged);
	else
		chunks_unstage_failed_locked(fs, &c.staged);
	pthread_mutex_unlock(&fs->lock);
	if (r == 0) {
		pthread_mutex_lock(&is->mu);
		is->dirty = is->pt_staging; /* more writes may come unseen */
		pthread_mutex_unlock(&is->mu);
	} else {
		hoard_log(LOG_ERR, "commit of inode %llu failed: %s",
			  (unsigned long long)is->ino, strerror(-r));
	}
	idmap_free(&c.deltas);
	idmap_free(&c.staged);
	free(c.ext);
	return r;
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

int hoard_fs_open_pt(struct hoard_fs *fs, uint64_t ino, int flags,
		     const struct hoard_pt_ops *pt, struct hoard_fh **ret_fh,
		     struct hoard_open_reply *ret)
{
	struct hoard_fh *fh = malloc(sizeof(*fh));
	struct istate *is;
	int r;

	ret->backing_id = 0;
	ret->keep_cache = true;
	if (!fh)
		return -ENOMEM;
	fh->deferred = false;
	pthread_mutex_lock(&fs->lock);
	is = istate_get(fs, ino);
	if (is)
		is->opens++;
	pthread_mutex_unlock(&fs->lock);
	if (!is) {
		free(fh);
		return -ENOMEM;
	}
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
	int r = hoard_fs_mknod(fs, parent, name, S_IFREG | (mode & 07777), 0,
			       ctx, ret_st);

	if (r < 0)
		return r;
	r = hoard_fs_open(fs, ret_st->st_ino, flags & ~O_TRUNC, ret_fh);
	if (r < 0)
		hoard_fs_forget(fs, ret_st->st_ino, 1);
	return r;
}

/*
 * This read [off, end) fetched from the remote: hint the next chunks of the
 * file (it is positioned on the first extent past the read).  The window
 * starts at 2 chunks and doubles, up to HOARD_READ_AHEAD, while each read
 * that fetches starts after the last one's end and within its window (a
 * sequential reader); a read elsewhere starts again at 2.
 */
static void read_ahead(struct hoard_fs *fs, struct istate *is,
		       struct hoard_iter *it, uint64_t off, uint64_t end)
{
	struct hoard_id ids[HOARD_READ_AHEAD];
	uint32_t lens[HOARD_READ_AHEAD];
	unsigned win;
	size_t n = 0;

	pthread_mutex_lock(&is->mu);
	if (is->ahead_win && off >= is->ahead_end &&
	    off - is->ahead_end <=
		    (uint64_t)(is->ahead_win + 2) * HOARD_CHUNK_MAX)
		win = is->ahead_win * 2 > HOARD_READ_AHEAD ? HOARD_READ_AHEAD
							   : is->ahead_win * 2;
	else
		win = 2;
	is->ahead_win = win;
	is->ahead_end = end;
	pthread_mutex_unlock(&is->mu);
	for (; n < win && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t vl;
		const uint8_t *v = hoard_iter_value(it, &vl);

		if (extent_val_decode(v, vl, &ids[n], &lens[n]) < 0)
			break;
		n++;
	}
	if (n)
		fs->ahead(fs->fetch_ud, ids, lens, n);
}

static int read_extents(struct hoard_fs *fs, struct istate *is, struct rsink *s,
			uint64_t off, uint64_t end)
{
	uint8_t k[EXTENT_KEY_SIZE], v0[EXTENT_VAL_SIZE];
	uint64_t filled = off; /* s holds [off, filled) */
	struct hoard_iter *it;
	int r = 0;

	extent_encode(&(struct extent_rec){.ino = is->ino, .off = off}, k, v0);
	it = hoard_iter_new(fs->st, HOARD_CF_EXTENTS, k, 8);
	if (!it)
		return -ENOMEM;
	hoard_iter_seek_for_prev(it, k, sizeof(k));
	if (!hoard_iter_valid(it))
		hoard_iter_seek(it, k, sizeof(k));
	for (; r == 0 && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *key = hoard_iter_key(it, &kl);
		const uint8_t *v = hoard_iter_value(it, &vl);
		struct extent_rec e;

		r = extent_decode(key, kl, v, vl, &e);
		if (r < 0)
			break;
		if (e.off >= end)
			break;
		if (e.off + e.len <= off)
			continue;
		r = extent_read(fs, s, off, end, &filled, e.off, e.len, e.id.b);
	}
	if (r == 0 && filled < end)
		r = sink_zeros(fs, s, filled, end);
	if (r == 0 && fs->ahead && chunks_fetched_here())
		read_ahead(fs, is, it, off, end);
	hoard_iter_free(it);
	return r;
}

/* Bytes [off, end) of the file into s (is->rw held for reading); returns
 * how many (fewer only at a short staging file). */
static ssize_t read_range(struct hoard_fs *fs, struct istate *is,
			  struct rsink *s, uint64_t off, uint64_t end)
{
	ssize_t r;

	if (!is->mem && is->staging_fd < 0 && !is->stream) {
		r = read_extents(fs, is, s, off, end);
		return r < 0 ? r : (ssize_t)(end - off);
	}
	if (!s->buf) { /* a file being written changes: copied */
		r = sink_flatten(fs, s);
		if (r < 0)
			return r;
	}
	if (is->mem) {
		memcpy(s->buf, is->mem + off, (size_t)(end - off));
		return (ssize_t)(end - off);
	}
	if (is->staging_fd >= 0)
		return hoard_pread_full(is->staging_fd, s->buf,
					(size_t)(end - off), (off_t)off);
	r = stream_read(fs, is, s->buf, off, end);
	return r < 0 ? r : (ssize_t)(end - off);
}

/* The read's range, [off, *ret_end), within the file's size. */
static bool read_bounds(struct istate *is, size_t size, off_t off,
			uint64_t *ret_end)
{
	uint64_t fsize;

	pthread_mutex_lock(&is->mu);
	fsize = is->size;
	pthread_mutex_unlock(&is->mu);
	if ((uint64_t)off >= fsize)
		return false;
	*ret_end = (uint64_t)off + size;
	if (*ret_end > fsize)
		*ret_end = fsize;
	return true;
}

ssize_t hoard_fs_read(struct hoard_fs *fs, struct hoard_fh *fh, void *buf,
		      size_t size, off_t off)
{
	struct istate *is = fh->is;
	struct rsink s = {.buf = buf, .off = (uint64_t)off};
	ssize_t r = 0;

	if (off < 0)
		return -EINVAL;
	pthread_rwlock_rdlock(&is->rw);
	if (read_bounds(is, size, off, &s.end))
		r = read_range(fs, is, &s, (uint64_t)off, s.end);
	pthread_rwlock_unlock(&is->rw);
	return r;
}

ssize_t hoard_fs_read_vec(struct hoard_fs *fs, struct hoard_fh *fh, size_t size,
			  off_t off, struct hoard_rvec *rv)
{
	struct istate *is = fh->is;
	struct rsink s = {.off = (uint64_t)off, .rv = rv};
	ssize_t r = 0;

	rv->n = rv->npins = 0;
	rv->own = NULL;
	if (off < 0)
		return -EINVAL;
	pthread_rwlock_rdlock(&is->rw);
	if (read_bounds(is, size, off, &s.end))
		r = read_range(fs, is, &s, (uint64_t)off, s.end);
	pthread_rwlock_unlock(&is->rw);
	if (r < 0) {
		hoard_fs_read_done(fs, rv);
		return r;
	}
	if (s.buf && r > 0) { /* copied: one piece */
		rv->iov[0].iov_base = s.buf;
		rv->iov[0].iov_len = (size_t)r;
		rv->n = 1;
	}
	return r;
}

void hoard_fs_read_done(struct hoard_fs *fs, struct hoard_rvec *rv)
{
	for (int i = 0; i < rv->npins; i++)
		chunks_unpin(fs, rv->pins[i]);
	free(rv->own);
	rv->n = rv->npins = 0;
	rv->own = NULL;
}

ssize_t hoard_fs_write(struct hoard_fs *fs, struct hoard_fh *fh,
		       const void *buf, size_t size, off_t off)
{
	struct istate *is = fh->is;
	uint64_t end = (uint64_t)off + size;
	int r;

	if (off < 0)
		return -EINVAL;
	pthread_rwlock_wrlock(&is->rw);
	r = staging_open(fs, is, UINT64_MAX);
	if (r == 0)
		r = staging_pwrite(fs, is, buf, size, (uint64_t)off);
	if (r == 0)
		mark_dirty(is, end > is->size ? end : is->size);
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
	if (r == 0)
		r = take_commit_err(fh->is);
	pthread_rwlock_unlock(&fh->is->rw);
	return r;
}

int hoard_fs_fsync(struct hoard_fs *fs, struct hoard_fh *fh, bool datasync)
{
	int r;

	pthread_rwlock_wrlock(&fh->is->rw);
	r = file_commit(fs, fh->is, true);
	if (r == 0)
		r = take_commit_err(fh->is);
	pthread_rwlock_unlock(&fh->is->rw);
	return r;
}

bool hoard_fs_defer_close(struct hoard_fs *fs, struct hoard_fh *fh)
{
	struct statvfs sv;

	if ((fh->flags & O_ACCMODE) == O_RDONLY)
		return true; /* its flush does nothing */
	if (fh->pt || statvfs(hoard_store_dir(fs->st), &sv) < 0 ||
	    (uint64_t)sv.f_bavail * sv.f_frsize < DEFER_ROOM)
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

int hoard_fs_commit_dirty(struct hoard_fs *fs)
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
		if (inode_load(fs, is->ino, &in) == 0) {
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

int hoard_fs_release_pt(struct hoard_fs *fs, struct hoard_fh *fh,
			const struct hoard_pt_ops *pt)
{
	struct istate *is = fh->is;
	struct hoard_inode in;
	bool last, gone = false;
	int r = 0;

	if (fh->pt) {
		pthread_rwlock_wrlock(&is->rw);
		if (--is->pt_opens == 0)
			pt_end(fs, is, pt);
		pthread_rwlock_unlock(&is->rw);
	}
	pthread_mutex_lock(&fs->lock);
	last = --is->opens == 0;
	pthread_mutex_unlock(&fs->lock);
	if (last) {
		pthread_rwlock_wrlock(&is->rw);
		if (inode_load(fs, is->ino, &in) == 0) {
			gone = in.nlink == 0;
			inode_clear(&in);
		}
		if (!gone) {
			r = file_commit(fs, is, false);
			if (r < 0)
				release_failed(fs, is, r);
		}
		pthread_mutex_lock(&fs->lock);
		if (is->opens == 0) {
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
	pthread_mutex_lock(&fs->lock);
	if (gone && !is->opens && !is->nlookup)
		inode_purge(fs, is->ino);
	istate_maybe_free(fs, is);
	pthread_mutex_unlock(&fs->lock);
	free(fh);
	return r;
}

int hoard_fs_fallocate(struct hoard_fs *fs, struct hoard_fh *fh, int mode,
		       off_t off, off_t len)
{
	uint64_t end = (uint64_t)off + (uint64_t)len;
	struct istate *is = fh->is;
	int r;

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
