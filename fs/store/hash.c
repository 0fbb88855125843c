// SPDX-License-Identifier: MIT
/*
 * hash: keyed chunk ids (docs/FORMAT.md section 5).
 */
#include "hoard/hash.h"

#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "hoard/util.h"

_Static_assert(HOARD_SECRET_SIZE >= XXH3_SECRET_SIZE_MIN,
	       "XXH3 needs a longer secret");
_Static_assert(sizeof(XXH128_canonical_t) == HOARD_ID_SIZE,
	       "chunk id is the canonical XXH128");

void hoard_key_init(struct hoard_key *key, const uint8_t *secret)
{
	memcpy(key->secret, secret, HOARD_SECRET_SIZE);
}

int hoard_key_generate(struct hoard_key *key)
{
	return hoard_random(key->secret, HOARD_SECRET_SIZE);
}

void hoard_id_compute(const struct hoard_key *key, const void *data, size_t len,
		      struct hoard_id *ret_id)
{
	XXH128_canonical_t canon;
	XXH128_hash_t h;

	h = XXH3_128bits_withSecret(data, len, key->secret, HOARD_SECRET_SIZE);
	XXH128_canonicalFromHash(&canon, h);
	memcpy(ret_id->b, canon.digest, HOARD_ID_SIZE);
}

void hoard_id_hex(const struct hoard_id *id, char *out)
{
	hoard_hex(id->b, HOARD_ID_SIZE, out);
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Upper-case digits are accepted; hoard_id_hex() writes lower case. */
int hoard_id_parse(const char *hex, struct hoard_id *ret_id)
{
	struct hoard_id id;

	if (!hex)
		return -EINVAL;
	for (int i = 0; i < HOARD_ID_SIZE; i++) {
		int hi, lo;

		hi = hex_nibble(hex[2 * i]);
		if (hi < 0)
			return -EINVAL;
		lo = hex_nibble(hex[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		id.b[i] = (uint8_t)(hi << 4 | lo);
	}
	if (hex[2 * HOARD_ID_SIZE] != '\0')
		return -EINVAL;
	*ret_id = id;
	return 0;
}
