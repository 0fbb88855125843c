// SPDX-License-Identifier: MIT
/*
 * fuzz_seeds: write seed corpora made by the encoders, so the seeds follow
 * the formats as they change (tests/fuzz/corpus/ holds the hand-written
 * seeds and the regressions).
 *
 *   fuzz_seeds DIR    writes DIR/<target>/<name> for config, pack_index,
 *                     manifest, ref, frame and sync requests (ctl)
 *
 * Exit 0, or 1 with a message when an encoder or a write fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hoard/chunker.h"
#include "hoard/codec.h"
#include "hoard/remote.h"
#include "hoard/s3.h"
#include "hoard/sync.h"

static const char *out_dir;

static void put(const char *target, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		goto fail;
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		goto fail;
	return;
fail:
	fprintf(stderr, "fuzz_seeds: %s: %s\n", path, strerror(errno));
	exit(1);
}

static void id_of(int n, struct hoard_id *id)
{
	memset(id, 0, sizeof(*id));
	id->b[0] = (uint8_t)n;
	id->b[15] = (uint8_t)(n * 7);
}

static void config_seeds(void)
{
	struct hoard_remote_config c;
	uint8_t secret[HOARD_SECRET_SIZE], buf[HOARD_CONFIG_SIZE];

	for (int i = 0; i < HOARD_SECRET_SIZE; i++)
		secret[i] = (uint8_t)i;
	hoard_remote_config_make(&c, secret, 3);
	hoard_remote_config_encode(&c, buf);
	put("config", "valid", buf, sizeof(buf));
	c.format = HOARD_REMOTE_FORMAT + 1;
	hoard_remote_config_encode(&c, buf);
	put("config", "newer-format", buf, sizeof(buf));
}

static void index_seeds(void)
{
	struct hoard_idx_entry e[3];
	struct hoard_pack_index ix = {.e = e};
	uint8_t *b = malloc(hoard_pack_index_size(3));

	if (!b)
		exit(1);
	for (uint32_t n = 0; n <= 3; n += 3) {
		ix.n = n;
		ix.pack_size = HOARD_PACK_HEADER + (uint64_t)n * 100;
		for (uint32_t i = 0; i < n; i++) {
			id_of((int)i, &e[i].id);
			e[i].off = HOARD_PACK_HEADER + (uint64_t)i * 100;
			e[i].frame_len = 100;
			e[i].raw_len = 1000;
		}
		memset(ix.pack_sha, 0xab, sizeof(ix.pack_sha));
		hoard_pack_index_encode(&ix, b);
		put("pack_index", n ? "three" : "empty", b,
		    hoard_pack_index_size(n));
	}
	free(b);
}

static void add(struct hoard_manifest *m, struct hoard_mentry e)
{
	if (hoard_manifest_add(m, &e) < 0)
		exit(1);
}

static void manifest_seeds(void)
{
	struct hoard_manifest m;
	struct hoard_mextent *ext = calloc(2, sizeof(*ext));
	uint8_t *buf;
	size_t len;
	char err[256];

	if (!ext || hoard_manifest_init(&m, S_IFDIR | 0755, 0, 0, 100, 5) < 0)
		exit(1);
	add(&m, (struct hoard_mentry){.type = HOARD_M_DIR,
				      .name = "dir",
				      .mode = S_IFDIR | 0750});
	ext[0] = (struct hoard_mextent){.off = 0, .len = 65536};
	id_of(1, &ext[0].id);
	ext[1] = (struct hoard_mextent){.off = 100000, .len = 200000};
	id_of(2, &ext[1].id);
	add(&m, (struct hoard_mentry){.type = HOARD_M_FILE,
				      .parent = 1,
				      .name = "file",
				      .mode = S_IFREG | 0644,
				      .uid = 7,
				      .gid = 8,
				      .mtime_s = -5,
				      .mtime_ns = 999999999,
				      .size = 300000,
				      .n_ext = 2,
				      .ext = ext});
	add(&m, (struct hoard_mentry){.type = HOARD_M_SYMLINK,
				      .name = "link",
				      .mode = S_IFLNK | 0777,
				      .target = "../../etc/passwd"});
	add(&m, (struct hoard_mentry){
			.type = HOARD_M_HARDLINK, .name = "hard", .link = 2});
	add(&m, (struct hoard_mentry){.type = HOARD_M_NODE,
				      .name = "fifo",
				      .mode = S_IFIFO | 0600});
	add(&m, (struct hoard_mentry){.type = HOARD_M_FILE,
				      .parent = 1,
				      .name = "empty",
				      .mode = S_IFREG | 0600});
	if (hoard_manifest_encode(&m, &buf, &len, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_seeds: manifest: %s\n", err);
		exit(1);
	}
	put("manifest", "every-type", buf, len);
	free(buf);
	/* version 2 (REMOTE.md 5.4): a digest per extent */
	memset(m.e[2].ext[0].sha, 0x11, sizeof(m.e[2].ext[0].sha));
	memset(m.e[2].ext[1].sha, 0x22, sizeof(m.e[2].ext[1].sha));
	m.version = HOARD_MANIFEST_V2;
	if (hoard_manifest_encode(&m, &buf, &len, err, sizeof(err)) < 0)
		exit(1);
	put("manifest", "every-type-v2", buf, len);
	free(buf);
	/* one chunk given two digests: decodes; the pull's table refuses */
	m.e[2].ext[1].id = m.e[2].ext[0].id;
	if (hoard_manifest_encode(&m, &buf, &len, err, sizeof(err)) < 0)
		exit(1);
	put("manifest", "v2-two-digests", buf, len);
	free(buf);
	hoard_manifest_clear(&m);
	if (hoard_manifest_init(&m, S_IFDIR | 0700, 1, 2, 0, 0) < 0 ||
	    hoard_manifest_encode(&m, &buf, &len, err, sizeof(err)) < 0)
		exit(1);
	put("manifest", "root-only", buf, len);
	free(buf);
	hoard_manifest_clear(&m);
}

static void ref_seeds(void)
{
	struct hoard_ref r = {.files = 3, .bytes = 4, .time = 5};
	char *text;
	size_t len;

	memset(r.manifest, 'a', 64);
	r.manifest[64] = '\0';
	if (hoard_ref_encode(&r, &text, &len) < 0)
		exit(1);
	put("ref", "valid", text, len);
	free(text);
	r.is_signed = true; /* version 2: the decoder does not verify */
	memset(r.key.b, 0x5a, sizeof(r.key.b));
	memset(r.sig, 0xa5, sizeof(r.sig));
	if (hoard_ref_encode(&r, &text, &len) < 0)
		exit(1);
	put("ref", "signed", text, len);
	free(text);
}

static void frame_seed(const char *name, const uint8_t *raw, size_t n,
		       int level)
{
	uint8_t *out = malloc(3 + hoard_codec_bound(n));
	ssize_t len;

	if (!out)
		exit(1);
	out[0] = (uint8_t)(n >> 16);
	out[1] = (uint8_t)(n >> 8);
	out[2] = (uint8_t)n;
	len = hoard_codec_encode(raw, n, out + 3, hoard_codec_bound(n), level);
	if (len < 0)
		exit(1);
	put("frame", name, out, 3 + (size_t)len);
	free(out);
}

static void frame_seeds(void)
{
	uint8_t raw[4096];
	uint64_t s = 88172645463325252ull;

	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)("hoard chunk "[i % 12]);
	frame_seed("zstd", raw, sizeof(raw), 1);
	frame_seed("stored-raw", raw, 300, 0);
	for (size_t i = 0; i < sizeof(raw); i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		raw[i] = (uint8_t)s;
	}
	frame_seed("incompressible", raw, sizeof(raw), 1);
}

static void ctl_seeds(void)
{
	struct hoard_s3_config s3;
	struct hoard_sync_opts o = {.url = "s3://bucket/pre fix",
				    .volume = "pip",
				    .ref = "main",
				    .jobs = 4,
				    .lazy = true,
				    .allow_rollback = true};
	char *line;

	hoard_s3_config_defaults(&s3);
	s3.access_key_id = "AKIDEXAMPLE";
	s3.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	s3.region = "us-east-1";
	s3.endpoint = "http://127.0.0.1:9000";
	o.s3 = &s3;
	line = hoard_sync_request_encode("pull", &o);
	if (!line)
		exit(1);
	put("ctl", "pull-request", line, strlen(line));
	free(line);
	o.lazy = false;
	o.allow_rollback = false;
	line = hoard_sync_request_encode("push", &o);
	if (!line)
		exit(1);
	put("ctl", "push-request", line, strlen(line));
	free(line);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds DIR\n");
		return 2;
	}
	out_dir = argv[1];
	if (mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "fuzz_seeds: %s: %s\n", out_dir,
			strerror(errno));
		return 1;
	}
	config_seeds();
	index_seeds();
	manifest_seeds();
	ref_seeds();
	frame_seeds();
	ctl_seeds();
	return 0;
}
