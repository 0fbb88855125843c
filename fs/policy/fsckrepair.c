// SPDX-License-Identifier: MIT
/*
 * fsck's repair (fsck.h): with the check's findings, decide which inodes
 * stay (neither lost nor unreachable) and scan the column families once
 * more, deleting what does not stay and rewriting nlinks and refcounts from
 * what does.  Its writes go through fsckscan.c (batched, the last synced).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fsck-internal.h"

static int inode_fix(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		     size_t vl)
{
	struct fsck *c = ud;
	uint64_t ino;
	struct ient *e = ino_key_decode(k, kl, &ino) ? NULL : ifind(c, ino);
	struct hoard_inode in;
	uint8_t nv[INODE_REC_MAX];
	bool home_ok = false, copied = false, links_ok = false;
	struct ient *p;
	uint32_t want;
	int r;

	if (!inode_rec_ok(k, kl, v, vl) || !kept(e)) {
		fsck_wr_del(c, HOARD_CF_INODES, k, kl);
		return 0;
	}
	want = want_nlink(e, e->links2, e->subdirs2);
	r = inode_decode(v, vl, &in);
	if (r < 0)
		return r;
	/* a copy stays only where nothing about its pair changes: its
	 * entry stays (its directory does) and the file keeps one link */
	if (in.home_parent) {
		p = ifind(c, in.home_parent);
		home_ok = fsck_home_check(c, ino, &in, v, vl, &copied) == 1 &&
			  want == 1 && kept(p) && S_ISDIR(p->mode);
	}
	/* the two entries a record names stay known only where both stay
	 * and the file keeps two links */
	if (in.link_parent[0]) {
		struct ient *p0 = ifind(c, in.link_parent[0]);
		struct ient *p1 = ifind(c, in.link_parent[1]);

		links_ok = fsck_links_check(c, ino, &in) == 1 && want == 2 &&
			   kept(p0) && S_ISDIR(p0->mode) && kept(p1) &&
			   S_ISDIR(p1->mode);
	}
	if (e->nlink == want && (home_ok || !in.home_parent) &&
	    (links_ok || !in.link_parent[0])) {
		inode_clear(&in);
		return 0;
	}
	if (in.home_parent && !home_ok) {
		p = ifind(c, in.home_parent);
		if (copied && kept(p) && S_ISDIR(p->mode)) {
			uint8_t dk[DIRENT_KEY_MAX], dv[DIRENT_VAL_SIZE];

			dirent_encode(dv, ino, in.mode);
			fsck_wr_put(
				c, HOARD_CF_DIRENTS, dk,
				dirent_key(dk, in.home_parent, in.home_name),
				dv, sizeof(dv));
		}
		inode_set_home(&in, 0, NULL);
	}
	if (!links_ok)
		inode_set_links(&in, 0, NULL, 0, NULL);
	in.nlink = want;
	fsck_wr_put(c, HOARD_CF_INODES, k, kl, nv, inode_encode(&in, nv));
	inode_clear(&in);
	return 0;
}

static int orphan_fix(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		      size_t vl)
{
	struct fsck *c = ud;
	uint64_t ino;
	struct ient *e = ino_key_decode(k, kl, &ino) ? NULL : ifind(c, ino);

	if (!kept(e) || e->links2 != 0)
		fsck_wr_del(c, HOARD_CF_ORPHANS, k, kl);
	return 0;
}

static int volume_fix(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		      size_t vl)
{
	struct fsck *c = ud;
	uint64_t root;
	struct ient *e = volume_rec_decode(k, kl, v, vl, &root)
				 ? NULL
				 : ifind(c, root);

	if (!(kept(e) && S_ISDIR(e->mode) && (e->flags & I_ROOT)))
		fsck_wr_del(c, HOARD_CF_VOLUMES, k, kl);
	return 0;
}

static int chunk_fix(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		     size_t vl)
{
	struct fsck *c = ud;
	struct hoard_id id;
	struct cent *e = NULL;
	struct chunk_rec cr;
	uint8_t nv[CHUNK_REC_V2_SIZE];

	if (chunk_key_decode(k, kl, &id) == 0)
		e = ctab_get(&c->chunks, &id);
	if (!e || !(e->flags & C_REC) || (e->flags & C_BAD) || e->kept == 0) {
		fsck_wr_del(c, HOARD_CF_CHUNKS, k, kl);
		fsck_wr_del(c, HOARD_CF_CHUNKDATA, k, kl);
		return 0;
	}
	if (e->rec_refcount == e->kept || chunk_rec_decode(v, vl, &cr) < 0)
		return 0;
	cr.refcount = e->kept;
	fsck_wr_put(c, HOARD_CF_CHUNKS, k, kl, nv, chunk_rec_encode(&cr, nv));
	return 0;
}

/* Frames whose record is gone (or is being deleted above). */
static int frame_fix(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		     size_t vl)
{
	struct fsck *c = ud;
	struct hoard_id id;

	if (chunk_key_decode(k, kl, &id) == 0 && ctab_get(&c->chunks, &id))
		return 0; /* chunk_fix decided */
	fsck_wr_del(c, HOARD_CF_CHUNKDATA, k, kl);
	return 0;
}

int fsck_repair(struct fsck *c)
{
	struct cent *ce;
	int r;

	for (size_t i = 0; i < c->n_in; i++) {
		struct ient *e = &c->in[i];

		if ((e->flags & I_LOST) || !(e->flags & (I_REACH | I_ORPHAN)))
			e->flags |= I_DEL;
	}
	for (size_t pos = 0; (ce = hoard_htab_next(&c->chunks.t, &pos));)
		ce->kept = 0;
	r = fsck_scan_dirents(c, true);
	if (r == 0)
		r = fsck_scan_extents(c, true);
	if (r == 0)
		r = fsck_scan_xattrs(c, true);
	if (r == 0)
		r = hoard_store_scan_past(c->st, HOARD_CF_INODES, inode_fix,
					  fsck_gap_known, c);
	if (r == 0)
		r = hoard_store_scan_past(c->st, HOARD_CF_ORPHANS, orphan_fix,
					  fsck_gap_known, c);
	if (r == 0)
		r = hoard_store_scan_past(c->st, HOARD_CF_VOLUMES, volume_fix,
					  fsck_gap_known, c);
	if (r == 0)
		r = hoard_store_scan_past(c->st, HOARD_CF_CHUNKS, chunk_fix,
					  fsck_gap_known, c);
	if (r == 0)
		r = fsck_scan_digests(c, true);
	/* the frames of the chunks deleted above go first: a damaged blob
	 * among them would end the scan of the frames (-EBADMSG) */
	if (r == 0) {
		fsck_wr_flush(c, false);
		r = c->werr;
	}
	if (r == 0)
		r = hoard_store_scan_past(c->st, HOARD_CF_CHUNKDATA, frame_fix,
					  fsck_gap_known, c);
	fsck_wr_flush(c, true);
	if (r == 0)
		r = c->werr;
	/* what could not be read cannot be deleted key by key */
	for (size_t i = 0; r == 0 && i < c->n_gaps; i++)
		r = hoard_store_delete_range(c->st, c->gaps[i].cf,
					     c->gaps[i].lo, c->gaps[i].hi);
	if (r == 0)
		r = hoard_store_sync(c->st);
	/* the store is consistent again: the damage is dealt with */
	if (r == 0 && hoard_store_wal_damage(c->st))
		r = hoard_store_wal_damage_clear(c->st);
	return r;
}
