// SPDX-License-Identifier: MIT
/*
 * Property tests for the chunker: the rules of chunker.h checked against a
 * byte-at-a-time reference written from the spec, sizes, coverage,
 * streaming in pieces of any size, re-synchronisation after an edit, and
 * the Gear table against an independent splitmix64.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/chunker.h"
#include "check.h"

#define KiB	    (1024u)
#define MiB	    (1024u * 1024u)
#define SMALL_LIMIT (UINT64_C(1) << (64 - HOARD_CHUNKER_BITS_SMALL))
#define LARGE_LIMIT (UINT64_C(1) << (64 - HOARD_CHUNKER_BITS_LARGE))

/* xorshift64*: deterministic test data. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(0x2545f4914f6cdd1d);
}

static uint8_t *random_buf(size_t n, uint64_t seed)
{
	uint8_t *p = malloc(n);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng_next(&seed) >> 56);
	return p;
}

/* Chunk ends (exclusive offsets), the last one equal to the input size. */
struct cuts {
	size_t *end;
	size_t n, cap;
};

static void cuts_add(struct cuts *c, size_t end)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->end = realloc(c->end, c->cap * sizeof(*c->end));
	}
	c->end[c->n++] = end;
}

static size_t chunk_len(const struct cuts *c, size_t i)
{
	return c->end[i] - (i ? c->end[i - 1] : 0);
}

/*
 * Chunk data[0..n) fed in pieces: piece == 0 means random sizes in
 * 1..max_piece from seed, else fixed pieces of that size.
 */
static struct cuts chunk_pieces(const uint8_t *data, size_t n, size_t piece,
				size_t max_piece, uint64_t seed)
{
	struct hoard_chunker ch;
	struct cuts c = {0};
	size_t pos = 0;

	hoard_chunker_init(&ch);
	while (pos < n) {
		size_t len = piece ? piece : 1 + rng_next(&seed) % max_piece;
		size_t end = pos + (len < n - pos ? len : n - pos);

		while (pos < end) {
			size_t k;
			int cut;

			k = hoard_chunker_next(&ch, data + pos, end - pos,
					       &cut);
			if (k == 0 || k > end - pos) {
				CHECK(!"each call consumes 1..len bytes");
				goto out_end_last;
			}
			pos += k;
			if (cut)
				cuts_add(&c, pos);
		}
	}
out_end_last:
	if (!c.n || c.end[c.n - 1] != n)
		cuts_add(&c, n);
	return c;
}

static struct cuts chunk_oneshot(const uint8_t *data, size_t n)
{
	return chunk_pieces(data, n, n ? n : 1, 0, 0);
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t ref_gear[256];

static void test_gear_table(void)
{
	const uint64_t *g = hoard_chunker_gear();
	uint64_t x = UINT64_C(0x686f6172645f6731);
	int bad = 0;

	for (int i = 0; i < 256; i++) {
		ref_gear[i] = splitmix64(&x);
		bad += g[i] != ref_gear[i];
	}
	CHECK_EQ(bad, 0);
	/* Pin the first word: splitmix64 itself must not drift. */
	CHECK(ref_gear[0] != 0 && g[0] == ref_gear[0]);
}

/* The spec, one byte at a time, with the test's own table. */
static struct cuts chunk_reference(const uint8_t *data, size_t n)
{
	struct cuts c = {0};
	size_t start = 0;
	uint64_t h = 0;

	for (size_t pos = 0; pos < n; pos++) {
		size_t off = pos - start;
		bool cut = false;

		if (off >= HOARD_CHUNK_MIN) {
			h = (h << 1) + ref_gear[data[pos]];
			if (off < HOARD_CHUNK_AVG)
				cut = (h >> (64 - HOARD_CHUNKER_BITS_SMALL)) ==
				      0;
			else
				cut = (h >> (64 - HOARD_CHUNKER_BITS_LARGE)) ==
				      0;
		}
		if (cut || off + 1 == HOARD_CHUNK_MAX) {
			cuts_add(&c, pos + 1);
			start = pos + 1;
			h = 0;
		}
	}
	if (!c.n || c.end[c.n - 1] != n)
		cuts_add(&c, n);
	return c;
}

static bool cuts_equal(const struct cuts *a, const struct cuts *b)
{
	return a->n == b->n &&
	       memcmp(a->end, b->end, a->n * sizeof(*a->end)) == 0;
}

/* Sizes within bounds, and the chunks put back together are the input. */
static void check_cover(const uint8_t *data, size_t n, const struct cuts *c)
{
	uint8_t *out = malloc(n ? n : 1);
	size_t pos = 0, bad = 0;

	for (size_t i = 0; i < c->n; i++) {
		size_t len = chunk_len(c, i);

		if (c->end[i] <= pos || c->end[i] > n)
			break;
		if (i + 1 < c->n &&
		    (len < HOARD_CHUNK_MIN || len > HOARD_CHUNK_MAX))
			bad++;
		memcpy(out + pos, data + pos, len);
		pos = c->end[i];
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(pos, n);
	CHECK(pos == n && memcmp(out, data, n) == 0);
	free(out);
}

static void test_random(const uint8_t *data, size_t n)
{
	struct cuts one = chunk_oneshot(data, n);
	struct cuts ref = chunk_reference(data, n);
	uint64_t avg;

	CHECK(one.n > 100);
	CHECK(cuts_equal(&one, &ref));
	check_cover(data, n, &one);

	if (one.n > 1) {
		avg = one.end[one.n - 2] / (one.n - 1);
		CHECK(avg >= 48 * KiB && avg <= 96 * KiB);
	}
	free(one.end);
	free(ref.end);
}

static void test_streaming(const uint8_t *data, size_t n)
{
	static const size_t fixed[] = {1, 4 * KiB, 128 * KiB, 3, 65537};
	struct cuts one = chunk_oneshot(data, n);
	struct cuts s;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		s = chunk_pieces(data, n, fixed[i], 0, 0);
		CHECK(cuts_equal(&one, &s));
		free(s.end);
	}
	s = chunk_pieces(data, n, 0, MiB, 42);
	CHECK(cuts_equal(&one, &s));
	free(s.end);
	s = chunk_pieces(data, n, 0, 100, 7);
	CHECK(cuts_equal(&one, &s));
	free(s.end);
	free(one.end);
}

/*
 * Chunks of b (a with `del` bytes at `at` replaced by `ins` new bytes) that
 * are not chunks of a at the same place, shifted after the edit.
 */
static size_t changed_chunks(const struct cuts *a, const struct cuts *b,
			     size_t at, size_t ins, size_t del)
{
	size_t changed = 0, j = 0;

	for (size_t i = 0; i < b->n; i++) {
		size_t start = i ? b->end[i - 1] : 0, end = b->end[i];

		if (start >= at + ins) {
			start = start - ins + del;
			end = end - ins + del;
		} else if (end > at) {
			changed++;
			continue;
		}
		while (j < a->n && a->end[j] < end)
			j++;
		if (j == a->n || a->end[j] != end ||
		    (j ? a->end[j - 1] : 0) != start)
			changed++;
	}
	return changed;
}

static void test_edit(const uint8_t *a, size_t n, size_t at, size_t ins,
		      size_t del)
{
	uint8_t *b = malloc(n + ins);
	struct cuts ca = chunk_oneshot(a, n), cb;
	size_t nb = n + ins - del, changed;

	memcpy(b, a, at);
	memset(b + at, 0x5a, ins);
	memcpy(b + at + ins, a + at + del, n - at - del);
	cb = chunk_oneshot(b, nb);
	changed = changed_chunks(&ca, &cb, at, ins, del);
	CHECK(cb.n > 100);
	CHECK(changed <= 3);
	/* The measure must see a real change: an edit changes a chunk. */
	CHECK(changed >= 1);
	free(ca.end);
	free(cb.end);
	free(b);
}

static void test_zeros(void)
{
	size_t n = 4 * HOARD_CHUNK_MAX + 100;
	uint8_t *z = calloc(1, n);
	struct cuts c = chunk_oneshot(z, n);

	CHECK_EQ(c.n, 5);
	for (size_t i = 0; i < 4 && i < c.n; i++)
		CHECK_EQ(c.end[i], (i + 1) * HOARD_CHUNK_MAX);
	free(c.end);
	free(z);
}

/*
 * Make the hash after data[off] fall in [lo, hi) by choosing data[off-2..off],
 * given the bytes before (the chunk starts at 0 and off >= MIN + 2).
 */
static bool plant(uint8_t *data, size_t off, uint64_t lo, uint64_t hi)
{
	uint64_t h0 = 0;

	for (size_t i = HOARD_CHUNK_MIN; i + 2 < off; i++)
		h0 = (h0 << 1) + ref_gear[data[i]];
	for (int x = 0; x < 256; x++) {
		for (int y = 0; y < 256; y++) {
			uint64_t hxy = (h0 << 3) + (ref_gear[x] << 2) +
				       (ref_gear[y] << 1);

			for (int z = 0; z < 256; z++) {
				uint64_t h = hxy + ref_gear[z];

				if (h >= lo && h < hi) {
					data[off - 2] = (uint8_t)x;
					data[off - 1] = (uint8_t)y;
					data[off] = (uint8_t)z;
					return true;
				}
			}
		}
	}
	return false;
}

/* Zeros with one planted hash value: the first chunk must end at want. */
static void check_planted(size_t off, uint64_t lo, uint64_t hi, size_t want)
{
	size_t n = HOARD_CHUNK_MAX + 1000;
	uint8_t *data = calloc(1, n);
	struct cuts c, s;

	CHECK(plant(data, off, lo, hi));
	c = chunk_oneshot(data, n);
	s = chunk_pieces(data, n, 1, 0, 0);
	CHECK(c.n >= 2);
	CHECK_EQ(c.end[0], want);
	CHECK(cuts_equal(&c, &s));
	free(c.end);
	free(s.end);
	free(data);
}

/* The boundaries between the regions, to the byte. */
static void test_region_edges(void)
{
	size_t min = HOARD_CHUNK_MIN, avg = HOARD_CHUNK_AVG;
	size_t max = HOARD_CHUNK_MAX;

	/* Zeros alone never cut before max (test_zeros). */
	check_planted(min + 2, 0, SMALL_LIMIT, min + 3);
	check_planted(avg - 1, 0, SMALL_LIMIT, avg);
	/* Easy enough for the large region, too hard for the small one. */
	check_planted(avg - 1, SMALL_LIMIT, LARGE_LIMIT, max);
	check_planted(avg, SMALL_LIMIT, LARGE_LIMIT, avg + 1);
	check_planted(max - 2, 0, LARGE_LIMIT, max - 1);
}

static void test_small_inputs(void)
{
	struct hoard_chunker ch;
	uint8_t byte = 0;
	int cut = 1;

	hoard_chunker_init(&ch);
	CHECK_EQ(hoard_chunker_next(&ch, &byte, 0, &cut), 0);
	CHECK_EQ(cut, 0);
	CHECK_EQ(hoard_chunker_next(&ch, &byte, 1, &cut), 1);
	CHECK_EQ(cut, 0);
}

int main(void)
{
	size_t n = 32 * MiB;
	uint8_t *data = random_buf(n, 0x1234567);

	test_gear_table();
	test_small_inputs();
	test_zeros();
	test_region_edges();
	test_random(data, n);
	test_streaming(data, n);
	test_edit(data, n, 1000, 5, 0);
	test_edit(data, n, 16 * MiB + 12345, 3, 0);
	test_edit(data, n, 5000, 0, 7);
	test_edit(data, n, 8 * MiB, 100, 30);
	free(data);

	/* Low-entropy input: four symbols. */
	data = random_buf(8 * MiB, 99);
	for (size_t i = 0; i < 8 * MiB; i++)
		data[i] &= 3;
	test_random(data, 8 * MiB);
	free(data);
	return CHECK_DONE();
}
