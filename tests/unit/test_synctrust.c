// SPDX-License-Identifier: MIT
/*
 * Tests for fs/remote/synctrust.c on a real store (RocksDB in a temporary
 * directory): the chunk check of a fetch with and without a trusted pull's
 * SHA-256 row (a "collision": bytes that give the chunk's id but not the
 * signed digest), the digests a signed push computes (local frame, lazy
 * chunk with and without a row, corrupt frame), the rule for a trusted
 * pull of a version-1 manifest, and the rollback memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../fs/remote/sync-internal.h"
#include "check.h"
#include "hoard/codec.h"
#include "hoard/records.h"
#include "hoard/remote.h"
#include "hoard/store.h"
#include "hoard/util.h"

static struct hoard_store *st;

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static void put_frame(const struct hoard_id *id, const uint8_t *raw, size_t n)
{
	uint8_t frame[70000];
	ssize_t f = hoard_codec_encode(raw, n, frame, sizeof(frame), 1);

	CHECK(f > 0);
	CHECK_EQ(hoard_store_put(st, HOARD_CF_CHUNKDATA, id->b, HOARD_ID_SIZE,
				 frame, (size_t)f),
		 0);
}

static void test_verify(void)
{
	static uint8_t signed_bytes[65536], planted[65536];
	struct hoard_chunk_sha row;
	struct hoard_id id;

	fill(signed_bytes, sizeof(signed_bytes), 1);
	fill(planted, sizeof(planted), 2);
	/* No row: the id is the only check (an untrusted pull's chunk). */
	hoard_id_compute(hoard_store_key(st), planted, sizeof(planted), &id);
	CHECK_EQ(sync_chunk_verify(st, &id, planted, sizeof(planted)), 0);
	CHECK_EQ(sync_chunk_verify(st, &id, signed_bytes, sizeof(signed_bytes)),
		 -EBADMSG); /* not its id */
	/* The collision a test cannot make with XXH3: the planted bytes give
	 * the id (id is computed over them), but the signed manifest gave
	 * this id the SHA-256 of other bytes. */
	row.id = id;
	row.len = sizeof(planted);
	hoard_sha256(signed_bytes, sizeof(signed_bytes), row.sha);
	CHECK_EQ(sync_chunk_sha_save(st, &row, 1), 0);
	CHECK_EQ(sync_chunk_verify(st, &id, planted, sizeof(planted)),
		 -EBADMSG);
	/* the right digest: taken */
	hoard_sha256(planted, sizeof(planted), row.sha);
	CHECK_EQ(sync_chunk_sha_save(st, &row, 1), 0);
	CHECK_EQ(sync_chunk_verify(st, &id, planted, sizeof(planted)), 0);
	/* one flipped bit in the bytes: the id check already refuses */
	planted[100] ^= 1;
	CHECK_EQ(sync_chunk_verify(st, &id, planted, sizeof(planted)),
		 -EBADMSG);
	/* the pure check */
	CHECK_EQ(hoard_chunk_sha_verify(planted, sizeof(planted), row.sha),
		 -EBADMSG);
	planted[100] ^= 1;
	CHECK_EQ(hoard_chunk_sha_verify(planted, sizeof(planted), row.sha), 0);
}

/* A manifest with one file of the given chunks (ids over their bytes). */
static void one_file(struct hoard_manifest *m, const struct hoard_id *ids,
		     const uint32_t *lens, int n)
{
	struct hoard_mentry e = {
		.type = HOARD_M_FILE, .name = "f", .mode = S_IFREG | 0644};
	uint64_t off = 0;

	CHECK_EQ(hoard_manifest_init(m, S_IFDIR | 0755, 0, 0, 1, 0), 0);
	e.ext = calloc((size_t)n, sizeof(*e.ext));
	e.n_ext = (uint32_t)n;
	for (int i = 0; i < n; i++) {
		e.ext[i].off = off;
		e.ext[i].len = lens[i];
		e.ext[i].id = ids[i];
		off += lens[i];
	}
	e.size = off;
	CHECK_EQ(hoard_manifest_add(m, &e), 1);
}

static void test_push_hash(void)
{
	static uint8_t a[40000], b[50000];
	struct hoard_id ids[3];
	uint32_t lens[3] = {sizeof(a), sizeof(b), sizeof(a)};
	struct hoard_manifest m;
	struct hoard_chunk_sha *t, row;
	size_t n;
	char err[512] = "";
	uint8_t sha_a[32], sha_b[32], k[SHA_ROW_KEY_LEN];
	struct hoard_chunk_sha *nw;
	size_t n_nw;

	fill(a, sizeof(a), 3);
	fill(b, sizeof(b), 4);
	hoard_sha256(a, sizeof(a), sha_a);
	hoard_sha256(b, sizeof(b), sha_b);
	hoard_id_compute(hoard_store_key(st), a, sizeof(a), &ids[0]);
	hoard_id_compute(hoard_store_key(st), b, sizeof(b), &ids[1]);
	ids[2] = ids[0]; /* the same chunk twice */
	put_frame(&ids[0], a, sizeof(a));

	/* b is not local and has no row: refused, with the way out */
	one_file(&m, ids, lens, 3);
	CHECK_EQ(sync_manifest_hash(st, &m, 4, &nw, &n_nw, err, sizeof(err)),
		 -ENODATA);
	CHECK(strstr(err, "hoard prefetch") != NULL);
	CHECK(nw == NULL);
	CHECK_EQ(m.version, 0);
	hoard_manifest_clear(&m);

	/* with a trusted pull's row for b: taken from the row */
	row.id = ids[1];
	row.len = sizeof(b);
	memcpy(row.sha, sha_b, 32);
	CHECK_EQ(sync_chunk_sha_save(st, &row, 1), 0);
	one_file(&m, ids, lens, 3);
	CHECK_EQ(sync_manifest_hash(st, &m, 4, &nw, &n_nw, err, sizeof(err)),
		 0);
	CHECK_EQ(m.version, HOARD_MANIFEST_V2);
	/* a was read and hashed (once, though named twice); b's was a row */
	CHECK_EQ(n_nw, 1);
	CHECK(hoard_id_equal(&nw[0].id, &ids[0]));
	CHECK(!memcmp(nw[0].sha, sha_a, 32));
	CHECK_EQ(sync_chunk_sha_save(st, nw, n_nw), 0);
	free(nw);
	CHECK(!memcmp(m.e[1].ext[0].sha, sha_a, 32));
	CHECK(!memcmp(m.e[1].ext[1].sha, sha_b, 32));
	CHECK(!memcmp(m.e[1].ext[2].sha, sha_a, 32));
	CHECK_EQ(hoard_manifest_chunks(&m, true, &t, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 2);
	free(t);
	hoard_manifest_clear(&m);

	/* a corrupt local frame is never signed */
	{
		uint8_t junk[16];

		memset(junk, 0, sizeof(junk)); /* raw frame of other bytes */
		CHECK_EQ(hoard_store_put(st, HOARD_CF_CHUNKDATA, ids[0].b,
					 HOARD_ID_SIZE, junk, sizeof(junk)),
			 0);
		/* a kept row: the frame is not read again (fsck reads it) */
		one_file(&m, ids, lens, 3);
		CHECK_EQ(sync_manifest_hash(st, &m, 2, &nw, &n_nw, err,
					    sizeof(err)),
			 0);
		CHECK_EQ(n_nw, 0);
		CHECK(!memcmp(m.e[1].ext[0].sha, sha_a, 32));
		free(nw);
		hoard_manifest_clear(&m);
		/* without the row it is read: never signed */
		sha_row_key(k, &ids[0]);
		{
			struct hoard_batch *bt = hoard_batch_new(st);

			hoard_batch_delete(bt, HOARD_CF_DEFAULT, k, sizeof(k));
			CHECK_EQ(hoard_store_write(st, bt, true), 0);
			hoard_batch_free(bt);
		}
		one_file(&m, ids, lens, 3);
		err[0] = '\0'; /* first error wins: a push starts empty */
		CHECK_EQ(sync_manifest_hash(st, &m, 2, &nw, &n_nw, err,
					    sizeof(err)),
			 -EBADMSG);
		CHECK(strstr(err, "corrupt") != NULL);
		hoard_manifest_clear(&m);
	}
}

static void test_pull_digests(void)
{
	struct hoard_id ids[2];
	uint32_t lens[2] = {100, 200};
	struct hoard_manifest m;
	struct hoard_ref rf = {.is_signed = true};
	struct hoard_ref_site site = {
		.bucket = "b", .prefix = "p/", .volume = "v", .name = "main"};
	struct hoard_chunk_sha *t = NULL;
	size_t n = 7;
	char err[512] = "";

	memset(ids, 0, sizeof(ids));
	ids[1].b[0] = 1;
	one_file(&m, ids, lens, 2);
	/* version 1, signed, trusted: refused */
	CHECK_EQ(sync_pull_digests(&m, &rf, true, &site, &t, &n, err,
				   sizeof(err)),
		 -EKEYREJECTED);
	CHECK(strstr(err, "no SHA-256") != NULL);
	CHECK(t == NULL && n == 0);
	/* not trusted, or unsigned: taken, nothing to check */
	CHECK_EQ(sync_pull_digests(&m, &rf, false, &site, &t, &n, err,
				   sizeof(err)),
		 0);
	rf.is_signed = false;
	CHECK_EQ(sync_pull_digests(&m, &rf, true, &site, &t, &n, err,
				   sizeof(err)),
		 0);
	CHECK(t == NULL);
	/* version 2: the table */
	m.version = HOARD_MANIFEST_V2;
	m.e[1].ext[1].sha[0] = 9;
	CHECK_EQ(sync_pull_digests(&m, &rf, true, &site, &t, &n, err,
				   sizeof(err)),
		 0);
	CHECK_EQ(n, 2);
	CHECK(hoard_chunk_sha_find(t, n, &ids[1]) != NULL &&
	      hoard_chunk_sha_find(t, n, &ids[1])->sha[0] == 9);
	free(t);
	hoard_manifest_clear(&m);
}

static void test_rollback(void)
{
	struct hoard_ref_site site = {.bucket = "bkt",
				      .prefix = "x/",
				      .volume = "vol",
				      .name = "main"};
	struct hoard_ref_site other = site;
	struct hoard_ref r = {.is_signed = true, .time = 100};
	char err[512] = "";

	memset(r.manifest, 'a', 64);
	r.manifest[64] = '\0';
	/* nothing remembered: anything goes */
	CHECK_EQ(sync_rollback_check(st, &site, &r, false, err, sizeof(err)),
		 0);
	CHECK_EQ(sync_rollback_note(st, &site, &r), 0);
	r.time = 100; /* the same again (a re-pull) */
	CHECK_EQ(sync_rollback_check(st, &site, &r, false, err, sizeof(err)),
		 0);
	r.time = 99;
	CHECK_EQ(sync_rollback_check(st, &site, &r, false, err, sizeof(err)),
		 -EKEYREJECTED);
	CHECK(strstr(err, "rollback") && strstr(err, "--allow-rollback") &&
	      strstr(err, "vol/main"));
	CHECK_EQ(sync_rollback_check(st, &site, &r, true, err, sizeof(err)), 0);
	/* a note never lowers the mark */
	CHECK_EQ(sync_rollback_note(st, &site, &r), 0);
	CHECK_EQ(sync_rollback_check(st, &site, &r, false, err, sizeof(err)),
		 -EKEYREJECTED);
	/* other refs and other prefixes are remembered apart */
	other.name = "nightly";
	CHECK_EQ(sync_rollback_check(st, &other, &r, false, err, sizeof(err)),
		 0);
	other = site;
	other.prefix = "y/";
	CHECK_EQ(sync_rollback_check(st, &other, &r, false, err, sizeof(err)),
		 0);
	/* a newer one raises it */
	r.time = 200;
	CHECK_EQ(sync_rollback_note(st, &site, &r), 0);
	r.time = 150;
	CHECK_EQ(sync_rollback_check(st, &site, &r, false, err, sizeof(err)),
		 -EKEYREJECTED);
	/* a damaged mark: refused with the way out; the override rewrites
	 * it */
	{
		const char *k = "signed-ref bkt/x/refs/vol/main";

		CHECK_EQ(hoard_store_put(st, HOARD_CF_DEFAULT, k, strlen(k),
					 "short", 5),
			 0);
		CHECK_EQ(sync_rollback_check(st, &site, &r, false, err,
					     sizeof(err)),
			 -EBADMSG);
		CHECK(strstr(err, "--allow-rollback") != NULL);
		CHECK_EQ(sync_rollback_check(st, &site, &r, true, err,
					     sizeof(err)),
			 0);
		CHECK_EQ(sync_rollback_note(st, &site, &r), 0);
		r.time = 149;
		CHECK_EQ(sync_rollback_check(st, &site, &r, false, err,
					     sizeof(err)),
			 -EKEYREJECTED);
	}
}

int main(void)
{
	char dir[] = "/tmp/hoard-test-synctrust-XXXXXX", err[256] = "", *cmd;

	CHECK(mkdtemp(dir) != NULL);
	CHECK_EQ(hoard_store_init(dir, NULL, err, sizeof(err)), 0);
	CHECK_EQ(hoard_store_open(dir, &st, err, sizeof(err)), 0);
	if (!st)
		return CHECK_DONE();
	test_verify();
	test_push_hash();
	test_pull_digests();
	test_rollback();
	hoard_store_close(st);
	if (asprintf(&cmd, "rm -rf '%s'", dir) > 0) {
		CHECK_EQ(system(cmd), 0);
		free(cmd);
	}
	return CHECK_DONE();
}
