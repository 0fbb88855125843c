// SPDX-License-Identifier: MIT
/*
 * s3ops: the S3 operations over s3_request() (fs/remote/s3.c): what each one asks
 * and how it checks the answer.
 *
 *   PUT     Content-MD5, so the server checks what it got; the ETag must
 *           then be that MD5 (unless SSE-KMS/SSE-C, or a multipart ETag)
 *   GET     the length must be Content-Length and the bytes match the ETag
 *           when it is an MD5; a mismatch is retried, then -EBADMSG
 *   range   206 with a Content-Range that is exactly the bytes asked for,
 *           or fewer where the object ends; 416 is the end (0 bytes)
 *   HEAD    Content-Length, ETag, Last-Modified
 *   DELETE  204/200; a missing key is not an error (S3 answers 204 too)
 *   LIST    ListObjectsV2 with encoding-type=url, every page
 */
#include "hoard/s3.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hoard/digest.h"
#include "hoard/util.h"
#include "s3-internal.h"

static bool valid_args(const struct hoard_s3_client *c, const char *bucket,
		       const char *key)
{
	s3_clear_error();
	if (!c || !hoard_s3_bucket_name_valid(bucket)) {
		s3_set_error(NULL, NULL, "invalid bucket name '%s'",
			     bucket ? bucket : "");
		return false;
	}
	if (key && (!*key || strlen(key) > HOARD_S3_MAX_KEY)) {
		s3_set_error(NULL, NULL,
			     "invalid object key (empty or over %d bytes)",
			     HOARD_S3_MAX_KEY);
		return false;
	}
	return true;
}

/* Is etag the MD5 of the bytes?  Only checked when it looks like one. */
static bool etag_matches(const struct s3_response *rs, const uint8_t *data,
			 size_t len)
{
	uint8_t md5[HOARD_MD5_SIZE];
	char hex[2 * HOARD_MD5_SIZE + 1];

	if (rs->etag_not_md5 || strlen(rs->etag) != 2 * HOARD_MD5_SIZE ||
	    strspn(rs->etag, "0123456789abcdefABCDEF") != 2 * HOARD_MD5_SIZE)
		return true; /* multipart ("...-N"), KMS, or not an MD5 */
	hoard_md5(data, len, md5);
	hoard_hex(md5, sizeof(md5), hex);
	return strcasecmp(hex, rs->etag) == 0;
}

static void fill_info(const struct s3_response *rs, uint64_t size,
		      struct hoard_s3_object_info *info)
{
	info->size = size;
	info->last_modified = rs->last_modified;
	snprintf(info->etag, sizeof(info->etag), "%s", rs->etag);
}

static int check_put(const struct s3_request *rq, struct s3_response *rs)
{
	if (!rs->etag[0]) {
		snprintf(rs->message, sizeof(rs->message), "no ETag");
		return -EBADMSG;
	}
	if (!etag_matches(rs, rq->body, rq->body_len)) {
		snprintf(rs->message, sizeof(rs->message),
			 "ETag %s is not the MD5 of what was sent", rs->etag);
		return -EBADMSG;
	}
	return 0;
}

int hoard_s3_put_object(struct hoard_s3_client *c, const char *bucket,
			const char *key, const void *data, size_t len,
			struct hoard_s3_object_info *ret_info)
{
	struct s3_request rq = {.method = "PUT",
				.bucket = bucket,
				.key = key,
				.body = data,
				.body_len = len};
	struct s3_response rs = {0};
	uint8_t md5[HOARD_MD5_SIZE];
	int r;

	if (!valid_args(c, bucket, key) || (len && !data))
		return -EINVAL;
	hoard_md5(data ? data : "", len, md5);
	hoard_base64(md5, sizeof(md5), rq.content_md5);
	r = s3_request(c, "PUT", &rq, &rs, check_put);
	if (r == 0 && ret_info)
		fill_info(&rs, len, ret_info);
	s3_buf_free(&rs.body);
	return r;
}

static int check_get(const struct s3_request *rq, struct s3_response *rs)
{
	if (rs->status != 200 ||
	    (rs->has_length && rs->content_length != rs->body.len)) {
		snprintf(rs->message, sizeof(rs->message),
			 "got %zu bytes of %llu", rs->body.len,
			 (unsigned long long)rs->content_length);
		return -EBADMSG;
	}
	if (!etag_matches(rs, (const uint8_t *)rs->body.p, rs->body.len)) {
		snprintf(rs->message, sizeof(rs->message),
			 "the bytes do not match their ETag %s", rs->etag);
		return -EBADMSG;
	}
	return 0;
}

int hoard_s3_get_object(struct hoard_s3_client *c, const char *bucket,
			const char *key, void **ret_data, size_t *ret_len,
			struct hoard_s3_object_info *ret_info)
{
	struct s3_request rq = {.method = "GET", .bucket = bucket, .key = key};
	struct s3_response rs = {0};
	char *data;
	int r;

	if (!valid_args(c, bucket, key))
		return -EINVAL;
	r = s3_request(c, "GET", &rq, &rs, check_get);
	if (r < 0)
		goto out_free_body;
	if (ret_info)
		fill_info(&rs, rs.body.len, ret_info);
	*ret_len = rs.body.len;
	r = s3_buf_steal(&rs.body, &data); /* "" for an empty object */
	if (r == 0)
		*ret_data = data;
out_free_body:
	s3_buf_free(&rs.body);
	return r;
}

static int check_range(const struct s3_request *rq, struct s3_response *rs)
{
	unsigned long long start, end, total;
	uint64_t want_end = rq->range_off + rq->dst_cap - 1;

	if (rs->status == 200) { /* the server ignored Range */
		if (rq->range_off == 0)
			return 0;
		snprintf(rs->message, sizeof(rs->message),
			 "the server ignored the Range header");
		return -EPROTO;
	}
	if (rs->status != 206 ||
	    sscanf(rs->content_range, "bytes %llu-%llu/%llu", &start, &end,
		   &total) != 3 ||
	    start != rq->range_off || end < start || end > want_end ||
	    total <= end || (end < want_end && end != total - 1) ||
	    rs->dst_len != end - start + 1) {
		snprintf(rs->message, sizeof(rs->message),
			 "asked for bytes %llu-%llu, got %zu bytes as '%s'",
			 (unsigned long long)rq->range_off,
			 (unsigned long long)want_end, rs->dst_len,
			 rs->content_range);
		return -EBADMSG;
	}
	return 0;
}

ssize_t hoard_s3_get_range(struct hoard_s3_client *c, const char *bucket,
			   const char *key, uint64_t off, size_t len, void *buf)
{
	return hoard_s3_get_range_by(c, bucket, key, off, len, buf, 0);
}

ssize_t hoard_s3_get_range_by(struct hoard_s3_client *c, const char *bucket,
			      const char *key, uint64_t off, size_t len,
			      void *buf, uint64_t deadline_ns)
{
	struct s3_request rq = {.method = "GET",
				.bucket = bucket,
				.key = key,
				.dst = buf,
				.dst_cap = len,
				.range_off = off,
				.deadline_ns = deadline_ns};
	struct s3_response rs = {0};
	int r;

	if (!valid_args(c, bucket, key) || !buf || len > SSIZE_MAX ||
	    off > UINT64_MAX - len)
		return -EINVAL;
	if (len == 0)
		return 0;
	snprintf(rq.range, sizeof(rq.range), "bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + len - 1));
	r = s3_request(c, "GET", &rq, &rs, check_range);
	s3_buf_free(&rs.body);
	if (r == -ERANGE)
		return 0; /* 416: the object ends at or before off */
	return r < 0 ? r : (ssize_t)rs.dst_len;
}

static int check_head(const struct s3_request *rq, struct s3_response *rs)
{
	if (!rs->has_length) {
		snprintf(rs->message, sizeof(rs->message), "no Content-Length");
		return -EBADMSG;
	}
	return 0;
}

int hoard_s3_head_object(struct hoard_s3_client *c, const char *bucket,
			 const char *key, struct hoard_s3_object_info *ret_info)
{
	struct s3_request rq = {.method = "HEAD", .bucket = bucket, .key = key};
	struct s3_response rs = {0};
	int r;

	if (!valid_args(c, bucket, key) || !ret_info)
		return -EINVAL;
	r = s3_request(c, "HEAD", &rq, &rs, check_head);
	if (r == 0)
		fill_info(&rs, rs.content_length, ret_info);
	s3_buf_free(&rs.body);
	return r;
}

int hoard_s3_delete_object(struct hoard_s3_client *c, const char *bucket,
			   const char *key)
{
	struct s3_request rq = {
		.method = "DELETE", .bucket = bucket, .key = key};
	struct s3_response rs = {0};
	int r;

	if (!valid_args(c, bucket, key))
		return -EINVAL;
	r = s3_request(c, "DELETE", &rq, &rs, NULL);
	s3_buf_free(&rs.body);
	return r == -ENOENT ? 0 : r;
}

int hoard_s3_bucket_check(struct hoard_s3_client *c, const char *bucket)
{
	struct s3_request rq = {.method = "HEAD", .bucket = bucket};
	struct s3_response rs = {0};
	int r;

	if (!valid_args(c, bucket, NULL))
		return -EINVAL;
	r = s3_request(c, "HEAD", &rq, &rs, NULL);
	s3_buf_free(&rs.body);
	return r;
}

static int check_list(const struct s3_request *rq, struct s3_response *rs)
{
	if (!rs->body.p || !strstr(rs->body.p, "<ListBucketResult")) {
		snprintf(rs->message, sizeof(rs->message),
			 "not a ListBucketResult document");
		return -EBADMSG;
	}
	return 0;
}

/* One page's request: the canonical query of its parameters. */
static int list_query(const struct hoard_s3_client *c, const char *prefix,
		      const char *delimiter, const char *token, char **ret)
{
	struct hoard_s3_param ps[6];
	char max_keys[16];
	size_t n = 0;

	ps[n++] = (struct hoard_s3_param){"list-type", "2"};
	ps[n++] = (struct hoard_s3_param){"encoding-type", "url"};
	if (prefix && *prefix)
		ps[n++] = (struct hoard_s3_param){"prefix", prefix};
	if (delimiter && *delimiter)
		ps[n++] = (struct hoard_s3_param){"delimiter", delimiter};
	if (token)
		ps[n++] = (struct hoard_s3_param){"continuation-token", token};
	if (s3_list_max_keys(c)) {
		snprintf(max_keys, sizeof(max_keys), "%u", s3_list_max_keys(c));
		ps[n++] = (struct hoard_s3_param){"max-keys", max_keys};
	}
	return hoard_s3_canonical_query(ps, n, ret);
}

int hoard_s3_list(struct hoard_s3_client *c, const char *bucket,
		  const char *prefix, const char *delimiter,
		  hoard_s3_list_fn fn, void *arg)
{
	char *token = NULL, *next = NULL, *query = NULL;
	bool truncated;
	int r;

	if (!valid_args(c, bucket, NULL) || !fn)
		return -EINVAL;
	do {
		struct s3_request rq = {.method = "GET", .bucket = bucket};
		struct s3_response rs = {0};

		r = list_query(c, prefix, delimiter, token, &query);
		if (r < 0)
			break;
		rq.query = query;
		r = s3_request(c, "LIST", &rq, &rs, check_list);
		if (r == 0) {
			r = s3_list_page_parse(rs.body.p, rs.body.len, fn, arg,
					       &truncated, &next);
			if (r == -EBADMSG && !*hoard_s3_last_error())
				s3_set_error(
					c, NULL,
					"LIST s3://%s/%s: unparsable page: %s",
					bucket, prefix ? prefix : "",
					strerror(-r));
		}
		s3_buf_free(&rs.body);
		free(query);
		query = NULL;
		if (r == 0 && truncated && token && !strcmp(token, next)) {
			s3_set_error(c, NULL,
				     "LIST s3://%s/%s: the server repeats its "
				     "continuation token",
				     bucket, prefix ? prefix : "");
			r = -EBADMSG;
		}
		free(token);
		token = next;
		next = NULL;
	} while (r == 0 && truncated);
	free(token);
	return r;
}
