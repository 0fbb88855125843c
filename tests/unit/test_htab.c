/* SPDX-License-Identifier: MIT */
/*
 * test_htab: the one hash table (htab.h) against a plain array, over
 * random puts, gets and deletes: byte keys of 8 and 16 bytes, a bad hash
 * (every key in 4 homes: long runs, wrap-around at the end of the table,
 * backward shifts across it), and a key of its own hash and equality
 * (a name that points elsewhere).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/htab.h"

#include "check.h"

struct ent {
	uint64_t k;
	uint64_t v;
};

struct ent16 {
	uint8_t k[16];
	uint32_t v;
};

#define KEYS 600

static uint64_t bad_hash(const void *key)
{
	uint64_t k;

	memcpy(&k, key, 8);
	return ~(k % 4); /* the top 4 slots: runs wrap around */
}

static uint64_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 17;
}

static void run_u64(uint64_t (*hash)(const void *), unsigned load)
{
	struct hoard_htab t = HOARD_HTAB_INIT(sizeof(struct ent), 8, load);
	static uint64_t ref[KEYS]; /* value + 1; 0: absent */
	uint64_t seed = 42;
	size_t n = 0;

	t.hash = hash;
	memset(ref, 0, sizeof(ref));
	for (int step = 0; step < 20000; step++) {
		uint64_t k = rnd(&seed) % KEYS, op = rnd(&seed) % 3;
		struct ent *e;
		bool added;

		if (op == 0) {
			e = hoard_htab_put(&t, &k, &added);
			CHECK(e && e->k == k);
			if (!e)
				break;
			CHECK_EQ(added, !ref[k]);
			CHECK(!added || e->v == 0);
			e->v = (uint64_t)step;
			n += !ref[k];
			ref[k] = (uint64_t)step + 1;
		} else if (op == 1) {
			CHECK_EQ(hoard_htab_del(&t, &k), ref[k] != 0);
			n -= ref[k] != 0;
			ref[k] = 0;
		} else {
			e = hoard_htab_get(&t, &k);
			CHECK_EQ(e != NULL, ref[k] != 0);
			if (e && ref[k])
				CHECK_EQ(e->v, ref[k] - 1);
		}
		CHECK_EQ(t.n, n);
		CHECK(t.n * 100 <= t.cap * load);
	}
	/* every key still there is found, and the walk sees each once */
	for (uint64_t k = 0; k < KEYS; k++) {
		struct ent *e = hoard_htab_get(&t, &k);

		CHECK_EQ(e != NULL, ref[k] != 0);
	}
	{
		size_t pos = 0, seen = 0;
		struct ent *e;

		while ((e = hoard_htab_next(&t, &pos))) {
			CHECK(e->k < KEYS && ref[e->k] == e->v + 1);
			seen++;
		}
		CHECK_EQ(seen, n);
	}
	hoard_htab_free(&t);
	CHECK(hoard_htab_get(&t, &seed) == NULL);
	hoard_htab_free(&t);
}

static void run_id(void)
{
	struct hoard_htab t = HOARD_HTAB_INIT(sizeof(struct ent16), 16, 75);
	uint8_t k[16];

	CHECK_EQ(hoard_htab_reserve(&t, 1000), 0);
	CHECK(t.cap >= 1334 && t.cap <= 4096);
	for (uint32_t i = 0; i < 5000; i++) {
		struct ent16 *e;

		memset(k, 0, sizeof(k));
		memcpy(k + 15, &i, 1); /* keys that differ only at the end */
		memcpy(k, &i, sizeof(i));
		e = hoard_htab_put(&t, k, NULL);
		CHECK(e != NULL);
		if (e)
			e->v = i;
	}
	CHECK_EQ(t.n, 5000);
	for (uint32_t i = 0; i < 5000; i += 7) {
		struct ent16 *e;

		memset(k, 0, sizeof(k));
		memcpy(k + 15, &i, 1);
		memcpy(k, &i, sizeof(i));
		e = hoard_htab_get(&t, k);
		CHECK(e && e->v == i);
	}
	hoard_htab_free(&t);
}

struct nent {
	const char *name;
	int v;
};

static uint64_t name_hash(const void *key)
{
	const char *s = *(const char *const *)key;
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static bool name_eq(const void *a, const void *b)
{
	return !strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void run_names(void)
{
	struct hoard_htab t = HOARD_HTAB_INIT(sizeof(struct nent),
					      sizeof(const char *), 50);
	char a[] = "alpha", a2[] = "alpha", b[] = "beta";
	const char *ka = a, *ka2 = a2, *kb = b;
	struct nent *e;
	bool added;

	t.hash = name_hash;
	t.eq = name_eq;
	e = hoard_htab_put(&t, &ka, &added);
	CHECK(e && added);
	e = hoard_htab_put(&t, &ka2, &added); /* same name, other pointer */
	CHECK(e && !added && e->name == a);
	CHECK(hoard_htab_get(&t, &kb) == NULL);
	CHECK(hoard_htab_put(&t, &kb, &added) && added);
	CHECK_EQ(t.n, 2);
	CHECK(hoard_htab_del(&t, &ka2));
	CHECK(hoard_htab_get(&t, &ka) == NULL);
	hoard_htab_free(&t);
}

int main(void)
{
	run_u64(NULL, 50);
	run_u64(NULL, 75);
	run_u64(bad_hash, 90);
	run_id();
	run_names();
	return CHECK_DONE();
}
