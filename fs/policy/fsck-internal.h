/* SPDX-License-Identifier: MIT */
/*
 * Private to fsck (fsck.c: the check; fsckrepair.c: the repair;
 * fsckscan.c: the scans and writes both use; fsckplain.c: the plain tier's
 * copies; fsckreport.c: the report's text and JSON).  What the check learns
 * about inodes and chunks, and the small helpers both halves use.
 *
 * Calls go one way: fsck.c -> fsckrepair.c -> fsckscan.c, fsck.c ->
 * fsckscan.c and fsck.c -> fsckplain.c; fsckscan.c calls neither fsck.c
 * nor fsckrepair.c.
 */
#ifndef HOARD_FSCK_INTERNAL_H
#define HOARD_FSCK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "hoard/fsck.h"
#include "hoard/hash.h"
#include "hoard/htab.h"
#include "hoard/records.h"
#include "hoard/store.h"
#include "hoard/util.h"

/* ---- inodes: a sorted array ---------------------------------------------- */

enum {
	I_ORPHAN = 1 << 0, /* listed in orphans */
	I_REACH = 1 << 1,  /* reachable from a volume root */
	I_ROOT = 1 << 2,   /* a volume's root */
	I_LOST = 1 << 3,   /* a file whose data is gone */
	I_DEL = 1 << 4,	   /* the repair deletes it */
	I_NAMED = 1 << 5,  /* parent below is set */
};

struct ient {
	uint64_t ino, parent; /* parent: of the first entry naming it */
	uint32_t mode, nlink;
	uint32_t links, subdirs;   /* entries naming it; subdirectories */
	uint32_t links2, subdirs2; /* the same among what the repair keeps */
	uint8_t flags;
	uint8_t pend; /* 1 + index in fsck.pend of its volume, 0: none */
};

/* ---- chunks: a hash table by id ------------------------------------------- */

enum {
	C_USED = 1 << 0,
	C_REC = 1 << 1,	   /* a decodable record */
	C_BADREC = 1 << 2, /* an undecodable record */
	C_BAD = 1 << 3,	   /* frame missing, corrupt or undecodable */
};

struct cent {
	struct hoard_id id;
	uint64_t refs, kept, rec_refcount;
	uint32_t raw, frame;
	uint8_t flags;
};

/* The chunks by id (htab.h, load 1/2); entries are struct cent. */
struct ctab {
	struct hoard_htab t;
};

static inline struct cent *ctab_get(struct ctab *t, const struct hoard_id *id)
{
	return hoard_htab_get(&t->t, id);
}

struct volent {
	char name[65];
	uint64_t root;
	bool ok;
};

/* Keys whose first 8 bytes (an inode number but in chunks) are in
 * [lo, hi) could not be read from cf. */
struct gap {
	enum hoard_cf cf;
	uint64_t lo, hi;
};

/* A clone or removal a crash interrupted (fsckpending.c). */
struct fsck_pending {
	uint8_t key[80]; /* "clone." DST or "rm." NAME */
	size_t key_len;
	uint64_t root;
	bool clone;
	bool any; /* clone: raised holds the last chunk id raised */
	struct hoard_id raised;
};

struct fsck {
	struct hoard_store *st;
	const struct hoard_fsck_opts *o;
	struct hoard_fsck_report *rep;
	struct ient *in;
	size_t n_in, cap_in;
	struct volent *vols;
	size_t n_vols, cap_vols;
	struct ctab chunks;
	uint8_t *buf; /* HOARD_CHUNK_MAX bytes for decoding */
	struct gap *gaps;
	size_t n_gaps, cap_gaps;
	struct fsck_pending *pend;
	size_t n_pend, cap_pend;
	/* repair */
	struct hoard_batch *b;
	size_t b_ops;
	int werr;
	bool b_repair; /* fsckdigest.c: the pass is the repair's */
};

static inline struct ient *ifind(struct fsck *c, uint64_t ino)
{
	size_t lo = 0, hi = c->n_in;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->in[mid].ino == ino)
			return &c->in[mid];
		if (c->in[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Kept by the repair (and, before it, simply: exists). */
static inline bool kept(const struct ient *e)
{
	return e && !(e->flags & I_DEL);
}

/* What a pass's hoard_store_scan callback needs: fsck.c scans each table
 * twice, to check and (with repair) to fix. */
struct fsck_pass {
	struct fsck *c;
	bool repair;
};

static inline bool inode_rec_ok(const uint8_t *k, size_t kl, const uint8_t *v,
				size_t vl)
{
	struct hoard_inode in;
	uint64_t ino;

	return ino_key_decode(k, kl, &ino) == 0 &&
	       inode_decode_attrs(v, vl, &in) == 0;
}

/* A well-formed directory entry; its parent in *ret_parent, its child in
 * *ret_ino, its type in *ret_type (NULL: not wanted). */
static inline bool dirent_ok(const uint8_t *k, size_t kl, const uint8_t *v,
			     size_t vl, uint64_t *ret_parent, uint64_t *ret_ino,
			     uint8_t *ret_type)
{
	uint64_t parent;
	const char *name;
	size_t len;

	if (!ret_parent)
		ret_parent = &parent;
	return dirent_key_decode(k, kl, ret_parent, &name, &len) == 0 &&
	       dirent_decode(v, vl, ret_ino, ret_type) == 0;
}

/* The nlink an inode should have, from the given counts. */
static inline uint32_t want_nlink(const struct ient *e, uint32_t links,
				  uint32_t subdirs)
{
	if ((e->flags & I_ORPHAN) && links == 0)
		return 0;
	if (S_ISDIR(e->mode))
		return 2 + subdirs;
	return links;
}

/* A gap of cf that covers ino. */
static inline bool in_gap(const struct fsck *c, enum hoard_cf cf, uint64_t ino)
{
	for (size_t i = 0; i < c->n_gaps; i++)
		if (c->gaps[i].cf == cf && ino >= c->gaps[i].lo &&
		    ino < c->gaps[i].hi)
			return true;
	return false;
}

/* hoard_store_scan_past's gap callback for the repair's scans: the gaps
 * are known from the check. */
static inline int fsck_gap_known(void *ud, enum hoard_cf cf, uint64_t lo,
				 uint64_t hi)
{
	return 0;
}

/* fsckscan.c: the passes that also serve the repair (repair: delete what
 * does not stay, count what does in links2/subdirs2 and kept) */
int fsck_scan_dirents(struct fsck *c, bool repair);
int fsck_scan_extents(struct fsck *c, bool repair);
int fsck_scan_xattrs(struct fsck *c, bool repair);

/* fsckscan.c: the pair of a file's inode record (rec, rl; of ino) and
 * the copy in its home entry (FORMAT 2.2: key parent + name, value dv,
 * dvl): true when the record's home is that entry, the entry names ino
 * and its copy is the record.  fsck_home_check: for the record of ino
 * (rec, rl) with a home, read that entry: 1 when the pair holds, 0 when
 * not, -errno when the entry cannot be read (-ENOENT: there is none);
 * *ret_copied says whether the entry names ino and carries a copy (whose
 * staleness, if any, is the entry's problem, counted by its pass). */
bool fsck_pair_ok(uint64_t ino, const uint8_t *rec, size_t rl, uint64_t parent,
		  const char *name, size_t nl, const uint8_t *dv, size_t dvl);
int fsck_home_check(struct fsck *c, uint64_t ino, const struct hoard_inode *in,
		    const uint8_t *rec, size_t rl, bool *ret_copied);
/* fsckscan.c: for the record of ino with two known entries (version 3,
 * FORMAT 2.2): 1 when both entries exist and name ino (a copy in one is
 * that entry's problem, counted by its pass), 0 when not, -errno when one
 * cannot be read. */
int fsck_links_check(struct fsck *c, uint64_t ino,
		     const struct hoard_inode *in);

/* fsckscan.c: count a problem in the report */
void fsck_problem(struct fsck *c, enum hoard_fsck_problem p);

/* fsckscan.c: note that cf's keys [lo, hi) could not be read (a problem);
 * 0 or -ENOMEM */
int fsck_record_gap(struct fsck *c, enum hoard_cf cf, uint64_t lo, uint64_t hi);

/* fsckscan.c: the repair's writes, in batches, the last one synced (sync);
 * the first error is kept in c->werr */
void fsck_wr_flush(struct fsck *c, bool sync);
void fsck_wr_del(struct fsck *c, enum hoard_cf cf, const void *k, size_t kl);
void fsck_wr_put(struct fsck *c, enum hoard_cf cf, const void *k, size_t kl,
		 const void *v, size_t vl);

/* fsckplain.c: check the plain-file tier's copies (repair: delete the bad) */
int fsck_check_plain(struct fsck *c);

/* fsckrepair.c */
int fsck_repair(struct fsck *c);

/* fsckdigest.c: the chunk digest rows (repair: delete those whose chunk
 * does not stay) */
int fsck_scan_digests(struct fsck *c, bool repair);

/* fsckpending.c: interrupted clones and removals (FORMAT 2.1).  scan:
 * before the inode pass.  pending_of: the ient.pend of an inode of that
 * volume root.  counts: whether own's extent naming id counts in the
 * chunk's refcount.  drop: the repair's first write, the keys deleted
 * (synced). */
int fsck_scan_pending(struct fsck *c);
uint8_t fsck_pending_of(const struct fsck *c, uint64_t volume_root);
bool fsck_pending_counts(const struct fsck *c, const struct ient *own,
			 const struct hoard_id *id);
int fsck_pending_drop(struct fsck *c);

#endif
