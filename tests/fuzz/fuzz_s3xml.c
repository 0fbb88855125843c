// SPDX-License-Identifier: MIT
/*
 * fuzz_s3xml: S3's answers (fs/remote/s3xml.c, fs/remote/s3-internal.h): a
 * ListObjectsV2 page (s3_list_page_parse), an error document
 * (s3_xml_error, into small buffers; both over expat, whose entity
 * decoding they use) and LastModified times (s3_parse_iso8601).  The document is
 * an exact-size buffer, not NUL-terminated, as the client's response body
 * is read by length.  Promises: every listed entry has a NUL-terminated key
 * (and etag); a truncated page has a continuation token; the error's code
 * and message are NUL-terminated within their buffers.
 */
#include <errno.h>
#include <string.h>

#include "../../fs/remote/s3-internal.h"
#include "fuzz.h"

static int entry(const struct hoard_s3_entry *e, void *arg)
{
	size_t *n = arg;

	if (!e->key || strlen(e->key) > (1u << 20))
		fuzz_fail("entry without a key");
	if (!e->is_prefix && !e->etag)
		fuzz_fail("entry with a bad etag");
	return ++*n > 100000; /* a stop from the callback is passed on */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *doc = (char *)fuzz_dup(data, size), *token = NULL;
	char code[16], msg[32], *s;
	bool truncated = false;
	size_t n = 0;
	int r;

	r = s3_list_page_parse(doc, size, entry, &n, &truncated, &token);
	if (r == 0 && truncated && (!token || !*token))
		fuzz_fail("a truncated page without a token");
	if (r == 0 && !truncated && token)
		fuzz_fail("a token for a page that is not truncated");
	if (r < 0 && r != -EBADMSG && r != -ENOMEM)
		fuzz_fail("list parse returned %d", r);
	free(token);

	memset(code, 'x', sizeof(code));
	memset(msg, 'x', sizeof(msg));
	s3_xml_error(doc, size, code, sizeof(code), msg, sizeof(msg));
	if (!memchr(code, '\0', sizeof(code)) ||
	    !memchr(msg, '\0', sizeof(msg)))
		fuzz_fail("error code or message not terminated");

	s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	s3_parse_iso8601(s);
	free(s);
	free(doc);
	return 0;
}
