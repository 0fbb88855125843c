// SPDX-License-Identifier: MIT
/*
 * s3sig_cli: hoard's SigV4 signer (hoard_s3_sign() and the encoding around
 * it, as fs/remote/s3.c uses them) for given inputs, printed as one JSON object:
 * canonical_uri, canonical_query, payload_hash, canonical_request,
 * string_to_sign, signed_headers, signature.  tests/e2e/test_s3_client.py
 * compares them with botocore's.  Not installed.
 *
 *   s3sig_cli --method M [--bucket B] [--key K] [--query NAME=VALUE]...
 *             [--header NAME:VALUE]... [--payload-hex HEX] --date YYYYMMDDTHHMMSSZ
 *             --region R [--service S] --access-key AK --secret SK
 *
 * The URI is /B/encoded-K (path style), or /encoded-K without --bucket.
 * Query names and values are given decoded; header values as sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/digest.h"
#include "hoard/s3.h"

#define MAX_ITEMS 32

static void json_str(const char *name, const char *s, bool last)
{
	printf("\"%s\": \"", name);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	printf("\"%s", last ? "}\n" : ", ");
}

static int unhex(const char *hex, unsigned char **ret, size_t *ret_len)
{
	size_t n = strlen(hex) / 2;
	unsigned char *p = malloc(n ? n : 1);
	unsigned v;

	if (!p || strlen(hex) % 2)
		goto out_free;
	for (size_t i = 0; i < n; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			goto out_free;
		p[i] = (unsigned char)v;
	}
	*ret = p;
	*ret_len = n;
	return 0;
out_free:
	free(p);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct hoard_s3_param params[MAX_ITEMS];
	struct hoard_s3_header headers[MAX_ITEMS];
	struct hoard_s3_sign_input in = {.service = "s3"};
	struct hoard_s3_signature sig;
	char hash[HOARD_SHA256_HEX_SIZE], *query = NULL, *enc = NULL;
	char *uri = NULL;
	const char *bucket = NULL, *key = "";
	unsigned char *payload = NULL;
	size_t np = 0, nh = 0, plen = 0;
	int i, r;

	for (i = 1; i + 1 < argc; i += 2) {
		const char *o = argv[i];
		char *v = argv[i + 1], *sep;

		if (!strcmp(o, "--method")) {
			in.method = v;
		} else if (!strcmp(o, "--bucket")) {
			bucket = v;
		} else if (!strcmp(o, "--key")) {
			key = v;
		} else if (!strcmp(o, "--query") && np < MAX_ITEMS) {
			sep = strchr(v, '=');
			if (sep)
				*sep++ = '\0';
			params[np++] = (struct hoard_s3_param){v, sep};
		} else if (!strcmp(o, "--header") && nh < MAX_ITEMS &&
			   (sep = strchr(v, ':'))) {
			*sep++ = '\0';
			headers[nh++] = (struct hoard_s3_header){v, sep};
		} else if (!strcmp(o, "--payload-hex")) {
			if (unhex(v, &payload, &plen) < 0)
				break;
		} else if (!strcmp(o, "--date")) {
			in.amz_date = v;
		} else if (!strcmp(o, "--region")) {
			in.region = v;
		} else if (!strcmp(o, "--service")) {
			in.service = v;
		} else if (!strcmp(o, "--access-key")) {
			in.access_key_id = v;
		} else if (!strcmp(o, "--secret")) {
			in.secret_access_key = v;
		} else {
			break;
		}
	}
	if (i != argc) {
		fprintf(stderr, "s3sig_cli: bad argument '%s'\n", argv[i]);
		return 2;
	}
	if (hoard_s3_uri_encode(key, strlen(key), true, &enc) < 0 ||
	    asprintf(&uri, "%s%s/%s", bucket ? "/" : "", bucket ? bucket : "",
		     enc) < 0 ||
	    hoard_s3_canonical_query(params, np, &query) < 0)
		return 1;
	hoard_sha256_hex(payload ? (const void *)payload : "", plen, hash);
	in.canonical_uri = uri;
	in.canonical_query = query;
	in.headers = headers;
	in.n_headers = nh;
	in.payload_hash = hash;
	r = hoard_s3_sign(&in, &sig);
	if (r < 0) {
		fprintf(stderr, "s3sig_cli: %s\n", strerror(-r));
		return 1;
	}
	printf("{");
	json_str("canonical_uri", uri, false);
	json_str("canonical_query", query, false);
	json_str("payload_hash", hash, false);
	json_str("canonical_request", sig.canonical_request, false);
	json_str("string_to_sign", sig.string_to_sign, false);
	json_str("signed_headers", sig.signed_headers, false);
	json_str("signature", sig.signature, true);
	hoard_s3_signature_clear(&sig);
	free(payload);
	free(query);
	free(enc);
	free(uri);
	return 0;
}
