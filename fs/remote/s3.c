// SPDX-License-Identifier: MIT
/*
 * s3: the S3 client over libcurl (the only module that includes curl.h).
 *
 * Signing.  We sign every request ourselves, with hoard_s3_sign()
 * (fs/remote/s3sig.c), and set the Authorization header; CURLOPT_AWS_SIGV4 is not
 * used.  What we found with Debian 12's libcurl 7.88 against a server that
 * verifies signatures (tests/e2e/test_s3_client.py): its signatures are
 * right for what this module sends (keys with spaces, unicode, '+', '~',
 * sorted and encoded query strings, empty bodies, Range, Content-MD5,
 * session tokens), but only because the path and query are encoded and
 * sorted here and x-amz-content-sha256 is passed in; and it also signs
 * headers that are removed with "Name:" ("Expect:", "Accept:"), which are
 * then not sent: SignatureDoesNotMatch.  Its canonicalization has changed
 * since (8.3 sorts and re-encodes the query, later versions re-encode the
 * path, with bugs of their own), and what it signs cannot be checked
 * offline.  Our signer is tested against AWS's documented example and
 * botocore's vectors, the same on every libcurl.  cfg->curl_sigv4 switches
 * to libcurl's signer, for test_curl_builtin_sigv4 only.
 *
 * Every request sends, and signs, x-amz-content-sha256 (the SHA-256 of the
 * body), x-amz-date, Host (set explicitly, so the signed value is the sent
 * one), the session token if any, Content-MD5 on PUT and Range on ranged
 * GETs.  The query string is hoard_s3_canonical_query()'s output, and the
 * path is each key segment RFC 3986-encoded with CURLOPT_PATH_AS_IS, so what
 * goes on the wire is exactly what was signed.
 *
 * The operations themselves (what to ask, how to check the answer) are in
 * fs/remote/s3ops.c.
 *
 * Connections: a small pool of easy handles (each keeps its connections
 * alive between requests); a request takes one, or makes one when all are
 * in use, and gives it back.
 */
#include "hoard/s3.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hoard/digest.h"
#include "hoard/util.h"
#include "s3-internal.h"

_Static_assert(CURL_ERROR_SIZE <= S3_CURL_ERROR_SIZE, "curl error buffer");

#define POOL_MAX 16
/* With a deadline, no retry starts with less than this left. */
#define DEADLINE_MIN_NS (100 * 1000000ull)
#define ERRBODY_MAX	65536
#define ERROR_SIZE	512

static __thread char last_error[ERROR_SIZE];
static __thread uint64_t jitter_state;

struct hoard_s3_client {
	struct hoard_s3_config cfg; /* immutable; strings owned */
	bool aws;		    /* AWS's endpoint: virtual-hosted style */
	const char *scheme;	    /* "http" or "https" */
	char *host;		    /* custom endpoint: the Host header */
	char *sigv4_param;	    /* "aws:amz:REGION:s3" (curl_sigv4) */
	pthread_mutex_t lock;
	CURL *idle[POOL_MAX]; /* protected by lock */
	unsigned n_idle;      /* protected by lock */
	uint64_t requests, retries, bytes_up, bytes_down; /* atomic */
};

struct xfer {
	const struct s3_request *rq;
	struct s3_response *rs;
};

/* ---- errors ----------------------------------------------------------- */

const char *hoard_s3_last_error(void)
{
	return last_error;
}

void s3_clear_error(void)
{
	last_error[0] = '\0';
}

unsigned s3_list_max_keys(const struct hoard_s3_client *c)
{
	return c->cfg.list_max_keys;
}

/* If a secret (of at least 4 bytes) starts at p, its length, else 0. */
static size_t secret_at(const char *p, const char *const *secrets, int n)
{
	for (int i = 0; i < n; i++) {
		size_t len = secrets[i] ? strlen(secrets[i]) : 0;

		if (len >= 4 && strncmp(p, secrets[i], len) == 0)
			return len;
	}
	return 0;
}

void s3_set_error(const struct hoard_s3_client *c, const char *signature,
		  const char *fmt, ...)
{
	static const char mark[] = "[redacted]";
	const char *const secrets[] = {
		c ? c->cfg.secret_access_key : NULL,
		c ? c->cfg.session_token : NULL,
		signature,
	};
	char msg[4 * ERROR_SIZE];
	size_t o = 0, n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/*
	 * Belt and braces: no secret may ever be in a message, whatever a
	 * server echoes.  Scrubbed before the cut to size, so no prefix of
	 * one survives at the end either; no control characters.
	 */
	for (const char *p = msg; *p && o + 1 < sizeof(last_error);) {
		n = secret_at(p, secrets, 3);
		if (n) {
			for (size_t k = 0;
			     k < sizeof(mark) - 1 && o + 1 < sizeof(last_error);
			     k++)
				last_error[o++] = mark[k];
			p += n;
			continue;
		}
		last_error[o++] = (unsigned char)*p < 0x20 || *p == 0x7f ? '?'
									 : *p;
		p++;
	}
	last_error[o] = '\0';
	hoard_log(LOG_DEBUG, "s3: %s", last_error);
}

/* ---- client ----------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

int hoard_s3_client_new(const struct hoard_s3_config *cfg,
			struct hoard_s3_client **ret_client)
{
	struct hoard_s3_client *c;
	const char *authority;
	size_t n;

	if (!cfg || !cfg->access_key_id || !cfg->secret_access_key ||
	    !cfg->region || !*cfg->region || cfg->max_attempts < 1 ||
	    (cfg->endpoint && hoard_s3_endpoint_check(cfg->endpoint) < 0))
		return -EINVAL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_result != CURLE_OK)
		return -EIO;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	c->cfg.access_key_id = xstrdup(cfg->access_key_id);
	c->cfg.secret_access_key = xstrdup(cfg->secret_access_key);
	c->cfg.session_token = xstrdup(cfg->session_token);
	c->cfg.region = xstrdup(cfg->region);
	c->cfg.endpoint = xstrdup(cfg->endpoint);
	c->cfg.ca_bundle = xstrdup(cfg->ca_bundle);
	if (asprintf(&c->sigv4_param, "aws:amz:%s:s3", cfg->region) < 0)
		c->sigv4_param = NULL;
	if (!c->cfg.access_key_id || !c->cfg.secret_access_key ||
	    !c->cfg.region || (cfg->session_token && !c->cfg.session_token) ||
	    (cfg->endpoint && !c->cfg.endpoint) ||
	    (cfg->ca_bundle && !c->cfg.ca_bundle) || !c->sigv4_param)
		goto out_free_client;

	c->aws = !cfg->endpoint;
	if (c->aws) {
		c->scheme = "https";
	} else {
		c->scheme = strncasecmp(cfg->endpoint, "https:", 6) ? "http"
								    : "https";
		authority = strstr(cfg->endpoint, "://") + 3;
		n = strcspn(authority, "/");
		/* The Host header curl would send: no default port. */
		if (n > 3 && !strcmp(c->scheme, "http") &&
		    !strncmp(authority + n - 3, ":80", 3))
			n -= 3;
		else if (n > 4 && !strcmp(c->scheme, "https") &&
			 !strncmp(authority + n - 4, ":443", 4))
			n -= 4;
		c->host = strndup(authority, n);
		if (!c->host)
			goto out_free_client;
		for (char *p = c->host; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	pthread_mutex_init(&c->lock, NULL);
	*ret_client = c;
	return 0;
out_free_client:
	hoard_s3_config_clear(&c->cfg);
	free(c->sigv4_param);
	free(c);
	return -ENOMEM;
}

void hoard_s3_client_free(struct hoard_s3_client *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->n_idle; i++)
		curl_easy_cleanup(c->idle[i]);
	pthread_mutex_destroy(&c->lock);
	hoard_s3_config_clear(&c->cfg);
	free(c->host);
	free(c->sigv4_param);
	free(c);
}

void hoard_s3_client_stats(struct hoard_s3_client *c,
			   struct hoard_s3_stats *ret_stats)
{
	ret_stats->requests = __atomic_load_n(&c->requests, __ATOMIC_RELAXED);
	ret_stats->retries = __atomic_load_n(&c->retries, __ATOMIC_RELAXED);
	ret_stats->bytes_up = __atomic_load_n(&c->bytes_up, __ATOMIC_RELAXED);
	ret_stats->bytes_down = __atomic_load_n(&c->bytes_down,
						__ATOMIC_RELAXED);
}

static CURL *handle_get(struct hoard_s3_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->n_idle)
		h = c->idle[--c->n_idle];
	pthread_mutex_unlock(&c->lock);
	return h ? h : curl_easy_init();
}

static void handle_put(struct hoard_s3_client *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->n_idle < POOL_MAX) {
		c->idle[c->n_idle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* ---- callbacks -------------------------------------------------------- */

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb, left = x->rq->body_len - x->rs->up_off;

	if (n > left)
		n = left;
	memcpy(buf, x->rq->body + x->rs->up_off, n);
	x->rs->up_off += n;
	return n;
}

static int seek_cb(void *arg, curl_off_t off, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->rq->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->rs->up_off = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

static void copy_value(char *dst, size_t size, const char *v, size_t n)
{
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	if (n >= size)
		n = size - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t header_cb(char *line, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct s3_response *rs = x->rs;
	size_t n = size * nmemb, nl;
	const char *colon;
	char num[32];

	if (n > 5 && !memcmp(line, "HTTP/", 5)) {
		/* A new response (after "100 Continue"): forget the last. */
		const char *sp = memchr(line, ' ', n);

		rs->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		rs->etag[0] = rs->content_range[0] = '\0';
		rs->last_modified = -1;
		rs->bucket_region[0] = '\0';
		rs->has_length = rs->etag_not_md5 = false;
		return n;
	}
	colon = memchr(line, ':', n);
	if (!colon)
		return n;
	nl = (size_t)(colon - line);
	colon++;
#define IS(name) (nl == sizeof(name) - 1 && !strncasecmp(line, name, nl))
	if (IS("etag")) {
		copy_value(rs->etag, sizeof(rs->etag), colon,
			   n - (size_t)(colon - line));
		nl = strlen(rs->etag);
		if (nl >= 2 && rs->etag[0] == '"' && rs->etag[nl - 1] == '"') {
			memmove(rs->etag, rs->etag + 1, nl - 2);
			rs->etag[nl - 2] = '\0';
		}
	} else if (IS("content-length")) {
		copy_value(num, sizeof(num), colon, n - (size_t)(colon - line));
		rs->content_length = strtoull(num, NULL, 10);
		rs->has_length = num[0] >= '0' && num[0] <= '9';
		if (rs->has_length && !x->rq->dst && rs->status / 100 == 2 &&
		    !strcmp(x->rq->method, "GET") &&
		    rs->content_length < ((uint64_t)1 << 32))
			s3_buf_reserve(&rs->body, (size_t)rs->content_length);
	} else if (IS("content-range")) {
		copy_value(rs->content_range, sizeof(rs->content_range), colon,
			   n - (size_t)(colon - line));
	} else if (IS("last-modified")) {
		char date[64];
		time_t t;

		copy_value(date, sizeof(date), colon,
			   n - (size_t)(colon - line));
		t = curl_getdate(date, NULL);
		rs->last_modified = t < 0 ? -1 : (int64_t)t;
	} else if (IS("x-amz-bucket-region")) {
		copy_value(rs->bucket_region, sizeof(rs->bucket_region), colon,
			   n - (size_t)(colon - line));
	} else if (IS("x-amz-server-side-encryption")) {
		copy_value(num, sizeof(num), colon, n - (size_t)(colon - line));
		if (!strncmp(num, "aws:kms", 7))
			rs->etag_not_md5 = true;
	} else if (IS("x-amz-server-side-encryption-customer-algorithm")) {
		rs->etag_not_md5 = true;
	}
#undef IS
	return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct s3_response *rs = x->rs;
	size_t n = size * nmemb;

	if (rs->status / 100 != 2) { /* an error document: keep its head */
		if (rs->body.len < ERRBODY_MAX)
			s3_buf_add(&rs->body, data,
				   n < ERRBODY_MAX - rs->body.len
					   ? n
					   : ERRBODY_MAX - rs->body.len);
		return n;
	}
	if (x->rq->dst) {
		if (n > x->rq->dst_cap - rs->dst_len) {
			rs->overflow = true;
			return 0;
		}
		memcpy(x->rq->dst + rs->dst_len, data, n);
		rs->dst_len += n;
		return n;
	}
	s3_buf_add(&rs->body, data, n);
	return rs->body.oom ? 0 : n;
}

/* ---- one request ------------------------------------------------------ */

/* The host and the encoded path (the canonical URI) of a request. */
static int request_target(const struct hoard_s3_client *c,
			  const struct s3_request *rq, char **ret_host,
			  char **ret_path)
{
	struct s3_buf path = {0};
	char *host, *key = NULL;
	bool virtual = c->aws && !strchr(rq->bucket, '.');
	int r;

	if (rq->key) {
		r = hoard_s3_uri_encode(rq->key, strlen(rq->key), true, &key);
		if (r < 0)
			return r;
	}
	if (!c->aws)
		host = strdup(c->host);
	else if (virtual && asprintf(&host, "%s.s3.%s.amazonaws.com",
				     rq->bucket, c->cfg.region) < 0)
		host = NULL;
	else if (!virtual &&
		 asprintf(&host, "s3.%s.amazonaws.com", c->cfg.region) < 0)
		host = NULL;
	if (!virtual)
		s3_buf_addf(&path, "/%s", rq->bucket);
	if (key)
		s3_buf_addf(&path, "/%s", key);
	else if (virtual)
		s3_buf_adds(&path, "/");
	free(key);
	if (!host) {
		s3_buf_free(&path);
		return -ENOMEM;
	}
	r = s3_buf_steal(&path, ret_path);
	if (r < 0) {
		free(host);
		return r;
	}
	*ret_host = host;
	return 0;
}

static void amz_now(char out[17])
{
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static void slist_free_wiped(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static int append_header(struct curl_slist **l, const char *name,
			 const char *value)
{
	struct curl_slist *n;
	char *line;

	if (asprintf(&line, "%s: %s", name, value) < 0)
		return -ENOMEM;
	n = curl_slist_append(*l, line);
	explicit_bzero(line, strlen(line));
	free(line);
	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

/*
 * The header list of one attempt, signed (or left to libcurl to sign).
 * *ret_sig gets the signature, so error messages can be scrubbed of it.
 */
static int build_headers(const struct hoard_s3_client *c,
			 const struct s3_request *rq, const char *host,
			 const char *path, const char *payload_hash,
			 struct curl_slist **ret_list,
			 char ret_sig[HOARD_SHA256_HEX_SIZE])
{
	struct hoard_s3_header hs[8];
	struct hoard_s3_signature sig;
	struct curl_slist *l = NULL;
	char date[17];
	size_t n = 0, i;
	int r;

	amz_now(date);
	if (!c->cfg.curl_sigv4) {
		hs[n++] = (struct hoard_s3_header){"Host", host};
		hs[n++] = (struct hoard_s3_header){"x-amz-date", date};
	}
	hs[n++] = (struct hoard_s3_header){"x-amz-content-sha256",
					   payload_hash};
	if (c->cfg.session_token)
		hs[n++] = (struct hoard_s3_header){"x-amz-security-token",
						   c->cfg.session_token};
	if (rq->content_md5[0])
		hs[n++] = (struct hoard_s3_header){"Content-MD5",
						   rq->content_md5};
	if (rq->range[0])
		hs[n++] = (struct hoard_s3_header){"Range", rq->range};
	for (i = 0, r = 0; i < n && r == 0; i++)
		r = append_header(&l, hs[i].name, hs[i].value);
	ret_sig[0] = '\0';
	if (r == 0 && !c->cfg.curl_sigv4) {
		struct hoard_s3_sign_input in = {
			.method = rq->method,
			.canonical_uri = path,
			.canonical_query = rq->query ? rq->query : "",
			.headers = hs,
			.n_headers = n,
			.payload_hash = payload_hash,
			.amz_date = date,
			.region = c->cfg.region,
			.service = "s3",
			.access_key_id = c->cfg.access_key_id,
			.secret_access_key = c->cfg.secret_access_key,
		};

		r = hoard_s3_sign(&in, &sig);
		if (r == 0) {
			r = append_header(&l, "Authorization",
					  sig.authorization);
			memcpy(ret_sig, sig.signature, HOARD_SHA256_HEX_SIZE);
			hoard_s3_signature_clear(&sig);
		}
	}
	/*
	 * No "Expect: 100-continue" round trip, no default Accept header.
	 * (Not with libcurl's signer: 7.88 signs these removed headers.)
	 */
	if (r == 0 && !c->cfg.curl_sigv4 &&
	    (!curl_slist_append(l, "Expect:") ||
	     !curl_slist_append(l, "Accept:")))
		r = -ENOMEM;
	if (r < 0) {
		slist_free_wiped(l);
		return r;
	}
	*ret_list = l;
	return 0;
}

static void set_options(const struct hoard_s3_client *c, CURL *h,
			const struct s3_request *rq, struct xfer *x,
			const char *url, struct curl_slist *headers)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "hoard/" HOARD_VERSION);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)c->cfg.connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT,
			 (long)c->cfg.low_speed_limit);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
			 (long)c->cfg.low_speed_time_s);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->rs->curl_error);
	if (c->cfg.ca_bundle)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cfg.ca_bundle);
	if (!strcmp(rq->method, "PUT")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)rq->body_len);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
	} else if (!strcmp(rq->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(rq->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	}
	if (c->cfg.curl_sigv4) {
		curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4_param);
		curl_easy_setopt(h, CURLOPT_USERNAME, c->cfg.access_key_id);
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->cfg.secret_access_key);
	}
}

static void response_reset(struct s3_response *rs)
{
	s3_buf_free(&rs->body);
	memset(rs, 0, sizeof(*rs));
	rs->last_modified = -1;
}

/*
 * One attempt: 0 with rs filled (any HTTP status), or the -errno of a
 * transfer that failed (rs->curl_error says why).
 */
static int perform(struct hoard_s3_client *c, const struct s3_request *rq,
		   struct s3_response *rs, const char *payload_hash,
		   char sig[HOARD_SHA256_HEX_SIZE])
{
	struct curl_slist *headers = NULL;
	struct xfer x = {rq, rs};
	char *host = NULL, *path = NULL, *url = NULL;
	curl_off_t up = 0, down = 0;
	CURLcode cc;
	long oserr = 0;
	CURL *h;
	int r;

	response_reset(rs);
	r = request_target(c, rq, &host, &path);
	if (r < 0)
		return r;
	if (asprintf(&url, "%s://%s%s%s%s", c->scheme, host, path,
		     rq->query && *rq->query ? "?" : "",
		     rq->query ? rq->query : "") < 0) {
		url = NULL;
		r = -ENOMEM;
		goto out_free;
	}
	r = build_headers(c, rq, host, path, payload_hash, &headers, sig);
	if (r < 0)
		goto out_free;
	h = handle_get(c);
	if (!h) {
		r = -ENOMEM;
		goto out_free_headers;
	}
	curl_easy_reset(h);
	set_options(c, h, rq, &x, url, headers);
	if (rq->deadline_ns) {
		uint64_t now = hoard_now_mono_ns();
		uint64_t ms = rq->deadline_ns > now
				      ? (rq->deadline_ns - now) / 1000000
				      : 0;

		/* the whole attempt, connect and transfer, ends in time */
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(ms ? ms : 1));
	}
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &down);
	curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
	/* Nothing of this request may stay in the pooled handle. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_PASSWORD, "");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	handle_put(c, h);

	__atomic_add_fetch(&c->requests, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->bytes_up, (uint64_t)up, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->bytes_down, (uint64_t)down, __ATOMIC_RELAXED);
	if (rs->body.oom) {
		r = -ENOMEM;
	} else if (cc == CURLE_OK) {
		if (rs->status / 100 != 2 && rs->body.p)
			s3_xml_error(rs->body.p, rs->body.len, rs->code,
				     sizeof(rs->code), rs->message,
				     sizeof(rs->message));
		if (rq->body_len && rs->status / 100 == 2 &&
		    (uint64_t)up != rq->body_len) {
			snprintf(rs->message, sizeof(rs->message),
				 "sent %lld of %zu bytes", (long long)up,
				 rq->body_len);
			r = -EBADMSG;
		}
	} else {
		if (!rs->curl_error[0])
			snprintf(rs->curl_error, sizeof(rs->curl_error), "%s",
				 curl_easy_strerror(cc));
		switch (cc) {
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			r = -EHOSTUNREACH;
			break;
		case CURLE_COULDNT_CONNECT:
			r = oserr == ECONNREFUSED ? -ECONNREFUSED
						  : -EHOSTUNREACH;
			break;
		case CURLE_OPERATION_TIMEDOUT:
			r = -ETIMEDOUT;
			break;
		case CURLE_PARTIAL_FILE:
			r = -EBADMSG;
			break;
		case CURLE_WRITE_ERROR:
			r = rs->overflow ? -EBADMSG : -EIO;
			break;
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			r = -ECONNRESET;
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_WEIRD_SERVER_REPLY:
			r = -EPROTO;
			break;
		case CURLE_OUT_OF_MEMORY:
			r = -ENOMEM;
			break;
		default:
			r = -EIO;
			break;
		}
	}
out_free_headers:
	slist_free_wiped(headers);
out_free:
	free(host);
	free(path);
	free(url);
	return r;
}

/* For a response without an error document (HEAD has no body). */
static const char *status_text(long status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 409:
		return "Conflict";
	case 416:
		return "Range Not Satisfiable";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "";
	}
}

/* -errno of a complete response that is not a success. */
static int status_errno(const struct s3_request *rq,
			const struct s3_response *rs)
{
	switch (rs->status) {
	case 403:
		return -EACCES;
	case 404:
		if (!strcmp(rs->code, "NoSuchBucket") ||
		    (!rq->key && !rs->code[0]))
			return -ENXIO;
		return -ENOENT;
	case 400:
		if (!strcmp(rs->code, "BadDigest") ||
		    !strcmp(rs->code, "InvalidDigest") ||
		    !strcmp(rs->code, "XAmzContentSHA256Mismatch"))
			return -EBADMSG;
		if (!strcmp(rs->code, "RequestTimeout"))
			return -ETIMEDOUT;
		return -EINVAL;
	case 409:
		return -EBUSY;
	case 416:
		return -ERANGE;
	case 501:
		return -EOPNOTSUPP;
	case 503:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

static bool status_transient(const struct s3_response *rs)
{
	return rs->status == 500 || rs->status == 502 || rs->status == 503 ||
	       rs->status == 504 || !strcmp(rs->code, "SlowDown") ||
	       !strcmp(rs->code, "RequestTimeout") ||
	       !strcmp(rs->code, "InternalError");
}

static bool errno_transient(int r)
{
	return r == -ETIMEDOUT || r == -ECONNRESET || r == -EBADMSG;
}

static void backoff(const struct hoard_s3_client *c, unsigned attempt,
		    uint64_t left_ms)
{
	uint64_t cap = c->cfg.backoff_base_ms, ms;
	struct timespec ts;

	for (unsigned i = 1; i < attempt && cap < c->cfg.backoff_max_ms; i++)
		cap *= 2;
	if (cap > c->cfg.backoff_max_ms)
		cap = c->cfg.backoff_max_ms;
	if (!jitter_state && hoard_random(&jitter_state, 8) < 0)
		jitter_state = hoard_now_mono_ns() | 1;
	jitter_state ^= jitter_state << 13;
	jitter_state ^= jitter_state >> 7;
	jitter_state ^= jitter_state << 17;
	ms = cap ? jitter_state % (cap + 1) : 0; /* full jitter */
	if (ms > left_ms)
		ms = left_ms;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* What an error message names: "s3://bucket/key". */
#define URL_FMT "s3://%s%s%s"
#define URL_ARGS(rq)                                                           \
	(rq)->bucket, (rq)->key ? "/" : "", (rq)->key ? (rq)->key : ""

int s3_request(struct hoard_s3_client *c, const char *op,
	       const struct s3_request *rq, struct s3_response *rs,
	       s3_check_fn check)
{
	char payload_hash[HOARD_SHA256_HEX_SIZE], sig[HOARD_SHA256_HEX_SIZE];
	uint64_t left_ms = UINT64_MAX;
	bool out_of_time = false;
	unsigned attempt;
	int r = -EIO;

	last_error[0] = sig[0] = '\0';
	hoard_sha256_hex(rq->body ? (const void *)rq->body : "", rq->body_len,
			 payload_hash);
	for (attempt = 1;; attempt++) {
		bool transient;

		r = perform(c, rq, rs, payload_hash, sig);
		if (r == 0 && rs->status / 100 == 2)
			r = check ? check(rq, rs) : 0;
		else if (r == 0 && !(rq->range[0] && rs->status == 416))
			r = status_errno(rq, rs);
		else if (r == 0)
			r = -ERANGE;
		if (r == 0 || r == -ERANGE)
			return r;
		transient = rs->status / 100 == 2 || rs->status == 0
				    ? errno_transient(r)
				    : status_transient(rs);
		hoard_log(LOG_DEBUG, "s3: %s " URL_FMT ": attempt %u: %ld %s",
			  op, URL_ARGS(rq), attempt, rs->status, strerror(-r));
		if (!transient || attempt >= c->cfg.max_attempts)
			break;
		if (rq->deadline_ns) {
			uint64_t now = hoard_now_mono_ns();

			/* no retry that could not get a connection made */
			if (now + DEADLINE_MIN_NS >= rq->deadline_ns) {
				out_of_time = true;
				break;
			}
			left_ms = (rq->deadline_ns - now - DEADLINE_MIN_NS) /
				  1000000;
		}
		__atomic_add_fetch(&c->retries, 1, __ATOMIC_RELAXED);
		backoff(c, attempt, left_ms);
	}
	if (rs->status && rs->status / 100 != 2)
		s3_set_error(c, sig,
			     "%s " URL_FMT ": HTTP %ld %s%s%s%s%s (%u %s%s)",
			     op, URL_ARGS(rq), rs->status,
			     rs->code[0] ? rs->code : status_text(rs->status),
			     rs->message[0] ? ": " : "", rs->message,
			     rs->bucket_region[0] ? "; the bucket is in region "
						  : "",
			     rs->bucket_region, attempt,
			     attempt == 1 ? "attempt" : "attempts",
			     out_of_time ? ", time budget spent" : "");
	else if (rs->status)
		s3_set_error(c, sig, "%s " URL_FMT ": %s: %s (%u %s%s)", op,
			     URL_ARGS(rq), strerror(-r),
			     rs->message[0] ? rs->message : rs->curl_error,
			     attempt, attempt == 1 ? "attempt" : "attempts",
			     out_of_time ? ", time budget spent" : "");
	else
		s3_set_error(c, sig, "%s " URL_FMT ": %s (%s) (%u %s%s)", op,
			     URL_ARGS(rq), rs->curl_error, strerror(-r),
			     attempt, attempt == 1 ? "attempt" : "attempts",
			     out_of_time ? ", time budget spent" : "");
	s3_buf_free(&rs->body);
	return r;
}
