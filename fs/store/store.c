/* SPDX-License-Identifier: MIT */
/*
 * store: the store directory and its RocksDB database (docs/FORMAT.md
 * sections 1 and 2).  With storewal.c and storeresume.cc (see
 * store-internal.h) the only files that include RocksDB.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "hoard/store.h"
#include "hoard/codec.h"
#include "hoard/util.h"
#include "hoard/chunker.h"
#include "store-internal.h"

static const char *const cf_names[HOARD_CF_COUNT] = {
	[HOARD_CF_DEFAULT] = "default",	    [HOARD_CF_VOLUMES] = "volumes",
	[HOARD_CF_INODES] = "inodes",	    [HOARD_CF_DIRENTS] = "dirents",
	[HOARD_CF_EXTENTS] = "extents",	    [HOARD_CF_CHUNKS] = "chunks",
	[HOARD_CF_CHUNKDATA] = "chunkdata", [HOARD_CF_XATTRS] = "xattrs",
	[HOARD_CF_ORPHANS] = "orphans",
};

const char *store_cf_name(enum hoard_cf cf)
{
	return cf_names[cf];
}

/* Count a failed write (hoard_store_write_failures); returns r. */
static int write_failed(struct hoard_store *st, int r)
{
	if (r < 0)
		__atomic_add_fetch(&st->write_failures, 1, __ATOMIC_RELAXED);
	return r;
}

uint64_t hoard_store_write_failures(struct hoard_store *st)
{
	return __atomic_load_n(&st->write_failures, __ATOMIC_RELAXED);
}

/* After the write (landed or not): a reader that saw the count before it
 * and sees the same count later read nothing this write changed. */
void store_written(struct hoard_store *st, enum hoard_cf cf)
{
	if (cf == HOARD_CF_DIRENTS)
		__atomic_add_fetch(&st->dent_writes, 1, __ATOMIC_RELEASE);
	else if (cf == HOARD_CF_CHUNKS)
		__atomic_add_fetch(&st->chunk_writes, 1, __ATOMIC_RELEASE);
}

uint64_t hoard_store_dent_writes(struct hoard_store *st)
{
	return __atomic_load_n(&st->dent_writes, __ATOMIC_ACQUIRE);
}

uint64_t hoard_store_chunk_writes(struct hoard_store *st)
{
	return __atomic_load_n(&st->chunk_writes, __ATOMIC_ACQUIRE);
}

/* Turn a RocksDB error string into -errno, logged once at debug level. */
int store_rdb_err(char *err, const char *what)
{
	int r = -EIO;

	if (!err)
		return 0;
	if (strstr(err, "No space"))
		r = -ENOSPC;
	else if (strstr(err, "lock file") || strstr(err, "lock hold") ||
		 strstr(err, "Resource temporarily"))
		r = -EBUSY; /* RocksDB's own LOCK file */
	hoard_log(LOG_DEBUG, "rocksdb %s: %s", what, err);
	rocksdb_free(err);
	return r;
}

static void seterr(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

char *store_path_join(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* Options for every column family; chunkdata keeps frames in blob files so
 * compaction moves 24-byte references, not chunk bytes. */
static rocksdb_options_t *make_cf_opts(struct hoard_store *st, enum hoard_cf cf)
{
	rocksdb_options_t *o = rocksdb_options_create();

	rocksdb_options_set_block_based_table_factory(o, st->table_opts);
	rocksdb_options_set_write_buffer_size(o, 16u << 20);
	/* A bloom filter over each memtable's keys: most lookups on a busy
	 * volume are of keys that are not there (a new name's dirent, a new
	 * chunk's record, security.capability on every first write), and
	 * without it each walks the whole skiplist (~1 us, measured as 28% of
	 * the daemon's CPU time creating small files). */
	rocksdb_options_set_memtable_prefix_bloom_size_ratio(o, 0.02);
	rocksdb_options_set_memtable_whole_key_filtering(o, 1);
	if (cf == HOARD_CF_CHUNKDATA) {
		rocksdb_options_set_enable_blob_files(o, 1);
		rocksdb_options_set_min_blob_size(o, 4096);
		rocksdb_options_set_blob_file_size(o, 256u << 20);
		rocksdb_options_set_blob_compression_type(
			o, rocksdb_no_compression);
		rocksdb_options_set_enable_blob_gc(o, 0);
		rocksdb_options_set_blob_gc_age_cutoff(o, 0.25);
		rocksdb_options_set_compression(o, rocksdb_no_compression);
		rocksdb_options_set_write_buffer_size(o, 64u << 20);
	} else {
		rocksdb_options_set_compression(o, rocksdb_lz4_compression);
	}
	return o;
}

static void store_free(struct hoard_store *st)
{
	if (!st)
		return;
	for (int i = 0; i < HOARD_CF_COUNT; i++) {
		if (st->cf[i])
			rocksdb_column_family_handle_destroy(st->cf[i]);
	}
	if (st->db)
		rocksdb_close(st->db);
	for (int i = 0; i < HOARD_CF_COUNT; i++) {
		if (st->cf_opts[i])
			rocksdb_options_destroy(st->cf_opts[i]);
	}
	if (st->db_opts)
		rocksdb_options_destroy(st->db_opts);
	if (st->table_opts)
		rocksdb_block_based_options_destroy(st->table_opts);
	if (st->block_cache)
		rocksdb_cache_destroy(st->block_cache);
	if (st->ropts)
		rocksdb_readoptions_destroy(st->ropts);
	if (st->ropts_frames)
		rocksdb_readoptions_destroy(st->ropts_frames);
	if (st->wopts)
		rocksdb_writeoptions_destroy(st->wopts);
	if (st->wopts_sync)
		rocksdb_writeoptions_destroy(st->wopts_sync);
	if (st->wopts_nowal)
		rocksdb_writeoptions_destroy(st->wopts_nowal);
	if (st->fopts)
		rocksdb_flushoptions_destroy(st->fopts);
	if (st->lock_fd >= 0)
		close(st->lock_fd); /* releases the flock */
	explicit_bzero(&st->key, sizeof(st->key));
	pthread_mutex_destroy(&st->resume_mu);
	store_pf_clear(st);
	pthread_mutex_destroy(&st->pf_mu);
	free(st->wal_damage);
	free(st->dir);
	free(st);
}

static struct hoard_store *store_alloc(const char *dir)
{
	struct hoard_store *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->lock_fd = -1;
	/* also links storecrc.c's CRC32C in (it is referenced only here) */
	hoard_log(LOG_DEBUG, "RocksDB's CRC32C: %s",
		  store_crc_hw() ? "crc32 instruction" : "RocksDB's own");
	pthread_mutex_init(&st->resume_mu, NULL);
	pthread_mutex_init(&st->pf_mu, NULL);
	st->pf_cf = -1;
	st->dir = strdup(dir);
	st->table_opts = rocksdb_block_based_options_create();
	st->block_cache = rocksdb_cache_create_lru(32u << 20);
	st->ropts = rocksdb_readoptions_create();
	/* Chunk frames are read with RocksDB's checksums on too: the keyed
	 * hash of each frame vouches for the frame, not for the table block
	 * that holds it, and Debian's RocksDB parses an unchecked damaged
	 * block with assertions that abort the process.  A damaged blob is
	 * then a read error (EIO, as a frame that fails its hash). */
	st->ropts_frames = rocksdb_readoptions_create();
	st->wopts = rocksdb_writeoptions_create();
	st->wopts_sync = rocksdb_writeoptions_create();
	st->wopts_nowal = rocksdb_writeoptions_create();
	rocksdb_writeoptions_disable_WAL(st->wopts_nowal, 1);
	st->fopts = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(st->fopts, 1);
	if (!st->dir) {
		store_free(st);
		return NULL;
	}
	rocksdb_block_based_options_set_block_cache(st->table_opts,
						    st->block_cache);
	/*
	 * Point reads (a LOOKUP is two: a directory entry, then an inode;
	 * docs/BENCHMARKS.md).  Each table's index and bloom filter stay in
	 * its reader instead of going through the block cache: a cached
	 * index and filter cost two cache lookups per table per read (20% of
	 * a read's instructions).  Their memory is outside the 32 MiB cache
	 * (a filter is 10 bits per key: ~1.2 MB per million keys).  Data
	 * blocks carry a hash index, so a read finds its key without the
	 * binary search and linear scan between restart points; tables
	 * written before keep their binary search (RocksDB reads both).
	 * The restart interval stays RocksDB's 16 and the hash ratio 0.75: a
	 * restart point every 4 keys with ratio 0.4 cut a LOOKUP's
	 * instructions by 9% but made the tables ~6% larger, and a cold
	 * walk, which reads its blocks from the disk, was slower in three of
	 * three A/B rounds (docs/BENCHMARKS.md).
	 */
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(
		st->table_opts, 0);
	rocksdb_block_based_options_set_data_block_index_type(
		st->table_opts,
		rocksdb_block_based_table_data_block_index_type_binary_search_and_hash);
	rocksdb_block_based_options_set_data_block_hash_ratio(st->table_opts,
							      0.75);
	rocksdb_block_based_options_set_filter_policy(
		st->table_opts, rocksdb_filterpolicy_create_bloom(10));
	rocksdb_writeoptions_set_sync(st->wopts_sync, 1);
	st->db_opts = rocksdb_options_create();
	rocksdb_options_set_create_missing_column_families(st->db_opts, 1);
	/* WAL recovery (docs/FORMAT.md 2.6): a torn last record is a write
	 * that was never acknowledged and is dropped quietly; a record that
	 * fails its checksum anywhere else makes the open fail, and
	 * store_wal_recover() then says so, records the damage and opens
	 * skipping the damaged records.  Paranoid checks make RocksDB report
	 * such corruption instead of logging and ignoring it. */
	rocksdb_options_set_wal_recovery_mode(
		st->db_opts, rocksdb_tolerate_corrupted_tail_records_recovery);
	rocksdb_options_set_paranoid_checks(st->db_opts, 1);
	hoard_rdb_listen(st->db_opts);
	rocksdb_options_increase_parallelism(st->db_opts, 2);
	rocksdb_options_set_max_open_files(st->db_opts, 512);
	rocksdb_options_set_keep_log_file_num(st->db_opts, 3);
	rocksdb_options_set_max_total_wal_size(st->db_opts, 256u << 20);
	/* RocksDB fadvise(RANDOM)s every file it opens by default, which
	 * turns off the kernel's readahead on blob files: a cold sequential
	 * read of a file then fetched each 64 KiB chunk with its own disk
	 * read. */
	rocksdb_options_set_advise_random_on_open(st->db_opts, 0);
	/* All memtables together (a write buffer manager): without a cap,
	 * nine column families of 16-64 MiB write buffers, two each, could
	 * hold hundreds of MiB during an ingest.  32 MiB: a large file's
	 * frames are flushed at its commit anyway (file.c), and the daemon's
	 * peak RSS in the benchmark's ingest was 178-235 MB with 64. */
	rocksdb_options_set_db_write_buffer_size(st->db_opts, 32u << 20);
	for (int i = 0; i < HOARD_CF_COUNT; i++)
		st->cf_opts[i] = make_cf_opts(st, i);
	return st;
}

/* Open the database; on failure msg gets RocksDB's message, and a
 * corruption RocksDB found is -EUCLEAN (the caller turns it into -EIO). */
int store_db_open(struct hoard_store *st, bool create, char *msg, size_t msglen)
{
	const rocksdb_options_t *opts[HOARD_CF_COUNT];
	char *dbdir = store_path_join(st->dir, "db");
	char *err = NULL;
	bool corrupt;
	int r;

	if (!dbdir)
		return -ENOMEM;
	for (int i = 0; i < HOARD_CF_COUNT; i++)
		opts[i] = st->cf_opts[i];
	rocksdb_options_set_create_if_missing(st->db_opts, create);
	if (st->read_only) {
		/* writes nothing in db/: no info LOG, MANIFEST, OPTIONS, WAL
		 * or flush of the WAL's records (they are read into the
		 * memtables) */
		st->db = rocksdb_open_for_read_only_column_families(
			st->db_opts, dbdir, HOARD_CF_COUNT, cf_names, opts,
			st->cf, 0, &err);
	} else {
		hoard_rdb_info_log(st->db_opts, dbdir);
		st->db = rocksdb_open_column_families(st->db_opts, dbdir,
						      HOARD_CF_COUNT, cf_names,
						      opts, st->cf, &err);
	}
	free(dbdir);
	if (!err)
		return 0;
	st->db = NULL;
	for (int i = 0; i < HOARD_CF_COUNT; i++)
		st->cf[i] = NULL;
	if (msg)
		snprintf(msg, msglen, "%s", err);
	corrupt = !strncmp(err, "Corruption", 10);
	r = store_rdb_err(err, "open");
	return r == -EIO && corrupt ? -EUCLEAN : r;
}

/* Take dir/lock (created if missing) and write our pid into it. */
static int take_lock(struct hoard_store *st, char *errbuf, size_t errlen)
{
	char *p = store_path_join(st->dir, "lock");
	char pid[32];
	int n, r;

	if (!p)
		return -ENOMEM;
	st->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(p);
	if (st->lock_fd < 0) {
		seterr(errbuf, errlen, "cannot open %s/lock: %s", st->dir,
		       strerror(errno));
		return -errno;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno, owner;

		if (e != EWOULDBLOCK)
			return -e;
		owner = hoard_store_lock_owner(st->dir);
		if (owner)
			seterr(errbuf, errlen,
			       "store %s is in use by another process (pid %d)",
			       st->dir, owner);
		else
			seterr(errbuf, errlen,
			       "store %s is in use by another process",
			       st->dir);
		return -EBUSY;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	/* overwrite, then cut: a lock file that held a pid needs no new
	 * block, so this works on a full filesystem too */
	r = hoard_pwrite_full(st->lock_fd, pid, (size_t)n, 0);
	if (r == 0 && ftruncate(st->lock_fd, n) < 0)
		r = -errno;
	if (r < 0) {
		int e = -r;

		seterr(errbuf, errlen, "cannot write %s/lock: %s", st->dir,
		       strerror(e));
		return -e;
	}
	return 0;
}

int hoard_store_lock_owner(const char *dir)
{
	char *p = store_path_join(dir, "lock");
	char buf[32] = {0};
	int fd, pid = 0;

	if (!p)
		return 0;
	fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (fd < 0)
		return 0;
	/* Only a held lock means a live owner. */
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 &&
	    read(fd, buf, sizeof(buf) - 1) > 0)
		pid = atoi(buf);
	close(fd);
	return pid;
}

static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty;
}

/* Read the marker; returns the format number, 0 when absent, or -errno. */
static int read_marker(const char *dir)
{
	char *p = store_path_join(dir, "HOARD");
	char buf[64] = {0};
	int fd, fmt;
	ssize_t n;

	if (!p)
		return -ENOMEM;
	fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || sscanf(buf, "hoard-store %d", &fmt) != 1 || fmt <= 0)
		return -EMEDIUMTYPE;
	return fmt;
}

static int write_marker(const char *dir)
{
	char *p = store_path_join(dir, "HOARD"),
	     *tmp = store_path_join(dir, "HOARD.tmp");
	char line[32];
	int fd, n, r = 0;

	if (!p || !tmp) {
		r = -ENOMEM;
		goto out_free;
	}
	n = snprintf(line, sizeof(line), "hoard-store %d\n",
		     HOARD_STORE_FORMAT_INIT);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		goto out_free;
	}
	if (hoard_pwrite_full(fd, line, (size_t)n, 0) < 0 || fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r && rename(tmp, p) < 0)
		r = -errno;
out_free:
	free(p);
	free(tmp);
	return r;
}

static int mkdir_p(const char *dir, mode_t mode)
{
	char *copy = strdup(dir);
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (char *s = copy + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			r = -errno;
		*s = '/';
		if (r)
			break;
	}
	if (!r && mkdir(copy, mode) < 0 && errno != EEXIST)
		r = -errno;
	free(copy);
	return r;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

/* Undo a failed init: the directory was empty, so remove what we made. */
static void remove_partial_store(const char *dir)
{
	static const char *const names[] = {"db", "lock", "HOARD.tmp"};
	char *p;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		p = store_path_join(dir, names[i]);
		if (p)
			nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(p);
	}
}

static int put_u32(struct hoard_batch *b, const char *k, uint32_t v)
{
	uint8_t buf[4];

	hoard_put_be32(buf, v);
	hoard_batch_put(b, HOARD_CF_DEFAULT, k, strlen(k), buf, 4);
	return 0;
}

static int write_settings(struct hoard_store *st,
			  const struct hoard_store_init_opts *o)
{
	struct hoard_batch *b = hoard_batch_new(st);
	uint8_t ino[8];
	int r;

	if (!b)
		return -ENOMEM;
	put_u32(b, "format", HOARD_STORE_FORMAT);
	put_u32(b, "chunker", HOARD_CHUNKER_VERSION);
	put_u32(b, "zstd_level", (uint32_t)o->zstd_level);
	hoard_put_be64(ino, 16);
	hoard_batch_put(b, HOARD_CF_DEFAULT, "next_ino", 8, ino, 8);
	hoard_batch_put(b, HOARD_CF_DEFAULT, "secret", 6, st->key.secret,
			HOARD_SECRET_SIZE);
	r = hoard_store_write(st, b, true);
	hoard_batch_free(b);
	return r;
}

int hoard_store_init(const char *dir, const struct hoard_store_init_opts *o,
		     char *errbuf, size_t errlen)
{
	struct hoard_store_init_opts def = {.zstd_level = 1};
	struct hoard_store *st;
	struct stat sb;
	int r;

	if (!o)
		o = &def;
	if (o->zstd_level < 0 || o->zstd_level > 19) {
		seterr(errbuf, errlen, "zstd level %d out of range 0..19",
		       o->zstd_level);
		return -EINVAL;
	}
	if (stat(dir, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
		seterr(errbuf, errlen, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	r = mkdir_p(dir, 0700);
	if (r < 0) {
		seterr(errbuf, errlen, "cannot create %s: %s", dir,
		       strerror(-r));
		return r;
	}
	r = read_marker(dir);
	if (r == -EMEDIUMTYPE) {
		seterr(errbuf, errlen,
		       "%s has a HOARD marker that is not a hoard store's; "
		       "refusing to initialize it",
		       dir);
		return -EEXIST;
	}
	if (r < 0) {
		seterr(errbuf, errlen, "cannot read %s/HOARD: %s", dir,
		       strerror(-r));
		return r;
	}
	if (r != 0) {
		seterr(errbuf, errlen, "%s already holds a hoard store", dir);
		return -EEXIST;
	}
	r = dir_is_empty(dir);
	if (r <= 0) {
		seterr(errbuf, errlen,
		       "%s is not empty and not a hoard store; refusing to "
		       "initialize it",
		       dir);
		return r < 0 ? r : -ENOTEMPTY;
	}
	st = store_alloc(dir);
	if (!st)
		return -ENOMEM;
	r = take_lock(st, errbuf, errlen);
	if (r < 0)
		goto out_free;
	if (o->secret)
		hoard_key_init(&st->key, o->secret);
	else if ((r = hoard_key_generate(&st->key)) < 0)
		goto out_free;
	r = store_db_open(st, true, NULL, 0);
	if (r == 0)
		r = write_settings(st, o);
	if (r == 0)
		r = write_marker(dir);
	if (r < 0)
		seterr(errbuf, errlen, "cannot create store in %s: %s", dir,
		       strerror(-r));
out_free:
	store_free(st);
	if (r < 0 && r != -EBUSY)
		remove_partial_store(dir); /* it was empty when we started */
	return r;
}

static int get_u32(struct hoard_store *st, const char *k, uint32_t *ret)
{
	uint8_t buf[4];
	size_t n;
	int r = hoard_store_get_into(st, HOARD_CF_DEFAULT, k, strlen(k), buf,
				     sizeof(buf), &n);

	if (r < 0)
		return r;
	if (n != 4)
		return -EBADMSG;
	*ret = hoard_get_be32(buf);
	return 0;
}

static int load_settings(struct hoard_store *st, char *errbuf, size_t errlen)
{
	uint8_t secret[HOARD_SECRET_SIZE];
	uint32_t fmt, level, chunker;
	size_t n;
	int r;

	r = get_u32(st, "format", &fmt);
	if (r == 0)
		r = get_u32(st, "zstd_level", &level);
	if (r == 0)
		r = get_u32(st, "chunker", &chunker);
	if (r == 0)
		r = hoard_store_get_into(st, HOARD_CF_DEFAULT, "secret", 6,
					 secret, sizeof(secret), &n);
	if (r == 0 && n != HOARD_SECRET_SIZE)
		r = -EBADMSG;
	if (r < 0) {
		seterr(errbuf, errlen,
		       "store %s is damaged: its settings cannot be read (%s)",
		       st->dir, strerror(-r));
		return -EIO;
	}
	if (fmt > HOARD_STORE_FORMAT || chunker != HOARD_CHUNKER_VERSION) {
		seterr(errbuf, errlen,
		       "store %s has format %u (chunker %u); this hoard "
		       "supports format %d (chunker %d)",
		       st->dir, fmt, chunker, HOARD_STORE_FORMAT,
		       HOARD_CHUNKER_VERSION);
		return -EPROTONOSUPPORT;
	}
	hoard_key_init(&st->key, secret);
	explicit_bzero(secret, sizeof(secret));
	st->zstd_level = (int)level;
	return 0;
}

/*
 * An open for writing needs room: RocksDB writes its info LOG (~150 KB of
 * options at each open), an OPTIONS file and a MANIFEST before the first
 * record, and Debian's RocksDB 7.8 aborts the process (an assertion in
 * WritableFileWriter) when its info LOG meets a full disk.  Below this
 * much free space the open is refused with one line instead.
 */
#define OPEN_MIN_FREE (1u << 20)

static int check_room(struct hoard_store *st, char *errbuf, size_t errlen)
{
	struct statvfs sv;
	unsigned long long avail;

	if (statvfs(st->dir, &sv) < 0)
		return 0; /* RocksDB's own open says what is wrong */
	avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	if (avail >= OPEN_MIN_FREE)
		return 0;
	seterr(errbuf, errlen,
	       "store %s: no space left on its filesystem (%llu KiB free, "
	       "%u MiB needed to open it for writing); free some space and "
	       "run again",
	       st->dir, avail >> 10, OPEN_MIN_FREE >> 20);
	return -ENOSPC;
}

static int store_open(const char *dir, bool read_only,
		      struct hoard_store **ret_store, char *errbuf,
		      size_t errlen)
{
	struct hoard_store *st;
	char msg[512] = "";
	struct stat sb;
	int r;

	if (stat(dir, &sb) < 0) {
		int e = errno;

		if (e != ENOENT) {
			seterr(errbuf, errlen, "cannot access %s: %s", dir,
			       strerror(e));
			return -e;
		}
		seterr(errbuf, errlen,
		       "no hoard store at %s (create one with: hoard init "
		       "--store %s)",
		       dir, dir);
		return -ENOENT;
	}
	if (!S_ISDIR(sb.st_mode)) {
		seterr(errbuf, errlen, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	r = read_marker(dir);
	if (r == 0 && dir_is_empty(dir) == 1) {
		seterr(errbuf, errlen,
		       "%s is empty, not a hoard store (create one with: "
		       "hoard init --store %s)",
		       dir, dir);
		return -ENOENT;
	}
	if (r == 0 || r == -EMEDIUMTYPE) {
		seterr(errbuf, errlen,
		       "%s is not a hoard store (no valid HOARD marker)", dir);
		return -EMEDIUMTYPE;
	}
	if (r < 0) {
		seterr(errbuf, errlen, "cannot read %s/HOARD: %s", dir,
		       strerror(-r));
		return r;
	}
	if (r > HOARD_STORE_FORMAT) {
		seterr(errbuf, errlen,
		       "store %s has format %d, newer than this hoard supports "
		       "(%d); upgrade hoard",
		       dir, r, HOARD_STORE_FORMAT);
		return -EPROTONOSUPPORT;
	}
	st = store_alloc(dir);
	if (!st)
		return -ENOMEM;
	r = take_lock(st, errbuf, errlen);
	if (r < 0)
		goto out_free;
	st->read_only = read_only;
	if (!read_only) {
		r = check_room(st, errbuf, errlen);
		if (r < 0)
			goto out_free;
	}
	r = store_db_open(st, false, msg, sizeof(msg));
	if (r == -EUCLEAN && st->read_only) {
		/* damaged WAL records: recording the damage takes a write */
		st->read_only = false;
		r = check_room(st, errbuf, errlen);
		if (r < 0)
			goto out_free;
		r = store_db_open(st, false, msg, sizeof(msg));
	}
	if (r == -EUCLEAN)
		r = store_wal_recover(st, msg, errbuf, errlen);
	else if (r < 0)
		seterr(errbuf, errlen,
		       "cannot open the database of store %s: %s", dir, msg);
	if (r < 0) {
		r = r == -EBUSY ? -EBUSY : -EIO;
		goto out_free;
	}
	if (!st->wal_damage)
		store_wal_damage_load(st);
	r = load_settings(st, errbuf, errlen);
	if (r < 0)
		goto out_free;
	*ret_store = st;
	return 0;
out_free:
	store_free(st);
	return r;
}

int hoard_store_open(const char *dir, struct hoard_store **ret_store,
		     char *errbuf, size_t errlen)
{
	return store_open(dir, false, ret_store, errbuf, errlen);
}

int hoard_store_open_readonly(const char *dir, struct hoard_store **ret_store,
			      char *errbuf, size_t errlen)
{
	return store_open(dir, true, ret_store, errbuf, errlen);
}

void hoard_store_close(struct hoard_store *st)
{
	char *err = NULL;

	if (!st)
		return;
	if (st->db && !st->read_only) {
		/* memtables to their files, so that a damaged WAL can lose
		 * nothing that was written before a clean close */
		if (store_flush_all(st) < 0) {
			rocksdb_flush_wal(st->db, 1, &err);
			store_rdb_err(err, "flush_wal");
		}
	}
	store_free(st);
}

const char *hoard_store_dir(const struct hoard_store *st)
{
	return st->dir;
}

const struct hoard_key *hoard_store_key(const struct hoard_store *st)
{
	return &st->key;
}

int hoard_store_zstd_level(const struct hoard_store *st)
{
	return st->zstd_level;
}

/*
 * RocksDB counts into a thread-local perf context on every read unless the
 * thread's perf level says not to (the default counts): ~1,000
 * instructions of a point read's ~12,000 (thread-local storage in a
 * shared library: __tls_get_addr and the context's init check).  Nothing
 * here reads those counters, so each thread that reads turns them off
 * once.
 */
static __thread bool perf_off;

static inline void store_perf_off(void)
{
	if (__builtin_expect(!perf_off, 0)) {
		rocksdb_set_perf_level(1); /* rocksdb::PerfLevel::kDisable */
		perf_off = true;
	}
}

int hoard_store_get_into(struct hoard_store *st, enum hoard_cf cf,
			 const void *key, size_t klen, void *buf, size_t cap,
			 size_t *ret_len)
{
	char *err = NULL;
	size_t n = 0;
	int r;

	store_perf_off();
	r = hoard_rdb_get_into(st->db, st->cf[cf], st->ropts, key, klen, buf,
			       cap, &n, &err);
	if (err)
		return store_rdb_err(err, "get");
	if (ret_len && r != -ENOENT)
		*ret_len = n;
	return r;
}

int hoard_store_get(struct hoard_store *st, enum hoard_cf cf, const void *key,
		    size_t klen, void **ret_val, size_t *ret_len)
{
	char *err = NULL, *v;
	size_t n;

	store_perf_off();
	v = rocksdb_get_cf(
		st->db, cf == HOARD_CF_CHUNKDATA ? st->ropts_frames : st->ropts,
		st->cf[cf], key, klen, &n, &err);
	if (err)
		return store_rdb_err(err, "get");
	if (!v)
		return -ENOENT;
	*ret_val = v; /* rocksdb_get_cf returns malloc()ed memory */
	*ret_len = n;
	return 0;
}

int hoard_store_get_pinned(struct hoard_store *st, enum hoard_cf cf,
			   const void *key, size_t klen,
			   int (*fn)(void *ud, const void *val, size_t len),
			   void *ud)
{
	rocksdb_pinnableslice_t *p;
	char *err = NULL;
	const char *v;
	size_t n;
	int r;

	store_perf_off();
	p = rocksdb_get_pinned_cf(
		st->db, cf == HOARD_CF_CHUNKDATA ? st->ropts_frames : st->ropts,
		st->cf[cf], key, klen, &err);
	if (err)
		return store_rdb_err(err, "get");
	if (!p)
		return -ENOENT;
	v = rocksdb_pinnableslice_value(p, &n);
	r = v ? fn(ud, v, n) : -ENOENT;
	rocksdb_pinnableslice_destroy(p);
	return r;
}

int hoard_store_pin(struct hoard_store *st, enum hoard_cf cf, const void *key,
		    size_t klen, struct hoard_pinned **ret_pin,
		    const void **ret_val, size_t *ret_len)
{
	rocksdb_pinnableslice_t *p;
	char *err = NULL;
	const char *v;
	size_t n;

	store_perf_off();
	p = rocksdb_get_pinned_cf(
		st->db, cf == HOARD_CF_CHUNKDATA ? st->ropts_frames : st->ropts,
		st->cf[cf], key, klen, &err);
	if (err)
		return store_rdb_err(err, "get");
	if (!p)
		return -ENOENT;
	v = rocksdb_pinnableslice_value(p, &n);
	if (!v) {
		rocksdb_pinnableslice_destroy(p);
		return -ENOENT;
	}
	*ret_pin = (struct hoard_pinned *)p;
	*ret_val = v;
	*ret_len = n;
	return 0;
}

void hoard_store_unpin(struct hoard_pinned *pin)
{
	if (pin)
		rocksdb_pinnableslice_destroy((rocksdb_pinnableslice_t *)pin);
}

int hoard_store_exists(struct hoard_store *st, enum hoard_cf cf,
		       const void *key, size_t klen)
{
	uint8_t dummy[1];
	size_t n;
	int r = hoard_store_get_into(st, cf, key, klen, dummy, 0, &n);

	if (r == 0 || r == -ENOBUFS)
		return 1;
	return r == -ENOENT ? 0 : r;
}

int hoard_store_put(struct hoard_store *st, enum hoard_cf cf, const void *key,
		    size_t klen, const void *val, size_t vlen)
{
	char *err = NULL;

	int r;

	do {
		rocksdb_put_cf(st->db, st->wopts, st->cf[cf], key, klen, val,
			       vlen, &err);
		r = store_rdb_err(err, "put");
		err = NULL;
	} while (r < 0 && store_try_resume(st, r));
	store_written(st, cf);
	return write_failed(st, r);
}

int hoard_store_put_nowal(struct hoard_store *st, enum hoard_cf cf,
			  const void *key, size_t klen, const void *val,
			  size_t vlen)
{
	char *err = NULL;

	int r = cf == HOARD_CF_CHUNKDATA ? store_space_check(st, vlen) : 0;

	if (r < 0)
		return write_failed(st, r);
	do {
		rocksdb_put_cf(st->db, st->wopts_nowal, st->cf[cf], key, klen,
			       val, vlen, &err);
		r = store_rdb_err(err, "put");
		err = NULL;
	} while (r < 0 && store_try_resume(st, r));
	store_written(st, cf);
	return write_failed(st, r);
}

int hoard_store_flush(struct hoard_store *st, enum hoard_cf cf)
{
	char *err = NULL;

	int r;

	do {
		rocksdb_flush_cf(st->db, st->fopts, st->cf[cf], &err);
		r = store_rdb_err(err, "flush");
		err = NULL;
	} while (r < 0 && store_try_resume(st, r));
	return write_failed(st, r);
}

struct hoard_batch *hoard_batch_new(struct hoard_store *st)
{
	struct hoard_batch *b = malloc(sizeof(*b));

	if (!b)
		return NULL;
	b->st = st;
	b->data_bytes = 0;
	b->dirents = false;
	b->chunks = false;
	b->wb = rocksdb_writebatch_create();
	return b;
}

void hoard_batch_free(struct hoard_batch *b)
{
	if (!b)
		return;
	rocksdb_writebatch_destroy(b->wb);
	free(b);
}

void hoard_batch_put(struct hoard_batch *b, enum hoard_cf cf, const void *key,
		     size_t klen, const void *val, size_t vlen)
{
	rocksdb_writebatch_put_cf(b->wb, b->st->cf[cf], key, klen, val, vlen);
	b->dirents |= cf == HOARD_CF_DIRENTS;
	b->chunks |= cf == HOARD_CF_CHUNKS;
	if (cf == HOARD_CF_CHUNKDATA)
		b->data_bytes += vlen;
}

void hoard_batch_delete(struct hoard_batch *b, enum hoard_cf cf,
			const void *key, size_t klen)
{
	rocksdb_writebatch_delete_cf(b->wb, b->st->cf[cf], key, klen);
	b->dirents |= cf == HOARD_CF_DIRENTS;
	b->chunks |= cf == HOARD_CF_CHUNKS;
}

size_t hoard_batch_count(const struct hoard_batch *b)
{
	return (size_t)rocksdb_writebatch_count(b->wb);
}

int hoard_store_write(struct hoard_store *st, struct hoard_batch *b, bool sync)
{
	char *err = NULL;

	int r = b->data_bytes ? store_space_check(st, b->data_bytes) : 0;

	if (r < 0)
		return write_failed(st, r);
	do {
		rocksdb_write(st->db, sync ? st->wopts_sync : st->wopts, b->wb,
			      &err);
		r = store_rdb_err(err, "write");
		err = NULL;
	} while (r < 0 && store_try_resume(st, r));
	if (b->dirents)
		store_written(st, HOARD_CF_DIRENTS);
	if (b->chunks)
		store_written(st, HOARD_CF_CHUNKS);
	return write_failed(st, r);
}

int hoard_store_sync(struct hoard_store *st)
{
	char *err = NULL;

	int r;

	do {
		rocksdb_flush_wal(st->db, 1, &err);
		r = store_rdb_err(err, "sync");
		err = NULL;
	} while (r < 0 && store_try_resume(st, r));
	return write_failed(st, r);
}

struct hoard_snapshot *hoard_store_snapshot(struct hoard_store *st)
{
	return (struct hoard_snapshot *)rocksdb_create_snapshot(st->db);
}

void hoard_store_snapshot_free(struct hoard_store *st,
			       struct hoard_snapshot *snap)
{
	if (snap)
		rocksdb_release_snapshot(st->db,
					 (const rocksdb_snapshot_t *)snap);
}

static struct hoard_iter *iter_new(struct hoard_store *st, enum hoard_cf cf,
				   const void *prefix, size_t plen,
				   const struct hoard_snapshot *snap,
				   const void *key, size_t klen, size_t ahead);

struct hoard_iter *hoard_iter_new(struct hoard_store *st, enum hoard_cf cf,
				  const void *prefix, size_t plen)
{
	return hoard_iter_new_at(st, cf, prefix, plen, NULL);
}

struct hoard_iter *hoard_iter_new_at(struct hoard_store *st, enum hoard_cf cf,
				     const void *prefix, size_t plen,
				     const struct hoard_snapshot *snap)
{
	return iter_new(st, cf, prefix, plen, snap, prefix, plen, 0);
}

struct hoard_iter *hoard_iter_new_from(struct hoard_store *st, enum hoard_cf cf,
				       const void *prefix, size_t plen,
				       const void *key, size_t klen,
				       size_t ahead)
{
	return iter_new(st, cf, prefix, plen, NULL, key, klen, ahead);
}

static struct hoard_iter *iter_new(struct hoard_store *st, enum hoard_cf cf,
				   const void *prefix, size_t plen,
				   const struct hoard_snapshot *snap,
				   const void *key, size_t klen, size_t ahead)
{
	struct hoard_iter *it = calloc(1, sizeof(*it));

	if (!it)
		return NULL;
	it->ropts = rocksdb_readoptions_create();
	rocksdb_readoptions_set_fill_cache(it->ropts, 0);
	if (ahead)
		rocksdb_readoptions_set_readahead_size(it->ropts, ahead);
	if (snap)
		rocksdb_readoptions_set_snapshot(
			it->ropts, (const rocksdb_snapshot_t *)snap);
	/* checksums on for every family, frames too (see ropts_frames): a
	 * damaged blob ends the scan with -EBADMSG (hoard_iter_status) */
	store_perf_off();
	it->it = rocksdb_create_iterator_cf(st->db, it->ropts, st->cf[cf]);
	if (plen) {
		it->prefix = malloc(plen);
		if (!it->prefix) {
			hoard_iter_free(it);
			return NULL;
		}
		memcpy(it->prefix, prefix, plen);
		it->plen = plen;
	}
	rocksdb_iter_seek(it->it, (const char *)key, klen);
	return it;
}

void hoard_iter_free(struct hoard_iter *it)
{
	if (!it)
		return;
	if (it->it)
		rocksdb_iter_destroy(it->it);
	if (it->ropts)
		rocksdb_readoptions_destroy(it->ropts);
	free(it->prefix);
	free(it);
}

void hoard_iter_seek(struct hoard_iter *it, const void *key, size_t klen)
{
	rocksdb_iter_seek(it->it, key, klen);
}

void hoard_iter_seek_for_prev(struct hoard_iter *it, const void *key,
			      size_t klen)
{
	rocksdb_iter_seek_for_prev(it->it, key, klen);
}

int hoard_iter_status(struct hoard_iter *it)
{
	char *err = NULL;

	rocksdb_iter_get_error(it->it, &err);
	/* a blob (a value stored apart from its table) that fails its
	 * checksum: the tables themselves read fine */
	if (err && (strstr(err, "reading blob") || strstr(err, "Blob CRC") ||
		    strstr(err, "Header CRC mismatch"))) {
		hoard_log(LOG_DEBUG, "rocksdb iterate: %s", err);
		rocksdb_free(err);
		return -EBADMSG;
	}
	return store_rdb_err(err, "iterate");
}

bool hoard_iter_valid(struct hoard_iter *it)
{
	size_t n;
	const char *k;

	if (!rocksdb_iter_valid(it->it))
		return false;
	if (!it->plen)
		return true;
	k = rocksdb_iter_key(it->it, &n);
	return n >= it->plen && memcmp(k, it->prefix, it->plen) == 0;
}

void hoard_iter_next(struct hoard_iter *it)
{
	rocksdb_iter_next(it->it);
}

const uint8_t *hoard_iter_key(struct hoard_iter *it, size_t *ret_len)
{
	return (const uint8_t *)rocksdb_iter_key(it->it, ret_len);
}

const uint8_t *hoard_iter_value(struct hoard_iter *it, size_t *ret_len)
{
	return (const uint8_t *)rocksdb_iter_value(it->it, ret_len);
}

int hoard_store_scan(struct hoard_store *st, enum hoard_cf cf,
		     const void *prefix, size_t plen, hoard_scan_fn fn,
		     void *ud)
{
	struct hoard_iter *it = hoard_iter_new(st, cf, prefix, plen);
	int r = 0;

	if (!it)
		return -ENOMEM;
	for (; r == 0 && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = hoard_iter_key(it, &kl);
		const uint8_t *v = hoard_iter_value(it, &vl);

		r = fn(ud, k, kl, v, vl);
	}
	if (r == 0)
		r = hoard_iter_status(it);
	hoard_iter_free(it);
	return r;
}

uint64_t hoard_store_cf_size(struct hoard_store *st, enum hoard_cf cf)
{
	static const char *const props[] = {
		"rocksdb.total-sst-files-size",
		"rocksdb.total-blob-file-size",
	};
	uint64_t total = 0, v;

	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
		if (rocksdb_property_int_cf(st->db, st->cf[cf], props[i], &v) ==
		    0)
			total += v;
	}
	return total;
}

void hoard_store_compact(struct hoard_store *st)
{
	for (int i = 0; i < HOARD_CF_COUNT; i++)
		rocksdb_compact_range_cf(st->db, st->cf[i], NULL, 0, NULL, 0);
}

/*
 * Space reclamation (hoard gc).  RocksDB 7.8's C API has no per-compaction
 * blob GC settings (rocksdb_compactoptions_set_blob_garbage_collection_*
 * came later), so the chunkdata family's mutable options are changed for the
 * duration: an age cutoff of 1.0 makes a compaction relocate the live blobs
 * of every blob file, and a forced bottommost compaction drops the
 * tombstones, after which no SST refers to the old blob files and RocksDB
 * deletes them.  The options are set back to make_cf_opts()'s values.
 */
int hoard_store_gc(struct hoard_store *st)
{
	static const char *const keys[] = {
		"enable_blob_garbage_collection",
		"blob_garbage_collection_age_cutoff",
	};
	static const char *const gc_vals[] = {"true", "1.0"};
	static const char *const normal_vals[] = {"false", "0.25"};
	rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
	rocksdb_column_family_handle_t *data = st->cf[HOARD_CF_CHUNKDATA];
	char *err = NULL;
	int r;

	if (!co)
		return -ENOMEM;
	rocksdb_set_options_cf(st->db, data, 2, keys, gc_vals, &err);
	r = store_rdb_err(err, "set_options (blob gc)");
	if (r < 0)
		goto out_free_co;
	/* 2 = BottommostLevelCompaction::kForce */
	rocksdb_compactoptions_set_bottommost_level_compaction(co, 2);
	rocksdb_compactoptions_set_exclusive_manual_compaction(co, 0);
	for (int i = 0; i < HOARD_CF_COUNT; i++)
		rocksdb_compact_range_cf_opt(st->db, st->cf[i], co, NULL, 0,
					     NULL, 0);
	err = NULL;
	rocksdb_set_options_cf(st->db, data, 2, keys, normal_vals, &err);
	r = store_rdb_err(err, "set_options (restore)");
out_free_co:
	rocksdb_compactoptions_destroy(co);
	return r;
}
