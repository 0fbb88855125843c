/* SPDX-License-Identifier: MIT */
/*
 * Private to fs/remote/sync.c (common parts, push) and fs/remote/syncpull.c (pull,
 * ls-remote), and the other sync*.c; also lazy.c, which reads the bucket
 * through the same repository handle (struct remote) and chunk index
 * (remote_load_index): lazy fetch and sync are one module for the include
 * rule (tests/check_layers.py).
 */
#ifndef HOARD_SYNC_INTERNAL_H
#define HOARD_SYNC_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>

#include "hoard/remote.h"
#include "hoard/s3.h"
#include "hoard/sync.h"

/* One repository: an S3 client plus where its objects live. */
struct remote {
	struct hoard_s3_client *cl;
	char *bucket;
	char *prefix; /* "" or ends with '/' */
	const char *url;
	unsigned jobs;
	/* SHA-256 of the config object, once remote_get_config read it: the
	 * repository's identity in ref signatures (REMOTE.md 6.1) */
	uint8_t config_sha[HOARD_SHA256_SIZE];
	/* the chunk index of the bucket (remote_load_index) */
	struct hoard_rindex *rx;
	char (*packs)[HOARD_SHA256_HEX_SIZE]; /* pack number -> name */
	size_t n_packs, cap_packs;
	uint32_t *pack_chunks;	  /* pack number -> chunks it holds */
	bool skip_condemned;	  /* leave out packs remote gc condemned */
	char cache_dir[PATH_MAX]; /* "" when no local cache */
	/* progress */
	pthread_mutex_t mu;
	struct hoard_sync_progress prog;
	uint64_t t0;	   /* start of the push or pull */
	uint64_t phase_t0; /* start of what the progress line counts */
	void (*progress)(void *ud, const struct hoard_sync_progress *p);
	void *progress_ud;
};

/* Open the repository at url (checks the bucket). */
int remote_open(struct remote *r, const struct hoard_s3_config *s3,
		const char *url, unsigned jobs, char *errbuf, size_t errlen);
void remote_close(struct remote *r);
/* PREFIX + the formatted rest; malloc()ed or NULL. */
char *remote_key(const struct remote *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* GET PREFIX+rel (*ret_buf malloc()ed): 0; -ENOENT with the message
 * missing (printf format) in errbuf; another error as "what: the S3
 * error" (s3_fail). */
int remote_get_explained(struct remote *r, const char *rel, void **ret_buf,
			 size_t *ret_len, const char *what, char *errbuf,
			 size_t errlen, const char *missing, ...)
	__attribute__((format(printf, 8, 9)));
/* The repository's config: -ENOENT when there is none. */
int remote_get_config(struct remote *r, struct hoard_remote_config *ret,
		      char *errbuf, size_t errlen);
/* Read every pack index of the bucket into r->rx (cached in cache_dir). */
int remote_load_index(struct remote *r, const char *store_dir, char *errbuf,
		      size_t errlen);
/* Run fn(ud, i) for i in [0, n) on up to jobs threads; the first error
 * stops the handing out of new tasks and is returned. */
int run_parallel(size_t n, unsigned jobs, int (*fn)(void *ud, size_t i),
		 void *ud);
void progress_add(struct remote *r, uint64_t bytes, uint64_t objects);
/* Start counting a new phase (the figures go back to zero). */
void progress_phase(struct remote *r);
void result_finish(struct remote *r, struct hoard_sync_result *res);
/* First error wins: msg into errbuf under mu. */
void set_err_once(pthread_mutex_t *mu, char *errbuf, size_t errlen,
		  const char *msg);
/* set_err_once() of a formatted message; returns err. */
int set_err_oncef(pthread_mutex_t *mu, char *errbuf, size_t errlen, int err,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Keep a pack index in the local cache dir (no-op when dir is ""). */
void write_cached(const char *dir, const char *name, const void *buf,
		  size_t len);
/* Copy hoard_s3_last_error() into errbuf (the thread's own). */
int s3_fail(char *errbuf, size_t errlen, int err, const char *what);
/* The site of the ref volume/name (for signatures); needs config_sha. */
void remote_ref_site(const struct remote *r, const char *volume,
		     const char *name, struct hoard_ref_site *ret);
/* The volume and ref names of a push or pull: 0, or -EINVAL explained. */
int sync_names_check(const char *volume, const char *ref, char *errbuf,
		     size_t errlen);
/* A consistent snapshot of the tree under root (push's step 3), as a
 * manifest the caller clears. */
int sync_snapshot(struct hoard_fs *fs, uint64_t root,
		  struct hoard_manifest *ret);

/* ---- synctrust.c: chunk digests and rollback (REMOTE.md 5.4, 6.2) ---- */

struct hoard_store;
/* A signed push: the SHA-256 of every chunk m names: the store's digest
 * row when it has one (kept by an earlier signed push or a trusted pull,
 * FORMAT.md 2.1), else from its local frame (verified against its id); a
 * lazy chunk without a row is -ENODATA, explained.  m becomes version 2.
 * *ret_new (malloc'd, sorted by id, *ret_n_new of them): the digests
 * computed here, for the caller to keep (sync_chunk_sha_save).  jobs
 * threads. */
int sync_manifest_hash(struct hoard_store *st, struct hoard_manifest *m,
		       unsigned jobs, struct hoard_chunk_sha **ret_new,
		       size_t *ret_n_new, char *errbuf, size_t errlen);
/* Keep each chunk's digest (FORMAT.md 2.1 `sha256.`), synced: a trusted
 * pull's checked ones, a signed push's computed ones. */
int sync_chunk_sha_save(struct hoard_store *st, const struct hoard_chunk_sha *t,
			size_t n);
/* A pull's digests: the table of a version-2 manifest (sorted by id), or
 * none; -EKEYREJECTED (explained) for a trusted pull of a signed ref whose
 * manifest has none (version 1). */
int sync_pull_digests(const struct hoard_manifest *m,
		      const struct hoard_ref *rf, bool trusted,
		      const struct hoard_ref_site *site,
		      struct hoard_chunk_sha **ret, size_t *ret_n, char *errbuf,
		      size_t errlen);
/* A fetched chunk: 0 when raw gives id and, when the store keeps a digest
 * for id, that SHA-256; -EBADMSG (a digest mismatch is logged), -errno. */
int sync_chunk_verify(struct hoard_store *st, const struct hoard_id *id,
		      const void *raw, size_t n);
/* A trusted pull of a signed ref: -EKEYREJECTED (explained) when r is
 * older than the newest ref accepted from site, unless allow. */
int sync_rollback_check(struct hoard_store *st,
			const struct hoard_ref_site *site,
			const struct hoard_ref *r, bool allow, char *errbuf,
			size_t errlen);
/* Remember r as accepted from site (only ever raised), synced. */
int sync_rollback_note(struct hoard_store *st,
		       const struct hoard_ref_site *site,
		       const struct hoard_ref *r);

#endif
