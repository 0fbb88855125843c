/* SPDX-License-Identifier: MIT */
/* htab: the one in-memory hash table (include/hoard/htab.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/htab.h"

uint64_t hoard_htab_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t hash_of(const struct hoard_htab *t, const void *key)
{
	const uint8_t *p = key;
	uint64_t h = 0, w;
	size_t i;

	if (t->hash)
		return t->hash(key);
	for (i = 0; i + 8 <= t->ksz; i += 8) {
		memcpy(&w, p + i, 8);
		h = hoard_htab_mix64(h ^ w);
	}
	if (i < t->ksz) {
		w = 0;
		memcpy(&w, p + i, t->ksz - i);
		h = hoard_htab_mix64(h ^ w);
	}
	return h;
}

static bool key_eq(const struct hoard_htab *t, const void *a, const void *b)
{
	return t->eq ? t->eq(a, b) : !memcmp(a, b, t->ksz);
}

static size_t home(const struct hoard_htab *t, const void *key)
{
	return (size_t)hash_of(t, key) & (t->cap - 1);
}

static void *at(const struct hoard_htab *t, size_t i)
{
	return t->e + i * t->esz;
}

/* The slot of key, or of the empty slot where it would go (cap > 0). */
static size_t probe(const struct hoard_htab *t, const void *key)
{
	size_t i = home(t, key);

	while (t->used[i] && !key_eq(t, at(t, i), key))
		i = (i + 1) & (t->cap - 1);
	return i;
}

static int resize(struct hoard_htab *t, size_t cap)
{
	struct hoard_htab old = *t;

	t->e = malloc(cap * t->esz);
	t->used = calloc(cap, 1);
	if (!t->e || !t->used) {
		free(t->e);
		free(t->used);
		t->e = old.e;
		t->used = old.used;
		return -ENOMEM;
	}
	t->cap = cap;
	for (size_t i = 0; i < old.cap; i++) {
		size_t j;

		if (!old.used[i])
			continue;
		j = probe(t, at(&old, i));
		memcpy(at(t, j), at(&old, i), t->esz);
		t->used[j] = 1;
	}
	free(old.e);
	free(old.used);
	return 0;
}

static bool fits(const struct hoard_htab *t, size_t cap, size_t n)
{
	return n * 100 <= cap * t->load;
}

int hoard_htab_reserve(struct hoard_htab *t, size_t n)
{
	size_t cap = t->cap ? t->cap : (t->min_cap ? t->min_cap : 16);

	while (!fits(t, cap, n))
		cap *= 2;
	return cap == t->cap ? 0 : resize(t, cap);
}

void *hoard_htab_get(const struct hoard_htab *t, const void *key)
{
	size_t i;

	if (!t->n)
		return NULL;
	i = probe(t, key);
	return t->used[i] ? at(t, i) : NULL;
}

void *hoard_htab_put(struct hoard_htab *t, const void *key, bool *ret_added)
{
	size_t i;

	if (ret_added)
		*ret_added = false;
	if (t->cap) {
		i = probe(t, key);
		if (t->used[i])
			return at(t, i);
	}
	if (hoard_htab_reserve(t, t->n + 1) < 0)
		return NULL;
	i = probe(t, key);
	memset(at(t, i), 0, t->esz);
	memcpy(at(t, i), key, t->ksz);
	t->used[i] = 1;
	t->n++;
	if (ret_added)
		*ret_added = true;
	return at(t, i);
}

bool hoard_htab_del(struct hoard_htab *t, const void *key)
{
	size_t i, j, k;

	if (!t->n)
		return false;
	i = probe(t, key);
	if (!t->used[i])
		return false;
	t->used[i] = 0;
	t->n--;
	/* shift later members of the probe run back into the gap */
	for (j = (i + 1) & (t->cap - 1); t->used[j];
	     j = (j + 1) & (t->cap - 1)) {
		k = home(t, at(t, j));
		if ((j > i && (k <= i || k > j)) ||
		    (j < i && k <= i && k > j)) {
			memcpy(at(t, i), at(t, j), t->esz);
			t->used[i] = 1;
			t->used[j] = 0;
			i = j;
		}
	}
	return true;
}

void *hoard_htab_next(const struct hoard_htab *t, size_t *pos)
{
	while (*pos < t->cap) {
		size_t i = (*pos)++;

		if (t->used[i])
			return at(t, i);
	}
	return NULL;
}

void hoard_htab_free(struct hoard_htab *t)
{
	free(t->e);
	free(t->used);
	t->e = t->used = NULL;
	t->cap = t->n = 0;
}
