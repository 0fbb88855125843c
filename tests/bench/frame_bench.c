/* SPDX-License-Identifier: MIT */
/*
 * hoard-frame-bench: what writing chunk frames costs through RocksDB
 * (BlobDB, as the store writes a large file's frames) against appending
 * them to a plain file (issue 14, item 3).  Never installed.
 *
 *   hoard-frame-bench DIR ROUNDS FILE...
 *
 * The files are read, cut by hoard's chunker, hashed, and every distinct
 * chunk encoded with hoard's codec at level 1 (not timed: the same work
 * either way).  Then, ROUNDS times and taking turns, the frames are
 * written:
 *   rocksdb  hoard_store_put_nowal() of each frame into the chunkdata
 *            column family of a fresh store in DIR, then one
 *            hoard_store_flush() (the path of chunks_stage_bulk() and
 *            chunks_make_durable()).
 *   append   one writev(2) per frame (a 24-byte header: id, length,
 *            and the frame) to a fresh file in DIR, then fdatasync.
 *   append1m the same, gathered in a 1 MiB user buffer, one write(2)
 *            per MiB, then fdatasync.
 * Each prints the process's CPU seconds (getrusage RUSAGE_SELF: every
 * thread, RocksDB's background ones included) and wall seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "hoard/chunker.h"
#include "hoard/codec.h"
#include "hoard/hash.h"
#include "hoard/store.h"

struct frame {
	struct hoard_id id;
	uint32_t len;
	uint8_t *p;
};

static struct frame *frames;
static size_t nframes, capframes;
static uint64_t frame_bytes;

/* distinct ids: open addressing on the id's first 8 bytes */
static struct hoard_id *seen;
static size_t seen_cap = 1 << 20;

static int seen_add(const struct hoard_id *id)
{
	uint64_t h;

	memcpy(&h, id->b, 8);
	for (size_t i = h & (seen_cap - 1);; i = (i + 1) & (seen_cap - 1)) {
		static const struct hoard_id zero;

		if (!memcmp(&seen[i], &zero, sizeof(zero))) {
			seen[i] = *id;
			return 1;
		}
		if (hoard_id_equal(&seen[i], id))
			return 0;
	}
}

static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double wall_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void load(const char *path, const struct hoard_key *key)
{
	int fd = open(path, O_RDONLY);
	struct stat s;
	uint8_t *buf, *p;
	size_t n;
	struct hoard_chunker ch;

	if (fd < 0 || fstat(fd, &s) < 0) {
		perror(path);
		exit(1);
	}
	buf = malloc(s.st_size + 1);
	n = 0;
	while (n < (size_t)s.st_size) {
		ssize_t k = read(fd, buf + n, s.st_size - n);

		if (k <= 0) {
			perror(path);
			exit(1);
		}
		n += k;
	}
	close(fd);
	hoard_chunker_init(&ch);
	for (p = buf; n;) {
		int cut;
		size_t k = hoard_chunker_next(&ch, p, n, &cut);
		struct hoard_id id;

		hoard_id_compute(key, p, k, &id);
		if (seen_add(&id)) {
			size_t cap = hoard_codec_bound(k);
			uint8_t *f = malloc(cap);
			ssize_t fl = hoard_codec_encode(p, k, f, cap, 1);

			if (fl < 0)
				exit(1);
			if (nframes == capframes) {
				capframes = capframes ? 2 * capframes : 4096;
				frames = realloc(frames,
						 capframes * sizeof(*frames));
			}
			frames[nframes++] = (struct frame){id, (uint32_t)fl, f};
			frame_bytes += fl;
		}
		p += k;
		n -= k;
	}
	free(buf);
}

static void run_rocksdb(const char *dir)
{
	char path[4096], err[256];
	struct hoard_store *st;
	double c0, w0;

	snprintf(path, sizeof(path), "%s/store", dir);
	if (hoard_store_init(path, NULL, err, sizeof(err)) < 0 ||
	    hoard_store_open(path, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "store: %s\n", err);
		exit(1);
	}
	c0 = cpu_now();
	w0 = wall_now();
	for (size_t i = 0; i < nframes; i++)
		if (hoard_store_put_nowal(st, HOARD_CF_CHUNKDATA,
					  frames[i].id.b, HOARD_ID_SIZE,
					  frames[i].p, frames[i].len) < 0)
			exit(1);
	if (hoard_store_flush(st, HOARD_CF_CHUNKDATA) < 0)
		exit(1);
	printf("rocksdb   cpu %.3f s  wall %.3f s\n", cpu_now() - c0,
	       wall_now() - w0);
	hoard_store_close(st);
}

static void hdr(uint8_t *h, const struct frame *f)
{
	memcpy(h, f->id.b, 16);
	for (int k = 0; k < 4; k++)
		h[16 + k] = (uint8_t)(f->len >> (24 - 8 * k));
	memset(h + 20, 0, 4);
}

static void run_append(const char *dir, bool gather)
{
	char path[4096];
	int fd;
	double c0, w0;
	static uint8_t big[1 << 20];
	size_t used = 0;

	snprintf(path, sizeof(path), "%s/frames", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	if (fd < 0)
		exit(1);
	c0 = cpu_now();
	w0 = wall_now();
	for (size_t i = 0; i < nframes; i++) {
		uint8_t h[24];
		const struct frame *f = &frames[i];

		hdr(h, f);
		if (!gather) {
			struct iovec iov[2] = {{h, 24}, {f->p, f->len}};

			if (writev(fd, iov, 2) != 24 + (ssize_t)f->len)
				exit(1);
			continue;
		}
		if (used + 24 + f->len > sizeof(big)) {
			if (write(fd, big, used) != (ssize_t)used)
				exit(1);
			used = 0;
		}
		memcpy(big + used, h, 24);
		memcpy(big + used + 24, f->p, f->len);
		used += 24 + f->len;
	}
	if (used && write(fd, big, used) != (ssize_t)used)
		exit(1);
	if (fdatasync(fd) < 0)
		exit(1);
	printf("%s cpu %.3f s  wall %.3f s\n",
	       gather ? "append1m " : "append   ", cpu_now() - c0,
	       wall_now() - w0);
	close(fd);
	unlink(path);
}

int main(int argc, char **argv)
{
	struct hoard_key key;
	char cmd[4200];
	int rounds;

	if (argc < 4) {
		fprintf(stderr,
			"usage: hoard-frame-bench DIR ROUNDS FILE...\n");
		return 2;
	}
	rounds = atoi(argv[2]);
	seen = calloc(seen_cap, sizeof(*seen));
	memset(&key, 7, sizeof(key));
	for (int i = 3; i < argc; i++)
		load(argv[i], &key);
	printf("%zu distinct frames, %.1f MB\n", nframes, frame_bytes / 1e6);
	fflush(stdout);
	for (int r = 0; r < rounds; r++) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s/store'", argv[1]);
		if (system(cmd) != 0)
			return 1;
		run_rocksdb(argv[1]);
		run_append(argv[1], false);
		run_append(argv[1], true);
		fflush(stdout);
	}
	return 0;
}
