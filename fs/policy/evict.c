/* SPDX-License-Identifier: MIT */
/*
 * evict: the size budget (evict.h).
 *
 * A pass reads the store with iterators and no lock: the chunk records (for
 * stored bytes), the xattrs (pins), the directory entries (names of regular
 * files, parents of directories) and the inode records of the files (atime,
 * mtime).  Candidates are the files with no name under a pin, oldest use
 * first.  Each removal is then the core's hoard_core_evict_file (core.h),
 * which takes the core's lock for that one file: it checks that the file is
 * still closed and clean and its names still name it, counts what
 * unlinking it frees (chunks whose every reference is in this file), and
 * unlinks every name with the code of unlink(2).  The callback runs after
 * the lock is dropped.
 *
 * Why the daemon keeps recency itself: the kernel answers most reads of a
 * file kept in its page cache (keep_cache) without a request, and FUSE
 * never sends atime updates, so the inode's atime would not move.  An open
 * does reach the daemon, and a read needs an open, so open and release are
 * the uses counted.  Writing each use would be a write per open; the
 * in-memory time is stored (HOARD_USE_XATTR, not the atime, which belongs
 * to the user: utimensat sets it and a remount must not change it) at most
 * once per HOARD_EVICT_ATIME_GRAN_S per file, which is what ranks files
 * after a restart (to within that granularity).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hoard/core.h"
#include "hoard/evict.h"
#include "hoard/gc.h"
#include "hoard/htab.h"
#include "hoard/util.h"

#define POKE_INTERVAL_MS  1000 /* check at most this often after a poke */
#define FLUSH_INTERVAL_S  60   /* write pending atimes this often */
#define RETRY_INTERVAL_MS 1000 /* over budget after a pass: look again */
#define MAX_DEPTH	  4096 /* directory depth walked for pins */
#define TYPE_DIR	  (S_IFDIR >> 12)
#define TYPE_REG	  (S_IFREG >> 12)

/* ---- u64 -> u64 map (htab.h, load 1/2; a zeroed map is empty) ---- */

struct u64map {
	struct hoard_htab t; /* entries: struct u64ent */
};

struct u64ent {
	uint64_t k, v;
};

static uint64_t *m_get(const struct u64map *m, uint64_t k)
{
	struct u64ent *e = hoard_htab_get(&m->t, &k);

	return e ? &e->v : NULL;
}

static int m_put(struct u64map *m, uint64_t k, uint64_t v)
{
	struct u64ent *e;

	if (!m->t.esz) {
		m->t = HOARD_HTAB_INIT(sizeof(*e), sizeof(k), 50);
		m->t.min_cap = 64;
	}
	e = hoard_htab_put(&m->t, &k, NULL);
	if (!e)
		return -ENOMEM;
	e->v = v;
	return 0;
}

/* Walk: *pos = 0 first; false at the end. */
static bool m_next(const struct u64map *m, size_t *pos, uint64_t *k,
		   uint64_t *v)
{
	const struct u64ent *e = hoard_htab_next(&m->t, pos);

	if (!e)
		return false;
	*k = e->k;
	*v = e->v;
	return true;
}

static void m_free(struct u64map *m)
{
	hoard_htab_free(&m->t);
}

/* ---- state -------------------------------------------------------------- */

struct hoard_evict {
	struct hoard_fs *fs;
	hoard_evict_fn evicted;
	void *ud;
	pthread_mutex_t mu; /* protects the fields below */
	pthread_cond_t cv;
	struct u64map used;	 /* ino -> last use, ns since the epoch */
	struct u64map persisted; /* ino -> last use known to be stored */
	uint64_t max_bytes;
	unsigned low_pct;
	bool poked, stop, running;
	struct hoard_evict_counts counts;
	pthread_t thread;
	pthread_mutex_t pass_mu; /* one pass at a time */
	uint64_t warned_ns;	 /* protected by pass_mu: next warning */
	uint64_t check_ms; /* how long the last scan of stored bytes took */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t ts_ns(const struct timespec *ts)
{
	if (ts->tv_sec < 0)
		return 0;
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

int hoard_evict_new(struct hoard_fs *fs, const struct hoard_evict_opts *o,
		    struct hoard_evict **ret)
{
	struct hoard_evict *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return -ENOMEM;
	ev->fs = fs;
	ev->evicted = o ? o->evicted : NULL;
	ev->ud = o ? o->ud : NULL;
	ev->max_bytes = o ? o->max_bytes : 0;
	ev->low_pct = o && o->low_pct && o->low_pct <= 100
			      ? o->low_pct
			      : HOARD_EVICT_LOW_PCT;
	pthread_mutex_init(&ev->mu, NULL);
	pthread_mutex_init(&ev->pass_mu, NULL);
	pthread_cond_init(&ev->cv, NULL);
	*ret = ev;
	return 0;
}

void hoard_evict_touch(struct hoard_evict *ev, uint64_t ino)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->mu);
	m_put(&ev->used, ino, now_ns()); /* ENOMEM: the use is not counted */
	pthread_mutex_unlock(&ev->mu);
}

void hoard_evict_poke(struct hoard_evict *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->mu);
	ev->poked = true;
	pthread_mutex_unlock(&ev->mu);
}

void hoard_evict_set_budget(struct hoard_evict *ev, uint64_t max_bytes)
{
	pthread_mutex_lock(&ev->mu);
	ev->max_bytes = max_bytes;
	ev->poked = true;
	pthread_cond_signal(&ev->cv);
	pthread_mutex_unlock(&ev->mu);
}

void hoard_evict_get_counts(struct hoard_evict *ev,
			    struct hoard_evict_counts *ret)
{
	pthread_mutex_lock(&ev->mu);
	*ret = ev->counts;
	ret->max_bytes = ev->max_bytes;
	ret->low_bytes = ev->max_bytes / 100 * ev->low_pct +
			 ev->max_bytes % 100 * ev->low_pct / 100;
	pthread_mutex_unlock(&ev->mu);
}

/* ---- store-level figures ------------------------------------------------ */

int hoard_budget_get(struct hoard_store *st, uint64_t *ret)
{
	uint8_t v[8];
	size_t n;
	int r = hoard_store_get_into(st, HOARD_CF_DEFAULT, HOARD_MAX_SIZE_KEY,
				     strlen(HOARD_MAX_SIZE_KEY), v, sizeof(v),
				     &n);

	if (r == -ENOENT) {
		*ret = 0;
		return 0;
	}
	if (r < 0)
		return r == -ENOBUFS ? -EBADMSG : r;
	return setting_u64_decode(v, n, ret);
}

int hoard_budget_set(struct hoard_store *st, uint64_t max_bytes)
{
	struct hoard_batch *b = hoard_batch_new(st);
	uint8_t v[8];
	int r;

	if (!b)
		return -ENOMEM;
	hoard_put_be64(v, max_bytes);
	if (max_bytes)
		hoard_batch_put(b, HOARD_CF_DEFAULT, HOARD_MAX_SIZE_KEY,
				strlen(HOARD_MAX_SIZE_KEY), v, 8);
	else
		hoard_batch_delete(b, HOARD_CF_DEFAULT, HOARD_MAX_SIZE_KEY,
				   strlen(HOARD_MAX_SIZE_KEY));
	r = hoard_store_write(st, b, true);
	hoard_batch_free(b);
	return r;
}

/* Chunk record fields (FORMAT 2.3). */
static int chunk_fields(const uint8_t *v, size_t n, uint32_t *ret_frame,
			uint64_t *ret_refs)
{
	struct chunk_rec rec;
	int r = chunk_rec_decode(v, n, &rec);

	if (r < 0)
		return r;
	/* only local frames take space (a lazy chunk's are remote) */
	*ret_frame = (rec.flags & 1) ? rec.frame_size : 0;
	*ret_refs = rec.refcount;
	return 0;
}

int hoard_budget_stored_bytes(struct hoard_store *st, uint64_t *ret)
{
	struct hoard_iter *it = hoard_iter_new(st, HOARD_CF_CHUNKS, NULL, 0);
	uint64_t sum = 0, refs;
	uint32_t frame;
	size_t n;
	int r = 0;

	if (!it)
		return -ENOMEM;
	for (; hoard_iter_valid(it); hoard_iter_next(it)) {
		const uint8_t *v = hoard_iter_value(it, &n);

		if (chunk_fields(v, n, &frame, &refs) == 0 && refs > 0)
			sum += frame;
	}
	r = hoard_iter_status(it);
	hoard_iter_free(it);
	if (r == 0)
		*ret = sum;
	return r;
}

/* ---- the scan ----------------------------------------------------------- */

struct cand {
	uint64_t ino, when, volume;
	size_t first, count; /* its names in scan.names */
};

struct scan {
	struct u64map pins;	 /* ino -> 1 */
	struct u64map uses;	 /* ino -> stored last use (ns) */
	struct u64map dirparent; /* directory ino -> parent ino */
	struct u64map dirpinned; /* memo: directory ino -> 1 pinned, 2 not */
	struct hoard_core_name *names; /* names of regular files, sorted by ino */
	size_t n_names, cap_names;
	struct cand *cands;
	size_t n_cands;
};

static void scan_free(struct scan *s)
{
	m_free(&s->pins);
	m_free(&s->uses);
	m_free(&s->dirparent);
	m_free(&s->dirpinned);
	for (size_t i = 0; i < s->n_names; i++)
		free(s->names[i].name);
	free(s->names);
	free(s->cands);
	memset(s, 0, sizeof(*s));
}

static int scan_pins(struct hoard_store *st, struct scan *s)
{
	struct hoard_iter *it = hoard_iter_new(st, HOARD_CF_XATTRS, NULL, 0);
	const size_t pl = strlen(HOARD_PIN_XATTR), ul = strlen(HOARD_USE_XATTR);
	int r = 0;
	size_t n, vl;

	if (!it)
		return -ENOMEM;
	for (; r == 0 && hoard_iter_valid(it); hoard_iter_next(it)) {
		const uint8_t *k = hoard_iter_key(it, &n);
		const char *name;
		uint64_t ino, when;
		size_t nl;

		if (xattr_key_decode(k, n, &ino, &name, &nl) < 0)
			continue; /* fsck's business */
		if (nl == pl && !memcmp(name, HOARD_PIN_XATTR, pl)) {
			r = m_put(&s->pins, ino, 1);
		} else if (nl == ul && !memcmp(name, HOARD_USE_XATTR, ul)) {
			const uint8_t *v = hoard_iter_value(it, &vl);

			if (u64_val_decode(v, vl, &when) == 0)
				r = m_put(&s->uses, ino, when);
		}
	}
	if (r == 0)
		r = hoard_iter_status(it);
	hoard_iter_free(it);
	return r;
}

static int add_name(struct scan *s, uint64_t ino, uint64_t parent,
		    const char *name, size_t len)
{
	struct hoard_core_name *p = hoard_grow(s->names, &s->cap_names,
					       s->n_names + 1, sizeof(*p), 256);

	if (!p)
		return -ENOMEM;
	s->names = p;
	s->names[s->n_names].name = strndup(name, len);
	if (!s->names[s->n_names].name)
		return -ENOMEM;
	s->names[s->n_names].ino = ino;
	s->names[s->n_names].parent = parent;
	s->n_names++;
	return 0;
}

static int scan_dirents(struct hoard_store *st, struct scan *s)
{
	struct hoard_iter *it = hoard_iter_new(st, HOARD_CF_DIRENTS, NULL, 0);
	size_t kl, vl;
	int r = 0;

	if (!it)
		return -ENOMEM;
	for (; r == 0 && hoard_iter_valid(it); hoard_iter_next(it)) {
		const uint8_t *k = hoard_iter_key(it, &kl);
		const uint8_t *v = hoard_iter_value(it, &vl);
		uint64_t parent, child;
		const char *name;
		size_t nl;
		uint8_t type;

		if (dirent_key_decode(k, kl, &parent, &name, &nl) < 0 ||
		    dirent_decode(v, vl, &child, &type) < 0)
			continue; /* fsck's business */
		if (type == TYPE_DIR)
			r = m_put(&s->dirparent, child, parent);
		else if (type == TYPE_REG)
			r = add_name(s, child, parent, name, nl);
	}
	if (r == 0)
		r = hoard_iter_status(it);
	hoard_iter_free(it);
	return r;
}

/* A directory is pinned when it or a directory above it carries the pin. */
static bool dir_pinned(struct scan *s, uint64_t dir)
{
	uint64_t path[64], *p, d = dir;
	size_t n = 0;
	bool pinned = false;

	for (int depth = 0; d && depth < MAX_DEPTH; depth++) {
		p = m_get(&s->dirpinned, d);
		if (p) {
			pinned = *p == 1;
			break;
		}
		if (m_get(&s->pins, d)) {
			pinned = true;
			break;
		}
		if (n < sizeof(path) / sizeof(path[0]))
			path[n++] = d;
		p = m_get(&s->dirparent, d);
		d = p ? *p : 0;
	}
	for (size_t i = 0; i < n; i++)
		m_put(&s->dirpinned, path[i], pinned ? 1 : 2);
	return pinned;
}

static int name_cmp(const void *a, const void *b)
{
	const struct hoard_core_name *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->when != y->when)
		return x->when < y->when ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/*
 * Read pins and names; then, for each file: pinned (any name under a pin,
 * or the file itself) or a candidate with its recency.  used (may be NULL)
 * holds the daemon's in-memory last uses.  With want_pinned, the pinned
 * files are the candidates instead (for the pinned-bytes figure).
 */
static int scan_run(struct hoard_store *st, struct scan *s,
		    const struct u64map *used, bool want_pinned)
{
	uint8_t k[8], v[INODE_REC_MAX];
	size_t i, j, n;
	int r;

	r = scan_pins(st, s);
	if (r == 0)
		r = scan_dirents(st, s);
	if (r < 0)
		return r;
	if (s->n_names) /* qsort(NULL, 0, ...) is undefined */
		qsort(s->names, s->n_names, sizeof(*s->names), name_cmp);
	s->cands = calloc(s->n_names ? s->n_names : 1, sizeof(*s->cands));
	if (!s->cands)
		return -ENOMEM;
	for (i = 0; i < s->n_names; i = j) {
		struct hoard_inode in;
		bool pinned = m_get(&s->pins, s->names[i].ino) != NULL;
		struct cand *c;
		uint64_t when;
		const uint64_t *u;

		for (j = i;
		     j < s->n_names && s->names[j].ino == s->names[i].ino; j++)
			pinned = pinned || dir_pinned(s, s->names[j].parent);
		if (pinned != want_pinned)
			continue;
		ino_key(k, s->names[i].ino);
		r = hoard_store_get_into(st, HOARD_CF_INODES, k, 8, v,
					 sizeof(v), &n);
		if (r < 0 || inode_decode(v, n, &in) < 0 || !S_ISREG(in.mode) ||
		    in.nlink == 0)
			continue; /* a dangling name: fsck's business */
		when = ts_ns(&in.atime);
		if (ts_ns(&in.mtime) > when)
			when = ts_ns(&in.mtime);
		u = m_get(&s->uses, s->names[i].ino);
		if (u && *u > when)
			when = *u;
		u = used ? m_get(used, s->names[i].ino) : NULL;
		if (u && *u > when)
			when = *u;
		c = &s->cands[s->n_cands++];
		c->ino = s->names[i].ino;
		c->when = when;
		c->volume = in.volume;
		c->first = i;
		c->count = j - i;
	}
	qsort(s->cands, s->n_cands, sizeof(*s->cands), cand_cmp);
	return 0;
}

int hoard_budget_pinned_bytes(struct hoard_store *st, uint64_t *ret)
{
	struct scan s = {0};
	uint64_t *inos = NULL;
	int r;

	r = scan_run(st, &s, NULL, true);
	if (r == 0 && s.n_cands) {
		inos = malloc(s.n_cands * sizeof(*inos));
		if (!inos)
			r = -ENOMEM;
	}
	for (size_t i = 0; r == 0 && i < s.n_cands; i++)
		inos[i] = s.cands[i].ino;
	if (r == 0)
		r = hoard_core_files_frame_bytes(st, inos, s.n_cands, ret);
	free(inos);
	scan_free(&s);
	return r;
}

/* ---- removing one file -------------------------------------------------- */

/*
 * Remove every name of c's file unless it is open, dirty or changed since
 * the scan.  Returns the bytes freed (0 when skipped) and sets *ret_done.
 */
static uint64_t evict_one(struct hoard_evict *ev, struct scan *s,
			  const struct cand *c, bool *ret_done)
{
	bool removed[64] = {0};
	size_t count = c->count < 64 ? c->count : 64;
	uint64_t freed;

	freed = hoard_core_evict_file(ev->fs, c->ino, &s->names[c->first],
				      count, HOARD_PIN_XATTR, removed,
				      ret_done);
	if (!*ret_done)
		return 0;
	for (size_t i = 0; i < count; i++) {
		const struct hoard_core_name *fn = &s->names[c->first + i];

		if (removed[i] && ev->evicted)
			ev->evicted(ev->ud, c->volume, fn->parent, fn->ino,
				    fn->name);
	}
	return freed;
}

int hoard_evict_pass(struct hoard_evict *ev, uint64_t *ret_stored)
{
	struct hoard_store *st = hoard_fs_store(ev->fs);
	struct scan s = {0};
	struct u64map used = {0};
	uint64_t stored, max, low, k, v;
	uint64_t files = 0, bytes = 0, t0 = hoard_now_mono_ns(), longest = 0;
	int r = 0;

	pthread_mutex_lock(&ev->pass_mu);
	pthread_mutex_lock(&ev->mu);
	max = ev->max_bytes;
	pthread_mutex_unlock(&ev->mu);
	stored = 0;
	if (!max) /* no budget: no scan */
		goto out;
	r = hoard_budget_stored_bytes(st, &stored);
	if (r < 0)
		goto out;
	pthread_mutex_lock(&ev->mu);
	ev->check_ms = (hoard_now_mono_ns() - t0) / 1000000;
	max = ev->max_bytes;
	low = max / 100 * ev->low_pct + max % 100 * ev->low_pct / 100;
	if (max && stored > max) {
		ev->counts.passes++;
		/* a copy: touches go on while the pass runs */
		for (size_t pos = 0; r == 0 && m_next(&ev->used, &pos, &k, &v);)
			r = m_put(&used, k, v);
	}
	pthread_mutex_unlock(&ev->mu);
	if (r < 0 || !max || stored <= max)
		goto out;
	hoard_core_remote_refresh(ev->fs); /* what the remote holds */
	r = scan_run(st, &s, &used, false);
	for (size_t i = 0; r == 0 && i < s.n_cands && stored > low; i++) {
		uint64_t t1 = hoard_now_mono_ns(), freed;
		bool done;

		freed = evict_one(ev, &s, &s.cands[i], &done);
		t1 = hoard_now_mono_ns() - t1;
		if (t1 > longest)
			longest = t1;
		if (!done)
			continue;
		files++;
		bytes += freed;
		stored = freed < stored ? stored - freed : 0;
		pthread_mutex_lock(&ev->mu);
		ev->counts.files++;
		ev->counts.bytes += freed;
		if (ev->stop) {
			pthread_mutex_unlock(&ev->mu);
			break;
		}
		pthread_mutex_unlock(&ev->mu);
	}
	if (files)
		hoard_log(LOG_INFO,
			  "evict: removed %llu file(s), %llu bytes freed; "
			  "stored bytes now about %llu (budget %llu); "
			  "pass took %llu ms, the longest file %llu us",
			  (unsigned long long)files, (unsigned long long)bytes,
			  (unsigned long long)stored, (unsigned long long)max,
			  (unsigned long long)((hoard_now_mono_ns() - t0) /
					       1000000),
			  (unsigned long long)(longest / 1000));
	else if (stored > low && hoard_now_mono_ns() >= ev->warned_ns) {
		ev->warned_ns = hoard_now_mono_ns() + 60000000000ull;
		hoard_log(LOG_WARNING,
			  "evict: stored bytes %llu over the budget %llu, "
			  "and nothing more can be removed (open, pinned)",
			  (unsigned long long)stored, (unsigned long long)max);
	}
out:
	pthread_mutex_unlock(&ev->pass_mu);
	scan_free(&s);
	m_free(&used);
	if (r == 0 && ret_stored)
		*ret_stored = stored;
	return r;
}

/* ---- atimes ------------------------------------------------------------- */

/*
 * Forget in-memory uses that the inode's atime stands for: written exactly,
 * or within a granule of it and older than a granule (ranking by the atime
 * then errs by less than the granule, as after a restart).  Keeps the maps
 * to about the files used in the last granule.
 */
static void prune(struct hoard_evict *ev, uint64_t gran)
{
	struct u64map used = {0}, persisted = {0};
	uint64_t now = now_ns(), k, v;
	int r = 0;

	pthread_mutex_lock(&ev->mu);
	for (size_t pos = 0; r == 0 && m_next(&ev->used, &pos, &k, &v);) {
		const uint64_t *p = m_get(&ev->persisted, k);

		if (p && (v == *p || (v < *p + gran && v + gran < now)))
			continue;
		r = m_put(&used, k, v);
		if (r == 0 && p)
			r = m_put(&persisted, k, *p);
	}
	if (r == 0) {
		m_free(&ev->used);
		m_free(&ev->persisted);
		ev->used = used;
		ev->persisted = persisted;
	} else {
		m_free(&used);
		m_free(&persisted);
	}
	pthread_mutex_unlock(&ev->mu);
}

/* Store last uses, at most once per granule per file. */
static void flush_atimes(struct hoard_evict *ev)
{
	const uint64_t gran = (uint64_t)HOARD_EVICT_ATIME_GRAN_S *
			      1000000000ull;
	struct hoard_fs *fs = ev->fs;
	struct u64map todo = {0};
	uint64_t ino, use;

	pthread_mutex_lock(&ev->mu);
	for (size_t pos = 0; m_next(&ev->used, &pos, &ino, &use);) {
		uint64_t *p = m_get(&ev->persisted, ino);

		if (!p || use >= *p + gran)
			m_put(&todo, ino, use);
	}
	pthread_mutex_unlock(&ev->mu);
	for (size_t pos = 0; m_next(&todo, &pos, &ino, &use);) {
		uint64_t have = hoard_core_store_use(fs, ino, HOARD_USE_XATTR,
						     use, gran);

		if (have == UINT64_MAX)
			continue; /* busy or gone */
		pthread_mutex_lock(&ev->mu);
		m_put(&ev->persisted, ino, have);
		pthread_mutex_unlock(&ev->mu);
	}
	m_free(&todo);
	prune(ev, gran);
}

/* ---- blob garbage collection -------------------------------------------- */

/*
 * Deleted chunk frames stay in their blob files until a compaction with blob
 * GC relocates the live frames around them.  RocksDB's own GC during every
 * compaction (enable_blob_garbage_collection) relocates the live blobs of
 * the oldest files whether they hold garbage or not, which rewrote ~60% of
 * the data once more on ingest; so it is off (store.c), and this thread runs
 * the full GC of `hoard gc` once frames deleted since the last one are both
 * AUTO_GC_MIN bytes and a quarter of the blob files.  The count starts at 0
 * when the daemon starts: garbage left by an earlier run waits for the next
 * trigger or for `hoard gc`.
 */
#define AUTO_GC_MIN (256ull << 20)

static void maybe_blob_gc(struct hoard_fs *fs)
{
	uint64_t garbage, total;
	struct hoard_gc_report rep;
	int r;

	garbage = hoard_core_garbage_bytes(fs);
	if (garbage < AUTO_GC_MIN)
		return;
	total = hoard_store_cf_size(hoard_fs_store(fs), HOARD_CF_CHUNKDATA);
	if (garbage * 4 < total)
		return;
	r = hoard_gc_run(hoard_fs_store(fs), &rep);
	if (r < 0) {
		hoard_log(LOG_WARNING, "automatic blob gc: %s", strerror(-r));
		return;
	}
	hoard_core_garbage_done(fs, garbage); /* the rest stays counted */
	hoard_log(LOG_INFO,
		  "automatic blob gc: %llu bytes of deleted frames; disk use "
		  "%llu -> %llu bytes in %.1f s",
		  (unsigned long long)garbage,
		  (unsigned long long)rep.disk_before,
		  (unsigned long long)rep.disk_after, rep.seconds);
}

/* ---- the thread --------------------------------------------------------- */

static void *evict_thread(void *arg)
{
	struct hoard_evict *ev = arg;
	uint64_t last_flush = hoard_now_mono_ns(), stored, max;
	uint64_t gap_ms = POKE_INTERVAL_MS;
	bool again = false;

	pthread_mutex_lock(&ev->mu);
	while (!ev->stop) {
		uint64_t ms = again ? RETRY_INTERVAL_MS : gap_ms;
		struct timespec ts = hoard_deadline(CLOCK_REALTIME,
						    ms * 1000000);

		pthread_cond_timedwait(&ev->cv, &ev->mu, &ts);
		if (ev->stop)
			break;
		if (ev->poked || again) {
			uint64_t before = ev->counts.files;

			ev->poked = false;
			pthread_mutex_unlock(&ev->mu);
			stored = 0;
			again = hoard_evict_pass(ev, &stored) == 0;
			pthread_mutex_lock(&ev->mu);
			/* the check scans the chunk records: on a large
			 * store, look less often, so that checking costs at
			 * most about 5% of a core (removals do not count:
			 * they are the work to do) */
			gap_ms = ev->check_ms * 20 > POKE_INTERVAL_MS
					 ? ev->check_ms * 20
					 : POKE_INTERVAL_MS;
			max = ev->max_bytes;
			/* still over after removing some (the rest may wait
			 * for the kernel's forget): look again soon */
			again = again && max && stored > max &&
				ev->counts.files > before;
		}
		pthread_mutex_unlock(&ev->mu);
		maybe_blob_gc(ev->fs);
		pthread_mutex_lock(&ev->mu);
		if (hoard_now_mono_ns() - last_flush >=
		    FLUSH_INTERVAL_S * 1000000000ull) {
			pthread_mutex_unlock(&ev->mu);
			flush_atimes(ev);
			last_flush = hoard_now_mono_ns();
			pthread_mutex_lock(&ev->mu);
		}
	}
	pthread_mutex_unlock(&ev->mu);
	return NULL;
}

int hoard_evict_start(struct hoard_evict *ev)
{
	int r = pthread_create(&ev->thread, NULL, evict_thread, ev);

	if (r)
		return -r;
	ev->running = true;
	return 0;
}

void hoard_evict_free(struct hoard_evict *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->mu);
	ev->stop = true;
	pthread_cond_signal(&ev->cv);
	pthread_mutex_unlock(&ev->mu);
	if (ev->running)
		pthread_join(ev->thread, NULL);
	flush_atimes(ev);
	m_free(&ev->used);
	m_free(&ev->persisted);
	pthread_cond_destroy(&ev->cv);
	pthread_mutex_destroy(&ev->mu);
	pthread_mutex_destroy(&ev->pass_mu);
	free(ev);
}
