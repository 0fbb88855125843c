// SPDX-License-Identifier: MIT
/*
 * Tests for keyed chunk ids (docs/FORMAT.md section 5): determinism, key
 * and bit sensitivity, the exact XXH3-128 canonical form, hex, keys.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "hoard/hash.h"
#include "hoard/util.h"
#include "check.h"

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(0x2545f4914f6cdd1d);
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng_next(&seed) >> 56);
}

static void make_key(struct hoard_key *key, uint64_t seed)
{
	uint8_t secret[HOARD_SECRET_SIZE];

	fill_random(secret, sizeof(secret), seed);
	hoard_key_init(key, secret);
	CHECK(memcmp(key->secret, secret, sizeof(secret)) == 0);
}

static void test_deterministic(void)
{
	struct hoard_key k1, k2;
	struct hoard_id a, b;
	uint8_t data[5000];

	fill_random(data, sizeof(data), 1);
	make_key(&k1, 10);
	make_key(&k2, 10);
	hoard_id_compute(&k1, data, sizeof(data), &a);
	hoard_id_compute(&k2, data, sizeof(data), &b);
	CHECK(hoard_id_equal(&a, &b));

	make_key(&k2, 11);
	hoard_id_compute(&k2, data, sizeof(data), &b);
	CHECK(!hoard_id_equal(&a, &b));
	/* One bit of the key is enough. */
	k2 = k1;
	k2.secret[HOARD_SECRET_SIZE - 1] ^= 1;
	hoard_id_compute(&k2, data, sizeof(data), &b);
	CHECK(!hoard_id_equal(&a, &b));
}

/* Every single-bit flip of a message changes its id. */
static void test_bit_flips(void)
{
	struct hoard_key key;
	struct hoard_id base, id;
	uint8_t data[300];
	size_t same = 0;

	make_key(&key, 20);
	fill_random(data, sizeof(data), 2);
	hoard_id_compute(&key, data, sizeof(data), &base);
	for (size_t bit = 0; bit < 8 * sizeof(data); bit++) {
		data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		hoard_id_compute(&key, data, sizeof(data), &id);
		same += hoard_id_equal(&base, &id);
		data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK_EQ(same, 0);
	/* Length is part of the identity: a prefix is another chunk. */
	hoard_id_compute(&key, data, sizeof(data) - 1, &id);
	CHECK(!hoard_id_equal(&base, &id));
}

/* The id is XXH3_128bits_withSecret, high 64 bits first, big-endian. */
static void test_known_answer(void)
{
	static const size_t lens[] = {0,   1,	3,   16,   17,	  128,
				      129, 240, 241, 1000, 65536, 262144};
	static uint8_t data[262144];
	struct hoard_key key;
	struct hoard_id id;
	size_t bad = 0;

	make_key(&key, 30);
	fill_random(data, sizeof(data), 3);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		XXH128_hash_t h = XXH3_128bits_withSecret(
			data, lens[i], key.secret, HOARD_SECRET_SIZE);
		XXH128_canonical_t c;

		XXH128_canonicalFromHash(&c, h);
		hoard_id_compute(&key, data, lens[i], &id);
		bad += memcmp(id.b, c.digest, HOARD_ID_SIZE) != 0;
		bad += hoard_get_be64(id.b) != h.high64;
		bad += hoard_get_be64(id.b + 8) != h.low64;
	}
	CHECK_EQ(bad, 0);
}

/*
 * Pinned value: ids are stored, so they must never change with a library
 * upgrade.  Secret byte i is (7 * i + 3) mod 256; the chunk is "hoard".
 * (Computed with libxxhash 0.8.1; XXH3 output is frozen since 0.8.0.)
 */
#define PINNED_HOARD_ID "da5072197077a1e1abe2c4f838cb1bca"

static void test_pinned(void)
{
	uint8_t secret[HOARD_SECRET_SIZE];
	char hex[HOARD_ID_HEX_SIZE];
	struct hoard_key key;
	struct hoard_id id;

	for (int i = 0; i < HOARD_SECRET_SIZE; i++)
		secret[i] = (uint8_t)(7 * i + 3);
	hoard_key_init(&key, secret);
	hoard_id_compute(&key, "hoard", 5, &id);
	hoard_id_hex(&id, hex);
	CHECK(strcmp(hex, PINNED_HOARD_ID) == 0);
	if (strcmp(hex, PINNED_HOARD_ID) != 0)
		fprintf(stderr, "pinned id: got %s\n", hex);
}

static void test_hex(void)
{
	static const char *bad[] = {
		"",
		"0",
		"000102030405060708090a0b0c0d0e0",
		"000102030405060708090a0b0c0d0e0f0",
		"000102030405060708090a0b0c0d0e0g",
		"g00102030405060708090a0b0c0d0e0f",
		" 00102030405060708090a0b0c0d0e0f",
		"000102030405060708090a0b0c0d0e0f ",
		"0x0102030405060708090a0b0c0d0e0f",
		"00010203040506070809-a0b0c0d0e0f",
	};
	char hex[HOARD_ID_HEX_SIZE];
	struct hoard_id id, back;

	for (int i = 0; i < HOARD_ID_SIZE / 2; i++) {
		id.b[i] = (uint8_t)(0x01 + 0x22 * i);
		id.b[HOARD_ID_SIZE - 1 - i] = (uint8_t)(0x10 + 0x22 * i);
	}
	hoard_id_hex(&id, hex);
	CHECK_EQ(strlen(hex), 2 * HOARD_ID_SIZE);
	CHECK(strcmp(hex, "0123456789abcdeffedcba9876543210") == 0);
	CHECK_EQ(hoard_id_parse(hex, &back), 0);
	CHECK(hoard_id_equal(&id, &back));
	CHECK_EQ(hoard_id_parse("0123456789ABCDEFfedcba9876543210", &back), 0);
	CHECK(hoard_id_equal(&id, &back));

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		back = id;
		CHECK_EQ(hoard_id_parse(bad[i], &back), -EINVAL);
		/* ret_id is set on success only. */
		CHECK(hoard_id_equal(&id, &back));
	}
	CHECK_EQ(hoard_id_parse(NULL, &back), -EINVAL);
}

static void test_generate(void)
{
	static const uint8_t zero[HOARD_SECRET_SIZE];
	struct hoard_key a, b;

	CHECK_EQ(hoard_key_generate(&a), 0);
	CHECK_EQ(hoard_key_generate(&b), 0);
	CHECK(memcmp(a.secret, b.secret, HOARD_SECRET_SIZE) != 0);
	CHECK(memcmp(a.secret, zero, HOARD_SECRET_SIZE) != 0);
}

int main(void)
{
	test_deterministic();
	test_bit_flips();
	test_known_answer();
	test_pinned();
	test_hex();
	test_generate();
	return CHECK_DONE();
}
