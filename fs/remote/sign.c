// SPDX-License-Identifier: MIT
/*
 * sign: Ed25519 through OpenSSL's libcrypto, the key files and the store's
 * trust setting (sign.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "hoard/digest.h"
#include "hoard/sign.h"
#include "hoard/util.h"

#define SECRET_HEAD "hoard-secret-key 1 ed25519 "
#define PUBLIC_HEAD "hoard-public-key 1 ed25519 "
#define LINE_LEN    (sizeof(SECRET_HEAD) - 1 + 64 + 1) /* with the '\n' */

_Static_assert(sizeof(SECRET_HEAD) == sizeof(PUBLIC_HEAD),
	       "both key lines have one length");

void hoard_sign_key_wipe(struct hoard_sign_key *k)
{
	if (k)
		OPENSSL_cleanse(k, sizeof(*k));
}

int hoard_sign_from_seed(const uint8_t *seed, struct hoard_sign_key *ret)
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
						    seed, HOARD_SIGN_SEED_SIZE);
	size_t n = HOARD_SIGN_PUB_SIZE;
	int r = 0;

	if (!pk)
		return -EINVAL;
	if (EVP_PKEY_get_raw_public_key(pk, ret->pub.b, &n) != 1 ||
	    n != HOARD_SIGN_PUB_SIZE)
		r = -EINVAL;
	else
		memcpy(ret->seed, seed, HOARD_SIGN_SEED_SIZE);
	EVP_PKEY_free(pk);
	return r;
}

int hoard_sign_generate(struct hoard_sign_key *ret)
{
	uint8_t seed[HOARD_SIGN_SEED_SIZE];
	int r;

	if (RAND_priv_bytes(seed, sizeof(seed)) != 1)
		return -EIO;
	r = hoard_sign_from_seed(seed, ret);
	OPENSSL_cleanse(seed, sizeof(seed));
	return r;
}

int hoard_sign(const struct hoard_sign_key *k, const void *msg, size_t len,
	       uint8_t ret_sig[HOARD_SIGN_SIG_SIZE])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
						    k->seed, sizeof(k->seed));
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = HOARD_SIGN_SIG_SIZE;
	int r = -ENOMEM;

	if (!pk || !ctx)
		goto out;
	r = -EINVAL;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) != 1 ||
	    EVP_DigestSign(ctx, ret_sig, &n, msg, len) != 1 ||
	    n != HOARD_SIGN_SIG_SIZE)
		goto out;
	r = 0;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return r;
}

int hoard_sign_verify(const struct hoard_pubkey *pub, const void *msg,
		      size_t len, const uint8_t sig[HOARD_SIGN_SIG_SIZE])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
						   pub->b, sizeof(pub->b));
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int r = -ENOMEM;

	if (!ctx)
		goto out;
	r = -EBADMSG; /* a point that is not on the curve, too */
	if (!pk || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) != 1)
		goto out;
	if (EVP_DigestVerify(ctx, sig, HOARD_SIGN_SIG_SIZE, msg, len) == 1)
		r = 0;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return r;
}

void hoard_sign_key_id(const struct hoard_pubkey *pub,
		       char ret[HOARD_SIGN_ID_SIZE])
{
	char hex[HOARD_SHA256_HEX_SIZE];

	hoard_sha256_hex(pub->b, sizeof(pub->b), hex);
	memcpy(ret, hex, HOARD_SIGN_ID_SIZE - 1);
	ret[HOARD_SIGN_ID_SIZE - 1] = '\0';
}

/* ---- key files ------------------------------------------------------------ */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int hoard_sign_hex32(const char *hex, uint8_t ret[32])
{
	for (int i = 0; i < 32; i++) {
		int hi = hexval(hex[2 * i]), lo;

		if (hi < 0)
			return -EINVAL;
		lo = hexval(hex[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		ret[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[64] == '\0' ? 0 : -EINVAL;
}

/* The 32 bytes of a key line "HEAD<64 hex>[\n]". */
static int parse_line(const char *head, const char *text, size_t len,
		      uint8_t ret[32])
{
	size_t hl = strlen(head);
	char hex[65];

	if (len == hl + 65 && text[len - 1] == '\n')
		len--;
	if (len != hl + 64 || memcmp(text, head, hl))
		return -EINVAL;
	memcpy(hex, text + hl, 64);
	hex[64] = '\0';
	return hoard_sign_hex32(hex, ret);
}

int hoard_sign_key_parse(const char *text, size_t len,
			 struct hoard_sign_key *ret)
{
	uint8_t seed[HOARD_SIGN_SEED_SIZE];
	int r = parse_line(SECRET_HEAD, text, len, seed);

	if (r == 0)
		r = hoard_sign_from_seed(seed, ret);
	OPENSSL_cleanse(seed, sizeof(seed));
	return r;
}

int hoard_sign_pub_parse(const char *text, size_t len, struct hoard_pubkey *ret)
{
	struct hoard_pubkey k;
	EVP_PKEY *pk;

	if (parse_line(PUBLIC_HEAD, text, len, k.b) < 0)
		return -EINVAL;
	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k.b,
					 sizeof(k.b));
	if (!pk)
		return -EINVAL;
	EVP_PKEY_free(pk);
	*ret = k;
	return 0;
}

/* The line of a key into out (LINE_LEN + 1 bytes). */
static void key_line(const char *head, const uint8_t *b, char *out)
{
	char hex[65];

	hoard_hex(b, 32, hex);
	snprintf(out, LINE_LEN + 1, "%s%s\n", head, hex);
	OPENSSL_cleanse(hex, sizeof(hex));
}

static int write_new(const char *path, mode_t mode, const char *text)
{
	size_t n = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	int r;

	if (fd < 0)
		return -errno;
	r = hoard_pwrite_full(fd, text, n, 0);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlink(path);
	return r;
}

int hoard_sign_key_write(const char *path, const struct hoard_sign_key *k,
			 char *errbuf, size_t errlen)
{
	char line[LINE_LEN + 1], *pub = NULL;
	int r;

	if (asprintf(&pub, "%s.pub", path) < 0)
		return -ENOMEM;
	if (access(pub, F_OK) == 0) {
		r = hoard_errf(errbuf, errlen, -EEXIST,
			       "%s exists: a key is never overwritten", pub);
		goto out;
	}
	key_line(SECRET_HEAD, k->seed, line);
	r = write_new(path, 0600, line);
	OPENSSL_cleanse(line, sizeof(line));
	if (r < 0) {
		hoard_errf(errbuf, errlen, r,
			   r == -EEXIST
				   ? "%s exists: a key is never overwritten"
				   : "writing %s: %s",
			   path, strerror(-r));
		goto out;
	}
	key_line(PUBLIC_HEAD, k->pub.b, line);
	r = write_new(pub, 0644, line);
	if (r < 0) {
		unlink(path);
		hoard_errf(errbuf, errlen, r, "writing %s: %s", pub,
			   strerror(-r));
	}
out:
	free(pub);
	return r;
}

/* A key file's text (at most 256 bytes) into buf. */
static int read_small(const char *path, char *buf, size_t cap, size_t *ret_len,
		      char *errbuf, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return hoard_errf(errbuf, errlen, -errno, "%s: %s", path,
				  strerror(errno));
	n = hoard_pread_full(fd, buf, cap, 0);
	close(fd);
	if (n < 0)
		return hoard_errf(errbuf, errlen, (int)n, "%s: %s", path,
				  strerror((int)-n));
	*ret_len = (size_t)n;
	return 0;
}

int hoard_sign_key_load(const char *path, struct hoard_sign_key *ret,
			char *errbuf, size_t errlen)
{
	char buf[256];
	size_t n = 0;
	int r = read_small(path, buf, sizeof(buf), &n, errbuf, errlen);

	if (r < 0)
		return r;
	r = hoard_sign_key_parse(buf, n, ret);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (r < 0)
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "%s is not a hoard secret key (made by "
				  "'hoard key generate')",
				  path);
	return 0;
}

int hoard_sign_pub_load(const char *path, struct hoard_pubkey *ret,
			char *errbuf, size_t errlen)
{
	char buf[256];
	size_t n = 0;
	int r = read_small(path, buf, sizeof(buf), &n, errbuf, errlen);

	if (r < 0)
		return r;
	if (n >= sizeof(SECRET_HEAD) - 1 &&
	    !memcmp(buf, SECRET_HEAD, sizeof(SECRET_HEAD) - 1)) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "%s is a secret key: give its .pub file",
				  path);
	}
	if (hoard_sign_pub_parse(buf, n, ret) < 0)
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "%s is not a hoard public key (a .pub file "
				  "of 'hoard key generate')",
				  path);
	return 0;
}
