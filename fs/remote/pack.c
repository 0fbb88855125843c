// SPDX-License-Identifier: MIT
/*
 * pack: the one pack writer (pack-internal.h, docs/REMOTE.md 3).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/chunker.h"
#include "hoard/codec.h"
#include "hoard/digest.h"
#include "hoard/s3.h"
#include "hoard/util.h"

#include "pack-internal.h"

int pack_writer_init(struct pack_writer *w, size_t bytes, size_t chunks)
{
	*w = (struct pack_writer){0};
	w->cap = HOARD_PACK_HEADER + bytes;
	w->cap_e = chunks ? chunks : 1;
	w->buf = malloc(w->cap);
	w->scratch = malloc(HOARD_CHUNK_MAX);
	w->ix.e = calloc(w->cap_e, sizeof(*w->ix.e));
	if (!w->buf || !w->scratch || !w->ix.e)
		return -ENOMEM;
	/* the header's nonce makes every upload a new name (REMOTE.md 3) */
	memcpy(w->buf, HOARD_PACK_MAGIC, 8);
	w->len = HOARD_PACK_HEADER;
	return hoard_random(w->buf + 8, HOARD_PACK_HEADER - 8);
}

int pack_writer_add(struct pack_writer *w, const struct hoard_key *key,
		    const struct hoard_id *id, const void *frame,
		    uint32_t frame_len, uint32_t raw_len)
{
	struct hoard_id got;
	ssize_t n;

	n = hoard_codec_decode(frame, frame_len, w->scratch, HOARD_CHUNK_MAX,
			       raw_len);
	if (n >= 0)
		hoard_id_compute(key, w->scratch, (size_t)n, &got);
	if (n < 0 || !hoard_id_equal(&got, id))
		return -EBADMSG;
	if (w->len + frame_len > w->cap) {
		size_t c2 = w->cap * 2 > w->len + frame_len
				    ? w->cap * 2
				    : w->len + frame_len;
		uint8_t *x = realloc(w->buf, c2);

		if (!x)
			return -ENOMEM;
		w->buf = x;
		w->cap = c2;
	}
	if (w->ix.n == w->cap_e) {
		void *x = hoard_grow(w->ix.e, &w->cap_e, w->ix.n + 1,
				     sizeof(*w->ix.e), 16);

		if (!x)
			return -ENOMEM;
		w->ix.e = x;
	}
	memcpy(w->buf + w->len, frame, frame_len);
	w->ix.e[w->ix.n++] = (struct hoard_idx_entry){.id = *id,
						      .off = w->len,
						      .frame_len = frame_len,
						      .raw_len = raw_len};
	w->len += frame_len;
	return 0;
}

int pack_writer_finish(struct pack_writer *w)
{
	w->ix.pack_size = w->len;
	hoard_sha256(w->buf, w->len, w->ix.pack_sha);
	hoard_hex(w->ix.pack_sha, HOARD_SHA256_SIZE, w->name);
	w->idx_len = hoard_pack_index_size(w->ix.n);
	w->idx = malloc(w->idx_len);
	if (!w->idx)
		return -ENOMEM;
	hoard_pack_index_encode(&w->ix, w->idx);
	return 0;
}

int pack_writer_upload(struct pack_writer *w, struct remote *r, char **ret_key)
{
	char *key = remote_key(r, "packs/%s.pack", w->name);
	int e = key ? hoard_s3_put_object(r->cl, r->bucket, key, w->buf, w->len,
					  NULL)
		    : -ENOMEM;

	if (e == 0) {
		free(key);
		key = remote_key(r, "packs/%s.idx", w->name);
		e = key ? hoard_s3_put_object(r->cl, r->bucket, key, w->idx,
					      w->idx_len, NULL)
			: -ENOMEM;
	}
	if (e == 0)
		write_cached(r->cache_dir, w->name, w->idx, w->idx_len);
	if (e < 0 && ret_key) {
		*ret_key = key;
		key = NULL;
	}
	free(key);
	return e;
}

void pack_writer_clear(struct pack_writer *w)
{
	free(w->buf);
	free(w->scratch);
	free(w->ix.e);
	free(w->idx);
	*w = (struct pack_writer){0};
}
