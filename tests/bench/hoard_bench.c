/* SPDX-License-Identifier: MIT */
/*
 * hoard-bench: the measuring half of tests/bench (bench.py drives it).
 * Never installed.  Every command prints one JSON object on stdout.
 *
 *   hoard-bench bound [--level N] FILE...
 *       The one-core bound of ingest: each file is read into memory
 *       (not timed), then, timed on this one thread, cut into chunks by
 *       hoard's chunker, every chunk hashed with a keyed XXH3-128 id, and
 *       every distinct chunk compressed with hoard's codec at zstd level N
 *       (default 1), exactly the work the store must do per byte.
 *   hoard-bench seqread FILE
 *       Read FILE sequentially with 1 MiB read(2) calls.
 *   hoard-bench mmap FILE
 *       mmap FILE read-only and read one byte of every 4 KiB page.
 *   hoard-bench mkfiles DIR N MAXSIZE
 *       Create DIR/dNN/fNNNNNN for N files in 100 directories (the
 *       directories are made first, not timed); each file is open(O_CREAT)
 *       + write + close of 0..MAXSIZE pseudo-random bytes (exactly 0 bytes
 *       when MAXSIZE is 0, then no write call).
 *   hoard-bench statfiles DIR N
 *       lstat(2) the N files that mkfiles made, in the same order.
 *
 * Exit status: 0 on success, 1 on an I/O error (one line on stderr), 2 on
 * a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hoard/chunker.h"
#include "hoard/codec.h"
#include "hoard/hash.h"
#include "hoard/util.h"
#include "mkbytes.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, const char *path, int err)
{
	fprintf(stderr, "hoard-bench: %s %s: %s\n", what, path, strerror(err));
	return 1;
}

/* -- bound ------------------------------------------------------------- */

/* A set of chunk ids: open addressing, linear probing, never shrinks. */
struct idset {
	struct hoard_id *slots;
	uint8_t *used;
	size_t cap, n;
};

static int idset_grow(struct idset *s)
{
	struct idset t = {.cap = s->cap ? 2 * s->cap : 1024};

	t.slots = malloc(t.cap * sizeof(*t.slots));
	t.used = calloc(t.cap, 1);
	if (!t.slots || !t.used) {
		free(t.slots);
		free(t.used);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++) {
		uint64_t h;
		size_t j;

		if (!s->used[i])
			continue;
		h = hoard_get_be64(s->slots[i].b);
		for (j = h & (t.cap - 1); t.used[j]; j = (j + 1) & (t.cap - 1))
			;
		t.slots[j] = s->slots[i];
		t.used[j] = 1;
	}
	t.n = s->n;
	free(s->slots);
	free(s->used);
	*s = t;
	return 0;
}

/* 1 if id was added, 0 if it was there, -ENOMEM. */
static int idset_add(struct idset *s, const struct hoard_id *id)
{
	uint64_t h;
	size_t j;

	if (2 * (s->n + 1) > s->cap && idset_grow(s) < 0)
		return -ENOMEM;
	h = hoard_get_be64(id->b);
	for (j = h & (s->cap - 1); s->used[j]; j = (j + 1) & (s->cap - 1))
		if (hoard_id_equal(&s->slots[j], id))
			return 0;
	s->slots[j] = *id;
	s->used[j] = 1;
	s->n++;
	return 1;
}

static int read_whole(const char *path, uint8_t **ret_buf, size_t *ret_len)
{
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = hoard_pread_full(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (n < 0 || n != st.st_size) {
		free(buf);
		return n < 0 ? (int)n : -EIO;
	}
	*ret_buf = buf;
	*ret_len = (size_t)n;
	return 0;
}

struct bound_totals {
	uint64_t bytes, chunks, unique_chunks, unique_bytes, stored_bytes;
	double seconds;
};

static int bound_one(const struct hoard_key *key, struct idset *ids,
		     uint8_t *dst, size_t dst_cap, int level, const uint8_t *p,
		     size_t len, struct bound_totals *t)
{
	struct hoard_chunker c;
	size_t off = 0, start = 0;
	double t0 = now();

	hoard_chunker_init(&c);
	while (start < len) {
		struct hoard_id id;
		size_t clen;
		ssize_t flen;
		int cut = 0, r;

		while (!cut && off < len)
			off += hoard_chunker_next(&c, p + off, len - off, &cut);
		clen = off - start;
		hoard_id_compute(key, p + start, clen, &id);
		t->chunks++;
		r = idset_add(ids, &id);
		if (r < 0)
			return r;
		if (r == 1) {
			flen = hoard_codec_encode(p + start, clen, dst, dst_cap,
						  level);
			if (flen < 0)
				return (int)flen;
			t->unique_chunks++;
			t->unique_bytes += clen;
			t->stored_bytes += (uint64_t)flen;
		}
		start = off;
	}
	t->bytes += len;
	t->seconds += now() - t0;
	return 0;
}

static int cmd_bound(int argc, char **argv)
{
	struct bound_totals t = {0};
	struct idset ids = {0};
	struct hoard_key key;
	size_t dst_cap = hoard_codec_bound(HOARD_CHUNK_MAX);
	uint8_t *dst = malloc(dst_cap);
	int level = HOARD_CODEC_DEFAULT_LEVEL, i = 0, r;

	if (argc >= 2 && strcmp(argv[0], "--level") == 0) {
		level = atoi(argv[1]);
		i = 2;
	}
	if (i >= argc) {
		fprintf(stderr, "hoard-bench: bound needs files\n");
		return 2;
	}
	if (!dst || (r = hoard_key_generate(&key)) < 0)
		return fail("init", "key", ENOMEM);
	for (; i < argc; i++) {
		uint8_t *buf = NULL;
		size_t len = 0;

		r = read_whole(argv[i], &buf, &len);
		if (r < 0)
			return fail("read", argv[i], -r);
		r = bound_one(&key, &ids, dst, dst_cap, level, buf, len, &t);
		free(buf);
		if (r < 0)
			return fail("chunk", argv[i], -r);
	}
	printf("{\"bytes\": %llu, \"seconds\": %.6f, \"chunks\": %llu, "
	       "\"unique_chunks\": %llu, \"unique_bytes\": %llu, "
	       "\"stored_bytes\": %llu, \"level\": %d}\n",
	       (unsigned long long)t.bytes, t.seconds,
	       (unsigned long long)t.chunks,
	       (unsigned long long)t.unique_chunks,
	       (unsigned long long)t.unique_bytes,
	       (unsigned long long)t.stored_bytes, level);
	free(dst);
	free(ids.slots);
	free(ids.used);
	return 0;
}

/* -- reads ------------------------------------------------------------- */

static int cmd_seqread(const char *path)
{
	size_t cap = 1u << 20;
	uint8_t *buf = malloc(cap);
	uint64_t total = 0;
	double t0;
	ssize_t n;
	int fd;

	if (!buf)
		return fail("malloc", path, ENOMEM);
	t0 = now();
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail("open", path, errno);
	while ((n = read(fd, buf, cap)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail("read", path, errno);
		}
		total += (uint64_t)n;
	}
	close(fd);
	printf("{\"bytes\": %llu, \"seconds\": %.6f}\n",
	       (unsigned long long)total, now() - t0);
	free(buf);
	return 0;
}

static int cmd_mmap(const char *path)
{
	volatile uint8_t sink = 0;
	struct stat st;
	const uint8_t *p;
	double t0 = now();
	size_t len, off;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return fail("open", path, errno);
	len = (size_t)st.st_size;
	p = len ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0) : NULL;
	if (p == MAP_FAILED)
		return fail("mmap", path, errno);
	for (off = 0; off < len; off += 4096)
		sink ^= p[off];
	if (len)
		munmap((void *)p, len);
	close(fd);
	printf("{\"bytes\": %llu, \"seconds\": %.6f, \"pages\": %llu}\n",
	       (unsigned long long)len, now() - t0,
	       (unsigned long long)((len + 4095) / 4096));
	(void)sink;
	return 0;
}

/* -- small files --------------------------------------------------------- */

static void file_path(char *out, size_t cap, const char *dir, long i)
{
	snprintf(out, cap, "%s/d%02ld/f%06ld", dir, i % MK_NDIRS, i);
}

static int cmd_mkfiles(const char *dir, long n, long maxsize)
{
	struct mk m;
	uint64_t total = 0;
	char path[4096];
	double t0;

	if (mk_init(&m, maxsize) < 0)
		return fail("malloc", dir, ENOMEM);
	for (long d = 0; d < MK_NDIRS; d++) {
		snprintf(path, sizeof(path), "%s/d%02ld", dir, d);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return fail("mkdir", path, errno);
	}
	t0 = now();
	for (long i = 0; i < n; i++) {
		size_t len = mk_next(&m, i);
		int fd;

		file_path(path, sizeof(path), dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail("create", path, errno);
		if (len && hoard_pwrite_full(fd, m.buf, len, 0) < 0)
			return fail("write", path, errno);
		if (close(fd) < 0)
			return fail("close", path, errno);
		total += len;
	}
	printf("{\"files\": %ld, \"bytes\": %llu, \"seconds\": %.6f}\n", n,
	       (unsigned long long)total, now() - t0);
	mk_free(&m);
	return 0;
}

static int cmd_statfiles(const char *dir, long n)
{
	char path[4096];
	struct stat st;
	double t0 = now();

	for (long i = 0; i < n; i++) {
		file_path(path, sizeof(path), dir, i);
		if (lstat(path, &st) < 0)
			return fail("lstat", path, errno);
	}
	printf("{\"files\": %ld, \"seconds\": %.6f}\n", n, now() - t0);
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: hoard-bench bound [--level N] FILE... | seqread FILE | "
		"mmap FILE | mkfiles DIR N MAXSIZE | statfiles DIR N\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (strcmp(cmd, "bound") == 0)
		return cmd_bound(argc - 2, argv + 2);
	if (strcmp(cmd, "seqread") == 0 && argc == 3)
		return cmd_seqread(argv[2]);
	if (strcmp(cmd, "mmap") == 0 && argc == 3)
		return cmd_mmap(argv[2]);
	if (strcmp(cmd, "mkfiles") == 0 && argc == 5)
		return cmd_mkfiles(argv[2], atol(argv[3]), atol(argv[4]));
	if (strcmp(cmd, "statfiles") == 0 && argc == 4)
		return cmd_statfiles(argv[2], atol(argv[3]));
	return usage();
}
