// SPDX-License-Identifier: MIT
/*
 * json: hoard's JSON conventions over jansson (json.h).
 */
#include "hoard/json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JSON_FLAGS                                                             \
	(JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

char *hoard_json_dump(json_t *v, bool newline)
{
	char *text, *out;
	size_t n;

	if (!v)
		return NULL;
	text = json_dumps(v, JSON_FLAGS | JSON_ENCODE_ANY);
	json_decref(v);
	if (!text || !newline)
		return text;
	n = strlen(text);
	out = realloc(text, n + 2);
	if (!out) {
		free(text);
		return NULL;
	}
	out[n] = '\n';
	out[n + 1] = '\0';
	return out;
}

json_t *hoard_json_u64(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

json_t *hoard_json_real3(double v)
{
	/* rounded half away from zero, without libm */
	if (!isfinite(v))
		v = 0;
	if (v > -9e15 / 1000 && v < 9e15 / 1000)
		v = (double)(long long)(v * 1000 + (v < 0 ? -0.5 : 0.5)) / 1000;
	return json_real(v);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t c;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, c = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return len;
}

json_t *hoard_json_str_lossy(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), o = 0;
	char *out;
	json_t *v;

	v = json_string(s);
	if (v)
		return v;
	/* not valid UTF-8 (or no memory): at most 3 bytes out per byte in */
	out = malloc(3 * n + 1);
	if (!out)
		return NULL;
	while (n) {
		size_t len = utf8_len(p, n);

		if (len) {
			memcpy(out + o, p, len);
			o += len;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			len = 1;
		}
		p += len;
		n -= len;
	}
	v = json_stringn(out, o);
	free(out);
	return v;
}

json_t *hoard_json_str_bytes(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *out = malloc(2 * n + 1);
	json_t *v;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x80) {
			out[o++] = (char)*p;
		} else {
			out[o++] = (char)(0xc0 | (*p >> 6));
			out[o++] = (char)(0x80 | (*p & 0x3f));
		}
	}
	v = json_stringn(out, o);
	free(out);
	return v;
}

json_t *hoard_json_parse_object(const char *text)
{
	json_error_t err;
	json_t *v;

	if (!text)
		return NULL;
	v = json_loads(text, JSON_REJECT_DUPLICATES, &err);
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

static int member(const json_t *obj, const char *key, bool optional,
		  json_t **ret)
{
	*ret = json_object_get(obj, key);
	if (!*ret)
		return optional ? -ENOENT : -EBADMSG;
	return 0;
}

int hoard_json_get_u64(const json_t *obj, const char *key, bool optional,
		       uint64_t *ret)
{
	json_t *v;
	int r = member(obj, key, optional, &v);

	if (r < 0)
		return r;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EBADMSG;
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

int hoard_json_get_real(const json_t *obj, const char *key, bool optional,
			double *ret)
{
	json_t *v;
	int r = member(obj, key, optional, &v);

	if (r < 0)
		return r;
	if (!json_is_number(v))
		return -EBADMSG;
	*ret = json_number_value(v);
	return 0;
}

int hoard_json_get_bool(const json_t *obj, const char *key, bool optional,
			bool *ret)
{
	json_t *v;
	int r = member(obj, key, optional, &v);

	if (r < 0)
		return r;
	if (!json_is_boolean(v))
		return -EBADMSG;
	*ret = json_is_true(v);
	return 0;
}
