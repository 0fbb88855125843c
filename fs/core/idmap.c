/* SPDX-License-Identifier: MIT */
/* idmap: chunk id -> counters, over the one hash table (htab.h: open
 * addressing, backward-shift deletion, at most 3/4 full).  Not
 * thread-safe: the caller's lock protects a shared map (fs->inflight). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs-internal.h"

int idmap_init(struct idmap *m, size_t cap)
{
	m->t = HOARD_HTAB_INIT(sizeof(struct idmap_ent),
			       sizeof(struct hoard_id), 75);
	return hoard_htab_reserve(&m->t, cap);
}

void idmap_free(struct idmap *m)
{
	hoard_htab_free(&m->t);
}

struct idmap_ent *idmap_get(struct idmap *m, const struct hoard_id *id)
{
	return hoard_htab_get(&m->t, id);
}

struct idmap_ent *idmap_add(struct idmap *m, const struct hoard_id *id)
{
	return hoard_htab_put(&m->t, id, NULL);
}

void idmap_del(struct idmap *m, const struct hoard_id *id)
{
	hoard_htab_del(&m->t, id);
}

struct idmap_ent *idmap_next(const struct idmap *m,
			     const struct idmap_ent *prev)
{
	size_t pos = 0;

	if (prev)
		pos = (size_t)((const uint8_t *)prev - m->t.e) / m->t.esz + 1;
	return hoard_htab_next(&m->t, &pos);
}
