/* SPDX-License-Identifier: MIT */
/*
 * ingest: hashing and storing a streaming file's chunks on the other cores.
 *
 * A file written by appends is cut into chunks by the thread that serves
 * its writes (commit.c, streams).  Hashing a chunk (XXH3), compressing it and
 * putting its frame into RocksDB cost several times what cutting it does,
 * so with more than one CPU the cut chunk is handed to this pool (a copy
 * of its bytes: an ingest_job) and the writer goes on cutting.  Each stream
 * keeps its jobs in a queue of at most INGEST_DEPTH, in file order; the
 * writer records finished jobs (extents, refcount deltas) from the head of
 * its queue only, so extents and deltas are made in the same order as
 * without the pool, and a commit first waits for all of its stream's jobs:
 * every frame a batch refers to was stored (and made durable, commit.c)
 * before the batch.  A job's bytes stay until it is recorded, so a read of
 * the file meanwhile, or its move to a staging file, finds them there.
 *
 * Wakeups: submitting a job wakes nobody; the writer kicks the workers
 * once per write (ingest_kick(), after cutting all of it), and before it
 * sleeps on a job; a woken worker takes jobs until the queue is empty, and
 * wakes the writer only for the job it sleeps on (`waited`).
 *
 * A job that fails (a full disk) stays at the head of its queue with its
 * bytes; the writer runs it again itself when it next records, and
 * reports the error as the inline path would.  A stream dropped with jobs
 * still queued or running (its file unlinked, a failed commit) orphans
 * them: a worker that finishes an orphan undoes its stage count itself.
 *
 * Memory: INGEST_DEPTH jobs of at most HOARD_CHUNK_MAX bytes per stream,
 * besides the stream's own buffer.  With one CPU (taskset) there is no
 * pool: ingest_on() is false and commit.c stores each chunk as it is cut.
 *
 * Thread contract: a stream's queue (struct ingest_q) belongs to the
 * thread that holds its inode's rw lock for writing; a job's state and
 * orphan flag and the work list are protected by the pool's mutex.  A
 * worker takes fs->lock (chunk staging) only without the pool's mutex, so
 * ingest_abandon() may be called with fs->lock held.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/util.h"
#include "fs-internal.h"

#define INGEST_MAX_WORKERS 4

enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

static struct {
	pthread_mutex_t mu;
	pthread_cond_t work;		 /* with mu: a job was queued */
	pthread_cond_t done;		 /* with mu: a job finished */
	struct ingest_job *first, *last; /* protected by mu: queued jobs */
	int workers;			 /* set once */
} pool = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

bool chunk_all_zero(const uint8_t *p, size_t n)
{
	static const uint8_t zero[4096];

	while (n >= sizeof(zero)) {
		if (memcmp(p, zero, sizeof(zero)))
			return false;
		p += sizeof(zero);
		n -= sizeof(zero);
	}
	return memcmp(p, zero, n) == 0;
}

void ingest_run(struct ingest_job *j)
{
	j->unflushed = false;
	j->hole = chunk_all_zero(j->data, j->len);
	if (j->hole) { /* a hole reads as zeros: store nothing */
		j->r = 0;
		return;
	}
	hoard_id_compute(hoard_store_key(j->fs->st), j->data, j->len, &j->id);
	if (j->wal)
		j->r = chunks_stage(j->fs, &j->id, j->data, j->len, &j->flen);
	else
		j->r = chunks_stage_bulk(j->fs, &j->id, j->data, j->len,
					 &j->flen, &j->unflushed);
}

/* Undo what a finished job staged (fs->lock held). */
static void job_undo_locked(struct ingest_job *j)
{
	struct idmap one;

	if (j->r < 0 || j->hole || idmap_init(&one, 1) < 0)
		return;
	idmap_add(&one, &j->id)->count = 1;
	chunks_unstage_failed_locked(j->fs, &one);
	idmap_free(&one);
}

static void job_free(struct ingest_job *j)
{
	free(j);
}

static void *worker(void *unused)
{
	pthread_setname_np(pthread_self(), "hoard-ingest");
	for (;;) {
		struct ingest_job *j;
		bool orphan;

		pthread_mutex_lock(&pool.mu);
		while (!pool.first)
			pthread_cond_wait(&pool.work, &pool.mu);
		j = pool.first;
		pool.first = j->qnext;
		if (!pool.first)
			pool.last = NULL;
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&pool.mu);

		ingest_run(j);

		pthread_mutex_lock(&pool.mu);
		j->state = JOB_DONE;
		orphan = j->orphan;
		if (!orphan && j->waited) /* only its writer waits for it */
			pthread_cond_broadcast(&pool.done);
		pthread_mutex_unlock(&pool.mu);
		if (orphan) { /* its stream is gone: nobody records it */
			struct hoard_fs *fs = j->fs;

			pthread_mutex_lock(&fs->lock);
			job_undo_locked(j);
			pthread_mutex_unlock(&fs->lock);
			job_free(j);
			pthread_mutex_lock(&pool.mu);
			fs->ingest_jobs--;
			pthread_cond_broadcast(&pool.done);
			pthread_mutex_unlock(&pool.mu);
		}
	}
	return NULL;
}

static void pool_start(void)
{
	cpu_set_t set;
	int cpus = 1;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		cpus = CPU_COUNT(&set);
	if (cpus > INGEST_MAX_WORKERS)
		cpus = INGEST_MAX_WORKERS;
	if (cpus < 2)
		return;
	for (int i = 0; i < cpus; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, worker, NULL) != 0)
			break;
		pthread_detach(t);
		pool.workers++;
	}
	if (pool.workers)
		hoard_log(LOG_DEBUG, "ingest: %d chunk workers", pool.workers);
}

bool ingest_on(void)
{
	pthread_once(&pool_once, pool_start);
	return pool.workers > 0;
}

bool ingest_full(const struct ingest_q *q)
{
	return q->n == INGEST_DEPTH;
}

int ingest_submit(struct hoard_fs *fs, struct ingest_q *q, uint64_t off,
		  const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
		  bool wal)
{
	size_t len = alen + blen;
	struct ingest_job *j = malloc(sizeof(*j) + (len ? len : 1));

	if (!j)
		return -ENOMEM;
	memset(j, 0, sizeof(*j));
	j->fs = fs;
	j->off = off;
	j->len = (uint32_t)len;
	j->wal = wal;
	if (alen)
		memcpy(j->data, a, alen);
	if (blen)
		memcpy(j->data + alen, b, blen);
	q->ring[(q->head + q->n) % INGEST_DEPTH] = j;
	q->n++;
	pthread_mutex_lock(&pool.mu);
	j->state = JOB_QUEUED;
	fs->ingest_jobs++;
	if (pool.last)
		pool.last->qnext = j;
	else
		pool.first = j;
	pool.last = j;
	pthread_mutex_unlock(&pool.mu);
	return 0;
}

/* Wake the workers for the queued jobs (pool.mu held). */
static void kick_locked(void)
{
	if (pool.first && pool.first->qnext)
		pthread_cond_broadcast(&pool.work);
	else if (pool.first)
		pthread_cond_signal(&pool.work);
}

void ingest_kick(void)
{
	pthread_mutex_lock(&pool.mu);
	kick_locked();
	pthread_mutex_unlock(&pool.mu);
}

struct ingest_job *ingest_peek(struct ingest_q *q, bool wait)
{
	struct ingest_job *j;

	if (!q->n)
		return NULL;
	j = q->ring[q->head];
	pthread_mutex_lock(&pool.mu);
	if (wait && j->state != JOB_DONE) {
		kick_locked();
		j->waited = true;
		while (j->state != JOB_DONE)
			pthread_cond_wait(&pool.done, &pool.mu);
	}
	if (j->state != JOB_DONE)
		j = NULL;
	pthread_mutex_unlock(&pool.mu);
	return j;
}

void ingest_wait(struct ingest_q *q, unsigned i)
{
	struct ingest_job *j = ingest_at(q, i);

	pthread_mutex_lock(&pool.mu);
	if (j->state != JOB_DONE) {
		kick_locked();
		j->waited = true;
		while (j->state != JOB_DONE)
			pthread_cond_wait(&pool.done, &pool.mu);
	}
	pthread_mutex_unlock(&pool.mu);
}

struct ingest_job *ingest_at(const struct ingest_q *q, unsigned i)
{
	return q->ring[(q->head + i) % INGEST_DEPTH];
}

void ingest_pop(struct ingest_q *q)
{
	struct ingest_job *j = q->ring[q->head];
	struct hoard_fs *fs = j->fs;

	q->head = (q->head + 1) % INGEST_DEPTH;
	q->n--;
	job_free(j);
	pthread_mutex_lock(&pool.mu);
	fs->ingest_jobs--;
	pthread_cond_broadcast(&pool.done);
	pthread_mutex_unlock(&pool.mu);
}

void ingest_abandon(struct hoard_fs *fs, struct ingest_q *q, bool locked)
{
	while (q->n) {
		struct ingest_job *j = q->ring[q->head];
		bool done;

		q->head = (q->head + 1) % INGEST_DEPTH;
		q->n--;
		pthread_mutex_lock(&pool.mu);
		done = j->state == JOB_DONE;
		if (!done) {
			j->orphan = true; /* the worker undoes and frees it */
			kick_locked();
		}
		pthread_mutex_unlock(&pool.mu);
		if (!done)
			continue;
		if (!locked)
			pthread_mutex_lock(&fs->lock);
		job_undo_locked(j);
		if (!locked)
			pthread_mutex_unlock(&fs->lock);
		job_free(j);
		pthread_mutex_lock(&pool.mu);
		fs->ingest_jobs--;
		pthread_cond_broadcast(&pool.done);
		pthread_mutex_unlock(&pool.mu);
	}
}

void ingest_quiesce(struct hoard_fs *fs)
{
	pthread_mutex_lock(&pool.mu);
	kick_locked();
	while (fs->ingest_jobs)
		pthread_cond_wait(&pool.done, &pool.mu);
	pthread_mutex_unlock(&pool.mu);
}
