// SPDX-License-Identifier: MIT
/*
 * s3xml: S3's XML answers, read with expat (the one module that includes
 * it): error documents (<Error><Code>..</Code><Message>..</Message></Error>)
 * and ListObjectsV2 pages (<ListBucketResult> with <Contents>,
 * <CommonPrefixes>, <IsTruncated>, <NextContinuationToken>,
 * <EncodingType>).
 *
 * Strict where it matters: the document must be well-formed XML (expat
 * refuses a truncated document, a mismatched tag, a NUL, a bad or unknown
 * entity, bytes that are not UTF-8, junk after the root); a DOCTYPE is
 * refused outright (no entity declarations, so no entity expansion); the
 * root and the fields are found by their exact names at their exact
 * depth (<Key> is not <KeyCount>, a <Key> counts only directly inside a
 * <Contents>); a field's text is expat's decoded character data (the five
 * named entities, &#N; and &#xN;) and a field that holds markup is
 * refused.  Unknown elements are skipped; the first of a repeated field
 * counts.  Every refusal is -EBADMSG.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <expat.h>

#include "hoard/s3.h"
#include "hoard/util.h"
#include "s3-internal.h"

/* The text fields we read, at depth 2 (root's children) or 3. */
enum xml_field {
	XF_NONE,
	XF_ENCODING, /* ListBucketResult/EncodingType */
	XF_TRUNCATED,
	XF_TOKEN,
	XF_KEY, /* Contents/Key */
	XF_SIZE,
	XF_MTIME,
	XF_ETAG,
	XF_PREFIX, /* CommonPrefixes/Prefix */
	XF_CODE,   /* Error/Code */
	XF_MESSAGE,
	XF_COUNT,
};

enum xml_parent { XP_NONE, XP_CONTENTS, XP_PREFIXES };

static const struct {
	int depth;
	enum xml_parent parent; /* at depth 3 */
	const char *name;
} xml_fields[XF_COUNT] = {
	[XF_ENCODING] = {2, XP_NONE, "EncodingType"},
	[XF_TRUNCATED] = {2, XP_NONE, "IsTruncated"},
	[XF_TOKEN] = {2, XP_NONE, "NextContinuationToken"},
	[XF_KEY] = {3, XP_CONTENTS, "Key"},
	[XF_SIZE] = {3, XP_CONTENTS, "Size"},
	[XF_MTIME] = {3, XP_CONTENTS, "LastModified"},
	[XF_ETAG] = {3, XP_CONTENTS, "ETag"},
	[XF_PREFIX] = {3, XP_PREFIXES, "Prefix"},
	[XF_CODE] = {2, XP_NONE, "Code"},
	[XF_MESSAGE] = {2, XP_NONE, "Message"},
};

/* One <Contents> or <CommonPrefixes>: its fields' texts (NULL: absent). */
struct xml_entry {
	bool is_prefix;
	char *val[XF_COUNT]; /* XF_KEY .. XF_PREFIX used */
};

struct xml_state {
	XML_Parser p;
	const char *root; /* the root element's name */
	int err;	  /* first refusal, 0 */
	int depth;	  /* elements open */
	enum xml_parent parent;
	enum xml_field field; /* being read, XF_NONE */
	struct s3_buf text;   /* its text so far */
	char *val[XF_COUNT];  /* the root's own fields */
	struct xml_entry cur; /* the open <Contents>/<CommonPrefixes> */
	struct xml_entry *entries;
	size_t n_entries, cap_entries;
};

static void xml_fail(struct xml_state *st, int err)
{
	if (!st->err)
		st->err = err;
	XML_StopParser(st->p, XML_FALSE);
}

static void entry_free(struct xml_entry *e)
{
	for (int i = 0; i < XF_COUNT; i++)
		free(e->val[i]);
	memset(e, 0, sizeof(*e));
}

static void XMLCALL xml_start(void *arg, const XML_Char *name,
			      const XML_Char **attrs)
{
	struct xml_state *st = arg;
	int d;

	if (st->err)
		return;
	if (st->field != XF_NONE) { /* markup inside a text field */
		xml_fail(st, -EBADMSG);
		return;
	}
	d = ++st->depth;
	if (d == 1) {
		if (strcmp(name, st->root) != 0)
			xml_fail(st, -EBADMSG);
		return;
	}
	if (d == 2 && !strcmp(st->root, "ListBucketResult") &&
	    (!strcmp(name, "Contents") || !strcmp(name, "CommonPrefixes"))) {
		st->parent = !strcmp(name, "Contents") ? XP_CONTENTS
						       : XP_PREFIXES;
		st->cur.is_prefix = st->parent == XP_PREFIXES;
		return;
	}
	for (int f = XF_NONE + 1; f < XF_COUNT; f++) {
		if (xml_fields[f].depth != d ||
		    strcmp(name, xml_fields[f].name))
			continue;
		if (d == 3 && xml_fields[f].parent != st->parent)
			continue;
		if (d == 2 && (f == XF_CODE || f == XF_MESSAGE) !=
				      !strcmp(st->root, "Error"))
			continue;
		st->field = (enum xml_field)f;
		st->text.len = 0;
		s3_buf_add(&st->text, "", 0);
		return;
	}
}

static void XMLCALL xml_end(void *arg, const XML_Char *name)
{
	struct xml_state *st = arg;
	char **slot;

	if (st->err)
		return;
	if (st->field != XF_NONE) { /* the field's own end tag */
		slot = xml_fields[st->field].depth == 2
			       ? &st->val[st->field]
			       : &st->cur.val[st->field];
		if (!*slot && s3_buf_steal(&st->text, slot) < 0) {
			xml_fail(st, -ENOMEM);
			return;
		}
		st->field = XF_NONE;
	} else if (st->depth == 2 && st->parent != XP_NONE) {
		struct xml_entry *g = hoard_grow(st->entries, &st->cap_entries,
						 st->n_entries + 1, sizeof(*g),
						 64);

		if (!g) {
			xml_fail(st, -ENOMEM);
			return;
		}
		st->entries = g;
		st->entries[st->n_entries++] = st->cur;
		memset(&st->cur, 0, sizeof(st->cur));
		st->parent = XP_NONE;
	}
	st->depth--;
}

static void XMLCALL xml_chars(void *arg, const XML_Char *s, int len)
{
	struct xml_state *st = arg;

	if (!st->err && st->field != XF_NONE)
		s3_buf_add(&st->text, s, (size_t)len);
}

static void XMLCALL xml_doctype(void *arg, const XML_Char *name,
				const XML_Char *sysid, const XML_Char *pubid,
				int has_internal_subset)
{
	xml_fail(arg, -EBADMSG);
}

static void xml_state_free(struct xml_state *st)
{
	for (int i = 0; i < XF_COUNT; i++)
		free(st->val[i]);
	for (size_t i = 0; i < st->n_entries; i++)
		entry_free(&st->entries[i]);
	free(st->entries);
	entry_free(&st->cur);
	s3_buf_free(&st->text);
}

/* Parse doc (whole) with root element root into st; 0 or -errno. */
static int xml_parse(const char *doc, size_t n, const char *root,
		     struct xml_state *st)
{
	int r = 0;

	memset(st, 0, sizeof(*st));
	st->root = root;
	if (!doc || n > INT_MAX)
		return -EBADMSG;
	st->p = XML_ParserCreate("UTF-8");
	if (!st->p)
		return -ENOMEM;
	XML_SetUserData(st->p, st);
	XML_SetElementHandler(st->p, xml_start, xml_end);
	XML_SetCharacterDataHandler(st->p, xml_chars);
	XML_SetStartDoctypeDeclHandler(st->p, xml_doctype);
	if (XML_Parse(st->p, doc, (int)n, XML_TRUE) != XML_STATUS_OK)
		r = st->err					     ? st->err
		    : XML_GetErrorCode(st->p) == XML_ERROR_NO_MEMORY ? -ENOMEM
								     : -EBADMSG;
	else if (st->err)
		r = st->err;
	else if (st->text.oom)
		r = -ENOMEM;
	XML_ParserFree(st->p);
	st->p = NULL;
	return r;
}

void s3_xml_error(const char *doc, size_t n, char *code, size_t code_size,
		  char *msg, size_t msg_size)
{
	struct xml_state st;

	code[0] = msg[0] = '\0';
	if (xml_parse(doc, n, "Error", &st) == 0) {
		if (st.val[XF_CODE])
			snprintf(code, code_size, "%s", st.val[XF_CODE]);
		if (st.val[XF_MESSAGE])
			snprintf(msg, msg_size, "%s", st.val[XF_MESSAGE]);
	}
	xml_state_free(&st);
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

/* One entry to what fn sees; url: url-decode the key.  -EBADMSG if bad. */
static int entry_out(struct xml_entry *x, bool url, struct hoard_s3_entry *e)
{
	char *key = x->val[x->is_prefix ? XF_PREFIX : XF_KEY], *q;
	char *size = x->val[XF_SIZE], *etag = x->val[XF_ETAG];

	*e = (struct hoard_s3_entry){
		.is_prefix = x->is_prefix, .last_modified = -1, .etag = ""};
	if (!key || (url && url_decode(key) < 0))
		return -EBADMSG;
	e->key = key;
	if (x->is_prefix)
		return 0;
	if (size) {
		e->size = strtoull(size, &q, 10);
		if (q == size || *q || size[0] == '-')
			return -EBADMSG;
	}
	if (x->val[XF_MTIME])
		e->last_modified = s3_parse_iso8601(x->val[XF_MTIME]);
	if (etag) {
		size_t n = strlen(etag);

		if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
			memmove(etag, etag + 1, n - 2);
			etag[n - 2] = '\0';
		}
		e->etag = etag;
	}
	return 0;
}

int s3_list_page_parse(const char *doc, size_t n, hoard_s3_list_fn fn,
		       void *arg, bool *ret_truncated, char **ret_next_token)
{
	struct hoard_s3_entry *out = NULL;
	struct xml_state st;
	const char *enc, *trunc, *token;
	bool url, truncated;
	size_t i, k = 0;
	int r;

	r = xml_parse(doc, n, "ListBucketResult", &st);
	if (r < 0)
		goto out_free;
	enc = st.val[XF_ENCODING];
	trunc = st.val[XF_TRUNCATED];
	token = st.val[XF_TOKEN];
	url = enc && strcmp(enc, "url") == 0;
	truncated = trunc && strcmp(trunc, "true") == 0;
	if (truncated && (!token || !*token)) {
		r = -EBADMSG; /* more pages, but no way to ask for them */
		goto out_free;
	}
	/* Every entry is checked before fn sees any: <Contents> first, then
	 * <CommonPrefixes>, each in document order. */
	out = calloc(st.n_entries ? st.n_entries : 1, sizeof(*out));
	if (!out) {
		r = -ENOMEM;
		goto out_free;
	}
	for (int pass = 0; pass < 2; pass++)
		for (i = 0; i < st.n_entries; i++) {
			if (st.entries[i].is_prefix != (pass == 1))
				continue;
			r = entry_out(&st.entries[i], url, &out[k++]);
			if (r < 0)
				goto out_free;
		}
	for (i = 0; i < k; i++) {
		r = fn(&out[i], arg);
		if (r)
			goto out_free;
	}
	*ret_truncated = truncated;
	*ret_next_token = NULL;
	if (truncated) {
		*ret_next_token = st.val[XF_TOKEN];
		st.val[XF_TOKEN] = NULL;
	}
out_free:
	free(out);
	xml_state_free(&st);
	return r;
}
