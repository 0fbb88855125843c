/* SPDX-License-Identifier: MIT */
/*
 * volume: list and clone whole volumes (volume.h; remove: volrm.c).
 *
 * Both walks go breadth first from the volume's root over the dirents
 * column family:
 *   clone: from a RocksDB snapshot taken under fs->lock, walked without
 *     it (clone_snap: the lock only for the snapshot, blocks of inode
 *     numbers and the publishing batch).  Each inode reached gets a new
 *     number (an inode with several names is copied once: old -> new
 *     numbers of those are kept in an idmap); its record (with the new
 *     volume root), extents and xattrs are copied under the new number,
 *     each entry of a directory under the new directory, written in
 *     batches that belong to no volume yet; then, under the lock, the
 *     chunks the copied extents name get their refcounts raised and the
 *     volume's row is written, in one batch.  A settings key `clone.DST`
 *     lets a start after a crash remove a clone never published.
 *     (clone_locked: the same walk under fs->lock in one batch, when
 *     snapshots keep losing chunks to deletes.)
 *   remove: volrm.c (the same walk over a snapshot, then the inodes
 *     removed in batches under the lock).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

	uint64_t root;

	if (volume_rec_decode(k, kl, v, vl, &root) < 0)
		return -EBADMSG;
	x = hoard_grow(c->v, &c->cap, c->n + 1, sizeof(*x), 16);
	if (!x)
		return -ENOMEM;
	c->v = x;
	x = &c->v[c->n++];
	memcpy(x->name, k, kl);
	x->name[kl] = '\0';
	x->root = root;
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

/* Records per batch a clone writes during its walk (not under fs->lock). */
#define CLONE_BATCH_RECORDS 4096
/* Inode numbers a clone reserves at a time (under fs->lock). */
#define CLONE_INO_BLOCK 1024
/* Chunks whose refcounts a clone raises per hold of fs->lock. */
#define CLONE_RAISE_BATCH 1024
/* Snapshot clones tried before one under fs->lock (a chunk of the
 * snapshot freed before the clone could count it: try again). */
#define CLONE_TRIES 3
/* Settings key of a clone under way: "clone." + DST -> its root, u64. */
#define CLONE_KEY     "clone."
#define CLONE_KEY_LEN 6

/* An inode number as an idmap key (the maps are keyed by chunk ids). */
static void ino_id(uint64_t ino, struct hoard_id *id)
{
	memset(id, 0, sizeof(*id));
	ino_key(id->b, ino);
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
	/* clone: the snapshot walked without fs->lock (NULL: the walk holds
	 * fs->lock throughout), the inode numbers reserved for it
	 * [ino_next, ino_end), records written so far */
	struct hoard_snapshot *snap;
	uint64_t ino_next, ino_end;
	uint64_t written;
	/* one iterator per column family (at snap, or made under fs->lock),
	 * moved from inode to inode (a new iterator per inode cost more
	 * than the copying) */
	struct hoard_iter *ino_it, *dir_it, *ext_it, *xat_it;
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

/* The iterators, at w->snap (or, without one, under fs->lock: they see
 * the store as of now). */
static int walk_iters(struct walk *w)
{
	struct hoard_store *st = w->fs->st;

	w->ino_it = hoard_iter_new_at(st, HOARD_CF_INODES, "", 0, w->snap);
	w->dir_it = hoard_iter_new_at(st, HOARD_CF_DIRENTS, "", 0, w->snap);
	w->ext_it = hoard_iter_new_at(st, HOARD_CF_EXTENTS, "", 0, w->snap);
	w->xat_it = hoard_iter_new_at(st, HOARD_CF_XATTRS, "", 0, w->snap);
	return w->ino_it && w->dir_it && w->ext_it && w->xat_it ? 0 : -ENOMEM;
}

/* Inode ino as the walk's iterator sees it. */
static int walk_inode(struct walk *w, uint64_t ino, struct hoard_inode *in)
{
	const uint8_t *key, *v;
	size_t kl, vl;
	uint8_t k[8];
	int r;

	ino_key(k, ino);
	hoard_iter_seek(w->ino_it, k, 8);
	if (!hoard_iter_valid(w->ino_it)) {
		r = hoard_iter_status(w->ino_it);
		return r ? r : -ENOENT;
	}
	key = hoard_iter_key(w->ino_it, &kl);
	if (kl != 8 || memcmp(key, k, 8))
		return -ENOENT;
	v = hoard_iter_value(w->ino_it, &vl);
	return inode_decode(v, vl, in);
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

/* Reserve CLONE_INO_BLOCK inode numbers for a snapshot clone (fs->lock
 * held).  next_ino is written at once, under the lock (as every writer of
 * it does), so it never goes back and no number of the clone is handed
 * out again, even after a crash. */
static int reserve_inos_locked(struct walk *w, struct hoard_batch *b)
{
	struct hoard_fs *fs = w->fs;

	w->ino_next = fs->next_ino;
	fs->next_ino += CLONE_INO_BLOCK;
	w->ino_end = fs->next_ino;
	return next_ino_put(fs, b);
}

/* A hold of fs->lock that began at t0 ended: count it. */
static void lock_held(struct hoard_volume_result *res, uint64_t t0)
{
	double s = (double)(hoard_now_mono_ns() - t0) / 1e9;

	res->locked_seconds += s;
	if (s > res->locked_max_seconds)
		res->locked_max_seconds = s;
}

/* A new inode number for the clone. */
static int walk_new_ino(struct walk *w, uint64_t *ret)
{
	int r = 0;

	if (!w->snap) {
		*ret = w->fs->next_ino++; /* fs->lock held */
		return 0;
	}
	if (w->ino_next == w->ino_end) {
		uint64_t t0 = hoard_now_mono_ns();

		pthread_mutex_lock(&w->fs->lock);
		r = reserve_inos_locked(w, NULL);
		pthread_mutex_unlock(&w->fs->lock);
		lock_held(w->res, t0);
	}
	if (r == 0)
		*ret = w->ino_next++;
	return r;
}

/* A snapshot clone writes its records as it goes, in batches of about
 * CLONE_BATCH_RECORDS (not synced: the final batch is), each ending after
 * a whole entry, so every inode written is reachable from the clone's
 * root through entries written no later (what clone_undo walks). */
static int walk_flush(struct walk *w, size_t at_least)
{
	size_t n = hoard_batch_count(w->b);
	int r;

	if (!w->snap || n == 0 || n < at_least)
		return 0;
	r = hoard_store_write(w->fs->st, w->b, false);
	hoard_batch_free(w->b);
	w->b = hoard_batch_new(w->fs->st);
	if (r == 0 && !w->b)
		r = -ENOMEM;
	w->written += n;
	return r;
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
	struct extent_rec e;

	if (kl < 8 || kl > sizeof(nk))
		return -EBADMSG;
	key_move(nk, k, kl, c->to);
	hoard_batch_put(c->w->b, c->cf, nk, kl, v, vl);
	if (c->cf != HOARD_CF_EXTENTS)
		return 0;
	if (extent_decode(k, kl, v, vl, &e) < 0)
		return -EBADMSG;
	d = idmap_add(&c->w->deltas, &e.id);
	if (!d)
		return -ENOMEM;
	d->count++;
	c->w->res->extents++;
	return 0;
}

/* Copy inode ino as new_ino into the clone. */
static int clone_inode(struct walk *w, uint64_t ino, uint64_t new_ino,
		       struct hoard_inode *in)
{
	struct copy_ctx c = {.w = w, .to = new_ino};
	uint8_t k[8];
	int r;

	in->volume = w->new_root;
	inode_put_new(w->fs, w->b, new_ino, in); /* maybe without fs->lock */
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
	uint64_t ino, new_ino = 0, new_dir = w->queue[w->head - 1];
	struct idmap_ent *l = NULL;
	struct hoard_inode in;
	uint8_t nk[DIRENT_KEY_MAX], nv[DIRENT_VAL_SIZE], type;
	char name[NAME_MAX_LEN + 1];
	bool fresh = false;
	int r;

	if (kl <= 8 || kl > sizeof(nk) || dirent_decode(v, vl, &ino, &type) < 0)
		return -EBADMSG;
	r = walk_inode(w, ino, &in);
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
		r = walk_new_ino(w, &new_ino);
		if (r == 0 && l)
			l->count = (int64_t)new_ino;
		fresh = r == 0;
	}
	/* the entry before the inode: a file with one link gets this entry
	 * as its home, and inode_put writes the copy into it */
	if (r == 0) {
		key_move(nk, k, kl, new_dir);
		dirent_encode(nv, new_ino, (uint32_t)(type & 15) << 12);
		hoard_batch_put(w->b, HOARD_CF_DIRENTS, nk, kl, nv, sizeof(nv));
	}
	if (fresh) {
		memcpy(name, k + 8, kl - 8);
		name[kl - 8] = 0;
		inode_set_home(&in, new_dir, name);
		/* a file with two links: its source's entries are not the
		 * clone's, and the clone's are not known yet */
		inode_set_links(&in, 0, NULL, 0, NULL);
		r = clone_inode(w, ino, new_ino, &in);
	}
	inode_clear(&in);
	if (r < 0)
		return r;
	return walk_flush(w, CLONE_BATCH_RECORDS);
}

/*
 * Raise the refcount of every chunk the copied extents name, in the batch
 * (fs->lock held).  Each must have a live record: raising one without
 * would make a record with no frame.  A snapshot clone whose chunk was
 * freed since the snapshot gets -ESTALE (and no message): it tries again.
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
		if (w->snap)
			return -ESTALE;
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
	hoard_iter_free(w->ino_it);
	hoard_iter_free(w->dir_it);
	hoard_iter_free(w->ext_it);
	hoard_iter_free(w->xat_it);
	hoard_store_snapshot_free(w->fs->st, w->snap);
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

	if (r == 0)
		r = volume_rec_decode((const uint8_t *)name, strlen(name), v, n,
				      ret_root);
	return r;
}

/* ---- clone -------------------------------------------------------------- */

/*
 * Tests only: HOARD_TEST_CLONE_PAUSE_MS=N makes a snapshot clone wait N ms
 * between its walk (records written) and raising refcounts, or, with
 * HOARD_TEST_CLONE_PAUSE_AT=raise, after its first batch of raised
 * refcounts; HOARD_TEST_CLONE_RAISE_BATCH=N raises N chunks per batch.  So
 * a test can kill the daemon there, or free chunks of the snapshot.
 */
static void test_pause(const char *at)
{
	const char *p = getenv("HOARD_TEST_CLONE_PAUSE_MS");
	const char *w = getenv("HOARD_TEST_CLONE_PAUSE_AT");
	long ms = p ? strtol(p, NULL, 10) : 0;

	if (strcmp(w ? w : "walk", at) || ms <= 0 || ms > 60000)
		return;
	hoard_log(LOG_INFO, "clone: pausing %ld ms (%s)", ms, at);
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

static size_t raise_batch(void)
{
	const char *p = getenv("HOARD_TEST_CLONE_RAISE_BATCH");
	long n = p ? strtol(p, NULL, 10) : 0;

	return n > 0 ? (size_t)n : CLONE_RAISE_BATCH;
}

static size_t clone_key(char *k, const char *dst)
{
	size_t n = strlen(dst);

	memcpy(k, CLONE_KEY, CLONE_KEY_LEN);
	memcpy(k + CLONE_KEY_LEN, dst, n);
	return CLONE_KEY_LEN + n;
}

/* src's root into *ret_root, dst free (fs->lock held). */
static int clone_check_locked(struct hoard_fs *fs, const char *src,
			      const char *dst, uint64_t *ret_root, char *errbuf,
			      size_t errlen)
{
	char k[CLONE_KEY_LEN + 65];
	uint64_t dummy;
	int r = volume_root_locked(fs, src, ret_root);

	if (r == -ENOENT)
		return hoard_errf(errbuf, errlen, r, "there is no volume '%s'",
				  src);
	if (r < 0)
		return hoard_errf(errbuf, errlen, r, "volume '%s': %s", src,
				  strerror(-r));
	if (volume_root_locked(fs, dst, &dummy) == 0)
		return hoard_errf(errbuf, errlen, -EEXIST,
				  "volume '%s' exists already", dst);
	if (hoard_store_exists(fs->st, HOARD_CF_DEFAULT, k,
			       clone_key(k, dst)) == 1)
		return hoard_errf(errbuf, errlen, -EEXIST,
				  "a clone to volume '%s' is under way", dst);
	return 0;
}

/* The walk itself: src's root (inode root) and every entry under it. */
static int clone_walk(struct walk *w, uint64_t root, const char *src,
		      char *errbuf, size_t errlen)
{
	struct hoard_inode in;
	int r = walk_iters(w);

	if (r == 0)
		r = walk_inode(w, root, &in);
	if (r == 0) {
		r = clone_inode(w, root, w->new_root, &in);
		inode_clear(&in);
	}
	while (r == 0 && w->head < w->nq) {
		uint8_t k[8];

		ino_key(k, w->queue[w->head]);
		w->head += 2;
		r = scan_ino(w->dir_it, k, clone_dirent, w);
	}
	if (r < 0)
		hoard_errf(errbuf, errlen, r, "reading volume '%s': %s", src,
			   strerror(-r));
	return r;
}

/* The old way, kept for when snapshot clones keep losing chunks to
 * concurrent deletes: the whole walk under fs->lock, one batch. */
static int clone_locked(struct walk *w, const char *src, const char *dst,
			char *errbuf, size_t errlen)
{
	struct hoard_fs *fs = w->fs;
	uint64_t root = 0, next_before = fs->next_ino;
	uint8_t v[8];
	int r = clone_check_locked(fs, src, dst, &root, errbuf, errlen);

	if (r < 0)
		return r;
	w->new_root = fs->next_ino++;
	r = clone_walk(w, root, src, errbuf, errlen);
	if (r == 0)
		r = raise_refs(w, errbuf, errlen);
	if (r == 0) {
		next_ino_put(fs, w->b);
		u64_val_encode(v, w->new_root);
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

/*
 * Undo a snapshot clone that was not published: delete every record
 * reachable from its root (written by walk_flush) and its settings key, in
 * one synced batch, and take back the references it raised so far: those
 * of the chunks its extents name with ids up to `raised` (the chunks are
 * raised in id order, the last one raised kept in the key; NULL: none).
 * Nothing else knows these inode numbers, so the walk needs no lock; the
 * refcounts are changed and the batch written under fs->lock.  A crash
 * before the batch lands leaves the key, and the next start does it again
 * (hoard_volume_recover).
 */
struct undo {
	struct hoard_store *st;
	struct hoard_batch *b;
	enum hoard_cf cf;
	struct idmap seen;   /* inodes visited (several names: once) */
	struct idmap deltas; /* chunk id -> extents of the clone naming it */
	uint64_t *dirs;
	size_t n, cap;
	uint64_t inodes;
};

static int undo_row(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		    size_t vl)
{
	struct undo *u = ud;
	struct idmap_ent *d;
	struct hoard_id id;
	uint32_t len;

	hoard_batch_delete(u->b, u->cf, k, kl);
	if (u->cf != HOARD_CF_EXTENTS)
		return 0;
	if (extent_val_decode(v, vl, &id, &len) < 0)
		return -EBADMSG;
	d = idmap_add(&u->deltas, &id);
	if (!d)
		return -ENOMEM;
	d->count--;
	return 0;
}

static int undo_inode(struct undo *u, uint64_t ino)
{
	struct idmap_ent *e;
	struct hoard_id key;
	uint8_t k[8];
	int r;

	ino_id(ino, &key);
	e = idmap_add(&u->seen, &key);
	if (!e)
		return -ENOMEM;
	if (e->count++)
		return 0;
	ino_key(k, ino);
	hoard_batch_delete(u->b, HOARD_CF_INODES, k, 8);
	u->inodes++;
	u->cf = HOARD_CF_EXTENTS;
	r = hoard_store_scan(u->st, HOARD_CF_EXTENTS, k, 8, undo_row, u);
	u->cf = HOARD_CF_XATTRS;
	if (r == 0)
		r = hoard_store_scan(u->st, HOARD_CF_XATTRS, k, 8, undo_row, u);
	return r;
}

static int undo_dirent(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		       size_t vl)
{
	struct undo *u = ud;
	uint64_t child, *d;
	uint8_t type;

	if (kl <= 8 || dirent_decode(v, vl, &child, &type) < 0)
		return -EBADMSG;
	hoard_batch_delete(u->b, HOARD_CF_DIRENTS, k, kl);
	if (type == (S_IFDIR >> 12)) {
		d = hoard_grow(u->dirs, &u->cap, u->n + 1, sizeof(*d), 64);
		if (!d)
			return -ENOMEM;
		u->dirs = d;
		u->dirs[u->n++] = child;
	}
	return undo_inode(u, child);
}

static int clone_undo(struct hoard_fs *fs, const char *dst, uint64_t root,
		      const struct hoard_id *raised, uint64_t *ret_inodes)
{
	struct undo u = {.st = fs->st, .b = hoard_batch_new(fs->st)};
	char k[CLONE_KEY_LEN + 65];
	int r = u.b ? 0 : -ENOMEM;

	if (r == 0 &&
	    (idmap_init(&u.seen, 1024) < 0 || idmap_init(&u.deltas, 1024) < 0))
		r = -ENOMEM;
	if (r == 0)
		r = undo_inode(&u, root);
	for (size_t i = 0; r == 0 && i <= u.n; i++) {
		uint8_t dk[8];

		ino_key(dk, i ? u.dirs[i - 1] : root);
		r = hoard_store_scan(fs->st, HOARD_CF_DIRENTS, dk, 8,
				     undo_dirent, &u);
	}
	for (struct idmap_ent *d = NULL;
	     r == 0 && (d = idmap_next(&u.deltas, d));) {
		if (!raised || memcmp(d->id.b, raised->b, HOARD_ID_SIZE) > 0)
			d->count = 0; /* never raised */
	}
	if (r == 0) {
		hoard_batch_delete(u.b, HOARD_CF_DEFAULT, k, clone_key(k, dst));
		pthread_mutex_lock(&fs->lock);
		r = raised ? chunks_apply_locked(fs, u.b, &u.deltas) : 0;
		if (r == 0)
			r = hoard_store_write(fs->st, u.b, true);
		pthread_mutex_unlock(&fs->lock);
	}
	if (ret_inodes)
		*ret_inodes = u.inodes;
	hoard_batch_free(u.b);
	idmap_free(&u.seen);
	idmap_free(&u.deltas);
	free(u.dirs);
	return r;
}

static int id_cmp(const void *a, const void *b)
{
	const struct idmap_ent *x = *(const struct idmap_ent *const *)a;
	const struct idmap_ent *y = *(const struct idmap_ent *const *)b;

	return memcmp(x->id.b, y->id.b, HOARD_ID_SIZE);
}

/*
 * Raise the refcounts of the chunks the clone's extents name, in id order,
 * CLONE_RAISE_BATCH chunks per hold of fs->lock; each batch also records
 * the last id raised in the clone's key (root + id), so an undo, or a
 * start after a crash, takes back exactly those.  A chunk whose record
 * went since the snapshot: -ESTALE, *ret_raised says how far it got.
 */
static int raise_in_batches(struct walk *w, const char *k, size_t kl,
			    struct hoard_id *ret_raised, bool *ret_any)
{
	struct hoard_fs *fs = w->fs;
	struct idmap_ent **v = malloc((w->deltas.t.n + 1) * sizeof(*v));
	size_t n = 0, step = raise_batch();
	int r = v ? 0 : -ENOMEM;

	for (struct idmap_ent *d = NULL; v && (d = idmap_next(&w->deltas, d));)
		v[n++] = d;
	if (n > 1)
		qsort(v, n, sizeof(*v), id_cmp);
	w->res->chunks = n;
	for (size_t at = 0; r == 0 && at < n; at += step) {
		size_t end = at + step < n ? at + step : n;
		struct hoard_batch *b = hoard_batch_new(fs->st);
		uint64_t t0 = hoard_now_mono_ns();
		uint8_t kv[CLONE_REC_MAX];

		if (!b) {
			r = -ENOMEM;
			break;
		}
		pthread_mutex_lock(&fs->lock);
		for (size_t i = at; r == 0 && i < end; i++) {
			uint8_t rv[CHUNK_REC_V2_SIZE];
			struct chunk_rec rec;

			r = chunk_rec_load(fs, &v[i]->id, &rec);
			if (r == -ENOENT || (r == 0 && rec.refcount == 0))
				r = -ESTALE;
			if (r == 0) {
				rec.refcount += (uint64_t)v[i]->count;
				hoard_batch_put(b, HOARD_CF_CHUNKS, v[i]->id.b,
						HOARD_ID_SIZE, rv,
						chunk_rec_encode(&rec, rv));
			}
		}
		if (r == 0) {
			hoard_batch_put(b, HOARD_CF_DEFAULT, k, kl, kv,
					clone_rec_encode(kv, w->new_root,
							 &v[end - 1]->id));
			w->written += hoard_batch_count(b);
			r = hoard_store_write(fs->st, b, false);
		}
		if (r == 0) {
			*ret_raised = v[end - 1]->id;
			*ret_any = true;
		}
		pthread_mutex_unlock(&fs->lock);
		hoard_batch_free(b);
		lock_held(w->res, t0);
		if (r == 0 && at == 0)
			test_pause("raise");
	}
	free(v);
	return r;
}

/*
 * A clone from a snapshot: under fs->lock only (1) the checks, the
 * snapshot, the first inode numbers and the settings key "clone.DST" (one
 * batch), (2) each further block of inode numbers, (3) each batch of
 * raised refcounts, and (4) the publishing batch: the volume's row, the
 * key deleted.  The walk and the batches of records hold no lock: until
 * (4) the records are reachable from no volume, so no mount, list or walk
 * sees them.  -ESTALE: a chunk was freed since the snapshot (the records
 * and the raised references are undone; the caller tries again).
 */
static int clone_snap(struct walk *w, const char *src, const char *dst,
		      char *errbuf, size_t errlen)
{
	struct hoard_fs *fs = w->fs;
	char k[CLONE_KEY_LEN + 65];
	size_t kl = clone_key(k, dst);
	uint64_t root = 0, t0;
	struct hoard_batch *b = hoard_batch_new(fs->st);
	struct hoard_id raised;
	bool begun = false, any = false;
	uint8_t v[CLONE_REC_MAX];
	int r;

	if (!b)
		return -ENOMEM;
	t0 = hoard_now_mono_ns();
	pthread_mutex_lock(&fs->lock);
	r = clone_check_locked(fs, src, dst, &root, errbuf, errlen);
	if (r == 0) {
		w->snap = hoard_store_snapshot(fs->st);
		r = w->snap ? reserve_inos_locked(w, b) : -ENOMEM;
	}
	if (r == 0) {
		w->new_root = w->ino_next++;
		hoard_batch_put(b, HOARD_CF_DEFAULT, k, kl, v,
				clone_rec_encode(v, w->new_root, NULL));
		r = hoard_store_write(fs->st, b, false);
		begun = r == 0;
	}
	pthread_mutex_unlock(&fs->lock);
	hoard_batch_free(b);
	lock_held(w->res, t0);
	if (r < 0)
		goto out;

	r = clone_walk(w, root, src, errbuf, errlen);
	if (r == 0)
		r = walk_flush(w, 1);
	if (r < 0)
		goto out;
	test_pause("walk");
	r = raise_in_batches(w, k, kl, &raised, &any);
	if (r < 0)
		goto out;

	t0 = hoard_now_mono_ns();
	pthread_mutex_lock(&fs->lock);
	if (volume_root_locked(fs, dst, &root) == 0)
		r = hoard_errf(errbuf, errlen, -EEXIST,
			       "volume '%s' exists already", dst);
	if (r == 0) {
		u64_val_encode(v, w->new_root);
		hoard_batch_put(w->b, HOARD_CF_VOLUMES, dst, strlen(dst), v, 8);
		hoard_batch_delete(w->b, HOARD_CF_DEFAULT, k, kl);
		w->res->records = w->written + hoard_batch_count(w->b);
		r = hoard_store_write(fs->st, w->b, false);
	}
	pthread_mutex_unlock(&fs->lock);
	lock_held(w->res, t0);
	if (r == 0) {
		begun = false; /* published */
		r = hoard_store_sync(fs->st);
	}
out:
	if (r < 0 && r != -ESTALE && errbuf && !*errbuf)
		hoard_errf(errbuf, errlen, r, "writing the clone: %s",
			   strerror(-r));
	if (begun) {
		int u = clone_undo(fs, dst, w->new_root, any ? &raised : NULL,
				   NULL);

		if (u < 0)
			hoard_log(LOG_ERR,
				  "could not undo the unfinished clone to "
				  "'%s': %s (the next start removes it)",
				  dst, strerror(-u));
	}
	return r;
}

int hoard_volume_clone(struct hoard_fs *fs, const char *src, const char *dst,
		       struct hoard_volume_result *res, char *errbuf,
		       size_t errlen)
{
	uint64_t t0 = hoard_now_mono_ns();
	double locked = 0, locked_max = 0;
	struct walk w;
	int r = -ESTALE;

	if (errbuf && errlen)
		*errbuf = '\0';
	if (!hoard_fs_volume_name_ok(src) || !hoard_fs_volume_name_ok(dst))
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "'%s' is not a volume name (1-64 of "
				  "A-Z a-z 0-9 . _ -, not starting with '.')",
				  hoard_fs_volume_name_ok(src) ? dst : src);
	for (int i = 0; r == -ESTALE && i <= CLONE_TRIES; i++) {
		r = walk_init(&w, fs, res);
		if (r == 0 && i < CLONE_TRIES) {
			r = clone_snap(&w, src, dst, errbuf, errlen);
		} else if (r == 0) {
			uint64_t t1 = hoard_now_mono_ns();

			hoard_log(LOG_INFO,
				  "clone of '%s': chunks freed under %d "
				  "snapshots; cloning under the lock",
				  src, CLONE_TRIES);
			pthread_mutex_lock(&fs->lock);
			r = clone_locked(&w, src, dst, errbuf, errlen);
			pthread_mutex_unlock(&fs->lock);
			lock_held(res, t1);
		}
		locked += res->locked_seconds;
		if (res->locked_max_seconds > locked_max)
			locked_max = res->locked_max_seconds;
		res->tries = (unsigned)i + 1;
		walk_clear(&w);
	}
	res->locked_seconds = locked;
	res->locked_max_seconds = locked_max;
	res->seconds = (double)(hoard_now_mono_ns() - t0) / 1e9;
	return r;
}

struct pending {
	char name[65];
	uint64_t root;
	bool any;		/* some references were raised ... */
	struct hoard_id raised; /* ... up to this id */
};

struct recover_ctx {
	struct pending *p;
	size_t n, cap;
};

static int recover_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		       size_t vl)
{
	struct recover_ctx *c = ud;
	struct hoard_id raised;
	struct pending *p;
	uint64_t root;
	bool any;

	if (kl <= CLONE_KEY_LEN || kl > CLONE_KEY_LEN + 64 ||
	    clone_rec_decode(v, vl, &root, &raised, &any) < 0)
		return 0; /* not ours: left alone */
	p = hoard_grow(c->p, &c->cap, c->n + 1, sizeof(*p), 4);
	if (!p)
		return -ENOMEM;
	c->p = p;
	p = &c->p[c->n++];
	memset(p, 0, sizeof(*p));
	memcpy(p->name, k + CLONE_KEY_LEN, kl - CLONE_KEY_LEN);
	p->root = root;
	p->any = any;
	if (any)
		p->raised = raised;
	return 0;
}

int hoard_volume_recover(struct hoard_fs *fs)
{
	struct recover_ctx c = {0};
	int r = hoard_store_scan(fs->st, HOARD_CF_DEFAULT, CLONE_KEY,
				 CLONE_KEY_LEN, recover_one, &c);

	for (size_t i = 0; r == 0 && i < c.n; i++) {
		struct pending *p = &c.p[i];
		uint64_t n = 0;

		r = clone_undo(fs, p->name, p->root, p->any ? &p->raised : NULL,
			       &n);
		hoard_log(r ? LOG_ERR : LOG_WARNING,
			  "recovery: %s the unfinished clone to volume '%s' "
			  "(%llu inodes)%s%s",
			  r ? "could not remove" : "removed", p->name,
			  (unsigned long long)n, r ? ": " : "",
			  r ? strerror(-r) : "");
	}
	free(c.p);
	return r ? r : volrm_recover(fs);
}

/* ---- JSON --------------------------------------------------------------- */

char *hoard_volume_result_json(const char *op, const char *name,
			       const struct hoard_volume_result *res)
{
	json_t *o = json_pack(
		"{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, "
		"s:i}",
		"op", op, "volume", name, "inodes", (json_int_t)res->inodes,
		"files", (json_int_t)res->files, "bytes",
		(json_int_t)res->bytes, "extents", (json_int_t)res->extents,
		"chunks", (json_int_t)res->chunks, "chunks_freed",
		(json_int_t)res->chunks_freed, "records",
		(json_int_t)res->records, "seconds", res->seconds,
		"locked_seconds", res->locked_seconds, "locked_max_seconds",
		res->locked_max_seconds, "tries", (int)res->tries);
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
