/* SPDX-License-Identifier: MIT */
/*
 * hash: chunk identity.  Layer 2: uses util and libxxhash (the only module
 * that includes xxhash.h).
 *
 * A chunk id is XXH3-128 of the chunk's bytes computed with a per-store
 * secret (XXH3_128bits_withSecret).  The secret is 192 random bytes made at
 * `hoard init`; without it nobody can aim a crafted input at a given id, and
 * the store also confirms every dedup hit byte-for-byte (see chunks.h), so a
 * collision can never make two different chunks share storage.
 *
 * The 16-byte id is the canonical big-endian form of the XXH128 value
 * (XXH128_canonicalFromHash): high 64 bits first.
 *
 * Thread contract: a struct hoard_key is immutable after hoard_key_init()
 * and may be shared by any number of threads.
 */
#ifndef HOARD_HASH_H
#define HOARD_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define HOARD_ID_SIZE	  16
#define HOARD_SECRET_SIZE 192
#define HOARD_ID_HEX_SIZE (2 * HOARD_ID_SIZE + 1)

struct hoard_id {
	uint8_t b[HOARD_ID_SIZE];
};

struct hoard_key {
	uint8_t secret[HOARD_SECRET_SIZE];
};

/* Copy a secret of exactly HOARD_SECRET_SIZE bytes into key. */
void hoard_key_init(struct hoard_key *key, const uint8_t *secret);
/* Make a fresh random secret (for `hoard init`); 0 or -errno. */
int hoard_key_generate(struct hoard_key *key);

/* Keyed id of len bytes at data. */
void hoard_id_compute(const struct hoard_key *key, const void *data, size_t len,
		      struct hoard_id *ret_id);

static inline bool hoard_id_equal(const struct hoard_id *a,
				  const struct hoard_id *b)
{
	for (int i = 0; i < HOARD_ID_SIZE; i++)
		if (a->b[i] != b->b[i])
			return false;
	return true;
}

/* 32 lower-case hex digits + NUL into out (HOARD_ID_HEX_SIZE bytes). */
void hoard_id_hex(const struct hoard_id *id, char *out);
/* Parse 32 hex digits; 0 or -EINVAL. */
int hoard_id_parse(const char *hex, struct hoard_id *ret_id);

#endif
