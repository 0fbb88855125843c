// SPDX-License-Identifier: MIT
/*
 * extents: counting a file's committed extents (docs/FORMAT.md 2.4) into an
 * idmap of chunk refcount changes, for a commit (commit.c), a purge (meta.c),
 * a volume removal (volume.c) and user.hoard.info (info.c).  Below meta.c
 * and file.c: it calls only the store and idmap.c.
 */
#include <errno.h>
#include <string.h>

#include "hoard/util.h"
#include "fs-internal.h"

struct ext_count {
	struct idmap *m;
	int delta;
	struct hoard_batch *b;
};

static int ext_count_one(void *ud, const uint8_t *k, size_t kl,
			 const uint8_t *v, size_t vl)
{
	struct ext_count *x = ud;
	struct idmap_ent *e;
	struct hoard_id id;
	uint32_t len;

	if (extent_val_decode(v, vl, &id, &len) < 0)
		return -EBADMSG;
	e = idmap_add(x->m, &id);
	if (!e)
		return -ENOMEM;
	e->count += x->delta;
	e->raw_size = len;
	if (x->b)
		hoard_batch_delete(x->b, HOARD_CF_EXTENTS, k, kl);
	return 0;
}

int extents_count(struct hoard_fs *fs, uint64_t ino, struct idmap *m, int delta,
		  struct hoard_batch *b)
{
	struct ext_count x = {.m = m, .delta = delta, .b = b};
	uint8_t k[8];

	ino_key(k, ino);
	return hoard_store_scan(fs->st, HOARD_CF_EXTENTS, k, 8, ext_count_one,
				&x);
}
