/* SPDX-License-Identifier: MIT */
/*
 * hoardfsops: the FUSE operations of hoardfs (moved out of hoardfs.c,
 * which sets up the mounts and runs their sessions).  Each op_* turns a
 * request into hoard_fs_* calls on its mount's volume (the mount is the
 * session's userdata, FUSE_ROOT_ID maps to the volume's root inode) and
 * -errno into the reply; `ops` is the table every session is made with.
 * The committer thread makes the last releases of handles whose close did
 * not wait (--close=defer), one at a time.
 *
 * Threads: the operations run on each session's loop threads at once; the
 * core (fs.h) locks what it shares.  The mount's passthrough state is set
 * at INIT under D.notify_mu; the committer's queue is protected by its own
 * mutex (C.mu).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include <fuse_lowlevel.h>

#include "hoard/evict.h"
#include "hoard/fs.h"
#include "hoard/plain.h"
#include "hoard/util.h"

#include "hoardfs-internal.h"

/* The daemon is the only writer of its volumes: the kernel may cache names
 * and attributes for long (pull into a mounted volume will invalidate). */
#define ENTRY_TIMEOUT 86400.0
#define NEG_TIMEOUT   60.0
/* Asynchronous requests (read-ahead READs) the kernel keeps in flight; its
 * default of 12 (congestion at 9) caps a cold sequential read's depth.  The
 * session loop's 16 threads bound what is served at once. */
#define MAX_BACKGROUND	     64
#define CONGESTION_THRESHOLD 48

/* ---- request helpers ---------------------------------------------------- */

static struct mount *M(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static uint64_t S(fuse_req_t req, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? M(req)->root : ino;
}

static int E(int r)
{
	return r == -EBADMSG ? EIO : -r;
}

static void reply_entry(fuse_req_t req, int r, const struct stat *st,
			bool lookup)
{
	struct fuse_entry_param e = {0};

	if (r < 0) {
		if (r == -ENOENT && lookup) { /* a cacheable negative entry */
			e.entry_timeout = NEG_TIMEOUT;
			fuse_reply_entry(req, &e);
			return;
		}
		fuse_reply_err(req, E(r));
		return;
	}
	e.ino = st->st_ino == M(req)->root ? FUSE_ROOT_ID : st->st_ino;
	e.attr = *st;
	e.attr_timeout = ENTRY_TIMEOUT;
	e.entry_timeout = ENTRY_TIMEOUT;
	fuse_reply_entry(req, &e);
}

static void reply_attr(fuse_req_t req, int r, const struct stat *st)
{
	if (r < 0)
		fuse_reply_err(req, E(r));
	else
		fuse_reply_attr(req, st, ENTRY_TIMEOUT);
}

static struct hoard_ctx ctx_of(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);

	return (struct hoard_ctx){.uid = c->uid, .gid = c->gid};
}

/* ---- operations --------------------------------------------------------- */

/* Passthrough is decided per mount at INIT: asked for unless
 * --passthrough=off, used when the kernel grants it (Linux >= 6.9 with
 * CONFIG_FUSE_PASSTHROUGH, and CAP_SYS_ADMIN). */
static void init_passthrough(struct mount *m, struct fuse_conn_info *conn)
{
	/* pt and pt_why are read by stats under D.notify_mu */
	pthread_mutex_lock(&D.notify_mu);
	m->pt = false;
	if (D.passthrough_off) {
		m->pt_why = "off (--passthrough=off)";
	} else if (!HAVE_PASSTHROUGH) {
		m->pt_why = "off (built with libfuse < 3.16)";
	} else if (!D.plain_size) {
		m->pt_why = "off (--plain-size 0)";
	} else if (!D.plain) {
		m->pt_why = "off (the plain-file tier did not start)";
	} else {
#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 17)
		m->pt = fuse_set_feature_flag(conn, FUSE_CAP_PASSTHROUGH);
#elif HAVE_PASSTHROUGH
		if (conn->capable & FUSE_CAP_PASSTHROUGH) {
			conn->want |= FUSE_CAP_PASSTHROUGH;
			m->pt = true;
		}
#endif
#if HAVE_PASSTHROUGH
		/* copies live on the store's filesystem: one level below */
		conn->max_backing_stack_depth = 1;
#endif
		m->pt_why = m->pt ? "on" : "off (the kernel does not offer it)";
	}
	pthread_mutex_unlock(&D.notify_mu);
	hoard_log(LOG_INFO, "volume '%s' at %s: passthrough %s", m->name,
		  m->mountpoint, m->pt_why);
}

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	init_passthrough(ud, conn);
	conn->time_gran = 1;
	conn->max_write = 1u << 20;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	conn->max_background = MAX_BACKGROUND;
	conn->congestion_threshold = CONGESTION_THRESHOLD;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct stat st;
	int r = hoard_fs_lookup(M(req)->fs, S(req, parent), name, &st);

	reply_entry(req, r, &st, true);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	hoard_fs_forget(M(req)->fs, S(req, ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		hoard_fs_forget(M(req)->fs, S(req, forgets[i].ino),
				forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int r = hoard_fs_getattr(M(req)->fs, S(req, ino), &st);

	reply_attr(req, r, &st);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct hoard_fh *fh = fi ? (struct hoard_fh *)(uintptr_t)fi->fh : NULL;
	struct stat st;
	/* HOARD_SET_* use the values of FUSE_SET_ATTR_* */
	int set = to_set &
		  (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
		   FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME |
		   FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
		   FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME);
	int r = hoard_fs_setattr(M(req)->fs, S(req, ino), attr, set, fh, &st);

	reply_attr(req, r, &st);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = hoard_fs_readlink(M(req)->fs, S(req, ino), buf, PATH_MAX);

	if (n < 0) {
		fuse_reply_err(req, E((int)n));
		return;
	}
	buf[n] = 0;
	fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct hoard_ctx c = ctx_of(req);
	struct stat st;
	int r = hoard_fs_mknod(M(req)->fs, S(req, parent), name, mode, rdev, &c,
			       &st);

	reply_entry(req, r, &st, false);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct hoard_ctx c = ctx_of(req);
	struct stat st;
	int r = hoard_fs_mkdir(M(req)->fs, S(req, parent), name, mode, &c, &st);

	reply_entry(req, r, &st, false);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct hoard_ctx c = ctx_of(req);
	struct stat st;
	int r = hoard_fs_symlink(M(req)->fs, S(req, parent), name, link, &c,
				 &st);

	reply_entry(req, r, &st, false);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct stat st;
	int r = hoard_fs_link(M(req)->fs, S(req, ino), S(req, newparent),
			      newname, &st);

	reply_entry(req, r, &st, false);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req,
		       E(hoard_fs_unlink(M(req)->fs, S(req, parent), name)));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req,
		       E(hoard_fs_rmdir(M(req)->fs, S(req, parent), name)));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	unsigned f = 0;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT */
		return;
	}
	if (flags & RENAME_NOREPLACE)
		f |= HOARD_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= HOARD_RENAME_EXCHANGE;
	/* with --close=defer a closed file's commit may not have landed:
	 * land it before the rename (fs.h) */
	if (D.close_defer) {
		hoard_fs_commit_named(M(req)->fs, S(req, parent), name);
		if (f & HOARD_RENAME_EXCHANGE)
			hoard_fs_commit_named(M(req)->fs, S(req, newparent),
					      newname);
	}
	fuse_reply_err(req, E(hoard_fs_rename(M(req)->fs, S(req, parent), name,
					      S(req, newparent), newname, f)));
}

#if HAVE_PASSTHROUGH
static int pt_open(void *ud, int fd)
{
	int id;

	errno = 0;
	id = fuse_passthrough_open(ud, fd);
	return id > 0 ? id : errno ? -errno : -EIO;
}

static void pt_close(void *ud, int backing_id)
{
	if (fuse_passthrough_close(ud, backing_id) < 0)
		hoard_log(LOG_WARNING, "cannot close backing file %d: %s",
			  backing_id, strerror(errno));
}
#endif

/* The passthrough hooks for a request on m (fs.h); NULL: none. */
static const struct hoard_pt_ops *pt_ops(fuse_req_t req, struct hoard_pt_ops *o)
{
#if HAVE_PASSTHROUGH
	if (M(req)->pt) {
		*o = (struct hoard_pt_ops){pt_open, pt_close, req};
		return o;
	}
#endif
	return NULL;
}

/*
 * No FLUSH at close when the handle does not need one (fs.h,
 * hoard_fs_defer_close): the commit then happens at RELEASE, which the
 * kernel sends in the background, so a close(2) costs no request and does
 * not wait for the commit.
 */
static void set_noflush(struct hoard_fh *fh, struct fuse_file_info *fi)
{
#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 11)
	/* a read-only handle's flush does nothing: never wait for it; a
	 * writer's close waits for its commit unless --close=defer */
	if (((fi->flags & O_ACCMODE) == O_RDONLY || D.close_defer) &&
	    hoard_fs_defer_close(D.fs, fh))
		fi->noflush = 1;
#endif
}

static void commit_drain_ino(uint64_t ino);
static void committer_kick(void);

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hoard_pt_ops pto;
	struct hoard_open_reply rep;
	struct hoard_fh *fh;
	int r;

	commit_drain_ino(S(req, ino));
	r = hoard_fs_open_pt(M(req)->fs, S(req, ino), fi->flags,
			     pt_ops(req, &pto), &fh, &rep);

	if (r < 0) {
		fuse_reply_err(req, E(r));
		return;
	}
	fi->fh = (uintptr_t)fh;
	set_noflush(fh, fi);
	hoard_evict_touch(D.ev, S(req, ino)); /* a use, for the budget */
	/* Every write goes through this daemon (or, with passthrough, into
	 * the backing file), so the kernel's page cache stays right across
	 * opens: keep it (never direct_io: mmap), unless passthrough writes
	 * went around it. */
	fi->keep_cache = rep.keep_cache;
#if HAVE_PASSTHROUGH
	if (rep.backing_id > 0) {
		fi->backing_id = rep.backing_id;
		fi->keep_cache = 0;
	}
#endif
	/* interrupted: the request is gone, so the backing id (if this was
	 * the inode's first passthrough open) stays until the unmount */
	if (fuse_reply_open(req, fi) == -ENOENT)
		hoard_fs_release_pt(M(req)->fs, fh, NULL);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e = {0};
	struct hoard_ctx c = ctx_of(req);
	struct hoard_fh *fh;
	int r = hoard_fs_create(M(req)->fs, S(req, parent), name, mode,
				fi->flags, &c, &e.attr, &fh);

	if (r < 0) {
		fuse_reply_err(req, E(r));
		return;
	}
	e.ino = e.attr.st_ino;
	/* an entry answered from memory lands within the gather */
	if (hoard_fs_creates_pending(M(req)->fs))
		committer_kick();
	hoard_evict_touch(D.ev, e.ino);
	e.attr_timeout = e.entry_timeout = ENTRY_TIMEOUT;
	fi->fh = (uintptr_t)fh;
	fi->keep_cache = 1;
	set_noflush(fh, fi);
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		hoard_fs_release(M(req)->fs, fh);
}

static struct hoard_fh *FH(struct fuse_file_info *fi)
{
	return (struct hoard_fh *)(uintptr_t)fi->fh;
}

/*
 * Answered by reference: the reply is written from the chunk cache's own
 * buffers (pinned until it is sent), so the kernel's copy into its pages is
 * the only one.  fuse_reply_iov, not fuse_reply_data: libfuse 3.14 copies
 * a buffer vector of more than one piece into a new buffer when it does
 * not splice, and splicing memory costs a copy into the pipe.
 */
static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct hoard_fs *fs = M(req)->fs;
	struct hoard_rvec rv;
	ssize_t n = hoard_fs_read_vec(fs, FH(fi), size, off, &rv);

	if (n == -EBADMSG || n == -EIO) /* `hoard stats`: read_errors */
		__atomic_add_fetch(&D.read_errors, 1, __ATOMIC_RELAXED);
	if (n < 0)
		fuse_reply_err(req, E((int)n));
	else if (rv.n == 0)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_iov(req, rv.iov, rv.n);
	hoard_fs_read_done(fs, &rv);
}

struct write_ack {
	fuse_req_t req;
	bool sent;
};

static void write_ack(void *ud, size_t n)
{
	struct write_ack *a = ud;

	fuse_reply_write(a->req, n);
	a->sent = true;
}

/* An append to a streaming file is answered before it is stored
 * (hoard_fs_write_ack): `cp` prepares its next write meanwhile.  buf is
 * libfuse's, valid until we return. */
static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct write_ack a = {.req = req};
	ssize_t n = hoard_fs_write_ack(M(req)->fs, FH(fi), buf, size, off,
				       write_ack, &a);

	if (a.sent)
		return;
	if (n < 0)
		fuse_reply_err(req, E((int)n));
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, E(hoard_fs_flush(M(req)->fs, FH(fi))));
}

/*
 * The committer: one thread that makes the last releases of handles whose
 * close did not wait (hoard_fs_defer_close), beside the requests instead
 * of on the session's threads (a burst of RELEASEs, each waiting for the
 * store, would queue every other request behind it).  It takes the queue
 * in groups: after the first job it waits up to COMMIT_GATHER_NS for more
 * (less once COMMIT_GROUP jobs wait), then makes all their releases at
 * once, so that the commits of a burst of small new files land in one
 * batch each (hoard_fs_release_many).  At most COMMIT_QUEUE_MAX wait;
 * past that a RELEASE commits on its own thread.  Until its job runs the
 * handle stays open in the daemon, so every access sees the staged
 * content (fs.h), and an open of the file makes its release first.
 * It also lands the creates answered from memory (hoard_fs_create with
 * hoard_fs_defer_creates): a CREATE wakes it (committer_kick) as a first
 * RELEASE does, its group's batch carries them with the files' content,
 * and what is left after the group lands at once, so an entry waits at
 * most a gather (plus a group) in memory even while its file is open.
 */
#define COMMIT_QUEUE_MAX 128
#define COMMIT_GROUP	 32
#define COMMIT_GATHER_NS 2000000 /* 2 ms */
struct commit_job {
	struct commit_job *next;
	struct hoard_fh *fh;
	uint64_t pin;	/* hoard_fs_fh_pin: the RELEASE answered, the
			 * kernel may forget the inode before the job runs */
	uint64_t root;	/* the volume of ... */
	fuse_ino_t ino; /* ... the kernel's inode */
};
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct commit_job *head, **tail;    /* protected by mu */
	unsigned n;			    /* protected by mu */
	uint64_t running[COMMIT_QUEUE_MAX]; /* protected by mu: the
					     * inodes of the jobs under
					     * way (nrunning of them) */
	unsigned nrunning;		    /* protected by mu */
	pthread_cond_t done_cv;		    /* with mu: a job was done */
	bool stop;			    /* protected by mu */
	bool creates; /* atomic, set under mu: a create waits (kick) */
	bool hurry;   /* protected by mu: no gathering (commit_wait_idle) */
	uint64_t started, finished; /* protected by mu: groups so far */
	unsigned releasing; /* protected by mu: RELEASEs being handled */
	pthread_t thread;
} C = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER,
       .done_cv = PTHREAD_COND_INITIALIZER,
       .tail = &C.head};

/* The commit after a close failed: the file kept its previous content, so
 * the kernel drops its pages and attributes of the new one. */
static void release_failed_notify(uint64_t root, fuse_ino_t ino)
{
	pthread_mutex_lock(&D.notify_mu);
	for (int i = 0; i < MAX_MOUNTS; i++) {
		struct mount *m = &D.mounts[i];

		if (m->used && m->root == root && m->se && !m->ended)
			fuse_lowlevel_notify_inval_inode(m->se, ino, 0, 0);
	}
	pthread_mutex_unlock(&D.notify_mu);
}

static void commit_job_run(struct commit_job *j)
{
	if (hoard_fs_release_pt(D.fs, j->fh, NULL) < 0)
		release_failed_notify(j->root, j->ino);
	hoard_fs_forget(D.fs, j->pin, 1);
	hoard_evict_poke(D.ev); /* what it wrote is committed now */
	free(j);
}

/* A job of the group is done (hoard_fs_release_many): as commit_job_run
 * after the release, and an open waiting for it goes on. */
static void commit_group_done(void *ud, size_t i, int r)
{
	struct commit_job *j = ((struct commit_job **)ud)[i];

	if (r < 0)
		release_failed_notify(j->root, j->ino);
	hoard_fs_forget(D.fs, j->pin, 1);
	pthread_mutex_lock(&C.mu);
	C.running[i] = 0;
	pthread_cond_broadcast(&C.done_cv);
	pthread_mutex_unlock(&C.mu);
	free(j);
}

/* The jobs head..., n of them (C.running; C.mu not held): their releases
 * at once, so that the commits of small new files land in one batch. */
static void commit_group_run(struct commit_job *head, unsigned n)
{
	struct hoard_fh *fhs[COMMIT_QUEUE_MAX];
	struct commit_job *jobs[COMMIT_QUEUE_MAX];
	unsigned i = 0;

	for (struct commit_job *j = head; j; j = j->next) {
		jobs[i] = j;
		fhs[i++] = j->fh;
	}
	hoard_fs_release_many(D.fs, fhs, n, commit_group_done, jobs);
	hoard_evict_poke(D.ev); /* what they wrote is committed now */
}

/* More jobs for the group: up to COMMIT_GATHER_NS, or until COMMIT_GROUP
 * jobs wait (C.mu held). */
static long gather_ns = COMMIT_GATHER_NS;

static void committer_gather(void)
{
	struct timespec until = hoard_deadline(CLOCK_MONOTONIC, gather_ns);

	while (!C.stop && !C.hurry && C.n < COMMIT_GROUP &&
	       pthread_cond_clockwait(&C.cv, &C.mu, CLOCK_MONOTONIC, &until) !=
		       ETIMEDOUT)
		;
}

static void *committer(void *arg)
{
	struct commit_job *head;
	unsigned n;

	pthread_setname_np(pthread_self(), "hoard-commit");
	pthread_mutex_lock(&C.mu);
	for (;;) {
		while (!C.head && !C.creates && !C.stop)
			pthread_cond_wait(&C.cv, &C.mu);
		if (!C.head && !C.creates)
			break; /* stopping, and nothing left */
		committer_gather();
		/* the creates made from here on: the next round's */
		__atomic_store_n(&C.creates, false, __ATOMIC_RELAXED);
		head = C.head;
		n = 0;
		for (struct commit_job *j = head; j; j = j->next)
			C.running[n++] = j->pin;
		C.nrunning = n;
		C.head = NULL;
		C.tail = &C.head;
		C.n = 0;
		C.hurry = false;
		C.started++;
		pthread_mutex_unlock(&C.mu);
		if (n)
			commit_group_run(head, n);
		/* what no batch of the group carried (an error: the next
		 * batch retries, the files' fsync returns it) */
		hoard_fs_land_creates(D.fs);
		pthread_mutex_lock(&C.mu);
		C.nrunning = 0;
		C.finished++;
		pthread_cond_broadcast(&C.done_cv);
	}
	pthread_mutex_unlock(&C.mu);
	return NULL;
}

/* A create waits for its batch (hoard_fs_creates_pending): wake the
 * committer, which gathers as for a first release.  One mutex pair per
 * round at most: later creates see the flag set. */
static void committer_kick(void)
{
	if (__atomic_load_n(&C.creates, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&C.mu);
	if (!C.creates) {
		__atomic_store_n(&C.creates, true, __ATOMIC_RELAXED);
		pthread_cond_signal(&C.cv);
	}
	pthread_mutex_unlock(&C.mu);
}

/* ino's job is under way (C.mu held). */
static bool commit_running(uint64_t ino)
{
	for (unsigned i = 0; i < C.nrunning; i++)
		if (C.running[i] == ino)
			return true;
	return false;
}

/*
 * An open of an inode whose earlier closes wait in the queue makes their
 * releases first (and waits for one under way): it then finds the file
 * committed and without other opens, as after a close that committed
 * (passthrough and the plain-file copy depend on that).
 */
static void commit_drain_ino(uint64_t ino)
{
	struct commit_job *mine = NULL, **pp, *j;

	pthread_mutex_lock(&C.mu);
	while (commit_running(ino))
		pthread_cond_wait(&C.done_cv, &C.mu);
	for (pp = &C.head; (j = *pp);) {
		if (j->pin != ino) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		C.n--;
		j->next = mine;
		mine = j;
	}
	C.tail = &C.head;
	while (*C.tail)
		C.tail = &(*C.tail)->next;
	pthread_mutex_unlock(&C.mu);
	while ((j = mine)) {
		mine = j->next;
		commit_job_run(j);
	}
}

/* Queue fh's release; false: do it now (queue full, or stopping). */
static bool commit_queue(fuse_req_t req, fuse_ino_t ino, struct hoard_fh *fh)
{
	struct commit_job *j;

	if (!hoard_fs_fh_deferred(fh))
		return false;
	j = malloc(sizeof(*j));
	if (!j)
		return false;
	*j = (struct commit_job){.fh = fh, .root = M(req)->root, .ino = ino};
	pthread_mutex_lock(&C.mu);
	if (C.stop || C.n >= COMMIT_QUEUE_MAX) {
		pthread_mutex_unlock(&C.mu);
		free(j);
		return false;
	}
	j->pin = hoard_fs_fh_pin(D.fs, fh);
	*C.tail = j;
	C.tail = &j->next;
	C.n++;
	if (C.n == 1 || C.n >= COMMIT_GROUP) /* see committer_gather */
		pthread_cond_signal(&C.cv);
	pthread_mutex_unlock(&C.mu);
	return true;
}

/* Until the jobs queued or under way now are done (C.mu not held); later
 * ones are not waited for, so a burst of closes cannot hold us. */
void commit_wait_idle(void)
{
	uint64_t until;

	pthread_mutex_lock(&C.mu);
	until = C.started + (C.head ? 1 : 0); /* the next group takes all */
	C.hurry = C.head != NULL;
	pthread_cond_signal(&C.cv);
	/* (jobs an open drained were made by its thread) */
	while (C.finished < until && !C.stop &&
	       (C.head || C.finished < C.started))
		pthread_cond_wait(&C.done_cv, &C.mu);
	pthread_mutex_unlock(&C.mu);
}

/*
 * With --close=wait a close commits at FLUSH, so nothing is owed here (and
 * committing files still being written would cut a stream short).  With
 * --close=defer a closed file may wait in the queue, or its RELEASE may
 * still be on its way from the kernel, where it cannot be told from an
 * open file: the queue is made first, then every file with uncommitted
 * writes is committed; streams only when `streams` (a push; not for
 * stats, which would cut short every large file being written at each
 * scrape: a stream whose RELEASE has not reached the daemon yet is
 * counted once its commit lands, milliseconds later).
 */
void commit_closed_files(bool streams)
{
	if (!D.close_defer)
		return;
	commit_wait_idle();
	hoard_fs_commit_dirty(D.fs, streams);
}

/* Start the committer thread (main, before the sessions): 0, or
 * pthread_create's error. */
int committer_start(void)
{
	/* for tests: HOARD_TEST_COMMIT_GATHER_MS=N gathers N ms (pending
	 * creates and closes stay in memory that long) */
	const char *g = getenv("HOARD_TEST_COMMIT_GATHER_MS");

	if (g)
		gather_ns = strtol(g, NULL, 10) * 1000000L;
	return pthread_create(&C.thread, NULL, committer, NULL);
}

/* Make every queued release (at the end: no session thread is left). */
void committer_stop(void)
{
	pthread_mutex_lock(&C.mu);
	C.stop = true;
	pthread_cond_signal(&C.cv);
	pthread_mutex_unlock(&C.mu);
	pthread_join(C.thread, NULL);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct hoard_pt_ops pto;
	int r;

	hoard_evict_touch(D.ev, S(req, ino));
	pthread_mutex_lock(&C.mu);
	C.releasing++;
	pthread_mutex_unlock(&C.mu);
	if (!commit_queue(req, ino, FH(fi))) {
		r = hoard_fs_release_pt(M(req)->fs, FH(fi), pt_ops(req, &pto));
		if (r < 0)
			release_failed_notify(M(req)->root, ino);
		hoard_evict_poke(D.ev); /* what it wrote is committed now */
	}
	pthread_mutex_lock(&C.mu);
	C.releasing--;
	pthread_cond_broadcast(&C.done_cv);
	pthread_mutex_unlock(&C.mu);
	fuse_reply_err(req, 0);
}

/*
 * Before a read of what ino is made of (HOARD_INFO_XATTR): a close's
 * RELEASE reaches the daemon before any later request of the closer, but
 * another thread may still be handling it: wait (10 ms at most) until no
 * RELEASE is being handled, then make ino's queued releases.  A file
 * still open reports its last commit (dirty), as with --close=wait.
 */
static void commit_settle_ino(uint64_t ino)
{
	struct timespec until = hoard_deadline(CLOCK_MONOTONIC, 10000000);

	pthread_mutex_lock(&C.mu);
	while (C.releasing &&
	       pthread_cond_clockwait(&C.done_cv, &C.mu, CLOCK_MONOTONIC,
				      &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&C.mu);
	commit_drain_ino(ino);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	hoard_evict_poke(D.ev);
	fuse_reply_err(req, E(hoard_fs_fsync(M(req)->fs, FH(fi), datasync)));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			 off_t length, struct fuse_file_info *fi)
{
	fuse_reply_err(req, E(hoard_fs_fallocate(M(req)->fs, FH(fi), mode,
						 offset, length)));
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct hoard_dirh *dh;
	int r = hoard_fs_opendir(M(req)->fs, S(req, ino), &dh);

	if (r < 0) {
		fuse_reply_err(req, E(r));
		return;
	}
	fi->fh = (uintptr_t)dh;
	if (fuse_reply_open(req, fi) == -ENOENT)
		hoard_fs_releasedir(M(req)->fs, dh);
}

struct fill {
	fuse_req_t req;
	char *buf;
	size_t size, used;
};

static int fill_one(void *ud, const char *name, uint64_t ino, unsigned type,
		    off_t next)
{
	struct fill *f = ud;
	struct stat st = {.st_ino = ino, .st_mode = type << 12};
	size_t n = fuse_add_direntry(f->req, f->buf + f->used,
				     f->size - f->used, name, &st, next);

	if (n > f->size - f->used)
		return 1;
	f->used += n;
	return 0;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fill f = {.req = req, .size = size, .buf = malloc(size)};
	int r;

	if (!f.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = hoard_fs_readdir(M(req)->fs, (struct hoard_dirh *)(uintptr_t)fi->fh,
			     off, fill_one, &f);
	if (r < 0)
		fuse_reply_err(req, E(r));
	else
		fuse_reply_buf(req, f.buf, f.used);
	free(f.buf);
}

struct fillplus {
	fuse_req_t req;
	uint64_t root;
	char *buf;
	size_t size, used;
	uint64_t *inos; /* the entries taken with a lookup counted */
	size_t n, cap;
};

static int fill_plus(void *ud, const char *name, const struct stat *st,
		     bool counted, off_t next)
{
	struct fillplus *f = ud;
	struct fuse_entry_param e = {.attr = *st};
	size_t n;

	if (counted) { /* else node id 0: the kernel makes no dentry */
		e.ino = st->st_ino == f->root ? FUSE_ROOT_ID : st->st_ino;
		e.attr_timeout = e.entry_timeout = ENTRY_TIMEOUT;
	}
	n = fuse_add_direntry_plus(f->req, f->buf + f->used, f->size - f->used,
				   name, &e, next);
	if (n > f->size - f->used || (counted && f->n == f->cap))
		return 1;
	f->used += n;
	if (counted)
		f->inos[f->n++] = st->st_ino;
	return 0;
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	/* an entry takes 160 bytes or more (fuse_entry_out + fuse_dirent) */
	struct fillplus f = {
		.req = req,
		.root = M(req)->root,
		.size = size,
		.buf = malloc(size),
		.cap = size / 128 + 1,
	};
	int r = -ENOMEM;

	f.inos = malloc(f.cap * sizeof(*f.inos));
	if (f.buf && f.inos)
		r = hoard_fs_readdirplus(M(req)->fs,
					 (struct hoard_dirh *)(uintptr_t)fi->fh,
					 off, fill_plus, &f);
	if (r < 0) {
		fuse_reply_err(req, E(r));
	} else if (fuse_reply_buf(req, f.buf, f.used) < 0) {
		/* interrupted: the kernel saw none of them */
		for (size_t i = 0; i < f.n; i++)
			hoard_fs_forget(M(req)->fs, f.inos[i], 1);
	}
	free(f.buf);
	free(f.inos);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	hoard_fs_releasedir(M(req)->fs, (struct hoard_dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	fuse_reply_err(req, E(hoard_fs_fsyncdir(M(req)->fs, S(req, ino))));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int r = hoard_fs_statfs(M(req)->fs, &sv);

	if (r < 0)
		fuse_reply_err(req, E(r));
	else
		fuse_reply_statfs(req, &sv);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	fuse_reply_err(req, E(hoard_fs_setxattr(M(req)->fs, S(req, ino), name,
						value, size, flags)));
}

static void reply_xattr_buf(fuse_req_t req, ssize_t n, const char *buf,
			    size_t size)
{
	if (n < 0)
		fuse_reply_err(req, E((int)n));
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* what a deferred close left is in what the file is made of */
	if (D.close_defer && !strcmp(name, HOARD_INFO_XATTR))
		commit_settle_ino(S(req, ino));
	n = hoard_fs_getxattr(M(req)->fs, S(req, ino), name, buf, size);
	reply_xattr_buf(req, n, buf, size);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = hoard_fs_listxattr(M(req)->fs, S(req, ino), buf, size);
	reply_xattr_buf(req, n, buf, size);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req,
		       E(hoard_fs_removexattr(M(req)->fs, S(req, ino), name)));
}

const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.fallocate = op_fallocate,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	/* No getlk/setlk/flock: the kernel then keeps POSIX and flock locks
	 * itself, which excludes between processes on this host. */
};
