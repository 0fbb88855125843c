// SPDX-License-Identifier: MIT
/*
 * Tests for the pure parts of the S3 client: digests (FIPS 180-4, RFC 4231,
 * RFC 1321, RFC 4648 vectors), s3:// URLs and bucket names, endpoint URLs,
 * the AWS config and credentials files (a temporary HOME), RFC 3986
 * encoding, canonical query strings, SigV4 (AWS's documented example and
 * botocore's vectors in sigv4_vectors.h), and the XML of S3's answers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "hoard/digest.h"
#include "hoard/s3.h"
#include "hoard/util.h"
#include "../../fs/remote/s3-internal.h"
#include "check.h"
#include "sigv4_vectors.h"

static void check_hex(const uint8_t *d, size_t n, const char *want)
{
	char hex[129];

	hoard_hex(d, n, hex);
	if (!CHECK(strcmp(hex, want) == 0))
		fprintf(stderr, "  got  %s\n  want %s\n", hex, want);
}

static void test_sha256(void)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7"
		     "852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff"
			"61f20015ad"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db0"
		 "6c1"},
		{"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijkl"
		 "mnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee"
		 "9d1"},
	};
	uint8_t d[HOARD_SHA256_SIZE];
	static uint8_t big[1000000];
	char hex[HOARD_SHA256_HEX_SIZE], hex2[HOARD_SHA256_HEX_SIZE];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		hoard_sha256(v[i].in, strlen(v[i].in), d);
		check_hex(d, sizeof(d), v[i].hex);
	}
	/* One million 'a' (FIPS 180-4's long vector). */
	memset(big, 'a', sizeof(big));
	hoard_sha256(big, sizeof(big), d);
	check_hex(d, sizeof(d),
		  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc711"
		  "2cd0");
	/* Every length around the padding boundaries: the raw and hex forms
	 * agree, and no two lengths collide. */
	for (size_t n = 50; n < 140; n++) {
		hoard_sha256(big, n, d);
		hoard_hex(d, sizeof(d), hex);
		hoard_sha256_hex(big, n, hex2);
		CHECK(strcmp(hex, hex2) == 0);
		hoard_sha256_hex(big, n + 1, hex2);
		CHECK(strcmp(hex, hex2) != 0);
	}
	hoard_sha256_hex("abc", 3, hex);
	CHECK(strcmp(hex, v[1].hex) == 0);
}

static void test_hmac(void)
{
	uint8_t key[131], mac[HOARD_SHA256_SIZE];

	/* RFC 4231 test cases 1, 2 and 6. */
	memset(key, 0x0b, 20);
	hoard_hmac_sha256(key, 20, "Hi There", 8, mac);
	check_hex(mac, sizeof(mac),
		  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32"
		  "cff7");
	hoard_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
	check_hex(mac, sizeof(mac),
		  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec"
		  "3843");
	memset(key, 0xaa, sizeof(key));
	hoard_hmac_sha256(
		key, sizeof(key),
		"Test Using Larger Than Block-Size Key - Hash Key First", 54,
		mac);
	check_hex(mac, sizeof(mac),
		  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee3"
		  "7f54");
}

static void test_md5_base64(void)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
		{"", "d41d8cd98f00b204e9800998ecf8427e"},
		{"a", "0cc175b9c0f1b6a831c399e269772661"},
		{"abc", "900150983cd24fb0d6963f7d28e17f72"},
		{"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
		{"abcdefghijklmnopqrstuvwxyz",
		 "c3fcd3d76192e4007dfb496cca67e13b"},
		{"1234567890123456789012345678901234567890123456789012345678901"
		 "2345678901234567890",
		 "57edf4a22be3c955ac49da2e2107b67a"},
	};
	static const char *b64[][2] = {
		{"", ""},
		{"f", "Zg=="},
		{"fo", "Zm8="},
		{"foo", "Zm9v"},
		{"foob", "Zm9vYg=="},
		{"fooba", "Zm9vYmE="},
		{"foobar", "Zm9vYmFy"},
	};
	uint8_t d[HOARD_MD5_SIZE];
	char out[HOARD_BASE64_SIZE(HOARD_MD5_SIZE)];
	char o2[16];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		hoard_md5(v[i].in, strlen(v[i].in), d);
		check_hex(d, sizeof(d), v[i].hex);
	}
	for (size_t i = 0; i < sizeof(b64) / sizeof(b64[0]); i++) {
		hoard_base64(b64[i][0], strlen(b64[i][0]), o2);
		CHECK(strcmp(o2, b64[i][1]) == 0);
	}
	/* Longer than one line of PEM-style base64: no line breaks. */
	{
		static uint8_t z[300];
		char zo[HOARD_BASE64_SIZE(300)];

		hoard_base64(z, sizeof(z), zo);
		CHECK_EQ(strlen(zo), 400);
		CHECK(strspn(zo, "A") == 400);
	}
	/* Content-MD5 of "" as S3 documents it. */
	hoard_md5("", 0, d);
	hoard_base64(d, sizeof(d), out);
	CHECK(strcmp(out, "1B2M2Y8AsgTpgAmY7PhCfg==") == 0);
}

static void test_urls(void)
{
	static const char *good[] = {
		"abc",
		"my-bucket",
		"my.bucket.name",
		"a1b",
		"123",
		"hoard-test",
		"a-b-c.d-e",
		"x2345678901234567890123456789012345678901234567890123456789012"
		"3",
	};
	static const char *bad[] = {
		"",
		"ab",
		"ABC",
		"a_b",
		"-ab",
		"ab-",
		".ab",
		"ab.",
		"a..b",
		"a.-b",
		"a-.b",
		"192.168.5.4",
		"xn--abc",
		"sthree-x",
		"amzn-s3-demo-x",
		"abc-s3alias",
		"abc--ol-s3",
		"a.mrap",
		"abc--x-s3",
		"abc--table-s3",
		"a b",
		"a/b",
		"ünï",
		"x2345678901234567890123456789012345678901234567890123456789012"
		"34",
	};
	char *b, *p, longurl[1200];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(hoard_s3_bucket_name_valid(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!CHECK(!hoard_s3_bucket_name_valid(bad[i])))
			fprintf(stderr, "  accepted '%s'\n", bad[i]);

	CHECK_EQ(hoard_s3_url_parse("s3://bucket/some/prefix/", &b, &p), 0);
	CHECK(!strcmp(b, "bucket") && !strcmp(p, "some/prefix/"));
	free(b);
	free(p);
	CHECK_EQ(hoard_s3_url_parse("s3://bucket", &b, &p), 0);
	CHECK(!strcmp(b, "bucket") && !strcmp(p, ""));
	free(b);
	free(p);
	CHECK_EQ(hoard_s3_url_parse("S3://bucket/", &b, &p), 0);
	CHECK(!strcmp(b, "bucket") && !strcmp(p, ""));
	free(b);
	free(p);
	CHECK_EQ(hoard_s3_url_parse("s3://b.c.d/a b/ü+~", &b, &p), 0);
	CHECK(!strcmp(b, "b.c.d") && !strcmp(p, "a b/ü+~"));
	free(b);
	free(p);
	b = p = (char *)"untouched";
	CHECK_EQ(hoard_s3_url_parse("http://bucket/x", &b, &p), -EINVAL);
	CHECK_EQ(hoard_s3_url_parse("s3://", &b, &p), -EINVAL);
	CHECK_EQ(hoard_s3_url_parse("s3:///x", &b, &p), -EINVAL);
	CHECK_EQ(hoard_s3_url_parse("s3://Bucket/x", &b, &p), -EINVAL);
	CHECK_EQ(hoard_s3_url_parse("s3://b_c/x", &b, &p), -EINVAL);
	CHECK_EQ(hoard_s3_url_parse("s3:/bucket", &b, &p), -EINVAL);
	CHECK_EQ(hoard_s3_url_parse(NULL, &b, &p), -EINVAL);
	memcpy(longurl, "s3://bucket/", 12);
	memset(longurl + 12, 'k', 1025);
	longurl[12 + 1025] = '\0';
	CHECK_EQ(hoard_s3_url_parse(longurl, &b, &p), -EINVAL);
	/* dot and empty segments: an object's path and a listing's prefix
	 * would name different places */
	CHECK_EQ(hoard_s3_url_parse("s3://bucket/a/../r1", &b, &p), -EINVAL);
	CHECK_EQ(hoard_s3_url_parse("s3://bucket/./r1", &b, &p), -EINVAL);
	CHECK_EQ(hoard_s3_url_parse("s3://bucket/a/..", &b, &p), -EINVAL);
	CHECK_EQ(hoard_s3_url_parse("s3://bucket/a//r1", &b, &p), -EINVAL);
	CHECK_EQ(hoard_s3_url_parse("s3://bucket//r1", &b, &p), -EINVAL);
	CHECK(!strcmp(b, "untouched") && !strcmp(p, "untouched"));
	{
		char err[256] = "";

		CHECK_EQ(hoard_s3_url_split("s3://bk/x", &b, &p, err,
					    sizeof(err)),
			 -EINVAL);
		CHECK(strstr(err, "needs 3 to 63") != NULL);
		CHECK_EQ(hoard_s3_url_split("s3://bucket/a/../r1", &b, &p, err,
					    sizeof(err)),
			 -EINVAL);
		CHECK(strstr(err, "dot segment '..'") != NULL);
		CHECK_EQ(hoard_s3_url_split("s3://bucket/v1.2/..x/", &b, &p,
					    err, sizeof(err)),
			 0);
		CHECK(!strcmp(p, "v1.2/..x/"));
		free(b);
		free(p);
	}

	CHECK_EQ(hoard_s3_endpoint_check("http://127.0.0.1:9000"), 0);
	CHECK_EQ(hoard_s3_endpoint_check("https://s3.example.com/"), 0);
	CHECK_EQ(hoard_s3_endpoint_check("HTTP://minio:9000/"), 0);
	CHECK_EQ(hoard_s3_endpoint_check("http://[::1]:9000"), 0);
	CHECK_EQ(hoard_s3_endpoint_check("ftp://host"), -EINVAL);
	CHECK_EQ(hoard_s3_endpoint_check("http://"), -EINVAL);
	CHECK_EQ(hoard_s3_endpoint_check("http://host:0"), -EINVAL);
	CHECK_EQ(hoard_s3_endpoint_check("http://host:65536"), -EINVAL);
	CHECK_EQ(hoard_s3_endpoint_check("http://host:"), -EINVAL);
	CHECK_EQ(hoard_s3_endpoint_check("http://host/path"), -EINVAL);
	CHECK_EQ(hoard_s3_endpoint_check("http://u:p@host"), -EINVAL);
	CHECK_EQ(hoard_s3_endpoint_check("http://host?x=1"), -EINVAL);
	CHECK_EQ(hoard_s3_endpoint_check("host:9000"), -EINVAL);
}

/* ---- config files ------------------------------------------------------ */

static char home[256];

static void write_text(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", home, rel);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
}

static void clear_env(void)
{
	static const char *vars[] = {
		"AWS_ACCESS_KEY_ID",   "AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN",   "AWS_REGION",
		"AWS_DEFAULT_REGION",  "AWS_ENDPOINT_URL_S3",
		"AWS_ENDPOINT_URL",    "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
		"AWS_CONFIG_FILE",     "AWS_MAX_ATTEMPTS",
		"AWS_CA_BUNDLE",
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

static int load(struct hoard_s3_config *cfg, char *err)
{
	err[0] = '\0';
	hoard_s3_config_clear(cfg);
	return hoard_s3_config_load(cfg, err, 256);
}

static bool str_is(const char *s, const char *want)
{
	if (!s || !want)
		return s == want;
	return strcmp(s, want) == 0;
}

static void test_config(void)
{
	struct hoard_s3_config cfg = {0};
	char err[256], dir[512];

	snprintf(home, sizeof(home), "%s/hoard-s3sig-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!CHECK(mkdtemp(home) != NULL))
		return;
	snprintf(dir, sizeof(dir), "%s/.aws", home);
	CHECK_EQ(mkdir(dir, 0700), 0);
	clear_env();
	setenv("HOME", home, 1);

	/* Nothing anywhere. */
	CHECK_EQ(load(&cfg, err), -ENOKEY);
	CHECK(strstr(err, "no AWS credentials") != NULL);

	/* The default profile from both files, with the usual noise. */
	write_text(".aws/credentials",
		   "# comment\r\n"
		   "; another\n"
		   "[other]\n"
		   "aws_access_key_id = OTHERKEY\n"
		   "aws_secret_access_key = othersecret\n"
		   "\n"
		   "[default]\r\n"
		   "AWS_ACCESS_KEY_ID=AKIDDEFAULT\r\n"
		   "aws_secret_access_key =  sec/ret+default=  \r\n");
	write_text(".aws/config", "[default]\n"
				  "region = eu-west-3\n"
				  "s3 =\n"
				  "  region = wrong-nested\n"
				  "  endpoint_url = http://nested.invalid\n"
				  "endpoint_url = http://127.0.0.1:9000/\n"
				  "[profile dev]\n"
				  "region: ap-south-1\n"
				  "ca_bundle = /etc/dev-ca.pem\n"
				  "max_attempts = 7\n"
				  "[dev]\n"
				  "region = not-a-profile-section-in-config\n");
	CHECK_EQ(load(&cfg, err), 0);
	CHECK(str_is(cfg.access_key_id, "AKIDDEFAULT"));
	CHECK(str_is(cfg.secret_access_key, "sec/ret+default="));
	CHECK(str_is(cfg.session_token, NULL));
	CHECK(str_is(cfg.region, "eu-west-3"));
	CHECK(str_is(cfg.endpoint, "http://127.0.0.1:9000"));
	CHECK_EQ(cfg.max_attempts, HOARD_S3_DEFAULT_ATTEMPTS);

	/* A named profile: [dev] in credentials, [profile dev] in config. */
	write_text(".aws/credentials", "[dev]\n"
				       "aws_access_key_id = AKIDDEV\n"
				       "aws_secret_access_key = devsecret\n"
				       "aws_session_token = devtoken//+=\n");
	setenv("AWS_PROFILE", "dev", 1);
	CHECK_EQ(load(&cfg, err), 0);
	CHECK(str_is(cfg.access_key_id, "AKIDDEV"));
	CHECK(str_is(cfg.session_token, "devtoken//+="));
	CHECK(str_is(cfg.region, "ap-south-1"));
	CHECK(str_is(cfg.endpoint, NULL));
	CHECK_EQ(cfg.max_attempts, 7);
	CHECK(str_is(cfg.ca_bundle, "/etc/dev-ca.pem"));

	/* The environment wins over the files, for each setting. */
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
	setenv("AWS_ENDPOINT_URL", "https://s3.example.com", 1);
	setenv("AWS_MAX_ATTEMPTS", "2", 1);
	setenv("AWS_CA_BUNDLE", "/etc/env-ca.pem", 1);
	CHECK_EQ(load(&cfg, err), 0);
	CHECK(str_is(cfg.ca_bundle, "/etc/env-ca.pem"));
	CHECK(str_is(cfg.access_key_id, "AKIDENV"));
	CHECK(str_is(cfg.secret_access_key, "envsecret"));
	CHECK(str_is(cfg.session_token, NULL)); /* not the file's */
	CHECK(str_is(cfg.region, "us-west-1"));
	CHECK(str_is(cfg.endpoint, "https://s3.example.com"));
	CHECK_EQ(cfg.max_attempts, 2);
	setenv("AWS_SESSION_TOKEN", "envtoken", 1);
	setenv("AWS_REGION", "us-west-2", 1);
	setenv("AWS_ENDPOINT_URL_S3", "http://localhost:4566", 1);
	CHECK_EQ(load(&cfg, err), 0);
	CHECK(str_is(cfg.session_token, "envtoken"));
	CHECK(str_is(cfg.region, "us-west-2"));
	CHECK(str_is(cfg.endpoint, "http://localhost:4566"));

	/* Half a key pair, bad values: errors that name the problem. */
	unsetenv("AWS_SECRET_ACCESS_KEY");
	CHECK_EQ(load(&cfg, err), -EINVAL);
	CHECK(strstr(err, "AWS_SECRET_ACCESS_KEY") != NULL);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	setenv("AWS_ENDPOINT_URL_S3", "localhost:4566", 1);
	CHECK_EQ(load(&cfg, err), -EINVAL);
	CHECK(strstr(err, "endpoint") != NULL);
	unsetenv("AWS_ENDPOINT_URL_S3");
	setenv("AWS_MAX_ATTEMPTS", "0", 1);
	CHECK_EQ(load(&cfg, err), -EINVAL);
	CHECK(strstr(err, "envsecret") == NULL);
	unsetenv("AWS_MAX_ATTEMPTS");

	/* A profile that exists nowhere is an error, even with env keys. */
	setenv("AWS_PROFILE", "nosuch", 1);
	CHECK_EQ(load(&cfg, err), -ENOENT);
	CHECK(strstr(err, "nosuch") != NULL);

	/* Other file locations; "~/" is HOME. */
	clear_env();
	write_text("creds2", "[default]\naws_access_key_id=AK2\n"
			     "aws_secret_access_key=SK2\n");
	write_text("conf2", "[default]\nregion=sa-east-1\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "~/creds2", 1);
	snprintf(dir, sizeof(dir), "%s/conf2", home);
	setenv("AWS_CONFIG_FILE", dir, 1);
	CHECK_EQ(load(&cfg, err), 0);
	CHECK(str_is(cfg.access_key_id, "AK2"));
	CHECK(str_is(cfg.region, "sa-east-1"));

	/* Keys only in the config file count too; the default region. */
	clear_env();
	write_text(".aws/credentials", "");
	write_text(".aws/config", "[default]\naws_access_key_id=AK3\n"
				  "aws_secret_access_key=SK3\n");
	CHECK_EQ(load(&cfg, err), 0);
	CHECK(str_is(cfg.access_key_id, "AK3"));
	CHECK(str_is(cfg.region, HOARD_S3_DEFAULT_REGION));

	hoard_s3_config_clear(&cfg);
	hoard_s3_config_clear(NULL);
	clear_env();
	for (size_t i = 0; i < 4; i++) {
		static const char *files[] = {".aws/credentials", ".aws/config",
					      "creds2", "conf2"};

		snprintf(dir, sizeof(dir), "%s/%s", home, files[i]);
		unlink(dir);
	}
	snprintf(dir, sizeof(dir), "%s/.aws", home);
	rmdir(dir);
	rmdir(home);
}

/* ---- encoding and signing ---------------------------------------------- */

static void check_encode(const char *in, bool keep_slash, const char *want)
{
	char *out;

	if (!CHECK_EQ(hoard_s3_uri_encode(in, strlen(in), keep_slash, &out), 0))
		return;
	if (!CHECK(strcmp(out, want) == 0))
		fprintf(stderr, "  '%s' -> '%s', want '%s'\n", in, out, want);
	free(out);
}

static void test_encoding(void)
{
	struct hoard_s3_param ps[] = {
		{"prefix", "a b/c+d~é"},
		{"list-type", "2"},
		{"continuation-token", "x/y+z=="},
		{"delimiter", "/"},
		{"uploads", NULL},
		{"a", "2"},
		{"a", "1"},
		{"B", ""},
	};
	char *q;

	check_encode("", false, "");
	check_encode("AZaz09-._~", false, "AZaz09-._~");
	check_encode("a b", false, "a%20b");
	check_encode("a+b=c&d", false, "a%2Bb%3Dc%26d");
	check_encode("dir/file", false, "dir%2Ffile");
	check_encode("dir/file", true, "dir/file");
	check_encode("é", true, "%C3%A9");
	check_encode("!'()*", true, "%21%27%28%29%2A");
	check_encode("%20", true, "%2520");
	check_encode("a//b/./c/../", true, "a//b/./c/../");
	check_encode("\x01\x7f\xff", true, "%01%7F%FF");

	CHECK_EQ(hoard_s3_canonical_query(ps, sizeof(ps) / sizeof(ps[0]), &q),
		 0);
	CHECK(strcmp(q, "B=&a=1&a=2&continuation-token=x%2Fy%2Bz%3D%3D&"
			"delimiter=%2F&list-type=2&prefix=a%20b%2Fc%2Bd~%C3%A9&"
			"uploads=") == 0);
	free(q);
	CHECK_EQ(hoard_s3_canonical_query(NULL, 0, &q), 0);
	CHECK(strcmp(q, "") == 0);
	free(q);
}

/* AWS's documented example: GET /test.txt with a Range header. */
static void test_sigv4_aws_example(void)
{
	static const char *empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649"
				   "b934ca495991b7852b855";
	struct hoard_s3_header hs[] = {
		{"Host", "examplebucket.s3.amazonaws.com"},
		{"Range", "bytes=0-9"},
		{"x-amz-content-sha256", empty},
		{"x-amz-date", "20130524T000000Z"},
	};
	struct hoard_s3_sign_input in = {
		.method = "GET",
		.canonical_uri = "/test.txt",
		.canonical_query = "",
		.headers = hs,
		.n_headers = 4,
		.payload_hash = empty,
		.amz_date = "20130524T000000Z",
		.region = "us-east-1",
		.service = "s3",
		.access_key_id = "AKIAIOSFODNN7EXAMPLE",
		.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	};
	struct hoard_s3_signature sig;

	if (!CHECK_EQ(hoard_s3_sign(&in, &sig), 0))
		return;
	CHECK(strcmp(sig.canonical_request,
		     "GET\n/test.txt\n\n"
		     "host:examplebucket.s3.amazonaws.com\n"
		     "range:bytes=0-9\n"
		     "x-amz-content-sha256:"
		     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7"
		     "852b855\n"
		     "x-amz-date:20130524T000000Z\n\n"
		     "host;range;x-amz-content-sha256;x-amz-date\n"
		     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7"
		     "852b855") == 0);
	CHECK(strcmp(sig.string_to_sign, "AWS4-HMAC-SHA256\n20130524T000000Z\n"
					 "20130524/us-east-1/s3/aws4_request\n"
					 "7344ae5b7ee6c3e7e6b0fe0640412a37625d1"
					 "fbfff95c48bbb2dc43964946972") == 0);
	CHECK(strcmp(sig.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170"
				    "aba48dd91039c6036bdb41") == 0);
	CHECK(strcmp(sig.authorization, "AWS4-HMAC-SHA256 "
					"Credential=AKIAIOSFODNN7EXAMPLE/"
					"20130524/us-east-1/s3/aws4_request, "
					"SignedHeaders=host;range;x-amz-"
					"content-sha256;x-amz-date, "
					"Signature="
					"f0e8bdb87c964420e857bd35b5d6ed310bd44f"
					"0170aba48dd91039c6036bdb41") == 0);
	/* The secret is in none of the outputs. */
	CHECK(!strstr(sig.canonical_request, in.secret_access_key) &&
	      !strstr(sig.string_to_sign, in.secret_access_key) &&
	      !strstr(sig.authorization, in.secret_access_key));
	hoard_s3_signature_clear(&sig);
	hoard_s3_signature_clear(NULL);

	/* Header order and case do not matter; bad input is refused. */
	struct hoard_s3_header rev[] = {
		hs[3], hs[2], {"RANGE", "  bytes=0-9 "}, hs[0]};
	in.headers = rev;
	CHECK_EQ(hoard_s3_sign(&in, &sig), 0);
	CHECK(strcmp(sig.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170"
				    "aba48dd91039c6036bdb41") == 0);
	hoard_s3_signature_clear(&sig);
	in.amz_date = "2013-05-24";
	CHECK_EQ(hoard_s3_sign(&in, &sig), -EINVAL);
	in.amz_date = "20130524T000000Z";
	rev[2].value = "bytes=0-9\r\nX-Injected: 1";
	CHECK_EQ(hoard_s3_sign(&in, &sig), -EINVAL);
}

static void test_sigv4_botocore(void)
{
	size_t n = sizeof(sigv4_vectors) / sizeof(sigv4_vectors[0]);

	for (size_t i = 0; i < n; i++) {
		const struct sigv4_vector *v = &sigv4_vectors[i];
		struct hoard_s3_param ps[8];
		struct hoard_s3_header hs[8];
		struct hoard_s3_signature sig;
		char hash[HOARD_SHA256_HEX_SIZE], *q, *key, *uri;
		size_t j;

		for (j = 0; j < v->n_query; j++)
			ps[j] = (struct hoard_s3_param){v->query[j][0],
							v->query[j][1]};
		for (j = 0; j < v->n_headers; j++)
			hs[j] = (struct hoard_s3_header){v->headers[j][0],
							 v->headers[j][1]};
		CHECK_EQ(hoard_s3_canonical_query(ps, v->n_query, &q), 0);
		CHECK_EQ(
			hoard_s3_uri_encode(v->key, strlen(v->key), true, &key),
			0);
		CHECK(asprintf(&uri, "%s%s/%s", v->bucket ? "/" : "",
			       v->bucket ? v->bucket : "", key) > 0);
		hoard_sha256_hex(v->payload, v->payload_len, hash);
		struct hoard_s3_sign_input in = {
			.method = v->method,
			.canonical_uri = uri,
			.canonical_query = q,
			.headers = hs,
			.n_headers = v->n_headers,
			.payload_hash = hash,
			.amz_date = SIGV4_DATE,
			.region = "us-east-1",
			.service = "s3",
			.access_key_id = SIGV4_AK,
			.secret_access_key = SIGV4_SK,
		};
		if (CHECK_EQ(hoard_s3_sign(&in, &sig), 0)) {
			bool ok = CHECK(strcmp(sig.canonical_request,
					       v->canonical_request) == 0);

			ok &= CHECK(strcmp(sig.string_to_sign,
					   v->string_to_sign) == 0);
			ok &= CHECK(strcmp(sig.signature, v->signature) == 0);
			if (!ok)
				fprintf(stderr,
					"vector %s:\n--- ours\n%s\n--- "
					"botocore\n%s\n",
					v->name, sig.canonical_request,
					v->canonical_request);
			hoard_s3_signature_clear(&sig);
		}
		free(q);
		free(key);
		free(uri);
	}
	CHECK(n >= 15);
}

/* ---- XML ---------------------------------------------------------------- */

struct collected {
	int n;
	char keys[8][64];
	uint64_t sizes[8];
	char etags[8][40];
	int64_t mtimes[8];
	bool prefix[8];
	int stop_at;
};

static int collect(const struct hoard_s3_entry *e, void *arg)
{
	struct collected *c = arg;

	if (c->n >= 8)
		return -E2BIG;
	snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s", e->key);
	snprintf(c->etags[c->n], sizeof(c->etags[0]), "%s", e->etag);
	c->sizes[c->n] = e->size;
	c->mtimes[c->n] = e->last_modified;
	c->prefix[c->n] = e->is_prefix;
	c->n++;
	return c->n == c->stop_at ? 42 : 0;
}

static int parse(const char *doc, struct collected *c, bool *trunc,
		 char **token)
{
	memset(c, 0, sizeof(*c));
	*token = NULL;
	return s3_list_page_parse(doc, strlen(doc), collect, c, trunc, token);
}

static void test_xml(void)
{
	static const char page[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult "
		"xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>b</Name><Prefix/><KeyCount>2</KeyCount><MaxKeys>2</"
		"MaxKeys>"
		"<IsTruncated>true</IsTruncated>"
		"<NextContinuationToken>tok/+=&amp;</NextContinuationToken>"
		"<Contents><Key>a &amp; b &lt;c&gt; &#233;&#x20AC;</Key>"
		"<LastModified>2013-05-24T00:00:01.000Z</LastModified>"
		"<ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag>"
		"<Size>42</Size><StorageClass>STANDARD</StorageClass></"
		"Contents>\n"
		"<Contents>\n  <Key>second</Key>\n  <Size>0</Size>\n"
		"  <ETag>\"x-2\"</ETag>\n</Contents>"
		"<CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes>"
		"</ListBucketResult>";
	static const char url_page[] =
		"<ListBucketResult><EncodingType>url</EncodingType>"
		"<IsTruncated>false</IsTruncated>"
		"<Contents><Key>a+b%2Bc%20%C3%A9</Key><Size>1</Size></Contents>"
		"<CommonPrefixes><Prefix>p%2Fq/</Prefix></CommonPrefixes>"
		"</ListBucketResult>";
	static const char *bad[] = {
		"<Error/>",
		"<ListBucketResult><Contents><Size>1</Size></Contents></"
		"ListBucketResult>",
		"<ListBucketResult><Contents><Key>a<b>x</b></Key></Contents></"
		"ListBucketResult>",
		"<ListBucketResult><Contents><Key>a&bogus;</Key></Contents></"
		"ListBucketResult>",
		"<ListBucketResult><Contents><Key>a&#0;</Key></Contents></"
		"ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></"
		"Contents></ListBucketResult>",
		"<ListBucketResult><IsTruncated>true</IsTruncated></"
		"ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key>",
		/* not well-formed, or not what S3 sends */
		"<ListBucketResult><Contents><Key>k</Key></Contents>"
		"</ListBucketResult><junk/>",
		"<ListBucketResult><Contents><Key>k</Key></Contents>"
		"</ListBucketResul>",
		"<!DOCTYPE l [<!ENTITY e \"x\">]><ListBucketResult><Contents>"
		"<Key>&e;</Key></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>\xff</Key></Contents>"
		"</ListBucketResult>",
		"<Other><ListBucketResult></ListBucketResult></Other>",
		"",
	};
	static const char err_doc[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Error><Code>NoSuchKey</Code><Message>The specified "
		"key does not exist.</Message><Key>k</Key></Error>";
	struct collected c;
	bool trunc;
	char *token, code[16], msg[64];

	CHECK_EQ(parse(page, &c, &trunc, &token), 0);
	CHECK_EQ(c.n, 3);
	CHECK(!strcmp(c.keys[0], "a & b <c> \xc3\xa9\xe2\x82\xac"));
	CHECK_EQ(c.sizes[0], 42);
	CHECK_EQ(c.mtimes[0], 1369353601);
	CHECK(!strcmp(c.etags[0], "0123456789abcdef0123456789abcdef"));
	CHECK(!strcmp(c.keys[1], "second") && c.sizes[1] == 0 &&
	      c.mtimes[1] == -1 && !strcmp(c.etags[1], "x-2"));
	CHECK(!strcmp(c.keys[2], "dir/") && c.prefix[2] && !c.prefix[0]);
	CHECK(trunc && token && !strcmp(token, "tok/+=&"));
	free(token);

	memset(&c, 0, sizeof(c));
	c.stop_at = 1;
	CHECK_EQ(s3_list_page_parse(page, strlen(page), collect, &c, &trunc,
				    &token),
		 42);

	CHECK_EQ(parse(url_page, &c, &trunc, &token), 0);
	CHECK(c.n == 2 && !strcmp(c.keys[0], "a b+c \xc3\xa9") &&
	      !strcmp(c.keys[1], "p/q/"));
	CHECK(!trunc && token == NULL);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(bad[i], &c, &trunc, &token);

		if (!CHECK_EQ(r, -EBADMSG))
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		free(token);
	}

	s3_xml_error(err_doc, strlen(err_doc), code, sizeof(code), msg,
		     sizeof(msg));
	CHECK(!strcmp(code, "NoSuchKey"));
	CHECK(!strcmp(msg, "The specified key does not exist."));
	s3_xml_error("not xml", 7, code, sizeof(code), msg, sizeof(msg));
	CHECK(!code[0] && !msg[0]);
	/* the old scanner's leniency is gone: a truncated document */
	s3_xml_error(err_doc, strlen(err_doc) - 3, code, sizeof(code), msg,
		     sizeof(msg));
	CHECK(!code[0] && !msg[0]);
	/* <KeyCount> is not <Key>; a <Key> outside <Contents> is not one */
	CHECK_EQ(parse("<ListBucketResult><KeyCount>1</KeyCount><Key>x</Key>"
		       "<Contents><Owner><Key>o</Key></Owner><Key>k</Key>"
		       "</Contents></ListBucketResult>",
		       &c, &trunc, &token),
		 0);
	CHECK(c.n == 1 && !strcmp(c.keys[0], "k"));
	CHECK_EQ(s3_parse_iso8601("1970-01-01T00:00:00Z"), 0);
	CHECK_EQ(s3_parse_iso8601("2013-05-24T00:00:01.5Z"), 1369353601);
	CHECK_EQ(s3_parse_iso8601("yesterday"), -1);
}

/*
 * Fuzz-style: every truncation and many single-byte changes of recorded S3
 * answers either parse to the same result or are refused (-EBADMSG), except
 * changes inside a field's own text, which may parse to other values.
 * Never a crash (the ASan build runs this too).
 */
static void result_text(const struct collected *c, bool trunc,
			const char *token, char *out, size_t size)
{
	size_t off = (size_t)snprintf(out, size, "n=%d t=%d tok=%s;", c->n,
				      trunc, token ? token : "-");

	for (int i = 0; i < c->n && off < size; i++)
		off += (size_t)snprintf(
			out + off, size - off, "%s|%llu|%s|%lld|%d;",
			c->keys[i], (unsigned long long)c->sizes[i],
			c->etags[i], (long long)c->mtimes[i], c->prefix[i]);
}

/* mask[i]: byte i is inside the text of a field the parser reads. */
static void value_mask(const char *doc, size_t n, bool *mask)
{
	static const char *fields[] = {
		"Key",		"Size",
		"LastModified", "ETag",
		"Prefix",	"Code",
		"Message",	"IsTruncated",
		"EncodingType", "NextContinuationToken",
	};
	char open[64], close[64];

	memset(mask, 0, n);
	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
		const char *p = doc, *a, *b;

		snprintf(open, sizeof(open), "<%s>", fields[f]);
		snprintf(close, sizeof(close), "</%s>", fields[f]);
		while ((a = strstr(p, open)) && (b = strstr(a, close))) {
			for (const char *q = a + strlen(open); q < b; q++)
				mask[q - doc] = true;
			p = b + strlen(close);
		}
	}
}

static int fuzz_parse(const char *doc, size_t n, char *out, size_t size)
{
	struct collected c;
	bool trunc = false;
	char *token = NULL;
	int r;

	memset(&c, 0, sizeof(c));
	r = s3_list_page_parse(doc, n, collect, &c, &trunc, &token);
	if (r == 0)
		result_text(&c, trunc, token, out, size);
	free(token);
	return r;
}

static void fuzz_one(const char *doc, bool is_error)
{
	static const uint8_t xors[] = {0x01, 0x02, 0x04, 0x08, 0x10,
				       0x20, 0x40, 0x80, 0xff};
	static const char sets[] = {'<', '>', '&', '/', '"', ';', '\0', ' '};
	size_t n = strlen(doc);
	char want[2048], got[2048], code[64], msg[128], wcode[64], wmsg[128];
	char *buf = malloc(n + 1);
	bool *mask = malloc(n);
	int r, tried = 0, refused = 0;

	if (!CHECK(buf && mask))
		goto out;
	value_mask(doc, n, mask);
	if (is_error) {
		s3_xml_error(doc, n, wcode, sizeof(wcode), wmsg, sizeof(wmsg));
		CHECK(wcode[0] && wmsg[0]);
	} else {
		CHECK_EQ(fuzz_parse(doc, n, want, sizeof(want)), 0);
	}
	/* every truncation: refused (the root's end tag is last) */
	for (size_t k = 0; k < n; k++) {
		memcpy(buf, doc, k);
		if (is_error) {
			s3_xml_error(buf, k, code, sizeof(code), msg,
				     sizeof(msg));
			CHECK(!code[0] && !msg[0]);
		} else {
			CHECK_EQ(fuzz_parse(buf, k, got, sizeof(got)),
				 -EBADMSG);
		}
	}
	/* single-byte changes at every offset */
	for (size_t i = 0; i < n; i++) {
		for (size_t v = 0; v < sizeof(xors) + sizeof(sets); v++) {
			memcpy(buf, doc, n);
			buf[i] = v < sizeof(xors) ? (char)(doc[i] ^ xors[v])
						  : sets[v - sizeof(xors)];
			if (buf[i] == doc[i])
				continue;
			tried++;
			if (is_error) {
				s3_xml_error(buf, n, code, sizeof(code), msg,
					     sizeof(msg));
				if (!code[0] && !msg[0])
					refused++;
				else if (!mask[i] &&
					 !CHECK(!strcmp(code, wcode) &&
						!strcmp(msg, wmsg)))
					fprintf(stderr, "  offset %zu\n", i);
				continue;
			}
			r = fuzz_parse(buf, n, got, sizeof(got));
			if (r == -EBADMSG) {
				refused++;
				continue;
			}
			if (!CHECK_EQ(r, 0))
				continue;
			if (!mask[i] && !CHECK(!strcmp(got, want)))
				fprintf(stderr,
					"  offset %zu byte %02x:\n  got  %s\n"
					"  want %s\n",
					i, (uint8_t)buf[i], got, want);
		}
	}
	/* the test can fail: most changes break the document */
	CHECK(refused > tried / 4);
out:
	free(buf);
	free(mask);
}

static void test_xml_fuzz(void)
{
	/* As tests/e2e/s3server.py and AWS answer (recorded). */
	static const char page[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult "
		"xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>bk</Name><Prefix>x/</Prefix><KeyCount>2</KeyCount>"
		"<MaxKeys>2</MaxKeys><Delimiter>/</Delimiter>"
		"<IsTruncated>true</IsTruncated>"
		"<ContinuationToken>c1</ContinuationToken>"
		"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy"
		"4vbOwM=</NextContinuationToken>"
		"<Contents><Key>x/chunks/ab&amp;cd</Key>"
		"<LastModified>2009-10-12T17:50:30.000Z</LastModified>"
		"<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>"
		"<Size>434234</Size><StorageClass>STANDARD</StorageClass>"
		"</Contents>"
		"<Contents><Key>x/refs/main</Key>"
		"<LastModified>2009-10-12T17:50:31.000Z</LastModified>"
		"<ETag>\"3858f62230ac3c915f300c664312c11f-2\"</ETag>"
		"<Size>12</Size></Contents>"
		"<CommonPrefixes><Prefix>x/vols/</Prefix></CommonPrefixes>"
		"</ListBucketResult>";
	static const char url_page[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult><EncodingType>url</EncodingType>"
		"<IsTruncated>false</IsTruncated>"
		"<Contents><Key>a+b%2Bc%20%C3%A9</Key><Size>1</Size></Contents>"
		"</ListBucketResult>";
	static const char err_doc[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Error><Code>SignatureDoesNotMatch</Code><Message>The request "
		"signature we calculated does not match the signature you "
		"provided.</Message><RequestId>4442587FB7D0A2F9</RequestId>"
		"</Error>";

	fuzz_one(page, false);
	fuzz_one(url_page, false);
	fuzz_one(err_doc, true);
}

int main(void)
{
	test_sha256();
	test_hmac();
	test_md5_base64();
	test_urls();
	test_config();
	test_encoding();
	test_sigv4_aws_example();
	test_sigv4_botocore();
	test_xml();
	test_xml_fuzz();
	return CHECK_DONE();
}
