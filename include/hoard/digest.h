/* SPDX-License-Identifier: MIT */
/*
 * digest: SHA-256, HMAC-SHA-256, MD5 and base64 for the S3 client, over
 * OpenSSL's libcrypto (EVP).  Implemented in fs/remote/s3sig.c, the one module that
 * includes OpenSSL; this header keeps OpenSSL's types out of every caller.
 *
 * They exist for the S3 client and the remote layout: SigV4 signs with
 * HMAC-SHA-256 and sends the body's SHA-256 in x-amz-content-sha256;
 * Content-MD5 lets the server verify an upload, and a single-part object's
 * ETag is the MD5 of its bytes.  None of them is a chunk id (see hash.h)
 * and MD5 is used for transport checks only, never for identity.
 *
 * Errors: libcrypto fails these only when it cannot allocate its context;
 * like a failed malloc in a path that cannot report it, that prints one
 * line and aborts (it never returns a wrong digest).
 *
 * Thread contract: no shared state; safe from any thread.
 */
#ifndef HOARD_DIGEST_H
#define HOARD_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define HOARD_SHA256_SIZE     32
#define HOARD_SHA256_HEX_SIZE (2 * HOARD_SHA256_SIZE + 1)
#define HOARD_MD5_SIZE	      16

void hoard_sha256(const void *data, size_t n,
		  uint8_t ret_digest[HOARD_SHA256_SIZE]);
/* 64 lower-case hex digits + NUL. */
void hoard_sha256_hex(const void *data, size_t n,
		      char ret_hex[HOARD_SHA256_HEX_SIZE]);

/* HMAC-SHA-256 of data under key (any key length). */
void hoard_hmac_sha256(const void *key, size_t keylen, const void *data,
		       size_t n, uint8_t ret_mac[HOARD_SHA256_SIZE]);

void hoard_md5(const void *data, size_t n, uint8_t ret_digest[HOARD_MD5_SIZE]);

/* Bytes needed for the base64 of n bytes, NUL included. */
#define HOARD_BASE64_SIZE(n) (((n) + 2) / 3 * 4 + 1)
/* Standard alphabet with '=' padding; out holds HOARD_BASE64_SIZE(n). */
void hoard_base64(const void *data, size_t n, char *out);

#endif
