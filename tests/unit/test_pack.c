/* SPDX-License-Identifier: MIT */
/*
 * test_pack: the pack writer (fs/remote/pack-internal.h): frames verified
 * against their ids, a corrupt one refused, the pack named by its SHA-256
 * and its index decoding back to the frames' places.  No upload (the e2e
 * tests push and repack through the S3 fixture).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/codec.h"
#include "hoard/digest.h"
#include "hoard/hash.h"
#include "hoard/remote.h"
#include "hoard/util.h"

#include "../../fs/remote/pack-internal.h"
#include "check.h"

#define N 3

int main(void)
{
	struct hoard_key key;
	struct hoard_id id[N];
	uint8_t raw[N][5000], frame[N][6000], sha[HOARD_SHA256_SIZE];
	size_t flen[N];
	struct pack_writer w;
	struct hoard_pack_index ix = {0};
	char err[256], hex[HOARD_SHA256_HEX_SIZE];
	uint8_t bad[6000];

	CHECK(hoard_key_generate(&key) == 0);
	for (int i = 0; i < N; i++) {
		for (size_t k = 0; k < sizeof(raw[i]); k++)
			raw[i][k] = (uint8_t)(i * 7 + k % (i + 3));
		hoard_id_compute(&key, raw[i], sizeof(raw[i]), &id[i]);
		flen[i] = (size_t)hoard_codec_encode(
			raw[i], sizeof(raw[i]), frame[i], sizeof(frame[i]), 3);
	}
	/* hints smaller than what comes: the writer grows */
	CHECK_EQ(pack_writer_init(&w, 10, 1), 0);
	CHECK(!memcmp(w.buf, HOARD_PACK_MAGIC, 8));
	CHECK_EQ(w.len, HOARD_PACK_HEADER);
	for (int i = 0; i < N; i++)
		CHECK_EQ(pack_writer_add(&w, &key, &id[i], frame[i],
					 (uint32_t)flen[i], sizeof(raw[i])),
			 0);
	/* a frame that is not its id's: refused, nothing appended */
	CHECK_EQ(pack_writer_add(&w, &key, &id[0], frame[1], (uint32_t)flen[1],
				 sizeof(raw[1])),
		 -EBADMSG);
	memcpy(bad, frame[2], flen[2]);
	bad[flen[2] - 1] ^= 1;
	CHECK_EQ(pack_writer_add(&w, &key, &id[2], bad, (uint32_t)flen[2],
				 sizeof(raw[2])),
		 -EBADMSG);
	CHECK_EQ(w.ix.n, N);
	CHECK_EQ(pack_writer_finish(&w), 0);
	hoard_sha256(w.buf, w.len, sha);
	hoard_hex(sha, sizeof(sha), hex);
	CHECK(!strcmp(hex, w.name));
	CHECK_EQ(hoard_pack_index_decode(w.idx, w.idx_len, &ix, err,
					 sizeof(err)),
		 0);
	CHECK_EQ(ix.n, N);
	CHECK_EQ(ix.pack_size, w.len);
	for (uint32_t i = 0; i < ix.n && i < N; i++) {
		CHECK(hoard_id_equal(&ix.e[i].id, &id[i]));
		CHECK_EQ(ix.e[i].frame_len, flen[i]);
		CHECK_EQ(ix.e[i].raw_len, sizeof(raw[i]));
		CHECK(!memcmp(w.buf + ix.e[i].off, frame[i], flen[i]));
	}
	hoard_pack_index_clear(&ix);
	pack_writer_clear(&w);
	pack_writer_clear(&w); /* a cleared writer clears again */
	return CHECK_DONE();
}
