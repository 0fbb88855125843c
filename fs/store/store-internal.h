/* SPDX-License-Identifier: MIT */
/*
 * Private to the store module (store.h): store.c (directory, open, point
 * operations, batches, iterators), storewal.c (WAL recovery mode, damaged
 * WAL records, flush at close, recovery from a background error such as a
 * full disk), storeresume.cc (the RocksDB calls the C API lacks) and
 * storepf.c (table files read ahead).  These are the only files that
 * include rocksdb/c.h.
 */
#ifndef HOARD_STORE_INTERNAL_H
#define HOARD_STORE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <rocksdb/c.h>

#include "hoard/hash.h"
#include "hoard/store.h"

/* storepf.c: a table file of the family last listed, and when it was
 * advised last (CLOCK_MONOTONIC ns, 0 never) */
struct store_pf_file {
	uint64_t num, size, at;
	uint8_t *small, *large; /* its first and last keys */
	size_t sl, ll;
};
/* files advised by one hoard_store_prefetch at most */
#define STORE_PF_FILES 32

struct hoard_store {
	char *dir;
	int lock_fd;
	rocksdb_t *db;
	rocksdb_options_t *db_opts;
	rocksdb_options_t *cf_opts[HOARD_CF_COUNT];
	rocksdb_column_family_handle_t *cf[HOARD_CF_COUNT];
	rocksdb_cache_t *block_cache;
	rocksdb_block_based_table_options_t *table_opts;
	rocksdb_readoptions_t *ropts;
	rocksdb_readoptions_t *ropts_frames; /* frames: see store_alloc */
	rocksdb_writeoptions_t *wopts;
	rocksdb_writeoptions_t *wopts_sync;
	rocksdb_writeoptions_t *wopts_nowal;
	rocksdb_flushoptions_t *fopts;
	struct hoard_key key;
	int zstd_level;
	bool read_only;	  /* opened with rocksdb_open_for_read_only (fsck) */
	char *wal_damage; /* set at open when damaged WAL records were skipped */
	pthread_mutex_t resume_mu; /* serializes hoard_rdb_resume() calls */
	uint64_t resume_ns;	   /* protected by resume_mu: last attempt */
	uint64_t write_failures;   /* atomic (__atomic builtins) */
	uint64_t dent_writes;	   /* atomic: hoard_store_dent_writes */
	uint64_t chunk_writes;	   /* atomic: hoard_store_chunk_writes */
	/* storepf.c, protected by pf_mu: the table files of family pf_cf
	 * (-1: none yet) as listed at pf_list_at */
	pthread_mutex_t pf_mu;
	struct store_pf_file *pf_files;
	size_t pf_n;
	int pf_cf;
	uint64_t pf_list_at;
};

struct hoard_batch {
	struct hoard_store *st;
	rocksdb_writebatch_t *wb;
	uint64_t data_bytes; /* chunk data put in it */
	bool dirents;	     /* puts or deletes of HOARD_CF_DIRENTS in it */
	bool chunks;	     /* puts or deletes of HOARD_CF_CHUNKS in it */
};

struct hoard_iter {
	rocksdb_iterator_t *it;
	rocksdb_readoptions_t *ropts;
	uint8_t *prefix;
	size_t plen;
};

/* store.c */
/* Count a write that touched the directory entries or the chunk records,
 * once it is done (hoard_store_dent_writes, hoard_store_chunk_writes).
 * Every write in this module calls it for each family it wrote, after the
 * write: the LOOKUP read-ahead windows (fs/core/dentpf.c) are used only
 * while the entries' count is unchanged, a chunk record read by a stage
 * (fs/core/chunks.c) only while the records' count is. */
void store_written(struct hoard_store *st, enum hoard_cf cf);
int store_rdb_err(char *err, const char *what);
/* storepf.c: frees the list of table files (store_free) */
void store_pf_clear(struct hoard_store *st);
/* RocksDB's name of the column family cf */
const char *store_cf_name(enum hoard_cf cf);
char *store_path_join(const char *dir, const char *name);
int store_db_open(struct hoard_store *st, bool create, char *msg,
		  size_t msglen);

/* storecrc.c: true when RocksDB's CRC32C runs on the crc32 instruction
 * (checked against the library's own function on first use). */
bool store_crc_hw(void);

/* storewal.c */
/* db_open found a corrupt WAL record (-EUCLEAN): say so, keep a copy of
 * the logs, open skipping the damaged records and record the damage in the
 * settings (docs/FORMAT.md 2.1 `wal_damage`).  0 or -errno with errbuf
 * set. */
int store_wal_recover(struct hoard_store *st, const char *msg, char *errbuf,
		      size_t errlen);
/* Load an earlier open's `wal_damage` record into st->wal_damage. */
void store_wal_damage_load(struct hoard_store *st);
/* Flush every column family (waiting), so that the WAL holds nothing. */
int store_flush_all(struct hoard_store *st);
/* After a write failed with err_r: when the database is stopped by a
 * background error (a full disk), try to resume it; true when the caller
 * should retry the write once. */
bool store_try_resume(struct hoard_store *st, int err_r);

/* -ENOSPC when add more bytes of chunk data would leave the store's
 * filesystem less free space than the memtables need to be flushed plus a
 * reserve for deletes; else 0. */
int store_space_check(struct hoard_store *st, uint64_t add);

/* storeresume.cc: DB::Resume() (RocksDB 7.8's C API has no
 * rocksdb_resume); NULL or a malloc()ed error message. */
char *hoard_rdb_resume(rocksdb_t *db);
/* Install the listener that logs background errors and leaves recovery
 * from them to store_try_resume. */
void hoard_rdb_listen(rocksdb_options_t *o);
/* A point read into buf (cap bytes; *ret_len the value's length, also
 * when -ENOBUFS): 0, -ENOENT, -ENOBUFS, or -EIO with *ret_err set to
 * RocksDB's malloc()ed message (for store_rdb_err). */
int hoard_rdb_get_into(rocksdb_t *db, rocksdb_column_family_handle_t *cf,
		       const rocksdb_readoptions_t *ro, const void *key,
		       size_t klen, void *buf, size_t cap, size_t *ret_len,
		       char **ret_err);
/* Start a new info log dbdir/LOG (the last one kept as LOG.old.MICROS)
 * whose failed writes drop their line instead of aborting the process;
 * for an open for writing (a read-only open writes no info log). */
void hoard_rdb_info_log(rocksdb_options_t *o, const char *dbdir);

#endif
