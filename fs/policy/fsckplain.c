/* SPDX-License-Identifier: MIT */
/*
 * fsck: the plain-file tier (docs/FORMAT.md 7).  Every file in STORE/plain
 * must be plain/<ino> holding exactly inode ino's committed content: its
 * size, each extent's chunk bytes (decoded from the frame and re-hashed
 * against the id) at the extent's offset, zeros in the holes.  Anything
 * else (a temporary file, a name that is no inode, a regular file's copy
 * that differs, a chunk that is not local) is a bad copy: counted, and
 * deleted by --repair.  A running daemon deletes them all at start anyway;
 * fsck runs offline, so what it finds is what a crashed daemon left.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoard/chunker.h"
#include "hoard/codec.h"
#include "fsck-internal.h"

/* Compare n bytes of fd at off with want (NULL: zeros); scratch holds n. */
static bool same_bytes(int fd, uint64_t off, const uint8_t *want, size_t n,
		       uint8_t *scratch)
{
	if (hoard_pread_full(fd, scratch, n, (off_t)off) != (ssize_t)n)
		return false;
	if (want)
		return memcmp(scratch, want, n) == 0;
	for (size_t i = 0; i < n; i++) {
		if (scratch[i])
			return false;
	}
	return true;
}

/* Zeros in fd over [from, to). */
static bool zeros(int fd, uint64_t from, uint64_t to, uint8_t *scratch)
{
	while (from < to) {
		size_t n = to - from < HOARD_CHUNK_MAX ? (size_t)(to - from)
						       : HOARD_CHUNK_MAX;

		if (!same_bytes(fd, from, NULL, n, scratch))
			return false;
		from += n;
	}
	return true;
}

/* One extent x of the file: its chunk decoded, re-hashed, compared. */
static bool extent_same(struct fsck *c, int fd, const struct extent_rec *x,
			uint8_t *scratch)
{
	uint64_t off = x->off;
	uint32_t len = x->len;
	struct hoard_id id = x->id, got;
	void *frame;
	size_t fl;
	ssize_t n;
	bool ok;

	if (len > HOARD_CHUNK_MAX)
		return false;
	if (hoard_store_get(c->st, HOARD_CF_CHUNKDATA, id.b, HOARD_ID_SIZE,
			    &frame, &fl) < 0)
		return false;
	n = hoard_codec_decode(frame, fl, c->buf, HOARD_CHUNK_MAX, len);
	free(frame);
	if (n != (ssize_t)len)
		return false;
	hoard_id_compute(hoard_store_key(c->st), c->buf, len, &got);
	ok = hoard_id_equal(&got, &id) &&
	     same_bytes(fd, off, c->buf, len, scratch);
	return ok;
}

/* true when the copy in fd is inode ino's content. */
static bool copy_ok(struct fsck *c, uint64_t ino, int fd, uint8_t *scratch)
{
	struct hoard_inode in;
	struct hoard_iter *it;
	uint64_t filled = 0, size;
	struct stat sb;
	bool ok = true;
	uint8_t k[8];
	void *v;
	size_t vl;

	ino_key(k, ino);
	if (hoard_store_get(c->st, HOARD_CF_INODES, k, 8, &v, &vl) < 0)
		return false;
	if (inode_decode(v, vl, &in) < 0) {
		free(v);
		return false;
	}
	free(v);
	size = in.size;
	ok = S_ISREG(in.mode); /* an orphan's copy may be right too */
	inode_clear(&in);
	if (!ok || fstat(fd, &sb) < 0 || (uint64_t)sb.st_size != size)
		return false;
	it = hoard_iter_new(c->st, HOARD_CF_EXTENTS, k, 8);
	for (; ok && it && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl, el;
		const uint8_t *key = hoard_iter_key(it, &kl);
		const uint8_t *e = hoard_iter_value(it, &el);
		struct extent_rec x;

		if (extent_decode(key, kl, e, el, &x) < 0) {
			ok = false;
			break;
		}
		ok = x.off >= filled && zeros(fd, filled, x.off, scratch) &&
		     extent_same(c, fd, &x, scratch);
		filled = x.off + x.len;
	}
	ok = ok && it && hoard_iter_status(it) == 0 && filled <= size &&
	     zeros(fd, filled, size, scratch);
	hoard_iter_free(it);
	return ok;
}

int fsck_check_plain(struct fsck *c)
{
	char path[4096];
	uint8_t *scratch;
	struct dirent *e;
	int dfd;
	DIR *d;

	snprintf(path, sizeof(path), "%s/plain", hoard_store_dir(c->st));
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	scratch = malloc(HOARD_CHUNK_MAX);
	if (!scratch) {
		closedir(d);
		return -ENOMEM;
	}
	dfd = dirfd(d);
	while ((e = readdir(d))) {
		unsigned long long ino;
		char *end;
		bool ok = false;
		int fd;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		c->rep->plain_copies++;
		/* an unfinished copy (".tmp.<ino>") is what a crash during a
		 * copy leaves, as staging files are: no problem; the daemon
		 * deletes it at start, --repair here */
		if (!strncmp(e->d_name, ".tmp.", 5)) {
			if (c->o->repair && unlinkat(dfd, e->d_name, 0) == 0)
				c->rep->writes++;
			continue;
		}
		errno = 0;
		ino = strtoull(e->d_name, &end, 10);
		if (!errno && *end == 0 && e->d_name[0] != '0' &&
		    e->d_name[0] != '+' && e->d_name[0] != '-') {
			fd = openat(dfd, e->d_name, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				ok = copy_ok(c, ino, fd, scratch);
				close(fd);
			}
		}
		if (ok)
			continue;
		c->rep->problem[HOARD_FSCK_BAD_PLAIN]++;
		c->rep->problems++;
		if (c->o->repair && unlinkat(dfd, e->d_name, 0) == 0)
			c->rep->writes++;
	}
	free(scratch);
	closedir(d);
	return 0;
}
