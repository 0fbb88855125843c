// SPDX-License-Identifier: MIT
/*
 * chunker: Gear content-defined chunking, version 1 (docs/FORMAT.md
 * section 4; the rules are in chunker.h).
 *
 * Offsets below are 0-based positions inside the current chunk.  The byte
 * at offset i:
 *   i <  MIN          is skipped (not hashed, never a cut);
 *   MIN <= i < AVG    is hashed, cut after it when h < 2^(64 - BITS_SMALL);
 *   AVG <= i < MAX    is hashed, cut after it when h < 2^(64 - BITS_LARGE);
 *   i == MAX - 1      ends the chunk if nothing cut it earlier.
 * So a chunk that is not the last one is MIN + 1 to MAX bytes long.
 *
 * "Top n bits of h are zero" is the single compare h < 2^(64 - n); each
 * region has its own loop so the inner loop has one compare and no
 * bookkeeping beyond the byte index.
 */
#include "hoard/chunker.h"

#include <stdbool.h>

_Static_assert(HOARD_CHUNK_MIN < HOARD_CHUNK_AVG, "chunk size order");
_Static_assert(HOARD_CHUNK_AVG < HOARD_CHUNK_MAX, "chunk size order");

#define SMALL_LIMIT (UINT64_C(1) << (64 - HOARD_CHUNKER_BITS_SMALL))
#define LARGE_LIMIT (UINT64_C(1) << (64 - HOARD_CHUNKER_BITS_LARGE))

/*
 * The Gear table, computed by the compiler.  splitmix64's n-th output
 * (n >= 1) is mix(seed + n * golden), so word i is GEAR(i) below; this is
 * the generator of Steele, Lea and Flood (and Vigna's splitmix64.c)
 * unrolled.  test_chunker.c recomputes it with the stateful generator.
 */
#define SM_SEED	   UINT64_C(0x686f6172645f6731) /* "hoard_g1" */
#define SM_GOLDEN  UINT64_C(0x9e3779b97f4a7c15)
#define SM_MIX1(z) (((z) ^ ((z) >> 30)) * UINT64_C(0xbf58476d1ce4e5b9))
#define SM_MIX2(z) (((z) ^ ((z) >> 27)) * UINT64_C(0x94d049bb133111eb))
#define SM_MIX3(z) ((z) ^ ((z) >> 31))
#define GEAR(i)	   SM_MIX3(SM_MIX2(SM_MIX1(SM_SEED + ((i) + 1) * SM_GOLDEN)))
#define GEAR4(i)   GEAR(i), GEAR((i) + 1), GEAR((i) + 2), GEAR((i) + 3)
#define GEAR16(i)  GEAR4(i), GEAR4((i) + 4), GEAR4((i) + 8), GEAR4((i) + 12)
#define GEAR64(i)                                                              \
	GEAR16(i), GEAR16((i) + 16), GEAR16((i) + 32), GEAR16((i) + 48)

static const uint64_t gear[256] = {
	GEAR64(UINT64_C(0)),
	GEAR64(UINT64_C(64)),
	GEAR64(UINT64_C(128)),
	GEAR64(UINT64_C(192)),
};

const uint64_t *hoard_chunker_gear(void)
{
	return gear;
}

void hoard_chunker_init(struct hoard_chunker *c)
{
	c->h = 0;
	c->len = 0;
}

/*
 * Hash p[0..n) into *hp until h < limit.  Returns the bytes consumed: up to
 * and including the cut byte (then *ret_found is set), or n.
 */
static inline size_t gear_scan(const uint8_t *p, size_t n, uint64_t *hp,
			       uint64_t limit, bool *ret_found)
{
	uint64_t h = *hp;
	size_t i = 0;

	/* Four bytes a round: one loop test per four bytes, and each step
	 * one lea (h * 2 + gear) on the dependency chain. */
#define GEAR_STEP(k)                                                           \
	do {                                                                   \
		h = (h << 1) + gear[p[i + (k)]];                               \
		if (__builtin_expect(h < limit, 0)) {                          \
			i += (k) + 1;                                          \
			goto found;                                            \
		}                                                              \
	} while (0)
	for (; n - i >= 4; i += 4) {
		GEAR_STEP(0);
		GEAR_STEP(1);
		GEAR_STEP(2);
		GEAR_STEP(3);
	}
	for (; i < n; i++)
		GEAR_STEP(0);
#undef GEAR_STEP
	*hp = h;
	return n;

found:
	*hp = h;
	*ret_found = true;
	return i;
}

static inline size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

size_t hoard_chunker_next(struct hoard_chunker *c, const uint8_t *data,
			  size_t len, int *ret_cut)
{
	uint64_t h = c->h, clen = c->len;
	bool found = false;
	size_t pos = 0, n;

	*ret_cut = 0;
	if (clen < HOARD_CHUNK_MIN) {
		n = min_size(HOARD_CHUNK_MIN - clen, len);
		pos += n;
		clen += n;
	}
	if (clen >= HOARD_CHUNK_MIN && clen < HOARD_CHUNK_AVG && pos < len) {
		n = min_size(HOARD_CHUNK_AVG - clen, len - pos);
		n = gear_scan(data + pos, n, &h, SMALL_LIMIT, &found);
		pos += n;
		clen += n;
		if (found)
			goto cut;
	}
	if (clen >= HOARD_CHUNK_AVG && pos < len) {
		n = min_size(HOARD_CHUNK_MAX - clen, len - pos);
		n = gear_scan(data + pos, n, &h, LARGE_LIMIT, &found);
		pos += n;
		clen += n;
		if (found || clen == HOARD_CHUNK_MAX)
			goto cut;
	}
	c->h = h;
	c->len = clen;
	return pos;

cut:
	hoard_chunker_init(c);
	*ret_cut = 1;
	return pos;
}
