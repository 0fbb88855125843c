// SPDX-License-Identifier: MIT
/*
 * info: what a file is made of (hoard_fs_file_info, the user.hoard.info
 * xattr).  Part of the filesystem core: reads the inode, its extents and
 * the records of its chunks (docs/FORMAT.md 2.2, 2, 2.3).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/plain.h"
#include "hoard/util.h"
#include "fs-internal.h"

int hoard_fs_file_info(struct hoard_fs *fs, uint64_t ino,
		       struct hoard_file_info *ret)
{
	struct hoard_file_info fi = {0};
	struct hoard_inode in;
	struct istate *is;
	struct idmap seen;
	const struct idmap_ent *e;
	int r;

	r = inode_load(fs, ino, &in);
	if (r < 0)
		return r;
	fi.logical_bytes = in.size;
	r = S_ISREG(in.mode) ? 0 : -ENODATA;
	inode_clear(&in);
	if (r < 0)
		return r;
	pthread_mutex_lock(&fs->lock);
	is = istate_find(fs, ino);
	if (is) {
		pthread_mutex_lock(&is->mu);
		fi.dirty = is->dirty;
		pthread_mutex_unlock(&is->mu);
	}
	pthread_mutex_unlock(&fs->lock);
	fi.plain = hoard_plain_present(fs->plain, ino);
	if (idmap_init(&seen, 64) < 0)
		return -ENOMEM;
	r = extents_count(fs, ino, &seen, 1, NULL);
	for (e = NULL; r == 0 && (e = idmap_next(&seen, e));) {
		struct chunk_rec rec;

		fi.chunks += (uint64_t)e->count;
		fi.data_bytes += (uint64_t)e->count * e->raw_size;
		fi.unique_chunks++;
		if (chunk_rec_load(fs, &e->id, &rec) < 0)
			continue; /* a missing record: nothing stored */
		fi.stored_bytes += rec.frame_size;
		if (rec.flags & 1)
			fi.local_bytes += rec.frame_size;
	}
	idmap_free(&seen);
	if (r == 0)
		*ret = fi;
	return r;
}
