// SPDX-License-Identifier: MIT
/*
 * fsck's scans that the check (fsck.c) and the repair (fsckrepair.c) share:
 * the passes over dirents, extents and xattrs (repair: delete what does not
 * stay, count what does), the gap bookkeeping, and the repair's batched
 * writes.  Calls go one way: fsck.c -> fsckrepair.c -> fsckscan.c, and
 * fsck.c -> fsckscan.c; nothing here calls either of them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hoard/fsck.h"
#include "hoard/util.h"
#include "fsck-internal.h"

/* ---- the repair's writes ---- */

#define BATCH_OPS 4096

void fsck_wr_flush(struct fsck *c, bool sync)
{
	int r;

	if (!c->b || (!c->b_ops && !sync))
		return;
	r = hoard_store_write(c->st, c->b, sync);
	if (r < 0 && !c->werr)
		c->werr = r;
	hoard_batch_free(c->b);
	c->b = NULL;
	c->b_ops = 0;
}

static void wr_op(struct fsck *c, enum hoard_cf cf, const void *k, size_t kl,
		  const void *v, size_t vl, bool del)
{
	if (!c->b) {
		c->b = hoard_batch_new(c->st);
		if (!c->b) {
			c->werr = -ENOMEM;
			return;
		}
	}
	if (del)
		hoard_batch_delete(c->b, cf, k, kl);
	else
		hoard_batch_put(c->b, cf, k, kl, v, vl);
	c->rep->writes++;
	if (++c->b_ops >= BATCH_OPS)
		fsck_wr_flush(c, false);
}

void fsck_wr_del(struct fsck *c, enum hoard_cf cf, const void *k, size_t kl)
{
	wr_op(c, cf, k, kl, NULL, 0, true);
}

void fsck_wr_put(struct fsck *c, enum hoard_cf cf, const void *k, size_t kl,
		 const void *v, size_t vl)
{
	wr_op(c, cf, k, kl, v, vl, false);
}

void fsck_problem(struct fsck *c, enum hoard_fsck_problem p)
{
	c->rep->problem[p]++;
	c->rep->problems++;
}

/* ---- unreadable stretches (a damaged table file) ---- */

int fsck_record_gap(struct fsck *c, enum hoard_cf cf, uint64_t lo, uint64_t hi)
{
	struct gap *g = hoard_grow(c->gaps, &c->cap_gaps, c->n_gaps + 1,
				   sizeof(*g), 8);

	if (!g)
		return -ENOMEM;
	c->gaps = g;
	c->gaps[c->n_gaps++] = (struct gap){.cf = cf, .lo = lo, .hi = hi};
	fsck_problem(c, HOARD_FSCK_UNREADABLE);
	hoard_log(LOG_DEBUG,
		  "fsck: unreadable records in family %d, keys "
		  "%llu..%llu",
		  (int)cf, (unsigned long long)lo, (unsigned long long)hi);
	return 0;
}

static int gap_ps(void *ud, enum hoard_cf cf, uint64_t lo, uint64_t hi)
{
	const struct fsck_pass *ps = ud;

	return ps->repair ? 0 : fsck_record_gap(ps->c, cf, lo, hi);
}

/* ---- pass: directory entries ---- */

bool fsck_pair_ok(uint64_t ino, const uint8_t *rec, size_t rl, uint64_t parent,
		  const char *name, size_t nl, const uint8_t *dv, size_t dvl)
{
	uint8_t v1[INODE_REC_MAX];
	struct hoard_inode in;
	uint64_t child;
	size_t n;
	bool ok;

	if (dvl <= DIRENT_VAL_SIZE ||
	    dirent_decode(dv, dvl, &child, NULL) < 0 || child != ino ||
	    inode_decode(rec, rl, &in) < 0)
		return false;
	n = inode_encode_v1(&in, v1);
	ok = inode_home_is(&in, parent, name, nl) &&
	     n == dvl - DIRENT_VAL_SIZE && !memcmp(v1, dv + DIRENT_VAL_SIZE, n);
	inode_clear(&in);
	return ok;
}

int fsck_home_check(struct fsck *c, uint64_t ino, const struct hoard_inode *in,
		    const uint8_t *rec, size_t rl, bool *ret_copied)
{
	uint8_t k[DIRENT_KEY_MAX], v[DIRENT_VAL_MAX];
	uint64_t child;
	size_t n;
	int r;

	*ret_copied = false;
	r = hoard_store_get_into(c->st, HOARD_CF_DIRENTS, k,
				 dirent_key(k, in->home_parent, in->home_name),
				 v, sizeof(v), &n);
	if (r < 0)
		return r == -ENOBUFS ? 0 : r;
	*ret_copied = dirent_decode(v, n, &child, NULL) == 0 && child == ino &&
		      n > DIRENT_VAL_SIZE;
	return fsck_pair_ok(ino, rec, rl, in->home_parent, in->home_name,
			    in->home_len, v, n);
}

int fsck_links_check(struct fsck *c, uint64_t ino, const struct hoard_inode *in)
{
	uint8_t k[DIRENT_KEY_MAX], v[DIRENT_VAL_MAX];
	uint64_t child;
	size_t n;
	int r;

	for (int i = 0; i < 2; i++) {
		r = hoard_store_get_into(
			c->st, HOARD_CF_DIRENTS, k,
			dirent_key(k, in->link_parent[i], in->link_name[i]), v,
			sizeof(v), &n);
		if (r == -ENOENT || r == -ENOBUFS)
			return 0;
		if (r < 0)
			return r;
		if (dirent_decode(v, n, &child, NULL) < 0 || child != ino)
			return 0;
	}
	return 1;
}

/* An entry with a copy (check: count it if stale; repair: rewrite a
 * stale one without its copy). */
static void copy_check(struct fsck *c, bool repair, const uint8_t *k, size_t kl,
		       const uint8_t *v, size_t vl, uint64_t ino, uint32_t mode)
{
	uint8_t ik[8], rec[INODE_REC_MAX + 16], nv[DIRENT_VAL_SIZE];
	size_t rl = 0;
	int r;

	if (vl == DIRENT_VAL_SIZE)
		return;
	ino_key(ik, ino);
	r = hoard_store_get_into(c->st, HOARD_CF_INODES, ik, 8, rec,
				 sizeof(rec), &rl);
	if (r == 0 && fsck_pair_ok(ino, rec, rl, hoard_get_be64(k),
				   (const char *)k + 8, kl - 8, v, vl))
		return;
	if (!repair) {
		fsck_problem(c, HOARD_FSCK_STALE_COPIES);
		return;
	}
	dirent_encode(nv, ino, mode);
	fsck_wr_put(c, HOARD_CF_DIRENTS, k, kl, nv, sizeof(nv));
}

static int dirent_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		      size_t vl)
{
	const struct fsck_pass *ps = ud;
	struct fsck *c = ps->c;
	bool repair = ps->repair;
	struct ient *p, *ch;
	uint8_t type, vtype;
	uint64_t parent, ino;

	if (!repair)
		c->rep->dirents++;
	if (!dirent_ok(k, kl, v, vl, &parent, &ino, &vtype)) {
		if (repair)
			fsck_wr_del(c, HOARD_CF_DIRENTS, k, kl);
		else
			fsck_problem(c, HOARD_FSCK_BAD_RECORDS);
		return 0;
	}
	p = ifind(c, parent);
	ch = ifind(c, ino);
	if (!kept(p) || !S_ISDIR(p->mode) || !kept(ch)) {
		if (repair)
			fsck_wr_del(c, HOARD_CF_DIRENTS, k, kl);
		else if (!(p && p->pend && S_ISDIR(p->mode) && !ch))
			fsck_problem(c, HOARD_FSCK_DANGLING_DIRENTS);
		/* else: a removal under way took the child (fsckpending.c) */
		return 0;
	}
	type = (uint8_t)((ch->mode & S_IFMT) >> 12);
	if (vtype != type) {
		if (repair) {
			uint8_t nv[DIRENT_VAL_SIZE];

			dirent_encode(nv, ino, ch->mode);
			fsck_wr_put(c, HOARD_CF_DIRENTS, k, kl, nv, sizeof(nv));
		} else {
			fsck_problem(c, HOARD_FSCK_BAD_RECORDS);
		}
	} else {
		copy_check(c, repair, k, kl, v, vl, ino, ch->mode);
	}
	if (repair) {
		if (in_gap(c, HOARD_CF_DIRENTS, parent))
			return 0; /* goes with its stretch (mark_reachable) */
		ch->links2++;
		if (S_ISDIR(ch->mode))
			p->subdirs2++;
		return 0;
	}
	ch->links++;
	if (S_ISDIR(ch->mode))
		p->subdirs++;
	if (!(ch->flags & I_NAMED)) {
		ch->flags |= I_NAMED;
		ch->parent = p->ino;
	}
	return 0;
}

int fsck_scan_dirents(struct fsck *c, bool repair)
{
	struct fsck_pass ps = {.c = c, .repair = repair};

	return hoard_store_scan_past(c->st, HOARD_CF_DIRENTS, dirent_one,
				     gap_ps, &ps);
}

/* ---- pass: extents ---- */

static int extent_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		      size_t vl)
{
	const struct fsck_pass *ps = ud;
	struct fsck *c = ps->c;
	bool repair = ps->repair;
	struct extent_rec x;
	struct ient *own;
	struct cent *e;

	if (!repair)
		c->rep->extents++;
	if (extent_decode(k, kl, v, vl, &x) < 0) {
		if (repair)
			fsck_wr_del(c, HOARD_CF_EXTENTS, k, kl);
		else
			fsck_problem(c, HOARD_FSCK_BAD_RECORDS);
		return 0;
	}
	own = ifind(c, x.ino);
	e = ctab_get(&c->chunks, &x.id);
	if (repair) {
		if (!kept(own) || !S_ISREG(own->mode))
			fsck_wr_del(c, HOARD_CF_EXTENTS, k, kl);
		else if (e) /* kept files have only good chunks */
			e->kept++;
		return 0;
	}
	if (e && fsck_pending_counts(c, own, &x.id))
		e->refs++;
	if (!own || !S_ISREG(own->mode)) {
		fsck_problem(c, HOARD_FSCK_BAD_EXTENTS);
		return 0;
	}
	if (!e || !(e->flags & C_REC)) {
		fsck_problem(c, HOARD_FSCK_MISSING_CHUNKS);
		own->flags |= I_LOST;
	} else if (e->raw != x.len) {
		fsck_problem(c, HOARD_FSCK_BAD_EXTENTS);
		own->flags |= I_LOST;
	} else if (e->flags & C_BAD) {
		own->flags |= I_LOST;
	}
	return 0;
}

int fsck_scan_extents(struct fsck *c, bool repair)
{
	struct fsck_pass ps = {.c = c, .repair = repair};

	return hoard_store_scan_past(c->st, HOARD_CF_EXTENTS, extent_one,
				     gap_ps, &ps);
}

/* ---- pass: xattrs ---- */

static int xattr_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		     size_t vl)
{
	const struct fsck_pass *ps = ud;
	struct fsck *c = ps->c;
	const char *name = NULL;
	uint64_t ino;
	size_t nl = 0;
	int bad = xattr_key_decode(k, kl, &ino, &name, &nl);
	struct ient *own = bad ? NULL : ifind(c, ino);

	/* "hoard.*" rows are the daemon's (evict.h), not xattrs; checked
	 * for an owner all the same */
	if (!ps->repair && !(nl >= 6 && !memcmp(name, "hoard.", 6)))
		c->rep->xattrs++;
	if (kept(own))
		return 0;
	if (ps->repair)
		fsck_wr_del(c, HOARD_CF_XATTRS, k, kl);
	else
		fsck_problem(c, bad ? HOARD_FSCK_BAD_RECORDS
				    : HOARD_FSCK_ORPHAN_XATTRS);
	return 0;
}

int fsck_scan_xattrs(struct fsck *c, bool repair)
{
	struct fsck_pass ps = {.c = c, .repair = repair};

	return hoard_store_scan_past(c->st, HOARD_CF_XATTRS, xattr_one, gap_ps,
				     &ps);
}
