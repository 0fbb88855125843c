/* SPDX-License-Identifier: MIT */
/*
 * store: the store directory and its RocksDB database.  Layer 3: uses util,
 * hash, codec; the only module that includes rocksdb/c.h, and it turns
 * RocksDB's error strings into negative errno values (logged at debug).
 *
 * A store directory holds:
 *   HOARD          marker file, one line "hoard-store <format>\n"
 *   db/            the RocksDB database (column families: docs/FORMAT.md)
 *   lock           flock()ed by the one process that has the store open;
 *                  holds that process's pid
 *   staging/       per-inode files of data not yet committed (daemon only)
 *   control.sock   the running daemon's control socket (ctl.h)
 *   hoardfs.log    the daemon's log when it runs in the background
 *   damaged-wal/   copies of write-ahead logs an open found damaged
 *
 * This module gives a small key-value API over column families; the key and
 * value layouts live with the modules that use them and in docs/FORMAT.md.
 *
 * Thread contract: after hoard_store_open() returns, every function may be
 * called from any thread at once (RocksDB is thread-safe).  Consistency of
 * read-modify-write sequences is the caller's: the filesystem core's metadata
 * lock (fs->lock, see fs.h) serializes them.  Batches and iterators belong
 * to one thread.
 */
#ifndef HOARD_STORE_H
#define HOARD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hoard/hash.h"

/* Newest store format this build reads (docs/FORMAT.md 1): 2 once a lazy
 * pull wrote version-2 chunk records, 3 once directory entries may carry
 * copies of inode records (what `hoard init` makes; the core upgrades
 * older stores at open).  The HOARD marker keeps saying
 * HOARD_STORE_FORMAT_INIT. */
#define HOARD_STORE_FORMAT	3
#define HOARD_STORE_FORMAT_INIT 1

enum hoard_cf {
	HOARD_CF_DEFAULT = 0, /* store settings */
	HOARD_CF_VOLUMES,     /* volume name -> root inode */
	HOARD_CF_INODES,      /* ino -> inode record */
	HOARD_CF_DIRENTS,     /* parent ino + name -> child ino + type */
	HOARD_CF_EXTENTS,     /* ino + file offset -> chunk id + length */
	HOARD_CF_CHUNKS,      /* chunk id -> chunk record (refcount, sizes) */
	HOARD_CF_CHUNKDATA,   /* chunk id -> frame (codec.h); BlobDB */
	HOARD_CF_XATTRS,      /* ino + name -> value */
	HOARD_CF_ORPHANS,     /* ino -> empty: unlinked, still open */
	HOARD_CF_COUNT
};

struct hoard_store;
struct hoard_batch;
struct hoard_iter;

struct hoard_store_init_opts {
	int zstd_level;	       /* 0..19, default 1 */
	const uint8_t *secret; /* NULL: generate a new one */
};

/*
 * Create a new store in dir (created if missing; must be empty otherwise).
 * Errors: -EEXIST (already a store), -ENOTEMPTY (a non-empty foreign
 * directory), -EINVAL (bad level), other -errno.  errbuf (may be NULL) gets
 * a one-line explanation.
 */
int hoard_store_init(const char *dir, const struct hoard_store_init_opts *o,
		     char *errbuf, size_t errlen);

/*
 * Open an existing store, taking its lock.  Errors, each with a one-line
 * explanation in errbuf:
 *   -ENOENT           no such directory, or no marker (not initialized)
 *   -EMEDIUMTYPE      directory exists but is not a hoard store
 *   -EPROTONOSUPPORT  the store's format is newer than this build's
 *   -ENOTDIR          dir is not a directory
 *   -EACCES           no permission to read it
 *   -EBUSY            another process holds the store
 *   -ENOSPC           less than 1 MiB free on the store's filesystem
 *   -EIO              RocksDB refused to open the database (its message
 *                     is in errbuf)
 * A corrupt record in the middle of the WAL is not an error: see
 * hoard_store_wal_damage().
 */
int hoard_store_open(const char *dir, struct hoard_store **ret_store,
		     char *errbuf, size_t errlen);
/*
 * The same, for reading only (hoard fsck without --repair): the lock is
 * taken as above, but the database is opened read-only and nothing in
 * db/ is written (the WAL's records are read, not flushed), so it works on
 * a full filesystem.  Only an open that finds damaged WAL records opens
 * for writing, to record the damage.  Writes on such a store fail.
 * hoard_store_open() additionally fails with -ENOSPC (errbuf says so)
 * when the store's filesystem has less than 1 MiB free.
 */
int hoard_store_open_readonly(const char *dir, struct hoard_store **ret_store,
			      char *errbuf, size_t errlen);
/* Flush every column family (so the WAL holds nothing needed) and close;
 * accepts NULL. */
void hoard_store_close(struct hoard_store *st);
/*
 * WAL damage (docs/FORMAT.md 2.6): when an open found corrupt records in
 * the middle of RocksDB's write-ahead log, it logged it, kept a copy of
 * the logs in DIR/damaged-wal/, opened skipping the damaged records and
 * recorded the damage in the settings.  Returns that record (one line per
 * damaging open: when, what RocksDB dropped, where the copy is), or NULL.
 * The pointer lives as long as st.  _clear deletes the record (fsck
 * --repair, once the store is consistent again).
 */
const char *hoard_store_wal_damage(const struct hoard_store *st);
int hoard_store_wal_damage_clear(struct hoard_store *st);

const char *hoard_store_dir(const struct hoard_store *st);
const struct hoard_key *hoard_store_key(const struct hoard_store *st);
int hoard_store_zstd_level(const struct hoard_store *st);
/* The pid in dir/lock if a live process holds it, else 0. */
int hoard_store_lock_owner(const char *dir);

/* Point operations.  get: -ENOENT when absent; *ret_val is malloc()ed. */
int hoard_store_get(struct hoard_store *st, enum hoard_cf cf, const void *key,
		    size_t klen, void **ret_val, size_t *ret_len);
/* get into a caller buffer; -ENOENT when absent, -ENOBUFS when the value is
 * larger than cap (then *ret_len still tells its size). */
int hoard_store_get_into(struct hoard_store *st, enum hoard_cf cf,
			 const void *key, size_t klen, void *buf, size_t cap,
			 size_t *ret_len);
/* Hand the value of key to fn without a copy (RocksDB keeps it pinned for
 * the call); returns fn's result, -ENOENT when absent, or -errno. */
int hoard_store_get_pinned(struct hoard_store *st, enum hoard_cf cf,
			   const void *key, size_t klen,
			   int (*fn)(void *ud, const void *val, size_t len),
			   void *ud);
/* The value of key kept pinned for the caller, without a copy: *ret_val
 * (*ret_len bytes) stays valid until hoard_store_unpin(*ret_pin), from any
 * thread.  -ENOENT when absent, or -errno. */
struct hoard_pinned;
int hoard_store_pin(struct hoard_store *st, enum hoard_cf cf, const void *key,
		    size_t klen, struct hoard_pinned **ret_pin,
		    const void **ret_val, size_t *ret_len);
/* NULL: nothing. */
void hoard_store_unpin(struct hoard_pinned *pin);
int hoard_store_exists(struct hoard_store *st, enum hoard_cf cf,
		       const void *key, size_t klen); /* 1, 0 or -errno */
int hoard_store_put(struct hoard_store *st, enum hoard_cf cf, const void *key,
		    size_t klen, const void *val, size_t vlen);
/* A put that skips the WAL: the value is durable only once a flush of cf
 * (hoard_store_flush) that started after it has returned, and is lost by a
 * crash before that.  For bulk chunk frames that would otherwise be written
 * twice (WAL, then blob file). */
int hoard_store_put_nowal(struct hoard_store *st, enum hoard_cf cf,
			  const void *key, size_t klen, const void *val,
			  size_t vlen);
/* Flush cf's memtable to its files and wait (they are synced). */
int hoard_store_flush(struct hoard_store *st, enum hoard_cf cf);

/* Batches: applied atomically by hoard_store_write(); sync=true syncs the
 * WAL before returning (what fsync promises). */
struct hoard_batch *hoard_batch_new(struct hoard_store *st);
void hoard_batch_free(struct hoard_batch *b);
void hoard_batch_put(struct hoard_batch *b, enum hoard_cf cf, const void *key,
		     size_t klen, const void *val, size_t vlen);
void hoard_batch_delete(struct hoard_batch *b, enum hoard_cf cf,
			const void *key, size_t klen);
size_t hoard_batch_count(const struct hoard_batch *b);
int hoard_store_write(struct hoard_store *st, struct hoard_batch *b, bool sync);
/* Writes (put, batch, flush, sync) that failed since the open, e.g. with
 * ENOSPC on a full disk: chunk frames of a commit that failed half-way may
 * be left without a record. */
uint64_t hoard_store_write_failures(struct hoard_store *st);
/* Writes that touched HOARD_CF_DIRENTS so far, each counted once it has
 * returned: a reader that gets the same count before a read and at a
 * later moment knows no entry changed in between (fs/core/dentpf.c). */
uint64_t hoard_store_dent_writes(struct hoard_store *st);
/* The same for HOARD_CF_CHUNKS (the chunk records): a record read while
 * the count was c is the stored one as long as the count is still c
 * (fs/core/chunks.c, for readers and writers that all hold the core's
 * lock). */
uint64_t hoard_store_chunk_writes(struct hoard_store *st);
/* Sync the WAL (everything written so far becomes durable). */
int hoard_store_sync(struct hoard_store *st);

/*
 * Call fn for each key of cf that starts with prefix (plen may be 0), in
 * key order, until fn returns non-zero: that value is returned; otherwise 0,
 * or the iterator's error.  k and v are valid during the call only.
 */
typedef int (*hoard_scan_fn)(void *ud, const uint8_t *k, size_t kl,
			     const uint8_t *v, size_t vl);
int hoard_store_scan(struct hoard_store *st, enum hoard_cf cf,
		     const void *prefix, size_t plen, hoard_scan_fn fn,
		     void *ud);

/*
 * hoard_store_scan over a whole family that goes on past records it cannot
 * read (-EIO: a damaged table file): for each unreadable stretch, gap is
 * called with the range [lo, hi) of the keys' first 8 bytes (big-endian)
 * that may hold lost records, and the scan resumes at hi.  fsck.
 */
typedef int (*hoard_gap_fn)(void *ud, enum hoard_cf cf, uint64_t lo,
			    uint64_t hi);
int hoard_store_scan_past(struct hoard_store *st, enum hoard_cf cf,
			  hoard_scan_fn fn, hoard_gap_fn gap, void *ud);
/* Delete every key of cf whose first 8 bytes are in [lo, hi), synced. */
int hoard_store_delete_range(struct hoard_store *st, enum hoard_cf cf,
			     uint64_t lo, uint64_t hi);

/*
 * Iterators over one column family, limited to keys that start with prefix
 * (plen may be 0).  A fresh iterator is positioned at the first key >= prefix.
 */
struct hoard_iter *hoard_iter_new(struct hoard_store *st, enum hoard_cf cf,
				  const void *prefix, size_t plen);
/*
 * Snapshots: the database as of one instant (a RocksDB snapshot).  An
 * iterator made with _at reads only what was written before the snapshot
 * was taken, whatever is written meanwhile; a long walk of a consistent
 * state needs no lock.  Take the snapshot where the state is consistent
 * (e.g. under fs->lock); free it with the store open.  Any thread.
 */
struct hoard_snapshot;
struct hoard_snapshot *hoard_store_snapshot(struct hoard_store *st);
/* NULL: nothing. */
void hoard_store_snapshot_free(struct hoard_store *st,
			       struct hoard_snapshot *snap);
/* hoard_iter_new reading at snap (NULL: the current state). */
struct hoard_iter *hoard_iter_new_at(struct hoard_store *st, enum hoard_cf cf,
				     const void *prefix, size_t plen,
				     const struct hoard_snapshot *snap);
/* hoard_iter_new positioned at the first key >= key (which starts with
 * prefix) instead; ahead > 0: each table's blocks are read that many
 * bytes at a time (RocksDB's iterator readahead). */
struct hoard_iter *hoard_iter_new_from(struct hoard_store *st, enum hoard_cf cf,
				       const void *prefix, size_t plen,
				       const void *key, size_t klen,
				       size_t ahead);
/*
 * Ask the kernel to read into the page cache (asynchronously) the table
 * files of cf that hold keys in [lo, hi): each of at most file_max bytes,
 * at most total_max bytes in all, none advised within the last again_ns
 * (by any caller).  Returns the bytes advised; 0 for a read-only store.
 * Memtables and files a compaction has just deleted are skipped.
 */
int64_t hoard_store_prefetch(struct hoard_store *st, enum hoard_cf cf,
			     const void *lo, size_t lolen, const void *hi,
			     size_t hilen, uint64_t file_max,
			     uint64_t total_max, uint64_t again_ns);
void hoard_iter_free(struct hoard_iter *it);
void hoard_iter_seek(struct hoard_iter *it, const void *key, size_t klen);
/* Last key <= key (within the prefix). */
void hoard_iter_seek_for_prev(struct hoard_iter *it, const void *key,
			      size_t klen);
bool hoard_iter_valid(struct hoard_iter *it);
/* After a scan ends: 0, or -errno when it ended on an error (I/O,
 * corruption) rather than at the end of the data: -EBADMSG when the
 * next value is a blob that fails its checksum (the key is not known;
 * seek past the key it should be to go on), -EIO for a table that
 * cannot be read. */
int hoard_iter_status(struct hoard_iter *it);
void hoard_iter_next(struct hoard_iter *it);
const uint8_t *hoard_iter_key(struct hoard_iter *it, size_t *ret_len);
const uint8_t *hoard_iter_value(struct hoard_iter *it, size_t *ret_len);

/* Sizes RocksDB reports for a column family's live data (for stats). */
uint64_t hoard_store_cf_size(struct hoard_store *st, enum hoard_cf cf);
/* Full compaction (returns space after deletes). */
void hoard_store_compact(struct hoard_store *st);
/* Full compaction of every column family with blob garbage collection of
 * all blob files, so that the space of deleted chunks goes back to the
 * filesystem (hoard gc).  May run while other threads read and write.
 * 0 or -errno. */
int hoard_store_gc(struct hoard_store *st);

#endif
