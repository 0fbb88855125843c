/* SPDX-License-Identifier: MIT */
/*
 * json: the few helpers every JSON writer and reader of hoard shares, over
 * jansson (its objects are built and read with jansson's own API; these
 * fix the conventions).  Layer 1: uses nothing else of hoard.
 *
 * Conventions of hoard's JSON: one compact line ("{"a":1,"b":2}", keys in
 * the order they were set) and a "\n"; counts and byte figures are
 * integers (jansson's are signed 64-bit: a figure above INT64_MAX is
 * written as INT64_MAX); seconds and ratios are numbers rounded to 3
 * decimals; strings are UTF-8.
 *
 * Thread contract: no shared state (jansson's objects belong to their
 * caller; its hash seed is set once, thread-safely, by jansson itself).
 */
#ifndef HOARD_JSON_H
#define HOARD_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

/*
 * The text of v as one line, with "\n" when newline; malloc()ed, NULL on
 * ENOMEM or when v is NULL (a failed json_pack()).  Takes v's reference.
 */
char *hoard_json_dump(json_t *v, bool newline);
/* An integer (clamped to INT64_MAX), a number rounded to 3 decimals. */
json_t *hoard_json_u64(uint64_t v);
json_t *hoard_json_real3(double v);
/* A string from bytes that should be UTF-8: a byte that is not part of a
 * valid sequence becomes U+FFFD. */
json_t *hoard_json_str_lossy(const char *s);
/* A string from bytes that need not be text: each byte >= 0x80 becomes
 * the code point of the same value (U+0080..U+00FF), so no byte is lost
 * and a reader can map the code points back to the bytes. */
json_t *hoard_json_str_bytes(const char *s);

/*
 * Parse text (one JSON value and nothing else but white space) and
 * require an object: the object (the caller's reference) or NULL.
 */
json_t *hoard_json_parse_object(const char *text);
/* obj's member key as an unsigned integer: 0, or -EBADMSG if it is missing
 * or not a non-negative integer (or -ENOENT if missing and optional). */
int hoard_json_get_u64(const json_t *obj, const char *key, bool optional,
		       uint64_t *ret);
/* obj's member key as a number (integer or real); -EBADMSG as above. */
int hoard_json_get_real(const json_t *obj, const char *key, bool optional,
			double *ret);
/* obj's member key as a boolean; -EBADMSG as above. */
int hoard_json_get_bool(const json_t *obj, const char *key, bool optional,
			bool *ret);

#endif
