// SPDX-License-Identifier: MIT
/*
 * Tests of the small chunks a write puts into the decompressed cache
 * (chunks.c stage, CACHE_WRITTEN_MAX), on a real store in a mkdtemp()
 * directory, through the filesystem core.  The cache holds the bytes the
 * frame was written from, so a dedup hit on them is confirmed against the
 * cache; with the stored frame damaged behind the daemon's back (a bad
 * disk), no read ever returns the damaged bytes: from the cache they are
 * the written bytes, from the store EIO; and once the chunk is out of the
 * cache the next write of the same bytes repairs the frame.  A different
 * file of the same length is not taken for the cached one.  The shortcut
 * is checked to be taken (the cache's hit count).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hoard/codec.h"
#include "hoard/fs.h"
#include "hoard/hash.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "check.h"
#include "tmpstore.h"

#define LEN 6000 /* one chunk, stored raw (random bytes) */

static char tmp_root[] = "/tmp/hoard-test-wcache-XXXXXX";

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed;

	for (size_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(x >> 56);
	}
}

/* Create name in root with n bytes of p, closed (the close commits). */
static void make(struct hoard_fs *fs, uint64_t root, const char *name,
		 const uint8_t *p, size_t n)
{
	tmp_file_put(fs, root, name, p, n);
}

/* The core made again over st (a daemon restarted: its cache empty), and
 * the volume's root. */
static struct hoard_fs *restarted(struct hoard_store *st, struct hoard_fs *fs,
				  uint64_t *ret_root)
{
	hoard_fs_free(fs);
	fs = NULL;
	CHECK_EQ(hoard_fs_new(st, NULL, &fs), 0);
	CHECK_EQ(hoard_fs_volume(fs, "v", false, ret_root), 0);
	return fs;
}

/* Read name whole into buf (LEN bytes): the read's result. */
static ssize_t get(struct hoard_fs *fs, uint64_t root, const char *name,
		   uint8_t *buf)
{
	struct hoard_fh *fh;
	struct stat sb;
	uint64_t ino;
	ssize_t r;

	if (!CHECK_EQ(hoard_fs_lookup(fs, root, name, &sb), 0))
		return -1;
	ino = (uint64_t)sb.st_ino;
	CHECK_EQ(hoard_fs_open(fs, ino, O_RDONLY, &fh), 0);
	memset(buf, 0, LEN);
	r = hoard_fs_read(fs, fh, buf, LEN, 0);
	hoard_fs_release(fs, fh);
	hoard_fs_forget(fs, ino, 1);
	return r;
}

static uint64_t hits(struct hoard_fs *fs)
{
	uint64_t h, m;

	hoard_fs_cache_counts(fs, &h, &m);
	return h;
}

/* The read of name gives the written bytes, or fails: never others. */
static void reads_right_or_eio(struct hoard_fs *fs, uint64_t root,
			       const char *name, const uint8_t *want,
			       bool right)
{
	uint8_t got[LEN];
	ssize_t r = get(fs, root, name, got);

	if (right) {
		CHECK_EQ(r, LEN);
		CHECK(memcmp(got, want, LEN) == 0);
	} else {
		CHECK_EQ(r, -EBADMSG); /* EIO to the reader */
	}
}

int main(void)
{
	struct hoard_store_init_opts io = {.zstd_level = 1};
	uint8_t data[LEN], other[LEN], frame[LEN + 1];
	struct hoard_store *st;
	struct hoard_fs *fs;
	struct hoard_id id;
	uint64_t root, h;

	hoard_log_set_level(LOG_CRIT);
	st = tmp_store_new(tmp_root, &io);
	if (!st)
		return 1;
	fill(data, LEN, 1);
	fill(other, LEN, 2);
	hoard_id_compute(hoard_store_key(st), data, LEN, &id);
	CHECK_EQ(hoard_fs_new(st, NULL, &fs), 0);
	CHECK_EQ(hoard_fs_volume(fs, "v", true, &root), 0);

	/* a new small chunk is cached by its write: the dedup hit of b and
	 * the read of a are answered from the cache */
	make(fs, root, "a", data, LEN);
	h = hits(fs);
	make(fs, root, "b", data, LEN);
	CHECK_EQ(hits(fs), h + 1);
	reads_right_or_eio(fs, root, "a", data, true);
	CHECK_EQ(hits(fs), h + 2);

	/* the stored frame damaged behind the daemon's back (one byte of
	 * the raw frame flipped): what the cache answers is still the
	 * written bytes, and a third copy shares the chunk */
	frame[0] = HOARD_CODEC_RAW;
	memcpy(frame + 1, data, LEN);
	frame[1 + LEN / 2] ^= 0x40;
	CHECK_EQ(hoard_store_put(st, HOARD_CF_CHUNKDATA, id.b, HOARD_ID_SIZE,
				 frame, sizeof(frame)),
		 0);
	make(fs, root, "c", data, LEN);
	reads_right_or_eio(fs, root, "b", data, true);
	/* other bytes of the same length are not taken for it */
	make(fs, root, "d", other, LEN);
	reads_right_or_eio(fs, root, "d", other, true);

	/* out of the cache (the daemon restarted): the damaged frame is
	 * EIO for every file that shares it, never the flipped bytes */
	fs = restarted(st, fs, &root);
	reads_right_or_eio(fs, root, "a", data, false);
	reads_right_or_eio(fs, root, "b", data, false);
	reads_right_or_eio(fs, root, "c", data, false);
	reads_right_or_eio(fs, root, "d", other, true);

	/* the next write of the same bytes reads the frame for its confirm,
	 * finds the damage and rewrites it: every copy reads right again */
	make(fs, root, "e", data, LEN);
	reads_right_or_eio(fs, root, "a", data, true);
	reads_right_or_eio(fs, root, "c", data, true);
	reads_right_or_eio(fs, root, "e", data, true);
	fs = restarted(st, fs, &root);
	reads_right_or_eio(fs, root, "b", data, true);

	hoard_fs_free(fs);
	hoard_store_close(st);
	tmp_tree_remove(tmp_root);
	return CHECK_DONE();
}
