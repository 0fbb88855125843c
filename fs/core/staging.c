// SPDX-License-Identifier: MIT
/*
 * staging: the parts of an inode's staging (file.c's essay) that meta.c
 * needs when an istate goes (staging_drop), with what they need alone: the
 * staging file's name, releasing in-memory staging and freeing a stream,
 * and reading back a passthrough copy's size and mtime (pt_sync_locked,
 * for istate_overlay).  Below meta.c and file.c: it calls only chunks.c
 * and idmap.c.  Thread contract: as each function's comment in
 * fs-internal.h says (fs->lock or is->mu as stated there).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-internal.h"

void staging_name(char *buf, size_t n, uint64_t ino)
{
	snprintf(buf, n, "%llu", (unsigned long long)ino);
}

void mem_release(struct hoard_fs *fs, struct istate *is)
{
	__atomic_sub_fetch(&fs->staging_mem, is->mem_cap, __ATOMIC_RELAXED);
	free(is->mem);
	is->mem = NULL;
	is->mem_cap = 0;
}

void stream_free(struct hoard_fs *fs, struct istate *is, bool locked,
		 bool landed)
{
	struct stream *st = is->stream;

	ingest_abandon(fs, &st->q, locked); /* none left when landed */
	if (!locked)
		pthread_mutex_lock(&fs->lock);
	if (landed)
		chunks_unstage_locked(fs, &st->c.staged);
	else
		chunks_unstage_failed_locked(fs, &st->c.staged);
	if (!locked)
		pthread_mutex_unlock(&fs->lock);
	idmap_free(&st->c.deltas);
	idmap_free(&st->c.staged);
	free(st->c.ext);
	free(st->buf);
	free(st);
	is->stream = NULL;
}

void staging_drop(struct hoard_fs *fs, struct istate *is, bool locked)
{
	char name[32];

	if (is->stream)
		stream_free(fs, is, locked, false);
	if (is->mem)
		mem_release(fs, is);
	if (is->staging_fd < 0)
		return;
	close(is->staging_fd);
	is->staging_fd = -1;
	staging_name(name, sizeof(name), is->ino);
	unlinkat(fs->staging_dirfd, name, 0);
}

void pt_sync_locked(struct istate *is)
{
	struct stat sb;

	if (!is->pt_staging || fstat(is->staging_fd, &sb) < 0)
		return;
	is->size = (uint64_t)sb.st_size;
	is->size_valid = true;
	is->dirty = true;
	if (sb.st_mtim.tv_sec != is->pt_mtime.tv_sec ||
	    sb.st_mtim.tv_nsec != is->pt_mtime.tv_nsec) {
		/* a passthrough write */
		is->pt_mtime = sb.st_mtim;
		is->mtime = is->ctime = sb.st_mtim;
	}
}
