// SPDX-License-Identifier: MIT
/*
 * lazy: fetch on read of chunks that are not local (lazy.h; docs/REMOTE.md
 * section 10, docs/FORMAT.md 2.3).
 *
 * A fetch: one ranged GET of the frame (its pack, offset and length are in
 * the chunk's version-2 record), decode, re-hash against the id (a mismatch
 * is fetched once more, then EIO), then, under the metadata lock, the frame
 * and the record with flag bit 0 set go in one batch, unless the record went
 * away meanwhile (its last file was deleted) or another path stored it.
 *
 * One fetch per chunk at a time: an in-flight table (a list; few fetches
 * run at once) where later readers of the same id wait for the first one
 * and take a copy of its bytes or its error.
 *
 * Retries and the bound (docs/REMOTE.md 10.3): a read has HOARD_LAZY_BUDGET_MS
 * from the moment it asks for a chunk.  Within it the S3 client retries as
 * for a pull (transient errors, backoff with full jitter), each attempt cut
 * at the deadline, and a frame that does not match its id is fetched again
 * (VERIFY_TRIES in all).  Time spent waiting for another fetch of the chunk
 * counts.  A failure is remembered for one chunk only, and only when the
 * fetch waited (FAIL_SLOW_NS or more): for FAIL_MEMORY_NS a read of that
 * chunk fails at once, because the kernel retries a failed readahead with a
 * read of its own, which must not wait out the bound a second time.  Other
 * chunks are not affected, and a refused connection (fails at once) is not
 * remembered at all.
 *
 * Read-ahead: a read that fetched hints the next chunks of its file
 * (file.c); those not local and not in flight are queued (at most
 * AHEAD_QUEUE) for HOARD_LAZY_THREADS background threads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/codec.h"
#include "hoard/core.h"
#include "hoard/lazy.h"
#include "hoard/remote.h"
#include "hoard/util.h"
#include "sync-internal.h"

#define AHEAD_QUEUE	 64
#define VERIFY_TRIES	 3 /* as pull: a frame that fails its id, again */
#define INDEX_REFRESH_NS (30 * 1000000000ull) /* re-read at most this often */
#define FAIL_SLOTS	 64
#define FAIL_SLOW_NS	 (2 * 1000000000ull) /* a failure that waited ... */
#define FAIL_MEMORY_NS	 (3 * 1000000000ull) /* ... fails its chunk at once */
#define PF_STREAK	 8 /* prefetch: failures in a row: the remote is down */
#define PF_AGAIN	 2 /* a second pass with nothing fetched: so few failed */
#define MS_NS		 1000000ull

struct failed {
	struct hoard_id id;
	uint64_t until; /* monotonic ns; 0: free slot */
};

struct flight {
	struct hoard_id id;
	bool done;
	int r;
	uint8_t *data;
	uint32_t len;
	unsigned refs;
	struct flight *next;
};

struct hoard_lazy {
	struct hoard_fs *fs;
	struct hoard_s3_client *cl;
	char *bucket, *prefix; /* prefix "" or ends with '/' */
	pthread_mutex_t mu;    /* protects everything below */
	pthread_cond_t cv;     /* a flight finished; the queue changed */
	struct flight *flights;
	struct hoard_id queue[AHEAD_QUEUE];
	size_t q_head, q_n;
	bool stop;
	pthread_t th[HOARD_LAZY_THREADS];
	unsigned n_th;
	struct hoard_lazy_counts c;
	struct failed failed[FAIL_SLOTS]; /* chunks that just failed, slowly */
	unsigned failed_next;
	/* the bucket's chunk index, for eviction (locate) */
	char *url;
	pthread_mutex_t idx_mu; /* protects idx, idx_ns */
	struct remote *idx;	/* NULL until read */
	uint64_t idx_ns;	/* when it was last read or tried (monotonic) */
};

char *hoard_lazy_setting(struct hoard_store *st)
{
	char buf[1100];
	size_t n;

	if (hoard_store_get_into(st, HOARD_CF_DEFAULT, HOARD_REMOTE_KEY,
				 strlen(HOARD_REMOTE_KEY), buf, sizeof(buf) - 1,
				 &n) < 0)
		return NULL;
	buf[n] = 0;
	return strdup(buf);
}

int hoard_lazy_set_setting(struct hoard_store *st, const char *url)
{
	return hoard_store_put(st, HOARD_CF_DEFAULT, HOARD_REMOTE_KEY,
			       strlen(HOARD_REMOTE_KEY), url, strlen(url));
}

/* ---- one fetch ---------------------------------------------------------- */

static uint64_t budget_end(void)
{
	return hoard_now_mono_ns() + HOARD_LAZY_BUDGET_MS * MS_NS;
}

static int get_verified(struct hoard_lazy *lz, const struct hoard_id *id,
			const struct chunk_rec *rec, uint64_t deadline,
			uint8_t *frame, uint8_t *raw)
{
	char hex[HOARD_SHA256_HEX_SIZE], idhex[HOARD_ID_HEX_SIZE], *key;
	ssize_t n;
	int r = -EIO;

	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", rec->pack[i]);
	if (asprintf(&key, "%spacks/%s.pack", lz->prefix, hex) < 0)
		return -ENOMEM;
	hoard_id_hex(id, idhex);
	for (int t = 0; t < VERIFY_TRIES; t++) {
		if (t > 0 && hoard_now_mono_ns() >= deadline) {
			hoard_log(LOG_WARNING,
				  "lazy fetch of chunk %s from %s: no time "
				  "left in the %u ms budget of a read",
				  idhex, key, HOARD_LAZY_BUDGET_MS);
			break;
		}
		pthread_mutex_lock(&lz->mu);
		lz->c.gets++;
		pthread_mutex_unlock(&lz->mu);
		n = hoard_s3_get_range_by(lz->cl, lz->bucket, key,
					  rec->pack_off, rec->frame_size, frame,
					  deadline);
		if (n > 0) {
			pthread_mutex_lock(&lz->mu);
			lz->c.get_bytes += (uint64_t)n;
			pthread_mutex_unlock(&lz->mu);
		}
		if (n < 0) {
			hoard_log(LOG_WARNING,
				  "lazy fetch of chunk %s from %s: %s", idhex,
				  key, hoard_s3_last_error());
			r = n == -ENOENT ? -ENOENT : -EIO;
			break;
		}
		if ((uint64_t)n == rec->frame_size &&
		    hoard_codec_decode(frame, (size_t)n, raw, rec->raw_size,
				       rec->raw_size) ==
			    (ssize_t)rec->raw_size) {
			/* the id, and a trusted pull's SHA-256 (5.4) */
			if (sync_chunk_verify(hoard_fs_store(lz->fs), id, raw,
					      rec->raw_size) == 0) {
				r = 0;
				break;
			}
		}
		hoard_log(LOG_WARNING,
			  "lazy fetch of chunk %s from %s: the frame does not "
			  "match its id%s",
			  idhex, key, t + 1 < VERIFY_TRIES ? ", again" : "");
		r = -EIO;
	}
	free(key);
	return r;
}

/* Did a fetch of id fail slowly just now?  (lz->mu held) */
static bool failed_recently(struct hoard_lazy *lz, const struct hoard_id *id,
			    uint64_t now)
{
	for (unsigned i = 0; i < FAIL_SLOTS; i++)
		if (lz->failed[i].until > now &&
		    hoard_id_equal(&lz->failed[i].id, id))
			return true;
	return false;
}

static void failed_note(struct hoard_lazy *lz, const struct hoard_id *id,
			uint64_t now)
{
	struct failed *f = &lz->failed[lz->failed_next++ % FAIL_SLOTS];

	f->id = *id;
	f->until = now + FAIL_MEMORY_NS;
}

/* Store a verified frame unless the chunk went away or is local now. */
static int store_fetched(struct hoard_lazy *lz, const struct hoard_id *id,
			 const uint8_t *frame, uint32_t flen)
{
	int r = hoard_core_chunk_fetched(lz->fs, id, frame, flen);

	if (r == 0) {
		pthread_mutex_lock(&lz->mu);
		lz->c.fetched_chunks++;
		lz->c.fetched_bytes += flen;
		pthread_mutex_unlock(&lz->mu);
	}
	return r;
}

static void lazy_refresh(void *ud);
static int lazy_locate(void *ud, const struct hoard_id *id,
		       struct chunk_rec *rec);

/* Point the record of id at its new place (it is still not local). */
static int relocate(struct hoard_lazy *lz, const struct hoard_id *id,
		    const struct chunk_rec *moved)
{
	return hoard_core_chunk_relocate(lz->fs, id, moved);
}

static int fetch_now(struct hoard_lazy *lz, const struct hoard_id *id,
		     const struct chunk_rec *rec, uint64_t deadline,
		     uint8_t **ret_data)
{
	uint8_t *frame = malloc(rec->frame_size ? rec->frame_size : 1);
	uint8_t *raw = malloc(rec->raw_size ? rec->raw_size : 1);
	struct chunk_rec moved = *rec; /* outlives the block: rec may be it */
	int r = -ENOMEM;

	if (frame && raw)
		r = get_verified(lz, id, rec, deadline, frame, raw);
	if (r == -ENOENT) {
		/* the pack is gone (remote gc repacked it): look the chunk up
		 * in the bucket's index again and fetch it from there */
		r = -EIO;
		lazy_refresh(lz);
		if (lazy_locate(lz, id, &moved) == 0 &&
		    (memcmp(moved.pack, rec->pack, 32) ||
		     moved.pack_off != rec->pack_off)) {
			uint8_t *f2 = realloc(
				frame, moved.frame_size ? moved.frame_size : 1);

			if (f2) {
				frame = f2;
				r = get_verified(lz, id, &moved, deadline,
						 frame, raw);
			}
			if (r == 0)
				r = relocate(lz, id, &moved);
			if (r == 0)
				rec = &moved;
		}
		if (r == -ENOENT)
			r = -EIO;
	}
	if (r == 0) {
		r = store_fetched(lz, id, frame, rec->frame_size);
		if (r < 0) {
			/* the bytes are good: answer, fetch again next time */
			hoard_log(LOG_WARNING,
				  "lazy fetch: storing a chunk: %s",
				  strerror(-r));
			r = 0;
		}
	}
	free(frame);
	if (r < 0) {
		free(raw);
		return r;
	}
	*ret_data = raw;
	return 0;
}

static struct flight *flight_find(struct hoard_lazy *lz,
				  const struct hoard_id *id)
{
	for (struct flight *f = lz->flights; f; f = f->next)
		if (hoard_id_equal(&f->id, id))
			return f;
	return NULL;
}

static void flight_put(struct hoard_lazy *lz, struct flight *f)
{
	struct flight **pp;

	if (--f->refs)
		return;
	for (pp = &lz->flights; *pp != f; pp = &(*pp)->next)
		;
	*pp = f->next;
	free(f->data);
	free(f);
}

/* Fetch one chunk (or wait for its fetch).  remember: a reader's fetch,
 * which checks and notes the chunks that just failed slowly. */
static int fetch_chunk(struct hoard_lazy *lz, const struct hoard_id *id,
		       const struct chunk_rec *rec, bool remember,
		       uint8_t **ret_data)
{
	uint64_t t0 = hoard_now_mono_ns();
	uint64_t deadline = t0 + HOARD_LAZY_BUDGET_MS * MS_NS;
	struct chunk_rec now;
	struct flight *f;
	uint8_t *data = NULL;
	int r;

	pthread_mutex_lock(&lz->mu);
	if (remember && failed_recently(lz, id, t0)) {
		/* the kernel's retry of a read that just waited out the bound
		 * for this chunk */
		lz->c.failures++;
		pthread_mutex_unlock(&lz->mu);
		return -EIO;
	}
again:
	if (hoard_now_mono_ns() >= deadline) {
		/* the bound is spent waiting for a read-ahead that failed */
		lz->c.failures++;
		pthread_mutex_unlock(&lz->mu);
		return -EIO;
	}
	f = flight_find(lz, id);
	if (f && f->done && f->r == -EAGAIN)
		f = NULL; /* a failed read-ahead: fetch it ourselves */
	if (f) {
		f->refs++;
		while (!f->done)
			pthread_cond_wait(&lz->cv, &lz->mu);
		r = f->r;
		if (r == -EAGAIN) {
			flight_put(lz, f);
			goto again;
		}
		if (r == 0) {
			data = malloc(f->len ? f->len : 1);
			if (data)
				memcpy(data, f->data, f->len);
			else
				r = -ENOMEM;
		}
		flight_put(lz, f);
		pthread_mutex_unlock(&lz->mu);
		if (r == 0)
			*ret_data = data;
		return r;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		pthread_mutex_unlock(&lz->mu);
		return -ENOMEM;
	}
	f->id = *id;
	f->refs = 1;
	f->next = lz->flights;
	lz->flights = f;
	pthread_mutex_unlock(&lz->mu);

	/* A fetch that finished just before we looked stored it: read it
	 * here rather than fetch it twice. */
	if (chunk_rec_load(lz->fs, id, &now) == 0 && (now.flags & 1))
		r = chunks_load_local(lz->fs, id, rec->raw_size, &data);
	else
		r = fetch_now(lz, id, rec, deadline, &data);

	pthread_mutex_lock(&lz->mu);
	if (remember && r == -EIO && hoard_now_mono_ns() - t0 >= FAIL_SLOW_NS)
		failed_note(lz, id, hoard_now_mono_ns());
	if (r == 0 && f->refs > 1) {
		f->data = malloc(rec->raw_size ? rec->raw_size : 1);
		if (f->data) {
			memcpy(f->data, data, rec->raw_size);
			f->len = rec->raw_size;
		} else {
			f->r = -ENOMEM;
		}
	}
	if (r < 0) {
		f->r = r;
		lz->c.failures++;
	}
	f->done = true;
	pthread_cond_broadcast(&lz->cv);
	flight_put(lz, f);
	pthread_mutex_unlock(&lz->mu);
	if (r == 0)
		*ret_data = data;
	return r;
}

static int lazy_fetch(void *ud, const struct hoard_id *id,
		      const struct chunk_rec *rec, uint8_t **ret_data)
{
	return fetch_chunk(ud, id, rec, true, ret_data);
}

/* Fetch one chunk by id if it is not local (prefetch). */
static int fetch_if_needed(struct hoard_lazy *lz, const struct hoard_id *id,
			   uint64_t *ret_bytes)
{
	struct chunk_rec rec;
	uint8_t *data;
	int r = chunk_rec_load(lz->fs, id, &rec);

	if (r < 0 || (rec.flags & 1))
		return r == -ENOENT ? 0 : r;
	if (!rec.has_loc)
		return -ENODATA; /* not local and nowhere else: lost */
	r = fetch_chunk(lz, id, &rec, false, &data);
	if (r < 0)
		return r;
	chunks_cache_put(lz->fs, id, data, rec.raw_size);
	free(data);
	if (ret_bytes)
		*ret_bytes += rec.frame_size;
	return 0;
}

/* ---- read-ahead ----------------------------------------------------------- */

static bool queued(struct hoard_lazy *lz, const struct hoard_id *id)
{
	for (size_t i = 0; i < lz->q_n; i++)
		if (hoard_id_equal(&lz->queue[(lz->q_head + i) % AHEAD_QUEUE],
				   id))
			return true;
	return flight_find(lz, id) != NULL;
}

static void lazy_ahead(void *ud, const struct hoard_id *ids,
		       const uint32_t *lens, size_t n)
{
	struct hoard_lazy *lz = ud;

	(void)lens;
	for (size_t i = 0; i < n; i++) {
		struct chunk_rec rec;

		if (chunk_rec_load(lz->fs, &ids[i], &rec) < 0 ||
		    (rec.flags & 1) || !rec.has_loc)
			continue;
		pthread_mutex_lock(&lz->mu);
		if (lz->q_n < AHEAD_QUEUE && !queued(lz, &ids[i])) {
			lz->queue[(lz->q_head + lz->q_n) % AHEAD_QUEUE] = ids[i];
			lz->q_n++;
			lz->c.ahead_queued++;
			pthread_cond_broadcast(&lz->cv);
		}
		pthread_mutex_unlock(&lz->mu);
	}
}

/*
 * Read-ahead in runs: the queued chunks that follow one another in one
 * pack (frames back to back, as a push writes a file's chunks) are fetched
 * with one ranged GET, up to MAX_RUN of them.  Each gets a flight of its
 * own, so readers wait for it as for any fetch; a chunk already in flight
 * ends the run.
 */
#define MAX_RUN 8

struct run_ent {
	struct hoard_id id;
	struct chunk_rec rec;
	struct flight *f;
};

/* Take the chunks after the queue's head that continue run[n - 1] (lz->mu
 * held).  Returns the new length. */
static size_t run_extend(struct hoard_lazy *lz, struct run_ent *run, size_t n)
{
	while (n < MAX_RUN && lz->q_n) {
		const struct hoard_id *id = &lz->queue[lz->q_head];
		struct run_ent *last = &run[n - 1];
		struct chunk_rec rec;

		if (chunk_rec_load(lz->fs, id, &rec) < 0 || (rec.flags & 1) ||
		    !rec.has_loc || memcmp(rec.pack, last->rec.pack, 32) ||
		    rec.pack_off != last->rec.pack_off + last->rec.frame_size ||
		    flight_find(lz, id))
			break;
		run[n].id = *id;
		run[n].rec = rec;
		n++;
		lz->q_head = (lz->q_head + 1) % AHEAD_QUEUE;
		lz->q_n--;
	}
	return n;
}

static void run_fetch(struct hoard_lazy *lz, struct run_ent *run, size_t n)
{
	uint64_t off = run[0].rec.pack_off;
	uint64_t len = run[n - 1].rec.pack_off + run[n - 1].rec.frame_size -
		       off;
	uint8_t *buf = malloc(len ? len : 1);
	uint8_t *raw[MAX_RUN] = {0};
	int rr[MAX_RUN];
	char hex[HOARD_SHA256_HEX_SIZE], *key = NULL;
	ssize_t got = -ENOMEM;

	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", run[0].rec.pack[i]);
	if (buf && asprintf(&key, "%spacks/%s.pack", lz->prefix, hex) >= 0) {
		pthread_mutex_lock(&lz->mu);
		lz->c.gets++;
		pthread_mutex_unlock(&lz->mu);
		got = hoard_s3_get_range_by(lz->cl, lz->bucket, key, off, len,
					    buf, budget_end());
		if (got > 0) {
			pthread_mutex_lock(&lz->mu);
			lz->c.get_bytes += (uint64_t)got;
			pthread_mutex_unlock(&lz->mu);
		}
		if (got < 0 && got != -ENOENT)
			hoard_log(LOG_WARNING, "lazy read-ahead from %s: %s",
				  key, hoard_s3_last_error());
	}
	for (size_t i = 0; i < n; i++) {
		const struct chunk_rec *rec = &run[i].rec;
		const uint8_t *frame = buf + (rec->pack_off - off);

		rr[i] = -EIO;
		if (got < 0 || (uint64_t)got != len)
			continue;
		raw[i] = malloc(rec->raw_size ? rec->raw_size : 1);
		if (!raw[i] ||
		    hoard_codec_decode(frame, rec->frame_size, raw[i],
				       rec->raw_size,
				       rec->raw_size) != (ssize_t)rec->raw_size)
			continue;
		if (sync_chunk_verify(hoard_fs_store(lz->fs), &run[i].id,
				      raw[i], rec->raw_size) < 0)
			continue;
		rr[i] = 0;
		store_fetched(lz, &run[i].id, frame, rec->frame_size);
		chunks_cache_put(lz->fs, &run[i].id, raw[i], rec->raw_size);
	}
	pthread_mutex_lock(&lz->mu);
	for (size_t i = 0; i < n; i++) {
		struct flight *f = run[i].f;

		/* a failed read-ahead is no one's error: waiters fetch again */
		f->r = rr[i] ? -EAGAIN : 0;
		if (rr[i] == 0 && f->refs > 1) {
			f->data = raw[i];
			f->len = run[i].rec.raw_size;
			raw[i] = NULL;
		}
		f->done = true;
		flight_put(lz, f);
	}
	pthread_cond_broadcast(&lz->cv);
	pthread_mutex_unlock(&lz->mu);
	for (size_t i = 0; i < n; i++)
		free(raw[i]);
	free(key);
	free(buf);
}

static void *ahead_thread(void *arg)
{
	struct hoard_lazy *lz = arg;
	struct run_ent run[MAX_RUN];

	pthread_mutex_lock(&lz->mu);
	for (;;) {
		size_t n;

		while (!lz->stop && !lz->q_n)
			pthread_cond_wait(&lz->cv, &lz->mu);
		if (lz->stop)
			break;
		run[0].id = lz->queue[lz->q_head];
		lz->q_head = (lz->q_head + 1) % AHEAD_QUEUE;
		lz->q_n--;
		if (flight_find(lz, &run[0].id) ||
		    chunk_rec_load(lz->fs, &run[0].id, &run[0].rec) < 0 ||
		    (run[0].rec.flags & 1) || !run[0].rec.has_loc)
			continue;
		n = run_extend(lz, run, 1);
		for (size_t i = 0; i < n; i++) {
			run[i].f = calloc(1, sizeof(*run[i].f));
			if (!run[i].f) {
				n = i;
				break;
			}
			run[i].f->id = run[i].id;
			run[i].f->refs = 1;
			run[i].f->next = lz->flights;
			lz->flights = run[i].f;
		}
		if (!n)
			continue;
		pthread_mutex_unlock(&lz->mu);
		run_fetch(lz, run, n);
		pthread_mutex_lock(&lz->mu);
	}
	pthread_mutex_unlock(&lz->mu);
	return NULL;
}

/* ---- prefetch ------------------------------------------------------------- */

/*
 * Every chunk of the file is tried, 4 at a time; a failure does not stop
 * the others.  Those that failed are tried once more in a second pass when
 * the first fetched something or only PF_AGAIN failed (otherwise the
 * remote is down: no second wait).
 * PF_STREAK failures in a row with no success between them end a pass
 * early, so a remote that is down costs a few budgets, not one per chunk;
 * *streak carries that count from one file to the next of a request.
 */
struct pf {
	struct hoard_lazy *lz;
	struct hoard_id *ids;
	int *err; /* per chunk: 0 local, 1 not tried yet, -errno */
	size_t n, next;
	uint64_t bytes, fetched;
	unsigned *streak;
	pthread_mutex_t mu;
};

static void *pf_thread(void *arg)
{
	struct pf *p = arg;

	for (;;) {
		uint64_t bytes = 0;
		size_t i;
		int r;

		pthread_mutex_lock(&p->mu);
		while (p->next < p->n && p->err[p->next] <= 0)
			p->next++;
		if (p->next >= p->n || *p->streak >= PF_STREAK) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		i = p->next++;
		pthread_mutex_unlock(&p->mu);
		r = fetch_if_needed(p->lz, &p->ids[i], &bytes);
		pthread_mutex_lock(&p->mu);
		p->bytes += bytes;
		p->err[i] = r;
		if (r == 0) {
			p->fetched += bytes ? 1 : 0;
			*p->streak = 0;
		} else if (r != -ENODATA) {
			++*p->streak;
		}
		pthread_mutex_unlock(&p->mu);
	}
}

static void pf_pass(struct pf *p)
{
	pthread_t th[4];
	unsigned n_th = 0;

	p->next = 0;
	for (; n_th < 4; n_th++)
		if (pthread_create(&th[n_th], NULL, pf_thread, p))
			break;
	if (!n_th)
		pf_thread(p);
	for (unsigned i = 0; i < n_th; i++)
		pthread_join(th[i], NULL);
}

/* The distinct chunk ids of ino's extents, in file order. */
static int pf_collect(struct hoard_lazy *lz, uint64_t ino, struct pf *p)
{
	return hoard_core_file_chunk_ids(hoard_fs_store(lz->fs), ino, &p->ids,
					 &p->n);
}

int hoard_lazy_prefetch(struct hoard_lazy *lz, uint64_t ino, unsigned *streak,
			struct hoard_lazy_prefetch_res *ret)
{
	unsigned own_streak = 0;
	size_t failed = 0;
	struct pf p = {.lz = lz, .streak = streak ? streak : &own_streak};
	int r;

	memset(ret, 0, sizeof(*ret));
	pthread_mutex_init(&p.mu, NULL);
	r = pf_collect(lz, ino, &p);
	if (r == 0 && p.n) {
		p.err = malloc(p.n * sizeof(*p.err));
		if (!p.err)
			r = -ENOMEM;
	}
	if (r == 0 && p.n) {
		for (size_t i = 0; i < p.n; i++)
			p.err[i] = 1;
		pf_pass(&p);
		for (size_t i = 0; i < p.n; i++)
			if (p.err[i] < 0 && p.err[i] != -ENODATA)
				failed++;
		if (failed && (p.fetched || failed <= PF_AGAIN)) {
			/* the remote answers: try the failures once more */
			for (size_t i = 0; i < p.n; i++)
				if (p.err[i] < 0 && p.err[i] != -ENODATA)
					p.err[i] = 1;
			if (*p.streak >= PF_STREAK)
				*p.streak = PF_STREAK - 1;
			pf_pass(&p);
		}
		ret->chunks = p.n;
		for (size_t i = 0; i < p.n; i++) {
			struct chunk_rec rec;

			if (p.err[i] == 0)
				continue;
			if (!ret->missing) {
				ret->first_missing = p.ids[i];
				ret->first_err = p.err[i] > 0 ? -ECANCELED
							      : p.err[i];
			}
			ret->missing++;
			if (chunk_rec_load(lz->fs, &p.ids[i], &rec) == 0)
				ret->missing_bytes += rec.raw_size;
		}
		r = ret->missing ? -EIO : 0;
	}
	ret->fetched_bytes = p.bytes;
	free(p.ids);
	free(p.err);
	pthread_mutex_destroy(&p.mu);
	return r;
}

/* ---- where local chunks are in the remote (eviction) ---------------------- */

static void idx_free(struct remote *x)
{
	if (!x)
		return;
	x->cl = NULL; /* lz's */
	x->bucket = x->prefix = NULL;
	remote_close(x);
	free(x);
}

static void lazy_refresh(void *ud)
{
	struct hoard_lazy *lz = ud;
	struct remote *x;
	char err[512] = "";
	int e;

	pthread_mutex_lock(&lz->idx_mu);
	/* at most every INDEX_REFRESH_NS, failed tries too (no warning per
	 * eviction pass while the remote is down) */
	if (lz->idx_ns && hoard_now_mono_ns() - lz->idx_ns < INDEX_REFRESH_NS) {
		pthread_mutex_unlock(&lz->idx_mu);
		return;
	}
	lz->idx_ns = hoard_now_mono_ns();
	pthread_mutex_unlock(&lz->idx_mu);
	x = calloc(1, sizeof(*x));
	if (!x)
		return;
	pthread_mutex_init(&x->mu, NULL);
	x->cl = lz->cl;
	x->bucket = lz->bucket;
	x->prefix = lz->prefix;
	x->url = lz->url;
	x->jobs = 4;
	x->skip_condemned = true; /* never point at a pack being deleted */
	x->rx = hoard_rindex_new();
	e = x->rx ? remote_load_index(x,
				      hoard_store_dir(hoard_fs_store(lz->fs)),
				      err, sizeof(err))
		  : -ENOMEM;
	if (e < 0) {
		hoard_log(LOG_WARNING,
			  "evict: cannot read the chunk index of %s (no local "
			  "chunk is dropped): %s",
			  lz->url, *err ? err : strerror(-e));
		idx_free(x);
		return;
	}
	pthread_mutex_lock(&lz->idx_mu);
	idx_free(lz->idx);
	lz->idx = x;
	pthread_mutex_unlock(&lz->idx_mu);
}

static void sha_from_hex(const char *hex, uint8_t out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v = 0;

		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static int lazy_locate(void *ud, const struct hoard_id *id,
		       struct chunk_rec *rec)
{
	struct hoard_lazy *lz = ud;
	const struct hoard_rloc *loc;
	int r = -ENOENT;

	pthread_mutex_lock(&lz->idx_mu);
	loc = lz->idx ? hoard_rindex_get(lz->idx->rx, id) : NULL;
	if (loc && loc->raw_len == rec->raw_size) {
		rec->has_loc = true;
		sha_from_hex(lz->idx->packs[loc->pack], rec->pack);
		rec->pack_off = loc->off;
		rec->frame_size = loc->frame_len;
		r = 0;
	}
	pthread_mutex_unlock(&lz->idx_mu);
	return r;
}

/* ---- open, close ----------------------------------------------------------- */

static const struct hoard_core_remote lazy_hooks = {
	.fetch = lazy_fetch,
	.ahead = lazy_ahead,
	.locate = lazy_locate,
	.locate_refresh = lazy_refresh,
};

int hoard_lazy_open(struct hoard_fs *fs, const char *url,
		    const struct hoard_s3_config *s3, struct hoard_lazy **ret)
{
	struct hoard_s3_config cfg = *s3;
	struct hoard_lazy *lz = calloc(1, sizeof(*lz));
	char *prefix = NULL;
	int r = -ENOMEM;

	if (!lz)
		return -ENOMEM;
	lz->fs = fs;
	pthread_mutex_init(&lz->mu, NULL);
	pthread_mutex_init(&lz->idx_mu, NULL);
	lz->url = strdup(url);
	if (!lz->url)
		goto fail;
	pthread_cond_init(&lz->cv, NULL);
	r = hoard_s3_url_parse(url, &lz->bucket, &prefix);
	if (r < 0)
		goto fail;
	if (*prefix && prefix[strlen(prefix) - 1] != '/') {
		if (asprintf(&lz->prefix, "%s/", prefix) < 0)
			lz->prefix = NULL;
		free(prefix);
	} else {
		lz->prefix = prefix;
	}
	r = -ENOMEM;
	if (!lz->prefix)
		goto fail;
	/* pull's retry policy (attempts, backoff with full jitter), inside
	 * the budget of a read: shorter timeouts and backoff sleeps */
	if (!cfg.max_attempts)
		cfg.max_attempts = HOARD_S3_DEFAULT_ATTEMPTS;
	if (!cfg.backoff_base_ms)
		cfg.backoff_base_ms = 100;
	if (cfg.connect_timeout_ms > HOARD_LAZY_CONNECT_MS ||
	    !cfg.connect_timeout_ms)
		cfg.connect_timeout_ms = HOARD_LAZY_CONNECT_MS;
	if (!cfg.low_speed_limit)
		cfg.low_speed_limit = 1;
	if (cfg.low_speed_time_s > HOARD_LAZY_STALL_S || !cfg.low_speed_time_s)
		cfg.low_speed_time_s = HOARD_LAZY_STALL_S;
	if (cfg.backoff_max_ms > HOARD_LAZY_BACKOFF_MS || !cfg.backoff_max_ms)
		cfg.backoff_max_ms = HOARD_LAZY_BACKOFF_MS;
	r = hoard_s3_client_new(&cfg, &lz->cl);
	if (r < 0)
		goto fail;
	for (; lz->n_th < HOARD_LAZY_THREADS; lz->n_th++)
		if (pthread_create(&lz->th[lz->n_th], NULL, ahead_thread, lz))
			break;
	hoard_core_remote_attach(fs, &lazy_hooks, lz);
	*ret = lz;
	return 0;
fail:
	hoard_lazy_free(lz);
	return r;
}

void hoard_lazy_free(struct hoard_lazy *lz)
{
	if (!lz)
		return;
	if (lz->fs)
		hoard_core_remote_detach(lz->fs, lz);
	pthread_mutex_lock(&lz->mu);
	lz->stop = true;
	pthread_cond_broadcast(&lz->cv);
	pthread_mutex_unlock(&lz->mu);
	for (unsigned i = 0; i < lz->n_th; i++)
		pthread_join(lz->th[i], NULL);
	idx_free(lz->idx);
	hoard_s3_client_free(lz->cl);
	free(lz->url);
	pthread_mutex_destroy(&lz->idx_mu);
	free(lz->bucket);
	free(lz->prefix);
	pthread_cond_destroy(&lz->cv);
	pthread_mutex_destroy(&lz->mu);
	free(lz);
}

void hoard_lazy_get_counts(struct hoard_lazy *lz, struct hoard_lazy_counts *ret)
{
	struct hoard_s3_stats ss;

	pthread_mutex_lock(&lz->mu);
	*ret = lz->c;
	pthread_mutex_unlock(&lz->mu);
	hoard_s3_client_stats(lz->cl, &ss);
	ret->retries = ss.retries;
}
