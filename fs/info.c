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

#include "hoard/util.h"
#include "fs-internal.h"

int hoard_fs_file_info(struct hoard_fs *fs, uint64_t ino,
		       struct hoard_file_info *ret)
{
	struct hoard_file_info fi = {0};
	struct hoard_inode in;
	struct hoard_iter *it;
	struct istate *is;
	struct idmap seen;
	uint8_t k[8];
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
	if (idmap_init(&seen, 64) < 0)
		return -ENOMEM;
	ino_key(k, ino);
	it = hoard_iter_new(fs->st, HOARD_CF_EXTENTS, k, 8);
	for (; r == 0 && it && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t vl;
		const uint8_t *v = hoard_iter_value(it, &vl);
		struct hoard_id id;
		struct chunk_rec rec;
		struct idmap_ent *e;

		if (vl != EXTENT_VAL_SIZE) {
			r = -EBADMSG;
			break;
		}
		fi.chunks++;
		fi.data_bytes += hoard_get_be32(v + HOARD_ID_SIZE);
		memcpy(id.b, v, HOARD_ID_SIZE);
		if (idmap_get(&seen, &id))
			continue;
		e = idmap_add(&seen, &id);
		if (!e) {
			r = -ENOMEM;
			break;
		}
		fi.unique_chunks++;
		if (chunk_rec_load(fs, &id, &rec) < 0)
			continue; /* a missing record: nothing stored */
		fi.stored_bytes += rec.frame_size;
		if (rec.flags & 1)
			fi.local_bytes += rec.frame_size;
	}
	if (!it)
		r = -ENOMEM;
	else if (r == 0)
		r = hoard_iter_status(it);
	hoard_iter_free(it);
	idmap_free(&seen);
	if (r == 0)
		*ret = fi;
	return r;
}
