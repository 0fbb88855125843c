/* SPDX-License-Identifier: MIT */
/*
 * hoard-nullfs: a FUSE filesystem that does no storage work, the floor the
 * benchmark (tests/bench/bench.py) measures hoardfs against.
 *
 *   hoard-nullfs [--discard] MOUNTPOINT
 *
 * Mounts an empty in-memory filesystem at MOUNTPOINT and serves it in the
 * foreground until it is unmounted (fusermount3 -u MOUNTPOINT) or gets
 * SIGINT/SIGTERM; prints nothing on success.  Everything lives in memory:
 * inodes and names in two hash tables, file data in malloc'd buffers, one
 * mutex around all of it.  With --discard, file data is not kept: a write
 * only moves the file's size and every read returns zeros (the ingest
 * floor: what a FUSE write costs before the filesystem touches the bytes).  It is mounted and served the way hoardfs is
 * (fs/daemon/hoardfs.c: allow_other, default_permissions, max_write 1 MiB, async
 * DIO, max_background 64, congestion_threshold 48, time_gran 1, keep_cache on open, a day of entry and attribute
 * timeout, cacheable negative lookups, getxattr answering ENODATA, the same
 * multi-threaded loop settings), so that the time a workload takes on it
 * is the kernel's and libfuse's share of what it takes on hoard.
 *
 * Operations: lookup, forget, getattr, setattr (size, mode, owner, times),
 * mkdir, unlink, rmdir, open, create, read, write, flush, release,
 * opendir, readdir, releasedir, statfs, getxattr.  No rename, links,
 * symlinks or xattrs (ENOSYS / ENODATA).
 *
 * Exit status: 0 after an unmount, 1 when it cannot mount, 2 on a usage
 * error.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

/* as in fs/daemon/hoardfs.c */
#define ENTRY_TIMEOUT 86400.0
#define NEG_TIMEOUT   60.0
#define NAME_MAX_LEN  255
#define MAX_FILE_SIZE (1ull << 36) /* in memory: 64 GiB at most */

struct node;

/* A name in a directory: in the name table and in its directory's list. */
struct dent {
	fuse_ino_t parent;
	char *name;
	uint64_t hash;
	struct node *child;
	struct dent *hnext;	  /* name table chain */
	struct dent *prev, *next; /* the directory's list */
};

struct node {
	struct stat st; /* st_ino is the FUSE inode number */
	fuse_ino_t parent;
	uint64_t nlookup;
	char *data; /* regular files: st.st_size bytes valid */
	size_t cap;
	struct dent *first; /* directories: their names */
	size_t nchildren;
	struct node *hnext; /* inode table chain */
};

struct table {
	void **slots;
	size_t nslots, count;
};

static struct {
	pthread_mutex_t mu;
	struct table inodes; /* struct node, by st_ino */
	struct table names;  /* struct dent, by (parent, name) */
	fuse_ino_t next_ino;
	uint64_t bytes;
	bool discard; /* set once, before mounting: --discard */
} N = {.mu = PTHREAD_MUTEX_INITIALIZER, .next_ino = FUSE_ROOT_ID};

/* ---- tables ------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static uint64_t name_hash(fuse_ino_t parent, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull ^ mix(parent);

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return mix(h);
}

static void **inode_slot(struct table *t, fuse_ino_t ino)
{
	return &t->slots[mix(ino) & (t->nslots - 1)];
}

static void **name_slot(struct table *t, uint64_t hash)
{
	return &t->slots[hash & (t->nslots - 1)];
}

/* Doubles the table when it holds as many entries as slots. */
static int table_grow(struct table *t, bool names)
{
	size_t n = t->nslots ? t->nslots * 2 : 1024;
	void **slots;

	if (t->count < t->nslots)
		return 0;
	slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < t->nslots; i++) {
		void *e = t->slots[i];

		while (e) {
			void *next;
			size_t k;

			if (names) {
				struct dent *d = e;

				next = d->hnext;
				k = d->hash & (n - 1);
				d->hnext = slots[k];
			} else {
				struct node *nd = e;

				next = nd->hnext;
				k = mix(nd->st.st_ino) & (n - 1);
				nd->hnext = slots[k];
			}
			slots[k] = e;
			e = next;
		}
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = n;
	return 0;
}

static struct node *node_get(fuse_ino_t ino)
{
	struct node *nd = *inode_slot(&N.inodes, ino);

	while (nd && nd->st.st_ino != ino)
		nd = nd->hnext;
	return nd;
}

static struct dent *dent_get(fuse_ino_t parent, const char *name)
{
	uint64_t h = name_hash(parent, name);
	struct dent *d = *name_slot(&N.names, h);

	while (d && (d->hash != h || d->parent != parent ||
		     strcmp(d->name, name) != 0))
		d = d->hnext;
	return d;
}

/* ---- nodes -------------------------------------------------------------- */

static struct timespec now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static struct node *node_new(mode_t mode, uid_t uid, gid_t gid,
			     fuse_ino_t parent)
{
	struct node *nd;
	struct timespec t = now();
	void **slot;

	if (table_grow(&N.inodes, false) < 0)
		return NULL;
	nd = calloc(1, sizeof(*nd));
	if (!nd)
		return NULL;
	nd->st.st_ino = N.next_ino++;
	nd->st.st_mode = mode;
	nd->st.st_nlink = S_ISDIR(mode) ? 2 : 1;
	nd->st.st_uid = uid;
	nd->st.st_gid = gid;
	nd->st.st_blksize = 1 << 20;
	nd->st.st_atim = nd->st.st_mtim = nd->st.st_ctim = t;
	nd->parent = parent;
	slot = inode_slot(&N.inodes, nd->st.st_ino);
	nd->hnext = *slot;
	*slot = nd;
	N.inodes.count++;
	return nd;
}

/* Frees a node nothing refers to any more: no name, no kernel lookup. */
static void node_maybe_free(struct node *nd)
{
	void **slot;

	if (nd->st.st_nlink > 0 || nd->nlookup > 0 ||
	    nd->st.st_ino == FUSE_ROOT_ID)
		return;
	slot = inode_slot(&N.inodes, nd->st.st_ino);
	while (*slot != nd)
		slot = (void **)&((struct node *)*slot)->hnext;
	*slot = nd->hnext;
	N.inodes.count--;
	N.bytes -= nd->cap;
	free(nd->data);
	free(nd);
}

/* Sets the file's size, zeroing what a larger size exposes. */
static int node_resize(struct node *nd, size_t size)
{
	size_t old = (size_t)nd->st.st_size;

	if (size > MAX_FILE_SIZE)
		return -EFBIG;
	if (N.discard) { /* no data: the size alone */
		nd->st.st_size = (off_t)size;
		nd->st.st_blocks = (blkcnt_t)((size + 511) / 512);
		return 0;
	}
	if (size > nd->cap) {
		size_t cap = nd->cap + nd->cap / 2;
		char *p;

		if (cap < size)
			cap = size;
		p = realloc(nd->data, cap);
		if (!p)
			return -ENOSPC;
		N.bytes += cap - nd->cap;
		nd->data = p;
		nd->cap = cap;
	}
	if (size > old)
		memset(nd->data + old, 0, size - old);
	nd->st.st_size = (off_t)size;
	nd->st.st_blocks = (blkcnt_t)((size + 511) / 512);
	return 0;
}

static int dent_add(struct node *dir, const char *name, struct node *child)
{
	struct dent *d;
	void **slot;

	if (table_grow(&N.names, true) < 0)
		return -ENOMEM;
	d = calloc(1, sizeof(*d));
	if (!d || !(d->name = strdup(name))) {
		free(d);
		return -ENOMEM;
	}
	d->parent = dir->st.st_ino;
	d->hash = name_hash(d->parent, name);
	d->child = child;
	slot = name_slot(&N.names, d->hash);
	d->hnext = *slot;
	*slot = d;
	N.names.count++;
	d->next = dir->first;
	if (dir->first)
		dir->first->prev = d;
	dir->first = d;
	dir->nchildren++;
	dir->st.st_mtim = dir->st.st_ctim = now();
	return 0;
}

static void dent_del(struct node *dir, struct dent *d)
{
	void **slot = name_slot(&N.names, d->hash);

	while (*slot != d)
		slot = (void **)&((struct dent *)*slot)->hnext;
	*slot = d->hnext;
	N.names.count--;
	if (d->prev)
		d->prev->next = d->next;
	else
		dir->first = d->next;
	if (d->next)
		d->next->prev = d->prev;
	dir->nchildren--;
	dir->st.st_mtim = dir->st.st_ctim = now();
	free(d->name);
	free(d);
}

/* ---- replies ------------------------------------------------------------ */

static void reply_entry(fuse_req_t req, struct node *nd)
{
	struct fuse_entry_param e = {0};

	e.ino = nd->st.st_ino;
	e.attr = nd->st;
	e.attr_timeout = ENTRY_TIMEOUT;
	e.entry_timeout = ENTRY_TIMEOUT;
	nd->nlookup++;
	pthread_mutex_unlock(&N.mu);
	if (fuse_reply_entry(req, &e) == -ENOENT) { /* interrupted */
		pthread_mutex_lock(&N.mu);
		nd = node_get(e.ino);
		if (nd) {
			nd->nlookup--;
			node_maybe_free(nd);
		}
		pthread_mutex_unlock(&N.mu);
	}
}

static void reply_err_unlock(fuse_req_t req, int err)
{
	pthread_mutex_unlock(&N.mu);
	fuse_reply_err(req, err);
}

/* The directory a new name goes into, or an errno. */
static int dir_for_new(fuse_ino_t parent, const char *name, struct node **dir)
{
	if (strlen(name) > NAME_MAX_LEN)
		return ENAMETOOLONG;
	*dir = node_get(parent);
	if (!*dir)
		return ENOENT;
	if (!S_ISDIR((*dir)->st.st_mode))
		return ENOTDIR;
	if (dent_get(parent, name))
		return EEXIST;
	return 0;
}

/* ---- operations --------------------------------------------------------- */

/* The node ino, with N.mu held; NULL when ENOENT was answered (and N.mu
 * released). */
static struct node *node_find(fuse_req_t req, fuse_ino_t ino)
{
	struct node *nd;

	pthread_mutex_lock(&N.mu);
	nd = node_get(ino);
	if (!nd)
		reply_err_unlock(req, ENOENT);
	return nd;
}

/* The entry name in parent, with N.mu held; NULL when ENOENT was answered
 * (and N.mu released). */
static struct dent *dent_find(fuse_req_t req, fuse_ino_t parent,
			      const char *name, struct node **ret_dir)
{
	struct dent *d;

	pthread_mutex_lock(&N.mu);
	*ret_dir = node_get(parent);
	d = *ret_dir ? dent_get(parent, name) : NULL;
	if (!d)
		reply_err_unlock(req, ENOENT);
	return d;
}

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	conn->time_gran = 1;
	conn->max_write = 1u << 20;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	conn->max_background = 64;	 /* hoardfs's MAX_BACKGROUND */
	conn->congestion_threshold = 48; /* and CONGESTION_THRESHOLD */
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct dent *d;

	pthread_mutex_lock(&N.mu);
	d = dent_get(parent, name);
	if (!d) {
		/* a cacheable negative entry, as hoardfs answers */
		struct fuse_entry_param e = {.entry_timeout = NEG_TIMEOUT};

		pthread_mutex_unlock(&N.mu);
		if (!node_get(parent))
			fuse_reply_err(req, ENOENT);
		else
			fuse_reply_entry(req, &e);
		return;
	}
	reply_entry(req, d->child);
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup)
{
	struct node *nd = node_get(ino);

	if (!nd)
		return;
	nd->nlookup = nlookup < nd->nlookup ? nd->nlookup - nlookup : 0;
	node_maybe_free(nd);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	pthread_mutex_lock(&N.mu);
	forget_one(ino, nlookup);
	pthread_mutex_unlock(&N.mu);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	pthread_mutex_lock(&N.mu);
	for (size_t i = 0; i < count; i++)
		forget_one(forgets[i].ino, forgets[i].nlookup);
	pthread_mutex_unlock(&N.mu);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct node *nd;
	struct stat st;

	(void)fi;
	nd = node_find(req, ino);
	if (!nd)
		return;
	st = nd->st;
	pthread_mutex_unlock(&N.mu);
	fuse_reply_attr(req, &st, ENTRY_TIMEOUT);
}

static void set_time(struct timespec *ts, const struct timespec *given,
		     bool to_now, struct timespec t)
{
	*ts = to_now ? t : *given;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct timespec t = now();
	struct node *nd;
	struct stat st;
	int r;

	(void)fi;
	nd = node_find(req, ino);
	if (!nd)
		return;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (!S_ISREG(nd->st.st_mode)) {
			reply_err_unlock(req, S_ISDIR(nd->st.st_mode) ? EISDIR
								      : EINVAL);
			return;
		}
		r = attr->st_size < 0 ? -EINVAL
				      : node_resize(nd, (size_t)attr->st_size);
		if (r < 0) {
			reply_err_unlock(req, -r);
			return;
		}
		nd->st.st_mtim = t;
	}
	if (to_set & FUSE_SET_ATTR_MODE)
		nd->st.st_mode = (nd->st.st_mode & S_IFMT) |
				 (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_UID)
		nd->st.st_uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		nd->st.st_gid = attr->st_gid;
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW))
		set_time(&nd->st.st_atim, &attr->st_atim,
			 to_set & FUSE_SET_ATTR_ATIME_NOW, t);
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
		set_time(&nd->st.st_mtim, &attr->st_mtim,
			 to_set & FUSE_SET_ATTR_MTIME_NOW, t);
	nd->st.st_ctim = (to_set & FUSE_SET_ATTR_CTIME) ? attr->st_ctim : t;
	st = nd->st;
	pthread_mutex_unlock(&N.mu);
	fuse_reply_attr(req, &st, ENTRY_TIMEOUT);
}

/* A new node of type fmt named name in parent: returned with N.mu held,
 * or NULL when the error was answered (and N.mu released). */
static struct node *entry_new(fuse_req_t req, fuse_ino_t parent,
			      const char *name, mode_t fmt, mode_t mode,
			      struct node **ret_dir)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct node *nd;
	int err;

	pthread_mutex_lock(&N.mu);
	err = dir_for_new(parent, name, ret_dir);
	if (err) {
		reply_err_unlock(req, err);
		return NULL;
	}
	nd = node_new(fmt | (mode & 07777), c->uid, c->gid, parent);
	if (!nd) {
		reply_err_unlock(req, ENOMEM);
		return NULL;
	}
	if (dent_add(*ret_dir, name, nd) < 0) {
		nd->st.st_nlink = 0;
		node_maybe_free(nd);
		reply_err_unlock(req, ENOMEM);
		return NULL;
	}
	return nd;
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct node *dir,
		*nd = entry_new(req, parent, name, S_IFDIR, mode, &dir);

	if (!nd)
		return;
	dir->st.st_nlink++;
	reply_entry(req, nd);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *dir, *nd;
	struct dent *d = dent_find(req, parent, name, &dir);

	if (!d)
		return;
	nd = d->child;
	if (S_ISDIR(nd->st.st_mode)) {
		reply_err_unlock(req, EISDIR);
		return;
	}
	dent_del(dir, d);
	nd->st.st_nlink--;
	nd->st.st_ctim = now();
	node_maybe_free(nd);
	reply_err_unlock(req, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *dir, *nd;
	struct dent *d = dent_find(req, parent, name, &dir);

	if (!d)
		return;
	nd = d->child;
	if (!S_ISDIR(nd->st.st_mode)) {
		reply_err_unlock(req, ENOTDIR);
		return;
	}
	if (nd->nchildren) {
		reply_err_unlock(req, ENOTEMPTY);
		return;
	}
	dent_del(dir, d);
	dir->st.st_nlink--;
	nd->st.st_nlink = 0;
	node_maybe_free(nd);
	reply_err_unlock(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *nd;

	nd = node_find(req, ino);
	if (!nd)
		return;
	if (S_ISDIR(nd->st.st_mode)) {
		reply_err_unlock(req, EISDIR);
		return;
	}
	if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY) {
		node_resize(nd, 0);
		nd->st.st_mtim = nd->st.st_ctim = now();
	}
	pthread_mutex_unlock(&N.mu);
	fi->keep_cache = 1; /* as hoardfs */
	fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e = {0};
	struct node *dir,
		*nd = entry_new(req, parent, name, S_IFREG, mode, &dir);

	if (!nd)
		return;
	nd->nlookup++;
	e.ino = nd->st.st_ino;
	e.attr = nd->st;
	e.attr_timeout = e.entry_timeout = ENTRY_TIMEOUT;
	pthread_mutex_unlock(&N.mu);
	fi->keep_cache = 1;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		pthread_mutex_lock(&N.mu);
		nd = node_get(e.ino);
		if (nd) {
			nd->nlookup--;
			node_maybe_free(nd);
		}
		pthread_mutex_unlock(&N.mu);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct node *nd;
	char *buf;
	size_t n = 0;

	(void)fi;
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&N.mu);
	nd = node_get(ino);
	if (!nd) {
		free(buf);
		reply_err_unlock(req, ENOENT);
		return;
	}
	if (off >= 0 && off < nd->st.st_size) {
		n = (size_t)(nd->st.st_size - off);
		if (n > size)
			n = size;
		if (N.discard)
			memset(buf, 0, n);
		else
			memcpy(buf, nd->data + off, n);
	}
	pthread_mutex_unlock(&N.mu);
	fuse_reply_buf(req, buf, n);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct node *nd;
	int r;

	(void)fi;
	nd = node_find(req, ino);
	if (!nd)
		return;
	if (off < 0) {
		reply_err_unlock(req, EINVAL);
		return;
	}
	if ((size_t)off + size > (size_t)nd->st.st_size &&
	    (r = node_resize(nd, (size_t)off + size)) < 0) {
		reply_err_unlock(req, -r);
		return;
	}
	if (!N.discard)
		memcpy(nd->data + off, buf, size);
	nd->st.st_mtim = nd->st.st_ctim = now();
	pthread_mutex_unlock(&N.mu);
	fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

/* A directory listing as of opendir: ".", "..", then the names. */
struct listing {
	size_t n;
	struct {
		char *name;
		fuse_ino_t ino;
		mode_t mode;
	} e[];
};

static void listing_free(struct listing *l)
{
	for (size_t i = 0; l && i < l->n; i++)
		free(l->e[i].name);
	free(l);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct listing *l;
	struct node *nd;
	size_t i = 0;

	pthread_mutex_lock(&N.mu);
	nd = node_get(ino);
	if (!nd || !S_ISDIR(nd->st.st_mode)) {
		reply_err_unlock(req, nd ? ENOTDIR : ENOENT);
		return;
	}
	l = calloc(1, sizeof(*l) + (nd->nchildren + 2) * sizeof(l->e[0]));
	if (!l) {
		reply_err_unlock(req, ENOMEM);
		return;
	}
	l->e[i].name = strdup(".");
	l->e[i].ino = nd->st.st_ino;
	l->e[i++].mode = S_IFDIR;
	l->e[i].name = strdup("..");
	l->e[i].ino = nd->parent;
	l->e[i++].mode = S_IFDIR;
	for (struct dent *d = nd->first; d; d = d->next) {
		l->e[i].name = strdup(d->name);
		l->e[i].ino = d->child->st.st_ino;
		l->e[i++].mode = d->child->st.st_mode & S_IFMT;
	}
	l->n = i;
	pthread_mutex_unlock(&N.mu);
	for (i = 0; i < l->n; i++) {
		if (!l->e[i].name) {
			listing_free(l);
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	fi->fh = (uintptr_t)l;
	if (fuse_reply_open(req, fi) == -ENOENT)
		listing_free(l);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct listing *l = (struct listing *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	size_t used = 0;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = off > 0 ? (size_t)off : 0; i < l->n; i++) {
		struct stat st = {.st_ino = l->e[i].ino,
				  .st_mode = l->e[i].mode};
		size_t n = fuse_add_direntry(req, buf + used, size - used,
					     l->e[i].name, &st, (off_t)i + 1);

		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	listing_free((struct listing *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = {
		.f_bsize = 4096, .f_frsize = 4096, .f_namemax = NAME_MAX_LEN};

	(void)ino;
	pthread_mutex_lock(&N.mu);
	sv.f_blocks = (fsblkcnt_t)1 << 30;
	sv.f_bfree = sv.f_bavail = sv.f_blocks - N.bytes / 4096;
	sv.f_files = (fsfilcnt_t)1 << 32;
	sv.f_ffree = sv.f_favail = sv.f_files - N.inodes.count;
	pthread_mutex_unlock(&N.mu);
	fuse_reply_statfs(req, &sv);
}

/* No extended attributes, but the kernel must keep asking (as it asks
 * hoardfs for security.capability on every write): ENODATA, not ENOSYS. */
static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	(void)ino;
	(void)name;
	(void)size;
	fuse_reply_err(req, ENODATA);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
};

/* ---- main --------------------------------------------------------------- */

static int usage(FILE *f, int status)
{
	fputs("usage: hoard-nullfs [--discard] MOUNTPOINT\n"
	      "Mounts an empty in-memory FUSE filesystem that does no storage "
	      "work (the\nbenchmark's floor), in the foreground until "
	      "'fusermount3 -u MOUNTPOINT'.\n"
	      "  --discard  keep no file data: writes set the size, reads "
	      "return zeros\n",
	      f);
	return status;
}

int main(int argc, char **argv)
{
	char *fargv[] = {argv[0], "-o",
			 "allow_other,default_permissions,fsname=nullfs,"
			 "subtype=nullfs",
			 NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_loop_config *cfg;
	struct fuse_session *se;
	struct node *root;
	const char *mp;
	int r;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return usage(stdout, 0);
	if (argc == 3 && !strcmp(argv[1], "--discard"))
		N.discard = true;
	else if (argc != 2)
		return usage(stderr, 2);
	mp = argv[argc - 1];
	if (mp[0] == '-')
		return usage(stderr, 2);
	/* the first node made gets FUSE_ROOT_ID */
	root = node_new(S_IFDIR | 0755, getuid(), getgid(), FUSE_ROOT_ID);
	if (!root || table_grow(&N.names, true) < 0) {
		fprintf(stderr, "hoard-nullfs: out of memory\n");
		return 1;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	fuse_opt_free_args(&args);
	if (!se) {
		fprintf(stderr, "hoard-nullfs: cannot create a FUSE session\n");
		return 1;
	}
	if (fuse_set_signal_handlers(se) != 0 ||
	    fuse_session_mount(se, mp) != 0) {
		fprintf(stderr, "hoard-nullfs: cannot mount at %s\n", mp);
		fuse_session_destroy(se);
		return 1;
	}
	cfg = fuse_loop_cfg_create();
	/* as hoardfs's mount_thread */
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_idle_threads(cfg, 4);
	r = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return r < 0 ? 1 : 0;
}
