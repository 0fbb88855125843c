/* SPDX-License-Identifier: MIT */
/*
 * tmpstore.h: a unit test's store in a mkdtemp() directory (include after
 * check.h and hoard/store.h).
 *
 *	tmp_store_new(root, io)	mkdtemp(root) (a "...XXXXXX" template,
 *				rewritten in place), then a store initialised
 *				with io in root/store and opened: the store,
 *				or NULL (the failed step is counted as a
 *				check)
 *	tmp_tree_remove(root)	remove root and everything under it
 *	tmp_file_put(fs, dir, name, data, len)
 *				name made in dir through the core with the
 *				len bytes at data, written and closed (the
 *				close commits): its inode, whose lookup the
 *				create counted (0 when the create failed, as
 *				a check)
 */
#ifndef HOARD_TESTS_TMPSTORE_H
#define HOARD_TESTS_TMPSTORE_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "hoard/fs.h"

static int tmp_rm_entry(const char *path, const struct stat *sb, int flag,
			struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static inline void tmp_tree_remove(const char *root)
{
	nftw(root, tmp_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline struct hoard_store *tmp_store_new(
	char *root, const struct hoard_store_init_opts *io)
{
	struct hoard_store *st = NULL;
	char dir[4096], err[512];

	if (!CHECK(mkdtemp(root) != NULL))
		return NULL;
	snprintf(dir, sizeof(dir), "%s/store", root);
	if (!CHECK_EQ(hoard_store_init(dir, io, err, sizeof(err)), 0) ||
	    !CHECK_EQ(hoard_store_open(dir, &st, err, sizeof(err)), 0))
		fprintf(stderr, "%s: %s\n", dir, err);
	return st;
}

static inline uint64_t tmp_file_put(struct hoard_fs *fs, uint64_t dir,
				    const char *name, const void *data,
				    size_t len)
{
	static const struct hoard_ctx ctx = {0, 0};
	struct hoard_fh *fh;
	struct stat sb;

	if (!CHECK_EQ(hoard_fs_create(fs, dir, name, S_IFREG | 0644, O_WRONLY,
				      &ctx, &sb, &fh),
		      0))
		return 0;
	CHECK_EQ(hoard_fs_write(fs, fh, data, len, 0), (ssize_t)len);
	hoard_fs_release(fs, fh);
	return (uint64_t)sb.st_ino;
}

#endif
