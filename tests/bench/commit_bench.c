/* SPDX-License-Identifier: MIT */
/*
 * hoard-commit-bench: the committer's work per small file, without FUSE
 * (issue 14, item 2).  Never installed.
 *
 *   hoard-commit-bench DIR N MAXSIZE ROUNDS
 *
 * A store is made in DIR (which must not exist).  Each round creates N
 * files in 100 directories of its own (rN/dNN/fNNNNNN) through the core
 * library, writes each the bytes `hoard-bench mkfiles DIR N MAXSIZE`
 * writes (the same generator and seed: so the first round's files are all
 * new content and every later round's are dedup hits, as in the create
 * benchmark's rounds), and hands the closed files to
 * hoard_fs_release_many() in groups of 32, as the daemon's committer does
 * (each handle pinned, its pin dropped when its release is made).
 *
 * The releases run in committer_new() (round 1) and committer_dup()
 * (later rounds), functions of their own so that a profiler can count
 * them apart:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out \
 *	build/tests/hoard-commit-bench /tmp/x 5000 8192 2
 *   callgrind_annotate --inclusive=yes cg.out | grep committer_
 *
 * gives the instructions of the committer's releases per round (divide by
 * N).  Prints, per round, the process's CPU seconds of those releases
 * (CLOCK_THREAD_CPUTIME_ID) and of the whole round.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hoard/fs.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "mkbytes.h"

#define GROUP 32

static const struct hoard_ctx ctx = {0, 0};
static double release_cpu;

static double cpu_now(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct group {
	struct hoard_fs *fs;
	struct hoard_fh *fh[GROUP];
	uint64_t pin[GROUP];
	size_t n;
	long failed;
};

static void group_done(void *ud, size_t i, int r)
{
	struct group *g = ud;

	if (r < 0)
		g->failed++;
	hoard_fs_forget(g->fs, g->pin[i], 1);
}

static void run_group(struct group *g)
{
	double t0 = cpu_now(CLOCK_THREAD_CPUTIME_ID);

	hoard_fs_release_many(g->fs, g->fh, g->n, group_done, g);
	release_cpu += cpu_now(CLOCK_THREAD_CPUTIME_ID) - t0;
	g->n = 0;
}

/* Two functions, so that a profile tells new content from dedup hits
 * (each counts its calls, so that the compiler does not fold them into
 * one). */
static volatile unsigned long calls_new, calls_dup;

__attribute__((noinline)) static void committer_new(struct group *g)
{
	calls_new++;
	run_group(g);
}

__attribute__((noinline)) static void committer_dup(struct group *g)
{
	calls_dup++;
	run_group(g);
}

static int round_run(struct hoard_fs *fs, uint64_t root, int rd, long n,
		     long maxsize)
{
	void (*commit)(struct group *) = rd == 1 ? committer_new
						 : committer_dup;
	uint64_t dirs[MK_NDIRS], top;
	struct group g = {.fs = fs};
	char name[64];
	struct stat sb;
	struct mk m;
	int r;

	if (mk_init(&m, maxsize) < 0)
		return -1;
	snprintf(name, sizeof(name), "r%d", rd);
	r = hoard_fs_mkdir(fs, root, name, 0755, &ctx, &sb);
	if (r < 0)
		goto out_free;
	top = (uint64_t)sb.st_ino;
	for (long d = 0; d < MK_NDIRS; d++) {
		snprintf(name, sizeof(name), "d%02ld", d);
		r = hoard_fs_mkdir(fs, top, name, 0755, &ctx, &sb);
		if (r < 0)
			goto out_free;
		dirs[d] = (uint64_t)sb.st_ino;
	}
	for (long i = 0; i < n; i++) {
		struct hoard_fh *fh;
		size_t len = mk_next(&m, i); /* hoard-bench mkfiles' bytes */

		snprintf(name, sizeof(name), "f%06ld", i);
		r = hoard_fs_create(fs, dirs[i % MK_NDIRS], name,
				    S_IFREG | 0644, O_WRONLY | O_TRUNC, &ctx,
				    &sb, &fh);
		if (r < 0)
			goto out_free;
		if (len &&
		    hoard_fs_write(fs, fh, m.buf, len, 0) != (ssize_t)len) {
			r = -1;
			goto out_free;
		}
		if (!hoard_fs_defer_close(fs, fh)) {
			hoard_fs_release(fs, fh); /* as the daemon would */
			continue;
		}
		g.pin[g.n] = hoard_fs_fh_pin(fs, fh);
		g.fh[g.n++] = fh;
		if (g.n == GROUP)
			commit(&g);
	}
	if (g.n)
		commit(&g);
	r = g.failed ? -1 : 0;
out_free:
	mk_free(&m);
	return r;
}

int main(int argc, char **argv)
{
	struct hoard_store_init_opts io = {.zstd_level = 1};
	struct hoard_store *st = NULL;
	struct hoard_fs *fs = NULL;
	char err[512];
	uint64_t root;
	long n, maxsize;
	int rounds, r;

	if (argc != 5) {
		fprintf(stderr, "usage: hoard-commit-bench DIR N MAXSIZE "
				"ROUNDS\n");
		return 2;
	}
	n = atol(argv[2]);
	maxsize = atol(argv[3]);
	rounds = atoi(argv[4]);
	hoard_log_set_level(LOG_WARNING);
	if (hoard_store_init(argv[1], &io, err, sizeof(err)) < 0 ||
	    hoard_store_open(argv[1], &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], err);
		return 1;
	}
	r = hoard_fs_new(st, NULL, &fs);
	if (r == 0)
		r = hoard_fs_volume(fs, "v", true, &root);
	for (int rd = 1; r == 0 && rd <= rounds; rd++) {
		double t0 = cpu_now(CLOCK_PROCESS_CPUTIME_ID);

		release_cpu = 0;
		r = round_run(fs, root, rd, n, maxsize);
		printf("{\"round\": %d, \"files\": %ld, \"release_cpu_us_per_"
		       "file\": %.2f, \"process_cpu_us_per_file\": %.2f}\n",
		       rd, n, release_cpu * 1e6 / (double)n,
		       (cpu_now(CLOCK_PROCESS_CPUTIME_ID) - t0) * 1e6 /
			       (double)n);
	}
	hoard_fs_free(fs);
	hoard_store_close(st);
	if (r < 0)
		fprintf(stderr, "hoard-commit-bench: a step failed\n");
	return r < 0 ? 1 : 0;
}
