/* SPDX-License-Identifier: MIT */
/*
 * commit: how a file's staged content lands (moved out of file.c, whose
 * essay says how a file is staged).  file_commit chunks the in-memory
 * staging or the staging file's data regions, stores the frames (large
 * files' past HOARD_BULK_COMMIT_MIN without the WAL, made durable by one
 * flush before the batch), and lands extents, refcounts and inode through
 * file_land_locked, the one batch every writer of a file's content uses.
 * Streams (is->stream) do the same as the appends arrive: each chunk is
 * cut and stored at once (or by the ingest pool, ingest.c), and their
 * commit stores the tail and lands the same batch.
 *
 * Thread contract: a commit and every stream operation hold is->rw for
 * writing; file_land_locked and commit_land run under fs->lock; is->mu
 * guards the size, times and dirty flag read or set here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoard/chunker.h"
#include "hoard/util.h"
#include "fs-internal.h"

#define COMMIT_BUF (4u << 20)
/* files from this size commit their new frames without the WAL */
#define HOARD_BULK_COMMIT_MIN (8u << 20)

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

/* The n_ext extents at ext (key + value each) into b. */
static void extents_put(struct hoard_batch *b, const uint8_t *ext, size_t n_ext)
{
	const size_t esz = EXTENT_KEY_SIZE + EXTENT_VAL_SIZE;

	for (size_t i = 0; i < n_ext; i++) {
		const uint8_t *e = ext + i * esz;

		hoard_batch_put(b, HOARD_CF_EXTENTS, e, EXTENT_KEY_SIZE,
				e + EXTENT_KEY_SIZE, EXTENT_VAL_SIZE);
	}
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
	struct istate *is = istate_find(fs, ino);
	struct hoard_inode in;
	size_t npend;
	int r = 0;

	if (!b)
		return -ENOMEM;
	/* the creates not landed yet first (pend.c): this file's own, whose
	 * record below then wins */
	npend = pend_put_locked(fs, b);
	/* a file this daemon created and never landed extents for has no
	 * old ones: no iterator over the extents family */
	if (!is || !is->fresh_ext)
		r = extents_count(fs, ino, deltas, -1, b);
	if (r == 0) {
		extents_put(b, ext, n_ext);
		r = chunks_apply_locked(fs, b, deltas);
	}
	if (r == 0 && l->records)
		r = l->records(l->ud, b, deltas);
	if (r == 0) /* a new file's first commit: from its istate */
		r = inode_load_cached(fs, ino, &in);
	if (r == 0) {
		l->inode(l->ud, &in);
		inode_put(fs, b, ino, &in);
		inode_clear(&in);
		r = pend_write_locked(fs, b, npend, sync);
	}
	if (r == 0 && is && n_ext)
		is->fresh_ext = false;
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

/* For tests: HOARD_TEST_COMMIT_FAIL_EVERY=N fails every N-th commit's
 * batch with EIO before it is written (a failed land, without a full
 * disk). */
static long fail_every;
static pthread_once_t fail_once = PTHREAD_ONCE_INIT;

static void fail_init(void)
{
	const char *p = getenv("HOARD_TEST_COMMIT_FAIL_EVERY");

	fail_every = p ? strtol(p, NULL, 10) : 0;
}

static bool land_fault(void)
{
	static unsigned long n;

	pthread_once(&fail_once, fail_init);
	return fail_every > 0 &&
	       __atomic_add_fetch(&n, 1, __ATOMIC_RELAXED) % fail_every == 0;
}

/* For tests: HOARD_TEST_STREAM_FAIL_PAST=X fails, once, the first chunk a
 * stream stores that ends past byte X of its file (ENOSPC, as a full disk
 * would). */
static uint64_t stream_fail_past;
static bool stream_fail_done;
static pthread_once_t stream_fail_once = PTHREAD_ONCE_INIT;

static void stream_fail_init(void)
{
	const char *p = getenv("HOARD_TEST_STREAM_FAIL_PAST");

	stream_fail_past = p ? strtoull(p, NULL, 10) : 0;
}

static bool stream_fault(uint64_t end)
{
	pthread_once(&stream_fail_once, stream_fail_init);
	return stream_fail_past && end > stream_fail_past &&
	       !__atomic_exchange_n(&stream_fail_done, true, __ATOMIC_RELAXED);
}

/* The batch that lands a commit (fs->lock held). */
static int commit_land(struct commit *c, struct istate *is, bool sync)
{
	const struct land l = {.inode = commit_inode, .ud = is};

	if (land_fault())
		return -EIO;
	return file_land_locked(c->fs, is->ino, c->ext, c->n_ext, &c->deltas,
				&l, sync);
}

/* ---- group commit ------------------------------------------------------- */

/*
 * The committer's group commit (file.c, hoard_fs_release_many): the last
 * releases of several closed small files land in one batch, one WAL write
 * and one memtable insert pass instead of one each.  Only a file this
 * daemon created, never landed and staged in memory takes part
 * (commit_groupable): it has no old extents to count, so nothing a file
 * adds to the shared batch can fail after it was added.  Its frames are
 * staged as file_commit stages them (each frame its own put, waited for
 * by other stagers as usual); the refcount deltas of all the files are
 * summed into one map before they are applied, since two files of a
 * group may hold the same new chunk and each would read the same missing
 * record.  A batch that fails fails every file in it: each keeps its
 * previous content and gets the error (file.c, release_failed).
 */
bool commit_groupable(struct hoard_fs *fs, const struct istate *is)
{
	bool fresh;

	if (!is->dirty || !is->mem || is->stream || is->staging_fd >= 0 ||
	    is->pt_staging)
		return false;
	pthread_mutex_lock(&fs->lock);
	fresh = is->fresh_ext;
	pthread_mutex_unlock(&fs->lock);
	return fresh;
}

int commit_prepare(struct hoard_fs *fs, struct commit_one *o)
{
	struct istate *is = o->is;
	int r;

	o->c = (struct commit){.fs = fs, .bulk = true};
	if (idmap_init(&o->c.deltas, 8) < 0)
		return o->r = -ENOMEM;
	if (idmap_init(&o->c.staged, 8) < 0) {
		idmap_free(&o->c.deltas);
		return o->r = -ENOMEM;
	}
	r = chunk_mem(&o->c, is->ino, is->mem, (size_t)is->size);
	if (r == 0 && o->c.unflushed)
		r = chunks_make_durable(fs, &o->c.staged);
	if (r < 0) {
		pthread_mutex_lock(&fs->lock);
		chunks_unstage_failed_locked(fs, &o->c.staged);
		pthread_mutex_unlock(&fs->lock);
		hoard_log(LOG_ERR, "commit of inode %llu failed: %s",
			  (unsigned long long)is->ino, strerror(-r));
		commit_one_free(o);
	}
	return o->r = r;
}

void commit_one_free(struct commit_one *o)
{
	idmap_free(&o->c.deltas);
	idmap_free(&o->c.staged);
	free(o->c.ext);
	o->c.ext = NULL;
}

/* Add o's file to the group's batch b and its deltas to all (fs->lock
 * held): 0, or the file's own error (then it added nothing). */
static int group_add(struct hoard_fs *fs, struct hoard_batch *b,
		     struct idmap *all, struct commit_one *o)
{
	struct hoard_inode in;
	const struct idmap_ent *e;
	int r = inode_load_cached(fs, o->is->ino, &in);

	if (r < 0)
		return r;
	for (e = NULL; (e = idmap_next(&o->c.deltas, e));) {
		struct idmap_ent *a = idmap_add(all, &e->id);

		if (!a) {
			inode_clear(&in);
			return -ENOMEM; /* what was summed: for the group */
		}
		a->count += e->count;
		a->raw_size = e->raw_size;
		a->frame_size = e->frame_size;
	}
	extents_put(b, o->c.ext, o->c.n_ext);
	commit_inode(o->is, &in);
	inode_put(fs, b, o->is->ino, &in);
	inode_clear(&in);
	return 0;
}

void commit_group(struct hoard_fs *fs, struct commit_one *v, size_t n)
{
	struct hoard_batch *b = hoard_batch_new(fs->st);
	struct idmap all = {0};
	size_t npend = 0;
	bool any = false;
	int r = b && idmap_init(&all, 64) == 0 ? 0 : -ENOMEM;

	pthread_mutex_lock(&fs->lock);
	/* every create not landed yet, before the files' records (pend.c):
	 * a file created and closed within the gather lands in one batch */
	if (r == 0)
		npend = pend_put_locked(fs, b);
	for (size_t i = 0; i < n; i++) {
		struct commit_one *o = &v[i];

		o->in_group = false;
		if (o->r < 0)
			continue; /* its prepare failed (and cleaned up) */
		if (r == 0) {
			int e = group_add(fs, b, &all, o);

			if (e == -ENOMEM)
				r = e;
			else
				o->r = e;
		}
		if (r < 0 || o->r == 0) {
			o->in_group = true;
			any = true;
			continue;
		}
		chunks_unstage_failed_locked(fs, &o->c.staged);
		hoard_log(LOG_ERR, "commit of inode %llu failed: %s",
			  (unsigned long long)o->is->ino, strerror(-o->r));
	}
	if (r == 0 && any && land_fault()) {
		r = -EIO; /* the group's batch, as one commit's */
		pend_done_locked(fs, npend, r);
	}
	if (r == 0 && any)
		r = chunks_apply_locked(fs, b, &all);
	if (r == 0 && (any || npend))
		r = pend_write_locked(fs, b, npend, false);
	if (hoard_log_get_level() >= LOG_DEBUG)
		hoard_log(LOG_DEBUG, "group commit: %zu files, %s", n,
			  r < 0 ? strerror(-r) : "landed");
	for (size_t i = 0; i < n; i++) {
		struct commit_one *o = &v[i];

		if (!o->in_group)
			continue;
		if (r < 0)
			o->r = r;
		if (o->r == 0) {
			chunks_unstage_locked(fs, &o->c.staged);
			if (o->c.n_ext)
				o->is->fresh_ext = false;
		} else {
			chunks_unstage_failed_locked(fs, &o->c.staged);
		}
	}
	pthread_mutex_unlock(&fs->lock);
	idmap_free(&all);
	hoard_batch_free(b);
	for (size_t i = 0; i < n; i++) {
		struct commit_one *o = &v[i];

		if (o->r == 0) {
			pthread_mutex_lock(&o->is->mu);
			o->is->dirty = false;
			pthread_mutex_unlock(&o->is->mu);
		} else if (o->in_group) {
			hoard_log(LOG_ERR, "commit of inode %llu failed: %s",
				  (unsigned long long)o->is->ino,
				  strerror(-o->r));
		}
		commit_one_free(o);
	}
}

/* ---- streams ------------------------------------------------------------ */

/* Holds what follows the last cut: the chunker cuts at HOARD_CHUNK_MAX at
 * the latest, so that is less than a chunk, and with the bytes of the next
 * cut appended at most a chunk. */
#define STREAM_BUF HOARD_CHUNK_MAX

/*
 * Record the stream's finished jobs from the head of its queue (ingest.c)
 * until at most keep are left, waiting for them when more are; in file
 * order, as emit_chunk would have.  A job that failed in a worker is run
 * once more here (the disk may have room again: then the stream goes on);
 * when that fails too, the job stays (with its bytes, which a failed
 * commit moves to a staging file) and the error is returned, as
 * emit_chunk's would be.
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
			/* a failed run staged nothing, a failed record
			 * accounted for its stage: nothing to undo later */
			j->r = r;
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

	if (stream_fault(st->base + have + k))
		return -ENOSPC;
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
 * On failure the chunks cut before it are kept (stored, or queued to the
 * pool) and the rest of p is not: the stream no longer matches the file,
 * and its caller breaks it or drops it (stream_feed).
 */
static int stream_cut(struct hoard_fs *fs, struct istate *is, const uint8_t *p,
		      size_t n)
{
	struct stream *st = is->stream;
	int cut, r;

	while (n) {
		size_t k = hoard_chunker_next(&st->ch, p, n, &cut);

		if (!cut) { /* k == n, and the chunk so far is < MAX */
			stream_keep(st, p, k);
			return 0;
		}
		r = stream_emit(is, p, k);
		if (r < 0)
			return r;
		p += k;
		n -= k;
	}
	return 0;
}

int stream_feed(struct hoard_fs *fs, struct istate *is, const uint8_t *p,
		size_t n)
{
	int r;

	if (is->stream->err)
		return is->stream->err;
	r = stream_cut(fs, is, p, n);

	if (is->stream->q.n) /* the pool: one wakeup for the whole write */
		ingest_kick();
	return r;
}

void stream_break(struct hoard_fs *fs, struct istate *is, int err)
{
	struct stream *st = calloc(1, sizeof(*st));

	if (!st || idmap_init(&st->c.deltas, 1) < 0 ||
	    idmap_init(&st->c.staged, 1) < 0) {
		if (st) {
			idmap_free(&st->c.deltas);
			free(st);
		}
		is->stream->err = err; /* its frames stay until the close */
		return;
	}
	stream_free(fs, is, false, false);
	st->c.fs = fs;
	st->c.bulk = true;
	st->err = err;
	is->stream = st;
}

/* In-memory staging written by appends only becomes a stream; on failure
 * nothing changed. */
int stream_start(struct hoard_fs *fs, struct istate *is)
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
 * content goes to a staging file, which takes over.  A broken stream's is
 * lost: its error, as an append would get. */
int stream_to_file(struct hoard_fs *fs, struct istate *is)
{
	int r;

	if (is->stream->err)
		return is->stream->err;
	r = staging_file_new(fs, is, fill_from_stream, 0);
	if (r == 0)
		stream_free(fs, is, false, false);
	return r;
}

/* Land a stream: its last chunk, then the batch. */
static int stream_commit(struct hoard_fs *fs, struct istate *is, bool sync)
{
	struct stream *st = is->stream;
	int r = 0;

	if (st->err) /* lost bytes: never landed, nor moved to a file */
		return st->err;
	/* the tail, then every frame stored before the batch */
	if (st->len > st->head)
		r = stream_emit(is, NULL, 0);
	if (r == 0)
		r = stream_reap(is, 0);
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
