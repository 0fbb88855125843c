/* SPDX-License-Identifier: MIT */
/*
 * volume: list, clone and remove whole volumes (volume.h).
 *
 * Both walks go breadth first from the volume's root over the dirents
 * column family, under fs->lock, and gather every change in one batch:
 *   clone: each inode reached gets a new number (an inode with several
 *     names is copied once: old -> new numbers of those are kept in an
 *     idmap); its record (with the new volume root), extents and xattrs
 *     are copied under the new number, each entry of a directory under the
 *     new directory; the chunks the copied extents name get their
 *     refcounts raised by chunks_apply_locked; then next_ino and the
 *     volume's row.
 *   remove: each inode's extents are counted down (extents_count), its
 *     xattrs, record, orphan row and a directory's entries deleted; the
 *     chunks that lose their last reference go with their frames
 *     (chunks_apply_locked), then the volume's row.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hoard/util.h"
#include "hoard/volume.h"
#include "fs-internal.h"

/* ---- list --------------------------------------------------------------- */

struct list_ctx {
	struct hoard_volume_info *v;
	size_t n, cap;
};

static int list_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		    size_t vl)
{
	struct list_ctx *c = ud;
	struct hoard_volume_info *x;

	if (kl == 0 || kl > 64 || vl != 8)
		return -EBADMSG;
	x = hoard_grow(c->v, &c->cap, c->n + 1, sizeof(*x), 16);
	if (!x)
		return -ENOMEM;
	c->v = x;
	x = &c->v[c->n++];
	memcpy(x->name, k, kl);
	x->name[kl] = '\0';
	x->root = hoard_get_be64(v);
	return 0;
}

int hoard_volume_list(struct hoard_fs *fs, struct hoard_volume_info **ret,
		      size_t *ret_n)
{
	struct list_ctx c = {0};
	int r = hoard_store_scan(fs->st, HOARD_CF_VOLUMES, "", 0, list_one, &c);

	if (r < 0) {
		free(c.v);
		return r;
	}
	*ret = c.v;
	*ret_n = c.n;
	return 0;
}

/* ---- the walk ----------------------------------------------------------- */

/* An inode number as an idmap key (the maps are keyed by chunk ids). */
static void ino_id(uint64_t ino, struct hoard_id *id)
{
	memset(id, 0, sizeof(*id));
	hoard_put_be64(id->b, ino);
	id->b[15] = 1;
}

struct walk {
	struct hoard_fs *fs;
	struct hoard_batch *b;
	struct idmap links;  /* inodes with nlink > 1 seen: old -> new */
	struct idmap deltas; /* chunk id -> refcount change */
	uint64_t *queue;     /* pairs: old directory, new directory */
	size_t nq, cq, head;
	uint64_t new_root; /* clone: the new volume's root */
	struct hoard_volume_result *res;
	/* one iterator per column family, made under fs->lock and moved
	 * from inode to inode (a new iterator per inode cost more than the
	 * copying) */
	struct hoard_iter *ext_it, *xat_it;
};

/* fn for each row of it whose key starts with the 8 bytes k. */
static int scan_ino(struct hoard_iter *it, const uint8_t k[8], hoard_scan_fn fn,
		    void *ud)
{
	int r = 0;

	for (hoard_iter_seek(it, k, 8); r == 0 && hoard_iter_valid(it);
	     hoard_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *key = hoard_iter_key(it, &kl);
		const uint8_t *v;

		if (kl < 8 || memcmp(key, k, 8))
			break;
		v = hoard_iter_value(it, &vl);
		r = fn(ud, key, kl, v, vl);
	}
	return r ? r : hoard_iter_status(it);
}

/* The iterators (fs->lock held: they see the store as of now). */
static int walk_iters(struct walk *w)
{
	w->ext_it = hoard_iter_new(w->fs->st, HOARD_CF_EXTENTS, "", 0);
	w->xat_it = hoard_iter_new(w->fs->st, HOARD_CF_XATTRS, "", 0);
	return w->ext_it && w->xat_it ? 0 : -ENOMEM;
}

static int queue_push(struct walk *w, uint64_t a, uint64_t b)
{
	uint64_t *q = hoard_grow(w->queue, &w->cq, w->nq + 2, sizeof(*q), 64);

	if (!q)
		return -ENOMEM;
	w->queue = q;
	q[w->nq++] = a;
	q[w->nq++] = b;
	return 0;
}

static void key_move(uint8_t *dst, const uint8_t *k, size_t kl, uint64_t ino)
{
	ino_key(dst, ino);
	memcpy(dst + 8, k + 8, kl - 8);
}

struct copy_ctx {
	struct walk *w;
	enum hoard_cf cf;
	uint64_t to;
};

/* One extent or xattr row of the old inode, under the new number. */
static int copy_row(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		    size_t vl)
{
	struct copy_ctx *c = ud;
	uint8_t nk[8 + 256];
	struct idmap_ent *d;
	struct hoard_id id;

	if (kl < 8 || kl > sizeof(nk))
		return -EBADMSG;
	key_move(nk, k, kl, c->to);
	hoard_batch_put(c->w->b, c->cf, nk, kl, v, vl);
	if (c->cf != HOARD_CF_EXTENTS)
		return 0;
	if (kl != EXTENT_KEY_SIZE || vl != EXTENT_VAL_SIZE)
		return -EBADMSG;
	memcpy(id.b, v, HOARD_ID_SIZE);
	d = idmap_add(&c->w->deltas, &id);
	if (!d)
		return -ENOMEM;
	d->count++;
	c->w->res->extents++;
	return 0;
}

/* Copy inode ino as new_ino into the clone (fs->lock held). */
static int clone_inode(struct walk *w, uint64_t ino, uint64_t new_ino,
		       struct hoard_inode *in)
{
	struct copy_ctx c = {.w = w, .to = new_ino};
	uint8_t k[8];
	int r;

	in->volume = w->new_root;
	inode_put(w->fs, w->b, new_ino, in);
	w->res->inodes++;
	if (S_ISREG(in->mode)) {
		w->res->files++;
		w->res->bytes += in->size;
	}
	ino_key(k, ino);
	c.cf = HOARD_CF_EXTENTS;
	r = S_ISREG(in->mode) ? scan_ino(w->ext_it, k, copy_row, &c) : 0;
	if (r == 0) {
		c.cf = HOARD_CF_XATTRS;
		r = scan_ino(w->xat_it, k, copy_row, &c);
	}
	if (r == 0 && S_ISDIR(in->mode))
		r = queue_push(w, ino, new_ino);
	return r;
}

/* One entry of a directory being cloned. */
static int clone_dirent(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
			size_t vl)
{
	struct walk *w = ud;
	uint64_t ino, new_ino, new_dir = w->queue[w->head - 1];
	struct idmap_ent *l = NULL;
	struct hoard_inode in;
	uint8_t nk[8 + NAME_MAX_LEN], nv[9];
	int r;

	if (kl <= 8 || kl > sizeof(nk) || vl != 9)
		return -EBADMSG;
	ino = hoard_get_be64(v);
	r = inode_load(w->fs, ino, &in);
	if (r < 0)
		return r == -ENOENT ? -EBADMSG : r;
	if (!S_ISDIR(in.mode) && in.nlink > 1) {
		struct hoard_id key;

		ino_id(ino, &key);
		l = idmap_add(&w->links, &key);
		if (!l) {
			inode_clear(&in);
			return -ENOMEM;
		}
	}
	if (l && l->count) {
		new_ino = (uint64_t)l->count; /* another name of a copy */
	} else {
		new_ino = w->fs->next_ino++;
		if (l)
			l->count = (int64_t)new_ino;
		r = clone_inode(w, ino, new_ino, &in);
	}
	inode_clear(&in);
	if (r < 0)
		return r;
	key_move(nk, k, kl, new_dir);
	hoard_put_be64(nv, new_ino);
	nv[8] = v[8];
	hoard_batch_put(w->b, HOARD_CF_DIRENTS, nk, kl, nv, 9);
	return 0;
}

/*
 * Raise the refcount of every chunk the copied extents name, in the batch.
 * Each must have a live record: raising one without would make a record
 * with no frame.  (chunks_apply_locked would read each record again.)
 */
static int raise_refs(struct walk *w, char *errbuf, size_t errlen)
{
	struct idmap_ent *d;

	for (d = NULL; (d = idmap_next(&w->deltas, d));) {
		char hex[HOARD_ID_HEX_SIZE];
		uint8_t v[CHUNK_REC_V2_SIZE];
		struct chunk_rec rec;
		int r;

		w->res->chunks++;
		r = chunk_rec_load(w->fs, &d->id, &rec);
		if (r == 0 && rec.refcount > 0) {
			rec.refcount += (uint64_t)d->count;
			hoard_batch_put(w->b, HOARD_CF_CHUNKS, d->id.b,
					HOARD_ID_SIZE, v,
					chunk_rec_encode(&rec, v));
			continue;
		}
		hoard_id_hex(&d->id, hex);
		if (r < 0 && r != -ENOENT)
			return hoard_errf(errbuf, errlen, r,
					  "reading chunk %s: %s", hex,
					  strerror(-r));
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "the volume names chunk %s, which has no "
				  "record: nothing was cloned (run 'hoard "
				  "fsck')",
				  hex);
	}
	return 0;
}

static int walk_init(struct walk *w, struct hoard_fs *fs,
		     struct hoard_volume_result *res)
{
	memset(res, 0, sizeof(*res));
	memset(w, 0, sizeof(*w));
	w->fs = fs;
	w->res = res;
	w->b = hoard_batch_new(fs->st);
	if (!w->b || idmap_init(&w->links, 64) < 0 ||
	    idmap_init(&w->deltas, 1024) < 0)
		return -ENOMEM;
	return 0;
}

static void walk_clear(struct walk *w)
{
	hoard_iter_free(w->ext_it);
	hoard_iter_free(w->xat_it);
	hoard_batch_free(w->b);
	idmap_free(&w->links);
	idmap_free(&w->deltas);
	free(w->queue);
}

static int volume_root_locked(struct hoard_fs *fs, const char *name,
			      uint64_t *ret_root)
{
	uint8_t v[8];
	size_t n;
	int r = hoard_store_get_into(fs->st, HOARD_CF_VOLUMES, name,
				     strlen(name), v, sizeof(v), &n);

	if (r == 0 && n != 8)
		r = -EBADMSG;
	if (r == 0)
		*ret_root = hoard_get_be64(v);
	return r;
}

/* ---- clone -------------------------------------------------------------- */

static int clone_locked(struct walk *w, const char *src, const char *dst,
			char *errbuf, size_t errlen)
{
	struct hoard_fs *fs = w->fs;
	uint64_t root = 0, next_before = fs->next_ino, dummy;
	struct hoard_inode in;
	uint8_t v[8];
	int r;

	r = volume_root_locked(fs, src, &root);
	if (r == -ENOENT)
		return hoard_errf(errbuf, errlen, r, "there is no volume '%s'",
				  src);
	if (r == 0 && volume_root_locked(fs, dst, &dummy) == 0)
		return hoard_errf(errbuf, errlen, -EEXIST,
				  "volume '%s' exists already", dst);
	if (r == 0)
		r = inode_load(fs, root, &in);
	if (r < 0)
		return hoard_errf(errbuf, errlen, r, "volume '%s': %s", src,
				  strerror(-r));
	w->new_root = fs->next_ino++;
	r = walk_iters(w);
	if (r == 0)
		r = clone_inode(w, root, w->new_root, &in);
	inode_clear(&in);
	while (r == 0 && w->head < w->nq) {
		uint8_t k[8];

		ino_key(k, w->queue[w->head]);
		w->head += 2;
		r = hoard_store_scan(fs->st, HOARD_CF_DIRENTS, k, 8,
				     clone_dirent, w);
	}
	if (r < 0 && !(errbuf && *errbuf))
		hoard_errf(errbuf, errlen, r, "reading volume '%s': %s", src,
			   strerror(-r));
	if (r == 0)
		r = raise_refs(w, errbuf, errlen);
	if (r == 0) {
		hoard_put_be64(v, fs->next_ino);
		hoard_batch_put(w->b, HOARD_CF_DEFAULT, "next_ino", 8, v, 8);
		hoard_put_be64(v, w->new_root);
		hoard_batch_put(w->b, HOARD_CF_VOLUMES, dst, strlen(dst), v, 8);
		w->res->records = hoard_batch_count(w->b);
		r = hoard_store_write(fs->st, w->b, true);
		if (r < 0)
			hoard_errf(errbuf, errlen, r, "writing the clone: %s",
				   strerror(-r));
	}
	if (r < 0)
		fs->next_ino = next_before; /* nothing was written */
	return r;
}

int hoard_volume_clone(struct hoard_fs *fs, const char *src, const char *dst,
		       struct hoard_volume_result *res, char *errbuf,
		       size_t errlen)
{
	uint64_t t0 = hoard_now_mono_ns();
	struct walk w;
	int r;

	if (errbuf && errlen)
		*errbuf = '\0';
	if (!hoard_fs_volume_name_ok(src) || !hoard_fs_volume_name_ok(dst))
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "'%s' is not a volume name (1-64 of "
				  "A-Z a-z 0-9 . _ -, not starting with '.')",
				  hoard_fs_volume_name_ok(src) ? dst : src);
	r = walk_init(&w, fs, res);
	if (r == 0) {
		pthread_mutex_lock(&fs->lock);
		r = clone_locked(&w, src, dst, errbuf, errlen);
		pthread_mutex_unlock(&fs->lock);
	}
	walk_clear(&w);
	res->seconds = (double)(hoard_now_mono_ns() - t0) / 1e9;
	return r;
}

/* ---- remove ------------------------------------------------------------- */

static int delete_row(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		      size_t vl)
{
	struct walk *w = ud;

	hoard_batch_delete(w->b, HOARD_CF_XATTRS, k, kl);
	return 0;
}

static int remove_inode(struct walk *w, uint64_t ino)
{
	struct istate *is = istate_find(w->fs, ino);
	struct hoard_inode in;
	uint8_t k[8];
	int r;

	/* Lookups alone do not count: a mount that is gone may leave
	 * some the kernel never forgot; the daemon refuses a mounted
	 * volume itself. */
	if (is && is->opens)
		return -EBUSY;
	r = inode_load(w->fs, ino, &in);
	if (r < 0)
		return r == -ENOENT ? -EBADMSG : r;
	w->res->inodes++;
	if (S_ISREG(in.mode)) {
		w->res->files++;
		w->res->bytes += in.size;
	}
	ino_key(k, ino);
	r = extents_count(w->fs, ino, &w->deltas, -1, w->b);
	if (r == 0)
		r = scan_ino(w->xat_it, k, delete_row, w);
	hoard_batch_delete(w->b, HOARD_CF_INODES, k, 8);
	hoard_batch_delete(w->b, HOARD_CF_ORPHANS, k, 8);
	if (r == 0 && S_ISDIR(in.mode))
		r = queue_push(w, ino, 0);
	inode_clear(&in);
	return r;
}

static int remove_dirent(void *ud, const uint8_t *k, size_t kl,
			 const uint8_t *v, size_t vl)
{
	struct walk *w = ud;
	struct idmap_ent *l;
	struct hoard_id key;
	uint64_t ino;

	if (kl <= 8 || vl != 9)
		return -EBADMSG;
	hoard_batch_delete(w->b, HOARD_CF_DIRENTS, k, kl);
	ino = hoard_get_be64(v);
	ino_id(ino, &key);
	l = idmap_add(&w->links, &key); /* every inode once */
	if (!l)
		return -ENOMEM;
	if (l->count++)
		return 0;
	return remove_inode(w, ino);
}

static int count_extents(struct walk *w)
{
	const struct idmap_ent *d;

	for (d = NULL; (d = idmap_next(&w->deltas, d));) {
		struct chunk_rec rec;

		if (!d->count)
			continue;
		w->res->chunks++;
		w->res->extents += (uint64_t)-d->count;
		if (chunk_rec_load(w->fs, &d->id, &rec) == 0 &&
		    rec.refcount <= (uint64_t)-d->count)
			w->res->chunks_freed++;
	}
	return 0;
}

static int remove_locked(struct walk *w, const char *name, char *errbuf,
			 size_t errlen)
{
	struct hoard_fs *fs = w->fs;
	uint64_t root = 0; /* set by volume_root_locked on success */
	int r = volume_root_locked(fs, name, &root);

	if (r == -ENOENT)
		return hoard_errf(errbuf, errlen, r, "there is no volume '%s'",
				  name);
	if (r < 0)
		return hoard_errf(errbuf, errlen, r, "volume '%s': %s", name,
				  strerror(-r));
	r = walk_iters(w);
	if (r == 0)
		r = remove_inode(w, root);
	while (r == 0 && w->head < w->nq) {
		uint8_t k[8];

		ino_key(k, w->queue[w->head]);
		w->head += 2;
		r = hoard_store_scan(fs->st, HOARD_CF_DIRENTS, k, 8,
				     remove_dirent, w);
	}
	if (r == -EBUSY)
		return hoard_errf(errbuf, errlen, r,
				  "volume '%s' is in use (mounted, or a file "
				  "of it is open): nothing was removed",
				  name);
	if (r < 0)
		return hoard_errf(errbuf, errlen, r, "reading volume '%s': %s",
				  name, strerror(-r));
	count_extents(w);
	r = chunks_apply_locked(fs, w->b, &w->deltas);
	if (r == 0) {
		hoard_batch_delete(w->b, HOARD_CF_VOLUMES, name, strlen(name));
		w->res->records = hoard_batch_count(w->b);
		r = hoard_store_write(fs->st, w->b, true);
	}
	if (r < 0)
		hoard_errf(errbuf, errlen, r, "removing volume '%s': %s", name,
			   strerror(-r));
	return r;
}

int hoard_volume_remove(struct hoard_fs *fs, const char *name,
			struct hoard_volume_result *res, char *errbuf,
			size_t errlen)
{
	uint64_t t0 = hoard_now_mono_ns();
	struct walk w;
	int r;

	if (errbuf && errlen)
		*errbuf = '\0';
	if (!hoard_fs_volume_name_ok(name))
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "'%s' is not a volume name", name);
	r = walk_init(&w, fs, res);
	if (r == 0) {
		pthread_mutex_lock(&fs->lock);
		r = remove_locked(&w, name, errbuf, errlen);
		pthread_mutex_unlock(&fs->lock);
	}
	walk_clear(&w);
	res->seconds = (double)(hoard_now_mono_ns() - t0) / 1e9;
	return r;
}

/* ---- JSON --------------------------------------------------------------- */

char *hoard_volume_result_json(const char *op, const char *name,
			       const struct hoard_volume_result *res)
{
	json_t *o = json_pack(
		"{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "op", op,
		"volume", name, "inodes", (json_int_t)res->inodes, "files",
		(json_int_t)res->files, "bytes", (json_int_t)res->bytes,
		"extents", (json_int_t)res->extents, "chunks",
		(json_int_t)res->chunks, "chunks_freed",
		(json_int_t)res->chunks_freed, "records",
		(json_int_t)res->records, "seconds", res->seconds);
	char *s, *out = NULL;

	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s && asprintf(&out, "%s\n", s) < 0)
		out = NULL;
	free(s);
	return out;
}
