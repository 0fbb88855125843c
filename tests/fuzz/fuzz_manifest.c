// SPDX-License-Identifier: MIT
/*
 * fuzz_manifest: PREFIX/manifests/<sha256> (docs/REMOTE.md section 5),
 * through hoard_manifest_decode().  Promises: one line of message on
 * failure; what decodes passes the encoder's validation, and encoding is a
 * fixed point (decode(encode(m)) encodes to the same bytes); every entry's
 * path can be printed.
 */
#include <string.h>

#include "fuzz.h"
#include "hoard/remote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hoard_manifest m, m2;
	uint8_t *buf = fuzz_dup(data, size), *enc = NULL, *enc2 = NULL;
	size_t len, len2;
	char err[256] = "", path[64];
	int r = hoard_manifest_decode(buf, size, &m, err, sizeof(err));

	fuzz_check_msg(r, err);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < m.n; i++)
		hoard_manifest_path(&m, i, path, sizeof(path));
	r = hoard_manifest_encode(&m, &enc, &len, err, sizeof(err));
	if (r < 0)
		fuzz_fail("a decoded manifest does not encode: %s", err);
	r = hoard_manifest_decode(enc, len, &m2, err, sizeof(err));
	if (r < 0)
		fuzz_fail("an encoded manifest does not decode: %s", err);
	r = hoard_manifest_encode(&m2, &enc2, &len2, err, sizeof(err));
	if (r < 0 || len2 != len || memcmp(enc, enc2, len))
		fuzz_fail("manifest encoding is not a fixed point");
	free(enc2);
	free(enc);
	hoard_manifest_clear(&m2);
	hoard_manifest_clear(&m);
out:
	free(buf);
	return 0;
}
