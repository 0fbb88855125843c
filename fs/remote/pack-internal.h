/* SPDX-License-Identifier: MIT */
/*
 * pack-internal.h: the one pack writer (docs/REMOTE.md 3), used by push
 * (sync.c) and remote gc's repack (syncgc.c).  It builds a pack in memory
 * (header with a random nonce, then frames back to back, each verified
 * against its chunk id), names it by its SHA-256, encodes its index, and
 * uploads pack then index (and keeps the index in the local cache).
 *
 * Threads: a writer belongs to one thread; writers share nothing, so
 * several run at once (push's packs); the upload uses the remote's
 * client, which is safe across threads (s3.h).
 */
#ifndef HOARD_PACK_INTERNAL_H
#define HOARD_PACK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "hoard/hash.h"
#include "hoard/remote.h"

#include "sync-internal.h"

struct pack_writer {
	uint8_t *buf; /* header + frames */
	size_t len, cap;
	struct hoard_pack_index ix; /* entries so far (ix.n) */
	size_t cap_e;
	uint8_t *scratch; /* one raw chunk, to verify a frame */
	/* set by pack_writer_finish: */
	char name[HOARD_SHA256_HEX_SIZE]; /* the pack's SHA-256, hex */
	uint8_t *idx;			  /* the encoded index */
	size_t idx_len;
};

/* Start a pack for about bytes of frames and chunks entries (hints: the
 * writer grows past them); writes the header.  0 or -ENOMEM; clear w in
 * any case. */
int pack_writer_init(struct pack_writer *w, size_t bytes, size_t chunks);
/* Append chunk id's frame after checking that it decodes to raw_len bytes
 * whose id under key is id: 0, -EBADMSG (corrupt: nothing appended) or
 * -ENOMEM. */
int pack_writer_add(struct pack_writer *w, const struct hoard_key *key,
		    const struct hoard_id *id, const void *frame,
		    uint32_t frame_len, uint32_t raw_len);
/* Name the pack and encode its index (w->name, w->idx): 0 or -ENOMEM. */
int pack_writer_finish(struct pack_writer *w);
/* Upload the finished pack, then its index (PREFIX/packs/NAME.pack, .idx),
 * and keep the index in r's cache: 0 or -errno; on failure *ret_key (if
 * not NULL) is the key that failed (malloc()ed, or NULL). */
int pack_writer_upload(struct pack_writer *w, struct remote *r, char **ret_key);
/* Free what w holds (accepts a zeroed w). */
void pack_writer_clear(struct pack_writer *w);

#endif
