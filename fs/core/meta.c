/* SPDX-License-Identifier: MIT */
/*
 * meta: inodes and directory entries (docs/FORMAT.md 2.2, dirents), the
 * in-memory inode table, and the namespace operations.  Every change to the
 * namespace is one WriteBatch written under fs->lock; a regular file's
 * create (hoard_fs_create) may instead wait in memory for the next batch
 * (pend.c), and inode_load, dirent_get and LOOKUP see it there.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoard/util.h"
#include "fs-internal.h"

void now_ts(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

/* ---- inode records ------------------------------------------------------ */

int inode_load(struct hoard_fs *fs, uint64_t ino, struct hoard_inode *ret)
{
	uint8_t k[8], buf[INODE_REC_MAX + 16];
	size_t n;
	int r;

	/* a create not landed yet (pend.c); looked at before the store: a
	 * landing leaves the table after its write */
	if (pend_any(fs) && pend_load(fs, ino, ret) == 0)
		return 0;
	ino_key(k, ino);
	r = hoard_store_get_into(fs->st, HOARD_CF_INODES, k, 8, buf,
				 sizeof(buf), &n);
	if (r < 0)
		return r == -ENOBUFS ? -EBADMSG : r;
	return inode_decode(buf, n, ret);
}

/*
 * The one writer of inode records.  A record with a home entry (a
 * non-directory with one link, FORMAT 2.2) has its copy in that directory
 * entry rewritten in the same batch, so the two never differ: callers
 * that move or drop the entry move or clear the home first
 * (inode_set_home), and put the entry itself before this (the batch's
 * later write wins).
 */
void inode_put(struct hoard_fs *fs, struct hoard_batch *b, uint64_t ino,
	       const struct hoard_inode *in)
{
	istate_uncache(fs, ino); /* before the write: a failed one is no
				  * record the cache could still show */
	inode_put_new(fs, b, ino, in);
}

void inode_put_new(struct hoard_fs *fs, struct hoard_batch *b, uint64_t ino,
		   const struct hoard_inode *in)
{
	uint8_t k[DIRENT_KEY_MAX], v[INODE_REC_MAX]; /* >= DIRENT_VAL_MAX */
	size_t n = inode_encode(in, v);

	__atomic_add_fetch(&fs->rec_writes, 1, __ATOMIC_RELAXED);
	ino_key(k, ino);
	hoard_batch_put(b, HOARD_CF_INODES, k, 8, v, n);
	if (!in->home_parent)
		return;
	n = dirent_encode_copy(v, ino, in);
	hoard_batch_put(b, HOARD_CF_DIRENTS, k,
			dirent_key(k, in->home_parent, in->home_name), v, n);
}

void inode_to_stat(const struct hoard_inode *in, uint64_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_size = (off_t)in->size;
	/* the preferred I/O size: FUSE's max_write (hoardfs), so that cp and
	 * the like write a MiB per request, not 128 KiB */
	st->st_blksize = 1 << 20;
	st->st_blocks = (blkcnt_t)((in->size + 511) / 512);
	st->st_atim = in->atime;
	st->st_mtim = in->mtime;
	st->st_ctim = in->ctime;
}

/* ---- in-memory inode table ---------------------------------------------- */

/*
 * Chained through istate->next, not the shared table (htab.h), on purpose:
 * an istate is held by address (open files, readers that dropped fs->lock)
 * for as long as it lives, so it must not move, and inserting must not
 * fail: a table that cannot grow just has longer chains (itab_grow).
 * htab.h stores entries in place and moves them as it grows.
 */

static size_t itab_slot(struct hoard_fs *fs, uint64_t ino)
{
	return (size_t)(ino * 0x9e3779b97f4a7c15ull >> 20) & (fs->itab_cap - 1);
}

struct istate *istate_find(struct hoard_fs *fs, uint64_t ino)
{
	struct istate *is;

	for (is = fs->itab[itab_slot(fs, ino)]; is; is = is->next) {
		if (is->ino == ino)
			return is;
	}
	return NULL;
}

static void itab_grow(struct hoard_fs *fs)
{
	struct istate **old = fs->itab, *is, *next;
	size_t old_cap = fs->itab_cap;
	struct istate **tab = calloc(old_cap * 2, sizeof(*tab));

	if (!tab)
		return; /* chains just get longer */
	fs->itab = tab;
	fs->itab_cap = old_cap * 2;
	for (size_t i = 0; i < old_cap; i++) {
		for (is = old[i]; is; is = next) {
			size_t s = itab_slot(fs, is->ino);

			next = is->next;
			is->next = tab[s];
			tab[s] = is;
		}
	}
	free(old);
}

struct istate *istate_get(struct hoard_fs *fs, uint64_t ino)
{
	struct istate *is = istate_find(fs, ino);
	size_t s;

	if (is)
		return is;
	if (fs->icount >= fs->itab_cap)
		itab_grow(fs);
	is = calloc(1, sizeof(*is));
	if (!is)
		return NULL;
	is->ino = ino;
	is->staging_fd = -1;
	is->pt_fd = -1;
	for (size_t i = 0; i < fs->n_kept_errs; i++) {
		if (fs->kept_errs[i].ino != ino)
			continue;
		is->commit_err = fs->kept_errs[i].err;
		fs->kept_errs[i] = fs->kept_errs[--fs->n_kept_errs];
		break;
	}
	pthread_rwlock_init(&is->rw, NULL);
	pthread_mutex_init(&is->mu, NULL);
	s = itab_slot(fs, ino);
	is->next = fs->itab[s];
	fs->itab[s] = is;
	fs->icount++;
	return is;
}

void istate_maybe_free(struct hoard_fs *fs, struct istate *is)
{
	struct istate **pp;

	if (is->nlookup || is->opens)
		return;
	for (pp = &fs->itab[itab_slot(fs, is->ino)]; *pp != is;
	     pp = &(*pp)->next)
		;
	*pp = is->next;
	fs->icount--;
	if (is->commit_err) { /* not taken yet: kept for the next istate */
		struct kept_err *k = hoard_grow(
			fs->kept_errs, &fs->cap_kept_errs, fs->n_kept_errs + 1,
			sizeof(*k), 16);

		if (k) {
			fs->kept_errs = k;
			k[fs->n_kept_errs++] = (struct kept_err){
				is->ino, is->commit_err};
		}
	}
	free(is->recc);
	staging_drop(fs, is, true);
	pthread_rwlock_destroy(&is->rw);
	pthread_mutex_destroy(&is->mu);
	free(is);
}

/* Drop the cached record of ino (fs->lock held). */
void istate_uncache(struct hoard_fs *fs, uint64_t ino)
{
	struct istate *is = fs->itab ? istate_find(fs, ino) : NULL;

	if (is && is->recc) {
		free(is->recc);
		is->recc = NULL;
	}
}

/* Keep a directory's or a regular file's record as just written
 * (fs->lock held). */
static void istate_cache(struct hoard_fs *fs, uint64_t ino,
			 const struct hoard_inode *in)
{
	struct istate *is = istate_find(fs, ino);

	if (!is || !(S_ISDIR(in->mode) || S_ISREG(in->mode)) || in->target)
		return;
	if (!is->recc)
		is->recc = malloc(sizeof(*is->recc));
	if (is->recc)
		*is->recc = *in;
}

int inode_load_cached(struct hoard_fs *fs, uint64_t ino,
		      struct hoard_inode *ret)
{
	struct istate *is = istate_find(fs, ino);

	if (is && is->recc) {
		*ret = *is->recc;
		return 0;
	}
	return inode_load(fs, ino, ret);
}

void istate_overlay(struct istate *is, struct hoard_inode *in)
{
	pt_sync_locked(is);
	if (is->size_valid && S_ISREG(in->mode))
		in->size = is->size;
	if (is->dirty) {
		in->mtime = is->mtime;
		in->ctime = is->ctime;
	}
}

/* Load an inode with the overlay of a file being written. */
static int inode_load_current(struct hoard_fs *fs, uint64_t ino,
			      struct hoard_inode *ret)
{
	struct istate *is;
	bool cached;
	int r = 0;

	pthread_mutex_lock(&fs->lock);
	is = istate_find(fs, ino);
	cached = is && is->recc; /* a directory's, or a file created here */
	if (cached)
		*ret = *is->recc;
	if (cached && S_ISDIR(ret->mode)) { /* no overlay */
		pthread_mutex_unlock(&fs->lock);
		return 0;
	}
	if (is)
		pthread_mutex_lock(&is->mu);
	pthread_mutex_unlock(&fs->lock);
	/* is cannot go away: callers hold a lookup or an open on ino */
	if (!cached)
		r = inode_load(fs, ino, ret);
	if (is) {
		if (r == 0)
			istate_overlay(is, ret);
		pthread_mutex_unlock(&is->mu);
	}
	return r;
}

/* ---- directory entries -------------------------------------------------- */

/*
 * A LOOKUP that found no entry for name in parent, having read the store's
 * dent_writes count gen before its read, notes it; a CREATE of that name
 * (fs->lock held) that finds the count still gen skips its own read of the
 * entry: the name is still absent.  Every write of a mounted volume's
 * entries (create, link, rename, unlink, a commit's entry copy, pull and
 * merge) is made and counted under fs->lock, so no entry can have landed
 * uncounted while the CREATE holds it; the writers without the lock (a
 * clone's walk and undo, volume removal) write only volumes that are not
 * published or not mounted.  The kernel sends a CREATE right after its
 * LOOKUP of a new name: that is one read of the store less per new file.
 */
static void neg_note(struct hoard_fs *fs, uint64_t parent, const char *name,
		     uint64_t gen)
{
	size_t len = strlen(name);

	if (len > NAME_MAX_LEN)
		return;
	pthread_mutex_lock(&fs->neg_mu);
	fs->neg_parent = parent;
	fs->neg_gen = gen;
	memcpy(fs->neg_name, name, len + 1);
	pthread_mutex_unlock(&fs->neg_mu);
}

/* name is known absent from parent (see neg_note; fs->lock held). */
static bool neg_take(struct hoard_fs *fs, uint64_t parent, const char *name)
{
	bool absent;

	pthread_mutex_lock(&fs->neg_mu);
	absent = fs->neg_gen && fs->neg_parent == parent &&
		 fs->neg_gen == hoard_store_dent_writes(fs->st) &&
		 !strcmp(fs->neg_name, name);
	fs->neg_gen = 0;
	pthread_mutex_unlock(&fs->neg_mu);
	return absent;
}

static int dirent_get(struct hoard_fs *fs, uint64_t parent, const char *name,
		      uint64_t *ret_ino)
{
	uint8_t k[8 + NAME_MAX_LEN], v[DIRENT_VAL_MAX];
	size_t n;
	int r;

	if (strlen(name) > NAME_MAX_LEN)
		return -ENAMETOOLONG;
	if (pend_find(fs, parent, name, ret_ino, NULL) == 0)
		return 0; /* not landed yet (pend.c) */
	r = hoard_store_get_into(fs->st, HOARD_CF_DIRENTS, k,
				 dirent_key(k, parent, name), v, sizeof(v), &n);
	if (r < 0)
		return r == -ENOBUFS ? -EBADMSG : r;
	return dirent_decode(v, n, ret_ino, NULL);
}

int dirent_ino(struct hoard_fs *fs, uint64_t parent, const char *name,
	       uint64_t *ret_ino)
{
	return dirent_get(fs, parent, name, ret_ino);
}

static void dirent_put(struct hoard_batch *b, uint64_t parent, const char *name,
		       uint64_t ino, mode_t mode)
{
	uint8_t k[DIRENT_KEY_MAX], v[DIRENT_VAL_SIZE];

	dirent_encode(v, ino, mode);
	hoard_batch_put(b, HOARD_CF_DIRENTS, k, dirent_key(k, parent, name), v,
			DIRENT_VAL_SIZE);
}

static void dirent_del(struct hoard_batch *b, uint64_t parent, const char *name)
{
	uint8_t k[8 + NAME_MAX_LEN];

	hoard_batch_delete(b, HOARD_CF_DIRENTS, k, dirent_key(k, parent, name));
}

static int dir_is_empty(struct hoard_fs *fs, uint64_t ino)
{
	uint8_t k[8];
	struct hoard_iter *it;
	int empty;

	ino_key(k, ino);
	it = hoard_iter_new(fs->st, HOARD_CF_DIRENTS, k, 8);
	if (!it)
		return -ENOMEM;
	empty = !hoard_iter_valid(it);
	hoard_iter_free(it);
	return empty;
}

/* ---- lookups ------------------------------------------------------------ */

/*
 * One read when the entry carries a copy of its child's record (FORMAT
 * 2.2, a file with one link), two when not; fs->lock once.
 */
int hoard_fs_lookup(struct hoard_fs *fs, uint64_t parent, const char *name,
		    struct stat *ret_st)
{
	uint8_t k[DIRENT_KEY_MAX], v[DIRENT_VAL_MAX];
	struct hoard_inode in; /* set by dirent_copy or inode_load */
	struct istate *is;
	uint64_t ino, writes, gen;
	size_t n;
	bool copy;
	int r;

	if (strlen(name) > NAME_MAX_LEN)
		return -ENAMETOOLONG;
	/* Under the lock, no record is between its put and its write (as
	 * for readdirplus' snapshot): if none was put between here and the
	 * istate below, the entry's copy is the record of that moment.
	 * Otherwise a commit may have landed after the read, cleared the
	 * overlay and left the copy stale: read the record then. */
	pthread_mutex_lock(&fs->lock);
	writes = __atomic_load_n(&fs->rec_writes, __ATOMIC_RELAXED);
	/* a create not landed yet (pend.c): no window or read of the store
	 * can have it; one that landed is in the store from here on */
	if (pend_find(fs, parent, name, &ino, &in) == 0) {
		is = istate_get(fs, ino);
		if (is) {
			is->nlookup++;
			pthread_mutex_lock(&is->mu);
			istate_overlay(is, &in);
			pthread_mutex_unlock(&is->mu);
		}
		pthread_mutex_unlock(&fs->lock);
		if (!is)
			return -ENOMEM;
		inode_to_stat(&in, ino, ret_st);
		return 0;
	}
	pthread_mutex_unlock(&fs->lock);
	/* from a window of the directory's entries read ahead (dentpf.c),
	 * else the point read */
	gen = hoard_store_dent_writes(fs->st);
	r = dentpf_get(fs, parent, name, gen, v, sizeof(v), &n);
	if (r == 1) {
		r = hoard_store_get_into(fs->st, HOARD_CF_DIRENTS, k,
					 dirent_key(k, parent, name), v,
					 sizeof(v), &n);
		if (r == 0 || r == -ENOENT)
			dentpf_miss(fs, parent, name, gen, r == 0);
	}
	if (r == -ENOENT)
		neg_note(fs, parent, name, gen);
	if (r < 0)
		return r == -ENOBUFS ? -EBADMSG : r;
	copy = dirent_copy(v, n, &in) == 0; /* checks the entry too */
	if (copy)
		ino = hoard_get_be64(v);
	else if ((r = dirent_decode(v, n, &ino, NULL)) < 0)
		return r;
	/* The lookup is counted first: the inode is read under the istate's
	 * lock, which a FORGET racing this lookup could otherwise free, and
	 * it is given back if the inode cannot be read. */
	pthread_mutex_lock(&fs->lock);
	if (copy &&
	    __atomic_load_n(&fs->rec_writes, __ATOMIC_RELAXED) != writes)
		copy = false;
	is = istate_get(fs, ino);
	if (is) {
		is->nlookup++;
		pthread_mutex_lock(&is->mu);
	}
	pthread_mutex_unlock(&fs->lock);
	if (!is)
		return -ENOMEM;
	r = copy ? 0 : inode_load(fs, ino, &in);
	if (r == 0)
		istate_overlay(is, &in);
	pthread_mutex_unlock(&is->mu);
	if (r < 0) {
		hoard_fs_forget(fs, ino, 1);
		return r == -ENOENT ? -EIO : r;
	}
	inode_to_stat(&in, ino, ret_st);
	inode_clear(&in);
	return 0;
}

void hoard_fs_ref(struct hoard_fs *fs, uint64_t ino)
{
	struct istate *is;

	pthread_mutex_lock(&fs->lock);
	is = istate_get(fs, ino);
	if (is)
		is->nlookup++;
	pthread_mutex_unlock(&fs->lock);
}

void hoard_fs_forget(struct hoard_fs *fs, uint64_t ino, uint64_t nlookup)
{
	struct hoard_inode in;
	struct istate *is;

	pthread_mutex_lock(&fs->lock);
	is = istate_find(fs, ino);
	if (!is) {
		pthread_mutex_unlock(&fs->lock);
		return;
	}
	is->nlookup = nlookup >= is->nlookup ? 0 : is->nlookup - nlookup;
	/* Only an orphan can have nlink 0 here: every last link goes in
	 * unlink_inode_locked, which marks it (orphans of an earlier run are
	 * purged at start).  So a forget reads no record (a cold walk's
	 * FORGETs are one per name it looked up). */
	if (!is->nlookup && !is->opens) {
		if (is->orphan && inode_load(fs, ino, &in) == 0) {
			if (in.nlink == 0)
				inode_purge(fs, ino);
			inode_clear(&in);
		}
		istate_maybe_free(fs, is);
	}
	pthread_mutex_unlock(&fs->lock);
}

int hoard_fs_getattr(struct hoard_fs *fs, uint64_t ino, struct stat *ret_st)
{
	struct hoard_inode in;
	int r = inode_load_current(fs, ino, &in);

	if (r < 0)
		return r;
	inode_to_stat(&in, ino, ret_st);
	inode_clear(&in);
	return 0;
}

/* ---- creating ----------------------------------------------------------- */

/* Load a directory that new entries go into (fs->lock held). */
static int load_dir(struct hoard_fs *fs, uint64_t ino, struct hoard_inode *ret)
{
	int r = inode_load_cached(fs, ino, ret);

	if (r < 0)
		return r;
	if (!S_ISDIR(ret->mode)) {
		inode_clear(ret);
		return -ENOTDIR;
	}
	if (ret->nlink == 0) { /* removed, still someone's cwd */
		inode_clear(ret);
		return -ENOENT;
	}
	return 0;
}

/*
 * The next_ino setting (FORMAT 2.1) is at least the next number to hand
 * out, not exactly it: a create that needs a number at or past what the
 * store holds (fs->ino_stored) writes next_ino INO_BLOCK past it, and the
 * creates after it until then write no next_ino at all.  Every other
 * writer of next_ino (volume create, clone) stores it through next_ino_put,
 * so the stored value never goes back below a block handed out.  A crash loses at
 * most the rest of a block: numbers are never reused, not all used.
 */
#define INO_BLOCK 1024

int next_ino_put(struct hoard_fs *fs, struct hoard_batch *b)
{
	uint8_t v[8];

	u64_val_encode(v, fs->next_ino > fs->ino_stored ? fs->next_ino
							: fs->ino_stored);
	if (b) {
		hoard_batch_put(b, HOARD_CF_DEFAULT, "next_ino", 8, v, 8);
		return 0;
	}
	return hoard_store_put(fs->st, HOARD_CF_DEFAULT, "next_ino", 8, v, 8);
}

/* A number for a new inode; next_ino (a new block) into b when it is past
 * the stored one, *ret_stored then what to note once b was written. */
static uint64_t take_ino(struct hoard_fs *fs, struct hoard_batch *b,
			 uint64_t *ret_stored)
{
	uint64_t ino = fs->next_ino++;
	uint8_t v[8];

	*ret_stored = 0;
	if (ino < fs->ino_stored)
		return ino;
	*ret_stored = ino + INO_BLOCK;
	u64_val_encode(v, *ret_stored);
	hoard_batch_put(b, HOARD_CF_DEFAULT, "next_ino", 8, v, 8);
	return ino;
}

/*
 * A regular file's create may wait for the next batch (pend.c): on, the
 * store not known to be failing, no new block of inode numbers to store,
 * room in the table.
 */
static bool create_can_wait(struct hoard_fs *fs, mode_t mode)
{
	return fs->defer_creates && S_ISREG(mode) &&
	       !__atomic_load_n(&fs->create_sync, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&fs->low_room, __ATOMIC_RELAXED) &&
	       fs->next_ino < fs->ino_stored && pend_room_locked(fs);
}

/* The new inode in (number ino) and its parent's record dir wait for the
 * next batch (pend.c; fs->lock held). */
static int create_pending(struct hoard_fs *fs, uint64_t parent,
			  struct hoard_inode *in, struct hoard_inode *dir,
			  uint64_t *ret_ino)
{
	struct istate *is = istate_get(fs, fs->next_ino);

	if (!is || pend_add_locked(fs, fs->next_ino, in, dir) < 0) {
		if (is)
			istate_maybe_free(fs, is);
		return -ENOMEM;
	}
	*ret_ino = fs->next_ino++;
	istate_cache(fs, parent, dir);
	istate_cache(fs, *ret_ino, in);
	return 0;
}

/*
 * Create an inode named name in parent (fs->lock held): one batch with the
 * new inode, its entry, the parent's times (and nlink for a directory);
 * with `wait`, a regular file's may instead wait for the next batch
 * (create_can_wait, pend.c).  Any other create lands the waiting ones
 * first: its batch writes the parent's record, which theirs would
 * otherwise overwrite with an older one.
 */
static int create_locked(struct hoard_fs *fs, uint64_t parent, const char *name,
			 mode_t mode, dev_t rdev, const char *target,
			 const struct hoard_ctx *ctx, bool wait,
			 struct hoard_inode *ret_in, uint64_t *ret_ino)
{
	struct hoard_inode dir, in = {0};
	struct hoard_batch *b;
	struct istate *is;
	uint64_t ino, stored;
	int r;

	if (strlen(name) > NAME_MAX_LEN)
		return -ENAMETOOLONG;
	wait = wait && create_can_wait(fs, mode);
	/* a failing store: this batch would fail too */
	r = wait ? 0 : pend_land_locked(fs, false);
	if (r == 0)
		r = load_dir(fs, parent, &dir);
	if (r < 0)
		return r;
	/* a pending name first: neg_take's count does not see it */
	if (pend_find(fs, parent, name, &ino, NULL) == 0)
		r = 0;
	else
		r = neg_take(fs, parent, name)
			    ? -ENOENT
			    : dirent_get(fs, parent, name, &ino);
	if (r != -ENOENT) {
		inode_clear(&dir);
		return r == 0 ? -EEXIST : r;
	}
	in.mode = mode;
	in.uid = ctx->uid;
	in.gid = ctx->gid;
	if (dir.mode & S_ISGID) { /* BSD group semantics, as tmpfs */
		in.gid = dir.gid;
		if (S_ISDIR(mode))
			in.mode |= S_ISGID;
	}
	in.nlink = S_ISDIR(mode) ? 2 : 1;
	in.rdev = (uint32_t)rdev;
	in.volume = dir.volume;
	now_ts(&in.atime);
	in.mtime = in.ctime = in.atime;
	in.target = (char *)target;
	in.size = target ? strlen(target) : 0;
	inode_set_home(&in, parent, name);
	dir.mtime = dir.ctime = in.atime;
	if (S_ISDIR(mode))
		dir.nlink++;
	if (wait) {
		r = create_pending(fs, parent, &in, &dir, &ino);
		inode_clear(&dir);
		if (r < 0)
			return r;
		is = istate_find(fs, ino);
		goto out_made;
	}
	b = hoard_batch_new(fs->st);
	if (!b) {
		inode_clear(&dir);
		return -ENOMEM;
	}
	is = istate_get(fs, fs->next_ino);
	ino = take_ino(fs, b, &stored);
	/* an entry with a copy is inode_put's: one write of its key */
	if (!in.home_parent)
		dirent_put(b, parent, name, ino, mode);
	inode_put(fs, b, ino, &in);
	inode_put(fs, b, parent, &dir);
	r = is ? hoard_store_write(fs->st, b, false) : -ENOMEM;
	hoard_batch_free(b);
	if (r == 0) {
		if (stored > fs->ino_stored)
			fs->ino_stored = stored;
		/* a create wrote: the store works again (pend.c) */
		__atomic_store_n(&fs->create_sync, false, __ATOMIC_RELAXED);
		istate_cache(fs, parent, &dir);
		/* a new file's first commit reads no record */
		if (S_ISREG(mode))
			istate_cache(fs, ino, &in);
	}
	inode_clear(&dir);
	if (r < 0) {
		if (is)
			istate_maybe_free(fs, is);
		return r;
	}
out_made:
	is->nlookup++;
	/* a new inode number: no extents and no xattrs yet */
	is->fresh_ext = is->fresh_xattr = true;
	if (S_ISREG(mode)) {
		is->size = 0;
		is->size_valid = true;
	}
	in.target = NULL;
	*ret_in = in;
	*ret_ino = ino;
	return 0;
}

static int create_stat(struct hoard_fs *fs, uint64_t parent, const char *name,
		       mode_t mode, dev_t rdev, const char *target,
		       const struct hoard_ctx *ctx, bool wait,
		       struct stat *ret_st)
{
	struct hoard_inode in;
	uint64_t ino = 0; /* gcc -O3 cannot see that success sets it */
	int r;

	pthread_mutex_lock(&fs->lock);
	r = create_locked(fs, parent, name, mode, rdev, target, ctx, wait, &in,
			  &ino);
	pthread_mutex_unlock(&fs->lock);
	if (r < 0)
		return r;
	if (target)
		in.size = strlen(target);
	inode_to_stat(&in, ino, ret_st);
	return 0;
}

int hoard_fs_mknod(struct hoard_fs *fs, uint64_t parent, const char *name,
		   mode_t mode, dev_t rdev, const struct hoard_ctx *ctx,
		   struct stat *ret_st)
{
	if (S_ISDIR(mode) || S_ISLNK(mode))
		return -EINVAL;
	if (!(mode & S_IFMT))
		mode |= S_IFREG;
	return create_stat(fs, parent, name, mode, rdev, NULL, ctx, false,
			   ret_st);
}

int create_file(struct hoard_fs *fs, uint64_t parent, const char *name,
		mode_t mode, const struct hoard_ctx *ctx, struct stat *ret_st,
		struct istate **ret_is)
{
	struct hoard_inode in;
	uint64_t ino = 0;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = create_locked(fs, parent, name, S_IFREG | (mode & 07777), 0, NULL,
			  ctx, true, &in, &ino);
	if (r == 0) {
		/* open already: a create that waits is its file's (pend.c) */
		*ret_is = istate_find(fs, ino);
		(*ret_is)->opens++;
	}
	pthread_mutex_unlock(&fs->lock);
	if (r == 0)
		inode_to_stat(&in, ino, ret_st);
	return r;
}

int hoard_fs_mkdir(struct hoard_fs *fs, uint64_t parent, const char *name,
		   mode_t mode, const struct hoard_ctx *ctx,
		   struct stat *ret_st)
{
	return create_stat(fs, parent, name, S_IFDIR | (mode & 07777), 0, NULL,
			   ctx, false, ret_st);
}

int hoard_fs_symlink(struct hoard_fs *fs, uint64_t parent, const char *name,
		     const char *target, const struct hoard_ctx *ctx,
		     struct stat *ret_st)
{
	if (strlen(target) >= 4096)
		return -ENAMETOOLONG;
	return create_stat(fs, parent, name, S_IFLNK | 0777, 0, target, ctx,
			   false, ret_st);
}

int hoard_fs_link(struct hoard_fs *fs, uint64_t ino, uint64_t newparent,
		  const char *newname, struct stat *ret_st)
{
	struct hoard_inode dir, in;
	struct hoard_batch *b = NULL;
	struct istate *is;
	uint64_t other;
	int r;

	if (strlen(newname) > NAME_MAX_LEN)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&fs->lock);
	r = pend_land_locked(fs, false); /* it writes entries (pend.c) */
	if (r < 0)
		goto out_unlock;
	r = load_dir(fs, newparent, &dir);
	if (r < 0)
		goto out_unlock;
	r = inode_load(fs, ino, &in);
	if (r < 0)
		goto out_dir;
	if (S_ISDIR(in.mode)) {
		r = -EPERM;
		goto out_in;
	}
	if (in.nlink == 0) {
		r = -ENOENT;
		goto out_in;
	}
	r = dirent_get(fs, newparent, newname, &other);
	if (r != -ENOENT) {
		r = r == 0 ? -EEXIST : r;
		goto out_in;
	}
	b = hoard_batch_new(fs->st);
	is = istate_get(fs, ino);
	if (!b || !is) {
		r = -ENOMEM;
		goto out_in;
	}
	/* two links: neither entry carries a copy; the record names both
	 * when the first is known (its home), so that an unlink of either
	 * can make the other its home (FORMAT 2.2) */
	if (in.home_parent)
		dirent_put(b, in.home_parent, in.home_name, ino, in.mode);
	in.nlink++;
	inode_set_links(&in, in.home_parent, in.home_name, newparent, newname);
	inode_set_home(&in, 0, NULL);
	now_ts(&in.ctime);
	dir.mtime = dir.ctime = in.ctime;
	inode_put(fs, b, ino, &in);
	inode_put(fs, b, newparent, &dir);
	dirent_put(b, newparent, newname, ino, in.mode);
	r = hoard_store_write(fs->st, b, false);
	if (r == 0) {
		is->nlookup++;
		pthread_mutex_lock(&is->mu);
		istate_overlay(is, &in);
		pthread_mutex_unlock(&is->mu);
		inode_to_stat(&in, ino, ret_st);
	}
out_in:
	inode_clear(&in);
out_dir:
	inode_clear(&dir);
out_unlock:
	pthread_mutex_unlock(&fs->lock);
	hoard_batch_free(b);
	return r;
}

/* ---- removing ----------------------------------------------------------- */

/*
 * Drop one link of ino (already removed from its directory by the caller's
 * batch).  At nlink 0 the inode is purged now when nobody uses it, else
 * listed as an orphan and purged at the last forget/release.
 */
static int unlink_inode_locked(struct hoard_fs *fs, struct hoard_batch *b,
			       uint64_t ino, struct hoard_inode *in,
			       uint64_t parent, const char *name,
			       bool *ret_purge)
{
	struct istate *is = istate_find(fs, ino);
	int i = inode_link_index(in, parent, name, strlen(name));
	char left[NAME_MAX_LEN + 1];
	uint64_t left_parent = 0;
	uint8_t k[8];

	/* two links, both known: the one left becomes its home, and
	 * inode_put writes the copy into it in this batch (FORMAT 2.2) */
	if (i >= 0 && in->nlink == 2) {
		left_parent = in->link_parent[1 - i];
		memcpy(left, in->link_name[1 - i], in->link_len[1 - i] + 1u);
	}
	if (S_ISDIR(in->mode))
		in->nlink = 0;
	else if (in->nlink > 0)
		in->nlink--;
	/* else its entry is gone (nlink 0), or the ones left are not known
	 * (three links or more, or two not known): no copy */
	inode_set_links(in, 0, NULL, 0, NULL);
	inode_set_home(in, left_parent, left_parent ? left : NULL);
	now_ts(&in->ctime);
	*ret_purge = false;
	if (in->nlink == 0) {
		if (!is || (!is->nlookup && !is->opens)) {
			*ret_purge = true;
		} else {
			ino_key(k, ino);
			hoard_batch_put(b, HOARD_CF_ORPHANS, k, 8, "", 0);
			is->orphan = true;
		}
	}
	inode_put(fs, b, ino, in);
	return 0;
}

static int remove_locked(struct hoard_fs *fs, uint64_t parent, const char *name,
			 bool dir)
{
	struct hoard_inode pin, in;
	struct hoard_batch *b;
	uint64_t ino;
	bool purge;
	int r;

	r = pend_land_locked(fs, false); /* it writes entries (pend.c) */
	if (r < 0)
		return r;
	r = load_dir(fs, parent, &pin);
	if (r < 0)
		return r;
	r = dirent_get(fs, parent, name, &ino);
	if (r < 0)
		goto out_pin;
	r = inode_load(fs, ino, &in);
	if (r < 0)
		goto out_pin;
	if (dir && !S_ISDIR(in.mode))
		r = -ENOTDIR;
	else if (!dir && S_ISDIR(in.mode))
		r = -EISDIR;
	else if (dir && (r = dir_is_empty(fs, ino)) >= 0)
		r = r ? 0 : -ENOTEMPTY;
	if (r < 0)
		goto out_in;
	b = hoard_batch_new(fs->st);
	if (!b) {
		r = -ENOMEM;
		goto out_in;
	}
	dirent_del(b, parent, name);
	unlink_inode_locked(fs, b, ino, &in, parent, name, &purge);
	if (dir)
		pin.nlink--;
	pin.mtime = pin.ctime = in.ctime;
	inode_put(fs, b, parent, &pin);
	r = hoard_store_write(fs->st, b, false);
	hoard_batch_free(b);
	if (r == 0 && purge)
		inode_purge(fs, ino);
out_in:
	inode_clear(&in);
out_pin:
	inode_clear(&pin);
	return r;
}

int fs_unlink_locked(struct hoard_fs *fs, uint64_t parent, const char *name)
{
	return remove_locked(fs, parent, name, false);
}

int hoard_fs_unlink(struct hoard_fs *fs, uint64_t parent, const char *name)
{
	int r;

	pthread_mutex_lock(&fs->lock);
	r = remove_locked(fs, parent, name, false);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

int hoard_fs_rmdir(struct hoard_fs *fs, uint64_t parent, const char *name)
{
	int r;

	pthread_mutex_lock(&fs->lock);
	r = remove_locked(fs, parent, name, true);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

int inode_purge(struct hoard_fs *fs, uint64_t ino)
{
	struct hoard_batch *b = hoard_batch_new(fs->st);
	struct idmap drops;
	struct hoard_iter *it;
	uint8_t k[8];
	size_t n;
	int r;

	plain_drop(fs, ino);
	for (size_t i = 0; i < fs->n_kept_errs; i++) /* nobody to tell */
		if (fs->kept_errs[i].ino == ino)
			fs->kept_errs[i--] = fs->kept_errs[--fs->n_kept_errs];
	if (!b || idmap_init(&drops, 64) < 0) {
		hoard_batch_free(b);
		return -ENOMEM;
	}
	ino_key(k, ino);
	r = extents_count(fs, ino, &drops, -1, b);
	it = hoard_iter_new(fs->st, HOARD_CF_XATTRS, k, 8);
	for (; r == 0 && it && hoard_iter_valid(it); hoard_iter_next(it)) {
		const uint8_t *key = hoard_iter_key(it, &n);

		hoard_batch_delete(b, HOARD_CF_XATTRS, key, n);
	}
	hoard_iter_free(it);
	hoard_batch_delete(b, HOARD_CF_INODES, k, 8);
	hoard_batch_delete(b, HOARD_CF_ORPHANS, k, 8);
	istate_uncache(fs, ino);
	if (r == 0)
		r = chunks_apply_locked(fs, b, &drops);
	if (r == 0)
		r = hoard_store_write(fs->st, b, false);
	if (r < 0)
		hoard_log(LOG_ERR, "cannot delete inode %llu: %s",
			  (unsigned long long)ino, strerror(-r));
	idmap_free(&drops);
	hoard_batch_free(b);
	return r;
}

/* ---- rename ------------------------------------------------------------- */

struct rn {
	uint64_t parent, ino;
	const char *name;
	struct hoard_inode pin, in;
	bool have;
};

static int rn_load(struct hoard_fs *fs, struct rn *x, bool must)
{
	int r = load_dir(fs, x->parent, &x->pin);

	if (r < 0)
		return r;
	r = dirent_get(fs, x->parent, x->name, &x->ino);
	if (r == -ENOENT && !must) {
		x->have = false;
		return 0;
	}
	if (r < 0)
		return r;
	r = inode_load(fs, x->ino, &x->in);
	x->have = r == 0;
	return r;
}

static int rename_locked(struct hoard_fs *fs, struct rn *s, struct rn *d,
			 unsigned flags)
{
	bool same_dir = s->parent == d->parent, purge = false;
	struct hoard_inode *dpin = same_dir ? &s->pin : &d->pin;
	struct hoard_batch *b;
	struct timespec now;
	int r;

	if (d->have && (flags & HOARD_RENAME_NOREPLACE))
		return -EEXIST;
	if (!d->have && (flags & HOARD_RENAME_EXCHANGE))
		return -ENOENT;
	if (d->have && d->ino == s->ino)
		return 0; /* two links of one inode: POSIX says do nothing */
	if (d->have && !(flags & HOARD_RENAME_EXCHANGE)) {
		if (S_ISDIR(s->in.mode) && !S_ISDIR(d->in.mode))
			return -ENOTDIR;
		if (!S_ISDIR(s->in.mode) && S_ISDIR(d->in.mode))
			return -EISDIR;
		if (S_ISDIR(d->in.mode)) {
			r = dir_is_empty(fs, d->ino);
			if (r <= 0)
				return r < 0 ? r : -ENOTEMPTY;
		}
	}
	b = hoard_batch_new(fs->st);
	if (!b)
		return -ENOMEM;
	now_ts(&now);
	if (flags & HOARD_RENAME_EXCHANGE) {
		dirent_put(b, s->parent, s->name, d->ino, d->in.mode);
		dirent_put(b, d->parent, d->name, s->ino, s->in.mode);
		if (!same_dir && S_ISDIR(s->in.mode) != S_ISDIR(d->in.mode)) {
			int delta = S_ISDIR(s->in.mode) ? 1 : -1;

			d->pin.nlink += delta;
			s->pin.nlink -= delta;
		}
		d->in.ctime = now;
		inode_set_home(&d->in, s->parent, s->name);
		inode_link_move(&d->in, d->parent, d->name, s->parent, s->name);
		inode_put(fs, b, d->ino, &d->in);
	} else {
		dirent_del(b, s->parent, s->name);
		dirent_put(b, d->parent, d->name, s->ino, s->in.mode);
		if (d->have) {
			unlink_inode_locked(fs, b, d->ino, &d->in, d->parent,
					    d->name, &purge);
			if (S_ISDIR(d->in.mode))
				dpin->nlink--;
		}
		if (S_ISDIR(s->in.mode) && !same_dir) {
			s->pin.nlink--;
			d->pin.nlink++;
		}
	}
	s->in.ctime = now;
	inode_set_home(&s->in, d->parent, d->name);
	inode_link_move(&s->in, s->parent, s->name, d->parent, d->name);
	inode_put(fs, b, s->ino, &s->in);
	s->pin.mtime = s->pin.ctime = now;
	dpin->mtime = dpin->ctime = now;
	inode_put(fs, b, s->parent, &s->pin);
	if (!same_dir)
		inode_put(fs, b, d->parent, &d->pin);
	r = hoard_store_write(fs->st, b, false);
	hoard_batch_free(b);
	if (r == 0 && purge)
		inode_purge(fs, d->ino);
	return r;
}

int hoard_fs_rename(struct hoard_fs *fs, uint64_t parent, const char *name,
		    uint64_t newparent, const char *newname, unsigned flags)
{
	struct rn s = {.parent = parent, .name = name};
	struct rn d = {.parent = newparent, .name = newname};
	int r;

	if ((flags & HOARD_RENAME_EXCHANGE) && (flags & HOARD_RENAME_NOREPLACE))
		return -EINVAL;
	if (strlen(newname) > NAME_MAX_LEN)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&fs->lock);
	r = pend_land_locked(fs, false); /* it writes entries (pend.c) */
	if (r == 0)
		r = rn_load(fs, &s, true);
	if (r == 0)
		r = rn_load(fs, &d, false);
	if (r == 0)
		r = rename_locked(fs, &s, &d, flags);
	pthread_mutex_unlock(&fs->lock);
	/* A file being written keeps its in-memory size and times: the
	 * records written above carry the committed ones, as they should. */
	inode_clear(&s.in);
	inode_clear(&s.pin);
	inode_clear(&d.in);
	inode_clear(&d.pin);
	return r;
}

ssize_t hoard_fs_readlink(struct hoard_fs *fs, uint64_t ino, char *buf,
			  size_t size)
{
	struct hoard_inode in;
	size_t n;
	int r = inode_load(fs, ino, &in);

	if (r < 0)
		return r;
	if (!S_ISLNK(in.mode)) {
		inode_clear(&in);
		return -EINVAL;
	}
	n = strlen(in.target);
	if (n > size)
		n = size;
	memcpy(buf, in.target, n);
	inode_clear(&in);
	return (ssize_t)n;
}

/* ---- store format 3 ----------------------------------------------------- */

#define UPGRADE_BATCH 4096 /* entries given a copy per batch */

static int upgrade_write(struct hoard_fs *fs, struct hoard_batch **b, bool sync)
{
	int r = hoard_store_write(fs->st, *b, sync);

	hoard_batch_free(*b);
	*b = r == 0 ? hoard_batch_new(fs->st) : NULL;
	return r < 0 ? r : *b ? 0 : -ENOMEM;
}

/*
 * A store of format 1 or 2 (FORMAT 1): every file with one link gets its
 * home and its entry the copy (FORMAT 2.2), in batches.  The first batch
 * says format 3 and `upgrading`, so older builds refuse the store from
 * then on; a 9-byte entry is valid in format 3, so a store the upgrade
 * left half way is correct, and an open that still finds `upgrading`
 * runs the pass again; the last batch drops it.  Before any request.
 */
int meta_upgrade(struct hoard_fs *fs)
{
	uint8_t v[4];
	uint64_t t0 = hoard_now_mono_ns(), entries = 0, copies = 0;
	struct hoard_iter *it = NULL;
	struct hoard_batch *b;
	uint32_t fmt = 0;
	size_t n, inb = 0;
	int r;

	r = hoard_store_get_into(fs->st, HOARD_CF_DEFAULT, "format", 6, v,
				 sizeof(v), &n);
	if (r == 0)
		r = setting_u32_decode(v, n, &fmt);
	if (r < 0)
		return r == -ENOBUFS ? -EBADMSG : r;
	r = hoard_store_exists(fs->st, HOARD_CF_DEFAULT, "upgrading", 9);
	if (r < 0)
		return r;
	if (fmt >= 3 && !r)
		return 0;
	hoard_log(LOG_INFO, "store format %u: upgrading to format 3", fmt);
	b = hoard_batch_new(fs->st);
	if (!b)
		return -ENOMEM;
	hoard_put_be32(v, 3);
	hoard_batch_put(b, HOARD_CF_DEFAULT, "format", 6, v, 4);
	hoard_batch_put(b, HOARD_CF_DEFAULT, "upgrading", 9, "", 0);
	r = upgrade_write(fs, &b, true);
	if (r == 0)
		it = hoard_iter_new(fs->st, HOARD_CF_DIRENTS, "", 0);
	if (r == 0 && !it)
		r = -ENOMEM;
	for (; r == 0 && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl, vl, nl;
		const uint8_t *k = hoard_iter_key(it, &kl);
		const uint8_t *dv = hoard_iter_value(it, &vl);
		char name[NAME_MAX_LEN + 1];
		struct hoard_inode in;
		uint64_t parent, child;
		const char *np;
		uint8_t type;

		entries++;
		if (dirent_key_decode(k, kl, &parent, &np, &nl) < 0 ||
		    dirent_decode(dv, vl, &child, &type) < 0 ||
		    vl != DIRENT_VAL_SIZE || type == (S_IFDIR >> 12) ||
		    inode_load(fs, child, &in) < 0)
			continue; /* fsck's to judge; 9 bytes stay valid */
		if (!S_ISDIR(in.mode) && in.nlink == 1 && !in.home_parent &&
		    (in.mode & S_IFMT) >> 12 == type) {
			memcpy(name, np, nl);
			name[nl] = 0;
			inode_set_home(&in, parent, name);
			inode_put(fs, b, child, &in);
			copies++;
			inb++;
		}
		inode_clear(&in);
		if (inb == UPGRADE_BATCH) {
			r = upgrade_write(fs, &b, false);
			inb = 0;
		}
	}
	if (r == 0)
		r = hoard_iter_status(it);
	hoard_iter_free(it);
	if (r == 0) {
		hoard_batch_delete(b, HOARD_CF_DEFAULT, "upgrading", 9);
		r = upgrade_write(fs, &b, true);
	}
	hoard_batch_free(b);
	if (r < 0) {
		hoard_log(LOG_ERR,
			  "store format 3 upgrade stopped after %llu entries: "
			  "%s (the store is correct; the next open goes on)",
			  (unsigned long long)entries, strerror(-r));
		return r;
	}
	hoard_log(LOG_INFO,
		  "store upgraded to format 3: %llu entries, %llu given a copy "
		  "of their file's record, %.2f s",
		  (unsigned long long)entries, (unsigned long long)copies,
		  (double)(hoard_now_mono_ns() - t0) / 1e9);
	return 0;
}
