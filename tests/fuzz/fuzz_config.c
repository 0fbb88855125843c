// SPDX-License-Identifier: MIT
/*
 * fuzz_config: PREFIX/config (docs/REMOTE.md section 3), through
 * hoard_remote_config_decode().  Each input is decoded as it is, and again
 * with its checksum made right (so the fields behind it get fuzzed too).
 * Promises: one line of message on failure; what decodes encodes back to
 * the same 256 bytes.
 */
#include <string.h>

#include "fuzz.h"
#include "hoard/digest.h"
#include "hoard/remote.h"

static void one(const uint8_t *data, size_t size)
{
	struct hoard_remote_config c;
	uint8_t *buf = fuzz_dup(data, size), back[HOARD_CONFIG_SIZE];
	char err[256] = "";
	int r = hoard_remote_config_decode(buf, size, &c, err, sizeof(err));

	fuzz_check_msg(r, err);
	if (r == 0) {
		hoard_remote_config_encode(&c, back);
		if (size != HOARD_CONFIG_SIZE || memcmp(back, buf, size))
			fuzz_fail("config does not encode back to its bytes");
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size);
	if (size == HOARD_CONFIG_SIZE) {
		uint8_t *fixed = fuzz_dup(data, size);

		hoard_sha256(fixed, 224, fixed + 224);
		one(fixed, size);
		free(fixed);
	}
	return 0;
}
