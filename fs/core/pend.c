/* SPDX-License-Identifier: MIT */
/*
 * pend: creates answered from memory, landed with the next batch.
 *
 * With hoard_fs_defer_creates on (the daemon's --close=defer), a CREATE of
 * a regular file (meta.c create_locked) writes nothing to the store on the
 * request's thread: the new record, its home entry (the copy the entry
 * carries) and the parent's new times wait here, in fs->pend, until a
 * batch lands them.  Every batch that lands a file's content
 * (file_land_locked, the committer's commit_group) puts all of them first,
 * so a file created and closed within the committer's gather lands with
 * its content in one batch; the committer also lands them when no release
 * comes (hoardfsops.c), so an entry is only in memory for a few
 * milliseconds.  What reads entries or records sees them as landed ones:
 * inode_load and dirent_get look here first, LOOKUP too (before its
 * windows of entries read from the store, which cannot hold them), and a
 * CREATE of a pending name is EEXIST.  Everything else that reads a
 * listing or writes entries or records (readdir, unlink, rename, link,
 * mkdir, setattr, xattrs, fsync, fsyncdir, the control socket's requests)
 * first lands them all (pend_land / pend_land_locked): the simple rule
 * that keeps every other path as it was.
 *
 * Order: the batch's puts follow the store's own rules: the creates'
 * records and entries are put before what the rest of the batch writes
 * (a commit's record of the same file, later in the batch, wins).  The
 * landing counts as the entries write it is (rec_writes by inode_put_new,
 * dent_writes by the store), so LOOKUP windows and neg_note stay right.
 *
 * A new block of inode numbers (take_ino) and a store known to be failing
 * (a batch with pending creates failed since the last write of one, or
 * the store's filesystem is short of room) take the synchronous create,
 * whose error is the CREATE's.  A batch that fails keeps its creates
 * here for the next one: each is counted once in commit_errors (unless
 * its file's own commit will report it: pend_failed_locked), the batch
 * is logged once, and every operation that lands them first (an fsync of
 * the file or its directory included) returns the error while the store
 * fails -- an operation that went on would write entries next to names
 * the store does not have.  A crash (kill -9) loses what is still here:
 * the window of the deferred close (README, "Writes and durability").
 *
 * Locks: fs->pend is protected by pend_mu and changed only with fs->lock
 * held too (lock -> pend_mu, and is->mu -> pend_mu: inode_load runs under
 * is->mu), so fs->lock alone keeps it still; npend mirrors its length for
 * the lock-free check of the fast paths.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoard/util.h"
#include "fs-internal.h"

/* More than this pending: the next create lands them first. */
#define PEND_MAX 256

bool pend_any(struct hoard_fs *fs)
{
	return __atomic_load_n(&fs->npend, __ATOMIC_ACQUIRE) != 0;
}

int pend_add_locked(struct hoard_fs *fs, uint64_t ino,
		    const struct hoard_inode *in, const struct hoard_inode *dir)
{
	struct pend *p;
	int r = 0;

	pthread_mutex_lock(&fs->pend_mu);
	p = hoard_grow(fs->pend, &fs->cap_pend, fs->npend + 1, sizeof(*p), 16);
	if (!p) {
		r = -ENOMEM;
	} else {
		fs->pend = p;
		p[fs->npend] = (struct pend){
			.ino = ino, .in = *in, .dir = *dir};
		p[fs->npend].in.target = NULL;
		p[fs->npend].dir.target = NULL;
		__atomic_store_n(&fs->npend, fs->npend + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&fs->pend_mu);
	return r;
}

bool pend_room_locked(struct hoard_fs *fs)
{
	return fs->npend < PEND_MAX;
}

int pend_find(struct hoard_fs *fs, uint64_t parent, const char *name,
	      uint64_t *ret_ino, struct hoard_inode *ret_in)
{
	size_t len = strlen(name);
	int r = -ENOENT;

	if (!pend_any(fs))
		return r;
	pthread_mutex_lock(&fs->pend_mu);
	for (size_t i = 0; i < fs->npend; i++) {
		const struct pend *p = &fs->pend[i];

		if (!inode_home_is(&p->in, parent, name, len))
			continue;
		*ret_ino = p->ino;
		if (ret_in)
			*ret_in = p->in;
		r = 0;
		break;
	}
	pthread_mutex_unlock(&fs->pend_mu);
	return r;
}

int pend_load(struct hoard_fs *fs, uint64_t ino, struct hoard_inode *ret)
{
	int r = -ENOENT;

	if (!pend_any(fs))
		return r;
	pthread_mutex_lock(&fs->pend_mu);
	/* the newest: a directory's record after its last pending create */
	for (size_t i = fs->npend; i-- > 0;) {
		const struct pend *p = &fs->pend[i];

		if (p->ino == ino)
			*ret = p->in;
		else if (p->in.home_parent == ino)
			*ret = p->dir;
		else
			continue;
		r = 0;
		break;
	}
	pthread_mutex_unlock(&fs->pend_mu);
	return r;
}

size_t pend_put_locked(struct hoard_fs *fs, struct hoard_batch *b)
{
	size_t n;

	pthread_mutex_lock(&fs->pend_mu);
	n = fs->npend;
	for (size_t i = 0; i < n; i++) {
		const struct pend *p = &fs->pend[i];
		bool last = true;

		/* the istates keep these records (recc): as written */
		inode_put_new(fs, b, p->ino, &p->in);
		for (size_t j = i + 1; j < n && last; j++)
			last = fs->pend[j].in.home_parent != p->in.home_parent;
		if (last) /* the parent's record after its last create */
			inode_put_new(fs, b, p->in.home_parent, &p->dir);
	}
	pthread_mutex_unlock(&fs->pend_mu);
	return n;
}

/*
 * A batch with the first n pending creates failed (fs->lock held, which
 * keeps the table as it is; not pend_mu: is->mu is taken after it here,
 * before it in inode_load's callers): each is counted in commit_errors
 * once, when nothing else will report it: a file still open (its release
 * pending in the daemon included) or with content to commit gets its own
 * commit's error, which counts, and one whose commit failed already
 * counted; a closed, clean one has no later commit: it is counted (at
 * this failure, or at a later one once it is closed).
 */
static void pend_failed_locked(struct hoard_fs *fs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pend *p = &fs->pend[i];
		struct istate *is;
		bool quiet = true;

		if (p->counted)
			continue;
		is = istate_find(fs, p->ino);
		if (is) {
			pthread_mutex_lock(&is->mu);
			quiet = !is->opens && !is->dirty && !is->commit_err;
			pthread_mutex_unlock(&is->mu);
		}
		if (!quiet)
			continue; /* looked at again at the next failure */
		p->counted = true;
		__atomic_add_fetch(&fs->commit_errors, 1, __ATOMIC_RELAXED);
	}
}

void pend_done_locked(struct hoard_fs *fs, size_t n, int r)
{
	if (!n)
		return;
	if (r == 0) {
		pthread_mutex_lock(&fs->pend_mu);
		memmove(fs->pend, fs->pend + n,
			(fs->npend - n) * sizeof(*fs->pend));
		__atomic_store_n(&fs->npend, fs->npend - n, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&fs->pend_mu);
	} else {
		pend_failed_locked(fs, n);
	}
	/* a failing store: creates write at once (and fail at once) until
	 * one wrote */
	__atomic_store_n(&fs->create_sync, r < 0, __ATOMIC_RELAXED);
	if (r < 0)
		hoard_log(LOG_ERR,
			  "%zu new entries could not be written (%s): kept "
			  "for the next batch",
			  n, strerror(-r));
}

/* For tests: HOARD_TEST_CREATE_FAIL=PATH fails every batch that carries
 * pending creates with EIO while PATH exists. */
static const char *create_fail_path;
static pthread_once_t create_fail_once = PTHREAD_ONCE_INIT;

static void create_fail_init(void)
{
	create_fail_path = getenv("HOARD_TEST_CREATE_FAIL");
}

static bool pend_fault(size_t n)
{
	if (!n)
		return false;
	pthread_once(&create_fail_once, create_fail_init);
	return create_fail_path && access(create_fail_path, F_OK) == 0;
}

int pend_write_locked(struct hoard_fs *fs, struct hoard_batch *b, size_t n,
		      bool sync)
{
	int r = pend_fault(n) ? -EIO : hoard_store_write(fs->st, b, sync);

	pend_done_locked(fs, n, r);
	return r;
}

int pend_land_locked(struct hoard_fs *fs, bool sync)
{
	struct hoard_batch *b;
	int r;

	if (!pend_any(fs))
		return 0;
	b = hoard_batch_new(fs->st);
	if (!b)
		return -ENOMEM;
	r = pend_write_locked(fs, b, pend_put_locked(fs, b), sync);
	hoard_batch_free(b);
	return r;
}

int pend_land(struct hoard_fs *fs)
{
	int r;

	if (!pend_any(fs))
		return 0;
	pthread_mutex_lock(&fs->lock);
	r = pend_land_locked(fs, false);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

int hoard_fs_land_creates(struct hoard_fs *fs)
{
	return pend_land(fs);
}

bool hoard_fs_creates_pending(struct hoard_fs *fs)
{
	return pend_any(fs);
}

void hoard_fs_defer_creates(struct hoard_fs *fs, bool on)
{
	fs->defer_creates = on;
}
