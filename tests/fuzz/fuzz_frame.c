// SPDX-License-Identifier: MIT
/*
 * fuzz_frame: a chunk frame (docs/FORMAT.md 2.4; the frames of a pack,
 * docs/REMOTE.md section 4), through hoard_codec_decode().  The first 3
 * bytes of an input are the expected chunk size (big-endian, at most
 * HOARD_CHUNK_MAX), the rest the frame.  The output buffer is exactly that
 * size, so a write past it is caught.  Promises: the result is the expected
 * size or -EBADMSG / -ENOMEM; what decodes re-encodes to a frame that
 * decodes to the same bytes.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "hoard/chunker.h"
#include "hoard/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t expect, flen;
	uint8_t *frame, *out, *enc, *again;
	ssize_t r, n;

	if (size < 3)
		return 0;
	expect = ((size_t)data[0] << 16 | (size_t)data[1] << 8 | data[2]) %
		 (HOARD_CHUNK_MAX + 1);
	flen = size - 3;
	frame = fuzz_dup(data + 3, flen);
	out = malloc(expect ? expect : 1);
	if (!out)
		abort();
	r = hoard_codec_decode(frame, flen, out, expect, expect);
	if (r >= 0 && (size_t)r != expect)
		fuzz_fail("decoded %zd bytes, expected %zu", r, expect);
	if (r < 0 && r != -EBADMSG && r != -ENOMEM)
		fuzz_fail("decode returned %zd", r);
	if (r >= 0) {
		enc = malloc(hoard_codec_bound(expect));
		again = malloc(expect ? expect : 1);
		if (!enc || !again)
			abort();
		n = hoard_codec_encode(out, expect, enc,
				       hoard_codec_bound(expect), 1);
		if (n < 0 ||
		    hoard_codec_decode(enc, (size_t)n, again, expect, expect) !=
			    (ssize_t)expect ||
		    memcmp(again, out, expect))
			fuzz_fail("decoded bytes do not survive a re-encode");
		free(again);
		free(enc);
	}
	free(out);
	free(frame);
	return 0;
}
