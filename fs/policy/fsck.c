// SPDX-License-Identifier: MIT
/*
 * fsck: check (and repair) every record of a store (fsck.h).
 *
 * The check reads each column family with one iterator, in an order that
 * lets each pass use what the earlier ones learnt:
 *
 *   volumes     name -> root                 the roots (checked after inodes)
 *   inodes      ino -> record (FORMAT 2.2)   a sorted array of inode entries
 *   orphans     ino                          flags on those entries
 *   dirents     parent + name -> child       link counts, a parent for paths
 *   (dirents again, one directory at a time: reachability from the roots)
 *   chunks      id -> record (FORMAT 2.3)  \ merged by id: every frame is
 *   chunkdata   id -> frame  (FORMAT 3)    / decoded and re-hashed
 *   extents     ino + off -> id + length     references counted per chunk
 *   xattrs      ino + name                   owners exist
 *
 * The repair (fsckrepair.c) then decides which inodes stay (not lost, not
 * unreachable) and scans the families once more, deleting and rewriting;
 * nlinks and refcounts are recounted from what stays, so the result is
 * consistent even when one problem causes another.  The report's text and
 * JSON are in fsckreport.c.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hoard/chunker.h"
#include "hoard/codec.h"
#include "hoard/fsck.h"
#include "hoard/util.h"
#include "fsck-internal.h"

#define MAX_DEPTH  4096
#define PROGRESS_N 1024

/* Find or add (flags C_USED, counters 0); NULL on ENOMEM. */
static struct cent *ctab_add(struct ctab *t, const struct hoard_id *id)
{
	struct cent *e;
	bool added;

	if (!t->t.esz) {
		t->t = HOARD_HTAB_INIT(sizeof(*e), sizeof(*id), 50);
		t->t.min_cap = 1024;
	}
	e = hoard_htab_put(&t->t, id, &added);
	if (e && added)
		e->flags = C_USED;
	return e;
}

/* ---- the run ---- */

static void progress(struct fsck *c, const char *phase, uint64_t items,
		     uint64_t bytes)
{
	if (c->o->progress)
		c->o->progress(c->o->ud, phase, items, bytes);
}

/* ---- unreadable stretches (a damaged table file) ---- */

static int gap_c(void *ud, enum hoard_cf cf, uint64_t lo, uint64_t hi)
{
	return fsck_record_gap(ud, cf, lo, hi);
}

/*
 * What the gaps cost: a file whose extents, xattrs or inode record may be
 * among the unreadable records is lost (its data or metadata is
 * incomplete); after unreadable directory entries, the regular files no
 * name reaches are.  The repair deletes the unreadable stretches, so every
 * inode whose record is in one goes too.
 */
static void apply_gaps(struct fsck *c)
{
	bool names = false;

	for (size_t i = 0; i < c->n_gaps; i++)
		names |= c->gaps[i].cf == HOARD_CF_DIRENTS;
	for (size_t i = 0; i < c->n_in && c->n_gaps; i++) {
		struct ient *e = &c->in[i];
		bool reg = S_ISREG(e->mode);

		if (in_gap(c, HOARD_CF_INODES, e->ino) ||
		    (reg && (in_gap(c, HOARD_CF_EXTENTS, e->ino) ||
			     in_gap(c, HOARD_CF_XATTRS, e->ino))) ||
		    (reg && names && !(e->flags & (I_REACH | I_ORPHAN))))
			e->flags |= I_LOST;
	}
}

/* ---- pass: volumes, inodes, orphans ---- */

static int volume_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		      size_t vl)
{
	struct fsck *c = ud;
	struct volent *ve;
	uint64_t root;

	if (volume_rec_decode(k, kl, v, vl, &root) < 0) {
		fsck_problem(c, HOARD_FSCK_BAD_RECORDS);
		return 0;
	}
	ve = hoard_grow(c->vols, &c->cap_vols, c->n_vols + 1, sizeof(*ve), 8);
	if (!ve)
		return -ENOMEM;
	c->vols = ve;
	ve = &c->vols[c->n_vols++];
	memset(ve, 0, sizeof(*ve));
	memcpy(ve->name, k, kl);
	ve->root = root;
	c->rep->volumes++;
	return 0;
}

static int scan_volumes(struct fsck *c)
{
	return hoard_store_scan_past(c->st, HOARD_CF_VOLUMES, volume_one, gap_c,
				     c);
}

static int inode_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		     size_t vl)
{
	struct fsck *c = ud;
	struct ient *e;
	struct hoard_inode in;
	uint64_t ino;
	uint8_t pend;

	c->rep->inodes++;
	if (ino_key_decode(k, kl, &ino) < 0 ||
	    inode_decode_attrs(v, vl, &in) < 0) {
		fsck_problem(c, HOARD_FSCK_BAD_RECORDS);
		return 0;
	}
	pend = c->n_pend ? fsck_pending_of(c, in.volume) : 0;
	/* Its home entry must carry its copy, unless a clone or removal
	 * under way owns it (fsckpending.c): a removal deletes a directory's
	 * entries with it, before the inodes they name, and the next start
	 * deletes the rest, as check_inodes says. */
	if (in.home_parent && !pend) {
		bool copied;
		int r = fsck_home_check(c, ino, &in, v, vl, &copied);

		if (r == -ENOENT || (r == 0 && !copied))
			fsck_problem(c, HOARD_FSCK_STALE_COPIES);
	}
	/* and the two entries it names (two links) must name it */
	if (in.link_parent[0] && !pend) {
		int r = fsck_links_check(c, ino, &in);

		if (r < 0)
			return r;
		if (r == 0)
			fsck_problem(c, HOARD_FSCK_STALE_COPIES);
	}
	e = hoard_grow(c->in, &c->cap_in, c->n_in + 1, sizeof(*e), 1024);
	if (!e)
		return -ENOMEM;
	c->in = e;
	e = &c->in[c->n_in++];
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->mode = in.mode;
	e->nlink = in.nlink;
	e->pend = pend;
	return 0;
}

static int scan_inodes(struct fsck *c)
{
	return hoard_store_scan_past(c->st, HOARD_CF_INODES, inode_one, gap_c,
				     c);
}

static int orphan_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		      size_t vl)
{
	struct fsck *c = ud;
	uint64_t ino;
	int bad = ino_key_decode(k, kl, &ino);
	struct ient *e = bad ? NULL : ifind(c, ino);

	if (bad)
		fsck_problem(c, HOARD_FSCK_BAD_RECORDS);
	else if (!e)
		fsck_problem(c, HOARD_FSCK_STALE_ORPHANS);
	else
		e->flags |= I_ORPHAN;
	return 0;
}

static int scan_orphans(struct fsck *c)
{
	return hoard_store_scan_past(c->st, HOARD_CF_ORPHANS, orphan_one, gap_c,
				     c);
}

/* Mark what the volume roots reach (breadth first, one prefix scan of the
 * dirents per directory). */
struct reach {
	struct fsck *c;
	uint64_t *q; /* directories to scan: [done, n) */
	size_t done, n, cap;
};

static int reach_push(struct reach *rq, uint64_t ino)
{
	uint64_t *q = hoard_grow(rq->q, &rq->cap, rq->n + 1, sizeof(*q), 64);

	if (!q)
		return -ENOMEM;
	rq->q = q;
	rq->q[rq->n++] = ino;
	return 0;
}

static int reach_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		     size_t vl)
{
	struct reach *rq = ud;
	struct ient *ch;
	uint64_t ino;

	if (!dirent_ok(k, kl, v, vl, NULL, &ino, NULL))
		return 0;
	ch = ifind(rq->c, ino);
	if (!ch || (ch->flags & I_REACH))
		return 0;
	ch->flags |= I_REACH;
	return S_ISDIR(ch->mode) ? reach_push(rq, ch->ino) : 0;
}

static int mark_reachable(struct fsck *c)
{
	struct reach rq = {.c = c};
	int r = 0;

	for (size_t i = 0; i < c->n_vols; i++) {
		struct ient *e = ifind(c, c->vols[i].root);

		if (!e || !S_ISDIR(e->mode)) {
			fsck_problem(c, HOARD_FSCK_BAD_VOLUMES);
			continue;
		}
		c->vols[i].ok = true;
		e->flags |= I_ROOT;
	}
	for (size_t i = 0; r == 0 && i < c->n_in; i++) {
		if (!(c->in[i].flags & I_ROOT))
			continue;
		c->in[i].flags |= I_REACH;
		r = reach_push(&rq, c->in[i].ino);
	}
	for (; r == 0 && rq.done < rq.n; rq.done++) {
		uint8_t k[8];

		/* the repair deletes an unreadable stretch of entries by
		 * their parents' numbers: a directory in one loses all its
		 * entries, the readable ones too, so they reach nothing */
		if (in_gap(c, HOARD_CF_DIRENTS, rq.q[rq.done]))
			continue;
		hoard_put_be64(k, rq.q[rq.done]);
		r = hoard_store_scan(c->st, HOARD_CF_DIRENTS, k, 8, reach_one,
				     &rq);
		/* a directory whose entries cannot be read: its gap was
		 * recorded by the dirents pass */
		if (r == -EIO)
			r = 0;
	}
	free(rq.q);
	return r;
}

static void check_inodes(struct fsck *c)
{
	for (size_t i = 0; i < c->n_in; i++) {
		struct ient *e = &c->in[i];

		if (!(e->flags & (I_REACH | I_ORPHAN)) && e->pend) {
			/* a clone or removal under way (fsckpending.c):
			 * the next start deletes it, links and all */
			c->rep->interrupted_inodes++;
			continue;
		}
		if (!(e->flags & (I_REACH | I_ORPHAN)))
			fsck_problem(c, HOARD_FSCK_UNREACHABLE);
		if ((e->flags & I_ORPHAN) && e->links)
			fsck_problem(c, HOARD_FSCK_STALE_ORPHANS);
		if (e->nlink != want_nlink(e, e->links, e->subdirs))
			fsck_problem(c, HOARD_FSCK_NLINKS);
	}
}

/* ---- pass: chunks and their frames ---- */

static bool chunk_rec_ok(const uint8_t *k, size_t kl, const uint8_t *v,
			 size_t vl, struct chunk_rec *ret)
{
	struct hoard_id id;

	return chunk_key_decode(k, kl, &id) == 0 &&
	       chunk_rec_decode(v, vl, ret) == 0 &&
	       ret->raw_size <= HOARD_CHUNK_MAX;
}

/* Decode and re-hash one frame; true when it is the chunk e names. */
static bool frame_ok(struct fsck *c, const struct cent *e, const uint8_t *f,
		     size_t fl)
{
	struct hoard_id got;
	ssize_t n;

	c->rep->frame_bytes += fl;
	n = hoard_codec_decode(f, fl, c->buf, HOARD_CHUNK_MAX, e->raw);
	if (n < 0 || (size_t)n != e->raw)
		return false;
	c->rep->raw_bytes += e->raw;
	hoard_id_compute(hoard_store_key(c->st), c->buf, e->raw, &got);
	return hoard_id_equal(&got, &e->id);
}

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int d = memcmp(a, b, al < bl ? al : bl);

	return d ? d : (al > bl) - (al < bl);
}

/* One chunk record (k, v) and its frame (f, NULL when there is none). */
static int check_chunk(struct fsck *c, const uint8_t *k, size_t kl,
		       const uint8_t *v, size_t vl, const uint8_t *f, size_t fl)
{
	struct chunk_rec rec;
	struct hoard_id id;
	struct cent *e;

	c->rep->chunks++;
	if (chunk_key_decode(k, kl, &id) < 0) {
		fsck_problem(c, HOARD_FSCK_BAD_RECORDS);
		return 0;
	}
	e = ctab_add(&c->chunks, &id);
	if (!e)
		return -ENOMEM;
	if (!chunk_rec_ok(k, kl, v, vl, &rec)) {
		e->flags |= C_BADREC | C_BAD;
		fsck_problem(c, HOARD_FSCK_BAD_RECORDS);
		return 0;
	}
	e->flags |= C_REC;
	e->raw = rec.raw_size;
	e->frame = rec.frame_size;
	e->rec_refcount = rec.refcount;
	if (!f && rec.has_loc && !(rec.flags & 1)) {
		/* not local, with its place in a remote pack (2.3): a lazy
		 * chunk, fetched on read */
		c->rep->remote_chunks++;
	} else if (!f) {
		/* no frame and nowhere else: data that cannot be read */
		e->flags |= C_BAD;
		fsck_problem(c, HOARD_FSCK_MISSING_FRAMES);
	} else if (!frame_ok(c, e, f, fl)) {
		e->flags |= C_BAD;
		fsck_problem(c, HOARD_FSCK_CORRUPT_CHUNKS);
	}
	return 0;
}

/* The frame iterator stopped at a blob that fails RocksDB's checksum,
 * somewhere at or past the current record: read that record's frame on
 * its own (a failed read is a corrupt chunk, as a frame that fails its
 * hash), then go on with the frames past it.  A damaged blob with no
 * record is passed over unseen: its key cannot be known. */
static int blob_bad(struct fsck *c, struct hoard_iter *rec,
		    struct hoard_iter *dat)
{
	size_t kl, vl, fl = 0;
	const uint8_t *k = hoard_iter_key(rec, &kl);
	const uint8_t *v = hoard_iter_value(rec, &vl);
	uint8_t next[HOARD_ID_SIZE + 1];
	void *f = NULL;
	int r;

	r = hoard_store_get(c->st, HOARD_CF_CHUNKDATA, k, kl, &f, &fl);
	/* no frame: missing; unreadable: a zero-length frame, corrupt */
	if (r == -ENOENT)
		r = check_chunk(c, k, kl, v, vl, NULL, 0);
	else
		r = check_chunk(c, k, kl, v, vl, r ? (const void *)"" : f,
				r ? 0 : fl);
	free(f);
	if (kl <= HOARD_ID_SIZE) {
		memcpy(next, k, kl);
		next[kl] = 0;
		hoard_iter_seek(dat, next, kl + 1);
	}
	hoard_iter_next(rec);
	return r;
}

static int scan_chunks(struct fsck *c)
{
	struct hoard_iter *rec = hoard_iter_new(c->st, HOARD_CF_CHUNKS, "", 0);
	struct hoard_iter *dat = hoard_iter_new(c->st, HOARD_CF_CHUNKDATA, "",
						0);
	uint64_t n = 0, last = 0;
	int r = 0;

	if (!rec || !dat) {
		r = -ENOMEM;
		goto out_free;
	}
	while (r == 0) {
		bool rv = hoard_iter_valid(rec), dv = hoard_iter_valid(dat);
		size_t kl = 0, dl = 0, vl, fl;
		const uint8_t *k = rv ? hoard_iter_key(rec, &kl) : NULL;
		const uint8_t *dk = dv ? hoard_iter_key(dat, &dl) : NULL;
		const uint8_t *v, *f;
		int d;

		if (!dv && rv && hoard_iter_status(dat) == -EBADMSG) {
			r = blob_bad(c, rec, dat);
			if (++n % PROGRESS_N == 0)
				progress(c, "chunks", n, c->rep->frame_bytes);
			continue;
		}
		if (!rv && !dv)
			break;
		d = !rv ? 1 : !dv ? -1 : key_cmp(k, kl, dk, dl);
		if (d > 0) {
			fsck_problem(c, HOARD_FSCK_ORPHAN_FRAMES);
			hoard_iter_next(dat);
			continue;
		}
		v = hoard_iter_value(rec, &vl);
		f = NULL;
		fl = 0;
		if (d == 0)
			f = hoard_iter_value(dat, &fl);
		r = check_chunk(c, k, kl, v, vl, f, fl);
		if (kl >= 8)
			last = hoard_get_be64(k);
		hoard_iter_next(rec);
		if (d == 0)
			hoard_iter_next(dat);
		if (++n % PROGRESS_N == 0)
			progress(c, "chunks", n, c->rep->frame_bytes);
	}
	progress(c, "chunks", n, c->rep->frame_bytes);
	if (r == 0)
		r = hoard_iter_status(rec);
	if (r == 0)
		r = hoard_iter_status(dat);
	/* records or frames past here cannot be read: the chunks not seen
	 * are missing to the extents that name them, and the repair deletes
	 * the stretch */
	if (r == -EIO) {
		r = fsck_record_gap(c, HOARD_CF_CHUNKS, last, UINT64_MAX);
		if (r == 0)
			r = fsck_record_gap(c, HOARD_CF_CHUNKDATA, last,
					    UINT64_MAX);
	}
out_free:
	hoard_iter_free(rec);
	hoard_iter_free(dat);
	return r;
}

static void check_refcounts(struct fsck *c)
{
	struct cent *e;

	for (size_t pos = 0; (e = hoard_htab_next(&c->chunks.t, &pos));) {
		if ((e->flags & C_REC) && e->rec_refcount != e->refs)
			fsck_problem(c, HOARD_FSCK_REFCOUNTS);
	}
}

/* ---- lost files: their paths ---- */

struct name_of {
	uint64_t ino;
	char *name;
};

static int name_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		    size_t vl)
{
	struct name_of *n = ud;
	uint64_t parent, ino;
	const char *name;
	size_t nl;

	if (dirent_key_decode(k, kl, &parent, &name, &nl) < 0 ||
	    dirent_decode(v, vl, &ino, NULL) < 0 || ino != n->ino)
		return 0;
	n->name = strndup(name, nl);
	return 1; /* found: stop */
}

/* The name under which parent lists ino, malloc()ed; NULL if none. */
static char *name_in(struct fsck *c, uint64_t parent, uint64_t ino)
{
	struct name_of n = {.ino = ino};
	uint8_t k[8];

	hoard_put_be64(k, parent);
	hoard_store_scan(c->st, HOARD_CF_DIRENTS, k, 8, name_one, &n);
	return n.name;
}

static const char *volume_name(struct fsck *c, uint64_t root)
{
	for (size_t i = 0; i < c->n_vols; i++)
		if (c->vols[i].ok && c->vols[i].root == root)
			return c->vols[i].name;
	return NULL;
}

/* "VOLUME:/a/b" for a directory reachable by first names from a root, "?"
 * when it is not; NULL on ENOMEM. */
static char *dir_path(struct fsck *c, uint64_t dir)
{
	struct ient *e = ifind(c, dir);
	char *path = strdup(""), *name, *p;
	const char *vol;
	int depth = 0;

	while (path && e && depth++ < MAX_DEPTH) {
		if (e->flags & I_ROOT) {
			vol = volume_name(c, e->ino);
			if (asprintf(&p, "%s:%s", vol ? vol : "?", path) < 0)
				p = NULL;
			free(path);
			return p;
		}
		if (!(e->flags & I_NAMED))
			break;
		name = name_in(c, e->parent, e->ino);
		if (!name)
			break;
		if (asprintf(&p, "/%s%s", name, path) < 0)
			p = NULL;
		free(name);
		free(path);
		path = p;
		e = ifind(c, e->parent);
	}
	if (!path)
		return NULL;
	free(path);
	return strdup("?");
}

static int add_lost(struct fsck *c, char *path, size_t *cap)
{
	char **p;

	if (!path)
		return -ENOMEM;
	p = hoard_grow(c->rep->lost, cap, c->rep->n_lost + 1, sizeof(char *),
		       16);
	if (!p) {
		free(path);
		return -ENOMEM;
	}
	c->rep->lost = p;
	c->rep->lost[c->rep->n_lost++] = path;
	return 0;
}

/* Every name of every lost file ("VOLUME:/PATH"), then "inode N" for lost
 * files that have none. */
struct lost {
	struct fsck *c;
	size_t cap; /* of c->rep->lost */
};

static int lost_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		    size_t vl)
{
	struct lost *l = ud;
	struct ient *ch;
	char *dir, *p;
	const char *name;
	uint64_t parent, ino;
	size_t nl;
	int r;

	if (dirent_key_decode(k, kl, &parent, &name, &nl) < 0 ||
	    dirent_decode(v, vl, &ino, NULL) < 0)
		return 0;
	ch = ifind(l->c, ino);
	/* a name of an inode whose record is unreadable is lost too */
	if (!ch && !in_gap(l->c, HOARD_CF_INODES, ino))
		return 0;
	if (ch && !(ch->flags & I_LOST))
		return 0;
	dir = dir_path(l->c, parent);
	if (!dir)
		r = -ENOMEM;
	else if (asprintf(&p, "%s/%.*s", dir, (int)nl, name) < 0)
		r = -ENOMEM;
	else
		r = add_lost(l->c, p, &l->cap);
	free(dir);
	return r;
}

static int list_lost(struct fsck *c)
{
	struct lost l = {.c = c};
	char *p;
	int r;

	for (size_t i = 0; i < c->n_in && !c->n_gaps; i++)
		if (c->in[i].flags & I_LOST)
			break;
		else if (i + 1 == c->n_in)
			return 0;
	r = hoard_store_scan_past(c->st, HOARD_CF_DIRENTS, lost_one,
				  fsck_gap_known, &l);
	for (size_t i = 0; r == 0 && i < c->n_in; i++) {
		if ((c->in[i].flags & I_LOST) && !c->in[i].links) {
			if (asprintf(&p, "inode %llu (no name)",
				     (unsigned long long)c->in[i].ino) < 0)
				return -ENOMEM;
			r = add_lost(c, p, &l.cap);
		}
	}
	return r;
}

/* ---- entry points ---- */

/* The settings key "clean" (FORMAT 2.1) is not 0 (absent: never mounted). */
static bool closed_cleanly(struct hoard_store *st)
{
	uint8_t clean = 1;
	size_t n = 0;
	int r = hoard_store_get_into(st, HOARD_CF_DEFAULT, "clean", 5, &clean,
				     1, &n);

	return r == -ENOENT || (r == 0 && n == 1 && clean != 0);
}

/*
 * The default family holds the settings beside the clone/rm marks and the
 * digests scanned here.  Its records have no inode to blame and nothing
 * a repair could rebuild, so an unreadable one there is the store's
 * damage the open reports for unreadable settings: -EUCLEAN, which the
 * CLI says in one line (hoard fsck changes nothing then).
 */
static int settings_scan(int r)
{
	return r == -EIO ? -EUCLEAN : r;
}

int hoard_fsck_run(struct hoard_store *st, const struct hoard_fsck_opts *o,
		   struct hoard_fsck_report **ret)
{
	static const struct hoard_fsck_opts none;
	struct fsck c = {.st = st, .o = o ? o : &none};
	uint64_t t0 = hoard_now_mono_ns();
	int r;

	c.rep = calloc(1, sizeof(*c.rep));
	c.buf = malloc(HOARD_CHUNK_MAX);
	if (!c.rep || !c.buf) {
		r = -ENOMEM;
		goto out_free;
	}
	progress(&c, "inodes", 0, 0);
	c.rep->unclean = !closed_cleanly(st);
	if (hoard_store_wal_damage(st)) {
		c.rep->wal_damage = strdup(hoard_store_wal_damage(st));
		fsck_problem(&c, HOARD_FSCK_WAL_DAMAGE);
	}
	r = scan_volumes(&c);
	if (r == 0)
		r = settings_scan(fsck_scan_pending(&c));
	if (r == 0)
		r = scan_inodes(&c);
	if (r == 0)
		r = scan_orphans(&c);
	if (r == 0)
		r = fsck_scan_dirents(&c, false);
	if (r == 0)
		r = mark_reachable(&c);
	if (r == 0) {
		check_inodes(&c);
		r = scan_chunks(&c);
	}
	if (r == 0)
		r = fsck_scan_extents(&c, false);
	if (r == 0) {
		check_refcounts(&c);
		r = fsck_scan_xattrs(&c, false);
	}
	if (r == 0)
		r = settings_scan(fsck_scan_digests(&c, false));
	if (r == 0) {
		apply_gaps(&c);
		r = list_lost(&c);
	}
	if (r == 0)
		r = fsck_check_plain(&c);
	if (r == 0 && c.o->repair &&
	    (c.rep->problems || c.rep->problem[HOARD_FSCK_ORPHAN_DIGESTS] ||
	     c.n_pend)) {
		progress(&c, "repair", 0, 0);
		r = fsck_pending_drop(&c);
		if (r == 0)
			r = fsck_repair(&c);
		if (r == 0)
			c.rep->repaired = true;
	}
	if (r < 0)
		goto out_free;
	c.rep->seconds = (double)(hoard_now_mono_ns() - t0) / 1e9;
	*ret = c.rep;
	c.rep = NULL;
out_free:
	if (c.b)
		hoard_batch_free(c.b);
	hoard_fsck_report_free(c.rep);
	free(c.buf);
	free(c.in);
	free(c.vols);
	free(c.pend);
	hoard_htab_free(&c.chunks.t);
	free(c.gaps);
	return r;
}
