/* SPDX-License-Identifier: MIT */
/*
 * Shared by fs/s3*.c only (and the unit test of the XML parts): a growable
 * string (fs/remote/s3sig.c), the XML of S3's answers (fs/remote/s3xml.c), and one
 * request with retries (fs/remote/s3.c) for the operations (fs/remote/s3ops.c).
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

/* ---- fs/remote/s3xml.c ---- */

/* Code and Message of an S3 error document ("" when absent or when the
 * document is not well-formed XML with root <Error>), cut to fit. */
void s3_xml_error(const char *doc, size_t n, char *code, size_t code_size,
		  char *msg, size_t msg_size);
/* "2013-05-24T00:00:00.000Z" to seconds since the epoch; -1 if bad. */
int64_t s3_parse_iso8601(const char *s);
/*
 * One ListObjectsV2 page: fn for each <Contents>, then each
 * <CommonPrefixes>; keys url-decoded when <EncodingType>url.  *ret_next_token
 * is malloc'd when *ret_truncated.  Returns 0, fn's non-zero value, or
 * -EBADMSG / -ENOMEM (fn is called only when the whole page is good).
 */
int s3_list_page_parse(const char *doc, size_t n, hoard_s3_list_fn fn,
		       void *arg, bool *ret_truncated, char **ret_next_token);

/* ---- fs/remote/s3.c ---- */

#define S3_CURL_ERROR_SIZE 256 /* libcurl's CURL_ERROR_SIZE */

/* One S3 request, as fs/remote/s3ops.c describes it to s3_request(). */
struct s3_request {
	const char *method; /* "GET", "PUT", "HEAD", "DELETE" */
	const char *bucket;
	const char *key;   /* NULL: the bucket itself */
	const char *query; /* canonical query, NULL: none */
	const uint8_t *body;
	size_t body_len;
	char content_md5[HOARD_BASE64_SIZE(HOARD_MD5_SIZE)]; /* "" none */
	char range[64];					     /* "" none */
	uint8_t *dst; /* ranged GET: the caller's buffer, else NULL */
	size_t dst_cap;
	uint64_t range_off;
	/* hoard_now_mono_ns() by which the request, retries included, ends
	 * (each attempt is cut there, no retry starts after it); 0: none */
	uint64_t deadline_ns;
};

/* What came back (of the last attempt). */
struct s3_response {
	long status; /* of the last status line */
	struct s3_buf body;
	size_t dst_len;
	bool overflow;
	size_t up_off; /* the read callback's position in the body */
	char etag[HOARD_S3_ETAG_SIZE];
	bool has_length;
	uint64_t content_length;
	char content_range[96];
	int64_t last_modified; /* Last-Modified, -1 none */
	char bucket_region[64];
	bool etag_not_md5; /* SSE-KMS or SSE-C: the ETag is something else */
	char code[64];
	char message[256];
	char curl_error[S3_CURL_ERROR_SIZE];
};

/*
 * Checks a 2xx response: 0, or -errno (-EBADMSG is retried).  May leave a
 * reason in rs->message.
 */
typedef int (*s3_check_fn)(const struct s3_request *rq, struct s3_response *rs);

/*
 * Run a request with retries.  0 with rs holding the successful response
 * (the caller frees rs->body), or -errno with hoard_s3_last_error() set
 * (-ERANGE: a 416 to a ranged GET, no message).
 */
int s3_request(struct hoard_s3_client *c, const char *op,
	       const struct s3_request *rq, struct s3_response *rs,
	       s3_check_fn check);
/* Set this thread's hoard_s3_last_error(), scrubbed of c's secrets and of
 * signature (both may be NULL) and of control characters. */
void s3_set_error(const struct hoard_s3_client *c, const char *signature,
		  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void s3_clear_error(void);
unsigned s3_list_max_keys(const struct hoard_s3_client *c);

#endif
