/* SPDX-License-Identifier: MIT */
/*
 * Private to the filesystem core (the files of fs/core): the layers above use its
 * public headers, core.h (the named operations and the lock contract),
 * records.h and idmap.h.
 *
 * The three ID spaces and how they meet (squashfuse's habit: write it down):
 *   - FUSE node ids: what the kernel names inodes by.  Equal to store inode
 *     numbers except FUSE_ROOT_ID (1), which each mount maps to its volume's
 *     root inode (hoardfs.c does that, nothing here sees a node id).
 *   - store inode numbers: u64 keys of the inodes column family, >= 16,
 *     handed out from next_ino and never reused, so no generation numbers.
 *   - chunk ids: 16-byte keyed hashes; extents map (ino, offset) to them.
 * An inode the kernel knows (nlookup > 0) or has open gets a struct istate,
 * the in-memory part of the inode: lookup and open counts, and while the
 * file is being written, its staging file (store/staging/<ino>), which holds
 * the whole current content until the next commit chunks it into the store.
 */
#ifndef HOARD_FS_INTERNAL_H
#define HOARD_FS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "hoard/chunker.h"
#include "hoard/core.h"
#include "hoard/fs.h"
#include "hoard/hash.h"
#include "hoard/idmap.h"
#include "hoard/records.h"
#include "hoard/store.h"

#define HOARD_READ_AHEAD 16 /* chunks hinted after a fetching read */
#define XATTR_MAX_VALUE	 65536

/* In-memory inode state; see the essay above. */
struct istate {
	uint64_t ino;
	uint64_t nlookup;      /* protected by fs->lock */
	unsigned opens;	       /* protected by fs->lock */
	bool orphan;	       /* protected by fs->lock: its last link went
				* while in use (meta.c: an orphan, purged
				* at the last forget or release) */
	struct istate *next;   /* hash chain; protected by fs->lock */
	pthread_rwlock_t rw;   /* readers of the data vs. writers/commits */
	pthread_mutex_t mu;    /* protects the fields below */
	int staging_fd;	       /* -1 when the content is all in extents */
	uint8_t *mem;	       /* or the staging content in memory (small) */
	size_t mem_cap;	       /* bytes allocated at mem; beyond size: zeros */
	struct stream *stream; /* or a sequential writer's chunks (commit.c) */
	bool seq;	       /* in-memory staging written only by appends */
	bool dirty;	       /* staging holds changes not yet committed */
	bool size_valid;       /* size below is the current size */
	uint64_t size;
	struct timespec mtime, ctime; /* valid while dirty */
	int commit_err;		      /* a commit after the close failed:
				       * for the next flush or fsync */
	uint64_t ahead_end;	      /* lazy read-ahead: where the last read
				       * that fetched ended ... */
	unsigned ahead_win;	      /* ... and the chunks it hinted */
	/* FUSE passthrough (FORMAT 7.3); changed with rw held for writing */
	unsigned pt_opens; /* opens answered with the backing file pt_fd */
	int pt_fd;	   /* -1, or the plain copy those opens read */
	int backing_id;	   /* the front end's id of pt_fd */
	bool pt_staging;   /* also under mu: the copy became the staging
			    * file (staging_fd): passthrough writes change
			    * it without telling the daemon */
	bool pt_wrote;	   /* the next cached open drops the page cache */
	struct timespec pt_mtime; /* the copy's mtime when it became staging */
	/* protected by fs->lock: created by this daemon (create_locked) and
	 * known to have no extent rows (a commit need not look for old
	 * ones) / no xattr rows (a getxattr is ENODATA without a read) */
	bool fresh_ext, fresh_xattr;
	/* protected by fs->lock: the record as last written by
	 * create_locked, of a directory a file was created in, or of a
	 * regular file created here until its first commit or its last
	 * close (NULL: read it from the store); inode_put and the deleters
	 * of records drop it (istate_uncache) */
	struct hoard_inode *recc;
};

struct chunk_cache;
struct dent_pf;
struct kept_err {
	uint64_t ino;
	int err;
};

struct hoard_fs {
	struct hoard_store *st;
	pthread_mutex_t lock;	   /* the metadata lock, see fs.h */
	uint64_t next_ino;	   /* protected by lock */
	uint64_t ino_stored;	   /* protected by lock: the store's next_ino
				    * is at least this (next_ino_put) */
	uint64_t rec_writes;	   /* inode records put (inode_put), atomic;
				    * changes under lock */
	struct istate **itab;	   /* protected by lock */
	size_t itab_cap, icount;   /* protected by lock */
	struct idmap inflight;	   /* protected by lock: ids of frames that
				   * commits under way rely on */
	pthread_cond_t frame_cv;   /* with lock: a frame finished writing */
	struct chunk_cache *cache; /* has its own lock */
	uint64_t garbage_bytes;	   /* protected by lock: frame bytes deleted
				    * since the last blob gc (evict.c) */
	/* protected by lock: whether the store has chunk digest rows
	 * (FORMAT 2.1 `sha256.`; 0 not looked yet, 1 no, 2 maybe), and the
	 * trusted pulls writing some now (chunks.c, core.c) */
	int digests;
	unsigned digest_holds;
	int staging_dirfd;
	size_t staging_mem;	/* bytes of in-memory staging (atomic) */
	uint64_t commit_errors; /* commits at the last release that failed
				 * (atomic) */
	int level;
	hoard_fetch_fn fetch; /* NULL: no remote; set before serving */
	hoard_ahead_fn ahead;
	/* Where a local chunk is in the remote (its pack index, lazy.c):
	 * 0 and rec's location (and frame_size: the pack's frame) filled, or
	 * -ENOENT.  refresh re-reads the bucket's index (slow; no lock held). */
	int (*locate)(void *ud, const struct hoard_id *id,
		      struct chunk_rec *rec);
	void (*locate_refresh)(void *ud);
	void *fetch_ud;
	struct hoard_plain *plain; /* NULL: no tier; set before serving */
	unsigned ingest_jobs;	   /* protected by ingest.c's pool mutex:
				    * jobs not yet freed */
	struct dent_pf *dpf;	   /* dentpf.c; has its own lock */
	/* The last LOOKUP that found no entry: neg_name was not in
	 * directory neg_parent as of the store's dent_writes count neg_gen
	 * (0: none), so a CREATE of it while the count is unchanged reads no
	 * entry (meta.c neg_note).  Protected by neg_mu. */
	pthread_mutex_t neg_mu;
	uint64_t neg_parent, neg_gen;
	char neg_name[NAME_MAX_LEN + 1];
	/* protected by lock: the commit errors (istate commit_err) of
	 * inodes the kernel forgot before a flush or fsync took them; an
	 * istate made again takes its error back (meta.c) */
	struct kept_err *kept_errs;
	size_t n_kept_errs, cap_kept_errs;
	/* creates answered from memory, not landed yet (pend.c) */
	bool defer_creates; /* set before serving (hoard_fs_defer_creates) */
	bool create_sync;   /* atomic: a landing failed, creates write at
			     * once until one did */
	bool low_room;	    /* atomic: the store's filesystem was short of
			     * room at the last hoard_fs_defer_close */
	pthread_mutex_t pend_mu; /* protects pend, cap_pend (changed with
				  * lock held too; lock -> pend_mu,
				  * is->mu -> pend_mu) */
	struct pend *pend;
	size_t cap_pend;
	size_t npend; /* atomic read without pend_mu (pend_any) */
};

/* pend.c: a create not landed yet: the new record (its home entry is
 * parent/name) and the parent's record after it */
struct pend {
	uint64_t ino;
	struct hoard_inode in, dir;
	bool counted; /* a batch with it failed, counted (fs->lock) */
};
/* Any create pending (no lock). */
bool pend_any(struct hoard_fs *fs);
/* Whether another create may wait (fs->lock held). */
bool pend_room_locked(struct hoard_fs *fs);
/* A create answered from memory (fs->lock held): 0 or -ENOMEM. */
int pend_add_locked(struct hoard_fs *fs, uint64_t ino,
		    const struct hoard_inode *in,
		    const struct hoard_inode *dir);
/* The pending entry parent/name: 0 and its inode (and record, ret_in not
 * NULL), or -ENOENT.  Any lock or none. */
int pend_find(struct hoard_fs *fs, uint64_t parent, const char *name,
	      uint64_t *ret_ino, struct hoard_inode *ret_in);
/* The record of ino while a pending create holds it (the new file's, or
 * its parent's newest): 0, or -ENOENT.  Any lock or none. */
int pend_load(struct hoard_fs *fs, uint64_t ino, struct hoard_inode *ret);
/* Put every pending create into b, before anything else the caller puts
 * (fs->lock held, until pend_done_locked): how many. */
size_t pend_put_locked(struct hoard_fs *fs, struct hoard_batch *b);
/* The batch with the first n pending creates was written (r == 0: they
 * leave the table) or failed (they stay for the next; pend.c).  fs->lock
 * held since pend_put_locked. */
void pend_done_locked(struct hoard_fs *fs, size_t n, int r);
/* Write b, which carries the first n pending creates (pend_put_locked),
 * and settle them by its result (pend_done_locked): 0 or the error. */
int pend_write_locked(struct hoard_fs *fs, struct hoard_batch *b, size_t n,
		      bool sync);
/* Land every pending create now, one batch (fs->lock held, or taken by
 * pend_land): 0, or the batch's error. */
int pend_land_locked(struct hoard_fs *fs, bool sync);
int pend_land(struct hoard_fs *fs);

/* meta.c */
void inode_put(struct hoard_fs *fs, struct hoard_batch *b, uint64_t ino,
	       const struct hoard_inode *in);
/* The next_ino setting (fs->lock held; meta.c), never below a block of
 * numbers a create reserved, into b, or into the store at once when b is
 * NULL: 0 or the store's error. */
int next_ino_put(struct hoard_fs *fs, struct hoard_batch *b);
/* inode_put without fs->lock, for inode numbers no istate can have yet
 * (a volume clone's reserved ones) */
void inode_put_new(struct hoard_fs *fs, struct hoard_batch *b, uint64_t ino,
		   const struct hoard_inode *in);
/* Drop the record istate keeps of ino (fs->lock held). */
void istate_uncache(struct hoard_fs *fs, uint64_t ino);
void inode_to_stat(const struct hoard_inode *in, uint64_t ino, struct stat *st);
struct istate *istate_find(struct hoard_fs *fs, uint64_t ino);
struct istate *istate_get(struct hoard_fs *fs, uint64_t ino);
void istate_maybe_free(struct hoard_fs *fs, struct istate *is);
void now_ts(struct timespec *ts);
/* inode_load, from the record istate keeps (recc) when it has one
 * (fs->lock held). */
int inode_load_cached(struct hoard_fs *fs, uint64_t ino,
		      struct hoard_inode *ret);
/* Overlay the in-memory size/times of a file being written. */
void istate_overlay(struct istate *is, struct hoard_inode *in);
/* The inode parent/name names (fs->lock held): 0, -ENOENT, -errno. */
int dirent_ino(struct hoard_fs *fs, uint64_t parent, const char *name,
	       uint64_t *ret_ino);
/* A regular file's create whose entry and record may wait for the next
 * batch (hoard_fs_create; pend.c). */
int create_file(struct hoard_fs *fs, uint64_t parent, const char *name,
		mode_t mode, const struct hoard_ctx *ctx, struct stat *ret_st,
		struct istate **ret_is);
/* hoard_fs_unlink with fs->lock held (evict.c removes files with it). */
int fs_unlink_locked(struct hoard_fs *fs, uint64_t parent, const char *name);
/* Delete an inode whose nlink is 0 and that nobody uses (fs->lock held). */
int inode_purge(struct hoard_fs *fs, uint64_t ino);
/* Store formats 1, 2 -> 3 at open (meta.c; FORMAT 1): 0 or -errno. */
int meta_upgrade(struct hoard_fs *fs);

/* dentpf.c: entries read ahead for LOOKUPs of one directory's names */
int dentpf_new(struct dent_pf **ret);
void dentpf_free(struct dent_pf *pf);
/* The entry of parent/name from a window read when the entries' write
 * count was gen (hoard_store_dent_writes, read before this call): 0 and
 * the value in v (*ret_n bytes), -ENOENT when the window covers name and
 * has no such entry, 1 when no window covers it (read it from the store). */
int dentpf_get(struct hoard_fs *fs, uint64_t parent, const char *name,
	       uint64_t gen, uint8_t *v, size_t cap, size_t *ret_n);
/* A LOOKUP that dentpf_get did not answer, after its point read (present:
 * the entry exists); may read a window of the entries from name on.
 * gen: as read before the point read.  0 or -errno (no window then). */
int dentpf_miss(struct hoard_fs *fs, uint64_t parent, const char *name,
		uint64_t gen, bool present);
/* (hoard_fs_lookup_counts in fs.h gives the counts) */

/* chunks.c */
int chunk_cache_new(size_t bytes, struct chunk_cache **ret);
void chunk_cache_free(struct chunk_cache *c);
/* 1 when the calling thread fetched a chunk since the last call (and
 * clears it). */
bool chunks_fetched_here(void);
/*
 * The same for a bulk writer: a new frame goes in without the WAL (written
 * once, to a blob file at the flush, instead of twice).  *ret_unflushed
 * becomes true when the frame the caller now relies on is not durable yet
 * (its own or another bulk writer's): the caller must then call
 * chunks_make_durable() before its batch references the chunk.
 */
int chunks_stage_bulk(struct hoard_fs *fs, const struct hoard_id *id,
		      const void *raw, size_t len, uint32_t *ret_frame_size,
		      bool *ret_unflushed);
/* Flush the chunk frames written so far without the WAL; clears the
 * unflushed mark of the ids in `staged`.  fs->lock not held. */
int chunks_make_durable(struct hoard_fs *fs, struct idmap *staged);
/* Drop in-flight counts of every id in m (fs->lock held). */
void chunks_unstage_locked(struct hoard_fs *fs, struct idmap *m);
/*
 * The same for a commit that did not land (failed, or abandoned when a
 * stream becomes a staging file): then also delete the frames of m that no
 * chunk record refers to and no other commit under way relies on, so that
 * a full disk gets their space back without waiting for the unmount's
 * sweep.  m's frame_size fields give the bytes (fs->garbage_bytes).
 */
void chunks_unstage_failed_locked(struct hoard_fs *fs, struct idmap *m);
/* Add the refcount changes in m (count = delta) to b (fs->lock held). */
int chunks_apply_locked(struct hoard_fs *fs, struct hoard_batch *b,
			struct idmap *m);
/*
 * A reference on a chunk's verified bytes (*ret_data, raw_size of them),
 * from the decompressed cache or read (and verified, -EBADMSG when it does
 * not match its id) and put there: the bytes stay valid, even if the cache
 * evicts the entry, until chunks_unpin(*ret_pin).
 */
int chunks_pin(struct hoard_fs *fs, const struct hoard_id *id,
	       uint32_t raw_size, struct hoard_pin **ret_pin,
	       const uint8_t **ret_data);
/* Drop a reference from chunks_pin (NULL: nothing). */
void chunks_unpin(struct hoard_fs *fs, struct hoard_pin *pin);
/* Copy n bytes at off within a chunk of raw_size bytes into dst, verified. */
int chunks_copy(struct hoard_fs *fs, const struct hoard_id *id,
		uint32_t raw_size, uint32_t off, void *dst, size_t n);

/* plain.c: the tier's hooks (no-ops without a tier) */
/* The file is about to change: drop its copy, or spoil a copy under way. */
void plain_drop(struct hoard_fs *fs, uint64_t ino);
/* Open ino's copy read-write for a passthrough open (counts a hit and a
 * user, which plain_unuse() drops); -ENOENT when there is none. */
int plain_open(struct hoard_fs *fs, uint64_t ino, int *ret_fd);
void plain_unuse(struct hoard_fs *fs, uint64_t ino);
/* Count a passthrough open of a copy already in use. */
void plain_hit(struct hoard_fs *fs);
/* A read-only open of a committed file of size bytes: copy it (queued). */
void plain_want(struct hoard_fs *fs, uint64_t ino, uint64_t size);
/* The copy becomes the file's staging file: renamed to staging/<ino> and
 * out of the tier. */
int plain_detach(struct hoard_fs *fs, uint64_t ino);

/* file.c, read.c and commit.c: the data path (file.c's essay) */
struct hoard_fh {
	struct istate *is;
	int flags;
	bool pt;       /* answered with passthrough (counted in is->pt_opens) */
	bool deferred; /* its close does not wait for the commit (file.c) */
};

/* is's content is staged (in memory, a staging file or a stream) */
static inline bool staged(const struct istate *is)
{
	return is->staging_fd >= 0 || is->mem || is->stream;
}

typedef int (*fill_fn)(struct hoard_fs *fs, struct istate *is, int fd,
		       uint64_t arg);

/* file.c: a new staging file for is, holding what fill writes (nothing
 * when fill is NULL) and is->size long; it becomes is->staging_fd. */
int staging_file_new(struct hoard_fs *fs, struct istate *is, fill_fn fill,
		     uint64_t arg);
int file_truncate(struct hoard_fs *fs, struct istate *is, uint64_t size);
int fs_commit_all(struct hoard_fs *fs);

/* read.c: bytes [off, end) of a streaming file into buf. */
int stream_read(struct hoard_fs *fs, struct istate *is, uint8_t *buf,
		uint64_t off, uint64_t end);

/* commit.c: streams (is->rw held for writing).  In-memory staging written
 * by appends only becomes a stream (on failure nothing changed); n bytes
 * appended at the end of a streaming file (on failure part of them may be
 * stored: the caller breaks or drops the stream); the stream's content
 * goes to a staging file, which takes over. */
int stream_start(struct hoard_fs *fs, struct istate *is);
int stream_feed(struct hoard_fs *fs, struct istate *is, const uint8_t *p,
		size_t n);
int stream_to_file(struct hoard_fs *fs, struct istate *is);
/* An append answered before it was cut failed (file.c): drop what the
 * stream staged, its frames deleted now as a failed commit's are, and
 * keep only the error (struct stream, err); is->rw held for writing. */
void stream_break(struct hoard_fs *fs, struct istate *is, int err);

/* commit.c */
int file_commit(struct hoard_fs *fs, struct istate *is, bool sync);
/* What a writer of a file's content adds to file_land_locked's batch. */
struct land {
	/* after the refcounts (NULL: nothing); -errno fails the batch */
	int (*records)(void *ud, struct hoard_batch *b, struct idmap *deltas);
	/* the inode record to write (loaded from the store) */
	void (*inode)(void *ud, struct hoard_inode *in);
	void *ud;
};
/* The one commit path (fs->lock held): ino's extents become the n_ext at
 * ext (key + value each), deltas (the new extents' references, +1 each)
 * apply with the old extents' -1, l's records and inode, one batch
 * (synced when sync). */
int file_land_locked(struct hoard_fs *fs, uint64_t ino, const uint8_t *ext,
		     size_t n_ext, struct idmap *deltas, const struct land *l,
		     bool sync);

/* volrm.c: finish the volume removals a crash interrupted (their `rm.`
 * keys); from hoard_volume_recover.  0 or -errno, each one logged. */
int volrm_recover(struct hoard_fs *fs);

/* extents.c (below meta.c and file.c) */
/* Adds delta to m's count of every chunk ino's extents name, once per
 * extent (raw_size set too); with b, also deletes those extents in b.
 * -EBADMSG on an extent record of the wrong size. */
int extents_count(struct hoard_fs *fs, uint64_t ino, struct idmap *m, int delta,
		  struct hoard_batch *b);

/* staging.c (below meta.c and file.c): calls go file.c -> meta.c ->
 * staging.c / extents.c, never back up. */

/* A commit's work (commit.c), also a stream's chunks cut so far. */
struct commit {
	struct hoard_fs *fs;
	struct idmap deltas; /* id -> refcount change, sizes */
	struct idmap staged; /* id -> times chunks_stage() counted it */
	bool bulk;	/* frames past HOARD_BULK_COMMIT_MIN without the WAL */
	bool unflushed; /* a staged frame is not durable yet */
	uint8_t *ext;	/* new extents: key + value each */
	size_t n_ext, cap_ext;
};

/* commit.c: a group commit (commit.c's essay on it; file.c,
 * hoard_fs_release_many).  Each file's is->rw is held for writing from
 * its commit_prepare to the end of commit_group. */
struct commit_one {
	struct istate *is;
	struct commit c;
	int r;	       /* 0, or the file's error (its commit did not land) */
	bool in_group; /* its commit was in the group's batch */
};
/* is's commit can be in a group (is->rw held for writing). */
bool commit_groupable(struct hoard_fs *fs, const struct istate *is);
/* Chunk and stage o->is's content (frames stored): 0, or o->r = -errno
 * (nothing of it is staged then, and it is logged). */
int commit_prepare(struct hoard_fs *fs, struct commit_one *o);
/* Land the prepared v[0..n) (those with r == 0) in one batch; each gets
 * its r, and is no longer dirty when it landed. */
void commit_group(struct hoard_fs *fs, struct commit_one *v, size_t n);
void commit_one_free(struct commit_one *o);

/* ingest.c: a stream's cut chunk, hashed and stored by a worker. */
struct ingest_job {
	struct hoard_fs *fs;
	uint64_t off; /* in the file */
	uint32_t len;
	bool wal; /* chunks_stage(), else chunks_stage_bulk() */
	/* results, set by ingest_run() */
	int r;
	bool hole; /* all zeros: nothing stored */
	bool unflushed;
	struct hoard_id id;
	uint32_t flen;
	/* protected by the pool's mutex */
	int state;
	bool orphan;
	bool waited; /* its writer sleeps until it is done */
	struct ingest_job *qnext;
	uint8_t data[]; /* the chunk's bytes, kept until it is recorded */
};

/* A stream's jobs in file order (owned by the writer, see ingest.c). */
#define INGEST_DEPTH 8
struct ingest_q {
	struct ingest_job *ring[INGEST_DEPTH];
	unsigned head, n;
};

bool chunk_all_zero(const uint8_t *p, size_t n);
/* There is a pool (more than one CPU); starts it on first use. */
bool ingest_on(void);
bool ingest_full(const struct ingest_q *q);
/* Queue a copy of a[0..alen) ++ b[0..blen), the file's bytes at off; q
 * not full.  Wakes no worker: ingest_kick() does, and waiting does. */
int ingest_submit(struct hoard_fs *fs, struct ingest_q *q, uint64_t off,
		  const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
		  bool wal);
/* Wake workers for the jobs queued so far. */
void ingest_kick(void);
/* The head job when it is done (waiting for it with wait), or NULL. */
struct ingest_job *ingest_peek(struct ingest_q *q, bool wait);
/* Wait until the i-th queued job from the head (i < q->n) is done. */
void ingest_wait(struct ingest_q *q, unsigned i);
/* The i-th queued job from the head (i < q->n), done or not. */
struct ingest_job *ingest_at(const struct ingest_q *q, unsigned i);
/* Hash and stage a job's chunk (a worker, or the writer to retry). */
void ingest_run(struct ingest_job *j);
/* Free the head job (done, recorded). */
void ingest_pop(struct ingest_q *q);
/* Drop every job of q, undoing their stage counts (fs->lock held or not,
 * as `locked` says); never waits. */
void ingest_abandon(struct hoard_fs *fs, struct ingest_q *q, bool locked);
/* Wait until no job of fs is left (orphans included). */
void ingest_quiesce(struct hoard_fs *fs);

/* A file written only by appends, chunked as the writes arrive (file.c's
 * essay); is->stream. */
struct stream {
	struct commit c;   /* the chunks cut so far: extents, deltas, stages */
	struct ingest_q q; /* chunks cut after those recorded in c, before
			    * base: with the pool, stored by its workers */
	struct hoard_chunker ch;
	uint8_t *buf;	  /* buf[head, len): the file's bytes from base on */
	size_t head, len; /* the chunker has seen buf[head, len): no cut */
	uint64_t base;
	int err;   /* an append answered before it was cut failed: bytes the
		  * writer was told are written are lost.  Sticky: every
		  * later append, read, move to a staging file and commit
		  * fails (reads with EIO), until the last close drops the
		  * stream and the file its new content (file.c). */
	bool told; /* err was returned by a write, truncate, fallocate,
		    * flush or fsync: the last close keeps no error for the
		    * next one (file.c) */
};

/* staging/<ino> */
void staging_name(char *buf, size_t n, uint64_t ino);
/* Frees is->mem and gives its bytes back to fs->staging_mem. */
void mem_release(struct hoard_fs *fs, struct istate *is);
/* Frees is->stream, unstaging its chunks (fs->lock held or not, as
 * `locked` says).  landed: the stream's commit landed; otherwise the
 * frames it staged that nothing else refers to are deleted. */
void stream_free(struct hoard_fs *fs, struct istate *is, bool locked,
		 bool landed);
/* A file whose copy became its staging file (pt_staging): take its size
 * and mtime from that file, which passthrough writes change (is->mu held). */
void pt_sync_locked(struct istate *is);
/* fs->lock held or not, as `locked` says */
void staging_drop(struct hoard_fs *fs, struct istate *is, bool locked);

#endif
