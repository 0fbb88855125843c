/* SPDX-License-Identifier: MIT */
/* idmap: chunk id -> counters, open addressing with linear probing and
 * backward-shift deletion (no tombstones).  Not thread-safe. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs-internal.h"

static size_t slot_of(const struct idmap *m, const struct hoard_id *id)
{
	uint64_t h;

	/* ids are keyed hashes already: any 8 bytes are uniform */
	memcpy(&h, id->b + 8, sizeof(h));
	return (size_t)h & (m->cap - 1);
}

int idmap_init(struct idmap *m, size_t cap)
{
	size_t c = 16;

	while (c < cap * 2)
		c <<= 1;
	m->e = calloc(c, sizeof(*m->e));
	if (!m->e)
		return -ENOMEM;
	m->cap = c;
	m->n = 0;
	return 0;
}

void idmap_free(struct idmap *m)
{
	free(m->e);
	m->e = NULL;
	m->cap = m->n = 0;
}

struct idmap_ent *idmap_get(struct idmap *m, const struct hoard_id *id)
{
	for (size_t i = slot_of(m, id);; i = (i + 1) & (m->cap - 1)) {
		if (!m->e[i].used)
			return NULL;
		if (hoard_id_equal(&m->e[i].id, id))
			return &m->e[i];
	}
}

static int grow(struct idmap *m)
{
	struct idmap old = *m;

	if (idmap_init(m, old.cap) < 0) {
		*m = old;
		return -ENOMEM;
	}
	for (size_t i = 0; i < old.cap; i++) {
		if (old.e[i].used)
			*idmap_add(m, &old.e[i].id) = old.e[i];
	}
	free(old.e);
	return 0;
}

struct idmap_ent *idmap_add(struct idmap *m, const struct hoard_id *id)
{
	size_t i;

	if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0)
		return NULL;
	for (i = slot_of(m, id);; i = (i + 1) & (m->cap - 1)) {
		if (!m->e[i].used)
			break;
		if (hoard_id_equal(&m->e[i].id, id))
			return &m->e[i];
	}
	memset(&m->e[i], 0, sizeof(m->e[i]));
	m->e[i].id = *id;
	m->e[i].used = true;
	m->n++;
	return &m->e[i];
}

void idmap_del(struct idmap *m, const struct hoard_id *id)
{
	struct idmap_ent *e = idmap_get(m, id);
	size_t i, j, k;

	if (!e)
		return;
	i = (size_t)(e - m->e);
	m->e[i].used = false;
	m->n--;
	/* Shift later members of the probe run back into the gap. */
	for (j = (i + 1) & (m->cap - 1); m->e[j].used;
	     j = (j + 1) & (m->cap - 1)) {
		k = slot_of(m, &m->e[j].id);
		if ((j > i && (k <= i || k > j)) ||
		    (j < i && (k <= i && k > j))) {
			m->e[i] = m->e[j];
			m->e[j].used = false;
			i = j;
		}
	}
}
