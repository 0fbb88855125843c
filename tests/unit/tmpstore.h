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
 */
#ifndef HOARD_TESTS_TMPSTORE_H
#define HOARD_TESTS_TMPSTORE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
