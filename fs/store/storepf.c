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

/* memcmp, then length: the store's key order */
static int key_cmp(const char *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al > bl) - (al < bl);
}

/* The family's table files as RocksDB lists them now, each with when it
 * was advised last (kept for the files listed again).  Under pf_mu. */
static int pf_list(struct hoard_store *st, enum hoard_cf cf, uint64_t now)
{
	const rocksdb_livefiles_t *lf = rocksdb_livefiles(st->db);
	const char *want = store_cf_name(cf);
	struct store_pf_file *v = NULL;
	size_t n = 0, cap = 0;
	int count;

	if (!lf)
		return -ENOMEM;
	count = rocksdb_livefiles_count(lf);
	for (int i = 0; i < count; i++) {
		const char *name = rocksdb_livefiles_name(lf, i);
		const char *small, *large;
		struct store_pf_file *f;
		size_t sl, ll;

		if (strcmp(rocksdb_livefiles_column_family_name(lf, i), want))
			continue;
		small = rocksdb_livefiles_smallestkey(lf, i, &sl);
		large = rocksdb_livefiles_largestkey(lf, i, &ll);
		f = hoard_grow(v, &cap, n + 1, sizeof(*v), 8);
		if (!f)
			goto out_free;
		v = f;
		f = &v[n];
		*f = (struct store_pf_file){
			.size = rocksdb_livefiles_size(lf, i),
			.sl = sl,
			.ll = ll};
		while (*name == '/')
			name++;
		f->num = strtoull(name, NULL, 10);
		f->small = malloc(sl + 1);
		f->large = malloc(ll + 1);
		n++;
		if (!f->small || !f->large)
			goto out_free;
		memcpy(f->small, small, sl);
		memcpy(f->large, large, ll);
		for (size_t j = 0; j < st->pf_n; j++) {
			if (st->pf_files[j].num == f->num)
				f->at = st->pf_files[j].at;
		}
	}
	rocksdb_livefiles_destroy(lf);
	store_pf_clear(st);
	st->pf_files = v;
	st->pf_n = n;
	st->pf_cf = (int)cf;
	st->pf_list_at = now;
	return 0;

out_free:
	for (size_t j = 0; j < n; j++) {
		free(v[j].small);
		free(v[j].large);
	}
	free(v);
	rocksdb_livefiles_destroy(lf);
	return -ENOMEM;
}

void store_pf_clear(struct hoard_store *st)
{
	for (size_t j = 0; j < st->pf_n; j++) {
		free(st->pf_files[j].small);
		free(st->pf_files[j].large);
	}
	free(st->pf_files);
	st->pf_files = NULL;
	st->pf_n = 0;
}

static void advise(const char *dbdir, uint64_t num, uint64_t size)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%06llu.sst", dbdir,
		     (unsigned long long)num) >= (int)sizeof(path))
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
	struct {
		uint64_t num, size;
	} todo[STORE_PF_FILES];
	uint64_t now = hoard_now_coarse_ns();
	size_t n = 0;
	int64_t total = 0;
	char *dbdir;
	int r = 0;

	if (!st->db || st->read_only)
		return 0;
	pthread_mutex_lock(&st->pf_mu);
	/* RocksDB's list (~70k instructions) at most once per again_ns */
	if (st->pf_cf != (int)cf || now - st->pf_list_at >= again_ns)
		r = pf_list(st, cf, now);
	for (size_t i = 0; r == 0 && i < st->pf_n && n < STORE_PF_FILES; i++) {
		struct store_pf_file *f = &st->pf_files[i];

		/* holds keys in [lo, hi)? */
		if (key_cmp((const char *)f->large, f->ll, lo, lolen) < 0 ||
		    key_cmp((const char *)f->small, f->sl, hi, hilen) >= 0)
			continue;
		if (f->size > file_max || (uint64_t)total + f->size > total_max)
			continue;
		if (f->at && now - f->at < again_ns)
			continue;
		f->at = now;
		todo[n].num = f->num;
		todo[n++].size = f->size;
		total += (int64_t)f->size;
	}
	pthread_mutex_unlock(&st->pf_mu);
	if (r < 0 || !n)
		return r < 0 ? r : 0;
	dbdir = store_path_join(st->dir, "db");
	if (!dbdir)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		advise(dbdir, todo[i].num, todo[i].size);
	free(dbdir);
	return total;
}
