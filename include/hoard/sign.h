/* SPDX-License-Identifier: MIT */
/*
 * sign: Ed25519 keys and signatures for refs (docs/REMOTE.md section 6.1),
 * and the key files of `hoard key generate` (the store's trust setting is
 * trust.h's).  Uses util, digest and OpenSSL's libcrypto, which does all
 * the cryptography (EVP_PKEY_ED25519, EVP_DigestSign / EVP_DigestVerify
 * with no digest).
 *
 * Key files, one line of text each:
 *   FILE      "hoard-secret-key 1 ed25519 <64 hex: the 32-byte seed>\n"
 *   FILE.pub  "hoard-public-key 1 ed25519 <64 hex: the 32-byte key>\n"
 * A key id (for messages and ls-remote) is the first 16 hex digits of the
 * SHA-256 of the 32-byte public key.
 *
 * Thread contract: no shared state; every function may run on any thread.
 */
#ifndef HOARD_SIGN_H
#define HOARD_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOARD_SIGN_PUB_SIZE  32
#define HOARD_SIGN_SEED_SIZE 32
#define HOARD_SIGN_SIG_SIZE  64
#define HOARD_SIGN_ID_SIZE   17 /* 16 hex digits + NUL */
#define HOARD_TRUST_MAX	     64 /* keys in the store's trust setting */

struct hoard_pubkey {
	uint8_t b[HOARD_SIGN_PUB_SIZE];
};
struct hoard_sign_key {
	uint8_t seed[HOARD_SIGN_SEED_SIZE]; /* the secret */
	struct hoard_pubkey pub;
};

/* A fresh key pair from the kernel's CSPRNG (through libcrypto). */
int hoard_sign_generate(struct hoard_sign_key *ret);
/* The key pair of a seed (the public half derived); 0 or -EINVAL. */
int hoard_sign_from_seed(const uint8_t *seed, struct hoard_sign_key *ret);
/* Sign len bytes at msg. */
int hoard_sign(const struct hoard_sign_key *k, const void *msg, size_t len,
	       uint8_t ret_sig[HOARD_SIGN_SIG_SIZE]);
/* 0 when sig is pub's signature of msg, -EBADMSG when not, -ENOMEM. */
int hoard_sign_verify(const struct hoard_pubkey *pub, const void *msg,
		      size_t len, const uint8_t sig[HOARD_SIGN_SIG_SIZE]);
/* 16 hex digits naming the key. */
void hoard_sign_key_id(const struct hoard_pubkey *pub,
		       char ret[HOARD_SIGN_ID_SIZE]);
/* Wipe a secret key (not optimized away); accepts NULL. */
void hoard_sign_key_wipe(struct hoard_sign_key *k);

/* ---- key files ---------------------------------------------------------- */

/* Write path (the secret, mode 0600) and path.pub (0644), both created
 * exclusively: -EEXIST (explained) when either exists; on any error
 * neither is left behind. */
int hoard_sign_key_write(const char *path, const struct hoard_sign_key *k,
			 char *errbuf, size_t errlen);
/* Read a secret key file; -EINVAL (explained) when it is not one. */
int hoard_sign_key_load(const char *path, struct hoard_sign_key *ret,
			char *errbuf, size_t errlen);
/* Read a public key file (a secret key file is refused: it must not be
 * handed around); -EINVAL (explained) when it is not one. */
int hoard_sign_pub_load(const char *path, struct hoard_pubkey *ret,
			char *errbuf, size_t errlen);
/* Parse the one-line texts (a trailing '\n' is optional). */
int hoard_sign_key_parse(const char *text, size_t len,
			 struct hoard_sign_key *ret);
int hoard_sign_pub_parse(const char *text, size_t len,
			 struct hoard_pubkey *ret);
/* 64 hex digits <-> 32 bytes (the words of the control socket). */
int hoard_sign_hex32(const char *hex, uint8_t ret[32]);

#endif
