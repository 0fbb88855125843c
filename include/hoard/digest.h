/* SPDX-License-Identifier: MIT */
/*
 * digest: SHA-256 (FIPS 180-4), HMAC-SHA-256 (RFC 2104), MD5 (RFC 1321) and
 * base64 (RFC 4648), self-contained.  Layer 1: uses nothing else of hoard.
 *
 * They exist for the S3 client: SigV4 signs with HMAC-SHA-256 and sends the
 * body's SHA-256 in x-amz-content-sha256; Content-MD5 lets the server verify
 * an upload, and a single-part object's ETag is the MD5 of its bytes.  None
 * of them is a chunk id (see hash.h) and MD5 is used for transport checks
 * only, never for identity.
 *
 * Thread contract: no shared state.  A context belongs to its caller.
 */
#ifndef HOARD_DIGEST_H
#define HOARD_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define HOARD_SHA256_SIZE     32
#define HOARD_SHA256_HEX_SIZE (2 * HOARD_SHA256_SIZE + 1)
#define HOARD_MD5_SIZE	      16

struct hoard_sha256 {
	uint32_t h[8];
	uint64_t len;	 /* bytes hashed so far */
	uint8_t buf[64]; /* partial block */
	size_t fill;	 /* bytes in buf */
};

void hoard_sha256_init(struct hoard_sha256 *ctx);
void hoard_sha256_update(struct hoard_sha256 *ctx, const void *data, size_t n);
void hoard_sha256_final(struct hoard_sha256 *ctx,
			uint8_t ret_digest[HOARD_SHA256_SIZE]);
/* One-shot forms; _hex writes 64 lower-case hex digits + NUL. */
void hoard_sha256(const void *data, size_t n,
		  uint8_t ret_digest[HOARD_SHA256_SIZE]);
void hoard_sha256_hex(const void *data, size_t n,
		      char ret_hex[HOARD_SHA256_HEX_SIZE]);

/* HMAC-SHA-256 of data under key (any key length). */
void hoard_hmac_sha256(const void *key, size_t keylen, const void *data,
		       size_t n, uint8_t ret_mac[HOARD_SHA256_SIZE]);

struct hoard_md5 {
	uint32_t h[4];
	uint64_t len;
	uint8_t buf[64];
	size_t fill;
};

void hoard_md5_init(struct hoard_md5 *ctx);
void hoard_md5_update(struct hoard_md5 *ctx, const void *data, size_t n);
void hoard_md5_final(struct hoard_md5 *ctx, uint8_t ret_digest[HOARD_MD5_SIZE]);
void hoard_md5(const void *data, size_t n, uint8_t ret_digest[HOARD_MD5_SIZE]);

/* Bytes needed for the base64 of n bytes, NUL included. */
#define HOARD_BASE64_SIZE(n) (((n) + 2) / 3 * 4 + 1)
/* Standard alphabet with '=' padding; out holds HOARD_BASE64_SIZE(n). */
void hoard_base64(const void *data, size_t n, char *out);

#endif
