/* SPDX-License-Identifier: MIT */
/*
 * volrm: remove a whole volume (hoard_volume_remove, volume.h) without
 * holding fs->lock for its walk, and finish a removal a crash
 * interrupted (volrm_recover, from hoard_volume_recover).
 *
 *   1. Under fs->lock: the volume's root, a RocksDB snapshot.
 *   2. No lock: walk the snapshot breadth first from the root, listing
 *      every inode once (hard links) in the order first reached.
 *   3. Under fs->lock: the volume still has that root, no inode of the
 *      list is open (-EBUSY: nothing removed); one synced batch deletes
 *      the volume's row and writes the settings key `rm.NAME` -> root
 *      (docs/FORMAT.md 2.1).  From here the volume is not listed and
 *      nothing reaches its inodes (the daemon mounts no volume being
 *      removed; a mount of the name after it makes a new volume).
 *   4. The list in inode-number order, at most RM_BATCH inodes or
 *      RM_HOLD_NS per hold of fs->lock, as the store is then: each
 *      inode's extents counted down, its xattrs, record, orphan row and
 *      (a directory) its entries deleted, the chunks that lost their
 *      last reference freed (chunks_apply_locked), one batch per hold.
 *      An inode gone meanwhile (evicted) is skipped.  (In number order,
 *      the scans past an inode's rows meet the next inode's live rows,
 *      not the tombstones of those just deleted: backwards, each scan
 *      walked them all.)
 *   5. The key deleted, synced.
 *
 * Crash safety: every inode records its volume's root (FORMAT 2), and an
 * inode goes in one batch with all its rows.  The next start finds the
 * key, lists the inodes whose volume is that root (a scan of every inode
 * record: only after a crash) and does 4 and 5: the removal is finished,
 * never half left.
 *
 * Threads: as volume.h says; the lists and maps are the caller's own.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hoard/util.h"
#include "hoard/volume.h"
#include "fs-internal.h"

/* Inodes removed per hold of fs->lock, at most; a hold also ends after
 * RM_HOLD_NS.  Between two holds the removal sleeps RM_GAP_NS, so that
 * the threads waiting for the lock get it (a mutex is not fair: one
 * unlock-lock after another would starve them). */
#define RM_BATCH   512
#define RM_HOLD_NS (10 * 1000 * 1000)
#define RM_GAP_NS  (1000 * 1000)
/* Settings key of a removal under way: "rm." + NAME -> its root, u64. */
#define RM_KEY	   "rm."
#define RM_KEY_LEN 3

struct rm_ent {
	uint64_t ino;
	bool dir;
};

struct rm {
	struct hoard_fs *fs;
	struct hoard_volume_result *res;
	struct rm_ent *list;
	size_t n, cap;
	struct idmap seen;   /* inodes listed */
	struct idmap chunks; /* distinct chunks counted down */
	struct hoard_iter *dir_it;
	/* during one hold of fs->lock: the store as it is (a new iterator
	 * per inode cost more than the removing) */
	struct hoard_iter *xat_now, *dir_now;
};

/* An inode number as an idmap key (as volume.c's). */
static void ino_id(uint64_t ino, struct hoard_id *id)
{
	memset(id, 0, sizeof(*id));
	ino_key(id->b, ino);
	id->b[15] = 1;
}

static size_t rm_key(char *k, const char *name)
{
	size_t n = strlen(name);

	memcpy(k, RM_KEY, RM_KEY_LEN);
	memcpy(k + RM_KEY_LEN, name, n);
	return RM_KEY_LEN + n;
}

static void held(struct hoard_volume_result *res, uint64_t t0)
{
	double s = (double)(hoard_now_mono_ns() - t0) / 1e9;

	res->locked_seconds += s;
	if (s > res->locked_max_seconds)
		res->locked_max_seconds = s;
}

/*
 * Tests only: HOARD_TEST_RM_PAUSE_MS=N makes a removal wait N ms after
 * its first batch of inodes (logged "rm: pausing"), so a test can kill
 * the daemon there; HOARD_TEST_RM_BATCH=N removes N inodes per batch.
 */
static void test_pause(void)
{
	const char *p = getenv("HOARD_TEST_RM_PAUSE_MS");
	long ms = p ? strtol(p, NULL, 10) : 0;

	if (ms <= 0 || ms > 60000)
		return;
	hoard_log(LOG_INFO, "rm: pausing %ld ms", ms);
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

static size_t rm_batch(void)
{
	const char *p = getenv("HOARD_TEST_RM_BATCH");
	long n = p ? strtol(p, NULL, 10) : 0;

	return n > 0 ? (size_t)n : RM_BATCH;
}

static int list_add(struct rm *m, uint64_t ino, bool dir)
{
	struct idmap_ent *e;
	struct hoard_id key;
	struct rm_ent *l;

	ino_id(ino, &key);
	e = idmap_add(&m->seen, &key);
	if (!e)
		return -ENOMEM;
	if (e->count++)
		return 0; /* another name of it */
	l = hoard_grow(m->list, &m->cap, m->n + 1, sizeof(*l), 1024);
	if (!l)
		return -ENOMEM;
	m->list = l;
	m->list[m->n++] = (struct rm_ent){.ino = ino, .dir = dir};
	return 0;
}

/* 2: every inode reachable from root, at snap (NULL: the store as it is). */
static int rm_walk(struct rm *m, uint64_t root,
		   const struct hoard_snapshot *snap)
{
	int r;

	m->dir_it = hoard_iter_new_at(m->fs->st, HOARD_CF_DIRENTS, "", 0, snap);
	if (!m->dir_it)
		return -ENOMEM;
	r = list_add(m, root, true);
	for (size_t i = 0; r == 0 && i < m->n; i++) {
		struct hoard_iter *it = m->dir_it;
		uint8_t k[8];

		if (!m->list[i].dir)
			continue;
		ino_key(k, m->list[i].ino);
		for (hoard_iter_seek(it, k, 8); r == 0 && hoard_iter_valid(it);
		     hoard_iter_next(it)) {
			size_t kl, vl;
			const uint8_t *key = hoard_iter_key(it, &kl), *v;
			uint64_t child;
			uint8_t type;

			if (kl < 8 || memcmp(key, k, 8))
				break;
			v = hoard_iter_value(it, &vl);
			if (kl == 8 || dirent_decode(v, vl, &child, &type) < 0)
				r = -EBADMSG;
			else
				r = list_add(m, child, type == (S_IFDIR >> 12));
		}
		if (r == 0)
			r = hoard_iter_status(it);
	}
	return r;
}

struct del_ctx {
	struct hoard_batch *b;
	enum hoard_cf cf;
};

/* Delete into d->b every row of it whose key starts with the 8 bytes k. */
static int del_rows(struct hoard_iter *it, const uint8_t k[8],
		    struct del_ctx *d)
{
	for (hoard_iter_seek(it, k, 8); hoard_iter_valid(it);
	     hoard_iter_next(it)) {
		size_t kl;
		const uint8_t *key = hoard_iter_key(it, &kl);

		if (kl < 8 || memcmp(key, k, 8))
			break;
		hoard_batch_delete(d->b, d->cf, key, kl);
	}
	return hoard_iter_status(it);
}

/* One inode's records into b, its extents' references into deltas
 * (fs->lock held); an inode gone meanwhile is skipped. */
static int rm_inode_locked(struct rm *m, const struct rm_ent *e,
			   struct hoard_batch *b, struct idmap *deltas)
{
	struct hoard_fs *fs = m->fs;
	struct del_ctx d = {.b = b};
	struct hoard_inode in;
	uint8_t k[8];
	int r = inode_load(fs, e->ino, &in);

	ino_key(k, e->ino);
	if (r == -ENOENT) {
		r = 0;
	} else if (r == 0) {
		m->res->inodes++;
		if (S_ISREG(in.mode)) {
			m->res->files++;
			m->res->bytes += in.size;
		}
		inode_clear(&in);
		r = extents_count(fs, e->ino, deltas, -1, b);
		hoard_batch_delete(b, HOARD_CF_INODES, k, 8);
		istate_uncache(fs, e->ino);
		hoard_batch_delete(b, HOARD_CF_ORPHANS, k, 8);
		d.cf = HOARD_CF_XATTRS;
		if (r == 0)
			r = del_rows(m->xat_now, k, &d);
	}
	d.cf = HOARD_CF_DIRENTS;
	if (r == 0 && e->dir)
		r = del_rows(m->dir_now, k, &d);
	return r;
}

/* The figures of a batch's reference changes (fs->lock held). */
static int rm_count_locked(struct rm *m, const struct idmap *deltas)
{
	for (const struct idmap_ent *d = NULL; (d = idmap_next(deltas, d));) {
		struct chunk_rec rec;
		struct idmap_ent *c;

		if (!d->count)
			continue;
		c = idmap_add(&m->chunks, &d->id);
		if (!c)
			return -ENOMEM;
		if (!c->count++)
			m->res->chunks++;
		m->res->extents += (uint64_t)-d->count;
		if (chunk_rec_load(m->fs, &d->id, &rec) == 0 &&
		    rec.refcount <= (uint64_t)-d->count)
			m->res->chunks_freed++;
	}
	return 0;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct rm_ent *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* 4 and 5: the list in number order, in batches; then the key. */
static int rm_apply(struct rm *m, const char *k, size_t kl)
{
	struct hoard_fs *fs = m->fs;
	size_t per = rm_batch(), i = 0;
	bool paused = false;
	int r = 0;

	if (m->n)
		qsort(m->list, m->n, sizeof(*m->list), ent_cmp);
	while (r == 0) {
		struct hoard_batch *b = hoard_batch_new(fs->st);
		struct idmap deltas;
		bool last;
		uint64_t t0;

		if (!b)
			return -ENOMEM;
		if (idmap_init(&deltas, 256) < 0) {
			hoard_batch_free(b);
			return -ENOMEM;
		}
		t0 = hoard_now_mono_ns();
		pthread_mutex_lock(&fs->lock);
		m->xat_now = hoard_iter_new(fs->st, HOARD_CF_XATTRS, "", 0);
		m->dir_now = hoard_iter_new(fs->st, HOARD_CF_DIRENTS, "", 0);
		if (!m->xat_now || !m->dir_now)
			r = -ENOMEM;
		for (size_t j = 0; r == 0 && j < per && i < m->n; j++) {
			r = rm_inode_locked(m, &m->list[i++], b, &deltas);
			if (hoard_now_mono_ns() - t0 > RM_HOLD_NS)
				break;
		}
		last = i == m->n;
		if (r == 0)
			r = rm_count_locked(m, &deltas);
		if (r == 0)
			r = chunks_apply_locked(fs, b, &deltas);
		if (r == 0 && last)
			hoard_batch_delete(b, HOARD_CF_DEFAULT, k, kl);
		if (r == 0) {
			m->res->records += hoard_batch_count(b);
			r = hoard_store_write(fs->st, b, last);
		}
		hoard_iter_free(m->xat_now);
		hoard_iter_free(m->dir_now);
		m->xat_now = m->dir_now = NULL;
		pthread_mutex_unlock(&fs->lock);
		held(m->res, t0);
		idmap_free(&deltas);
		hoard_batch_free(b);
		if (last)
			break;
		if (!paused) {
			paused = true;
			test_pause();
		}
		nanosleep(&(struct timespec){0, RM_GAP_NS}, NULL);
	}
	return r;
}

static int rm_init(struct rm *m, struct hoard_fs *fs,
		   struct hoard_volume_result *res)
{
	memset(m, 0, sizeof(*m));
	m->fs = fs;
	m->res = res;
	if (idmap_init(&m->seen, 1024) < 0 || idmap_init(&m->chunks, 1024) < 0)
		return -ENOMEM;
	return 0;
}

static void rm_clear(struct rm *m)
{
	hoard_iter_free(m->dir_it);
	idmap_free(&m->seen);
	idmap_free(&m->chunks);
	free(m->list);
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

/* 1: the root and a snapshot (fs->lock held). */
static int rm_begin_locked(struct rm *m, const char *name, const char *k,
			   size_t kl, uint64_t *ret_root,
			   struct hoard_snapshot **ret_snap, char *errbuf,
			   size_t errlen)
{
	struct hoard_fs *fs = m->fs;
	int r = volume_root_locked(fs, name, ret_root);

	if (r == -ENOENT)
		return hoard_errf(errbuf, errlen, r, "there is no volume '%s'",
				  name);
	if (r < 0)
		return hoard_errf(errbuf, errlen, r, "volume '%s': %s", name,
				  strerror(-r));
	if (hoard_store_exists(fs->st, HOARD_CF_DEFAULT, k, kl) == 1)
		return hoard_errf(errbuf, errlen, -EBUSY,
				  "a removal of an earlier volume '%s' is "
				  "under way",
				  name);
	*ret_snap = hoard_store_snapshot(fs->st);
	return *ret_snap ? 0 : -ENOMEM;
}

/* 3: still the same root, nothing open: unlist it, the key (fs->lock
 * held). */
static int rm_commit_locked(struct rm *m, const char *name, uint64_t root,
			    const char *k, size_t kl, char *errbuf,
			    size_t errlen)
{
	struct hoard_fs *fs = m->fs;
	struct hoard_batch *b;
	uint64_t now = 0;
	uint8_t v[8];
	int r;

	if (volume_root_locked(fs, name, &now) < 0 || now != root)
		return hoard_errf(errbuf, errlen, -ENOENT,
				  "volume '%s' was removed meanwhile", name);
	for (size_t i = 0; i < m->n; i++) {
		/* Lookups alone do not count: a mount that is gone may
		 * leave some the kernel never forgot; the daemon refuses
		 * a mounted volume itself. */
		struct istate *is = istate_find(fs, m->list[i].ino);

		if (is && is->opens)
			return hoard_errf(errbuf, errlen, -EBUSY,
					  "volume '%s' is in use (mounted, or "
					  "a file of it is open): nothing was "
					  "removed",
					  name);
	}
	b = hoard_batch_new(fs->st);
	if (!b)
		return -ENOMEM;
	u64_val_encode(v, root);
	hoard_batch_delete(b, HOARD_CF_VOLUMES, name, strlen(name));
	hoard_batch_put(b, HOARD_CF_DEFAULT, k, kl, v, 8);
	r = hoard_store_write(fs->st, b, true);
	hoard_batch_free(b);
	if (r < 0)
		hoard_errf(errbuf, errlen, r, "removing volume '%s': %s", name,
			   strerror(-r));
	return r;
}

int hoard_volume_remove(struct hoard_fs *fs, const char *name,
			struct hoard_volume_result *res, char *errbuf,
			size_t errlen)
{
	uint64_t t0 = hoard_now_mono_ns(), t1, root = 0;
	struct hoard_snapshot *snap = NULL;
	char k[RM_KEY_LEN + 65];
	size_t kl;
	struct rm m;
	int r;

	if (errbuf && errlen)
		*errbuf = '\0';
	memset(res, 0, sizeof(*res));
	if (!hoard_fs_volume_name_ok(name))
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "'%s' is not a volume name", name);
	kl = rm_key(k, name);
	r = rm_init(&m, fs, res);
	if (r == 0) {
		t1 = hoard_now_mono_ns();
		pthread_mutex_lock(&fs->lock);
		r = rm_begin_locked(&m, name, k, kl, &root, &snap, errbuf,
				    errlen);
		pthread_mutex_unlock(&fs->lock);
		held(res, t1);
	}
	if (r == 0) {
		r = rm_walk(&m, root, snap);
		if (r < 0)
			hoard_errf(errbuf, errlen, r, "reading volume '%s': %s",
				   name, strerror(-r));
	}
	if (r == 0) {
		t1 = hoard_now_mono_ns();
		pthread_mutex_lock(&fs->lock);
		r = rm_commit_locked(&m, name, root, k, kl, errbuf, errlen);
		pthread_mutex_unlock(&fs->lock);
		held(res, t1);
	}
	if (r == 0) {
		r = rm_apply(&m, k, kl);
		if (r < 0) /* the volume is gone: the next start finishes */
			hoard_errf(errbuf, errlen, r,
				   "removing volume '%s': %s (the next start "
				   "finishes it)",
				   name, strerror(-r));
	}
	hoard_iter_free(m.dir_it);
	m.dir_it = NULL;
	hoard_store_snapshot_free(fs->st, snap);
	rm_clear(&m);
	res->tries = 1;
	res->seconds = (double)(hoard_now_mono_ns() - t0) / 1e9;
	return r;
}

/* ---- recovery ------------------------------------------------------------ */

struct pending {
	char name[65];
	uint64_t root;
};

struct recover_ctx {
	struct pending *p;
	size_t n, cap;
};

static int recover_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		       size_t vl)
{
	struct recover_ctx *c = ud;
	struct pending *p;
	uint64_t root;

	if (kl <= RM_KEY_LEN || kl > RM_KEY_LEN + 64 ||
	    u64_val_decode(v, vl, &root) < 0)
		return 0; /* not ours: left alone */
	p = hoard_grow(c->p, &c->cap, c->n + 1, sizeof(*p), 4);
	if (!p)
		return -ENOMEM;
	c->p = p;
	p = &c->p[c->n++];
	memset(p, 0, sizeof(*p));
	memcpy(p->name, k + RM_KEY_LEN, kl - RM_KEY_LEN);
	p->root = root;
	return 0;
}

struct left_ctx {
	struct rm *m;
	uint64_t root;
};

static int left_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		    size_t vl)
{
	struct left_ctx *c = ud;
	struct hoard_inode in;
	uint64_t ino;
	bool mine, dir;

	if (ino_key_decode(k, kl, &ino) < 0 || inode_decode(v, vl, &in) < 0)
		return 0; /* fsck's to report */
	mine = in.volume == c->root;
	dir = S_ISDIR(in.mode);
	inode_clear(&in);
	return mine ? list_add(c->m, ino, dir) : 0;
}

/* After a crash: the inodes of the volume whose root was root that are
 * left (a scan of every inode record). */
static int rm_left(struct rm *m, uint64_t root)
{
	struct left_ctx c = {.m = m, .root = root};

	return hoard_store_scan(m->fs->st, HOARD_CF_INODES, "", 0, left_one,
				&c);
}

int volrm_recover(struct hoard_fs *fs)
{
	struct recover_ctx c = {0};
	int r = hoard_store_scan(fs->st, HOARD_CF_DEFAULT, RM_KEY, RM_KEY_LEN,
				 recover_one, &c);

	for (size_t i = 0; r == 0 && i < c.n; i++) {
		struct hoard_volume_result res = {0};
		char k[RM_KEY_LEN + 65];
		size_t kl = rm_key(k, c.p[i].name);
		struct rm m;

		r = rm_init(&m, fs, &res);
		if (r == 0)
			r = rm_left(&m, c.p[i].root);
		if (r == 0)
			r = rm_apply(&m, k, kl);
		rm_clear(&m);
		hoard_log(r ? LOG_ERR : LOG_WARNING,
			  "recovery: %s the removal of volume '%s' (%llu "
			  "inodes left, %llu chunks freed)%s%s",
			  r ? "could not finish" : "finished", c.p[i].name,
			  (unsigned long long)res.inodes,
			  (unsigned long long)res.chunks_freed, r ? ": " : "",
			  r ? strerror(-r) : "");
	}
	free(c.p);
	return r;
}
