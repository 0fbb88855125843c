// SPDX-License-Identifier: MIT
/*
 * fsck and the volume operations a crash interrupted (docs/FORMAT.md 2.1:
 * `clone.<DST>` -> the clone's root and the last chunk id whose refcount
 * it raised; `rm.<NAME>` -> the removed volume's root).  The next start
 * finishes them (hoard_volume_recover: the clone is undone, the removal
 * completed).  Until then their inodes belong to no volume: fsck counts
 * them as `interrupted_inodes`, not as unreachable, and counts the
 * references of a clone's extents only to the chunks whose refcount the
 * clone raised (ids up to the recorded one), as the store does.
 *
 * The repair does what the next start would: it deletes the keys first
 * (one synced batch), then treats those inodes as the unreachable ones it
 * drops, recounting every refcount from what stays.  A crash between the
 * two leaves unreachable inodes and refcounts too high (a leak, never a
 * chunk freed in use), which the next fsck --repair fixes.
 *
 * Runs before the inode pass (inodes look their volume up here).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/records.h"
#include "fsck-internal.h"

#define CLONE_KEY "clone."
#define RM_KEY	  "rm."

static int pending_one(struct fsck *c, bool clone, const uint8_t *k, size_t kl,
		       const uint8_t *v, size_t vl)
{
	size_t pl = clone ? strlen(CLONE_KEY) : strlen(RM_KEY);
	struct fsck_pending *p;
	uint64_t root;
	struct hoard_id raised = {0};
	bool any = false;
	int r;

	r = clone ? clone_rec_decode(v, vl, &root, &raised, &any)
		  : setting_u64_decode(v, vl, &root);
	if (r < 0 || kl - pl > 64 || c->n_pend == 255) {
		fsck_problem(c, HOARD_FSCK_BAD_RECORDS);
		return 0;
	}
	p = hoard_grow(c->pend, &c->cap_pend, c->n_pend + 1, sizeof(*p), 4);
	if (!p)
		return -ENOMEM;
	c->pend = p;
	p = &c->pend[c->n_pend++];
	memset(p, 0, sizeof(*p));
	p->clone = clone;
	memcpy(p->key, k, kl);
	p->key_len = kl;
	p->root = root;
	p->raised = raised;
	p->any = any;
	c->rep->interrupted++;
	return 0;
}

static int clone_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		     size_t vl)
{
	return pending_one(ud, true, k, kl, v, vl);
}

static int rm_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		  size_t vl)
{
	return pending_one(ud, false, k, kl, v, vl);
}

int fsck_scan_pending(struct fsck *c)
{
	int r = hoard_store_scan(c->st, HOARD_CF_DEFAULT, CLONE_KEY,
				 strlen(CLONE_KEY), clone_one, c);

	if (r == 0)
		r = hoard_store_scan(c->st, HOARD_CF_DEFAULT, RM_KEY,
				     strlen(RM_KEY), rm_one, c);
	return r;
}

uint8_t fsck_pending_of(const struct fsck *c, uint64_t volume_root)
{
	for (size_t i = 0; i < c->n_pend; i++)
		if (c->pend[i].root == volume_root)
			return (uint8_t)(i + 1);
	return 0;
}

bool fsck_pending_counts(const struct fsck *c, const struct ient *own,
			 const struct hoard_id *id)
{
	const struct fsck_pending *p;

	if (!own || !own->pend || (own->flags & I_REACH))
		return true;
	p = &c->pend[own->pend - 1];
	if (!p->clone)
		return true; /* a removal lowers as it goes */
	return p->any && memcmp(id->b, p->raised.b, HOARD_ID_SIZE) <= 0;
}

int fsck_pending_drop(struct fsck *c)
{
	struct hoard_batch *b;
	int r;

	if (!c->n_pend)
		return 0;
	b = hoard_batch_new(c->st);
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_pend; i++)
		hoard_batch_delete(b, HOARD_CF_DEFAULT, c->pend[i].key,
				   c->pend[i].key_len);
	r = hoard_store_write(c->st, b, true);
	hoard_batch_free(b);
	if (r == 0)
		c->rep->writes += c->n_pend;
	return r;
}
