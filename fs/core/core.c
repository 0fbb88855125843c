/* SPDX-License-Identifier: MIT */
/*
 * core: the named operations of core.h, over the core's internals.  The
 * code moved here from the layers above (evict.c, lazy.c, sync.c) when
 * they stopped including fs-internal.h; each function says where.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs-internal.h"
#include "hoard/util.h"

/* ---- readers ------------------------------------------------------------ */

/* From lazy.c (pf_collect). */
int hoard_core_file_chunk_ids(struct hoard_store *st, uint64_t ino,
			      struct hoard_id **ret_ids, size_t *ret_n)
{
	struct idmap seen;
	struct hoard_iter *it;
	struct hoard_id *out = NULL;
	size_t cap = 0, n = 0;
	uint8_t k[8];
	int r = 0;

	if (idmap_init(&seen, 256) < 0)
		return -ENOMEM;
	ino_key(k, ino);
	it = hoard_iter_new(st, HOARD_CF_EXTENTS, k, 8);
	for (; it && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t vl;
		const uint8_t *v = hoard_iter_value(it, &vl);
		struct hoard_id id;
		struct hoard_id *ids;

		uint32_t len;

		r = extent_val_decode(v, vl, &id, &len);
		if (r < 0)
			break;
		if (idmap_get(&seen, &id))
			continue;
		if (!idmap_add(&seen, &id)) {
			r = -ENOMEM;
			break;
		}
		ids = hoard_grow(out, &cap, n + 1, sizeof(*out), 64);
		if (!ids) {
			r = -ENOMEM;
			break;
		}
		out = ids;
		out[n++] = id;
	}
	if (!it)
		r = -ENOMEM;
	else if (r == 0)
		r = hoard_iter_status(it);
	hoard_iter_free(it);
	idmap_free(&seen);
	if (r < 0) {
		free(out);
		return r;
	}
	*ret_ids = out;
	*ret_n = n;
	return 0;
}

/* A chunk record's frame size and refcount (from evict.c). */
static int chunk_fields(const uint8_t *v, size_t n, uint32_t *ret_frame,
			uint64_t *ret_refs)
{
	struct chunk_rec rec;
	int r = chunk_rec_decode(v, n, &rec);

	if (r < 0)
		return r;
	*ret_frame = rec.frame_size;
	*ret_refs = rec.refcount;
	return 0;
}

/* From evict.c (hoard_budget_pinned_bytes). */
int hoard_core_files_frame_bytes(struct hoard_store *st, const uint64_t *inos,
				 size_t n_inos, uint64_t *ret)
{
	struct idmap ids;
	uint64_t sum = 0, refs;
	uint32_t frame;
	size_t kl, vl;
	int r = 0;

	if (idmap_init(&ids, 64) < 0)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < n_inos; i++) {
		uint8_t k[8];
		struct hoard_iter *it;

		ino_key(k, inos[i]);
		it = hoard_iter_new(st, HOARD_CF_EXTENTS, k, 8);
		if (!it) {
			r = -ENOMEM;
			break;
		}
		for (; r == 0 && hoard_iter_valid(it); hoard_iter_next(it)) {
			const uint8_t *v = hoard_iter_value(it, &vl);
			struct hoard_id id;
			uint8_t cv[CHUNK_REC_V2_SIZE];
			struct idmap_ent *e;

			uint32_t len;

			if (extent_val_decode(v, vl, &id, &len) < 0)
				continue;
			if (idmap_get(&ids, &id))
				continue;
			e = idmap_add(&ids, &id);
			if (!e) {
				r = -ENOMEM;
				break;
			}
			if (hoard_store_get_into(st, HOARD_CF_CHUNKS, id.b,
						 HOARD_ID_SIZE, cv, sizeof(cv),
						 &kl) == 0 &&
			    chunk_fields(cv, kl, &frame, &refs) == 0)
				sum += frame;
		}
		hoard_iter_free(it);
	}
	idmap_free(&ids);
	if (r == 0)
		*ret = sum;
	return r;
}

/* ---- a consistent view ---------------------------------------------------- */

int hoard_core_read_locked(struct hoard_fs *fs,
			   int (*fn)(struct hoard_fs *fs, void *ud), void *ud)
{
	int r;

	pthread_mutex_lock(&fs->lock);
	/* a snapshot of the store: with every create made so far (pend.c) */
	r = pend_land_locked(fs, false);
	if (r == 0)
		r = fn(fs, ud);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

/* ---- the remote ------------------------------------------------------------- */

/* From lazy.c (hoard_lazy_open, hoard_lazy_free). */
void hoard_core_remote_attach(struct hoard_fs *fs,
			      const struct hoard_core_remote *h, void *ud)
{
	pthread_mutex_lock(&fs->lock);
	fs->fetch_ud = ud;
	fs->ahead = h->ahead;
	fs->locate = h->locate;
	fs->locate_refresh = h->locate_refresh;
	fs->fetch = h->fetch;
	pthread_mutex_unlock(&fs->lock);
}

void hoard_core_remote_detach(struct hoard_fs *fs, void *ud)
{
	if (fs->fetch_ud != ud)
		return;
	pthread_mutex_lock(&fs->lock);
	fs->fetch = NULL;
	fs->ahead = NULL;
	fs->locate = NULL;
	fs->locate_refresh = NULL;
	fs->fetch_ud = NULL;
	pthread_mutex_unlock(&fs->lock);
}

/* From evict.c (hoard_evict_pass). */
void hoard_core_remote_refresh(struct hoard_fs *fs)
{
	if (fs->locate_refresh) /* what the remote holds (rate-limited) */
		fs->locate_refresh(fs->fetch_ud);
}

/* From lazy.c (store_fetched). */
int hoard_core_chunk_fetched(struct hoard_fs *fs, const struct hoard_id *id,
			     const uint8_t *frame, uint32_t flen)
{
	uint8_t v[CHUNK_REC_V2_SIZE];
	struct hoard_batch *b;
	struct chunk_rec rec;
	size_t vl;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = chunk_rec_load(fs, id, &rec);
	if (r < 0 || (rec.flags & 1) || rec.refcount == 0) {
		pthread_mutex_unlock(&fs->lock);
		return r == -ENOENT ? 0 : r < 0 ? r : 0;
	}
	b = hoard_batch_new(fs->st);
	if (!b) {
		pthread_mutex_unlock(&fs->lock);
		return -ENOMEM;
	}
	rec.flags |= 1;
	rec.frame_size = flen;
	vl = chunk_rec_encode(&rec, v);
	hoard_batch_put(b, HOARD_CF_CHUNKDATA, id->b, HOARD_ID_SIZE, frame,
			flen);
	hoard_batch_put(b, HOARD_CF_CHUNKS, id->b, HOARD_ID_SIZE, v, vl);
	r = hoard_store_write(fs->st, b, false);
	hoard_batch_free(b);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

/* From lazy.c (relocate). */
int hoard_core_chunk_relocate(struct hoard_fs *fs, const struct hoard_id *id,
			      const struct chunk_rec *moved)
{
	uint8_t v[CHUNK_REC_V2_SIZE];
	struct chunk_rec rec;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = chunk_rec_load(fs, id, &rec);
	if (r == 0 && !(rec.flags & 1) && rec.refcount > 0) {
		rec.has_loc = true;
		memcpy(rec.pack, moved->pack, 32);
		rec.pack_off = moved->pack_off;
		rec.frame_size = moved->frame_size;
		r = hoard_store_put(fs->st, HOARD_CF_CHUNKS, id->b,
				    HOARD_ID_SIZE, v,
				    chunk_rec_encode(&rec, v));
	}
	pthread_mutex_unlock(&fs->lock);
	return r == -ENOENT ? 0 : r;
}

/* From syncpull.c. */
void hoard_core_digests_hold(struct hoard_fs *fs, bool hold)
{
	pthread_mutex_lock(&fs->lock);
	if (hold) {
		fs->digest_holds++;
		fs->digests = 2;
	} else if (fs->digest_holds) {
		fs->digest_holds--;
	}
	pthread_mutex_unlock(&fs->lock);
}

/* ---- eviction (from evict.c) ----------------------------------------------- */

/* Count in m (initialized) the references of ino's extents to each chunk. */
static void file_chunk_counts(struct hoard_fs *fs, uint64_t ino,
			      struct idmap *m)
{
	struct hoard_iter *it;
	uint8_t k[8];
	size_t vl;

	ino_key(k, ino);
	it = hoard_iter_new(fs->st, HOARD_CF_EXTENTS, k, 8);
	for (; it && hoard_iter_valid(it); hoard_iter_next(it)) {
		const uint8_t *v = hoard_iter_value(it, &vl);
		struct hoard_id id;
		struct idmap_ent *e;

		uint32_t len;

		if (extent_val_decode(v, vl, &id, &len) < 0)
			continue;
		e = idmap_add(m, &id);
		if (e)
			e->count++;
	}
	hoard_iter_free(it);
}

/* Bytes that unlinking every name of ino frees: the frames of its chunks
 * whose every reference is in ino (fs->lock held). */
static uint64_t file_frees_locked(struct hoard_fs *fs, uint64_t ino)
{
	struct idmap m;
	struct idmap_ent *e;
	struct chunk_rec rec;
	uint64_t freed = 0;

	if (idmap_init(&m, 64) < 0)
		return 0;
	file_chunk_counts(fs, ino, &m);
	for (e = NULL; (e = idmap_next(&m, e));) {
		if (chunk_rec_load(fs, &e->id, &rec) < 0)
			continue;
		if (rec.refcount <= (uint64_t)e->count)
			freed += rec.frame_size;
	}
	idmap_free(&m);
	return freed;
}

/*
 * With a remote (fs->locate): drop the local frames of ino's chunks that
 * only ino uses and that the remote holds (in a pack of its index), so the
 * file stays and reads back by lazy fetch (docs/FORMAT.md 2.5).  Chunks not
 * in the remote, shared with other files or relied on by a commit under
 * way keep their frames.  Returns the bytes freed (fs->lock held).
 */
static uint64_t drop_local_locked(struct hoard_fs *fs, uint64_t ino)
{
	struct hoard_batch *b = hoard_batch_new(fs->st);
	struct idmap m;
	struct idmap_ent *e;
	uint64_t freed = 0, n = 0;

	plain_drop(fs, ino); /* frees its copy too (FORMAT 7.2) */
	if (!b)
		return 0;
	if (idmap_init(&m, 64) < 0) {
		hoard_batch_free(b);
		return 0;
	}
	file_chunk_counts(fs, ino, &m);
	for (e = NULL; (e = idmap_next(&m, e));) {
		const struct hoard_id *id = &e->id;
		struct chunk_rec rec;
		uint8_t v[CHUNK_REC_V2_SIZE];
		uint32_t local;

		if (chunk_rec_load(fs, id, &rec) < 0 || !(rec.flags & 1) ||
		    rec.refcount > (uint64_t)e->count ||
		    idmap_get(&fs->inflight, id))
			continue;
		local = rec.frame_size;
		if (!rec.has_loc && fs->locate(fs->fetch_ud, id, &rec) < 0)
			continue; /* not in the remote: it stays */
		rec.flags &= (uint8_t)~1u;
		hoard_batch_delete(b, HOARD_CF_CHUNKDATA, id->b, HOARD_ID_SIZE);
		hoard_batch_put(b, HOARD_CF_CHUNKS, id->b, HOARD_ID_SIZE, v,
				chunk_rec_encode(&rec, v));
		freed += local;
		fs->garbage_bytes += local;
		n++;
	}
	idmap_free(&m);
	if (n && hoard_store_write(fs->st, b, false) < 0)
		freed = 0;
	hoard_batch_free(b);
	return freed;
}

/* Uncommitted data (fs->lock held; lock order allows is->mu inside). */
static bool istate_busy(struct istate *is)
{
	bool busy;

	pthread_mutex_lock(&is->mu);
	busy = is->dirty || is->staging_fd >= 0 || is->mem || is->stream;
	pthread_mutex_unlock(&is->mu);
	return busy;
}

/* Pinned since the scan (the file itself; a directory pinned in the last
 * moments before its files go is not seen until the next pass). */
static bool pinned_now(struct hoard_fs *fs, uint64_t ino, const char *pin)
{
	const size_t pl = strlen(pin);
	uint8_t k[8 + 32];

	if (pl > 32)
		return false;
	return hoard_store_exists(fs->st, HOARD_CF_XATTRS, k,
				  xattr_key(k, ino, pin)) != 0;
}

/* The name still names ino. */
static bool name_is(struct hoard_fs *fs, const struct hoard_core_name *fn)
{
	uint8_t k[DIRENT_KEY_MAX], v[DIRENT_VAL_MAX], type;
	size_t len = strlen(fn->name), n;
	uint64_t child;

	if (len > NAME_MAX_LEN)
		return false;
	if (hoard_store_get_into(fs->st, HOARD_CF_DIRENTS, k,
				 dirent_key(k, fn->parent, fn->name), v,
				 sizeof(v), &n) < 0 ||
	    dirent_decode(v, n, &child, &type) < 0)
		return false;
	return child == fn->ino;
}

/* From evict.c (evict_one, its part under fs->lock). */
uint64_t hoard_core_evict_file(struct hoard_fs *fs, uint64_t ino,
			       const struct hoard_core_name *names,
			       size_t count, const char *pin_xattr,
			       bool *removed, bool *ret_done)
{
	struct hoard_inode in;
	struct istate *is;
	uint64_t freed = 0;

	*ret_done = false;
	pthread_mutex_lock(&fs->lock);
	is = istate_find(fs, ino);
	if (is && (is->opens || istate_busy(is)))
		goto out_unlock;
	if (inode_load(fs, ino, &in) < 0)
		goto out_unlock;
	if (!S_ISREG(in.mode) || in.nlink != count || in.nlink > 64) {
		inode_clear(&in); /* linked or unlinked since the scan */
		goto out_unlock;
	}
	inode_clear(&in);
	if (pinned_now(fs, ino, pin_xattr))
		goto out_unlock;
	for (size_t i = 0; i < count; i++) {
		if (!name_is(fs, &names[i]))
			goto out_unlock;
	}
	if (fs->locate) {
		/* a remote: the file stays, its local bytes go */
		freed = drop_local_locked(fs, ino);
		pthread_mutex_unlock(&fs->lock);
		*ret_done = freed > 0;
		return freed;
	}
	freed = file_frees_locked(fs, ino);
	for (size_t i = 0; i < count; i++) {
		const struct hoard_core_name *fn = &names[i];

		removed[i] = fs_unlink_locked(fs, fn->parent, fn->name) == 0;
		if (!removed[i])
			hoard_log(LOG_WARNING,
				  "evict: cannot unlink %s in directory %llu",
				  fn->name, (unsigned long long)fn->parent);
		else
			*ret_done = true;
	}
out_unlock:
	pthread_mutex_unlock(&fs->lock);
	return *ret_done ? freed : 0;
}

/* The stored last use of ino (0: none); fs->lock held. */
static uint64_t use_load(struct hoard_fs *fs, uint64_t ino, const char *use)
{
	uint8_t k[8 + 64], v[8];
	size_t n, ul = strlen(use);
	uint64_t at;

	if (ul > 64)
		return 0;
	if (hoard_store_get_into(fs->st, HOARD_CF_XATTRS, k,
				 xattr_key(k, ino, use), v, sizeof(v),
				 &n) < 0 ||
	    u64_val_decode(v, n, &at) < 0)
		return 0;
	return at;
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return ts->tv_sec < 0 ? 0
			      : (uint64_t)ts->tv_sec * 1000000000ull +
					(uint64_t)ts->tv_nsec;
}

/* From evict.c (flush_atimes, its part under fs->lock). */
uint64_t hoard_core_store_use(struct hoard_fs *fs, uint64_t ino,
			      const char *use_xattr, uint64_t use,
			      uint64_t gran)
{
	const size_t ul = strlen(use_xattr);
	struct hoard_inode in;
	struct hoard_batch *b;
	struct istate *is;
	uint64_t have;

	if (ul > 64)
		return UINT64_MAX;
	pthread_mutex_lock(&fs->lock);
	is = istate_find(fs, ino);
	if ((is && istate_busy(is)) || inode_load(fs, ino, &in) < 0) {
		pthread_mutex_unlock(&fs->lock);
		return UINT64_MAX;
	}
	/* The ranking takes the latest of the stored use, the atime and the
	 * mtime: a use within a granule of the latter two (a file just
	 * written, the common case: every created file is used at its
	 * create and close) needs no row of its own. */
	have = ts_ns(&in.atime) > ts_ns(&in.mtime) ? ts_ns(&in.atime)
						   : ts_ns(&in.mtime);
	if (use < have + gran) {
		inode_clear(&in);
		pthread_mutex_unlock(&fs->lock);
		return use;
	}
	have = use_load(fs, ino, use_xattr);
	if (in.nlink && use >= have + gran) {
		uint8_t k[8 + 64], v[8];

		b = hoard_batch_new(fs->st);
		u64_val_encode(v, use);
		if (is)
			is->fresh_xattr = false; /* an xattr row from now */
		if (b) {
			hoard_batch_put(b, HOARD_CF_XATTRS, k,
					xattr_key(k, ino, use_xattr), v,
					sizeof(v));
			if (hoard_store_write(fs->st, b, false) == 0)
				have = use;
		}
		hoard_batch_free(b);
	}
	inode_clear(&in);
	pthread_mutex_unlock(&fs->lock);
	return have;
}

/* From evict.c (maybe_blob_gc). */
uint64_t hoard_core_garbage_bytes(struct hoard_fs *fs)
{
	uint64_t garbage;

	pthread_mutex_lock(&fs->lock);
	garbage = fs->garbage_bytes;
	pthread_mutex_unlock(&fs->lock);
	return garbage;
}

void hoard_core_garbage_done(struct hoard_fs *fs, uint64_t bytes)
{
	pthread_mutex_lock(&fs->lock);
	fs->garbage_bytes -= bytes; /* what was deleted meanwhile stays */
	pthread_mutex_unlock(&fs->lock);
}

/* ---- pull (from syncpull.c: fill_locked, put_file, pull_release) ------- */

void hoard_core_unstage(struct hoard_fs *fs, struct idmap *m)
{
	pthread_mutex_lock(&fs->lock);
	chunks_unstage_locked(fs, m);
	pthread_mutex_unlock(&fs->lock);
}

struct install {
	const struct hoard_core_file *f;
	int (*locate)(void *ud, const struct hoard_id *id,
		      struct chunk_rec *ret);
	void *ud;
	struct hoard_fs *fs;
};

/* The frame size of every chunk of f (fs->lock held), or -EAGAIN. */
static int install_sizes_locked(struct hoard_fs *fs, struct install *x,
				struct idmap *deltas, struct idmap *staged,
				bool remote_ok)
{
	const struct hoard_core_file *e = x->f;
	int r = 0;

	for (size_t k = 0; k < e->n_ext; k++) {
		struct idmap_ent *d = idmap_get(deltas, &e->ext[k].id);
		struct idmap_ent *s = staged ? idmap_get(staged, &e->ext[k].id)
					     : NULL;
		struct chunk_rec rec;

		if (d->frame_size)
			continue;
		if (s) {
			d->frame_size = s->frame_size;
			continue;
		}
		r = chunk_rec_load(fs, &e->ext[k].id, &rec);
		if (r == 0 && rec.refcount > 0 && !(rec.flags & 1) &&
		    remote_ok && rec.has_loc)
			r = 0;
		else if (r == 0 && (!(rec.flags & 1) || rec.refcount == 0))
			r = -ENOENT;
		if (r == -ENOENT && x->locate) {
			/* lazy: a record of a chunk that stays remote */
			struct chunk_rec loc = {0};

			if (x->locate(x->ud, &e->ext[k].id, &loc) < 0)
				return -EAGAIN;
			d->frame_size = loc.frame_size;
			d->writing = true; /* marks "new remote record" */
			continue;
		}
		if (r < 0)
			return r == -ENOENT ? -EAGAIN : r;
		d->frame_size = rec.frame_size;
	}
	return 0;
}

/* The records of the chunks that stay remote (after the refcounts). */
static int install_records(void *ud, struct hoard_batch *b,
			   struct idmap *deltas)
{
	struct install *x = ud;

	for (const struct idmap_ent *d = NULL;
	     x->locate && (d = idmap_next(deltas, d));) {
		struct chunk_rec rec = {0}, old;
		uint8_t v[CHUNK_REC_V2_SIZE];
		size_t vl;

		if (!d->writing || d->count <= 0)
			continue;
		if (x->locate(x->ud, &d->id, &rec) < 0)
			return -EAGAIN;
		rec.flags = 0;
		rec.has_loc = true;
		rec.refcount = (uint64_t)d->count;
		/* a record that lost its frame (no location): keep its other
		 * references; the batch has not been written, so this reads
		 * the record as it was */
		if (chunk_rec_load(x->fs, &d->id, &old) == 0)
			rec.refcount += old.refcount;
		vl = chunk_rec_encode(&rec, v);
		/* replaces the local record chunks_apply_locked put */
		hoard_batch_put(b, HOARD_CF_CHUNKS, d->id.b, HOARD_ID_SIZE, v,
				vl);
	}
	return 0;
}

static void install_inode(void *ud, struct hoard_inode *in)
{
	const struct hoard_core_file *e = ((struct install *)ud)->f;

	in->size = e->size;
	in->mode = S_IFREG | (e->mode & 07777);
	in->uid = e->uid;
	in->gid = e->gid;
	in->mtime = e->mtime;
}

int hoard_core_install_file(struct hoard_fs *fs, uint64_t ino,
			    const struct hoard_core_file *e,
			    struct idmap *staged, bool remote_ok,
			    int (*locate)(void *ud, const struct hoard_id *id,
					  struct chunk_rec *ret),
			    void *ud)
{
	const size_t esz = EXTENT_KEY_SIZE + EXTENT_VAL_SIZE;
	struct install x = {.f = e, .locate = locate, .ud = ud, .fs = fs};
	const struct land l = {
		.records = install_records,
		.inode = install_inode,
		.ud = &x,
	};
	struct idmap deltas;
	struct istate *is;
	uint8_t *ext;
	int r;

	ext = malloc(e->n_ext ? e->n_ext * esz : 1);
	if (!ext)
		return -ENOMEM;
	r = idmap_init(&deltas, 16);
	for (size_t k = 0; r == 0 && k < e->n_ext; k++) {
		struct idmap_ent *d = idmap_add(&deltas, &e->ext[k].id);
		uint8_t *key = ext + k * esz;

		if (!d) {
			r = -ENOMEM;
			break;
		}
		d->count++;
		d->raw_size = e->ext[k].len;
		extent_encode(&(struct extent_rec){.ino = ino,
						   .off = e->ext[k].off,
						   .id = e->ext[k].id,
						   .len = e->ext[k].len},
			      key, key + EXTENT_KEY_SIZE);
	}
	if (r == 0) {
		pthread_mutex_lock(&fs->lock);
		r = install_sizes_locked(fs, &x, &deltas, staged, remote_ok);
		if (r == 0)
			r = file_land_locked(fs, ino, ext, e->n_ext, &deltas,
					     &l, false);
		if (r == 0) {
			is = istate_find(fs, ino);
			if (is) {
				pthread_mutex_lock(&is->mu);
				is->size = e->size;
				is->size_valid = true;
				pthread_mutex_unlock(&is->mu);
			}
		}
		pthread_mutex_unlock(&fs->lock);
	}
	idmap_free(&deltas);
	free(ext);
	return r;
}
