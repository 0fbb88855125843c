// SPDX-License-Identifier: MIT
/*
 * fsck's pass over the chunk digest rows (docs/FORMAT.md 2.1: `sha256.` +
 * chunk id, kept by trusted pulls for the lazy fetch): a row whose chunk
 * has no record is an orphan digest (the chunk was freed while a pull
 * held the rows, or by a version that never deleted them); a row that
 * does not decode is a bad record.  The repair deletes both, and the rows
 * of the chunks it deletes itself.  Runs after scan_chunks (the chunk
 * table) and, repairing, after the extents' recount (kept).
 *
 * An orphan digest is counted (found.orphan_digests) but is no problem:
 * the store is clean with it (a row of a chunk that is gone is never read
 * for another chunk: an honest chunk of that id has that digest), and
 * stores made before frees deleted rows have many.  The repair deletes
 * them (it runs for them alone too).
 */
#include <stdbool.h>

#include "hoard/records.h"
#include "fsck-internal.h"

static int digest_one(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		      size_t vl)
{
	struct fsck *c = ud;
	uint8_t sha[SHA_ROW_VAL_LEN];
	struct hoard_id id;
	struct cent *e;

	if (sha_row_key_decode(k, kl, &id) < 0 ||
	    sha_row_val_decode(v, vl, sha) < 0) {
		if (c->b_repair)
			fsck_wr_del(c, HOARD_CF_DEFAULT, k, kl);
		else
			fsck_problem(c, HOARD_FSCK_BAD_RECORDS);
		return 0;
	}
	e = ctab_get(&c->chunks, &id);
	if (!c->b_repair) {
		c->rep->digests++;
		if (!e || !(e->flags & C_REC)) /* not in problems: harmless */
			c->rep->problem[HOARD_FSCK_ORPHAN_DIGESTS]++;
		return 0;
	}
	/* as chunk_fix (fsckrepair.c) decides for the record */
	if (!e || !(e->flags & C_REC) || (e->flags & C_BAD) || e->kept == 0)
		fsck_wr_del(c, HOARD_CF_DEFAULT, k, kl);
	return 0;
}

int fsck_scan_digests(struct fsck *c, bool repair)
{
	c->b_repair = repair;
	return hoard_store_scan(c->st, HOARD_CF_DEFAULT, SHA_ROW_PREFIX,
				SHA_ROW_PREFIX_LEN, digest_one, c);
}
