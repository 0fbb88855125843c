// SPDX-License-Identifier: MIT
/*
 * digest: SHA-256, HMAC-SHA-256, MD5, base64.  Straight from the standards
 * (FIPS 180-4, RFC 2104, RFC 1321, RFC 4648); tests/unit/test_s3sig.c checks
 * them against the standards' own vectors.
 */
#include "hoard/digest.h"

#include <string.h>

#include "hoard/util.h"

static inline uint32_t ror32(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static inline uint32_t rol32(uint32_t x, unsigned n)
{
	return (x << n) | (x >> (32 - n));
}

/* ---- SHA-256 ---------------------------------------------------------- */

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = hoard_get_be32(p + 4 * i);
	for (i = 16; i < 64; i++) {
		uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^
			      (w[i - 15] >> 3);
		uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^
			      (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = h[0];
	b = h[1];
	c = h[2];
	d = h[3];
	e = h[4];
	f = h[5];
	g = h[6];
	hh = h[7];
	for (i = 0; i < 64; i++) {
		t1 = hh + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) +
		     ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
		t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) +
		     ((a & b) ^ (a & c) ^ (b & c));
		hh = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
	h[5] += f;
	h[6] += g;
	h[7] += hh;
}

void hoard_sha256_init(struct hoard_sha256 *ctx)
{
	static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
				       0xa54ff53a, 0x510e527f, 0x9b05688c,
				       0x1f83d9ab, 0x5be0cd19};

	memcpy(ctx->h, iv, sizeof(iv));
	ctx->len = 0;
	ctx->fill = 0;
}

void hoard_sha256_update(struct hoard_sha256 *ctx, const void *data, size_t n)
{
	const uint8_t *p = data;

	ctx->len += n;
	if (ctx->fill) {
		size_t take = 64 - ctx->fill < n ? 64 - ctx->fill : n;

		memcpy(ctx->buf + ctx->fill, p, take);
		ctx->fill += take;
		p += take;
		n -= take;
		if (ctx->fill < 64)
			return;
		sha256_block(ctx->h, ctx->buf);
		ctx->fill = 0;
	}
	for (; n >= 64; p += 64, n -= 64)
		sha256_block(ctx->h, p);
	memcpy(ctx->buf, p, n);
	ctx->fill = n;
}

void hoard_sha256_final(struct hoard_sha256 *ctx,
			uint8_t ret_digest[HOARD_SHA256_SIZE])
{
	uint64_t bits = ctx->len * 8;

	ctx->buf[ctx->fill++] = 0x80;
	if (ctx->fill > 56) {
		memset(ctx->buf + ctx->fill, 0, 64 - ctx->fill);
		sha256_block(ctx->h, ctx->buf);
		ctx->fill = 0;
	}
	memset(ctx->buf + ctx->fill, 0, 56 - ctx->fill);
	hoard_put_be64(ctx->buf + 56, bits);
	sha256_block(ctx->h, ctx->buf);
	for (int i = 0; i < 8; i++)
		hoard_put_be32(ret_digest + 4 * i, ctx->h[i]);
}

void hoard_sha256(const void *data, size_t n,
		  uint8_t ret_digest[HOARD_SHA256_SIZE])
{
	struct hoard_sha256 ctx;

	hoard_sha256_init(&ctx);
	hoard_sha256_update(&ctx, data, n);
	hoard_sha256_final(&ctx, ret_digest);
}

void hoard_sha256_hex(const void *data, size_t n,
		      char ret_hex[HOARD_SHA256_HEX_SIZE])
{
	uint8_t d[HOARD_SHA256_SIZE];

	hoard_sha256(data, n, d);
	hoard_hex(d, sizeof(d), ret_hex);
}

void hoard_hmac_sha256(const void *key, size_t keylen, const void *data,
		       size_t n, uint8_t ret_mac[HOARD_SHA256_SIZE])
{
	uint8_t k[64] = {0}, pad[64], inner[HOARD_SHA256_SIZE];
	struct hoard_sha256 ctx;
	int i;

	if (keylen > sizeof(k))
		hoard_sha256(key, keylen, k);
	else if (keylen)
		memcpy(k, key, keylen);

	for (i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x36;
	hoard_sha256_init(&ctx);
	hoard_sha256_update(&ctx, pad, sizeof(pad));
	hoard_sha256_update(&ctx, data, n);
	hoard_sha256_final(&ctx, inner);

	for (i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x5c;
	hoard_sha256_init(&ctx);
	hoard_sha256_update(&ctx, pad, sizeof(pad));
	hoard_sha256_update(&ctx, inner, sizeof(inner));
	hoard_sha256_final(&ctx, ret_mac);
}

/* ---- MD5 -------------------------------------------------------------- */

static const uint32_t md5_k[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a,
	0xa8304613, 0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
	0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340,
	0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8,
	0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
	0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
	0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92,
	0xffeff47d, 0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
	0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static const uint8_t md5_r[64] = {
	7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
	5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
	4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
	6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void md5_block(uint32_t h[4], const uint8_t *p)
{
	uint32_t m[16], a = h[0], b = h[1], c = h[2], d = h[3], f, t;
	unsigned g;

	for (int i = 0; i < 16; i++)
		m[i] = get_le32(p + 4 * i);
	for (unsigned i = 0; i < 64; i++) {
		if (i < 16) {
			f = (b & c) | (~b & d);
			g = i;
		} else if (i < 32) {
			f = (d & b) | (~d & c);
			g = (5 * i + 1) % 16;
		} else if (i < 48) {
			f = b ^ c ^ d;
			g = (3 * i + 5) % 16;
		} else {
			f = c ^ (b | ~d);
			g = (7 * i) % 16;
		}
		t = d;
		d = c;
		c = b;
		b = b + rol32(a + f + md5_k[i] + m[g], md5_r[i]);
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
}

void hoard_md5_init(struct hoard_md5 *ctx)
{
	ctx->h[0] = 0x67452301;
	ctx->h[1] = 0xefcdab89;
	ctx->h[2] = 0x98badcfe;
	ctx->h[3] = 0x10325476;
	ctx->len = 0;
	ctx->fill = 0;
}

void hoard_md5_update(struct hoard_md5 *ctx, const void *data, size_t n)
{
	const uint8_t *p = data;

	ctx->len += n;
	if (ctx->fill) {
		size_t take = 64 - ctx->fill < n ? 64 - ctx->fill : n;

		memcpy(ctx->buf + ctx->fill, p, take);
		ctx->fill += take;
		p += take;
		n -= take;
		if (ctx->fill < 64)
			return;
		md5_block(ctx->h, ctx->buf);
		ctx->fill = 0;
	}
	for (; n >= 64; p += 64, n -= 64)
		md5_block(ctx->h, p);
	memcpy(ctx->buf, p, n);
	ctx->fill = n;
}

void hoard_md5_final(struct hoard_md5 *ctx, uint8_t ret_digest[HOARD_MD5_SIZE])
{
	uint64_t bits = ctx->len * 8;

	ctx->buf[ctx->fill++] = 0x80;
	if (ctx->fill > 56) {
		memset(ctx->buf + ctx->fill, 0, 64 - ctx->fill);
		md5_block(ctx->h, ctx->buf);
		ctx->fill = 0;
	}
	memset(ctx->buf + ctx->fill, 0, 56 - ctx->fill);
	put_le32(ctx->buf + 56, (uint32_t)bits);
	put_le32(ctx->buf + 60, (uint32_t)(bits >> 32));
	md5_block(ctx->h, ctx->buf);
	for (int i = 0; i < 4; i++)
		put_le32(ret_digest + 4 * i, ctx->h[i]);
}

void hoard_md5(const void *data, size_t n, uint8_t ret_digest[HOARD_MD5_SIZE])
{
	struct hoard_md5 ctx;

	hoard_md5_init(&ctx);
	hoard_md5_update(&ctx, data, n);
	hoard_md5_final(&ctx, ret_digest);
}

/* ---- base64 ----------------------------------------------------------- */

void hoard_base64(const void *data, size_t n, char *out)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *p = data;
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = ((uint32_t)p[i] << 16) |
			     ((uint32_t)p[i + 1] << 8) | p[i + 2];

		*out++ = tbl[v >> 18];
		*out++ = tbl[(v >> 12) & 63];
		*out++ = tbl[(v >> 6) & 63];
		*out++ = tbl[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		*out++ = tbl[v >> 18];
		*out++ = tbl[(v >> 12) & 63];
		*out++ = '=';
		*out++ = '=';
	} else if (n - i == 2) {
		uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8);

		*out++ = tbl[v >> 18];
		*out++ = tbl[(v >> 12) & 63];
		*out++ = tbl[(v >> 6) & 63];
		*out++ = '=';
	}
	*out = '\0';
}
