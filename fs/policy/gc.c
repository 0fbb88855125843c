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
#include "hoard/json.h"
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
	return hoard_json_dump(
		json_pack("{s:o,s:o,s:o,s:o,s:o}", "disk_bytes_before",
			  hoard_json_u64(g->disk_before), "disk_bytes_after",
			  hoard_json_u64(g->disk_after), "db_bytes_before",
			  hoard_json_u64(g->db_before), "db_bytes_after",
			  hoard_json_u64(g->db_after), "seconds",
			  hoard_json_real3(g->seconds)),
		true);
}

int hoard_gc_from_json(const char *json, struct hoard_gc_report *ret)
{
	struct hoard_gc_report g = {0};
	json_t *o = hoard_json_parse_object(json);
	int r = -EBADMSG;

	if (!o)
		return -EBADMSG;
	if (hoard_json_get_u64(o, "disk_bytes_before", false, &g.disk_before) <
		    0 ||
	    hoard_json_get_u64(o, "disk_bytes_after", false, &g.disk_after) <
		    0 ||
	    hoard_json_get_u64(o, "db_bytes_before", false, &g.db_before) < 0 ||
	    hoard_json_get_u64(o, "db_bytes_after", false, &g.db_after) < 0)
		goto out_put;
	r = hoard_json_get_real(o, "seconds", true, &g.seconds);
	if (r == -ENOENT)
		r = 0;
	if (r == 0)
		*ret = g;
out_put:
	json_decref(o);
	return r;
}
