// SPDX-License-Identifier: MIT
/*
 * s3xml: just enough XML for S3's answers: error documents
 * (<Error><Code>..</Code><Message>..</Message></Error>) and ListObjectsV2
 * pages (<ListBucketResult> with <Contents>, <CommonPrefixes>,
 * <IsTruncated>, <NextContinuationToken>, <EncodingType>).
 *
 * Not a general parser, but strict where it matters: an element is found by
 * its exact name (<Key> is not <KeyCount>), may carry attributes or be
 * empty (<Prefix/>), is looked up only inside its parent's span, and text
 * content is decoded (the five named entities, &#N; and &#xN;) and refused
 * when it holds markup, a NUL or a bad entity: -EBADMSG.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hoard/s3.h"
#include "s3-internal.h"

static bool name_end(char c)
{
	return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\r' ||
	       c == '\n';
}

bool s3_xml_find(const char *p, const char *end, const char *tag,
		 const char **ret_in, const char **ret_in_end,
		 const char **ret_next)
{
	size_t tl = strlen(tag);

	while (p < end) {
		const char *lt = memchr(p, '<', (size_t)(end - p)), *gt, *q;

		if (!lt)
			return false;
		p = lt + 1;
		if ((size_t)(end - p) <= tl || memcmp(p, tag, tl) != 0 ||
		    !name_end(p[tl]))
			continue;
		gt = memchr(p, '>', (size_t)(end - p));
		if (!gt)
			return false;
		if (gt[-1] == '/') { /* <Tag/> */
			*ret_in = *ret_in_end = *ret_next = gt + 1;
			return true;
		}
		/* The matching close tag: S3's elements never nest in
		 * themselves, so the first "</tag>" closes it. */
		for (q = gt + 1; q < end; q++) {
			q = memchr(q, '<', (size_t)(end - q));
			if (!q)
				return false;
			if ((size_t)(end - q) >= tl + 3 && q[1] == '/' &&
			    memcmp(q + 2, tag, tl) == 0 && q[2 + tl] == '>') {
				*ret_in = gt + 1;
				*ret_in_end = q;
				*ret_next = q + 3 + tl;
				return true;
			}
		}
		return false;
	}
	return false;
}

static void put_utf8(struct s3_buf *b, unsigned long cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	s3_buf_add(b, u, n);
}

/* One entity at p (after '&', up to end); its length through ';' or 0. */
static size_t entity(const char *p, const char *end, struct s3_buf *b)
{
	static const struct {
		const char *name;
		char c;
	} named[] = {{"lt;", '<'},
		     {"gt;", '>'},
		     {"amp;", '&'},
		     {"quot;", '"'},
		     {"apos;", '\''}};
	const char *semi = memchr(p, ';', (size_t)(end - p));
	unsigned long cp;
	char num[16], *e;

	if (!semi)
		return 0;
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].name);

		if ((size_t)(end - p) >= n &&
		    memcmp(p, named[i].name, n) == 0) {
			s3_buf_add(b, &named[i].c, 1);
			return n;
		}
	}
	if (*p != '#' || semi - p < 2 || semi - p > 10)
		return 0;
	memcpy(num, p + 1, (size_t)(semi - p - 1));
	num[semi - p - 1] = '\0';
	if (num[0] == 'x' || num[0] == 'X')
		cp = strtoul(num + 1, &e, 16);
	else
		cp = strtoul(num, &e, 10);
	if (*e || e == num || cp == 0 || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	put_utf8(b, cp);
	return (size_t)(semi - p + 1);
}

int s3_xml_text(const char *in, const char *in_end, char **ret)
{
	struct s3_buf b = {0};
	const char *p = in;
	size_t n;

	while (p < in_end) {
		const char *amp = memchr(p, '&', (size_t)(in_end - p));
		const char *stop = amp ? amp : in_end;

		if (memchr(p, '<', (size_t)(stop - p)) ||
		    memchr(p, '\0', (size_t)(stop - p)))
			goto out_bad;
		s3_buf_add(&b, p, (size_t)(stop - p));
		if (!amp)
			break;
		n = entity(amp + 1, in_end, &b);
		if (!n)
			goto out_bad;
		p = amp + 1 + n;
	}
	return s3_buf_steal(&b, ret);
out_bad:
	s3_buf_free(&b);
	return -EBADMSG;
}

/* Text of the first <tag> in [p, end) into a fixed buffer, cut to fit. */
static void text_into(const char *p, const char *end, const char *tag,
		      char *out, size_t size)
{
	const char *in, *in_end, *next;
	char *s;

	out[0] = '\0';
	if (!s3_xml_find(p, end, tag, &in, &in_end, &next))
		return;
	if (s3_xml_text(in, in_end, &s) < 0)
		return;
	snprintf(out, size, "%s", s);
	free(s);
}

void s3_xml_error(const char *doc, size_t n, char *code, size_t code_size,
		  char *msg, size_t msg_size)
{
	const char *in, *in_end, *next;

	code[0] = msg[0] = '\0';
	if (!doc || !s3_xml_find(doc, doc + n, "Error", &in, &in_end, &next))
		return;
	text_into(in, in_end, "Code", code, code_size);
	text_into(in, in_end, "Message", msg, msg_size);
}

int64_t s3_parse_iso8601(const char *s)
{
	struct tm tm = {0};
	int n = 0;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -1;
	s += n;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			;
	if (strcmp(s, "Z") != 0 && strcmp(s, "+00:00") != 0)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

/* "%XX" and '+' decoding of encoding-type=url fields (as botocore). */
static int url_decode(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		unsigned v;

		if (*r == '+') {
			*w++ = ' ';
		} else if (*r == '%') {
			if (sscanf(r + 1, "%2x", &v) != 1 || !r[1] || !r[2] ||
			    v == 0)
				return -EBADMSG;
			*w++ = (char)v;
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return 0;
}

/* Decoded text of <tag> inside [p, end); *ret NULL if there is none. */
static int field(const char *p, const char *end, const char *tag,
		 bool url_encoded, char **ret)
{
	const char *in, *in_end, *next;
	int r;

	*ret = NULL;
	if (!s3_xml_find(p, end, tag, &in, &in_end, &next))
		return 0;
	r = s3_xml_text(in, in_end, ret);
	if (r == 0 && url_encoded) {
		r = url_decode(*ret);
		if (r < 0) {
			free(*ret);
			*ret = NULL;
		}
	}
	return r;
}

static int parse_contents(const char *in, const char *end, bool url,
			  hoard_s3_list_fn fn, void *arg)
{
	struct hoard_s3_entry e = {.last_modified = -1};
	char *key, *size = NULL, *mtime = NULL, *etag = NULL, *q;
	int r;

	r = field(in, end, "Key", url, &key);
	if (r == 0 && !key)
		r = -EBADMSG;
	if (r == 0)
		r = field(in, end, "Size", false, &size);
	if (r == 0)
		r = field(in, end, "LastModified", false, &mtime);
	if (r == 0)
		r = field(in, end, "ETag", false, &etag);
	if (r < 0)
		goto out_free;
	e.key = key;
	if (size) {
		e.size = strtoull(size, &q, 10);
		if (q == size || *q || size[0] == '-') {
			r = -EBADMSG;
			goto out_free;
		}
	}
	if (mtime)
		e.last_modified = s3_parse_iso8601(mtime);
	if (etag) {
		size_t n = strlen(etag);

		if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
			memmove(etag, etag + 1, n - 2);
			etag[n - 2] = '\0';
		}
	}
	e.etag = etag ? etag : "";
	r = fn(&e, arg);
out_free:
	free(key);
	free(size);
	free(mtime);
	free(etag);
	return r;
}

int s3_list_page_parse(const char *doc, size_t n, hoard_s3_list_fn fn,
		       void *arg, bool *ret_truncated, char **ret_next_token)
{
	const char *root, *end, *in, *in_end, *p;
	char *enc = NULL, *trunc = NULL, *token = NULL;
	bool url;
	int r;

	if (!s3_xml_find(doc, doc + n, "ListBucketResult", &root, &end, &p))
		return -EBADMSG;
	r = field(root, end, "EncodingType", false, &enc);
	if (r < 0)
		return r;
	url = enc && strcmp(enc, "url") == 0;
	free(enc);

	for (p = root; s3_xml_find(p, end, "Contents", &in, &in_end, &p);) {
		r = parse_contents(in, in_end, url, fn, arg);
		if (r)
			return r;
	}
	for (p = root;
	     s3_xml_find(p, end, "CommonPrefixes", &in, &in_end, &p);) {
		struct hoard_s3_entry e = {
			.is_prefix = true, .last_modified = -1, .etag = ""};
		char *prefix;

		r = field(in, in_end, "Prefix", url, &prefix);
		if (r == 0 && !prefix)
			r = -EBADMSG;
		if (r < 0)
			return r;
		e.key = prefix;
		r = fn(&e, arg);
		free(prefix);
		if (r)
			return r;
	}

	r = field(root, end, "IsTruncated", false, &trunc);
	if (r == 0)
		r = field(root, end, "NextContinuationToken", false, &token);
	if (r == 0 && trunc && strcmp(trunc, "true") == 0 &&
	    (!token || !*token))
		r = -EBADMSG; /* more pages, but no way to ask for them */
	if (r == 0) {
		*ret_truncated = trunc && strcmp(trunc, "true") == 0;
		*ret_next_token = *ret_truncated ? token : NULL;
		if (*ret_truncated)
			token = NULL;
	}
	free(trunc);
	free(token);
	return r;
}
