/* SPDX-License-Identifier: MIT */
/*
 * read: the read path (moved out of file.c, whose essay says where a
 * file's bytes are).  A read copies into the caller's buffer
 * (hoard_fs_read) or, for a committed file, hands out pinned pieces of
 * cached chunks (hoard_fs_read_vec, freed by hoard_fs_read_done); a file
 * being written is read from its in-memory staging, its staging file, or
 * its stream (stream_read: the chunks cut so far, the ingest jobs not yet
 * recorded and the buffered tail).  A read that fetched from the remote
 * hints the next chunks (read_ahead).
 *
 * Thread contract: a read holds is->rw for reading (the staging and the
 * stream do not change under it); is->mu guards the size and the
 * read-ahead window; the chunk cache (chunks.c) locks itself.
 * stream_read is called with is->rw held (for reading or writing).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/util.h"
#include "fs-internal.h"

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

int stream_read(struct hoard_fs *fs, struct istate *is, uint8_t *buf,
		uint64_t off, uint64_t end)
{
	const size_t esz = EXTENT_KEY_SIZE + EXTENT_VAL_SIZE;
	struct stream *st = is->stream;
	struct rsink s = {.buf = buf, .off = off, .end = end};
	uint64_t filled = off;
	size_t lo = 0, hi = st->c.n_ext;
	int r = 0;

	struct extent_rec e;

	if (st->err) /* it lost bytes of an answered append */
		return -EIO;

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

/* The read of [off, off + size) into s, under is->rw for reading: the
 * bounds against the file's size, then the range. */
static ssize_t read_locked(struct hoard_fs *fs, struct istate *is,
			   struct rsink *s, size_t size, off_t off)
{
	ssize_t r = 0;

	pthread_rwlock_rdlock(&is->rw);
	if (read_bounds(is, size, off, &s->end))
		r = read_range(fs, is, s, (uint64_t)off, s->end);
	pthread_rwlock_unlock(&is->rw);
	return r;
}

ssize_t hoard_fs_read(struct hoard_fs *fs, struct hoard_fh *fh, void *buf,
		      size_t size, off_t off)
{
	struct rsink s = {.buf = buf, .off = (uint64_t)off};

	if (off < 0)
		return -EINVAL;
	return read_locked(fs, fh->is, &s, size, off);
}

ssize_t hoard_fs_read_vec(struct hoard_fs *fs, struct hoard_fh *fh, size_t size,
			  off_t off, struct hoard_rvec *rv)
{
	struct rsink s = {.off = (uint64_t)off, .rv = rv};
	ssize_t r;

	rv->n = rv->npins = 0;
	rv->own = NULL;
	if (off < 0)
		return -EINVAL;
	r = read_locked(fs, fh->is, &s, size, off);
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
