/* SPDX-License-Identifier: MIT */
/*
 * hoard-test-corrupt: damage the stored frame of the first chunk of a file,
 * the way a bad disk would, so the e2e suite can check that reading it
 * gives EIO (and only for that file).  A test helper; never installed.
 *
 *   hoard-test-corrupt --store DIR --volume NAME --path /PATH/IN/VOLUME
 *                      [--mode frame|record|refcount|data|entry|digest]
 * Modes (for fsck's tests): frame (default) flips a byte of the frame;
 * record deletes the chunk's record; refcount adds 5 to the record's
 * refcount; data deletes the frame; entry deletes PATH's directory entry
 * (nothing else: what it names becomes unreachable); digest flips a
 * byte of the chunk's SHA-256 row (FORMAT 2.1 `sha256.`; it must have
 * one).  Prints the damaged
 * chunk's id (entry: the inode number).  The store must not be in use.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/fs.h"
#include "hoard/hash.h"
#include "hoard/records.h"
#include "hoard/store.h"
#include "hoard/util.h"

/* The other modes: damage the record (FORMAT 2.3) or drop the frame. */
static int damage_record(struct hoard_store *st, const struct hoard_id *id,
			 const char *mode)
{
	struct hoard_batch *b = hoard_batch_new(st);
	uint8_t *rec;
	size_t n;
	void *v;
	int r = 0;

	if (!b)
		return -ENOMEM;
	if (!strcmp(mode, "record")) {
		hoard_batch_delete(b, HOARD_CF_CHUNKS, id->b, HOARD_ID_SIZE);
	} else if (!strcmp(mode, "digest")) {
		uint8_t k[SHA_ROW_KEY_LEN];

		sha_row_key(k, id);
		r = hoard_store_get(st, HOARD_CF_DEFAULT, k, sizeof(k), &v, &n);
		if (r == 0) {
			rec = v;
			rec[n / 2] ^= 0x5a;
			hoard_batch_put(b, HOARD_CF_DEFAULT, k, sizeof(k), rec,
					n);
			free(v);
		}
	} else if (!strcmp(mode, "data")) {
		hoard_batch_delete(b, HOARD_CF_CHUNKDATA, id->b, HOARD_ID_SIZE);
	} else {
		r = hoard_store_get(st, HOARD_CF_CHUNKS, id->b, HOARD_ID_SIZE,
				    &v, &n);
		if (r == 0 && n < 24)
			r = -EBADMSG;
		if (r == 0) {
			rec = v;
			hoard_put_be64(rec + 16, hoard_get_be64(rec + 16) + 5);
			hoard_batch_put(b, HOARD_CF_CHUNKS, id->b,
					HOARD_ID_SIZE, rec, n);
			free(v);
		}
	}
	if (r == 0)
		r = hoard_store_write(st, b, true);
	hoard_batch_free(b);
	return r;
}

static int corrupt_first_chunk(struct hoard_store *st, uint64_t ino,
			       const char *mode)
{
	uint8_t k[8], *frame;
	char hex[HOARD_ID_HEX_SIZE];
	struct hoard_iter *it;
	struct hoard_id id;
	size_t vl, flen;
	void *v;
	int r;

	hoard_put_be64(k, ino);
	it = hoard_iter_new(st, HOARD_CF_EXTENTS, k, 8);
	if (!it || !hoard_iter_valid(it)) {
		fprintf(stderr, "hoard-test-corrupt: file has no chunks\n");
		hoard_iter_free(it);
		return -ENOENT;
	}
	memcpy(id.b, hoard_iter_value(it, &vl), HOARD_ID_SIZE);
	hoard_iter_free(it);
	if (strcmp(mode, "frame")) {
		r = damage_record(st, &id, mode);
		if (r == 0) {
			hoard_id_hex(&id, hex);
			printf("%s\n", hex);
		}
		return r;
	}
	r = hoard_store_get(st, HOARD_CF_CHUNKDATA, id.b, HOARD_ID_SIZE, &v,
			    &flen);
	if (r < 0)
		return r;
	frame = v;
	frame[flen / 2] ^= 0x5a; /* one byte in the middle of the payload */
	r = hoard_store_put(st, HOARD_CF_CHUNKDATA, id.b, HOARD_ID_SIZE, frame,
			    flen);
	free(v);
	if (r == 0 && (r = hoard_store_sync(st)) == 0) {
		hoard_id_hex(&id, hex);
		printf("%s\n", hex);
	}
	return r;
}

/* Delete the entry naming path (in its parent directory), nothing else. */
static int drop_entry(struct hoard_fs *fs, uint64_t root, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = strndup(path, slash ? (size_t)(slash - path) : 0);
	const char *name = slash ? slash + 1 : path;
	struct hoard_batch *b;
	uint8_t k[8 + 256];
	uint64_t parent, ino;
	int r;

	if (!dir)
		return -ENOMEM;
	r = hoard_fs_resolve(fs, root, dir, &parent);
	free(dir);
	if (r == 0)
		r = hoard_fs_resolve(fs, root, path, &ino);
	if (r < 0 || !*name || strlen(name) > 255)
		return r < 0 ? r : -EINVAL;
	hoard_put_be64(k, parent);
	memcpy(k + 8, name, strlen(name));
	b = hoard_batch_new(hoard_fs_store(fs));
	if (!b)
		return -ENOMEM;
	hoard_batch_delete(b, HOARD_CF_DIRENTS, k, 8 + strlen(name));
	r = hoard_store_write(hoard_fs_store(fs), b, true);
	hoard_batch_free(b);
	if (r == 0)
		printf("%llu\n", (unsigned long long)ino);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"store", required_argument, NULL, 's'},
		{"volume", required_argument, NULL, 'v'},
		{"path", required_argument, NULL, 'p'},
		{"mode", required_argument, NULL, 'm'},
		{0}};
	const char *dir = NULL, *vol = NULL, *path = NULL, *mode = "frame";
	struct hoard_store *st;
	struct hoard_fs *fs;
	uint64_t root, ino;
	char err[512];
	int c, r;

	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		if (c == 's')
			dir = optarg;
		else if (c == 'v')
			vol = optarg;
		else if (c == 'p')
			path = optarg;
		else if (c == 'm')
			mode = optarg;
		else
			return 2;
	}
	if (!dir || !vol || !path ||
	    (strcmp(mode, "frame") && strcmp(mode, "record") &&
	     strcmp(mode, "refcount") && strcmp(mode, "data") &&
	     strcmp(mode, "entry") && strcmp(mode, "digest"))) {
		fprintf(stderr, "usage: hoard-test-corrupt --store DIR "
				"--volume NAME --path PATH "
				"[--mode frame|record|refcount|data|entry|"
				"digest]\n");
		return 2;
	}
	if (hoard_store_open(dir, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "hoard-test-corrupt: %s\n", err);
		return 1;
	}
	r = hoard_fs_new(st, NULL, &fs);
	if (r == 0)
		r = hoard_fs_volume(fs, vol, false, &root);
	if (r == 0 && !strcmp(mode, "entry")) {
		r = drop_entry(fs, root, path);
	} else {
		if (r == 0)
			r = hoard_fs_resolve(fs, root, path, &ino);
		if (r == 0)
			r = corrupt_first_chunk(st, ino, mode);
	}
	if (r < 0)
		fprintf(stderr, "hoard-test-corrupt: %s\n", strerror(-r));
	hoard_fs_free(fs);
	hoard_store_close(st);
	return r < 0 ? 1 : 0;
}
