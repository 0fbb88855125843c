// SPDX-License-Identifier: MIT
/*
 * fuzz_pack_index: PREFIX/packs/<sha256>.idx (docs/REMOTE.md section 4),
 * through hoard_pack_index_decode().  Each input is decoded as it is, and
 * again with its trailing checksum made right.  Promises: one line of
 * message on failure; what decodes has frames back to back from the pack
 * header to pack_size, and encodes back to the same bytes.
 */
#include <string.h>

#include "fuzz.h"
#include "hoard/digest.h"
#include "hoard/remote.h"

static void one(const uint8_t *data, size_t size)
{
	struct hoard_pack_index ix;
	uint8_t *buf = fuzz_dup(data, size), *back;
	char err[256] = "";
	uint64_t off = HOARD_PACK_HEADER;
	int r = hoard_pack_index_decode(buf, size, &ix, err, sizeof(err));

	fuzz_check_msg(r, err);
	if (r == 0) {
		for (uint32_t i = 0; i < ix.n; i++) {
			if (ix.e[i].off != off || !ix.e[i].raw_len)
				fuzz_fail("entry %u out of place", i);
			off += ix.e[i].frame_len;
		}
		if (off != ix.pack_size)
			fuzz_fail("frames do not add up to the pack size");
		if (hoard_pack_index_size(ix.n) != size)
			fuzz_fail("index size does not match its count");
		back = malloc(size);
		if (!back)
			abort();
		hoard_pack_index_encode(&ix, back);
		if (memcmp(back, buf, size))
			fuzz_fail("index does not encode back to its bytes");
		free(back);
		hoard_pack_index_clear(&ix);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size);
	if (size >= HOARD_SHA256_SIZE) {
		uint8_t *fixed = fuzz_dup(data, size);

		hoard_sha256(fixed, size - HOARD_SHA256_SIZE,
			     fixed + size - HOARD_SHA256_SIZE);
		one(fixed, size);
		free(fixed);
	}
	return 0;
}
