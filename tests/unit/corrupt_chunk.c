/* SPDX-License-Identifier: MIT */
/*
 * hoard-test-corrupt: damage the stored frame of the first chunk of a file,
 * the way a bad disk would, so the e2e suite can check that reading it
 * gives EIO (and only for that file).  A test helper; never installed.
 *
 *   hoard-test-corrupt --store DIR --volume NAME --path /PATH/IN/VOLUME
 *                      [--mode frame|record|refcount|data|entry|digest|
 *                              stale-copy|uncopied]
 *   hoard-test-corrupt --store DIR --mode format2
 * Modes (for fsck's tests): frame (default) flips a byte of the frame;
 * record deletes the chunk's record; refcount adds 5 to the record's
 * refcount; data deletes the frame; entry deletes PATH's directory entry
 * (nothing else: what it names becomes unreachable); digest flips a byte
 * of the chunk's SHA-256 row (FORMAT 2.1 `sha256.`; it must have one);
 * stale-copy adds 1 to the size in the copy of PATH's record its entry
 * carries (FORMAT 2.2); uncopied rewrites that entry without the copy
 * (its record still names it as home).  Prints the damaged chunk's id
 * (entry, stale-copy, uncopied: the inode number).  format2 rewrites the
 * whole store as format 2 would have it (entries without copies, inode
 * records version 1, the format setting 2), as a store an older build
 * wrote, without opening the filesystem (which would upgrade it).  The
 * store must not be in use.
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

/* stale-copy, uncopied: damage the copy in the entry naming path. */
static int damage_copy(struct hoard_fs *fs, uint64_t root, const char *path,
		       const char *mode)
{
	const char *slash = strrchr(path, '/');
	char *dir = strndup(path, slash ? (size_t)(slash - path) : 0);
	const char *name = slash ? slash + 1 : path;
	uint8_t k[DIRENT_KEY_MAX], v[DIRENT_VAL_MAX];
	uint64_t parent, ino;
	size_t kl, vl;
	int r;

	if (!dir)
		return -ENOMEM;
	r = hoard_fs_resolve(fs, root, dir, &parent);
	free(dir);
	if (r < 0 || !*name || strlen(name) > NAME_MAX_LEN)
		return r < 0 ? r : -EINVAL;
	kl = dirent_key(k, parent, name);
	r = hoard_store_get_into(hoard_fs_store(fs), HOARD_CF_DIRENTS, k, kl, v,
				 sizeof(v), &vl);
	if (r < 0)
		return r;
	if (vl <= DIRENT_VAL_SIZE) {
		fprintf(stderr, "hoard-test-corrupt: the entry has no copy\n");
		return -ENOENT;
	}
	ino = hoard_get_be64(v);
	if (!strcmp(mode, "uncopied"))
		vl = DIRENT_VAL_SIZE;
	else /* the copy's size (FORMAT 2.2 offset 24) */
		hoard_put_be64(v + DIRENT_VAL_SIZE + 24,
			       hoard_get_be64(v + DIRENT_VAL_SIZE + 24) + 1);
	r = hoard_store_put(hoard_fs_store(fs), HOARD_CF_DIRENTS, k, kl, v, vl);
	if (r == 0)
		r = hoard_store_sync(hoard_fs_store(fs));
	if (r == 0)
		printf("%llu\n", (unsigned long long)ino);
	return r;
}

/* format2: what an older build would have written (FORMAT 1, 2.2). */
static int to_format2(struct hoard_store *st)
{
	struct hoard_batch *b = hoard_batch_new(st);
	struct hoard_iter *it;
	uint8_t fmt[4];
	size_t n = 0;
	int r = 0;

	if (!b)
		return -ENOMEM;
	it = hoard_iter_new(st, HOARD_CF_DIRENTS, "", 0);
	for (; it && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = hoard_iter_key(it, &kl);
		const uint8_t *v = hoard_iter_value(it, &vl);

		if (vl > DIRENT_VAL_SIZE) {
			hoard_batch_put(b, HOARD_CF_DIRENTS, k, kl, v,
					DIRENT_VAL_SIZE);
			n++;
		}
	}
	hoard_iter_free(it);
	it = hoard_iter_new(st, HOARD_CF_INODES, "", 0);
	for (; it && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = hoard_iter_key(it, &kl);
		const uint8_t *v = hoard_iter_value(it, &vl);
		uint8_t nv[INODE_REC_MAX];
		struct hoard_inode in;

		if (inode_decode(v, vl, &in) < 0) {
			r = -EBADMSG;
			break;
		}
		if (in.home_parent || in.link_parent[0])
			hoard_batch_put(b, HOARD_CF_INODES, k, kl, nv,
					inode_encode_v1(&in, nv));
		inode_clear(&in);
	}
	hoard_iter_free(it);
	hoard_put_be32(fmt, 2);
	hoard_batch_put(b, HOARD_CF_DEFAULT, "format", 6, fmt, 4);
	if (r == 0)
		r = hoard_store_write(st, b, true);
	hoard_batch_free(b);
	if (r == 0)
		printf("%zu\n", n);
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
	if (!dir || ((!vol || !path) && strcmp(mode, "format2")) ||
	    (strcmp(mode, "frame") && strcmp(mode, "record") &&
	     strcmp(mode, "refcount") && strcmp(mode, "data") &&
	     strcmp(mode, "entry") && strcmp(mode, "digest") &&
	     strcmp(mode, "stale-copy") && strcmp(mode, "uncopied") &&
	     strcmp(mode, "format2"))) {
		fprintf(stderr, "usage: hoard-test-corrupt --store DIR "
				"--volume NAME --path PATH "
				"[--mode frame|record|refcount|data|entry|"
				"digest|stale-copy|uncopied]\n"
				"       hoard-test-corrupt --store DIR "
				"--mode format2\n");
		return 2;
	}
	if (hoard_store_open(dir, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "hoard-test-corrupt: %s\n", err);
		return 1;
	}
	if (!strcmp(mode, "format2")) {
		r = to_format2(st);
		if (r < 0)
			fprintf(stderr, "hoard-test-corrupt: %s\n",
				strerror(-r));
		hoard_store_close(st);
		return r < 0 ? 1 : 0;
	}
	r = hoard_fs_new(st, NULL, &fs);
	if (r == 0)
		r = hoard_fs_volume(fs, vol, false, &root);
	if (r == 0 && !strcmp(mode, "entry")) {
		r = drop_entry(fs, root, path);
	} else if (r == 0 &&
		   (!strcmp(mode, "stale-copy") || !strcmp(mode, "uncopied"))) {
		r = damage_copy(fs, root, path, mode);
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
