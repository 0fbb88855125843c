// SPDX-License-Identifier: MIT
/*
 * synctrust: what makes a signed ref cover the chunk bytes and go only
 * forward (docs/REMOTE.md 5.4 and 6.2; sync-internal.h): the SHA-256 of
 * every chunk a signed push names, the store's rows of those digests
 * (FORMAT.md 2.1: `sha256.` + chunk id) that a trusted pull keeps for the
 * lazy fetch, and the store's memory of the newest signed ref accepted
 * per repository location and ref (`signed-ref ...`).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/chunker.h"
#include "hoard/codec.h"
#include "hoard/records.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "sync-internal.h"

#define SEEN_ROW      "signed-ref "
#define ROWS_PER_SYNC 4096

/* The digest row of id: 0, -ENOENT when none, -errno. */
static int sha_row(struct hoard_store *st, const struct hoard_id *id,
		   uint8_t ret[HOARD_SHA256_SIZE])
{
	uint8_t k[SHA_ROW_KEY_LEN], v[SHA_ROW_VAL_LEN];
	size_t len;
	int r;

	sha_row_key(k, id);
	r = hoard_store_get_into(st, HOARD_CF_DEFAULT, k, sizeof(k), v,
				 sizeof(v), &len);
	if (r == 0)
		r = sha_row_val_decode(v, len, ret);
	return r == -ENOBUFS ? -EBADMSG : r;
}

/* ---- push: the digests of a signed manifest -------------------------------- */

struct hashing {
	struct hoard_store *st;
	struct hoard_chunk_sha *t;
	bool *hashed; /* [i]: t[i].sha computed here, its row to be kept */
	pthread_mutex_t mu; /* protects errbuf */
	char *errbuf;
	size_t errlen;
};

static int hash_one(void *ud, size_t i)
{
	struct hashing *h = ud;
	struct hoard_chunk_sha *c = &h->t[i];
	char hex[HOARD_ID_HEX_SIZE];
	struct hoard_id got;
	uint8_t *raw;
	void *frame;
	size_t flen;
	ssize_t n;
	int r;

	/* The digest this store kept: computed by an earlier push from the
	 * chunk's bytes checked against their keyed id, or taken by a trusted
	 * pull from a signed manifest (FORMAT.md 2.1).  The id fixes the
	 * bytes, so the row stays right for as long as the id means them. */
	r = sha_row(h->st, &c->id, c->sha);
	if (r == 0)
		return 0;
	hoard_id_hex(&c->id, hex);
	if (r != -ENOENT)
		return set_err_oncef(&h->mu, h->errbuf, h->errlen, r,
				     "reading the digest of chunk %s: %s", hex,
				     strerror(-r));
	r = hoard_store_get(h->st, HOARD_CF_CHUNKDATA, c->id.b, HOARD_ID_SIZE,
			    &frame, &flen);
	if (r == -ENOENT) /* a lazy chunk with no row: it came unsigned */
		return set_err_oncef(
			&h->mu, h->errbuf, h->errlen, -ENODATA,
			"chunk %s is not local and its SHA-256 is not known "
			"(it came from an unsigned or older pull): a signed "
			"push must hash every chunk; run 'hoard prefetch' on "
			"the volume first",
			hex);
	if (r < 0)
		return set_err_oncef(&h->mu, h->errbuf, h->errlen, r,
				     "reading chunk %s: %s", hex, strerror(-r));
	raw = malloc(HOARD_CHUNK_MAX);
	if (!raw) {
		free(frame);
		return -ENOMEM;
	}
	n = hoard_codec_decode(frame, flen, raw, HOARD_CHUNK_MAX, c->len);
	free(frame);
	if (n >= 0)
		hoard_id_compute(hoard_store_key(h->st), raw, (size_t)n, &got);
	if (n != (ssize_t)c->len || !hoard_id_equal(&got, &c->id)) {
		free(raw);
		return set_err_oncef(&h->mu, h->errbuf, h->errlen, -EBADMSG,
				     "local chunk %s is corrupt: not signed "
				     "(run 'hoard fsck')",
				     hex);
	}
	hoard_sha256(raw, (size_t)n, c->sha);
	free(raw);
	h->hashed[i] = true;
	return 0;
}

int sync_manifest_hash(struct hoard_store *st, struct hoard_manifest *m,
		       unsigned jobs, struct hoard_chunk_sha **ret_new,
		       size_t *ret_n_new, char *errbuf, size_t errlen)
{
	struct hashing h = {.st = st, .errbuf = errbuf, .errlen = errlen};
	size_t n, k = 0;
	int r = hoard_manifest_chunks(m, false, &h.t, &n, errbuf, errlen);

	*ret_new = NULL;
	*ret_n_new = 0;
	if (r < 0)
		return r;
	h.hashed = calloc(n ? n : 1, sizeof(*h.hashed));
	if (!h.hashed) {
		free(h.t);
		return -ENOMEM;
	}
	pthread_mutex_init(&h.mu, NULL);
	r = run_parallel(n, jobs ? jobs : 1, hash_one, &h);
	pthread_mutex_destroy(&h.mu);
	if (r == 0)
		r = hoard_manifest_set_shas(m, h.t, n);
	/* the ones computed here, packed in place (still sorted) */
	for (size_t i = 0; r == 0 && i < n; i++)
		if (h.hashed[i])
			h.t[k++] = h.t[i];
	free(h.hashed);
	if (r < 0) {
		free(h.t);
		return r;
	}
	*ret_new = h.t;
	*ret_n_new = k;
	return 0;
}

/* ---- pull and lazy fetch: the digest rows ------------------------------------ */

int sync_chunk_sha_save(struct hoard_store *st, const struct hoard_chunk_sha *t,
			size_t n)
{
	struct hoard_batch *b = NULL;
	int r = 0;

	for (size_t i = 0; r == 0 && i < n; i++) {
		uint8_t k[SHA_ROW_KEY_LEN];

		if (!b && !(b = hoard_batch_new(st)))
			return -ENOMEM;
		sha_row_key(k, &t[i].id);
		hoard_batch_put(b, HOARD_CF_DEFAULT, k, sizeof(k), t[i].sha,
				HOARD_SHA256_SIZE);
		if (hoard_batch_count(b) == ROWS_PER_SYNC || i + 1 == n) {
			r = hoard_store_write(st, b, true);
			hoard_batch_free(b);
			b = NULL;
		}
	}
	hoard_batch_free(b);
	return r;
}

int sync_chunk_verify(struct hoard_store *st, const struct hoard_id *id,
		      const void *raw, size_t n)
{
	uint8_t sha[HOARD_SHA256_SIZE];
	char hex[HOARD_ID_HEX_SIZE];
	struct hoard_id got;
	int r;

	hoard_id_compute(hoard_store_key(st), raw, n, &got);
	if (!hoard_id_equal(&got, id))
		return -EBADMSG;
	r = sha_row(st, id, sha);
	if (r == -ENOENT)
		return 0; /* not from a trusted pull: the id is the check */
	hoard_id_hex(id, hex);
	if (r < 0) {
		hoard_log(LOG_WARNING,
			  "reading the SHA-256 of chunk %s: %s: not taken", hex,
			  strerror(-r));
		return r;
	}
	if (hoard_chunk_sha_verify(raw, n, sha) < 0) {
		hoard_log(LOG_WARNING,
			  "chunk %s from the bucket has its id but not the "
			  "SHA-256 its signed manifest gives: refused",
			  hex);
		return -EBADMSG;
	}
	return 0;
}

int sync_pull_digests(const struct hoard_manifest *m,
		      const struct hoard_ref *rf, bool trusted,
		      const struct hoard_ref_site *site,
		      struct hoard_chunk_sha **ret, size_t *ret_n, char *errbuf,
		      size_t errlen)
{
	*ret = NULL;
	*ret_n = 0;
	if (m->version == HOARD_MANIFEST_V2)
		return hoard_manifest_chunks(m, true, ret, ret_n, errbuf,
					     errlen);
	if (trusted && rf->is_signed)
		return hoard_errf(
			errbuf, errlen, -EKEYREJECTED,
			"the ref '%s/%s' is signed, but its manifest "
			"(version %u) carries no SHA-256 of the chunk "
			"bytes, so the signature does not cover them: "
			"refused, nothing was pulled (push it again "
			"with --sign from this hoard)",
			site->volume, site->name, m->version ? m->version : 1);
	return 0;
}

/* ---- rollback: the newest signed ref accepted ---------------------------------- */

static char *seen_key(const struct hoard_ref_site *site, size_t *ret_len)
{
	char *k = NULL;
	int n = asprintf(&k, SEEN_ROW "%s/%srefs/%s/%s", site->bucket,
			 site->prefix, site->volume, site->name);

	if (n < 0)
		return NULL;
	*ret_len = (size_t)n;
	return k;
}

/* The remembered (time, manifest) of site: 0, -ENOENT, -errno. */
static int seen_get(struct hoard_store *st, const struct hoard_ref_site *site,
		    int64_t *ret_time, uint8_t ret_man[HOARD_SHA256_SIZE])
{
	uint8_t v[SIGNED_REF_VAL_LEN];
	size_t kl, vl;
	char *k = seen_key(site, &kl);
	int r;

	if (!k)
		return -ENOMEM;
	r = hoard_store_get_into(st, HOARD_CF_DEFAULT, k, kl, v, sizeof(v),
				 &vl);
	free(k);
	if (r == -ENOBUFS)
		return -EBADMSG;
	if (r < 0)
		return r;
	return signed_ref_val_decode(v, vl, ret_time, ret_man);
}

int sync_rollback_check(struct hoard_store *st,
			const struct hoard_ref_site *site,
			const struct hoard_ref *r, bool allow, char *errbuf,
			size_t errlen)
{
	uint8_t man[HOARD_SHA256_SIZE];
	int64_t t;
	int e = seen_get(st, site, &t, man);

	if (e == -ENOENT)
		return 0;
	if (e == -EBADMSG && allow) {
		hoard_log(LOG_WARNING,
			  "the store's mark of the newest signed ref from "
			  "'%s/%s' is damaged: ignored (--allow-rollback), "
			  "rewritten by this pull",
			  site->volume, site->name);
		return 0;
	}
	if (e < 0)
		return hoard_errf(
			errbuf, errlen, e,
			"reading the newest signed ref accepted "
			"from '%s/%s': %s%s",
			site->volume, site->name, strerror(-e),
			e == -EBADMSG ? " (--allow-rollback resets it)" : "");
	if (r->time >= t)
		return 0;
	if (allow) {
		hoard_log(LOG_WARNING,
			  "the ref '%s/%s' (time %lld) is older than one "
			  "this store accepted (time %lld): taken "
			  "(--allow-rollback)",
			  site->volume, site->name, (long long)r->time,
			  (long long)t);
		return 0;
	}
	return hoard_errf(errbuf, errlen, -EKEYREJECTED,
			  "the ref '%s/%s' is validly signed but older (time "
			  "%lld) than the newest one this store accepted "
			  "from there (time %lld): a rollback, refused; "
			  "nothing was pulled (--allow-rollback takes it)",
			  site->volume, site->name, (long long)r->time,
			  (long long)t);
}

int sync_rollback_note(struct hoard_store *st,
		       const struct hoard_ref_site *site,
		       const struct hoard_ref *r)
{
	uint8_t man[HOARD_SHA256_SIZE], v[SIGNED_REF_VAL_LEN];
	struct hoard_batch *b;
	size_t kl;
	int64_t t;
	char *k;
	int e = seen_get(st, site, &t, man);

	if (e == 0 && t >= r->time)
		return 0; /* only ever raised */
	if (e < 0 && e != -ENOENT && e != -EBADMSG)
		return e;
	k = seen_key(site, &kl);
	b = hoard_batch_new(st);
	if (!k || !b) {
		free(k);
		hoard_batch_free(b);
		return -ENOMEM;
	}
	for (int i = 0; i < HOARD_SHA256_SIZE; i++) {
		unsigned x = 0;

		sscanf(r->manifest + 2 * i, "%2x", &x);
		man[i] = (uint8_t)x;
	}
	signed_ref_val_encode(v, r->time, man);
	hoard_batch_put(b, HOARD_CF_DEFAULT, k, kl, v, sizeof(v));
	e = hoard_store_write(st, b, true);
	hoard_batch_free(b);
	free(k);
	return e;
}
