// SPDX-License-Identifier: MIT
/*
 * Tests for the remote formats (fs/remote/remote.c, docs/REMOTE.md): round trips
 * of config, pack index, manifest and ref; every rule of REMOTE.md 5.3 on
 * hand-made manifests; and mutated encodings (every byte flipped, every
 * truncation, random garbage) that must decode cleanly or fail with
 * -EBADMSG / -EPROTONOSUPPORT and an error line, never crash (run under
 * ASan too).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "hoard/remote.h"
#include "hoard/util.h"

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(0x2545f4914f6cdd1d);
}

static void id_of(int n, struct hoard_id *id)
{
	memset(id, 0, sizeof(*id));
	id->b[0] = (uint8_t)n;
	id->b[15] = (uint8_t)(n * 7);
}

/* A manifest with every entry type. */
static void sample(struct hoard_manifest *m)
{
	struct hoard_mentry e;
	long d, f;

	CHECK_EQ(hoard_manifest_init(m, S_IFDIR | 0755, 0, 0, 100, 5), 0);
	e = (struct hoard_mentry){.type = HOARD_M_DIR,
				  .parent = 0,
				  .name = "dir",
				  .mode = S_IFDIR | 0750};
	d = hoard_manifest_add(m, &e);
	CHECK_EQ(d, 1);
	e = (struct hoard_mentry){.type = HOARD_M_FILE,
				  .parent = (uint32_t)d,
				  .name = "file",
				  .mode = S_IFREG | 0644,
				  .uid = 7,
				  .gid = 8,
				  .mtime_s = -5,
				  .mtime_ns = 999999999,
				  .size = 300000};
	e.n_ext = 2;
	e.ext = calloc(2, sizeof(*e.ext));
	e.ext[0] = (struct hoard_mextent){.off = 0, .len = 65536};
	id_of(1, &e.ext[0].id);
	e.ext[1] = (struct hoard_mextent){.off = 100000, .len = 200000};
	id_of(2, &e.ext[1].id);
	f = hoard_manifest_add(m, &e);
	CHECK_EQ(f, 2);
	e = (struct hoard_mentry){.type = HOARD_M_SYMLINK,
				  .parent = 0,
				  .name = "link",
				  .mode = S_IFLNK | 0777,
				  .target = "../../etc/passwd"};
	CHECK_EQ(hoard_manifest_add(m, &e), 3);
	e = (struct hoard_mentry){.type = HOARD_M_HARDLINK,
				  .parent = 0,
				  .name = "hard",
				  .link = (uint32_t)f};
	CHECK_EQ(hoard_manifest_add(m, &e), 4);
	e = (struct hoard_mentry){.type = HOARD_M_NODE,
				  .parent = 0,
				  .name = "fifo",
				  .mode = S_IFIFO | 0600};
	CHECK_EQ(hoard_manifest_add(m, &e), 5);
	e = (struct hoard_mentry){.type = HOARD_M_FILE,
				  .parent = 1,
				  .name = "empty",
				  .mode = S_IFREG | 0600};
	CHECK_EQ(hoard_manifest_add(m, &e), 6);
}

static void test_manifest_roundtrip(uint8_t **ret, size_t *ret_len)
{
	struct hoard_manifest m, back;
	char err[256], path[64];
	uint8_t *buf, *buf2;
	size_t len, len2;

	sample(&m);
	CHECK_EQ(hoard_manifest_encode(&m, &buf, &len, err, sizeof(err)), 0);
	CHECK_EQ(hoard_manifest_decode(buf, len, &back, err, sizeof(err)), 0);
	CHECK_EQ(back.n, m.n);
	CHECK(!strcmp(back.e[2].name, "file"));
	CHECK_EQ(back.e[2].mtime_s, -5);
	CHECK_EQ(back.e[2].n_ext, 2);
	CHECK(hoard_id_equal(&back.e[2].ext[1].id, &m.e[2].ext[1].id));
	CHECK(!strcmp(back.e[3].target, "../../etc/passwd"));
	CHECK_EQ(back.e[4].link, 2);
	hoard_manifest_path(&back, 2, path, sizeof(path));
	CHECK(!strcmp(path, "dir/file"));
	CHECK_EQ(hoard_manifest_encode(&back, &buf2, &len2, err, sizeof(err)),
		 0);
	CHECK(len2 == len && !memcmp(buf, buf2, len));
	free(buf2);
	hoard_manifest_clear(&back);
	hoard_manifest_clear(&m);
	*ret = buf;
	*ret_len = len;
}

/* Break one rule: encode must refuse it with a message containing want. */
static void expect_bad(void (*edit)(struct hoard_manifest *), const char *want)
{
	struct hoard_manifest m;
	char err[256] = "";
	uint8_t *buf = NULL;
	size_t len;

	sample(&m);
	edit(&m);
	CHECK_EQ(hoard_manifest_encode(&m, &buf, &len, err, sizeof(err)),
		 -EBADMSG);
	if (!CHECK(strstr(err, want)))
		fprintf(stderr, "  wanted '%s', got '%s'\n", want, err);
	hoard_manifest_clear(&m);
}

static void set_name(struct hoard_manifest *m, int i, const char *n)
{
	free(m->e[i].name);
	m->e[i].name = strdup(n);
}

static void e_dotdot(struct hoard_manifest *m)
{
	set_name(m, 2, "..");
}
static void e_dot(struct hoard_manifest *m)
{
	set_name(m, 1, ".");
}
static void e_empty(struct hoard_manifest *m)
{
	set_name(m, 2, "");
}
static void e_slash(struct hoard_manifest *m)
{
	set_name(m, 2, "/abs");
}
static void e_dup(struct hoard_manifest *m)
{
	set_name(m, 4, "link");
}
static void e_through(struct hoard_manifest *m)
{
	m->e[6].parent = 3;
}
static void e_under_file(struct hoard_manifest *m)
{
	m->e[6].parent = 2;
}
static void e_later(struct hoard_manifest *m)
{
	m->e[1].parent = 5;
}
static void e_size(struct hoard_manifest *m)
{
	m->e[2].size = 299999;
}
static void e_overlap(struct hoard_manifest *m)
{
	m->e[2].ext[1].off = 60000;
}
static void e_zero(struct hoard_manifest *m)
{
	m->e[2].ext[0].len = 0;
}
static void e_mode(struct hoard_manifest *m)
{
	m->e[2].mode = S_IFDIR | 0755;
}
static void e_link(struct hoard_manifest *m)
{
	m->e[4].link = 1;
}
static void e_ns(struct hoard_manifest *m)
{
	m->e[1].mtime_ns = 1000000000;
}

static void e_huge(struct hoard_manifest *m)
{
	m->e[6].size = UINT64_C(1) << 63;
}
static void e_wrap(struct hoard_manifest *m)
{
	/* off + len wraps to 65526: below the size without the check */
	m->e[2].ext[1].off = UINT64_MAX - 9;
	m->e[2].ext[1].len = 65536;
}
static void e_sum(struct hoard_manifest *m)
{
	/* each size fits, their sum does not */
	m->e[2].size = INT64_MAX;
	m->e[6].size = INT64_MAX;
}

static void test_rules(void)
{
	expect_bad(e_huge, "over the largest file size");
	expect_bad(e_wrap, "(overflow)");
	expect_bad(e_sum, "add up to more than 2^63 - 1");
	expect_bad(e_dotdot, "'.' or '..'");
	expect_bad(e_dot, "'.' or '..'");
	expect_bad(e_empty, "an empty name");
	expect_bad(e_slash, "a name with '/'");
	expect_bad(e_dup, "appears twice");
	expect_bad(e_through, "through the symlink");
	expect_bad(e_under_file, "not a directory");
	expect_bad(e_later, "does not come before");
	expect_bad(e_size, "sizes do not add up");
	expect_bad(e_overlap, "overlap");
	expect_bad(e_zero, "bad length");
	expect_bad(e_mode, "does not match");
	expect_bad(e_link, "not an earlier file");
	expect_bad(e_ns, "bad mtime");
}

/* The same overflows in crafted bytes, through the decoder. */
static void test_decode_overflows(const uint8_t *good, size_t len)
{
	static const uint8_t name[] = {'f', 'i', 'l',  'e',  0,	  0, 0,
				       0,   0,	 0x04, 0x93, 0xe0}; /* 300000 */
	const uint8_t *at = memmem(good, len, name, sizeof(name));
	uint8_t *b = malloc(len);
	struct hoard_manifest m;
	char err[256];
	size_t size_at, ext1_at;

	if (!CHECK(at && b)) {
		free(b);
		return;
	}
	size_at = (size_t)(at - good) + 4;
	ext1_at = size_at + 12 + 28; /* size, count, extent 0 */
	memcpy(b, good, len);
	hoard_put_be64(b + size_at, UINT64_C(1) << 63);
	err[0] = '\0';
	CHECK_EQ(hoard_manifest_decode(b, len, &m, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "over the largest file size"));
	memcpy(b, good, len);
	hoard_put_be64(b + ext1_at, UINT64_MAX - 9);
	err[0] = '\0';
	CHECK_EQ(hoard_manifest_decode(b, len, &m, err, sizeof(err)), -EBADMSG);
	if (!CHECK(strstr(err, "(overflow)")))
		fprintf(stderr, "  got '%s'\n", err);
	free(b);
}

/* Every single-byte flip and every truncation: clean result or error. */
static void test_manifest_mutations(const uint8_t *good, size_t len)
{
	uint8_t *b = malloc(len);
	struct hoard_manifest m;
	char err[256];
	uint64_t seed = 42;
	int r;

	for (size_t i = 0; i < len; i++) {
		memcpy(b, good, len);
		b[i] ^= (uint8_t)(1u << (rng_next(&seed) % 8));
		err[0] = '\0';
		r = hoard_manifest_decode(b, len, &m, err, sizeof(err));
		if (r == 0)
			hoard_manifest_clear(&m);
		else
			CHECK((r == -EBADMSG || r == -EPROTONOSUPPORT) &&
			      err[0]);
	}
	for (size_t n = 0; n < len; n++) {
		r = hoard_manifest_decode(good, n, &m, err, sizeof(err));
		CHECK(r == -EBADMSG || r == -EPROTONOSUPPORT);
	}
	for (int k = 0; k < 2000; k++) {
		memcpy(b, good, len);
		for (size_t i = 24; i < len; i++)
			if (rng_next(&seed) % 8 == 0)
				b[i] = (uint8_t)rng_next(&seed);
		r = hoard_manifest_decode(b, len, &m, err, sizeof(err));
		if (r == 0)
			hoard_manifest_clear(&m);
		else
			CHECK(r == -EBADMSG || r == -EPROTONOSUPPORT);
	}
	free(b);
}

/* Manifest version 2 (REMOTE.md 5.4): every extent carries the SHA-256 of
 * its chunk's bytes. */
static void test_manifest_v2(void)
{
	struct hoard_manifest m, back;
	struct hoard_chunk_sha *t = NULL, tab[2];
	char err[256] = "";
	uint8_t *buf, *buf2, *b;
	size_t len, len2, n;
	uint64_t seed = 7;
	int r;

	sample(&m);
	/* version 1 has no digests to give */
	CHECK_EQ(hoard_manifest_chunks(&m, true, &t, &n, err, sizeof(err)),
		 -EBADMSG);
	CHECK(strstr(err, "no chunk digests") != NULL);
	CHECK_EQ(hoard_manifest_chunks(&m, false, &t, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 2);
	free(t);
	memset(tab, 0, sizeof(tab));
	id_of(1, &tab[0].id);
	id_of(2, &tab[1].id);
	memset(tab[0].sha, 0x11, 32);
	memset(tab[1].sha, 0x22, 32);
	/* a table without every chunk: refused, m unchanged */
	CHECK_EQ(hoard_manifest_set_shas(&m, tab, 1), -ENOENT);
	CHECK_EQ(m.version, 0);
	CHECK_EQ(hoard_manifest_set_shas(&m, tab, 2), 0);
	CHECK_EQ(m.version, HOARD_MANIFEST_V2);
	CHECK_EQ(hoard_manifest_encode(&m, &buf, &len, err, sizeof(err)), 0);
	CHECK_EQ(hoard_get_be32(buf + 8), 2);
	CHECK_EQ(hoard_manifest_decode(buf, len, &back, err, sizeof(err)), 0);
	CHECK_EQ(back.version, 2);
	CHECK(back.e[2].ext[0].sha[0] == 0x11 &&
	      back.e[2].ext[1].sha[31] == 0x22);
	CHECK_EQ(hoard_manifest_encode(&back, &buf2, &len2, err, sizeof(err)),
		 0);
	CHECK(len2 == len && !memcmp(buf, buf2, len));
	free(buf2);
	CHECK_EQ(hoard_manifest_chunks(&back, true, &t, &n, err, sizeof(err)),
		 0);
	CHECK_EQ(n, 2);
	CHECK(hoard_chunk_sha_find(t, n, &tab[1].id) != NULL &&
	      hoard_chunk_sha_find(t, n, &tab[1].id)->sha[5] == 0x22);
	free(t);
	hoard_manifest_clear(&back);
	/* one id with two digests: the table refuses it */
	m.e[2].ext[1].id = m.e[2].ext[0].id;
	m.e[2].ext[1].len = m.e[2].ext[0].len;
	CHECK_EQ(hoard_manifest_chunks(&m, true, &t, &n, err, sizeof(err)),
		 -EBADMSG);
	CHECK(strstr(err, "two SHA-256") != NULL);
	hoard_manifest_clear(&m);
	/* version 3 is unknown */
	b = malloc(len);
	memcpy(b, buf, len);
	hoard_put_be32(b + 8, 3);
	CHECK_EQ(hoard_manifest_decode(b, len, &back, err, sizeof(err)),
		 -EPROTONOSUPPORT);
	/* a version-1 header over version-2 extents (and back) never decodes
	 * as the same tree: the sizes do not add up */
	hoard_put_be32(b + 8, 1);
	CHECK_EQ(hoard_manifest_decode(b, len, &back, err, sizeof(err)),
		 -EBADMSG);
	/* every byte flipped, every truncation */
	for (size_t i = 0; i < len; i++) {
		memcpy(b, buf, len);
		b[i] ^= (uint8_t)(1u << (rng_next(&seed) % 8));
		err[0] = '\0';
		r = hoard_manifest_decode(b, len, &back, err, sizeof(err));
		if (r == 0)
			hoard_manifest_clear(&back);
		else
			CHECK((r == -EBADMSG || r == -EPROTONOSUPPORT) &&
			      err[0]);
	}
	for (size_t k = 0; k < len; k++) {
		r = hoard_manifest_decode(buf, k, &back, err, sizeof(err));
		CHECK(r == -EBADMSG || r == -EPROTONOSUPPORT);
	}
	free(b);
	free(buf);
}

static void test_pack_index(void)
{
	struct hoard_idx_entry e[3];
	struct hoard_pack_index ix = {.n = 3,
				      .e = e,
				      .pack_size = HOARD_PACK_HEADER + 300},
				back;
	size_t len = hoard_pack_index_size(3);
	uint8_t *b = malloc(len);
	char err[256];

	for (int i = 0; i < 3; i++) {
		id_of(i, &e[i].id);
		e[i].off = HOARD_PACK_HEADER + (uint64_t)i * 100;
		e[i].frame_len = 100;
		e[i].raw_len = 1000;
	}
	memset(ix.pack_sha, 0xab, sizeof(ix.pack_sha));
	hoard_pack_index_encode(&ix, b);
	CHECK_EQ(hoard_pack_index_decode(b, len, &back, err, sizeof(err)), 0);
	CHECK_EQ(back.n, 3);
	CHECK_EQ(back.e[2].off, HOARD_PACK_HEADER + 200);
	hoard_pack_index_clear(&back);
	for (size_t i = 0; i < len; i++) {
		b[i] ^= 0x10;
		CHECK_EQ(hoard_pack_index_decode(b, len, &back, err,
						 sizeof(err)) < 0,
			 1);
		b[i] ^= 0x10;
	}
	for (size_t n = 0; n < len; n++)
		CHECK(hoard_pack_index_decode(b, n, &back, err, sizeof(err)) <
		      0);
	free(b);
}

static void test_config_and_ref(void)
{
	struct hoard_remote_config c, back;
	uint8_t secret[HOARD_SECRET_SIZE], buf[HOARD_CONFIG_SIZE];
	struct hoard_ref r = {.files = 3, .bytes = 4, .time = 5}, rb;
	char err[256], *text;
	size_t len;

	for (int i = 0; i < HOARD_SECRET_SIZE; i++)
		secret[i] = (uint8_t)i;
	hoard_remote_config_make(&c, secret, 3);
	hoard_remote_config_encode(&c, buf);
	CHECK_EQ(hoard_remote_config_decode(buf, sizeof(buf), &back, err,
					    sizeof(err)),
		 0);
	CHECK(!memcmp(back.secret, secret, sizeof(secret)));
	buf[100] ^= 1;
	CHECK_EQ(hoard_remote_config_decode(buf, sizeof(buf), &back, err,
					    sizeof(err)),
		 -EBADMSG);

	memset(r.manifest, 'a', 64);
	r.manifest[64] = '\0';
	CHECK_EQ(hoard_ref_encode(&r, &text, &len), 0);
	CHECK_EQ(hoard_ref_decode(text, len, &rb, err, sizeof(err)), 0);
	CHECK(!strcmp(rb.manifest, r.manifest) && rb.files == 3 &&
	      rb.time == 5);
	CHECK(hoard_ref_decode(text, len - 1, &rb, err, sizeof(err)) < 0);
	text[20] = 'X';
	CHECK(hoard_ref_decode(text, len, &rb, err, sizeof(err)) < 0);
	free(text);
	{
		static const char *const bad[] = {
			/* out of range */
			"files 1\nbytes 18446744073709551616\ntime 1\n",
			"files 1\nbytes 9223372036854775808\ntime 1\n",
			"files 4294967296\nbytes 0\ntime 1\n",
			/* not canonical decimal */
			"files 1\nbytes 0\ntime 99999999999999999999\n",
			"files -1\nbytes 0\ntime 1\n",
			"files +1\nbytes 0\ntime 1\n",
			"files  1\nbytes 0\ntime 1\n",
			"files 1\nbytes 0x10\ntime 1\n",
			"files 1\nbytes \ntime 1\n",
			"files 1\nbytes 0\ntime 1\nextra 1\n",
		};
		char rt[256];

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			int n = snprintf(rt, sizeof(rt),
					 "hoard-ref 1\nmanifest %s\n%s",
					 r.manifest, bad[i]);

			err[0] = '\0';
			CHECK_EQ(hoard_ref_decode(rt, (size_t)n, &rb, err,
						  sizeof(err)),
				 -EBADMSG);
			CHECK(err[0]);
			if (i < 3 && !CHECK(strstr(err, "out of range")))
				fprintf(stderr, "  ref %zu: '%s'\n", i, err);
		}
		snprintf(rt, sizeof(rt),
			 "hoard-ref 1\nmanifest %s\nfiles 4294967295\n"
			 "bytes 9223372036854775807\ntime 0\n",
			 r.manifest);
		CHECK_EQ(
			hoard_ref_decode(rt, strlen(rt), &rb, err, sizeof(err)),
			0);
		CHECK(rb.bytes == INT64_MAX && rb.files == UINT32_MAX);
	}
	/* only the one form the encoder writes: sscanf alone took these */
	{
		static const char *const lax[] = {
			"hoard-ref 1 manifest %s files 3 bytes 4 time 5\n",
			"hoard-ref 1\nmanifest %s\nfiles -1\nbytes 4\ntime 5\n",
			"hoard-ref 1\nmanifest %s\nfiles +3\nbytes 4\ntime 5\n",
			"hoard-ref 1\nmanifest %s\nfiles 03\nbytes 4\ntime 5\n",
			"hoard-ref  1\n\nmanifest\t%s\nfiles 3\nbytes 4\ntime "
			"5\n",
		};
		char line[256];

		for (size_t i = 0; i < sizeof(lax) / sizeof(lax[0]); i++) {
			snprintf(line, sizeof(line), lax[i], r.manifest);
			CHECK_EQ(hoard_ref_decode(line, strlen(line), &rb, err,
						  sizeof(err)),
				 -EBADMSG);
		}
	}
	CHECK(hoard_ref_name_ok("main") && !hoard_ref_name_ok(".x") &&
	      !hoard_ref_name_ok("a/b") && !hoard_ref_name_ok(""));
}

static void test_rindex(void)
{
	struct hoard_rindex *x = hoard_rindex_new();
	struct hoard_id id;

	for (int i = 0; i < 5000; i++) {
		struct hoard_rloc l = {.pack = (uint32_t)i, .off = (uint64_t)i};

		memset(&id, 0, sizeof(id));
		memcpy(id.b, &i, sizeof(i));
		CHECK_EQ(hoard_rindex_add(x, &id, &l), 0);
	}
	CHECK_EQ(hoard_rindex_count(x), 5000);
	for (int i = 0; i < 5000; i++) {
		const struct hoard_rloc *l;

		memset(&id, 0, sizeof(id));
		memcpy(id.b, &i, sizeof(i));
		l = hoard_rindex_get(x, &id);
		CHECK(l && l->pack == (uint32_t)i);
	}
	memset(&id, 0xff, sizeof(id));
	CHECK(hoard_rindex_get(x, &id) == NULL);
	hoard_rindex_free(x);
}

int main(void)
{
	uint8_t *good;
	size_t len;

	test_manifest_roundtrip(&good, &len);
	test_rules();
	test_decode_overflows(good, len);
	test_manifest_mutations(good, len);
	free(good);
	test_manifest_v2();
	test_pack_index();
	test_config_and_ref();
	test_rindex();
	return CHECK_DONE();
}
