// SPDX-License-Identifier: MIT
/*
 * s3sig: the pure parts of talking to S3: RFC 3986 encoding, canonical
 * query strings and AWS Signature Version 4 ("Authenticating Requests:
 * Using the Authorization Header", S3 API reference).  No I/O, no clock:
 * the caller passes the date, so tests replay AWS's documented example
 * and compare with botocore (tests/e2e/test_s3_client.py).
 *
 * The canonical request, for S3:
 *
 *	METHOD \n
 *	URI, each path segment UriEncode()d once ('/' kept, no normalization) \n
 *	canonical query (hoard_s3_canonical_query()) \n
 *	lower-case-name:trimmed-value \n   for every signed header, sorted
 *	\n
 *	signed header names joined by ';' \n
 *	hex SHA-256 of the payload (as sent in x-amz-content-sha256)
 *
 * string to sign = "AWS4-HMAC-SHA256\n" DATE "\n" SCOPE "\n" hex(SHA-256 of
 * the canonical request), SCOPE = YYYYMMDD/REGION/SERVICE/aws4_request, and
 * the signature is HMAC-SHA-256 under the key derived by HMAC-chaining
 * "AWS4" SECRET through YYYYMMDD, REGION, SERVICE and "aws4_request".
 *
 * The digests themselves (digest.h) are OpenSSL's: this is the one module
 * that includes it.
 */
#include "hoard/s3.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hoard/digest.h"
#include "hoard/util.h"
#include "s3-internal.h"

/* ---- digests (digest.h), over OpenSSL's EVP ---------------------------- */

static void digest_failed(const char *what)
{
	fprintf(stderr, "hoard: OpenSSL could not compute %s (out of memory)\n",
		what);
	abort();
}

static void evp_digest(const EVP_MD *md, const char *what, const void *data,
		       size_t n, uint8_t *out, unsigned want)
{
	unsigned len = 0;

	if (!EVP_Digest(data, n, out, &len, md, NULL) || len != want)
		digest_failed(what);
}

void hoard_sha256(const void *data, size_t n,
		  uint8_t ret_digest[HOARD_SHA256_SIZE])
{
	evp_digest(EVP_sha256(), "SHA-256", data, n, ret_digest,
		   HOARD_SHA256_SIZE);
}

void hoard_sha256_hex(const void *data, size_t n,
		      char ret_hex[HOARD_SHA256_HEX_SIZE])
{
	uint8_t d[HOARD_SHA256_SIZE];

	hoard_sha256(data, n, d);
	hoard_hex(d, sizeof(d), ret_hex);
}

void hoard_hmac_sha256(const void *key, size_t keylen, const void *data,
		       size_t n, uint8_t ret_mac[HOARD_SHA256_SIZE])
{
	unsigned len = 0;

	if (keylen > INT_MAX ||
	    !HMAC(EVP_sha256(), key, (int)keylen, data, n, ret_mac, &len) ||
	    len != HOARD_SHA256_SIZE)
		digest_failed("HMAC-SHA-256");
}

void hoard_md5(const void *data, size_t n, uint8_t ret_digest[HOARD_MD5_SIZE])
{
	evp_digest(EVP_md5(), "MD5", data, n, ret_digest, HOARD_MD5_SIZE);
}

void hoard_base64(const void *data, size_t n, char *out)
{
	/* EVP_EncodeBlock writes whole groups and the NUL; its int length
	 * bounds one call, so longer input goes in slices of whole groups. */
	const unsigned char *p = data;
	const size_t slice = 3 * 1024 * 1024;

	*out = '\0';
	while (n > 0) {
		size_t k = n < slice ? n : slice;

		out += EVP_EncodeBlock((unsigned char *)out, p, (int)k);
		p += k;
		n -= k;
	}
}

/* ---- s3_buf ----------------------------------------------------------- */

bool s3_buf_reserve(struct s3_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->oom)
		return false;
	if (extra > SIZE_MAX / 2 - b->len - 1)
		goto out_oom;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		goto out_oom;
	b->p = p;
	b->cap = cap;
	return true;
out_oom:
	b->oom = true;
	return false;
}

void s3_buf_add(struct s3_buf *b, const void *data, size_t n)
{
	if (!s3_buf_reserve(b, n))
		return;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void s3_buf_adds(struct s3_buf *b, const char *s)
{
	s3_buf_add(b, s, strlen(s));
}

void s3_buf_addf(struct s3_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (!s3_buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

int s3_buf_steal(struct s3_buf *b, char **ret)
{
	if (!b->oom && !b->p)
		s3_buf_add(b, "", 0);
	if (b->oom) {
		s3_buf_free(b);
		return -ENOMEM;
	}
	*ret = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return 0;
}

void s3_buf_free(struct s3_buf *b)
{
	if (!b)
		return;
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}

/* ---- encoding --------------------------------------------------------- */

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

static void uri_encode_into(struct s3_buf *b, const char *s, size_t n,
			    bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

		if (unreserved(c) || (keep_slash && c == '/'))
			s3_buf_add(b, &s[i], 1);
		else
			s3_buf_add(b, esc, 3);
	}
}

int hoard_s3_uri_encode(const char *s, size_t n, bool keep_slash, char **ret)
{
	struct s3_buf b = {0};

	uri_encode_into(&b, s, n, keep_slash);
	return s3_buf_steal(&b, ret);
}

struct enc_param {
	char *key;
	char *value;
};

static int enc_param_cmp(const void *a, const void *b)
{
	const struct enc_param *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	return r ? r : strcmp(x->value, y->value);
}

int hoard_s3_canonical_query(const struct hoard_s3_param *params, size_t n,
			     char **ret)
{
	struct enc_param *enc;
	struct s3_buf b = {0};
	size_t i, done = 0;
	int r = -ENOMEM;

	enc = calloc(n ? n : 1, sizeof(*enc));
	if (!enc)
		return -ENOMEM;
	for (i = 0; i < n; i++, done++) {
		const char *v = params[i].value ? params[i].value : "";

		if (hoard_s3_uri_encode(params[i].key, strlen(params[i].key),
					false, &enc[i].key) < 0)
			goto out_free_enc;
		if (hoard_s3_uri_encode(v, strlen(v), false, &enc[i].value) <
		    0) {
			free(enc[i].key);
			goto out_free_enc;
		}
	}
	/* Byte order of the encoded names: what AWS and botocore sort by. */
	qsort(enc, n, sizeof(*enc), enc_param_cmp);
	for (i = 0; i < n; i++)
		s3_buf_addf(&b, "%s%s=%s", i ? "&" : "", enc[i].key,
			    enc[i].value);
	r = s3_buf_steal(&b, ret);
out_free_enc:
	for (i = 0; i < done; i++) {
		free(enc[i].key);
		free(enc[i].value);
	}
	free(enc);
	return r;
}

/* ---- SigV4 ------------------------------------------------------------ */

/* Secrets are 40 characters at AWS; anything up to this is accepted. */
#define MAX_SECRET 256

struct canon_header {
	char *name;	   /* lower case */
	const char *value; /* as given */
	size_t order;	   /* position in the input: keeps repeats in order */
};

static int canon_header_cmp(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Trimmed, inner runs of spaces and tabs folded to one space. */
static void add_header_value(struct s3_buf *b, const char *v)
{
	bool space = false, started = false;

	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = started;
			continue;
		}
		if (space)
			s3_buf_add(b, " ", 1);
		s3_buf_add(b, v, 1);
		space = false;
		started = true;
	}
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return true;
	return false;
}

static bool amz_date_valid(const char *d)
{
	if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && (d[i] < '0' || d[i] > '9'))
			return false;
	return true;
}

static bool sign_input_valid(const struct hoard_s3_sign_input *in)
{
	if (!in->method || !in->canonical_uri || !in->payload_hash ||
	    !in->region || !in->service || !in->access_key_id ||
	    !in->secret_access_key ||
	    strlen(in->secret_access_key) > MAX_SECRET ||
	    !amz_date_valid(in->amz_date) || (in->n_headers && !in->headers))
		return false;
	for (size_t i = 0; i < in->n_headers; i++) {
		const struct hoard_s3_header *h = &in->headers[i];

		if (!h->name || !*h->name || !h->value || has_ctl(h->name) ||
		    has_ctl(h->value) || strchr(h->name, ':') ||
		    strchr(h->name, ' '))
			return false;
	}
	return true;
}

/* Sorted canonical headers into cr (with the blank line) and names into sh. */
static int canonical_headers(const struct hoard_s3_sign_input *in,
			     struct s3_buf *cr, struct s3_buf *sh)
{
	struct canon_header *hs;
	size_t i;
	int r = -ENOMEM;

	hs = calloc(in->n_headers ? in->n_headers : 1, sizeof(*hs));
	if (!hs)
		return -ENOMEM;
	for (i = 0; i < in->n_headers; i++) {
		hs[i].name = strdup(in->headers[i].name);
		if (!hs[i].name)
			goto out_free_hs;
		for (char *p = hs[i].name; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		hs[i].value = in->headers[i].value;
		hs[i].order = i;
	}
	qsort(hs, in->n_headers, sizeof(*hs), canon_header_cmp);
	for (i = 0; i < in->n_headers; i++) {
		bool repeat = i && !strcmp(hs[i].name, hs[i - 1].name);

		if (repeat) {
			s3_buf_add(cr, ",", 1);
		} else {
			if (i)
				s3_buf_add(cr, "\n", 1);
			s3_buf_addf(cr, "%s:", hs[i].name);
			s3_buf_addf(sh, "%s%s", sh->len ? ";" : "", hs[i].name);
		}
		add_header_value(cr, hs[i].value);
	}
	s3_buf_adds(cr, in->n_headers ? "\n\n" : "\n");
	r = 0;
out_free_hs:
	for (i = 0; i < in->n_headers; i++)
		free(hs[i].name);
	free(hs);
	return r;
}

static void signing_key(const struct hoard_s3_sign_input *in,
			uint8_t key[HOARD_SHA256_SIZE])
{
	size_t slen = strlen(in->secret_access_key);
	uint8_t tmp[HOARD_SHA256_SIZE];
	char k[4 + MAX_SECRET];

	memcpy(k, "AWS4", 4);
	memcpy(k + 4, in->secret_access_key, slen);
	hoard_hmac_sha256(k, 4 + slen, in->amz_date, 8, tmp);
	explicit_bzero(k, sizeof(k));
	hoard_hmac_sha256(tmp, sizeof(tmp), in->region, strlen(in->region),
			  key);
	hoard_hmac_sha256(key, HOARD_SHA256_SIZE, in->service,
			  strlen(in->service), tmp);
	hoard_hmac_sha256(tmp, sizeof(tmp), "aws4_request", 12, key);
	explicit_bzero(tmp, sizeof(tmp));
}

int hoard_s3_sign(const struct hoard_s3_sign_input *in,
		  struct hoard_s3_signature *ret_sig)
{
	struct s3_buf cr = {0}, sh = {0}, sts = {0}, auth = {0};
	struct hoard_s3_signature sig = {0};
	char crhash[HOARD_SHA256_HEX_SIZE];
	uint8_t key[HOARD_SHA256_SIZE], mac[HOARD_SHA256_SIZE];
	int r;

	if (!in || !ret_sig || !sign_input_valid(in))
		return -EINVAL;

	s3_buf_addf(&cr, "%s\n%s\n%s\n", in->method, in->canonical_uri,
		    in->canonical_query ? in->canonical_query : "");
	r = canonical_headers(in, &cr, &sh);
	if (r < 0)
		goto out_free_bufs;
	s3_buf_addf(&cr, "%s\n%s", sh.p ? sh.p : "", in->payload_hash);
	if (cr.oom || sh.oom) {
		r = -ENOMEM;
		goto out_free_bufs;
	}

	hoard_sha256_hex(cr.p, cr.len, crhash);
	s3_buf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s",
		    in->amz_date, in->amz_date, in->region, in->service,
		    crhash);
	if (sts.oom) {
		r = -ENOMEM;
		goto out_free_bufs;
	}
	signing_key(in, key);
	hoard_hmac_sha256(key, sizeof(key), sts.p, sts.len, mac);
	explicit_bzero(key, sizeof(key));
	hoard_hex(mac, sizeof(mac), sig.signature);

	s3_buf_addf(&auth,
		    "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
		    "SignedHeaders=%s, Signature=%s",
		    in->access_key_id, in->amz_date, in->region, in->service,
		    sh.p ? sh.p : "", sig.signature);

	r = s3_buf_steal(&cr, &sig.canonical_request);
	if (r == 0)
		r = s3_buf_steal(&sts, &sig.string_to_sign);
	if (r == 0)
		r = s3_buf_steal(&sh, &sig.signed_headers);
	if (r == 0)
		r = s3_buf_steal(&auth, &sig.authorization);
	if (r < 0) {
		hoard_s3_signature_clear(&sig);
		goto out_free_bufs;
	}
	*ret_sig = sig;
out_free_bufs:
	s3_buf_free(&cr);
	s3_buf_free(&sh);
	s3_buf_free(&sts);
	if (auth.p)
		explicit_bzero(auth.p, auth.len);
	s3_buf_free(&auth);
	return r;
}

void hoard_s3_signature_clear(struct hoard_s3_signature *sig)
{
	if (!sig)
		return;
	free(sig->canonical_request);
	free(sig->string_to_sign);
	free(sig->signed_headers);
	if (sig->authorization)
		explicit_bzero(sig->authorization, strlen(sig->authorization));
	free(sig->authorization);
	explicit_bzero(sig, sizeof(*sig));
}
