// SPDX-License-Identifier: MIT
/*
 * gc: compaction with blob garbage collection, measured (gc.h).
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hoard/gc.h"
#include "hoard/util.h"

/* nftw() has no user pointer: the sum lives here, guarded by a mutex since
 * the daemon and a tool thread could measure at once. */
static pthread_mutex_t du_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t du_sum; /* protected by du_lock */

static int du_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F || flag == FTW_D || flag == FTW_DP || flag == FTW_SL)
		du_sum += (uint64_t)sb->st_blocks * 512;
	return 0; /* files vanishing under compaction are skipped */
}

int hoard_gc_disk_usage(const char *dir, uint64_t *ret_bytes)
{
	int r;

	pthread_mutex_lock(&du_lock);
	du_sum = 0;
	r = nftw(dir, du_one, 32, FTW_PHYS);
	if (r == 0)
		*ret_bytes = du_sum;
	else
		r = -errno;
	pthread_mutex_unlock(&du_lock);
	return r;
}

static uint64_t db_bytes(struct hoard_store *st)
{
	uint64_t n = 0;

	for (int cf = 0; cf < HOARD_CF_COUNT; cf++)
		n += hoard_store_cf_size(st, (enum hoard_cf)cf);
	return n;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int hoard_gc_run(struct hoard_store *st, struct hoard_gc_report *ret)
{
	const char *dir = hoard_store_dir(st);
	struct hoard_gc_report g = {0};
	double t0;
	int r;

	r = hoard_gc_disk_usage(dir, &g.disk_before);
	if (r < 0)
		return r;
	g.db_before = db_bytes(st);
	t0 = now_s();
	r = hoard_store_gc(st);
	if (r < 0)
		return r;
	g.seconds = now_s() - t0;
	g.db_after = db_bytes(st);
	r = hoard_gc_disk_usage(dir, &g.disk_after);
	if (r < 0)
		return r;
	*ret = g;
	return 0;
}

char *hoard_gc_json(const struct hoard_gc_report *g)
{
	char *s;

	if (asprintf(&s,
		     "{\"disk_bytes_before\":%llu,\"disk_bytes_after\":%llu,"
		     "\"db_bytes_before\":%llu,\"db_bytes_after\":%llu,"
		     "\"seconds\":%.3f}\n",
		     (unsigned long long)g->disk_before,
		     (unsigned long long)g->disk_after,
		     (unsigned long long)g->db_before,
		     (unsigned long long)g->db_after, g->seconds) < 0)
		return NULL;
	return s;
}

static int json_u64(const char *json, const char *key, uint64_t *ret)
{
	char pat[64], *end;
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	if (!p)
		return -EBADMSG;
	p += strlen(pat);
	if (*p < '0' || *p > '9')
		return -EBADMSG;
	errno = 0;
	*ret = strtoull(p, &end, 10);
	return errno ? -EBADMSG : 0;
}

int hoard_gc_from_json(const char *json, struct hoard_gc_report *ret)
{
	struct hoard_gc_report g = {0};
	const char *p;

	if (json_u64(json, "disk_bytes_before", &g.disk_before) < 0 ||
	    json_u64(json, "disk_bytes_after", &g.disk_after) < 0 ||
	    json_u64(json, "db_bytes_before", &g.db_before) < 0 ||
	    json_u64(json, "db_bytes_after", &g.db_after) < 0)
		return -EBADMSG;
	p = strstr(json, "\"seconds\":");
	if (p)
		g.seconds = strtod(p + strlen("\"seconds\":"), NULL);
	*ret = g;
	return 0;
}
