/* SPDX-License-Identifier: MIT */
/*
 * dentpf: directory entries read ahead for a LOOKUP walk of a directory
 * (docs/BENCHMARKS.md, "cold stat").
 *
 * Stat-ing the names of a directory one by one without listing it (find
 * with a name list, a build's stat of its sources, `hoard-bench
 * statfiles`) costs one RocksDB point read per LOOKUP: ~12k instructions,
 * and on a cold daemon a small disk read for most table blocks.  When a
 * directory has had DPF_TRIGGER + 1 LOOKUPs of names that exist outside
 * any window (one of a name that does not exist starts the count again),
 * the last of them, after its point read, also reads the entries from its
 * name on with one iterator (each table DPF_AHEAD bytes at a time) into
 * a window, and the LOOKUPs that follow are answered from it, present or
 * absent, while it covers their names.  The first LOOKUP past the end of
 * a window the walk mostly used reads the next window at once.  A
 * directory's scans also have the kernel read the table files holding
 * its entries into the page cache, at most once a second (DPF_PF_*,
 * fs/store/storepf.c): on a cold page cache a walk of many directories
 * then waits for a few large reads, not a small one per directory and
 * table.
 *
 * Coherence: a window is used only while hoard_store_dent_writes() is the
 * count read before its iterator was made, so any write of any directory
 * entry since (an entry added, removed, renamed, or a copy of a record
 * rewritten by inode_put) drops every window.  A window is a read of the
 * store as of that count, as the point read it replaces would be.
 *
 * Bounded: DPF_DIRS directories, DPF_BYTES of entries in all; a window
 * holds DPF_MIN..DPF_MAX entries, doubling while its entries are used and
 * shrinking when they are not; negative LOOKUPs (a create's) start none.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hoard/records.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "fs-internal.h"

#define DPF_DIRS  256
#define DPF_WAYS  4
#define DPF_BYTES (8u << 20)
#define DPF_MIN	  16
#define DPF_MAX	  256
/* positive LOOKUPs outside a window before a directory's next scan */
#define DPF_TRIGGER 2
/* A scan reads each table 64 KiB at a time (RocksDB's iterator
 * readahead; its own starts at 8 KiB after two blocks, which a window
 * rarely reaches): half the disk reads of a cold walk. */
#define DPF_AHEAD (64u << 10)
/* scans off for a directory: re-tried after this many LOOKUPs */
#define DPF_RETRY 256
/* A directory's scans also have the kernel read (asynchronously) the
 * table files that hold its entries, each of at most DPF_PF_FILE bytes,
 * DPF_PF_TOTAL in all, again after DPF_PF_AGAIN (storepf.c): a walk of
 * many directories then waits for one large read instead of a small one
 * per directory and table. */
#define DPF_PF_FILE  (16ull << 20)
#define DPF_PF_TOTAL (32ull << 20)
#define DPF_PF_AGAIN 1000000000ull /* ns */

struct dpf_ent {
	uint32_t name; /* offsets into buf */
	uint32_t val;
	uint16_t nlen, vlen;
};

struct dpf_dir {
	uint64_t parent; /* 0: free slot */
	uint64_t gen;	 /* hoard_store_dent_writes before the scan */
	uint64_t used;	 /* LRU tick */
	struct dpf_ent *ents;
	size_t n;
	uint8_t *buf;
	size_t bytes;
	/* the window covers names >= lo, and <= the last entry's unless
	 * to_end (it reached the directory's last entry) */
	char lo[NAME_MAX_LEN];
	uint16_t lo_len;
	bool window, to_end, scanning;
	uint32_t hits;	   /* LOOKUPs the window answered */
	uint32_t next;	   /* the entry after the last one answered: a walk
			    * in key order asks for it next */
	uint32_t misses;   /* positive LOOKUPs outside it since */
	uint32_t want;	   /* entries of the next scan; 0: scans off */
	uint32_t off_left; /* when off: LOOKUPs until the next try */
	uint64_t pf_at;	   /* CLOCK_MONOTONIC ns of its tables' read ahead */
};

struct dent_pf {
	pthread_mutex_t mu;
	struct dpf_dir dirs[DPF_DIRS];
	size_t bytes; /* held by all windows */
	uint64_t tick;
	uint64_t scans, hits; /* counted for tests and stats */
	uint64_t pf_bytes;    /* table bytes advised (storepf.c) */
};

int dentpf_new(struct dent_pf **ret)
{
	struct dent_pf *pf = calloc(1, sizeof(*pf));

	if (!pf)
		return -ENOMEM;
	pthread_mutex_init(&pf->mu, NULL);
	*ret = pf;
	return 0;
}

static void window_drop(struct dent_pf *pf, struct dpf_dir *d)
{
	free(d->ents);
	free(d->buf);
	pf->bytes -= d->bytes;
	d->ents = NULL;
	d->buf = NULL;
	d->n = d->bytes = 0;
	d->window = d->to_end = false;
}

void dentpf_free(struct dent_pf *pf)
{
	if (!pf)
		return;
	for (size_t i = 0; i < DPF_DIRS; i++)
		window_drop(pf, &pf->dirs[i]);
	pthread_mutex_destroy(&pf->mu);
	free(pf);
}

/* Byte order of the keys (the store's comparator): memcmp, then length. */
static int name_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al > bl) - (al < bl);
}

/* A directory's slot is one of the DPF_WAYS of its set. */
static size_t dir_set(uint64_t parent)
{
	return (size_t)((parent * 0x9e3779b97f4a7c15ull) >> 40) %
	       (DPF_DIRS / DPF_WAYS) * DPF_WAYS;
}

static struct dpf_dir *dir_find(struct dent_pf *pf, uint64_t parent)
{
	size_t set = dir_set(parent);

	for (size_t i = set; i < set + DPF_WAYS; i++) {
		if (pf->dirs[i].parent == parent)
			return &pf->dirs[i];
	}
	return NULL;
}

/* A slot for parent in its set: a free one, else the least recently used
 * (not one being scanned). */
static struct dpf_dir *dir_take(struct dent_pf *pf, uint64_t parent)
{
	size_t set = dir_set(parent);
	struct dpf_dir *d = NULL;

	for (size_t i = set; i < set + DPF_WAYS; i++) {
		struct dpf_dir *c = &pf->dirs[i];

		if (c->scanning)
			continue;
		if (!c->parent) {
			d = c;
			break;
		}
		if (!d || c->used < d->used)
			d = c;
	}
	if (!d)
		return NULL;
	window_drop(pf, d);
	memset(d, 0, sizeof(*d));
	d->parent = parent;
	d->want = DPF_MIN;
	return d;
}

/* Whether the window covers name; *ret_i: where it is or would be. */
static bool window_find(const struct dpf_dir *d, const uint8_t *name,
			size_t nlen, size_t *ret_i, bool *ret_found)
{
	size_t lo = 0, hi = d->n;

	*ret_found = false;
	/* a walk in key order: the entry after the last one found */
	if (d->next < d->n) {
		const struct dpf_ent *e = &d->ents[d->next];

		if (e->nlen == nlen && !memcmp(d->buf + e->name, name, nlen)) {
			*ret_i = d->next;
			*ret_found = true;
			return true;
		}
	}
	if (name_cmp(name, nlen, (const uint8_t *)d->lo, d->lo_len) < 0)
		return false;
	if (!d->to_end) {
		const struct dpf_ent *e;

		if (!d->n)
			return false;
		e = &d->ents[d->n - 1];
		if (name_cmp(name, nlen, d->buf + e->name, e->nlen) > 0)
			return false;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct dpf_ent *e = &d->ents[mid];
		int c = name_cmp(d->buf + e->name, e->nlen, name, nlen);

		if (c == 0) {
			*ret_i = mid;
			*ret_found = true;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_i = lo;
	return true;
}

/* The next scan's size from how the window did: its entries mostly used
 * (a walk), double; few, shrink, and below DPF_MIN turn scans off. */
static void window_judge(struct dpf_dir *d)
{
	if (!d->window)
		return;
	if (d->hits * 2 >= d->n) {
		d->want = d->want * 2 > DPF_MAX ? DPF_MAX : d->want * 2;
	} else if (d->hits * 8 < d->n) {
		d->want /= 4;
		if (d->want < DPF_MIN) {
			d->want = 0;
			d->off_left = DPF_RETRY;
		}
	}
}

int dentpf_get(struct hoard_fs *fs, uint64_t parent, const char *name,
	       uint64_t gen, uint8_t *v, size_t cap, size_t *ret_n)
{
	struct dent_pf *pf = fs->dpf;
	size_t nlen = strlen(name), i;
	struct dpf_dir *d;
	bool found;
	int r = 1;

	if (!pf)
		return 1;
	pthread_mutex_lock(&pf->mu);
	d = dir_find(pf, parent);
	if (d && d->window && d->gen != gen) {
		if (d->gen < gen) { /* an entry was written since */
			window_judge(d);
			window_drop(pf, d);
		}
		d = NULL; /* or read after this LOOKUP began: not used */
	}
	if (d && d->window &&
	    window_find(d, (const uint8_t *)name, nlen, &i, &found)) {
		d->used = ++pf->tick;
		d->hits++;
		d->next = (uint32_t)i + 1;
		pf->hits++;
		if (!found) {
			r = -ENOENT;
		} else if (d->ents[i].vlen > cap) {
			r = 1; /* the point read says what is wrong */
		} else {
			memcpy(v, d->buf + d->ents[i].val, d->ents[i].vlen);
			*ret_n = d->ents[i].vlen;
			r = 0;
		}
	}
	pthread_mutex_unlock(&pf->mu);
	return r;
}

struct scan {
	struct dpf_ent *ents;
	size_t n, cap;
	uint8_t *buf;
	size_t bytes, bcap;
	bool to_end;
};

static int scan_add(struct scan *s, const uint8_t *name, size_t nlen,
		    const uint8_t *v, size_t vlen)
{
	struct dpf_ent *e = hoard_grow(s->ents, &s->cap, s->n + 1, sizeof(*e),
				       64);
	uint8_t *b;

	if (!e)
		return -ENOMEM;
	s->ents = e;
	b = hoard_grow(s->buf, &s->bcap, s->bytes + nlen + vlen, 1, 16384);
	if (!b)
		return -ENOMEM;
	s->buf = b;
	s->ents[s->n++] = (struct dpf_ent){.name = (uint32_t)s->bytes,
					   .nlen = (uint16_t)nlen,
					   .val = (uint32_t)(s->bytes + nlen),
					   .vlen = (uint16_t)vlen};
	memcpy(s->buf + s->bytes, name, nlen);
	memcpy(s->buf + s->bytes + nlen, v, vlen);
	s->bytes += nlen + vlen;
	return 0;
}

/* Up to want entries of parent from name on, at the store's state of now
 * (after gen was read). */
static int scan_read(struct hoard_fs *fs, uint64_t parent, const char *name,
		     size_t want, struct scan *s)
{
	uint8_t k[DIRENT_KEY_MAX];
	size_t klen = dirent_key(k, parent, name);
	struct hoard_iter *it = hoard_iter_new_from(fs->st, HOARD_CF_DIRENTS, k,
						    8, k, klen, DPF_AHEAD);
	int r = 0;

	if (!it)
		return -ENOMEM;
	for (; hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *key = hoard_iter_key(it, &kl);
		const uint8_t *v = hoard_iter_value(it, &vl);

		if (s->n == want)
			break;
		if (kl <= 8 || kl > DIRENT_KEY_MAX || vl > DIRENT_VAL_MAX) {
			r = -EBADMSG; /* the point read will say so */
			break;
		}
		r = scan_add(s, key + 8, kl - 8, v, vl);
		if (r < 0)
			break;
	}
	if (r == 0 && s->n < want)
		s->to_end = true;
	if (r == 0)
		r = hoard_iter_status(it);
	hoard_iter_free(it);
	return r;
}

int dentpf_miss(struct hoard_fs *fs, uint64_t parent, const char *name,
		uint64_t gen, bool present)
{
	struct dent_pf *pf = fs->dpf;
	size_t nlen = strlen(name);
	struct scan s = {0};
	struct dpf_dir *d;
	uint64_t now;
	uint32_t want;
	bool next, ahead = false;
	int r;

	if (!pf)
		return 0;
	pthread_mutex_lock(&pf->mu);
	d = dir_find(pf, parent);
	if (!d) {
		if (!present) { /* a create's lookup: no slot */
			pthread_mutex_unlock(&pf->mu);
			return 0;
		}
		d = dir_take(pf, parent);
		if (!d) {
			pthread_mutex_unlock(&pf->mu);
			return 0;
		}
	}
	d->used = ++pf->tick;
	if (!present) {
		d->misses = 0;
		pthread_mutex_unlock(&pf->mu);
		return 0;
	}
	if (!d->want) {
		if (--d->off_left == 0)
			d->want = DPF_MIN;
		pthread_mutex_unlock(&pf->mu);
		return 0;
	}
	/* a walk going on past the end of a window it used: the next now */
	next = d->window && d->n && !d->to_end && d->hits * 2 >= d->n &&
	       name_cmp((const uint8_t *)name, nlen,
			d->buf + d->ents[d->n - 1].name,
			d->ents[d->n - 1].nlen) > 0;
	if ((++d->misses <= DPF_TRIGGER && !next) || d->scanning) {
		pthread_mutex_unlock(&pf->mu);
		return 0;
	}
	window_judge(d);
	window_drop(pf, d);
	want = d->want;
	d->misses = 0;
	if (!want) {
		pthread_mutex_unlock(&pf->mu);
		return 0;
	}
	d->scanning = true;
	now = hoard_now_coarse_ns();
	if (now - d->pf_at >= DPF_PF_AGAIN) {
		d->pf_at = now;
		ahead = true;
	}
	pthread_mutex_unlock(&pf->mu);

	if (ahead) {
		uint8_t lo[8], hi[8];
		int64_t n;

		hoard_put_be64(lo, parent);
		hoard_put_be64(hi, parent + 1);
		n = hoard_store_prefetch(fs->st, HOARD_CF_DIRENTS, lo, 8, hi, 8,
					 DPF_PF_FILE, DPF_PF_TOTAL,
					 DPF_PF_AGAIN);
		if (n > 0)
			__atomic_add_fetch(&pf->pf_bytes, (uint64_t)n,
					   __ATOMIC_RELAXED);
	}
	/* the entry after name on: this LOOKUP's was just read */
	r = scan_read(fs, parent, name, want + 1, &s);

	pthread_mutex_lock(&pf->mu);
	d->scanning = false;
	pf->scans++;
	if (r == 0 && s.n && d->parent == parent) {
		/* make room: least recently used windows first */
		while (pf->bytes + s.bytes > DPF_BYTES) {
			struct dpf_dir *o = NULL;

			for (size_t i = 0; i < DPF_DIRS; i++) {
				struct dpf_dir *c = &pf->dirs[i];

				if (c->window && c != d &&
				    (!o || c->used < o->used))
					o = c;
			}
			if (!o)
				break;
			window_drop(pf, o);
		}
		if (pf->bytes + s.bytes <= DPF_BYTES) {
			d->ents = s.ents;
			d->buf = s.buf;
			d->n = s.n;
			d->bytes = s.bytes;
			d->gen = gen;
			d->to_end = s.to_end;
			d->hits = 0;
			d->next = 1; /* entry 0 is this LOOKUP's */
			d->lo_len = (uint16_t)nlen;
			memcpy(d->lo, name, nlen);
			d->window = true;
			pf->bytes += s.bytes;
			s.ents = NULL;
			s.buf = NULL;
		}
	}
	pthread_mutex_unlock(&pf->mu);
	free(s.ents);
	free(s.buf);
	return r;
}

void hoard_fs_lookup_counts(struct hoard_fs *fs, uint64_t *ret_scans,
			    uint64_t *ret_hits, uint64_t *ret_pf_bytes)
{
	struct dent_pf *pf = fs->dpf;

	*ret_scans = *ret_hits = *ret_pf_bytes = 0;
	if (!pf)
		return;
	pthread_mutex_lock(&pf->mu);
	*ret_scans = pf->scans;
	*ret_hits = pf->hits;
	pthread_mutex_unlock(&pf->mu);
	*ret_pf_bytes = __atomic_load_n(&pf->pf_bytes, __ATOMIC_RELAXED);
}
