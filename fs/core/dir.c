/* SPDX-License-Identifier: MIT */
/*
 * dir: directory listing, attributes, xattrs, volumes, statfs, and the
 * life of a struct hoard_fs (start-up recovery, shutdown).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "hoard/json.h"
#include "hoard/util.h"
#include "hoard/volume.h"
#include "fs-internal.h"

/* ---- setattr ------------------------------------------------------------ */

static void set_times(struct hoard_inode *in, const struct stat *a, int set,
		      const struct timespec *now)
{
	if (set & HOARD_SET_ATIME_NOW)
		in->atime = *now;
	else if (set & HOARD_SET_ATIME)
		in->atime = a->st_atim;
	if (set & HOARD_SET_MTIME_NOW)
		in->mtime = *now;
	else if (set & HOARD_SET_MTIME)
		in->mtime = a->st_mtim;
}

int hoard_fs_setattr(struct hoard_fs *fs, uint64_t ino, const struct stat *a,
		     int set, struct hoard_fh *fh, struct stat *ret_st)
{
	struct hoard_batch *b;
	struct hoard_inode in;
	struct istate *is;
	struct timespec now;
	int r = 0;

	r = pend_land(fs); /* it writes records (pend.c) */
	if (r < 0)
		return r;
	if (set & HOARD_SET_SIZE) {
		if (a->st_size < 0)
			return -EINVAL;
		pthread_mutex_lock(&fs->lock);
		is = istate_get(fs, ino);
		if (is)
			is->opens++; /* pin it across the truncate */
		pthread_mutex_unlock(&fs->lock);
		if (!is)
			return -ENOMEM;
		r = inode_load(fs, ino, &in);
		if (r == 0) {
			if (S_ISDIR(in.mode))
				r = -EISDIR;
			else if (!S_ISREG(in.mode))
				r = -EINVAL;
			inode_clear(&in);
		}
		pthread_mutex_lock(&fs->lock);
		is->opens--;
		pthread_mutex_unlock(&fs->lock);
		if (r == 0)
			r = file_truncate(fs, is, (uint64_t)a->st_size);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&fs->lock);
	r = inode_load(fs, ino, &in);
	if (r < 0)
		goto out_unlock;
	now_ts(&now);
	if (set & HOARD_SET_MODE)
		in.mode = (in.mode & S_IFMT) | (a->st_mode & 07777);
	if (set & HOARD_SET_UID)
		in.uid = a->st_uid;
	if (set & HOARD_SET_GID)
		in.gid = a->st_gid;
	set_times(&in, a, set, &now);
	in.ctime = (set & HOARD_SET_CTIME) ? a->st_ctim : now;
	is = istate_find(fs, ino);
	if (is) {
		pthread_mutex_lock(&is->mu);
		if (is->dirty) { /* the commit writes these times later */
			if (set & (HOARD_SET_MTIME | HOARD_SET_MTIME_NOW))
				is->mtime = in.mtime;
			is->ctime = in.ctime;
		}
		pthread_mutex_unlock(&is->mu);
	}
	b = hoard_batch_new(fs->st);
	if (!b) {
		r = -ENOMEM;
		goto out_in;
	}
	inode_put(fs, b, ino, &in);
	r = hoard_store_write(fs->st, b, false);
	hoard_batch_free(b);
	if (r == 0) {
		if (is) {
			pthread_mutex_lock(&is->mu);
			istate_overlay(is, &in);
			pthread_mutex_unlock(&is->mu);
		}
		inode_to_stat(&in, ino, ret_st);
	}
out_in:
	inode_clear(&in);
out_unlock:
	pthread_mutex_unlock(&fs->lock);
	return r;
}

/* ---- readdir ------------------------------------------------------------ */

/* The attributes an entry's copy gave (FORMAT 2.2; nlink is 1). */
struct dattr {
	uint32_t mode, uid, gid, rdev;
	uint64_t size, volume;
	struct timespec atime, mtime, ctime;
};

struct dent {
	uint64_t ino;
	unsigned type;
	bool copy; /* attr is the copy's */
	char *name;
	struct dattr attr;
};

struct hoard_dirh {
	uint64_t ino;
	pthread_mutex_t mu; /* protects the snapshot */
	struct dent *ents;
	size_t n;
	char *names; /* all names, NUL-separated */
	/* the directory's times when the snapshot was taken: while they are
	 * the same, no entry has changed since (meta.c sets them on every
	 * entry it adds, removes or renames) */
	struct timespec mtime, ctime;
	bool stamped;
	/* fs->rec_writes when the snapshot was taken: while it is the same,
	 * no inode record changed since, so the entries' copies are current */
	uint64_t writes;
};

static void dirh_clear(struct hoard_dirh *dh)
{
	free(dh->ents);
	free(dh->names);
	dh->ents = NULL;
	dh->names = NULL;
	dh->n = 0;
}

/* Snapshot the entries: ".", "..", then the names in key order. */
static int dirh_load(struct hoard_fs *fs, struct hoard_dirh *dh)
{
	size_t cap = 64, ncap = 4096, nlen = 0, n = 2;
	struct dent *ents = malloc(cap * sizeof(*ents));
	char *names = malloc(ncap);
	struct hoard_iter *it = NULL;
	struct hoard_inode dir;
	uint8_t k[8];
	bool stamped;
	int r = 0;

	/* the times before the entries: a change in between only makes the
	 * snapshot look older than it is */
	stamped = inode_load(fs, dh->ino, &dir) == 0;
	if (stamped)
		inode_clear(&dir); /* keeps the times */
	ino_key(k, dh->ino);
	/* under the lock: no record is between its put and its write */
	pthread_mutex_lock(&fs->lock);
	dh->writes = __atomic_load_n(&fs->rec_writes, __ATOMIC_RELAXED);
	it = hoard_iter_new(fs->st, HOARD_CF_DIRENTS, k, 8);
	pthread_mutex_unlock(&fs->lock);
	if (!ents || !names || !it) {
		r = -ENOMEM;
		goto out_fail;
	}
	memcpy(names, ".\0..\0", 5);
	nlen = 5;
	ents[0] = (struct dent){.ino = dh->ino, .type = DT_DIR};
	ents[1] = (struct dent){.ino = dh->ino, .type = DT_DIR};
	for (; hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *key = hoard_iter_key(it, &kl);
		const uint8_t *v = hoard_iter_value(it, &vl);
		struct hoard_inode in;
		uint64_t child;
		uint8_t type;

		if (kl <= 8 || dirent_decode(v, vl, &child, &type) < 0)
			continue;
		if (n == cap) {
			struct dent *e = realloc(ents, 2 * cap * sizeof(*e));

			if (!e) {
				r = -ENOMEM;
				goto out_fail;
			}
			ents = e;
			cap *= 2;
		}
		while (nlen + kl - 8 + 1 > ncap) {
			char *p = realloc(names, ncap * 2);

			if (!p) {
				r = -ENOMEM;
				goto out_fail;
			}
			names = p;
			ncap *= 2;
		}
		ents[n].ino = child;
		ents[n].type = type;
		ents[n].copy = dirent_copy(v, vl, &in) == 0;
		if (ents[n].copy)
			ents[n].attr = (struct dattr){
				in.mode,   in.uid,   in.gid,   in.rdev, in.size,
				in.volume, in.atime, in.mtime, in.ctime};
		ents[n].name = (char *)(uintptr_t)nlen; /* offset for now */
		memcpy(names + nlen, key + 8, kl - 8);
		names[nlen + kl - 8] = 0;
		nlen += kl - 8 + 1;
		n++;
	}
	ents[0].name = names;
	ents[1].name = names + 2;
	for (size_t i = 2; i < n; i++)
		ents[i].name = names + (uintptr_t)ents[i].name;
	hoard_iter_free(it);
	dirh_clear(dh);
	dh->ents = ents;
	dh->names = names;
	dh->n = n;
	dh->stamped = stamped;
	if (stamped) {
		dh->mtime = dir.mtime;
		dh->ctime = dir.ctime;
	}
	return 0;
out_fail:
	hoard_iter_free(it);
	free(ents);
	free(names);
	return r;
}

int hoard_fs_opendir(struct hoard_fs *fs, uint64_t ino,
		     struct hoard_dirh **ret_dh)
{
	struct hoard_dirh *dh = calloc(1, sizeof(*dh));
	struct hoard_inode in;
	int r;

	if (!dh)
		return -ENOMEM;
	r = pend_land(fs); /* listings come from the store (pend.c) */
	if (r == 0)
		r = inode_load(fs, ino, &in);
	if (r == 0 && !S_ISDIR(in.mode))
		r = -ENOTDIR;
	if (r == 0)
		inode_clear(&in);
	if (r < 0) {
		free(dh);
		return r;
	}
	dh->ino = ino;
	pthread_mutex_init(&dh->mu, NULL);
	*ret_dh = dh;
	return 0;
}

int hoard_fs_readdir(struct hoard_fs *fs, struct hoard_dirh *dh, off_t off,
		     hoard_fill_fn fill, void *ud)
{
	int r = pend_land(fs); /* listings come from the store (pend.c) */

	if (r < 0)
		return r;
	pthread_mutex_lock(&dh->mu);
	if (off == 0 || !dh->ents)
		r = dirh_load(fs, dh);
	for (size_t i = (size_t)off; r == 0 && i < dh->n; i++) {
		if (fill(ud, dh->ents[i].name, dh->ents[i].ino,
			 dh->ents[i].type, (off_t)i + 1))
			break;
	}
	pthread_mutex_unlock(&dh->mu);
	return r;
}

/* 0 when name in dir still leads to ino, -ENOENT when not (fs->lock held:
 * entries change only under it). */
static int dirent_is_locked(struct hoard_fs *fs, uint64_t dir, const char *name,
			    uint64_t ino)
{
	uint8_t k[DIRENT_KEY_MAX], v[DIRENT_VAL_MAX];
	size_t kl = strlen(name), n;
	uint64_t child;
	int r;

	if (kl > NAME_MAX_LEN)
		return -ENOENT;
	r = hoard_store_get_into(fs->st, HOARD_CF_DIRENTS, k,
				 dirent_key(k, dir, name), v, sizeof(v), &n);
	if (r < 0)
		return r == -ENOBUFS ? -EBADMSG : r;
	return dirent_decode(v, n, &child, NULL) == 0 && child == ino ? 0
								      : -ENOENT;
}

static bool ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* true when no entry of the directory changed since the snapshot */
static bool dirh_current(struct hoard_fs *fs, struct hoard_dirh *dh)
{
	struct hoard_inode in;
	bool same;

	if (!dh->stamped || inode_load(fs, dh->ino, &in) < 0)
		return false;
	same = ts_eq(&in.mtime, &dh->mtime) && ts_eq(&in.ctime, &dh->ctime);
	inode_clear(&in);
	return same;
}

/*
 * Count a lookup of entry d of directory dir and get its attributes, as
 * hoard_fs_lookup does, but with the lookup counted first: an inode that
 * is counted cannot be purged, so the attributes are those of a live
 * inode.  check: the directory changed since the snapshot, so see that the
 * name still leads to d->ino.  -ENOENT: gone (the entry is then listed
 * without attributes); so is an inode with no links left (an unlink the
 * daemon made itself, evict.c, after the check).
 *
 * 1: the kernel knows the inode already (a lookup of it is counted), so
 * its attributes are cached there as they are here (this daemon makes
 * every change, and answers with long timeouts): the entry goes without
 * attributes, as plain readdir has it, and costs no inode read.  A name
 * of it that the kernel has no dentry for then gets a LOOKUP.  This keeps
 * listing a directory the kernel knows (warm) as cheap as plain READDIR.
 */
static int plus_ref(struct hoard_fs *fs, struct hoard_dirh *dh,
		    const struct dent *d, bool check, struct stat *ret_st)
{
	struct istate *is = NULL;
	uint64_t dir = dh->ino;
	struct hoard_inode in;
	int r = 0;

	pthread_mutex_lock(&fs->lock);
	is = istate_find(fs, d->ino);
	if (is && is->nlookup) {
		pthread_mutex_unlock(&fs->lock);
		return 1;
	}
	if (check)
		r = dirent_is_locked(fs, dir, d->name, d->ino);
	if (r == 0) {
		is = istate_get(fs, d->ino);
		if (is)
			is->nlookup++;
		else
			r = -ENOMEM;
	}
	/* an entry's copy, when no record changed since the snapshot: no
	 * read (the file's own writes overlaid, as a lookup does) */
	if (r == 0 && d->copy && !check &&
	    __atomic_load_n(&fs->rec_writes, __ATOMIC_RELAXED) == dh->writes) {
		pthread_mutex_lock(&is->mu);
		pthread_mutex_unlock(&fs->lock);
		in = (struct hoard_inode){.mode = d->attr.mode,
					  .uid = d->attr.uid,
					  .gid = d->attr.gid,
					  .nlink = 1,
					  .rdev = d->attr.rdev,
					  .size = d->attr.size,
					  .volume = d->attr.volume,
					  .atime = d->attr.atime,
					  .mtime = d->attr.mtime,
					  .ctime = d->attr.ctime};
		istate_overlay(is, &in);
		pthread_mutex_unlock(&is->mu);
		inode_to_stat(&in, d->ino, ret_st);
		return 0;
	}
	pthread_mutex_unlock(&fs->lock);
	if (r < 0)
		return r;
	r = hoard_fs_getattr(fs, d->ino, ret_st);
	if (r == 0 && ret_st->st_nlink == 0)
		r = -ENOENT;
	if (r < 0)
		hoard_fs_forget(fs, d->ino, 1);
	return r;
}

int hoard_fs_readdirplus(struct hoard_fs *fs, struct hoard_dirh *dh, off_t off,
			 hoard_fillplus_fn fill, void *ud)
{
	bool check = false, any = false;
	int r = pend_land(fs); /* listings come from the store (pend.c) */

	if (r < 0)
		return r;
	pthread_mutex_lock(&dh->mu);
	/* The kernel holds the directory's lock across a request, so nothing
	 * it asks for changes the entries while this one is served; between
	 * requests they may have changed. */
	if (off == 0 || !dh->ents)
		r = dirh_load(fs, dh);
	else
		check = !dirh_current(fs, dh);
	for (size_t i = (size_t)off; r == 0 && i < dh->n; i++) {
		const struct dent *d = &dh->ents[i];
		struct stat st = {.st_ino = d->ino, .st_mode = d->type << 12};
		bool counted = false;

		if (i >= 2) { /* not "." or "..": those count no lookup */
			r = plus_ref(fs, dh, d, check, &st);
			if (r == 0) {
				counted = true;
			} else if (r == 1 || r == -ENOENT) {
				st = (struct stat){.st_ino = d->ino,
						   .st_mode = d->type << 12};
				r = 0;
			} else {
				if (any) /* reply with what we have; the next
					  * request meets the error again */
					r = 0;
				break;
			}
		}
		if (fill(ud, d->name, &st, counted, (off_t)i + 1)) {
			if (counted) /* not sent: not looked up */
				hoard_fs_forget(fs, d->ino, 1);
			break;
		}
		any = true;
	}
	pthread_mutex_unlock(&dh->mu);
	return r;
}

void hoard_fs_releasedir(struct hoard_fs *fs, struct hoard_dirh *dh)
{
	if (!dh)
		return;
	dirh_clear(dh);
	pthread_mutex_destroy(&dh->mu);
	free(dh);
}

int hoard_fs_fsyncdir(struct hoard_fs *fs, uint64_t ino)
{
	/* the creates answered from memory (pend.c) become durable too */
	int r = pend_land(fs);

	return r < 0 ? r : hoard_store_sync(fs->st);
}

/* ---- xattrs ------------------------------------------------------------- */

/* Namespaces kept as plain data, as tmpfs does; others (system.*, ACLs,
 * unknown prefixes) are not supported. */
static bool xattr_name_ok(const char *name)
{
	return !strncmp(name, "user.", 5) || !strncmp(name, "trusted.", 8) ||
	       !strncmp(name, "security.", 9);
}

/* HOARD_INFO_XATTR (fs.h): JSON made on each read, no trailing newline;
 * never stored, so listxattr does not show it. */
static ssize_t info_xattr(struct hoard_fs *fs, uint64_t ino, void *buf,
			  size_t size)
{
	struct hoard_file_info fi;
	char *text;
	int n, r;

	r = hoard_fs_file_info(fs, ino, &fi);
	if (r < 0)
		return r;
	text = hoard_json_dump(
		json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:b,s:b}", "chunks",
			  hoard_json_u64(fi.chunks), "unique_chunks",
			  hoard_json_u64(fi.unique_chunks), "logical_bytes",
			  hoard_json_u64(fi.logical_bytes), "data_bytes",
			  hoard_json_u64(fi.data_bytes), "stored_bytes",
			  hoard_json_u64(fi.stored_bytes), "local_bytes",
			  hoard_json_u64(fi.local_bytes), "dirty",
			  (int)fi.dirty, "plain", (int)fi.plain),
		false);
	if (!text)
		return -ENOMEM;
	n = (int)strlen(text);
	if (size && (size_t)n > size) {
		free(text);
		return -ERANGE;
	}
	if (size)
		memcpy(buf, text, (size_t)n);
	free(text);
	return n;
}

/* The write step of setxattr (set: value) and removexattr (!set): the
 * xattr row and ino's new ctime in one batch (fs->lock held). */
static int xattr_write_locked(struct hoard_fs *fs, uint64_t ino,
			      const uint8_t *k, size_t kl, bool set,
			      const void *value, size_t size)
{
	struct hoard_inode in;
	struct hoard_batch *b;
	struct istate *is = istate_find(fs, ino);
	int r = inode_load(fs, ino, &in);

	if (r < 0)
		return r;
	if (is && set)
		is->fresh_xattr = false; /* before: a failed write may land */
	b = hoard_batch_new(fs->st);
	now_ts(&in.ctime);
	if (b) {
		if (set)
			hoard_batch_put(b, HOARD_CF_XATTRS, k, kl, value, size);
		else
			hoard_batch_delete(b, HOARD_CF_XATTRS, k, kl);
		inode_put(fs, b, ino, &in);
		r = hoard_store_write(fs->st, b, false);
	} else {
		r = -ENOMEM;
	}
	hoard_batch_free(b);
	inode_clear(&in);
	return r;
}

int hoard_fs_setxattr(struct hoard_fs *fs, uint64_t ino, const char *name,
		      const void *value, size_t size, int flags)
{
	uint8_t k[8 + XATTR_NAME_MAX];
	size_t kl;
	int r, have;

	if (strlen(name) > XATTR_NAME_MAX || !*name)
		return -ERANGE;
	if (!xattr_name_ok(name))
		return -EOPNOTSUPP;
	r = pend_land(fs); /* it writes records (pend.c) */
	if (r < 0)
		return r;
	if (!strcmp(name, HOARD_INFO_XATTR))
		return -EPERM; /* read-only */
	if (size > XATTR_MAX_VALUE)
		return -E2BIG;
	kl = xattr_key(k, ino, name);
	pthread_mutex_lock(&fs->lock);
	have = hoard_store_exists(fs->st, HOARD_CF_XATTRS, k, kl);
	r = have < 0 ? have : 0;
	if (r == 0 && have && (flags & XATTR_CREATE))
		r = -EEXIST;
	if (r == 0 && !have && (flags & XATTR_REPLACE))
		r = -ENODATA;
	if (r == 0)
		r = xattr_write_locked(fs, ino, k, kl, true, value, size);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

/* Whether ino may have xattr rows: not when this daemon created it and
 * nothing set one since (the kernel asks for security.capability at each
 * new file's first write). */
static bool xattr_maybe(struct hoard_fs *fs, uint64_t ino)
{
	struct istate *is;
	bool maybe;

	pthread_mutex_lock(&fs->lock);
	is = istate_find(fs, ino);
	maybe = !is || !is->fresh_xattr;
	pthread_mutex_unlock(&fs->lock);
	return maybe;
}

ssize_t hoard_fs_getxattr(struct hoard_fs *fs, uint64_t ino, const char *name,
			  void *buf, size_t size)
{
	uint8_t k[8 + XATTR_NAME_MAX];
	void *v;
	size_t n;
	int r;

	if (!xattr_name_ok(name))
		return -EOPNOTSUPP;
	if (!strcmp(name, HOARD_INFO_XATTR))
		return info_xattr(fs, ino, buf, size);
	if (strlen(name) > XATTR_NAME_MAX || !xattr_maybe(fs, ino))
		return -ENODATA;
	r = hoard_store_get(fs->st, HOARD_CF_XATTRS, k, xattr_key(k, ino, name),
			    &v, &n);
	if (r < 0)
		return r == -ENOENT ? -ENODATA : r;
	if (size && n > size) {
		free(v);
		return -ERANGE;
	}
	if (size)
		memcpy(buf, v, n);
	free(v);
	return (ssize_t)n;
}

ssize_t hoard_fs_listxattr(struct hoard_fs *fs, uint64_t ino, char *buf,
			   size_t size)
{
	struct hoard_iter *it;
	size_t total = 0;
	uint8_t k[8];
	int r = pend_land(fs); /* not whitelisted (pend.c) */

	if (r < 0)
		return r;
	ino_key(k, ino);
	it = hoard_iter_new(fs->st, HOARD_CF_XATTRS, k, 8);
	if (!it)
		return -ENOMEM;
	for (; hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl;
		const uint8_t *key = hoard_iter_key(it, &kl);

		/* the daemon's own rows ("hoard.use", evict.h) are in no
		 * namespace: not xattrs for anyone else */
		if (kl >= 8 + 6 && !memcmp(key + 8, "hoard.", 6))
			continue;
		if (size && total + kl - 8 + 1 > size) {
			hoard_iter_free(it);
			return -ERANGE;
		}
		if (size) {
			memcpy(buf + total, key + 8, kl - 8);
			buf[total + kl - 8] = 0;
		}
		total += kl - 8 + 1;
	}
	hoard_iter_free(it);
	return (ssize_t)total;
}

int hoard_fs_removexattr(struct hoard_fs *fs, uint64_t ino, const char *name)
{
	uint8_t k[8 + XATTR_NAME_MAX];
	size_t kl;
	int r;

	if (!xattr_name_ok(name))
		return -EOPNOTSUPP;
	if (!strcmp(name, HOARD_INFO_XATTR))
		return -EPERM; /* read-only */
	if (strlen(name) > XATTR_NAME_MAX)
		return -ENODATA;
	r = pend_land(fs); /* it writes records (pend.c) */
	if (r < 0)
		return r;
	kl = xattr_key(k, ino, name);
	pthread_mutex_lock(&fs->lock);
	r = hoard_store_exists(fs->st, HOARD_CF_XATTRS, k, kl);
	if (r == 0)
		r = -ENODATA;
	if (r == 1)
		r = xattr_write_locked(fs, ino, k, kl, false, NULL, 0);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

/* ---- volumes, statfs, paths -------------------------------------------- */

bool hoard_fs_volume_name_ok(const char *name)
{
	return hoard_name_ok(name);
}

static int volume_create_locked(struct hoard_fs *fs, const char *name,
				uint64_t *ret_root)
{
	struct hoard_inode in = {0};
	struct hoard_batch *b = hoard_batch_new(fs->st);
	uint8_t v[8];
	uint64_t ino;
	int r;

	if (!b)
		return -ENOMEM;
	ino = fs->next_ino++;
	next_ino_put(fs, b);
	in.mode = S_IFDIR | 0755;
	in.nlink = 2;
	in.volume = ino;
	now_ts(&in.atime);
	in.mtime = in.ctime = in.atime;
	inode_put(fs, b, ino, &in);
	u64_val_encode(v, ino);
	hoard_batch_put(b, HOARD_CF_VOLUMES, name, strlen(name), v, 8);
	r = hoard_store_write(fs->st, b, true);
	hoard_batch_free(b);
	if (r == 0)
		*ret_root = ino;
	return r;
}

int hoard_fs_volume(struct hoard_fs *fs, const char *name, bool create,
		    uint64_t *ret_root)
{
	uint8_t v[8];
	size_t n;
	int r;

	if (!hoard_fs_volume_name_ok(name))
		return -EINVAL;
	pthread_mutex_lock(&fs->lock);
	r = hoard_store_get_into(fs->st, HOARD_CF_VOLUMES, name, strlen(name),
				 v, sizeof(v), &n);
	if (r == 0)
		r = volume_rec_decode((const uint8_t *)name, strlen(name), v, n,
				      ret_root);
	else if (r == -ENOENT && create)
		r = volume_create_locked(fs, name, ret_root);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

int hoard_fs_statfs(struct hoard_fs *fs, struct statvfs *ret)
{
	if (statvfs(hoard_store_dir(fs->st), ret) < 0)
		return -errno;
	ret->f_namemax = NAME_MAX_LEN;
	ret->f_files = UINT32_MAX;
	ret->f_ffree = UINT32_MAX - 1024;
	ret->f_favail = ret->f_ffree;
	return 0;
}

int hoard_fs_resolve(struct hoard_fs *fs, uint64_t root, const char *path,
		     uint64_t *ret_ino)
{
	char *copy = strdup(path), *save = NULL, *part;
	uint8_t k[DIRENT_KEY_MAX], v[DIRENT_VAL_MAX];
	uint64_t ino = root;
	size_t n;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (part = strtok_r(copy, "/", &save); part && r == 0;
	     part = strtok_r(NULL, "/", &save)) {
		if (strlen(part) > NAME_MAX_LEN) {
			r = -ENAMETOOLONG;
			break;
		}
		r = hoard_store_get_into(fs->st, HOARD_CF_DIRENTS, k,
					 dirent_key(k, ino, part), v, sizeof(v),
					 &n);
		if (r == 0)
			r = dirent_decode(v, n, &ino, NULL);
	}
	free(copy);
	if (r == 0)
		*ret_ino = ino;
	return r;
}

/* ---- life --------------------------------------------------------------- */

static int load_next_ino(struct hoard_fs *fs)
{
	uint8_t v[8];
	size_t n;
	int r = hoard_store_get_into(fs->st, HOARD_CF_DEFAULT, "next_ino", 8, v,
				     sizeof(v), &n);

	if (r < 0)
		return r;
	r = setting_u64_decode(v, n, &fs->next_ino);
	fs->ino_stored = fs->next_ino;
	return r == 0 && fs->next_ino >= 16 ? 0 : -EBADMSG;
}

/* The last inode number a family's keys start with (0 if none). */
static uint64_t last_ino_in(struct hoard_fs *fs, enum hoard_cf cf)
{
	static const uint8_t top[8] = {0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0xff, 0xff};
	struct hoard_iter *it = hoard_iter_new(fs->st, cf, "", 0);
	uint64_t ino = 0;
	size_t kl;

	if (!it)
		return 0;
	hoard_iter_seek_for_prev(it, top, sizeof(top));
	if (hoard_iter_valid(it)) {
		const uint8_t *k = hoard_iter_key(it, &kl);

		if (!k || ino_prefix_decode(k, kl, &ino) < 0)
			ino = 0;
	}
	hoard_iter_free(it);
	return ino;
}

/*
 * After an open skipped damaged WAL records (store.h), next_ino may be
 * older than records that survived: hand out numbers past every inode
 * number in use, so that no new file meets a dead one's extents.
 */
static void next_ino_past_damage(struct hoard_fs *fs)
{
	static const enum hoard_cf cfs[] = {HOARD_CF_INODES, HOARD_CF_EXTENTS,
					    HOARD_CF_XATTRS, HOARD_CF_DIRENTS};

	if (!hoard_store_wal_damage(fs->st))
		return;
	for (size_t i = 0; i < sizeof(cfs) / sizeof(cfs[0]); i++) {
		uint64_t last = last_ino_in(fs, cfs[i]);

		if (last >= fs->next_ino)
			fs->next_ino = last + 1;
	}
}

/* Staging files were never acknowledged by fsync: drop them. */
static int clean_staging(struct hoard_fs *fs)
{
	int fd = dup(fs->staging_dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] != '.')
			unlinkat(fs->staging_dirfd, e->d_name, 0);
	}
	closedir(d);
	return 0;
}

static void purge_orphans(struct hoard_fs *fs)
{
	struct hoard_iter *it = hoard_iter_new(fs->st, HOARD_CF_ORPHANS, "", 0);
	uint64_t *inos = NULL;
	size_t n = 0, cap = 0;

	for (; it && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl;
		const uint8_t *k = hoard_iter_key(it, &kl);
		uint64_t ino;

		if (ino_key_decode(k, kl, &ino) < 0)
			continue;
		if (n == cap) {
			uint64_t *p = realloc(inos, (cap + 64) * sizeof(*p));

			if (!p)
				break;
			inos = p;
			cap += 64;
		}
		inos[n++] = ino;
	}
	hoard_iter_free(it);
	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; i < n; i++)
		inode_purge(fs, inos[i]);
	pthread_mutex_unlock(&fs->lock);
	free(inos);
}

/* Frames without a record are left by commits a crash interrupted. */
static void sweep_frames(struct hoard_fs *fs)
{
	struct hoard_iter *it = hoard_iter_new(fs->st, HOARD_CF_CHUNKDATA, "",
					       0);
	struct hoard_batch *b = hoard_batch_new(fs->st);
	size_t swept = 0;

	for (; it && b && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl;
		const uint8_t *k = hoard_iter_key(it, &kl);

		if (hoard_store_exists(fs->st, HOARD_CF_CHUNKS, k, kl) == 0) {
			hoard_batch_delete(b, HOARD_CF_CHUNKDATA, k, kl);
			swept++;
		}
	}
	if (b && swept) {
		hoard_store_write(fs->st, b, true);
		hoard_log(LOG_INFO,
			  "recovery: dropped %zu chunk frames of "
			  "interrupted commits",
			  swept);
	}
	hoard_iter_free(it);
	hoard_batch_free(b);
}

static int set_clean(struct hoard_fs *fs, bool clean)
{
	uint8_t v = clean;

	return hoard_store_put(fs->st, HOARD_CF_DEFAULT, "clean", 5, &v, 1)
		       ?: hoard_store_sync(fs->st);
}

int hoard_fs_new(struct hoard_store *st, const struct hoard_fs_opts *o,
		 struct hoard_fs **ret_fs)
{
	struct hoard_fs *fs = calloc(1, sizeof(*fs));
	uint8_t clean = 0;
	size_t n;
	int r;

	if (!fs)
		return -ENOMEM;
	fs->st = st;
	fs->level = hoard_store_zstd_level(st);
	fs->staging_dirfd = -1;
	pthread_mutex_init(&fs->lock, NULL);
	pthread_mutex_init(&fs->neg_mu, NULL);
	pthread_mutex_init(&fs->pend_mu, NULL);
	pthread_cond_init(&fs->frame_cv, NULL);
	fs->itab_cap = 1024;
	fs->itab = calloc(fs->itab_cap, sizeof(*fs->itab));
	r = fs->itab ? idmap_init(&fs->inflight, 64) : -ENOMEM;
	if (r == 0)
		r = dentpf_new(&fs->dpf);
	if (r == 0)
		r = chunk_cache_new(o && o->cache_bytes ? o->cache_bytes
							: 64u << 20,
				    &fs->cache);
	if (r == 0)
		r = load_next_ino(fs);
	if (r == 0)
		next_ino_past_damage(fs);
	if (r == 0) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/staging", hoard_store_dir(st));
		mkdir(path, 0700);
		fs->staging_dirfd = open(path,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = fs->staging_dirfd < 0 ? -errno : clean_staging(fs);
	}
	if (r < 0) {
		hoard_fs_free(fs);
		return r;
	}
	hoard_volume_recover(fs); /* clones a crash interrupted */
	purge_orphans(fs);
	meta_upgrade(fs); /* logs its failure; the store stays correct */
	if (hoard_store_get_into(st, HOARD_CF_DEFAULT, "clean", 5, &clean, 1,
				 &n) != 0 ||
	    !clean)
		sweep_frames(fs);
	r = set_clean(fs, false);
	if (r < 0) {
		hoard_fs_free(fs);
		return r;
	}
	*ret_fs = fs;
	return 0;
}

void hoard_fs_free(struct hoard_fs *fs)
{
	if (!fs)
		return;
	if (fs->itab) {
		bool ok = pend_land(fs) == 0; /* creates not landed yet */

		ok = fs_commit_all(fs) == 0 && ok;

		for (size_t i = 0; i < fs->itab_cap; i++) {
			struct istate *is, *next;

			for (is = fs->itab[i]; is; is = next) {
				next = is->next;
				pthread_rwlock_destroy(&is->rw);
				pthread_mutex_destroy(&is->mu);
				free(is->recc);
				free(is);
			}
		}
		free(fs->itab);
		free(fs->kept_errs);
		fs->itab = NULL;
		purge_orphans(fs);
		/* a commit that failed half-way (a full disk) may have left
		 * frames without a record, which only a start after a crash
		 * would sweep */
		if (ok && hoard_store_write_failures(fs->st))
			sweep_frames(fs);
		if (ok && fs->staging_dirfd >= 0)
			set_clean(fs, true);
	}
	if (fs->staging_dirfd >= 0)
		close(fs->staging_dirfd);
	if (fs->dpf) {
		uint64_t scans, hits, pf_bytes;

		hoard_fs_lookup_counts(fs, &scans, &hits, &pf_bytes);
		hoard_log(LOG_DEBUG,
			  "entries read ahead: %llu scans, %llu lookups "
			  "answered, %llu table bytes advised",
			  (unsigned long long)scans, (unsigned long long)hits,
			  (unsigned long long)pf_bytes);
	}
	chunk_cache_free(fs->cache);
	dentpf_free(fs->dpf);
	idmap_free(&fs->inflight);
	pthread_mutex_destroy(&fs->lock);
	pthread_mutex_destroy(&fs->neg_mu);
	pthread_mutex_destroy(&fs->pend_mu);
	pthread_cond_destroy(&fs->frame_cv);
	free(fs->pend);
	free(fs);
}

struct hoard_store *hoard_fs_store(struct hoard_fs *fs)
{
	return fs->st;
}
