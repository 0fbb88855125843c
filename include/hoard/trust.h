/* SPDX-License-Identifier: MIT */
/*
 * trust: the store's trust setting (docs/FORMAT.md 2.1: `trust`), the
 * public keys whose signed refs a pull accepts (REMOTE.md 6.1).  Above the
 * store and sign: the format module sign.c reads no store.
 *
 * Threads: each call is one store read or one synced batch; the caller
 * serializes concurrent writers (the daemon's control thread, or the CLI
 * on a store it opened alone).
 */
#ifndef HOARD_TRUST_H
#define HOARD_TRUST_H

#include <stddef.h>

#include "hoard/sign.h"

struct hoard_store;
/* *ret (malloc()ed, NULL when none) and *ret_n: the trusted keys. */
int hoard_trust_get(struct hoard_store *st, struct hoard_pubkey **ret,
		    size_t *ret_n);
/* Replace the setting (n == 0 deletes it); n <= HOARD_TRUST_MAX. */
int hoard_trust_set(struct hoard_store *st, const struct hoard_pubkey *keys,
		    size_t n);

/*
 * The `config trust` request (the daemon's control socket, and the CLI on a
 * store it opened): args "" reads the setting, "none" deletes it, else
 * space-separated 64-hex public keys replace it.  *ret_out (malloc()ed)
 * lists the keys in force, one line each "<key id> <64 hex>", or "none";
 * -EINVAL (with *ret_out a message) for bad args.
 */
int hoard_trust_request(struct hoard_store *st, const char *args,
			char **ret_out);

#endif
