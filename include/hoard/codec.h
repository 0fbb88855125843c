/* SPDX-License-Identifier: MIT */
/*
 * codec: chunk framing and compression.  Layer 2: uses util and libzstd (the
 * only module that includes zstd.h).
 *
 * A stored chunk ("frame") is one tag byte followed by the payload:
 *   tag 0x00  raw: payload is the chunk bytes;
 *   tag 0x01  zstd: payload is one zstd frame whose content size is recorded
 *             in its header and equals the chunk size.
 * Any other tag is corrupt.  A chunk is stored raw when zstd saves less than
 * 1/10 of its size (wheels are zip files, fp16 weights barely compress),
 * which also makes reading it a plain copy.
 *
 * Thread contract: all functions are safe from any thread; compression and
 * decompression contexts are per thread (freed at thread exit).
 */
#ifndef HOARD_CODEC_H
#define HOARD_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HOARD_CODEC_RAW		  0x00
#define HOARD_CODEC_ZSTD	  0x01
#define HOARD_CODEC_DEFAULT_LEVEL 1

/* Upper bound of the encoded size of len bytes: 1 + len (raw is the max). */
size_t hoard_codec_bound(size_t len);

/*
 * Encode len bytes of src into dst (capacity dst_cap >= hoard_codec_bound)
 * at zstd `level` (1..19; 0 means store raw always).  Returns the frame
 * size, or -errno (-EINVAL for a bad level, -ENOBUFS when dst_cap <
 * hoard_codec_bound(len), -ENOMEM).
 */
ssize_t hoard_codec_encode(const void *src, size_t len, void *dst,
			   size_t dst_cap, int level);

/*
 * Decode a frame of frame_len bytes into dst; the decoded size must be
 * exactly expect_len (<= dst_cap).  Returns expect_len, or -EBADMSG on any
 * corruption (bad tag, bad zstd data, wrong size, anything but exactly one
 * zstd frame); -ENOBUFS when expect_len > dst_cap, -ENOMEM.  Nothing is
 * written beyond dst + expect_len.  zstd frames carry no checksum: corrupt
 * literals can decode to wrong bytes of the right length, which the
 * caller's chunk id check catches.
 */
ssize_t hoard_codec_decode(const void *frame, size_t frame_len, void *dst,
			   size_t dst_cap, size_t expect_len);

#endif
