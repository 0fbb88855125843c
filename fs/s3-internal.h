/* SPDX-License-Identifier: MIT */
/*
 * Shared by fs/s3*.c only (and the unit test of the XML parts): a growable
 * string, the XML of S3's answers (fs/s3xml.c).
 *
 * Thread contract: a struct s3_buf belongs to its caller.
 */
#ifndef HOARD_S3_INTERNAL_H
#define HOARD_S3_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hoard/s3.h"

/*
 * A NUL-terminated string that grows.  An allocation failure is remembered
 * (oom) and makes every later append a no-op, so a caller checks once at
 * the end.
 */
struct s3_buf {
	char *p; /* NULL until the first append */
	size_t len;
	size_t cap;
	bool oom;
};

/* Room for extra more bytes (and the NUL); false (and oom) if none. */
bool s3_buf_reserve(struct s3_buf *b, size_t extra);
void s3_buf_add(struct s3_buf *b, const void *data, size_t n);
void s3_buf_adds(struct s3_buf *b, const char *s);
void s3_buf_addf(struct s3_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hand the string over (never NULL: "" when empty); -ENOMEM after oom
 * (the buffer is freed either way). */
int s3_buf_steal(struct s3_buf *b, char **ret);
void s3_buf_free(struct s3_buf *b);

/* ---- fs/s3xml.c ---- */

/*
 * The first element <tag ...>...</tag> or <tag/> in [p, end): its content
 * in [*ret_in, *ret_in_end), and *ret_next just past it.  false if none.
 */
bool s3_xml_find(const char *p, const char *end, const char *tag,
		 const char **ret_in, const char **ret_in_end,
		 const char **ret_next);
/* Decoded text content (entities); -EBADMSG for markup or a bad entity. */
int s3_xml_text(const char *in, const char *in_end, char **ret);
/* Code and Message of an S3 error document ("" when absent), cut to fit. */
void s3_xml_error(const char *doc, size_t n, char *code, size_t code_size,
		  char *msg, size_t msg_size);
/* "2013-05-24T00:00:00.000Z" to seconds since the epoch; -1 if bad. */
int64_t s3_parse_iso8601(const char *s);
/*
 * One ListObjectsV2 page: fn for each <Contents>, then each
 * <CommonPrefixes>; keys url-decoded when <EncodingType>url.  *ret_next_token
 * is malloc'd when *ret_truncated.  Returns 0, fn's non-zero value, or
 * -EBADMSG / -ENOMEM.
 */
int s3_list_page_parse(const char *doc, size_t n, hoard_s3_list_fn fn,
		       void *arg, bool *ret_truncated, char **ret_next_token);

#endif
