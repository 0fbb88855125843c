/* SPDX-License-Identifier: MIT */
/*
 * chunks: chunk records and frames (docs/FORMAT.md 2.3, 3, 5), the
 * decompressed-chunk cache, and the in-flight table that keeps a frame alive
 * while a commit that relies on it is under way.
 *
 * Why an in-flight table: a commit writes the frames of its new chunks
 * before its batch (a large file is not held in memory), and confirms its
 * dedup hits before the batch too.  Between those steps another commit may
 * drop the last reference to one of those chunks; the frame must then stay
 * (only the record goes), and our batch recreates the record.  The entry
 * also keeps the record the stage read, for the commit's refcount change
 * (rec_keep below), and a small new chunk's bytes go into the
 * decompressed cache (CACHE_WRITTEN_MAX), where a dedup hit soon after is
 * confirmed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/codec.h"
#include "hoard/util.h"
#include "fs-internal.h"

/* ---- decompressed-chunk cache ------------------------------------------ */

/*
 * An entry is shared by the cache and by the readers that pinned it (a read
 * answered by reference, chunks_pin): refs counts the cache's own reference
 * (while the entry is in the table) and one per pin; the last one frees it.
 * So an entry evicted while a reply still points into it lives until that
 * reply is sent.
 */
struct centry {
	struct hoard_id id;
	uint32_t len;
	unsigned refs;		    /* protected by the cache's mu */
	uint8_t *data;		    /* malloc()ed, or in frame: */
	struct hoard_pinned *frame; /* a raw frame kept pinned in RocksDB */
	struct centry *hnext;	    /* hash chain */
	struct centry *prev, *next; /* LRU list, most recent first */
};

/* A chunk one reader is loading; the others wait for it (chunks_pin). */
struct cloading {
	struct hoard_id id;
	struct cloading *next;
};

struct chunk_cache {
	pthread_mutex_t mu;    /* protects everything below */
	pthread_cond_t loaded; /* with mu: a load in `loading` finished */
	struct cloading *loading;
	struct centry **tab;
	size_t tab_cap;
	size_t bytes, budget;
	struct centry *head, *tail;
	uint64_t hits, misses;
};

/* Chunk bytes: malloc()ed data, or data inside a pinned frame. */
static void data_free(uint8_t *data, struct hoard_pinned *frame)
{
	if (frame)
		hoard_store_unpin(frame);
	else
		free(data);
}

int chunk_cache_new(size_t bytes, struct chunk_cache **ret)
{
	struct chunk_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->budget = bytes;
	c->tab_cap = 4096;
	c->tab = calloc(c->tab_cap, sizeof(*c->tab));
	if (!c->tab) {
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->loaded, NULL);
	*ret = c;
	return 0;
}

void chunk_cache_free(struct chunk_cache *c)
{
	struct centry *e, *n;

	if (!c)
		return;
	/* No reads are left, so no pins; entries may hold values pinned in
	 * RocksDB: hoard_fs_free comes before hoard_store_close. */
	for (e = c->head; e; e = n) {
		n = e->next;
		data_free(e->data, e->frame);
		free(e);
	}
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->loaded);
	free(c->tab);
	free(c);
}

/*
 * The cache's own hash chains, not the shared table (htab.h), on purpose:
 * readers hold an entry's address while it is pinned (refs) and the LRU
 * list links entries, so entries must not move, and a chain is the
 * table: adding an entry allocates nothing and cannot fail after the
 * entry itself was made.  htab.h stores entries in place and moves them.
 */
static struct centry **cache_slot(struct chunk_cache *c,
				  const struct hoard_id *id)
{
	uint64_t h;

	memcpy(&h, id->b, sizeof(h));
	return &c->tab[h & (c->tab_cap - 1)];
}

static void lru_unlink(struct chunk_cache *c, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
}

static void lru_push(struct chunk_cache *c, struct centry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

/* Drop one reference (c->mu held); the last frees the entry. */
static void centry_put_locked(struct centry *e)
{
	if (--e->refs)
		return;
	data_free(e->data, e->frame);
	free(e);
}

static void cache_evict_one(struct chunk_cache *c)
{
	struct centry *e = c->tail, **pp;

	lru_unlink(c, e);
	for (pp = cache_slot(c, &e->id); *pp != e; pp = &(*pp)->hnext)
		;
	*pp = e->hnext;
	c->bytes -= e->len;
	centry_put_locked(e);
}

void hoard_fs_cache_counts(struct hoard_fs *fs, uint64_t *ret_hits,
			   uint64_t *ret_misses)
{
	struct chunk_cache *c = fs->cache;

	pthread_mutex_lock(&c->mu);
	*ret_hits = c->hits;
	*ret_misses = c->misses;
	pthread_mutex_unlock(&c->mu);
}

/* The cached entry of id of len bytes, made most recent, or NULL (c->mu
 * held). */
static struct centry *cache_find_locked(struct chunk_cache *c,
					const struct hoard_id *id, uint32_t len)
{
	struct centry *e;

	for (e = *cache_slot(c, id); e; e = e->hnext) {
		if (hoard_id_equal(&e->id, id))
			break;
	}
	if (!e || e->len != len)
		return NULL;
	lru_unlink(c, e);
	lru_push(c, e);
	return e;
}

/*
 * The cached entry of id, with a reference for the caller, or NULL (a
 * miss).  Counts the hit or miss.  With ld: when another reader is loading
 * the chunk, wait for it (readers of neighbouring ranges, in flight at
 * once, share chunks); on a miss, ld is entered in the loading list and
 * the caller must load the chunk and call cache_loaded(ld).
 */
static struct centry *cache_get(struct chunk_cache *c,
				const struct hoard_id *id, uint32_t len,
				struct cloading *ld)
{
	struct centry *e;
	struct cloading *l;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		e = cache_find_locked(c, id, len);
		if (e || !ld)
			break;
		for (l = c->loading; l && !hoard_id_equal(&l->id, id);
		     l = l->next)
			;
		if (!l) {
			ld->id = *id;
			ld->next = c->loading;
			c->loading = ld;
			break;
		}
		pthread_cond_wait(&c->loaded, &c->mu);
	}
	if (e) {
		e->refs++;
		c->hits++;
	} else {
		c->misses++;
	}
	pthread_mutex_unlock(&c->mu);
	return e;
}

/* The load cache_get entered as ld is over (cached or failed). */
static void cache_loaded(struct chunk_cache *c, struct cloading *ld)
{
	struct cloading **pp;

	pthread_mutex_lock(&c->mu);
	for (pp = &c->loading; *pp != ld; pp = &(*pp)->next)
		;
	*pp = ld->next;
	pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->mu);
}

/*
 * Insert a verified chunk; takes ownership of data (and of frame, when
 * data lies in it).  With pin, returns the
 * entry with a reference for the caller (a chunk larger than the whole
 * cache gets an entry of its own, outside it; when another thread put the
 * chunk in first, that entry), or NULL on ENOMEM; without, returns NULL.
 */
static struct centry *cache_insert(struct chunk_cache *c,
				   const struct hoard_id *id, uint8_t *data,
				   struct hoard_pinned *frame, uint32_t len,
				   bool pin)
{
	struct centry *e, **slot;

	pthread_mutex_lock(&c->mu);
	if (len <= c->budget) {
		e = cache_find_locked(c, id, len);
		if (e) {
			data_free(data, frame);
			if (!pin)
				e = NULL;
			else
				e->refs++;
			pthread_mutex_unlock(&c->mu);
			return e;
		}
	} else if (!pin) {
		pthread_mutex_unlock(&c->mu);
		data_free(data, frame);
		return NULL;
	}
	e = malloc(sizeof(*e));
	if (!e) {
		pthread_mutex_unlock(&c->mu);
		data_free(data, frame);
		return NULL;
	}
	e->id = *id;
	e->len = len;
	e->data = data;
	e->frame = frame;
	e->refs = pin ? 1 : 0;
	e->hnext = NULL;
	e->prev = e->next = NULL;
	if (len <= c->budget) {
		e->refs++; /* the cache's */
		slot = cache_slot(c, id);
		e->hnext = *slot;
		*slot = e;
		lru_push(c, e);
		c->bytes += len;
		while (c->bytes > c->budget && c->tail != e)
			cache_evict_one(c);
	}
	pthread_mutex_unlock(&c->mu);
	return pin ? e : NULL;
}

/* ---- records ------------------------------------------------------------ */

int chunk_rec_load(struct hoard_fs *fs, const struct hoard_id *id,
		   struct chunk_rec *ret)
{
	uint8_t v[CHUNK_REC_V2_SIZE];
	size_t n;
	int r = hoard_store_get_into(fs->st, HOARD_CF_CHUNKS, id->b,
				     HOARD_ID_SIZE, v, sizeof(v), &n);

	if (r < 0)
		return r == -ENOBUFS ? -EBADMSG : r;
	return chunk_rec_decode(v, n, ret);
}

/* ---- reading ------------------------------------------------------------ */

static void log_corrupt(const struct hoard_id *id, const char *why)
{
	char hex[HOARD_ID_HEX_SIZE];

	hoard_id_hex(id, hex);
	hoard_log(LOG_ERR, "chunk %s is corrupt: %s", hex, why);
}

struct decode_to {
	uint8_t *data;
	uint32_t raw_size;
};

/* The frame, pinned in RocksDB, decoded straight into the new buffer. */
static int decode_pinned(void *ud, const void *frame, size_t flen)
{
	struct decode_to *d = ud;

	return hoard_codec_decode(frame, flen, d->data, d->raw_size,
				  d->raw_size) < 0
		       ? -EILSEQ
		       : 0;
}

/* Read, decode and verify a whole chunk into a new buffer. */
static int chunk_load(struct hoard_fs *fs, const struct hoard_id *id,
		      uint32_t raw_size, uint8_t **ret_data, bool quiet)
{
	struct decode_to d = {.raw_size = raw_size};
	struct hoard_id got;
	uint8_t *data;
	int r;

	data = d.data = malloc(raw_size ? raw_size : 1);
	if (!data)
		return -ENOMEM;
	r = hoard_store_get_pinned(fs->st, HOARD_CF_CHUNKDATA, id->b,
				   HOARD_ID_SIZE, decode_pinned, &d);
	if (r == -EILSEQ) {
		if (!quiet)
			log_corrupt(id, "its frame does not decode");
		free(data);
		return -EBADMSG;
	}
	if (r < 0) {
		free(data);
		if (!quiet)
			log_corrupt(id, r == -ENOENT
						? "its data is missing"
						: "its data cannot be read");
		if (r == -ENOENT)
			return quiet ? -ENODATA : -EBADMSG;
		return r;
	}
	hoard_id_compute(hoard_store_key(fs->st), data, raw_size, &got);
	if (!hoard_id_equal(&got, id)) {
		if (!quiet)
			log_corrupt(id, "its bytes do not match its id");
		free(data);
		return -EBADMSG;
	}
	*ret_data = data;
	return 0;
}

/*
 * chunk_load without a copy when the frame is stored raw (fp16 weights,
 * zip files): the chunk's bytes are the frame's own, kept pinned in
 * RocksDB (*ret_frame) after they are verified.  Other frames, and every
 * failure, take chunk_load.
 */
static int chunk_load_ref(struct hoard_fs *fs, const struct hoard_id *id,
			  uint32_t raw_size, uint8_t **ret_data,
			  struct hoard_pinned **ret_frame, bool quiet)
{
	struct hoard_pinned *pin;
	struct hoard_id got;
	const uint8_t *v;
	size_t n;

	*ret_frame = NULL;
	if (hoard_store_pin(fs->st, HOARD_CF_CHUNKDATA, id->b, HOARD_ID_SIZE,
			    &pin, (const void **)&v, &n) < 0)
		return chunk_load(fs, id, raw_size, ret_data, quiet);
	if (n < 1 || v[0] != HOARD_CODEC_RAW || n - 1 != raw_size) {
		hoard_store_unpin(pin);
		return chunk_load(fs, id, raw_size, ret_data, quiet);
	}
	hoard_id_compute(hoard_store_key(fs->st), v + 1, raw_size, &got);
	if (!hoard_id_equal(&got, id)) {
		if (!quiet)
			log_corrupt(id, "its bytes do not match its id");
		hoard_store_unpin(pin);
		return -EBADMSG;
	}
	*ret_data = (uint8_t *)(v + 1);
	*ret_frame = pin;
	return 0;
}

static __thread bool fetched_here;

bool chunks_fetched_here(void)
{
	bool f = fetched_here;

	fetched_here = false;
	return f;
}

/*
 * A chunk whose frame is not in chunkdata: when its record says it is not
 * local (flag bit 0 clear) and where it lives remotely, and a remote is
 * configured, fetch it (fs/remote/lazy.c verifies and stores it).  -ENOENT: not a
 * lazy chunk (the caller reports the frame missing).
 */
static int chunk_fetch(struct hoard_fs *fs, const struct hoard_id *id,
		       uint32_t raw_size, uint8_t **ret_data)
{
	struct chunk_rec rec;
	int r;

	if (!fs->fetch)
		return -ENOENT;
	r = chunk_rec_load(fs, id, &rec);
	if (r == 0 && (rec.flags & 1) && rec.has_loc) /* fetched meanwhile */
		return chunk_load(fs, id, raw_size, ret_data, false);
	if (r < 0 || (rec.flags & 1) || !rec.has_loc)
		return -ENOENT;
	if (rec.raw_size != raw_size)
		return -EBADMSG;
	r = fs->fetch(fs->fetch_ud, id, &rec, ret_data);
	if (r == 0)
		fetched_here = true;
	return r;
}

/* A chunk's verified bytes, from the store (maybe in a pinned frame) or
 * the remote. */
static int chunk_get(struct hoard_fs *fs, const struct hoard_id *id,
		     uint32_t raw_size, uint8_t **ret_data,
		     struct hoard_pinned **ret_frame)
{
	int r = chunk_load_ref(fs, id, raw_size, ret_data, ret_frame,
			       fs->fetch != NULL);

	if (r == -ENODATA) {
		r = chunk_fetch(fs, id, raw_size, ret_data);
		if (r == -ENOENT) {
			log_corrupt(id, "its data is missing");
			r = -EBADMSG;
		}
	} else if (r < 0 && fs->fetch) {
		/* quiet above: report it now */
		log_corrupt(id, "its data cannot be read or is corrupt");
	}
	return r;
}

int chunks_pin(struct hoard_fs *fs, const struct hoard_id *id,
	       uint32_t raw_size, struct hoard_pin **ret_pin,
	       const uint8_t **ret_data)
{
	struct cloading ld;
	struct centry *e = cache_get(fs->cache, id, raw_size, &ld);
	struct hoard_pinned *frame;
	uint8_t *data;
	int r;

	if (!e) {
		r = chunk_get(fs, id, raw_size, &data, &frame);
		if (r == 0)
			e = cache_insert(fs->cache, id, data, frame, raw_size,
					 true);
		cache_loaded(fs->cache, &ld);
		if (r < 0)
			return r;
		if (!e)
			return -ENOMEM;
	}
	*ret_pin = (struct hoard_pin *)e;
	*ret_data = e->data;
	return 0;
}

void chunks_unpin(struct hoard_fs *fs, struct hoard_pin *pin)
{
	struct chunk_cache *c = fs->cache;

	if (!pin)
		return;
	pthread_mutex_lock(&c->mu);
	centry_put_locked((struct centry *)pin);
	pthread_mutex_unlock(&c->mu);
}

int chunks_copy(struct hoard_fs *fs, const struct hoard_id *id,
		uint32_t raw_size, uint32_t off, void *dst, size_t n)
{
	struct hoard_pin *pin;
	const uint8_t *data;
	int r;

	if ((size_t)off + n > raw_size)
		return -EBADMSG;
	r = chunks_pin(fs, id, raw_size, &pin, &data);
	if (r < 0)
		return r;
	memcpy(dst, data + off, n);
	chunks_unpin(fs, pin);
	return 0;
}

int chunks_load_local(struct hoard_fs *fs, const struct hoard_id *id,
		      uint32_t raw_size, uint8_t **ret_data)
{
	return chunk_load(fs, id, raw_size, ret_data, false);
}

/* Put a fetched, verified chunk into the decompressed cache (a copy). */
void chunks_cache_put(struct hoard_fs *fs, const struct hoard_id *id,
		      const uint8_t *data, uint32_t len)
{
	uint8_t *d = malloc(len ? len : 1);

	if (!d)
		return;
	memcpy(d, data, len);
	cache_insert(fs->cache, id, d, NULL, len, false);
}

/* ---- writing ------------------------------------------------------------ */

/*
 * Confirm that the stored chunk `id` holds exactly raw[0..len).
 * 0: it does.  -EBADMSG: the stored copy is damaged (the caller rewrites
 * it with our good bytes).  -EIO: a different chunk with the same id, a
 * hash collision; refusing to share it is the only safe answer.
 */
static int confirm(struct hoard_fs *fs, const struct hoard_id *id,
		   const void *raw, size_t len)
{
	struct centry *e = cache_get(fs->cache, id, (uint32_t)len, NULL);
	char hex[HOARD_ID_HEX_SIZE];
	struct hoard_pinned *pin;
	const uint8_t *v;
	uint8_t *data;
	size_t n;
	int r;

	if (e) { /* compared in place: the reference keeps it */
		r = memcmp(e->data, raw, len) ? -EIO : 0;
		chunks_unpin(fs, (struct hoard_pin *)e);
		goto out_check;
	}
	/*
	 * A raw frame (fp16 weights, zip files: most repeats) is compared
	 * where RocksDB holds it: no copy, and no re-hash, since equal bytes
	 * have the id the caller just computed from raw.  Anything else (a
	 * compressed frame, a difference, a read error) takes chunk_load,
	 * which tells a damaged copy (-EBADMSG) from a collision (-EIO).
	 */
	if (hoard_store_pin(fs->st, HOARD_CF_CHUNKDATA, id->b, HOARD_ID_SIZE,
			    &pin, (const void **)&v, &n) == 0) {
		bool same = n == len + 1 && v[0] == HOARD_CODEC_RAW &&
			    memcmp(v + 1, raw, len) == 0;

		hoard_store_unpin(pin);
		if (same)
			return 0;
	}
	r = chunk_load(fs, id, (uint32_t)len, &data, true);
	if (r < 0)
		return r == -ENOMEM ? r : -EBADMSG;
	r = memcmp(data, raw, len) ? -EIO : 0;
	if (r == 0)
		cache_insert(fs->cache, id, data, NULL, (uint32_t)len, false);
	else
		free(data);
out_check:
	if (r == -EIO) {
		hoard_id_hex(id, hex);
		hoard_log(LOG_ERR,
			  "chunk id collision on %s: refusing to share it",
			  hex);
	}
	return r;
}

static int put_frame(struct hoard_fs *fs, const struct hoard_id *id,
		     const void *raw, size_t len, bool wal, uint32_t *ret_flen)
{
	size_t cap = hoard_codec_bound(len);
	uint8_t *frame = malloc(cap);
	ssize_t n;
	int r;

	if (!frame)
		return -ENOMEM;
	n = hoard_codec_encode(raw, len, frame, cap, fs->level);
	if (n < 0) {
		free(frame);
		return (int)n;
	}
	if (wal)
		r = hoard_store_put(fs->st, HOARD_CF_CHUNKDATA, id->b,
				    HOARD_ID_SIZE, frame, (size_t)n);
	else
		r = hoard_store_put_nowal(fs->st, HOARD_CF_CHUNKDATA, id->b,
					  HOARD_ID_SIZE, frame, (size_t)n);
	free(frame);
	if (r == 0)
		*ret_flen = (uint32_t)n;
	return r;
}

static void inflight_drop(struct hoard_fs *fs, const struct hoard_id *id)
{
	struct idmap_ent *e = idmap_get(&fs->inflight, id);

	if (e && --e->count <= 0)
		idmap_del(&fs->inflight, id);
}

/*
 * The chunk record a stage read is kept in its in-flight entry, so that
 * the commit that lands the chunk (apply_one, the same commit or another
 * one relying on the same entry) does not read it again: it is used only
 * while the store's count of writes of chunk records
 * (hoard_store_chunk_writes, counted by the store itself for every write
 * that touches the family, whatever module made it) is what it was before
 * the read.  Every writer of chunk records holds fs->lock for its
 * read-modify-write (refcounts could not be exact otherwise), and both
 * the read here and the use in apply_one are under fs->lock, so an
 * unchanged count means no record changed in between.  Records with a
 * remote location are not kept (read again).
 */
enum { REC_UNKNOWN, REC_NONE, REC_LOCAL };

static void rec_keep(struct idmap_ent *e, int r, const struct chunk_rec *rec,
		     uint64_t gen)
{
	e->rec = REC_UNKNOWN;
	e->rec_gen = gen;
	if (r == -ENOENT) {
		e->rec = REC_NONE;
	} else if (r == 0 && !rec->has_loc) {
		e->rec = REC_LOCAL;
		e->rec_flags = rec->flags;
		e->rec_raw = rec->raw_size;
		e->rec_frame = rec->frame_size;
		e->rec_refcount = rec->refcount;
	}
}

/* id's record: the one its in-flight entry kept, when still the stored
 * one, else read (fs->lock held). */
static int rec_load_staged(struct hoard_fs *fs, const struct hoard_id *id,
			   struct chunk_rec *ret)
{
	const struct idmap_ent *e = idmap_get(&fs->inflight, id);

	if (!e || e->rec == REC_UNKNOWN ||
	    e->rec_gen != hoard_store_chunk_writes(fs->st))
		return chunk_rec_load(fs, id, ret);
	if (e->rec == REC_NONE)
		return -ENOENT;
	memset(ret, 0, sizeof(*ret));
	ret->flags = e->rec_flags;
	ret->raw_size = e->rec_raw;
	ret->frame_size = e->rec_frame;
	ret->refcount = e->rec_refcount;
	return 0;
}

/*
 * Count id in flight and say whether its frame is already stored (1) or
 * must be written by the caller (0: the entry is marked `writing`, and
 * other stagers of the same id wait for frame_done()).  fs->lock held.
 */
static int inflight_enter(struct hoard_fs *fs, const struct hoard_id *id,
			  uint32_t raw, uint32_t *ret_flen, bool *ret_unflushed)
{
	struct idmap_ent *e;
	struct chunk_rec rec;
	uint64_t gen;
	int r;

	while ((e = idmap_get(&fs->inflight, id)) && e->writing)
		pthread_cond_wait(&fs->frame_cv, &fs->lock);
	if (e) {
		e->count++;
		*ret_flen = e->frame_size;
		if (e->unflushed)
			*ret_unflushed = true;
		return 1;
	}
	gen = hoard_store_chunk_writes(fs->st); /* before the read */
	r = chunk_rec_load(fs, id, &rec);
	if (r < 0 && r != -ENOENT)
		return r;
	e = idmap_add(&fs->inflight, id);
	if (!e)
		return -ENOMEM;
	e->count = 1;
	e->raw_size = raw;
	rec_keep(e, r, &rec, gen);
	if (r == 0 && (rec.flags & 1)) {
		e->frame_size = *ret_flen = rec.frame_size;
		return 1;
	}
	e->writing = true;
	return 0;
}

/* The frame of id was written (r == 0, flen) or not (r < 0). */
static void frame_done(struct hoard_fs *fs, const struct hoard_id *id, int r,
		       uint32_t flen, bool unflushed)
{
	struct idmap_ent *e;

	pthread_mutex_lock(&fs->lock);
	e = idmap_get(&fs->inflight, id);
	e->writing = false;
	e->unflushed = unflushed;
	e->frame_size = flen;
	if (r < 0)
		inflight_drop(fs, id);
	pthread_cond_broadcast(&fs->frame_cv);
	pthread_mutex_unlock(&fs->lock);
}

/*
 * A new chunk of at most this many bytes goes into the decompressed cache
 * when its frame was written.  The chunker cuts nothing shorter than
 * HOARD_CHUNK_MIN but a file's last piece, so these are small files and
 * files' tails: a burst of small files (a package unpacked, the create
 * benchmark) is often written again soon, and its dedup confirm is then a
 * memcmp() with the cache instead of a read of the frame.  The bytes are
 * verified: raw's id was computed from them just now (emit_chunk), and
 * they are the bytes the frame was written from.  Large files' chunks stay
 * out (a copy per chunk of an ingest, and they would push out what is
 * being read).
 */
#define CACHE_WRITTEN_MAX HOARD_CHUNK_MIN

static int stage(struct hoard_fs *fs, const struct hoard_id *id,
		 const void *raw, size_t len, bool wal,
		 uint32_t *ret_frame_size, bool *ret_unflushed)
{
	uint32_t flen = 0;
	int have, r;

	pthread_mutex_lock(&fs->lock);
	have = inflight_enter(fs, id, (uint32_t)len, &flen, ret_unflushed);
	pthread_mutex_unlock(&fs->lock);
	if (have < 0)
		return have;
	if (!have) {
		/* A new chunk; written outside the lock, others wait. */
		r = put_frame(fs, id, raw, len, wal, &flen);
		if (r == 0 && len < CACHE_WRITTEN_MAX)
			chunks_cache_put(fs, id, raw, (uint32_t)len);
		frame_done(fs, id, r, flen, r == 0 && !wal);
		if (r == 0) {
			*ret_frame_size = flen;
			if (!wal)
				*ret_unflushed = true;
		}
		return r;
	}
	r = confirm(fs, id, raw, len);
	if (r == -EBADMSG) {
		/* The stored copy is damaged: our bytes carry the same id and
		 * were just hashed, so rewriting the frame repairs it. */
		char hex[HOARD_ID_HEX_SIZE];

		r = put_frame(fs, id, raw, len, true, &flen);
		hoard_id_hex(id, hex);
		hoard_log(r ? LOG_ERR : LOG_WARNING, "chunk %s %s", hex,
			  r ? "could not be repaired" : "rewritten (repaired)");
		if (r == 0) {
			pthread_mutex_lock(&fs->lock);
			idmap_get(&fs->inflight, id)->frame_size = flen;
			pthread_mutex_unlock(&fs->lock);
		}
	}
	if (r < 0) {
		pthread_mutex_lock(&fs->lock);
		inflight_drop(fs, id);
		pthread_mutex_unlock(&fs->lock);
		return r;
	}
	*ret_frame_size = flen;
	return 0;
}

/* A flush that began after id's frame was written has made it durable.
 * fs->lock held. */
static void flushed_locked(struct hoard_fs *fs, const struct hoard_id *id)
{
	struct idmap_ent *e = idmap_get(&fs->inflight, id);

	if (e && !e->writing)
		e->unflushed = false;
}

int chunks_stage(struct hoard_fs *fs, const struct hoard_id *id,
		 const void *raw, size_t len, uint32_t *ret_frame_size)
{
	bool unflushed = false;
	int r = stage(fs, id, raw, len, true, ret_frame_size, &unflushed);

	/* relying on another writer's unflushed frame: make it durable */
	if (r == 0 && unflushed) {
		r = hoard_store_flush(fs->st, HOARD_CF_CHUNKDATA);
		pthread_mutex_lock(&fs->lock);
		if (r == 0)
			flushed_locked(fs, id);
		else
			inflight_drop(fs, id);
		pthread_mutex_unlock(&fs->lock);
	}
	return r;
}

int chunks_stage_bulk(struct hoard_fs *fs, const struct hoard_id *id,
		      const void *raw, size_t len, uint32_t *ret_frame_size,
		      bool *ret_unflushed)
{
	return stage(fs, id, raw, len, false, ret_frame_size, ret_unflushed);
}

int chunks_make_durable(struct hoard_fs *fs, struct idmap *staged)
{
	const struct idmap_ent *e;
	int r = hoard_store_flush(fs->st, HOARD_CF_CHUNKDATA);

	if (r < 0)
		return r;
	/* every frame of these ids was written before the flush began */
	pthread_mutex_lock(&fs->lock);
	for (e = NULL; (e = idmap_next(staged, e));)
		flushed_locked(fs, &e->id);
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

void chunks_unstage_locked(struct hoard_fs *fs, struct idmap *m)
{
	const struct idmap_ent *e;

	for (e = NULL; (e = idmap_next(m, e));) {
		/* one stage per occurrence was counted */
		for (int64_t k = 0; k < e->count; k++)
			inflight_drop(fs, &e->id);
	}
}

void chunks_unstage_failed_locked(struct hoard_fs *fs, struct idmap *m)
{
	const struct idmap_ent *s;
	struct hoard_batch *b = NULL;
	uint64_t bytes = 0;
	size_t n = 0;
	int r;

	chunks_unstage_locked(fs, m);
	for (s = NULL; (s = idmap_next(m, s));) {
		struct chunk_rec rec;

		if (s->count <= 0)
			continue;
		/* Another commit under way relies on the frame (or is
		 * writing it): it stays.  A stager that comes after this
		 * finds neither an entry nor a record, so it writes the
		 * frame again, after the delete (both under fs->lock). */
		if (idmap_get(&fs->inflight, &s->id))
			continue;
		/* A record (a landed commit, or a lazy chunk) keeps it. */
		if (chunk_rec_load(fs, &s->id, &rec) != -ENOENT)
			continue;
		if (!b)
			b = hoard_batch_new(fs->st);
		if (!b)
			return; /* the unmount's sweep takes them */
		hoard_batch_delete(b, HOARD_CF_CHUNKDATA, s->id.b,
				   HOARD_ID_SIZE);
		bytes += s->frame_size;
		n++;
	}
	if (!b)
		return;
	r = hoard_store_write(fs->st, b, false);
	hoard_batch_free(b);
	if (r < 0) {
		hoard_log(LOG_WARNING,
			  "could not delete %zu frames of a commit that did "
			  "not land: %s (the unmount's sweep deletes them)",
			  n, strerror(-r));
		return;
	}
	fs->garbage_bytes += bytes;
	hoard_log(
		LOG_DEBUG,
		"deleted %zu frames (%llu bytes) of a commit that did not land",
		n, (unsigned long long)bytes);
}

/*
 * The digest row of a chunk being freed goes in the same batch (FORMAT
 * 2.1), unless a trusted pull is writing rows (hoard_core_digests_hold).
 * Whether the store has any is looked up once (most have none: no
 * tombstone per freed chunk then).  fs->lock held.
 */
static void digest_drop_locked(struct hoard_fs *fs, struct hoard_batch *b,
			       const struct hoard_id *id)
{
	uint8_t k[SHA_ROW_KEY_LEN];

	if (!fs->digests) {
		struct hoard_iter *it = hoard_iter_new(fs->st, HOARD_CF_DEFAULT,
						       SHA_ROW_PREFIX,
						       SHA_ROW_PREFIX_LEN);
		bool none = it && !hoard_iter_valid(it) &&
			    !hoard_iter_status(it);

		fs->digests = none ? 1 : 2; /* an error: assume some */
		hoard_iter_free(it);
	}
	if (fs->digests == 1 || fs->digest_holds)
		return;
	sha_row_key(k, id);
	hoard_batch_delete(b, HOARD_CF_DEFAULT, k, sizeof(k));
}

static int apply_one(struct hoard_fs *fs, struct hoard_batch *b,
		     const struct idmap_ent *d)
{
	struct chunk_rec rec;
	uint8_t v[CHUNK_REC_V2_SIZE];
	size_t vl;
	int r = rec_load_staged(fs, &d->id, &rec);

	if (r == -ENOENT) {
		if (d->count < 0) {
			char hex[HOARD_ID_HEX_SIZE];

			hoard_id_hex(&d->id, hex);
			hoard_log(LOG_ERR,
				  "chunk %s: dropping a reference "
				  "to a chunk with no record",
				  hex);
			return 0;
		}
		memset(&rec, 0, sizeof(rec));
		rec.flags = 1;
		rec.raw_size = d->raw_size;
		rec.frame_size = d->frame_size;
	} else if (r < 0) {
		return r;
	}
	if (d->count < 0 && (uint64_t)-d->count >= rec.refcount) {
		hoard_batch_delete(b, HOARD_CF_CHUNKS, d->id.b, HOARD_ID_SIZE);
		digest_drop_locked(fs, b, &d->id);
		/* A commit under way may still rely on the frame. */
		if (!idmap_get(&fs->inflight, &d->id)) {
			hoard_batch_delete(b, HOARD_CF_CHUNKDATA, d->id.b,
					   HOARD_ID_SIZE);
			if (rec.flags & 1)
				fs->garbage_bytes += rec.frame_size;
		}
		return 0;
	}
	rec.refcount += (uint64_t)d->count;
	if (!(rec.flags & 1) && d->count > 0 && d->frame_size &&
	    hoard_store_exists(fs->st, HOARD_CF_CHUNKDATA, d->id.b,
			       HOARD_ID_SIZE) == 1) {
		/* a lazy chunk that a writer of the same bytes staged */
		rec.flags |= 1;
		rec.frame_size = d->frame_size;
	}
	vl = chunk_rec_encode(&rec, v);
	hoard_batch_put(b, HOARD_CF_CHUNKS, d->id.b, HOARD_ID_SIZE, v, vl);
	return 0;
}

int chunks_apply_locked(struct hoard_fs *fs, struct hoard_batch *b,
			struct idmap *m)
{
	struct idmap_ent *e;
	int r;

	for (e = NULL; (e = idmap_next(m, e));) {
		if (e->count == 0)
			continue;
		r = apply_one(fs, b, e);
		if (r < 0)
			return r;
	}
	return 0;
}
