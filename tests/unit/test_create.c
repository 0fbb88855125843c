// SPDX-License-Identifier: MIT
/*
 * Tests of CREATE after a LOOKUP that found nothing (meta.c neg_note /
 * neg_take), on a real store in a mkdtemp() directory, through the
 * filesystem core: the CREATE skips its read of the entry only while no
 * entry was written since the LOOKUP read the store, so a name made
 * between the two (a link, a rename: no create in between, only the count
 * of entry writes tells; a mkdir, a symlink, another create) is EEXIST and
 * the file it names is untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hoard/fs.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "check.h"
#include "tmpstore.h"

static char tmp_root[] = "/tmp/hoard-test-create-XXXXXX";

static const struct hoard_ctx ctx = {0, 0};

/* Create name in dir with content c; returns its inode (the open closed). */
static uint64_t make(struct hoard_fs *fs, uint64_t dir, const char *name,
		     char c)
{
	return tmp_file_put(fs, dir, name, &c, 1);
}

static int lookup(struct hoard_fs *fs, uint64_t dir, const char *name,
		  uint64_t *ret_ino)
{
	struct stat sb;
	int r = hoard_fs_lookup(fs, dir, name, &sb);

	if (r == 0) {
		*ret_ino = (uint64_t)sb.st_ino;
		hoard_fs_forget(fs, *ret_ino, 1);
	}
	return r;
}

/* A LOOKUP of name misses; then made(); then a CREATE of name is EEXIST
 * and name still names the inode made() returns, with its content. */
static void after_miss(struct hoard_fs *fs, uint64_t dir, const char *name,
		       uint64_t (*made)(struct hoard_fs *, uint64_t,
					const char *))
{
	struct hoard_fh *fh = NULL;
	struct stat sb;
	uint64_t want, got = 0;

	CHECK_EQ(lookup(fs, dir, name, &got), -ENOENT);
	want = made(fs, dir, name);
	CHECK_EQ(hoard_fs_create(fs, dir, name, S_IFREG | 0644, O_WRONLY, &ctx,
				 &sb, &fh),
		 -EEXIST);
	CHECK(fh == NULL);
	CHECK_EQ(lookup(fs, dir, name, &got), 0);
	CHECK_EQ(got, want);
}

/* Made before the miss: the link and the rename write an entry without a
 * create in between, so only the count of entry writes tells. */
static uint64_t link_src, rename_src;

static uint64_t by_link(struct hoard_fs *fs, uint64_t dir, const char *name)
{
	uint64_t ino = link_src;
	struct stat sb;

	CHECK_EQ(hoard_fs_link(fs, ino, dir, name, &sb), 0);
	return ino;
}

static uint64_t by_rename(struct hoard_fs *fs, uint64_t dir, const char *name)
{
	uint64_t ino = rename_src;

	CHECK_EQ(hoard_fs_rename(fs, dir, "rename-src", dir, name, 0), 0);
	return ino;
}

static uint64_t by_mkdir(struct hoard_fs *fs, uint64_t dir, const char *name)
{
	struct stat sb;

	CHECK_EQ(hoard_fs_mkdir(fs, dir, name, 0755, &ctx, &sb), 0);
	return (uint64_t)sb.st_ino;
}

static uint64_t by_symlink(struct hoard_fs *fs, uint64_t dir, const char *name)
{
	struct stat sb;

	CHECK_EQ(hoard_fs_symlink(fs, dir, name, "somewhere", &ctx, &sb), 0);
	return (uint64_t)sb.st_ino;
}

static uint64_t by_create(struct hoard_fs *fs, uint64_t dir, const char *name)
{
	return make(fs, dir, name, 'c');
}

int main(void)
{
	struct hoard_store_init_opts io = {.zstd_level = 1};
	struct hoard_store *st = NULL;
	struct hoard_fs *fs;
	struct hoard_fh *fh;
	char c;
	uint64_t root, sub, ino;
	struct stat sb;

	hoard_log_set_level(LOG_WARNING);
	st = tmp_store_new(tmp_root, &io);
	if (!st)
		return 1;
	CHECK_EQ(hoard_fs_new(st, NULL, &fs), 0);
	CHECK_EQ(hoard_fs_volume(fs, "v", true, &root), 0);
	CHECK_EQ(hoard_fs_mkdir(fs, root, "sub", 0755, &ctx, &sb), 0);
	sub = (uint64_t)sb.st_ino;
	link_src = make(fs, root, "link-src", 'l');
	rename_src = make(fs, root, "rename-src", 'r');

	/* the common case: a miss, then the create of that name */
	CHECK_EQ(lookup(fs, root, "new", &ino), -ENOENT);
	ino = make(fs, root, "new", 'n');
	CHECK_EQ(lookup(fs, root, "new", &ino), 0);
	CHECK_EQ(hoard_fs_create(fs, root, "new", S_IFREG | 0644, O_WRONLY,
				 &ctx, &sb, &fh),
		 -EEXIST);

	/* a name made between the miss and the create */
	after_miss(fs, root, "a", by_link);
	after_miss(fs, root, "b", by_rename);
	after_miss(fs, root, "c", by_mkdir);
	after_miss(fs, root, "d", by_symlink);
	after_miss(fs, root, "e", by_create);
	/* a miss in another directory, or of another name, is not this one */
	CHECK_EQ(lookup(fs, sub, "f", &ino), -ENOENT);
	make(fs, root, "f", 'x');
	CHECK_EQ(hoard_fs_create(fs, root, "f", S_IFREG | 0644, O_WRONLY, &ctx,
				 &sb, &fh),
		 -EEXIST);
	CHECK_EQ(lookup(fs, root, "g", &ino), -ENOENT);
	make(fs, root, "h", 'x');
	CHECK_EQ(hoard_fs_create(fs, root, "h", S_IFREG | 0644, O_WRONLY, &ctx,
				 &sb, &fh),
		 -EEXIST);
	/* the content of a name made after a miss is what was written */
	CHECK_EQ(lookup(fs, root, "e", &ino), 0);
	CHECK_EQ(hoard_fs_open(fs, ino, O_RDONLY, &fh), 0);
	CHECK_EQ(hoard_fs_read(fs, fh, &c, 1, 0), 1);
	CHECK_EQ(c, 'c');
	hoard_fs_release(fs, fh);

	hoard_fs_free(fs);
	hoard_store_close(st);
	tmp_tree_remove(tmp_root);
	return CHECK_DONE();
}
