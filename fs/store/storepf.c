/* SPDX-License-Identifier: MIT */
/*
 * storepf: the table files of a key range read ahead into the page cache
 * (hoard_store_prefetch).  A LOOKUP walk (fs/core/dentpf.c) reads a
 * directory's entries with one iterator per window; on a cold page cache
 * each directory's first window otherwise costs a small synchronous disk
 * read per table, a few hundred per walk of a hundred directories, each
 * a wait on the LOOKUP's path.  Advising the kernel to read the tables
 * that hold the range (POSIX_FADV_WILLNEED: asynchronous, large reads)
 * turns those into page cache hits.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "hoard/store.h"
#include "hoard/util.h"
#include "store-internal.h"

/* The kernel reads at most its readahead window (read_ahead_kb, often
 * 128 KiB) per WILLNEED call: the file is advised in pieces of this. */
#define PF_PIECE (128u << 10)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* memcmp, then length: the store's key order */
static int key_cmp(const char *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al > bl) - (al < bl);
}

/* Whether file number num was advised within the last again_ns; if not,
 * it is recorded as advised now (the oldest record makes room). */
static bool pf_recent(struct hoard_store *st, uint64_t num, uint64_t again_ns)
{
	uint64_t now = now_ns();
	size_t old = 0;
	bool recent = false;

	pthread_mutex_lock(&st->pf_mu);
	for (size_t i = 0; i < STORE_PF_FILES; i++) {
		if (st->pf_num[i] == num) {
			old = i;
			recent = now - st->pf_at[i] < again_ns;
			break;
		}
		if (st->pf_at[i] < st->pf_at[old])
			old = i;
	}
	if (!recent) {
		st->pf_num[old] = num;
		st->pf_at[old] = now;
	}
	pthread_mutex_unlock(&st->pf_mu);
	return recent;
}

static void advise(const char *dbdir, const char *name, uint64_t size)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dbdir, name) >=
	    (int)sizeof(path))
		return;
	/* a file a compaction deleted since: nothing to read */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (uint64_t off = 0; off < size; off += PF_PIECE)
		(void)posix_fadvise(fd, (off_t)off, PF_PIECE,
				    POSIX_FADV_WILLNEED);
	close(fd);
}

int64_t hoard_store_prefetch(struct hoard_store *st, enum hoard_cf cf,
			     const void *lo, size_t lolen, const void *hi,
			     size_t hilen, uint64_t file_max,
			     uint64_t total_max, uint64_t again_ns)
{
	const rocksdb_livefiles_t *lf;
	const char *want;
	char *dbdir;
	int64_t total = 0;
	int n;

	if (!st->db || st->read_only)
		return 0;
	want = store_cf_name(cf);
	dbdir = store_path_join(st->dir, "db");
	if (!dbdir)
		return -ENOMEM;
	lf = rocksdb_livefiles(st->db);
	if (!lf) {
		free(dbdir);
		return -ENOMEM;
	}
	n = rocksdb_livefiles_count(lf);
	for (int i = 0; i < n; i++) {
		const char *name = rocksdb_livefiles_name(lf, i);
		uint64_t size = rocksdb_livefiles_size(lf, i);
		size_t sl, ll;
		const char *small = rocksdb_livefiles_smallestkey(lf, i, &sl);
		const char *large = rocksdb_livefiles_largestkey(lf, i, &ll);

		if (strcmp(rocksdb_livefiles_column_family_name(lf, i), want))
			continue;
		/* holds keys in [lo, hi)? */
		if (key_cmp(large, ll, lo, lolen) < 0 ||
		    key_cmp(small, sl, hi, hilen) >= 0)
			continue;
		if (size > file_max || (uint64_t)total + size > total_max)
			continue;
		while (*name == '/')
			name++;
		if (pf_recent(st, strtoull(name, NULL, 10), again_ns))
			continue;
		advise(dbdir, name, size);
		total += (int64_t)size;
	}
	rocksdb_livefiles_destroy(lf);
	free(dbdir);
	return total;
}
