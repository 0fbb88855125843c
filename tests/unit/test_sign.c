// SPDX-License-Identifier: MIT
/*
 * Unit test of fs/remote/sign.c and the signed ref of fs/remote/remote.c (docs/REMOTE.md
 * 6.1): Ed25519 against RFC 8032's first test vector, key file texts and
 * files, a signed ref's round trip, every single-bit flip of an encoded
 * signed ref refused, a signature replayed onto another ref, volume,
 * bucket, prefix or repository refused, and the trust rule.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "hoard/remote.h"
#include "hoard/sign.h"
#include "hoard/util.h"

static void unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

/* RFC 8032 section 7.1, TEST 1 (the empty message). */
static void test_rfc8032(void)
{
	struct hoard_sign_key k;
	uint8_t seed[32], pub[32], sig[64], got[64];

	unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f6"
	      "0",
	      seed, 32);
	unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511"
	      "a",
	      pub, 32);
	unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901"
	      "555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a"
	      "100b",
	      sig, 64);
	CHECK_EQ(hoard_sign_from_seed(seed, &k), 0);
	CHECK(!memcmp(k.pub.b, pub, 32));
	CHECK_EQ(hoard_sign(&k, "", 0, got), 0);
	CHECK(!memcmp(got, sig, 64));
	CHECK_EQ(hoard_sign_verify(&k.pub, "", 0, sig), 0);
	sig[10] ^= 4;
	CHECK_EQ(hoard_sign_verify(&k.pub, "", 0, sig), -EBADMSG);
	CHECK_EQ(hoard_sign_verify(&k.pub, "x", 1, got), -EBADMSG);
}

static void test_key_texts(void)
{
	struct hoard_sign_key k, k2;
	struct hoard_pubkey p;
	char dir[] = "/tmp/hoard-test-sign-XXXXXX", path[128], pubpath[160];
	char err[256], id[HOARD_SIGN_ID_SIZE];
	struct stat st;
	static const char *bad[] = {
		"",
		"hoard-public-key 1 ed25519 "
		"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f70751"
		"\n",
		"hoard-public-key 2 ed25519 "
		"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f70751"
		"1a\n",
		"hoard-public-key 1 ed25519 "
		"D75A980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f70751"
		"1a\n",
		"hoard-public-key 1 ed25519 "
		"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f70751"
		"1a\n\n",
	};
	static const char good[] = "hoard-public-key 1 ed25519 "
				   "d75a980182b10ab7d54bfed3c964073a0ee172f3daa"
				   "62325af021a68f707511a\n";

	CHECK_EQ(hoard_sign_pub_parse(good, strlen(good), &p), 0);
	CHECK_EQ(hoard_sign_pub_parse(good, strlen(good) - 1, &p), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(hoard_sign_pub_parse(bad[i], strlen(bad[i]), &p),
			 -EINVAL);

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/k", dir);
	snprintf(pubpath, sizeof(pubpath), "%s/k.pub", dir);
	CHECK_EQ(hoard_sign_generate(&k), 0);
	CHECK_EQ(hoard_sign_key_write(path, &k, err, sizeof(err)), 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	/* never overwritten, and a failed write leaves the old files */
	CHECK_EQ(hoard_sign_key_write(path, &k, err, sizeof(err)), -EEXIST);
	CHECK(strstr(err, "never overwritten") != NULL);
	CHECK_EQ(hoard_sign_key_load(path, &k2, err, sizeof(err)), 0);
	CHECK(!memcmp(&k, &k2, sizeof(k)));
	CHECK_EQ(hoard_sign_pub_load(pubpath, &p, err, sizeof(err)), 0);
	CHECK(!memcmp(p.b, k.pub.b, 32));
	/* a secret key is not a public key, nor the other way round */
	CHECK_EQ(hoard_sign_pub_load(path, &p, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "secret key") != NULL);
	CHECK_EQ(hoard_sign_key_load(pubpath, &k2, err, sizeof(err)), -EINVAL);
	hoard_sign_key_id(&k.pub, id);
	CHECK_EQ(strlen(id), 16);
	unlink(path);
	unlink(pubpath);
	/* the .pub exists: nothing is written */
	CHECK(symlink("/nonexistent", pubpath) == 0);
	CHECK_EQ(hoard_sign_key_write(path, &k, err, sizeof(err)), -EEXIST);
	CHECK(access(path, F_OK) != 0);
	unlink(pubpath);
	rmdir(dir);
}

static struct hoard_ref_site site_of(uint8_t repo_byte, const char *bucket,
				     const char *prefix, const char *volume,
				     const char *name)
{
	struct hoard_ref_site s = {.bucket = bucket,
				   .prefix = prefix,
				   .volume = volume,
				   .name = name};

	memset(s.repo, repo_byte, sizeof(s.repo));
	return s;
}

static void test_signed_ref(void)
{
	struct hoard_sign_key k, other;
	struct hoard_ref r = {.files = 3, .bytes = 4096, .time = 1700000000},
			 back, u;
	struct hoard_ref_site site = site_of(7, "bkt", "ci/", "pip", "main");
	struct hoard_ref_site replays[] = {
		site_of(7, "bkt", "ci/", "pip", "other"),
		site_of(7, "bkt", "ci/", "hf", "main"),
		site_of(7, "bkt", "pr/", "pip", "main"),
		site_of(7, "bkt2", "ci/", "pip", "main"),
		site_of(8, "bkt", "ci/", "pip", "main"),
	};
	char err[512], *text, *t2;
	size_t len, l2;
	unsigned refused = 0, flips = 0;

	CHECK_EQ(hoard_sign_generate(&k), 0);
	CHECK_EQ(hoard_sign_generate(&other), 0);
	memset(r.manifest, 'c', 64);
	r.manifest[64] = '\0';
	CHECK_EQ(hoard_ref_sign(&r, &k, &site), 0);
	CHECK(r.is_signed);
	CHECK_EQ(hoard_ref_encode(&r, &text, &len), 0);
	CHECK(!strncmp(text, "hoard-ref 2\n", 12));
	CHECK_EQ(hoard_ref_decode(text, len, &back, err, sizeof(err)), 0);
	CHECK(back.is_signed && !memcmp(&back.key, &k.pub, 32) &&
	      !memcmp(back.sig, r.sig, 64) && back.files == 3 &&
	      back.bytes == 4096 && back.time == 1700000000);
	CHECK_EQ(hoard_ref_verify(&back, &site), 0);
	CHECK_EQ(hoard_ref_check_trust(&back, &site, &k.pub, 1, err,
				       sizeof(err)),
		 0);
	CHECK_EQ(hoard_ref_check_trust(&back, &site, NULL, 0, err, sizeof(err)),
		 0);

	/* every single-bit flip of the encoded ref is refused */
	for (size_t i = 0; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			struct hoard_ref f;

			text[i] ^= (char)(1 << b);
			flips++;
			if (hoard_ref_decode(text, len, &f, err, sizeof(err)) <
				    0 ||
			    hoard_ref_check_trust(&f, &site, &k.pub, 1, err,
						  sizeof(err)) < 0)
				refused++;
			text[i] ^= (char)(1 << b);
		}
	}
	CHECK_EQ(refused, flips);

	/* replayed onto another ref, volume, prefix, bucket, repository */
	for (size_t i = 0; i < sizeof(replays) / sizeof(replays[0]); i++) {
		CHECK_EQ(hoard_ref_verify(&back, &replays[i]), -EBADMSG);
		CHECK_EQ(hoard_ref_check_trust(&back, &replays[i], &k.pub, 1,
					       err, sizeof(err)),
			 -EBADMSG);
		CHECK(strstr(err, "does not verify") != NULL);
	}

	/* another key: untrusted; re-signed by it: untrusted, but valid */
	CHECK_EQ(hoard_ref_check_trust(&back, &site, &other.pub, 1, err,
				       sizeof(err)),
		 -EKEYREJECTED);
	CHECK(strstr(err, "not trusted") != NULL);
	u = back;
	CHECK_EQ(hoard_ref_sign(&u, &other, &site), 0);
	CHECK_EQ(hoard_ref_check_trust(&u, &site, &k.pub, 1, err, sizeof(err)),
		 -EKEYREJECTED);
	/* the other key's signature under the trusted key's name */
	u.key = k.pub;
	CHECK_EQ(hoard_ref_check_trust(&u, &site, &k.pub, 1, err, sizeof(err)),
		 -EBADMSG);

	/* unsigned: fine without trust, refused with it */
	u = back;
	u.is_signed = false;
	CHECK_EQ(hoard_ref_check_trust(&u, &site, NULL, 0, err, sizeof(err)),
		 0);
	CHECK_EQ(hoard_ref_check_trust(&u, &site, &k.pub, 1, err, sizeof(err)),
		 -EKEYREJECTED);
	CHECK(strstr(err, "not signed") != NULL);
	CHECK_EQ(hoard_ref_verify(&u, &site), -ENOKEY);
	CHECK_EQ(hoard_ref_encode(&u, &t2, &l2), 0);
	CHECK(!strncmp(t2, "hoard-ref 1\n", 12));
	free(t2);

	/* a signed ref whose signature fails is refused even with no trust */
	back.time++;
	CHECK_EQ(hoard_ref_check_trust(&back, &site, NULL, 0, err, sizeof(err)),
		 -EBADMSG);
	free(text);

	/* versions and spellings */
	{
		static const char v3[] = "hoard-ref 3\nwhatever\n";
		char v1[256];
		struct hoard_ref x;

		CHECK_EQ(hoard_ref_decode(v3, strlen(v3), &x, err, sizeof(err)),
			 -EPROTONOSUPPORT);
		snprintf(v1, sizeof(v1),
			 "hoard-ref 1\nmanifest %s\nfiles 03\nbytes 4096\n"
			 "time 1\n",
			 r.manifest);
		CHECK_EQ(hoard_ref_decode(v1, strlen(v1), &x, err, sizeof(err)),
			 -EBADMSG);
		snprintf(v1, sizeof(v1),
			 "hoard-ref 1\nmanifest %s\nfiles 3\nbytes 4096\n"
			 "time 1\n",
			 r.manifest);
		CHECK_EQ(hoard_ref_decode(v1, strlen(v1), &x, err, sizeof(err)),
			 0);
		CHECK(!x.is_signed);
	}
	hoard_sign_key_wipe(&k);
	hoard_sign_key_wipe(&other);
}

int main(void)
{
	test_rfc8032();
	test_key_texts();
	test_signed_ref();
	return CHECK_DONE();
}
