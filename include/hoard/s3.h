/* SPDX-License-Identifier: MIT */
/*
 * s3: a client for S3-compatible object storage (AWS S3, MinIO, Ceph RGW,
 * R2, GCS interop).  Layer 5: uses util and digest; fs/remote/s3.c is the only
 * module that includes curl/curl.h, and it turns libcurl's and S3's errors
 * into negative errno values.
 *
 * Three parts:
 *   config     where the endpoint and credentials come from: the standard
 *              AWS environment and files (hoard_s3_config_load()), and
 *              s3://BUCKET/PREFIX URLs (fs/remote/s3conf.c)
 *   signing    pure functions: RFC 3986 encoding, the canonical query string
 *              and AWS Signature Version 4 (fs/remote/s3sig.c).  The client signs
 *              every request with these and sets the Authorization header
 *              itself; see fs/remote/s3.c for why not with CURLOPT_AWS_SIGV4.
 *   client     requests over libcurl, with retries (fs/remote/s3.c), and the
 *              object operations on top (fs/remote/s3ops.c)
 *
 * Addressing: with the AWS default endpoint, virtual-hosted style
 * (https://BUCKET.s3.REGION.amazonaws.com/KEY), or path style when the
 * bucket name has a dot (TLS wildcard certificates cover one label only).
 * With a custom endpoint (AWS_ENDPOINT_URL...), always path style
 * (ENDPOINT/BUCKET/KEY), as MinIO, Ceph and test servers expect.
 *
 * Errors: every function returns 0 (or a count) or a negative errno:
 *   -EACCES        403: bad credentials, signature, clock skew, no permission
 *   -ENOENT        404 NoSuchKey (and any 404 of a HEAD on an object)
 *   -ENXIO         404 NoSuchBucket: the bucket does not exist
 *   -ECONNREFUSED  nothing listens at the endpoint (not retried)
 *   -EHOSTUNREACH  the endpoint's host cannot be resolved or reached
 *   -ETIMEDOUT     connect or low-speed timeout, after the last attempt
 *   -ECONNRESET    the connection broke, after the last attempt
 *   -EAGAIN        503 SlowDown after the last attempt
 *   -EBADMSG       a body that is short, longer than asked, corrupt (MD5 or
 *                  ETag mismatch) or unparsable; 400 BadDigest
 *   -EPROTO        TLS failure (certificate, handshake), a server that
 *                  ignored Range
 *   -EINVAL        bad argument (bucket name, key), other 400
 *   -EIO           500/502/504 after the last attempt, anything else
 * After a failure, hoard_s3_last_error() gives one line for a human: the
 * operation, the s3:// URL, the HTTP status with S3's error Code and
 * Message, or libcurl's reason.  It never holds a secret, a signature or
 * an Authorization header.
 *
 * Retries: 500, 502, 503, 504, SlowDown, RequestTimeout, connection resets,
 * timeouts and short or corrupt bodies are retried up to max_attempts in
 * all, with exponential backoff and full jitter (a random sleep in
 * [0, min(backoff_max, backoff_base * 2^n))).  A refused connection or an
 * unknown host is not retried: it fails at once.
 *
 * Thread contract: the config and URL functions and the signing functions
 * have no shared state.  A struct hoard_s3_client may be used by any number
 * of threads at once (each request takes an idle libcurl handle from the
 * client's pool, or makes one); hoard_s3_client_free() must not race with
 * them.  hoard_s3_last_error() is per thread.
 */
#ifndef HOARD_S3_H
#define HOARD_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hoard/digest.h"

#define HOARD_S3_DEFAULT_REGION	  "us-east-1"
#define HOARD_S3_DEFAULT_ATTEMPTS 5
#define HOARD_S3_MAX_KEY	  1024 /* bytes of UTF-8, as S3 */
#define HOARD_S3_ETAG_SIZE	  128  /* ETag without quotes, NUL included */

/* ---- config ----------------------------------------------------------- */

/*
 * Everything the client needs.  Strings are owned (malloc'd) by the struct
 * once hoard_s3_config_load() filled it; hoard_s3_config_clear() frees them.
 * A caller may also fill one by hand (then it owns the strings).
 */
struct hoard_s3_config {
	char *access_key_id;
	char *secret_access_key; /* never logged, never in an error string */
	char *session_token;	 /* NULL: none; sent as x-amz-security-token */
	char *region;		 /* never NULL after load */
	char *endpoint;		 /* "http[s]://host[:port]", NULL: AWS */
	char *ca_bundle;	 /* CA certificates file, NULL: the system's */
	unsigned max_attempts;	 /* per request, >= 1 (AWS_MAX_ATTEMPTS) */
	unsigned connect_timeout_ms; /* default 10000 */
	unsigned low_speed_limit;    /* bytes/s; below it for ...            */
	unsigned low_speed_time_s;   /* ... this long, the attempt times out */
	unsigned backoff_base_ms;    /* default 100 */
	unsigned backoff_max_ms;     /* default 20000 */
	unsigned list_max_keys;	     /* keys per listing page; 0: server's */
	bool curl_sigv4; /* sign with CURLOPT_AWS_SIGV4 (tests only, see s3.c) */
};

/* The defaults above, no strings. */
void hoard_s3_config_defaults(struct hoard_s3_config *cfg);

/*
 * Resolve the configuration the way the AWS CLI does, environment first:
 *   credentials  AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN)
 *                else the profile's aws_access_key_id, aws_secret_access_key
 *                and aws_session_token from the credentials file, else from
 *                the config file
 *   region       AWS_REGION, AWS_DEFAULT_REGION, the profile's region,
 *                else us-east-1
 *   endpoint     AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's
 *                endpoint_url, else AWS
 *   attempts     AWS_MAX_ATTEMPTS, the profile's max_attempts, else 5
 *   CA bundle    AWS_CA_BUNDLE, the profile's ca_bundle, else the system's
 *   profile      AWS_PROFILE, AWS_DEFAULT_PROFILE, else "default": section
 *                [NAME] of AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials)
 *                and [profile NAME] (or [default]) of AWS_CONFIG_FILE
 *                (~/.aws/config)
 * Errors: -ENOKEY (no credentials anywhere), -ENOENT (AWS_PROFILE names a
 * profile found in neither file), -EINVAL (bad endpoint URL or number),
 * -ENOMEM, other -errno reading a file.  errbuf (may be NULL) gets a
 * one-line reason.  On success *ret_cfg is overwritten (not freed first).
 */
int hoard_s3_config_load(struct hoard_s3_config *ret_cfg, char *errbuf,
			 size_t errlen);
/* Free the strings and zero the struct (the secret is wiped).  NULL ok. */
void hoard_s3_config_clear(struct hoard_s3_config *cfg);

/*
 * Check an endpoint URL: http:// or https://, a host (name, IPv4 or [IPv6]),
 * an optional port, and no path beyond "/", no user, query or fragment.
 * 0 or -EINVAL.
 */
int hoard_s3_endpoint_check(const char *url);

/*
 * Split "s3://BUCKET" or "s3://BUCKET/PREFIX" into malloc'd strings (the
 * prefix may be empty, never NULL).  -EINVAL for another scheme, a bad
 * bucket name, a prefix over HOARD_S3_MAX_KEY bytes, or a prefix with an
 * empty segment ("a//b", "/a") or a dot segment ("." or ".."): servers
 * resolve those in object paths but not in listings.  errbuf (may be
 * NULL) gets one line naming the rule broken.
 */
int hoard_s3_url_split(const char *url, char **ret_bucket, char **ret_prefix,
		       char *errbuf, size_t errlen);
/* hoard_s3_url_split() without the message. */
int hoard_s3_url_parse(const char *url, char **ret_bucket, char **ret_prefix);
/* S3's rules for general purpose bucket names: 0, or -EINVAL with the rule
 * broken in errbuf (may be NULL). */
int hoard_s3_bucket_name_check(const char *name, char *errbuf, size_t errlen);
bool hoard_s3_bucket_name_valid(const char *name);

/* ---- signing (pure) --------------------------------------------------- */

/*
 * RFC 3986 percent-encoding of n bytes: A-Z a-z 0-9 - . _ ~ stay, every
 * other byte is %XX (upper-case hex), '/' too unless keep_slash.  That is
 * SigV4's UriEncode(): object keys use keep_slash (each path segment
 * encoded, '/' kept), query keys and values do not (so a space is %20,
 * never '+').  *ret is malloc'd.  0 or -ENOMEM.
 */
int hoard_s3_uri_encode(const char *s, size_t n, bool keep_slash, char **ret);

struct hoard_s3_param {
	const char *key;
	const char *value; /* NULL or "": "key=" */
};

/*
 * SigV4's canonical query string of n decoded parameters: each key and
 * value encoded, sorted by encoded key (then value), "k=v" joined by '&'.
 * The client sends exactly this string, so what it signs is what goes on
 * the wire.  *ret is malloc'd ("" for n == 0).  0 or -ENOMEM.
 */
int hoard_s3_canonical_query(const struct hoard_s3_param *params, size_t n,
			     char **ret);

struct hoard_s3_header {
	const char *name;
	const char *value;
};

struct hoard_s3_sign_input {
	const char *method;	     /* "GET" */
	const char *canonical_uri;   /* the encoded path as sent: "/b/a%20b" */
	const char *canonical_query; /* hoard_s3_canonical_query(); "" none */
	const struct hoard_s3_header *headers; /* all of them are signed */
	size_t n_headers;
	const char *payload_hash; /* hex SHA-256 of the body */
	const char *amz_date;	  /* "20130524T000000Z", as in x-amz-date */
	const char *region;
	const char *service; /* "s3" */
	const char *access_key_id;
	const char *secret_access_key;
};

/*
 * One SigV4 signature and the steps to it, for the client and for tests.
 * canonical_request and string_to_sign are as in AWS's documentation; the
 * signature and authorization must not be logged.
 */
struct hoard_s3_signature {
	char *canonical_request;
	char *string_to_sign;
	char *signed_headers; /* "host;x-amz-content-sha256;x-amz-date" */
	char *authorization;  /* the Authorization header's value */
	char signature[HOARD_SHA256_HEX_SIZE];
};

/*
 * Sign: header names are lower-cased, values trimmed with inner runs of
 * spaces folded to one, headers sorted by name (repeated names joined by
 * ',' in order).  Errors: -EINVAL (missing field, bad amz_date, a header
 * name or value with a control character), -ENOMEM.
 */
int hoard_s3_sign(const struct hoard_s3_sign_input *in,
		  struct hoard_s3_signature *ret_sig);
/* Free and zero the strings.  NULL ok. */
void hoard_s3_signature_clear(struct hoard_s3_signature *sig);

/* ---- client ----------------------------------------------------------- */

struct hoard_s3_client;

/*
 * A client for cfg (copied: the caller may clear cfg afterwards).
 * -EINVAL for a config without credentials or with a bad endpoint, -ENOMEM,
 * -EIO when libcurl cannot initialize.
 */
int hoard_s3_client_new(const struct hoard_s3_config *cfg,
			struct hoard_s3_client **ret_client);
/* Close connections, wipe the secret.  NULL ok. */
void hoard_s3_client_free(struct hoard_s3_client *client);

/* Counters since hoard_s3_client_new(), for a summary line. */
struct hoard_s3_stats {
	uint64_t requests;   /* HTTP requests sent, retries included */
	uint64_t retries;    /* attempts after the first of a request */
	uint64_t bytes_up;   /* request bodies */
	uint64_t bytes_down; /* response bodies */
};
void hoard_s3_client_stats(struct hoard_s3_client *client,
			   struct hoard_s3_stats *ret_stats);

/*
 * This thread's message for its last failed hoard_s3_* call ("" if none),
 * valid until its next hoard_s3_* call.
 */
const char *hoard_s3_last_error(void);

struct hoard_s3_object_info {
	uint64_t size;
	int64_t last_modified;	       /* seconds since the epoch, -1 unknown */
	char etag[HOARD_S3_ETAG_SIZE]; /* without the quotes */
};

/*
 * Upload len bytes as one object (S3 takes up to 5 GiB in one PUT).  The
 * request carries Content-MD5, so the server checks the bytes it got, and
 * x-amz-content-sha256, which the signature covers.  On success the ETag
 * is checked against the MD5 too (unless SSE-KMS or SSE-C made the ETag
 * something else).  ret_info (may be NULL) gets size and ETag.
 */
int hoard_s3_put_object(struct hoard_s3_client *client, const char *bucket,
			const char *key, const void *data, size_t len,
			struct hoard_s3_object_info *ret_info);

/*
 * Download a whole object into a malloc'd buffer (*ret_data, *ret_len; a
 * zero-length object gives a 1-byte allocation).  The length must match
 * Content-Length, and the bytes the ETag when it is an MD5.  ret_info may
 * be NULL.
 */
int hoard_s3_get_object(struct hoard_s3_client *client, const char *bucket,
			const char *key, void **ret_data, size_t *ret_len,
			struct hoard_s3_object_info *ret_info);

/*
 * Read len bytes at off (Range: bytes=off-(off+len-1)) into buf, like
 * pread(): returns the bytes read, fewer than len only where the object
 * ends (Content-Range says so), 0 at or past its end.  A response whose
 * Content-Range or length does not match is -EBADMSG.
 */
ssize_t hoard_s3_get_range(struct hoard_s3_client *client, const char *bucket,
			   const char *key, uint64_t off, size_t len,
			   void *buf);
/*
 * The same with a time budget: every attempt ends by deadline_ns
 * (hoard_now_mono_ns() clock; its connect and transfer are cut there), and
 * no retry starts within 100 ms of it; the backoff sleeps are shortened to
 * fit.  -ETIMEDOUT (or the last attempt's error) when the budget is spent;
 * hoard_s3_last_error() then says "time budget spent".  0: no deadline.
 */
ssize_t hoard_s3_get_range_by(struct hoard_s3_client *client,
			      const char *bucket, const char *key, uint64_t off,
			      size_t len, void *buf, uint64_t deadline_ns);

/* Size, ETag and Last-Modified of an object. */
int hoard_s3_head_object(struct hoard_s3_client *client, const char *bucket,
			 const char *key,
			 struct hoard_s3_object_info *ret_info);

/* Delete an object; deleting a missing key succeeds (as S3 does). */
int hoard_s3_delete_object(struct hoard_s3_client *client, const char *bucket,
			   const char *key);

struct hoard_s3_entry {
	const char *key; /* the object's key, or the common prefix */
	bool is_prefix;	 /* a CommonPrefixes entry: only key is set */
	uint64_t size;
	int64_t last_modified; /* seconds since the epoch, -1 unknown */
	const char *etag;      /* without the quotes */
};

/*
 * Called once per entry; the entry is valid during the call only.  Return
 * 0 to go on, anything else to stop: hoard_s3_list() then returns it.
 */
typedef int (*hoard_s3_list_fn)(const struct hoard_s3_entry *entry, void *arg);

/*
 * ListObjectsV2 over all pages: the keys under prefix (NULL or "" for all),
 * grouped at delimiter when it is not NULL.  Per page, objects come in key
 * order, then the page's common prefixes.
 */
int hoard_s3_list(struct hoard_s3_client *client, const char *bucket,
		  const char *prefix, const char *delimiter,
		  hoard_s3_list_fn fn, void *arg);

/* 0 if the bucket exists and these credentials may use it (HEAD bucket);
 * -ENXIO if it does not exist, -EACCES if it is not ours. */
int hoard_s3_bucket_check(struct hoard_s3_client *client, const char *bucket);

#endif
