// SPDX-License-Identifier: MIT
/*
 * fuzz_ref: PREFIX/refs/<volume>/<name> (docs/REMOTE.md section 6),
 * through hoard_ref_decode().  Promises: one line of message on failure;
 * what decodes names a manifest by 64 lower-case hex digits and encodes to
 * a ref that decodes to the same fields (with version 2's key and
 * signature, which the decoder reads but does not verify).
 */
#include <string.h>

#include "fuzz.h"
#include "hoard/remote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hoard_ref ref, back;
	uint8_t *buf = fuzz_dup(data, size);
	char err[256] = "", *text;
	size_t len;
	int r = hoard_ref_decode(buf, size, &ref, err, sizeof(err));

	fuzz_check_msg(r, err);
	if (r == 0) {
		if (strlen(ref.manifest) != 64 ||
		    strspn(ref.manifest, "0123456789abcdef") != 64)
			fuzz_fail("ref names a manifest by '%s'", ref.manifest);
		if (hoard_ref_encode(&ref, &text, &len) < 0)
			abort();
		r = hoard_ref_decode(text, len, &back, err, sizeof(err));
		if (r < 0 || strcmp(back.manifest, ref.manifest) ||
		    back.files != ref.files || back.bytes != ref.bytes ||
		    back.time != ref.time || back.is_signed != ref.is_signed ||
		    memcmp(&back.key, &ref.key, sizeof(ref.key)) ||
		    memcmp(back.sig, ref.sig, sizeof(ref.sig)))
			fuzz_fail("ref does not survive encode and decode");
		free(text);
	}
	free(buf);
	return 0;
}
