// SPDX-License-Identifier: MIT
/*
 * Tests for the chunk codec: round trips, the raw-or-zstd rule, levels,
 * corrupt frames (flips, truncations, bad tags, wrong sizes, garbage),
 * small buffers and concurrent use.
 *
 * zstd frames carry no checksum, so a flipped literal byte can decode "fine"
 * to other bytes; the chunk id check above the codec catches that.  Here a
 * corrupt frame must give -EBADMSG or a result of the right length, and
 * must never write past expect_len or crash.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "hoard/codec.h"
#include "check.h"

#define KiB    (1024u)
#define CANARY 0xa5

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

static void fill_text(uint8_t *p, size_t n, uint64_t seed)
{
	static const char *words[] = {"chunk ", "store ",  "hoard ", "fuse ",
				      "inode ", "extent ", "zstd ",  "\n"};
	size_t i = 0;

	while (i < n) {
		const char *w = words[rng_next(&seed) % 8];

		for (; *w && i < n; w++)
			p[i++] = (uint8_t)*w;
	}
}

/* Encode, check the tag, decode, compare; returns the frame size or -1. */
static ssize_t round_trip(const uint8_t *src, size_t len, int level,
			  int want_tag)
{
	size_t cap = hoard_codec_bound(len);
	uint8_t *frame = malloc(cap), *out = malloc(len + 1);
	ssize_t n, d = -1;

	n = hoard_codec_encode(src, len, frame, cap, level);
	CHECK(n >= 1 && (size_t)n <= cap);
	if (n < 1)
		goto out_free;
	CHECK_EQ(frame[0], want_tag);
	if (frame[0] == HOARD_CODEC_RAW)
		CHECK_EQ(n, len + 1);
	else /* kept only when it saves at least a tenth */
		CHECK(10 * (len - (size_t)(n - 1)) >= len);
	d = hoard_codec_decode(frame, (size_t)n, out, len + 1, len);
	CHECK_EQ(d, len);
	CHECK(d == (ssize_t)len && memcmp(out, src, len) == 0);
out_free:
	free(frame);
	free(out);
	return d == (ssize_t)len ? n : -1;
}

static void test_round_trips(void)
{
	size_t len = 256 * KiB;
	uint8_t *buf = malloc(len);
	ssize_t n;

	fill_random(buf, len, 1);
	round_trip(buf, len, 1, HOARD_CODEC_RAW);
	round_trip(buf, len, 19, HOARD_CODEC_RAW);

	/* Half random, half zeros: saves about half. */
	memset(buf + len / 2, 0, len / 2);
	round_trip(buf, len, 1, HOARD_CODEC_ZSTD);
	/* Zeros in 5% or 8%: saves less than a tenth, so raw; 15%: zstd. */
	fill_random(buf, len, 2);
	memset(buf, 0, len / 20);
	round_trip(buf, len, 3, HOARD_CODEC_RAW);
	memset(buf, 0, len * 8 / 100);
	round_trip(buf, len, 1, HOARD_CODEC_RAW);
	memset(buf, 0, len * 15 / 100);
	round_trip(buf, len, 1, HOARD_CODEC_ZSTD);

	memset(buf, 0, len);
	n = round_trip(buf, len, 1, HOARD_CODEC_ZSTD);
	CHECK(n > 0 && (size_t)n < len / 100);
	round_trip(buf, len, 0, HOARD_CODEC_RAW);

	fill_text(buf, len, 3);
	for (int level = 1; level <= 19; level++)
		round_trip(buf, 64 * KiB, level, HOARD_CODEC_ZSTD);
	round_trip(buf, len, 0, HOARD_CODEC_RAW);

	round_trip(buf, 0, 1, HOARD_CODEC_RAW);
	round_trip(buf, 1, 1, HOARD_CODEC_RAW);
	round_trip(buf, 1, 0, HOARD_CODEC_RAW);
	free(buf);
}

static void test_levels(void)
{
	static const int bad[] = {-1, -5, 20, 22, 1000};
	uint8_t src[100] = {0}, dst[200];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(hoard_codec_encode(src, sizeof(src), dst, sizeof(dst),
					    bad[i]),
			 -EINVAL);
}

static void test_small_buffers(void)
{
	size_t len = 4 * KiB;
	uint8_t src[4 * KiB], frame[4 * KiB + 1], out[4 * KiB];
	ssize_t n;

	memset(src, 'x', len);
	CHECK_EQ(hoard_codec_bound(len), sizeof(frame));
	CHECK_EQ(hoard_codec_encode(src, len, frame, len, 1), -ENOBUFS);
	CHECK_EQ(hoard_codec_encode(src, 0, frame, 0, 1), -ENOBUFS);
	n = hoard_codec_encode(src, len, frame, sizeof(frame), 1);
	CHECK(n > 0);
	CHECK_EQ(hoard_codec_decode(frame, (size_t)n, out, len - 1, len),
		 -ENOBUFS);
}

/*
 * Decode a possibly corrupt frame into a canary-filled buffer: -EBADMSG or
 * exactly len bytes, and nothing written past len.
 */
static ssize_t decode_checked(const uint8_t *frame, size_t n, size_t len)
{
	size_t cap = len + 64;
	uint8_t *out = malloc(cap);
	ssize_t d;
	size_t i;

	memset(out, CANARY, cap);
	d = hoard_codec_decode(frame, n, out, cap, len);
	CHECK(d == -EBADMSG || d == (ssize_t)len);
	for (i = len; i < cap && out[i] == CANARY; i++)
		;
	CHECK_EQ(i, cap);
	free(out);
	return d;
}

static void test_corrupt_zstd(void)
{
	static const uint8_t xors[] = {0x01, 0x10, 0x80, 0xff};
	uint8_t src[2000], frame[2001], bad[2002];
	size_t len = sizeof(src), flips = 0, caught = 0;
	ssize_t n;

	fill_text(src, len, 4);
	n = hoard_codec_encode(src, len, frame, sizeof(frame), 3);
	CHECK(n > 0 && frame[0] == HOARD_CODEC_ZSTD);
	if (n <= 0)
		return;
	for (size_t i = 0; i < (size_t)n; i++) {
		for (size_t x = 0; x < sizeof(xors); x++) {
			memcpy(bad, frame, (size_t)n);
			bad[i] ^= xors[x];
			flips++;
			caught += decode_checked(bad, (size_t)n, len) < 0;
		}
		/* The tag and the magic number are always checked. */
		if (i < 5)
			CHECK_EQ(caught, flips);
	}
	/* The header, sizes and entropy tables catch most flips. */
	CHECK(caught > flips / 2);

	for (size_t cut = 0; cut < (size_t)n; cut++)
		CHECK_EQ(decode_checked(frame, cut, len), -EBADMSG);
	memcpy(bad, frame, (size_t)n);
	bad[n] = 0;
	CHECK_EQ(decode_checked(bad, (size_t)n + 1, len), -EBADMSG);
	CHECK_EQ(decode_checked(frame, (size_t)n, len - 1), -EBADMSG);
	CHECK_EQ(decode_checked(frame, (size_t)n, len + 1), -EBADMSG);
	CHECK_EQ(decode_checked(frame, (size_t)n, 0), -EBADMSG);
}

static void test_corrupt_raw(void)
{
	uint8_t frame[101] = {HOARD_CODEC_RAW};

	CHECK_EQ(decode_checked(frame, 101, 100), 100);
	CHECK_EQ(decode_checked(frame, 101, 99), -EBADMSG);
	CHECK_EQ(decode_checked(frame, 101, 101), -EBADMSG);
	CHECK_EQ(decode_checked(frame, 100, 100), -EBADMSG);
	CHECK_EQ(decode_checked(frame, 0, 0), -EBADMSG);
	for (int tag = 2; tag < 256; tag++) {
		frame[0] = (uint8_t)tag;
		CHECK_EQ(decode_checked(frame, 101, 100), -EBADMSG);
	}
}

/* Frame a zstd-produced buffer with tag 1. */
static size_t tag_zstd(uint8_t *frame, size_t n)
{
	memmove(frame + 1, frame, n);
	frame[0] = HOARD_CODEC_ZSTD;
	return n + 1;
}

/* A skippable frame (magic 0x184d2a50) with 8 bytes of user data. */
#define SKIPPABLE                                                              \
	"\x50\x2a\x4d\x18\x08\x00\x00\x00"                                     \
	"abcdefgh"

/* Valid zstd that is not what the codec writes: all rejected. */
static void test_foreign_zstd(void)
{
	uint8_t src[3000], frame[8000];
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t n, m;

	fill_text(src, sizeof(src), 5);
	/* No content size in the header. */
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
	n = ZSTD_compress2(cctx, frame, sizeof(frame) - 1, src, sizeof(src));
	CHECK(!ZSTD_isError(n));
	n = tag_zstd(frame, n);
	CHECK_EQ(decode_checked(frame, n, sizeof(src)), -EBADMSG);

	/* Two frames of half the chunk each. */
	ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
	n = ZSTD_compress2(cctx, frame, 4000, src, 1500);
	m = ZSTD_compress2(cctx, frame + n, 4000, src + 1500, 1500);
	CHECK(!ZSTD_isError(n) && !ZSTD_isError(m));
	n = tag_zstd(frame, n + m);
	CHECK_EQ(decode_checked(frame, n, sizeof(src)), -EBADMSG);

	/* The whole chunk, then frames that add no content: one frame only. */
	ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
	frame[0] = HOARD_CODEC_ZSTD;
	n = ZSTD_compress2(cctx, frame + 1, 4000, src, sizeof(src));
	m = ZSTD_compress2(cctx, frame + 1 + n, 4000 - n, src, 0);
	CHECK(!ZSTD_isError(n) && !ZSTD_isError(m));
	memcpy(frame + 1 + n + m, SKIPPABLE, 16);
	CHECK_EQ(decode_checked(frame, 1 + n, sizeof(src)), sizeof(src));
	CHECK_EQ(decode_checked(frame, 1 + n + m, sizeof(src)), -EBADMSG);
	CHECK_EQ(decode_checked(frame, 1 + n + m + 16, sizeof(src)), -EBADMSG);
	memmove(frame + 1 + n, SKIPPABLE, 16);
	CHECK_EQ(decode_checked(frame, 1 + n + 16, sizeof(src)), -EBADMSG);

	/* A skippable frame of 8 bytes "decodes" to nothing. */
	memcpy(frame, SKIPPABLE, 16);
	n = tag_zstd(frame, 16);
	CHECK_EQ(decode_checked(frame, n, 0), -EBADMSG);
	ZSTD_freeCCtx(cctx);
}

/* Random bytes after the tag, some behind a valid zstd magic number. */
static void test_garbage(void)
{
	uint8_t frame[600];
	uint64_t seed = 6;
	size_t ok = 0;

	for (int i = 0; i < 20000; i++) {
		size_t n = 1 + rng_next(&seed) % sizeof(frame);
		size_t len = rng_next(&seed) % 2000;

		fill_random(frame, n, rng_next(&seed));
		frame[0] = HOARD_CODEC_ZSTD;
		if (i % 2 && n >= 5)
			memcpy(frame + 1, "\x28\xb5\x2f\xfd", 4);
		ok += decode_checked(frame, n, len) >= 0;
	}
	CHECK(ok < 20);
}

struct worker {
	uint64_t seed;
	int rounds;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < w->rounds; i++) {
		size_t len = 1 + rng_next(&w->seed) % (128 * KiB);
		uint8_t *buf = malloc(len);
		int text = i % 2;

		if (text)
			fill_text(buf, len, rng_next(&w->seed));
		else
			fill_random(buf, len, rng_next(&w->seed));
		/* Text under ~40 bytes may not save a tenth. */
		if (!text || len > 200)
			round_trip(buf, len, 1 + i % 6,
				   text ? HOARD_CODEC_ZSTD : HOARD_CODEC_RAW);
		free(buf);
	}
	return NULL;
}

static void test_threads(void)
{
	struct worker w[4];
	pthread_t t[4];
	int started = 0;

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.seed = 100 + (uint64_t)i,
				       .rounds = 200};
		if (pthread_create(&t[i], NULL, worker_run, &w[i]) == 0)
			started++;
		else
			break;
	}
	CHECK_EQ(started, 4);
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
}

int main(void)
{
	test_round_trips();
	test_levels();
	test_small_buffers();
	test_corrupt_raw();
	test_corrupt_zstd();
	test_foreign_zstd();
	test_garbage();
	test_threads();
	return CHECK_DONE();
}
