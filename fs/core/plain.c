/* SPDX-License-Identifier: MIT */
/*
 * plain: the plain-file tier (plain.h, docs/FORMAT.md section 7).
 *
 * The index is a list of the copies present (ino, bytes, last use, users:
 * passthrough opens holding it); the job queue a list of inodes to copy.
 * A copy is made by the worker from the file's committed extents, each
 * chunk read from the store and re-hashed (chunks_load_local), into
 * plain/.tmp.<ino>, then renamed to plain/<ino>.  Any change to the file
 * calls plain_drop() first: it deletes the copy, or marks the job stale so
 * that the copy under way is thrown away.  So a copy in the index always
 * holds the file's committed content.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hoard/plain.h"
#include "hoard/util.h"
#include "fs-internal.h"

struct copy {
	uint64_t ino, bytes, used; /* used: a tick of the tier's clock */
	unsigned users;		   /* passthrough opens */
	struct copy *next;
};

struct job {
	uint64_t ino, size;
	bool stale;
	struct job *next;
};

struct hoard_plain {
	struct hoard_fs *fs;
	struct hoard_plain_opts o;
	int dirfd;
	pthread_t worker;
	pthread_mutex_t mu;
	pthread_cond_t cv;	     /* with mu: a job, a job done, stop */
	struct copy *copies;	     /* protected by mu */
	struct job *jobs;	     /* protected by mu; the head is in work */
	bool busy, stop;	     /* protected by mu */
	uint64_t tick;		     /* protected by mu */
	struct hoard_plain_counts c; /* protected by mu */
};

static void copy_name(char *buf, size_t n, uint64_t ino, bool tmp)
{
	snprintf(buf, n, "%s%llu", tmp ? ".tmp." : "", (unsigned long long)ino);
}

static struct copy **copy_find(struct hoard_plain *pl, uint64_t ino)
{
	struct copy **pp = &pl->copies;

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

/* Remove a copy from the index and the disk (pl->mu held).  A passthrough
 * open that still uses it keeps reading the unlinked file: the content it
 * shows is the one the open saw, as on a local disk. */
static void copy_remove(struct hoard_plain *pl, struct copy **pp)
{
	struct copy *c = *pp;
	char name[40];

	copy_name(name, sizeof(name), c->ino, false);
	unlinkat(pl->dirfd, name, 0);
	pl->c.bytes -= c->bytes;
	pl->c.files--;
	pl->c.dropped++;
	*pp = c->next;
	free(c);
}

void plain_drop(struct hoard_fs *fs, uint64_t ino)
{
	struct hoard_plain *pl = fs->plain;
	struct copy **pp;

	if (!pl)
		return;
	pthread_mutex_lock(&pl->mu);
	for (struct job *j = pl->jobs; j; j = j->next) {
		if (j->ino == ino)
			j->stale = true;
	}
	pp = copy_find(pl, ino);
	if (*pp)
		copy_remove(pl, pp);
	pthread_mutex_unlock(&pl->mu);
}

int plain_open(struct hoard_fs *fs, uint64_t ino, int *ret_fd)
{
	struct hoard_plain *pl = fs->plain;
	struct copy *c;
	char name[40];
	int fd, r = -ENOENT;

	if (!pl)
		return r;
	pthread_mutex_lock(&pl->mu);
	c = *copy_find(pl, ino);
	if (c) {
		copy_name(name, sizeof(name), ino, false);
		/* read-write: a later write open of the file goes through
		 * the same backing file (FORMAT 7.3) */
		fd = openat(pl->dirfd, name, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
			copy_remove(pl, copy_find(pl, ino));
		} else {
			c->users++;
			c->used = ++pl->tick;
			pl->c.hits++;
			*ret_fd = fd;
			r = 0;
		}
	}
	pthread_mutex_unlock(&pl->mu);
	return r;
}

void plain_hit(struct hoard_fs *fs)
{
	struct hoard_plain *pl = fs->plain;

	if (!pl)
		return;
	pthread_mutex_lock(&pl->mu);
	pl->c.hits++;
	pthread_mutex_unlock(&pl->mu);
}

void plain_unuse(struct hoard_fs *fs, uint64_t ino)
{
	struct hoard_plain *pl = fs->plain;
	struct copy *c;

	if (!pl)
		return;
	pthread_mutex_lock(&pl->mu);
	c = *copy_find(pl, ino);
	if (c && c->users)
		c->users--;
	pthread_mutex_unlock(&pl->mu);
}

int plain_detach(struct hoard_fs *fs, uint64_t ino)
{
	struct hoard_plain *pl = fs->plain;
	struct copy **pp, *c;
	char name[40];
	int r = 0;

	if (!pl)
		return -ENOENT;
	pthread_mutex_lock(&pl->mu);
	pp = copy_find(pl, ino);
	c = *pp;
	copy_name(name, sizeof(name), ino, false);
	if (renameat(pl->dirfd, name, fs->staging_dirfd, name) < 0)
		r = -errno;
	if (c) {
		pl->c.bytes -= c->bytes;
		pl->c.files--;
		*pp = c->next;
		free(c);
	}
	pthread_mutex_unlock(&pl->mu);
	return r;
}

void plain_want(struct hoard_fs *fs, uint64_t ino, uint64_t size)
{
	struct hoard_plain *pl = fs->plain;
	struct job *j, **pp;

	if (!pl || size < pl->o.min_file || size > pl->o.max_bytes)
		return;
	pthread_mutex_lock(&pl->mu);
	if (*copy_find(pl, ino))
		goto out_unlock;
	for (pp = &pl->jobs; *pp; pp = &(*pp)->next) {
		if ((*pp)->ino == ino && !(*pp)->stale)
			goto out_unlock;
	}
	j = calloc(1, sizeof(*j));
	if (j) {
		j->ino = ino;
		j->size = size;
		*pp = j;
		pthread_cond_broadcast(&pl->cv);
	}
out_unlock:
	pthread_mutex_unlock(&pl->mu);
}

/* Make room for n more bytes: least recently used copies without users
 * go first.  false when that cannot be done (pl->mu held). */
static bool make_room(struct hoard_plain *pl, uint64_t n)
{
	while (pl->c.bytes + n > pl->o.max_bytes) {
		struct copy **lru = NULL;

		for (struct copy **pp = &pl->copies; *pp; pp = &(*pp)->next) {
			if (!(*pp)->users &&
			    (!lru || (*pp)->used < (*lru)->used))
				lru = pp;
		}
		if (!lru)
			return false;
		copy_remove(pl, lru);
	}
	return true;
}

/* Write the committed content of ino into fd: every extent's chunk read
 * from the store and verified.  -EAGAIN when a chunk is not local (a lazy
 * file: copied once its chunks are), -EBADMSG on a corrupt chunk. */
static int copy_extents(struct hoard_plain *pl, uint64_t ino, int fd)
{
	struct hoard_fs *fs = pl->fs;
	struct hoard_iter *it;
	uint8_t k[8];
	int r = 0;

	ino_key(k, ino);
	it = hoard_iter_new(fs->st, HOARD_CF_EXTENTS, k, 8);
	if (!it)
		return -ENOMEM;
	for (; r == 0 && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *key = hoard_iter_key(it, &kl);
		const uint8_t *v = hoard_iter_value(it, &vl);
		struct chunk_rec rec;
		struct extent_rec e;
		uint8_t *data;

		r = extent_decode(key, kl, v, vl, &e);
		if (r < 0)
			break;
		r = chunk_rec_load(fs, &e.id, &rec);
		if (r == 0 && !(rec.flags & 1))
			r = rec.has_loc ? -EAGAIN : -EBADMSG;
		if (r == 0)
			r = chunks_load_local(fs, &e.id, e.len, &data);
		if (r < 0)
			break;
		if (hoard_pwrite_full(fd, data, e.len, (off_t)e.off) < 0)
			r = -errno;
		free(data);
	}
	hoard_iter_free(it);
	return r;
}

/* One job: copy, then put the copy in place unless the file changed. */
static void copy_one(struct hoard_plain *pl, struct job *j)
{
	struct hoard_inode in;
	char tmp[40], name[40];
	struct copy *c = NULL;
	int fd, r;

	copy_name(tmp, sizeof(tmp), j->ino, true);
	copy_name(name, sizeof(name), j->ino, false);
	r = inode_load(pl->fs, j->ino, &in);
	if (r < 0)
		goto out;
	j->size = in.size;
	inode_clear(&in);
	pthread_mutex_lock(&pl->mu);
	r = j->stale ? -ESTALE : make_room(pl, j->size) ? 0 : -ENOSPC;
	pthread_mutex_unlock(&pl->mu);
	if (r < 0)
		goto out;
	fd = openat(pl->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = copy_extents(pl, j->ino, fd);
	if (r == 0 && ftruncate(fd, (off_t)j->size) < 0)
		r = -errno;
	/*
	 * Written back and dropped from the page cache: the pages the copy
	 * was written through are small folios (and dirty), so passthrough
	 * reads and mmap of them ran at FUSE-like speed (warm mmap 0.13x of
	 * the local disk in the benchmark); read back through the backing
	 * file's read-ahead they are the local disk's.  It also keeps a copy
	 * from holding a second set of the file's pages in memory.  Not a
	 * durability step: copies never outlive the daemon (FORMAT 7.2).
	 */
	if (r == 0 && fdatasync(fd) == 0)
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	c = calloc(1, sizeof(*c));
	if (r == 0 && !c)
		r = -ENOMEM;
	pthread_mutex_lock(&pl->mu);
	if (j->stale) /* also a chunk freed by the change under way */
		r = -ESTALE;
	if (r == 0 && !make_room(pl, j->size))
		r = -ENOSPC;
	if (r == 0 && renameat(pl->dirfd, tmp, pl->dirfd, name) < 0)
		r = -errno;
	if (r == 0) {
		c->ino = j->ino;
		c->bytes = j->size;
		c->used = ++pl->tick;
		c->next = pl->copies;
		pl->copies = c;
		c = NULL;
		pl->c.bytes += j->size;
		pl->c.files++;
		pl->c.made++;
	} else if (r != -ESTALE && r != -EAGAIN && r != -ENOSPC) {
		pl->c.failed++;
	}
	pthread_mutex_unlock(&pl->mu);
out:
	free(c);
	if (r < 0)
		unlinkat(pl->dirfd, tmp, 0);
	if (r == -EBADMSG)
		hoard_log(LOG_ERR,
			  "inode %llu: no plain copy: a chunk is corrupt "
			  "(readers get EIO; run hoard fsck)",
			  (unsigned long long)j->ino);
	else if (r < 0 && r != -ESTALE && r != -EAGAIN && r != -ENOSPC &&
		 r != -ENOENT)
		hoard_log(LOG_WARNING, "inode %llu: no plain copy: %s",
			  (unsigned long long)j->ino, strerror(-r));
	else if (r == 0)
		hoard_log(LOG_DEBUG, "inode %llu: plain copy made (%llu bytes)",
			  (unsigned long long)j->ino,
			  (unsigned long long)j->size);
}

static void *worker(void *arg)
{
	struct hoard_plain *pl = arg;

	pthread_mutex_lock(&pl->mu);
	for (;;) {
		struct job *j = pl->jobs;

		if (pl->stop)
			break;
		if (!j) {
			pl->busy = false;
			pthread_cond_broadcast(&pl->cv);
			pthread_cond_wait(&pl->cv, &pl->mu);
			continue;
		}
		pl->busy = true;
		pthread_mutex_unlock(&pl->mu);
		if (!j->stale)
			copy_one(pl, j);
		pthread_mutex_lock(&pl->mu);
		pl->jobs = j->next;
		free(j);
	}
	pl->busy = false;
	pthread_cond_broadcast(&pl->cv);
	pthread_mutex_unlock(&pl->mu);
	return NULL;
}

/* Delete every entry of the directory (copies and temporary files). */
static void clear_dir(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	size_t n = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' &&
		    (!e->d_name[1] || !strcmp(e->d_name, "..")))
			continue;
		if (unlinkat(dirfd, e->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	if (n)
		hoard_log(LOG_INFO,
			  "plain tier: dropped %zu copies of an "
			  "earlier run",
			  n);
}

void hoard_plain_clear(struct hoard_fs *fs)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/plain", hoard_store_dir(fs->st));
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	clear_dir(fd);
	close(fd);
}

int hoard_plain_new(struct hoard_fs *fs, const struct hoard_plain_opts *o,
		    struct hoard_plain **ret_pl)
{
	struct hoard_plain *pl = calloc(1, sizeof(*pl));
	char path[4096];
	int r;

	if (!pl)
		return -ENOMEM;
	pl->fs = fs;
	pl->o = *o;
	pthread_mutex_init(&pl->mu, NULL);
	pthread_cond_init(&pl->cv, NULL);
	snprintf(path, sizeof(path), "%s/plain", hoard_store_dir(fs->st));
	mkdir(path, 0700);
	pl->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pl->dirfd < 0) {
		r = -errno;
		goto out_free;
	}
	clear_dir(pl->dirfd);
	r = -pthread_create(&pl->worker, NULL, worker, pl);
	if (r < 0)
		goto out_close;
	fs->plain = pl;
	*ret_pl = pl;
	return 0;
out_close:
	close(pl->dirfd);
out_free:
	pthread_mutex_destroy(&pl->mu);
	pthread_cond_destroy(&pl->cv);
	free(pl);
	return r;
}

void hoard_plain_free(struct hoard_plain *pl)
{
	if (!pl)
		return;
	pthread_mutex_lock(&pl->mu);
	pl->stop = true;
	pthread_cond_broadcast(&pl->cv);
	pthread_mutex_unlock(&pl->mu);
	pthread_join(pl->worker, NULL);
	pl->fs->plain = NULL;
	while (pl->jobs) {
		struct job *j = pl->jobs;

		pl->jobs = j->next;
		free(j);
	}
	while (pl->copies)
		copy_remove(pl, &pl->copies);
	clear_dir(pl->dirfd);
	close(pl->dirfd);
	pthread_mutex_destroy(&pl->mu);
	pthread_cond_destroy(&pl->cv);
	free(pl);
}

void hoard_plain_get_counts(struct hoard_plain *pl,
			    struct hoard_plain_counts *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!pl)
		return;
	pthread_mutex_lock(&pl->mu);
	*ret = pl->c;
	pthread_mutex_unlock(&pl->mu);
}

bool hoard_plain_present(struct hoard_plain *pl, uint64_t ino)
{
	bool r;

	if (!pl)
		return false;
	pthread_mutex_lock(&pl->mu);
	r = *copy_find(pl, ino) != NULL;
	pthread_mutex_unlock(&pl->mu);
	return r;
}

void hoard_plain_idle(struct hoard_plain *pl)
{
	if (!pl)
		return;
	pthread_mutex_lock(&pl->mu);
	while (pl->jobs || pl->busy)
		pthread_cond_wait(&pl->cv, &pl->mu);
	pthread_mutex_unlock(&pl->mu);
}
