// SPDX-License-Identifier: MIT
/*
 * Tests of the chunk record a stage keeps for the commit that lands it
 * (fs/core/chunks.c rec_keep / rec_load_staged), on a real store in a
 * mkdtemp() directory, through the filesystem core: the kept record is
 * used only while the store's count of chunk-record writes is unchanged.
 * A stage held open (as a commit under way holds it) while another file's
 * unlink drops the chunk's record and other files' commits add
 * references: every refcount stored is exact.  Without the count (a kept
 * record used after the unlink), the next commit would store 2 for a
 * chunk one file names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hoard/core.h"
#include "hoard/fs.h"
#include "hoard/hash.h"
#include "hoard/idmap.h"
#include "hoard/records.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "check.h"
#include "tmpstore.h"

#define LEN 5000 /* one chunk */

static char tmp_root[] = "/tmp/hoard-test-recgen-XXXXXX";

/* Create name in root with LEN bytes of p, closed (the close commits);
 * the kernel's lookup of it dropped. */
static void make(struct hoard_fs *fs, uint64_t root, const char *name,
		 const uint8_t *p)
{
	hoard_fs_forget(fs, tmp_file_put(fs, root, name, p, LEN), 1);
}

/* The stored refcount of id; -1 when it has no record. */
static long refs(struct hoard_store *st, const struct hoard_id *id)
{
	struct chunk_rec rec;
	void *v = NULL;
	size_t n;
	int r = hoard_store_get(st, HOARD_CF_CHUNKS, id->b, HOARD_ID_SIZE, &v,
				&n);

	if (r == -ENOENT)
		return -1;
	CHECK_EQ(r, 0);
	if (r == 0)
		CHECK_EQ(chunk_rec_decode(v, n, &rec), 0);
	free(v);
	return r == 0 ? (long)rec.refcount : -2;
}

int main(void)
{
	struct hoard_store_init_opts io = {.zstd_level = 1};
	struct hoard_store *st;
	struct hoard_fs *fs;
	struct hoard_id id;
	struct idmap held;
	uint8_t data[LEN];
	uint64_t root, x = 7;
	uint32_t flen;

	hoard_log_set_level(LOG_CRIT);
	st = tmp_store_new(tmp_root, &io);
	if (!st)
		return 1;
	for (size_t i = 0; i < LEN; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		data[i] = (uint8_t)(x >> 56);
	}
	hoard_id_compute(hoard_store_key(st), data, LEN, &id);
	CHECK_EQ(hoard_fs_new(st, NULL, &fs), 0);
	CHECK_EQ(hoard_fs_volume(fs, "v", true, &root), 0);
	CHECK_EQ(idmap_init(&held, 4), 0);
	idmap_add(&held, &id)->count = 1;

	make(fs, root, "f1", data);
	CHECK_EQ(refs(st, &id), 1);

	/* a stage held across what follows: it read the record (1 ref) */
	CHECK_EQ(chunks_stage(fs, &id, data, LEN, &flen), 0);
	/* f1's unlink drops the record (the frame stays: in flight) */
	CHECK_EQ(hoard_fs_unlink(fs, root, "f1"), 0);
	CHECK_EQ(refs(st, &id), -1);
	/* a new file of the same bytes relies on the held stage's entry:
	 * its commit must not take the record kept before the unlink */
	make(fs, root, "f2", data);
	CHECK_EQ(refs(st, &id), 1);
	make(fs, root, "f3", data);
	CHECK_EQ(refs(st, &id), 2);
	hoard_core_unstage(fs, &held);

	/* a stage whose record is still the stored one lands on it */
	make(fs, root, "f4", data);
	CHECK_EQ(refs(st, &id), 3);
	CHECK_EQ(hoard_fs_unlink(fs, root, "f2"), 0);
	CHECK_EQ(hoard_fs_unlink(fs, root, "f3"), 0);
	CHECK_EQ(refs(st, &id), 1);
	CHECK_EQ(hoard_fs_unlink(fs, root, "f4"), 0);
	CHECK_EQ(refs(st, &id), -1);

	idmap_free(&held);
	hoard_fs_free(fs);
	hoard_store_close(st);
	tmp_tree_remove(tmp_root);
	return CHECK_DONE();
}
