// SPDX-License-Identifier: MIT
/*
 * fuzz_manifest: PREFIX/manifests/<sha256> (docs/REMOTE.md section 5),
 * through hoard_manifest_decode().  Promises: one line of message on
 * failure; what decodes passes the encoder's validation, and encoding is a
 * fixed point (decode(encode(m)) encodes to the same bytes); every entry's
 * path can be printed; the chunk table of a version-2 manifest (REMOTE.md
 * 5.4) is built or refused with a message, and every chunk is in it.
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
	if (m.version == HOARD_MANIFEST_V2) {
		struct hoard_chunk_sha *t = NULL;
		size_t n = 0;

		err[0] = '\0';
		r = hoard_manifest_chunks(&m, true, &t, &n, err, sizeof(err));
		fuzz_check_msg(r, err);
		for (size_t i = 0; r == 0 && i < m.n; i++)
			for (uint32_t k = 0; k < m.e[i].n_ext; k++)
				if (m.e[i].type == HOARD_M_FILE &&
				    !hoard_chunk_sha_find(t, n,
							  &m.e[i].ext[k].id))
					fuzz_fail(
						"a chunk is not in the table");
		free(t);
	}
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
