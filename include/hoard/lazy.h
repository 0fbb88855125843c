/* SPDX-License-Identifier: MIT */
/*
 * lazy: fetch on read of chunks that are not local (docs/FORMAT.md 2.3
 * version 2 records, docs/REMOTE.md section 10).  Layer 6: uses the
 * filesystem core, remote.h and s3.h.  The daemon opens one when the store
 * has a `remote` setting (written by `hoard pull --lazy`) or is started
 * with --remote; from then on a read of a chunk whose record says "not
 * local, in pack P at offset O" makes one ranged GET, verifies the frame
 * against the chunk id, stores it (flag bit 0 set, frame written) and
 * answers.  Concurrent readers of one chunk share one fetch; a reader that
 * fetched gets the next chunks of its file fetched in the background.
 *
 * Thread contract: every function but open and free may be called from any
 * thread at once.
 */
#ifndef HOARD_LAZY_H
#define HOARD_LAZY_H

#include <stdint.h>

#include "hoard/fs.h"
#include "hoard/s3.h"

#define HOARD_REMOTE_KEY "remote" /* store setting: the s3:// URL */

/* Lazy fetch bound (docs/REMOTE.md 10.3): a read's budget, timeouts. */
#define HOARD_LAZY_BUDGET_MS  12000 /* from a read's ask to EIO, at most */
#define HOARD_LAZY_CONNECT_MS 2000
#define HOARD_LAZY_STALL_S    5
#define HOARD_LAZY_BACKOFF_MS 1000 /* most one backoff sleep may take */
#define HOARD_LAZY_THREADS    8	   /* background read-ahead fetches */

struct hoard_lazy;

struct hoard_lazy_counts {
	uint64_t fetched_chunks, fetched_bytes; /* frames stored */
	uint64_t gets, failures, ahead_queued;
	uint64_t get_bytes; /* bytes the GETs brought */
	uint64_t retries;   /* the S3 client's attempts after a first */
};

/* The store's `remote` setting: a malloc()ed URL, or NULL when none. */
char *hoard_lazy_setting(struct hoard_store *st);
int hoard_lazy_set_setting(struct hoard_store *st, const char *url);

/* Start fetching for fs from url with s3 (copied; attempts and timeouts
 * are capped to the bound above).  No request is made here. */
int hoard_lazy_open(struct hoard_fs *fs, const char *url,
		    const struct hoard_s3_config *s3, struct hoard_lazy **ret);
/* Unhooks from fs, stops the threads; NULL ok. */
void hoard_lazy_free(struct hoard_lazy *lz);
void hoard_lazy_get_counts(struct hoard_lazy *lz,
			   struct hoard_lazy_counts *ret);
struct hoard_lazy_prefetch_res {
	uint64_t fetched_bytes; /* frame bytes fetched */
	uint64_t chunks;	/* distinct chunks of the file */
	uint64_t missing;	/* of them, still not local */
	uint64_t missing_bytes; /* their raw bytes */
	struct hoard_id first_missing;
	int first_err; /* its error: -EIO (fetch failed), -ENODATA (not
			* local and no place in the bucket), -ECANCELED (not
			* tried: the remote looked down) */
};

/*
 * Make every chunk of the regular file ino local, trying each (twice when
 * the remote answers at all): 0, -EIO with *ret saying what is missing, or
 * another -errno (store).  *streak (may be NULL) is the number of fetches
 * that failed in a row, carried from one call to the next so that a remote
 * that is down is not waited for once per file; start it at 0.
 */
int hoard_lazy_prefetch(struct hoard_lazy *lz, uint64_t ino, unsigned *streak,
			struct hoard_lazy_prefetch_res *ret);

#endif
