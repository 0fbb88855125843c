// SPDX-License-Identifier: MIT
/*
 * codec: chunk frames (docs/FORMAT.md section 3).
 *
 * zstd contexts are expensive to create (the compression one is hundreds of
 * KiB), so each thread keeps one of each in thread-specific data, freed by
 * the key's destructor when the thread exits.
 */
#include "hoard/codec.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "hoard/util.h"

#define HOARD_CODEC_MAX_LEVEL 19

static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static pthread_key_t cctx_key, dctx_key;
static int ctx_key_err;

static void cctx_destroy(void *p)
{
	ZSTD_freeCCtx(p);
}

static void dctx_destroy(void *p)
{
	ZSTD_freeDCtx(p);
}

static void ctx_keys_create(void)
{
	ctx_key_err = pthread_key_create(&cctx_key, cctx_destroy);
	if (ctx_key_err)
		return;
	ctx_key_err = pthread_key_create(&dctx_key, dctx_destroy);
	if (ctx_key_err)
		pthread_key_delete(cctx_key);
}

/*
 * This thread's context under key, made by create() on first use; NULL
 * when out of memory (or out of thread keys).
 */
static void *thread_ctx(pthread_key_t *key, void *(*create)(void),
			void (*destroy)(void *))
{
	void *ctx;

	if (pthread_once(&ctx_once, ctx_keys_create) || ctx_key_err)
		return NULL;
	ctx = pthread_getspecific(*key);
	if (ctx)
		return ctx;
	ctx = create();
	if (ctx && pthread_setspecific(*key, ctx)) {
		destroy(ctx);
		ctx = NULL;
	}
	return ctx;
}

static void *cctx_create(void)
{
	return ZSTD_createCCtx();
}

static void *dctx_create(void)
{
	return ZSTD_createDCtx();
}

/*
 * A compressed frame is kept only when it saves at least a tenth:
 * csize <= len - len / 10, i.e. csize <= len - ceil(len / 10).  Compressing
 * into exactly that much room makes zstd itself give up on anything larger,
 * so hoard_codec_bound() need not cover zstd's worst case.
 */
static size_t zstd_room(size_t len)
{
	return len - (len / 10 + (len % 10 != 0));
}

size_t hoard_codec_bound(size_t len)
{
	return 1 + len;
}

static ssize_t encode_raw(const void *src, size_t len, uint8_t *dst)
{
	dst[0] = HOARD_CODEC_RAW;
	if (len)
		memcpy(dst + 1, src, len);
	return (ssize_t)(1 + len);
}

ssize_t hoard_codec_encode(const void *src, size_t len, void *dst,
			   size_t dst_cap, int level)
{
	uint8_t *out = dst;
	size_t room, n;
	void *cctx;

	if (level < 0 || level > HOARD_CODEC_MAX_LEVEL || len >= SSIZE_MAX)
		return -EINVAL;
	if (dst_cap < hoard_codec_bound(len))
		return -ENOBUFS;
	room = zstd_room(len);
	if (level == 0 || room == 0)
		return encode_raw(src, len, out);

	cctx = thread_ctx(&cctx_key, cctx_create, cctx_destroy);
	if (!cctx)
		return -ENOMEM;
	n = ZSTD_compressCCtx(cctx, out + 1, room, src, len, level);
	if (ZSTD_isError(n)) {
		if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall)
			return encode_raw(src, len, out);
		hoard_log(LOG_DEBUG, "zstd compress: %s", ZSTD_getErrorName(n));
		if (ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
			return -ENOMEM;
		return -EIO;
	}
	out[0] = HOARD_CODEC_ZSTD;
	return (ssize_t)(1 + n);
}

/* One whole zstd frame (no skippable or legacy frame) of exactly len. */
static bool zstd_frame_ok(const uint8_t *p, size_t n, size_t len)
{
	uint32_t magic;

	if (n < 4)
		return false;
	magic = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		(uint32_t)p[3] << 24;
	if (magic != ZSTD_MAGICNUMBER)
		return false;
	if (ZSTD_getFrameContentSize(p, n) != (unsigned long long)len)
		return false;
	/* Trailing bytes would be a second frame or garbage. */
	return ZSTD_findFrameCompressedSize(p, n) == n;
}

static ssize_t decode_zstd(const uint8_t *p, size_t n, void *dst,
			   size_t expect_len)
{
	size_t got;
	void *dctx;

	if (!zstd_frame_ok(p, n, expect_len))
		return -EBADMSG;
	dctx = thread_ctx(&dctx_key, dctx_create, dctx_destroy);
	if (!dctx)
		return -ENOMEM;
	got = ZSTD_decompressDCtx(dctx, dst, expect_len, p, n);
	if (ZSTD_isError(got) || got != expect_len)
		return -EBADMSG;
	return (ssize_t)expect_len;
}

ssize_t hoard_codec_decode(const void *frame, size_t frame_len, void *dst,
			   size_t dst_cap, size_t expect_len)
{
	const uint8_t *in = frame;

	if (expect_len > dst_cap || expect_len >= SSIZE_MAX)
		return -ENOBUFS;
	if (frame_len < 1)
		return -EBADMSG;
	switch (in[0]) {
	case HOARD_CODEC_RAW:
		if (frame_len - 1 != expect_len)
			return -EBADMSG;
		if (expect_len)
			memcpy(dst, in + 1, expect_len);
		return (ssize_t)expect_len;
	case HOARD_CODEC_ZSTD:
		return decode_zstd(in + 1, frame_len - 1, dst, expect_len);
	default:
		return -EBADMSG;
	}
}
