/* SPDX-License-Identifier: MIT */
/*
 * chunker: content-defined chunking (Gear rolling hash, FastCDC-style
 * normalized chunking).  Layer 2: uses util only.
 *
 * Parameters (chunker format version 1, HOARD_CHUNKER_VERSION):
 *   min 16 KiB, average 64 KiB, max 256 KiB.
 *   The Gear table is 256 64-bit words produced by splitmix64 seeded with
 *   0x686f6172645f6731 ("hoard_g1"); it is fixed: changing it or any rule
 *   below changes every boundary and needs a new version.
 *
 * Rules, per chunk, with h = 0 at the chunk's first byte:
 *   - the first `min` bytes are never a cut point and are not hashed;
 *   - for every following byte b:  h = (h << 1) + gear[b];
 *   - while the chunk is shorter than `avg` bytes, cut after b when the top
 *     HOARD_CHUNKER_BITS_SMALL bits of h are zero (harder: bits = log2(avg)+2);
 *     from `avg` on, cut when the top HOARD_CHUNKER_BITS_LARGE bits are zero
 *     (easier: log2(avg)-2);
 *   - a chunk that reaches `max` bytes is cut there;
 *   - the end of input ends the last chunk (it may be shorter than min).
 * "Shorter than" counts the bytes before b: the byte at 0-based offset i of
 * the chunk is skipped for i < min, tested against BITS_SMALL for
 * min <= i < avg and against BITS_LARGE for avg <= i < max.  Every chunk but
 * the last is min + 1 to max bytes long.
 * Only the top bits are tested because after (h << 1) the low bits depend
 * on the last few bytes only; the top bits depend on the last 64.
 *
 * Streaming: the chunker is a state machine over bytes, so feeding a file in
 * pieces of any size gives exactly the cut points of one-shot chunking.
 *
 * Thread contract: a struct hoard_chunker is owned by one thread at a time.
 */
#ifndef HOARD_CHUNKER_H
#define HOARD_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#define HOARD_CHUNKER_VERSION	 1
#define HOARD_CHUNK_MIN		 (16u * 1024)
#define HOARD_CHUNK_AVG		 (64u * 1024)
#define HOARD_CHUNK_MAX		 (256u * 1024)
#define HOARD_CHUNKER_BITS_SMALL 18
#define HOARD_CHUNKER_BITS_LARGE 14

struct hoard_chunker {
	uint64_t h;   /* rolling hash of the current chunk */
	uint64_t len; /* bytes of the current chunk seen so far */
};

void hoard_chunker_init(struct hoard_chunker *c);

/*
 * Scan data[0..len).  Returns the number of bytes consumed: either up to and
 * including a cut point (then the current chunk ends there, *ret_cut is set
 * to 1 and the chunker is reset for the next chunk), or all of len (then
 * *ret_cut is 0 and the chunk continues with the next call).  Consumes at
 * least one byte when len > 0.
 * The caller ends the final chunk itself at end of input (if the input ends
 * exactly at a cut there is no further chunk: never emit an empty one).
 */
size_t hoard_chunker_next(struct hoard_chunker *c, const uint8_t *data,
			  size_t len, int *ret_cut);

/* The gear table (exposed for tests). */
const uint64_t *hoard_chunker_gear(void);

#endif
