/* SPDX-License-Identifier: MIT */
/*
 * sync: push a volume to an S3 repository and pull one from it
 * (docs/REMOTE.md).  Layer 6: uses the filesystem core (fs.h and its
 * internals, for consistent snapshots and one-batch file commits), remote.h
 * for the object formats and s3.h for the transfers.  No FUSE in it: the
 * daemon runs the same engines on its open filesystem when asked on its
 * control socket, and the CLI runs them on a store it opened itself.
 *
 * Errors (negative errno, with one line in errbuf):
 *   -ENXIO         the bucket does not exist
 *   -ENOENT        no hoard repository at the URL, or no such ref
 *   -EBADMSG       a remote object is corrupt or breaks a format rule
 *   -EPROTONOSUPPORT  the repository is of a newer format or chunker
 *   -EKEYREJECTED  the store's chunk secret is not the repository's, or
 *                  (pull) the ref is not signed by a trusted key
 *   -EACCES, -ECONNREFUSED, ...  from the S3 client (s3.h)
 *
 * Thread contract: one push or pull at a time per struct hoard_fs (the
 * daemon runs each alone: fs/daemon/hoardfsctl.c); each runs up to
 * `jobs` threads of its own and may run while FUSE threads use fs.
 */
#ifndef HOARD_SYNC_H
#define HOARD_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hoard/fs.h"
#include "hoard/remote.h"
#include "hoard/s3.h"
#include "hoard/sign.h"

#define HOARD_SYNC_DEFAULT_JOBS 8
#define HOARD_SYNC_MAX_JOBS	64
#define HOARD_SYNC_DEFAULT_REF	"main"
#define HOARD_GC_DEFAULT_GRACE	(24 * 3600) /* seconds */

struct hoard_sync_progress {
	uint64_t bytes_done, bytes_total;
	uint64_t objects_done, objects_total;
	uint64_t elapsed_ns;
};

struct hoard_sync_opts {
	const struct hoard_s3_config *s3;
	const char *url;    /* s3://BUCKET[/PREFIX] */
	const char *volume; /* the local volume (and the ref's directory) */
	const char *ref;    /* NULL: "main" */
	bool lazy;     /* pull only: records, no chunk data (REMOTE.md 10) */
	unsigned jobs; /* parallel requests; 0: 8 */
	/* push only, optional: sign the ref with this key (REMOTE.md 6.1) */
	const struct hoard_sign_key *sign;
	/* pull only: accept only refs signed by one of these keys or by one
	 * of the store's setting `trust` (none in either: unsigned refs pass,
	 * signed ones must verify) */
	const struct hoard_pubkey *trust;
	size_t n_trust;
	/* pull only: with trusted keys, take a signed ref older than the
	 * newest this store accepted from there (REMOTE.md 6.2) */
	bool allow_rollback;
	/* Optional, called from worker threads (serialized). */
	void (*progress)(void *ud, const struct hoard_sync_progress *p);
	void *progress_ud;
	/* pull only, optional: called after the pull for every name that
	 * was added or replaced (parent is a store inode number) and for
	 * every directory whose entries changed (name NULL). */
	void (*changed)(void *ud, uint64_t parent, const char *name);
	void *changed_ud;
};

struct hoard_sync_result {
	bool pull;
	char manifest[HOARD_SHA256_HEX_SIZE];
	uint64_t files, logical_bytes; /* of the volume's tree */
	uint64_t chunks;	       /* distinct chunks the tree uses */
	/* push */
	uint64_t chunks_new, packs_new;
	uint64_t bytes_new;   /* pack bytes uploaded */
	uint64_t bytes_dedup; /* frame bytes the bucket already had */
	/* --sign: chunks read and hashed; the others' SHA-256 was the
	 * store's row (FORMAT.md 2.1) */
	uint64_t chunks_hashed;
	bool manifest_new, ref_updated;
	/* pull */
	uint64_t chunks_fetched, bytes_fetched, range_gets;
	uint64_t added, replaced, identical, kept_newer, conflicts;
	/* both: the key that signed the ref (pushed or pulled), "" none */
	char key_id[HOARD_SIGN_ID_SIZE];
	uint64_t requests, retries, bytes_up, bytes_down;
	uint64_t elapsed_ns;
};

int hoard_sync_push(struct hoard_fs *fs, const struct hoard_sync_opts *o,
		    struct hoard_sync_result *res, char *errbuf, size_t errlen);
int hoard_sync_pull(struct hoard_fs *fs, const struct hoard_sync_opts *o,
		    struct hoard_sync_result *res, char *errbuf, size_t errlen);

/*
 * Fold volume src's files into volume dst of the same store with pull's
 * merge rule (docs/REMOTE.md 8.2): a consistent snapshot of src (as push
 * takes) applied to dst as a pull applies a manifest: files absent in
 * dst are added, identical ones left alone, a differing one replaced only
 * when src's mtime is newer, never a directory replaced, nothing deleted.
 * No chunk byte is copied: the new extents name src's chunks.  xattrs are
 * not carried (as in a manifest).  changed as in hoard_sync_opts.  The
 * result counts as a pull's (added, replaced, identical, kept_newer,
 * conflicts).  -ENOENT: no such volume; -EAGAIN: a chunk of src vanished
 * meanwhile (run it again).
 */
int hoard_sync_merge(struct hoard_fs *fs, const char *src, const char *dst,
		     void (*changed)(void *ud, uint64_t parent,
				     const char *name),
		     void *changed_ud, struct hoard_sync_result *res,
		     char *errbuf, size_t errlen);

/* One JSON object, '\n'-terminated, malloc()ed (NULL on ENOMEM). */
char *hoard_sync_result_json(const struct hoard_sync_result *res);
/* One line for a human, '\n'-terminated, malloc()ed. */
char *hoard_sync_result_text(const struct hoard_sync_result *res);

/* Read back what hoard_sync_result_json() wrote (the daemon's reply). */
int hoard_sync_result_from_json(const char *json,
				struct hoard_sync_result *ret);

/*
 * The control-socket request that asks a daemon to run a push or pull
 * (docs/FORMAT.md section 6): "push|pull URL VOLUME REF key=value...",
 * words percent-encoded.  encode: a malloc()ed line (it holds the secret
 * S3 key and the signing key: wipe and free it).  decode: -EINVAL for a malformed line.
 */
struct hoard_sync_request {
	char op[8];
	char *url, *volume, *ref;
	unsigned jobs;
	unsigned lazy;		 /* pull: 1 for --lazy */
	unsigned allow_rollback; /* pull: 1 for --allow-rollback */
	struct hoard_s3_config s3;
	bool has_sign; /* push: sign= (the secret seed, hex) */
	struct hoard_sign_key sign;
	struct hoard_pubkey *trust; /* pull: trust= words, malloc()ed */
	size_t n_trust;
};
char *hoard_sync_request_encode(const char *op,
				const struct hoard_sync_opts *o);
int hoard_sync_request_decode(const char *line, struct hoard_sync_request *q);
void hoard_sync_request_clear(struct hoard_sync_request *q);

/* Remote gc (docs/REMOTE.md section 9). */
struct hoard_gc_remote_opts {
	const struct hoard_s3_config *s3;
	const char *url;
	const char *store_dir; /* for the pack index cache; may be NULL */
	uint64_t grace_s;      /* condemn / delete only older than this */
	bool dry_run;	       /* count only: no PUT, no DELETE */
	unsigned jobs;
};

struct hoard_gc_remote_result {
	uint64_t refs, manifests, chunks_live;
	uint64_t packs, packs_live, packs_partly_dead;
	uint64_t packs_condemned, packs_revived, packs_deleted;
	uint64_t packs_repacked, bytes_repacked;
	uint64_t manifests_deleted, bytes_deleted;
	uint64_t requests;
	double seconds;
};

int hoard_sync_gc_remote(const struct hoard_gc_remote_opts *o,
			 struct hoard_gc_remote_result *res, char *errbuf,
			 size_t errlen);
char *hoard_gc_remote_result_json(const struct hoard_gc_remote_result *res,
				  bool dry_run);

/* The repository's config (for `hoard init --from`). */
int hoard_sync_fetch_config(const struct hoard_s3_config *s3, const char *url,
			    struct hoard_remote_config *ret, char *errbuf,
			    size_t errlen);

/* `hoard ls-remote`: *ret_out gets the table (or JSON), malloc()ed.  Each
 * ref's signature is checked (REMOTE.md 6.1) and shown: its key id, and
 * whether it verifies and is by one of the trusted keys (may be none). */
int hoard_sync_ls_remote(const struct hoard_s3_config *s3, const char *url,
			 const struct hoard_pubkey *trust, size_t n_trust,
			 bool json, char **ret_out, char *errbuf,
			 size_t errlen);

#endif
