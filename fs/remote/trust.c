// SPDX-License-Identifier: MIT
/*
 * trust: the store's trust setting (trust.h, docs/FORMAT.md 2.1), read and
 * written in the store; the keys and their text are sign's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/sign.h"
#include "hoard/store.h"
#include "hoard/trust.h"
#include "hoard/util.h"

#define TRUST_KEY "trust"

int hoard_trust_get(struct hoard_store *st, struct hoard_pubkey **ret,
		    size_t *ret_n)
{
	void *v = NULL;
	size_t len;
	int r = hoard_store_get(st, HOARD_CF_DEFAULT, TRUST_KEY,
				strlen(TRUST_KEY), &v, &len);

	*ret = NULL;
	*ret_n = 0;
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (len == 0 || len % HOARD_SIGN_PUB_SIZE ||
	    len / HOARD_SIGN_PUB_SIZE > HOARD_TRUST_MAX) {
		free(v);
		return -EBADMSG;
	}
	*ret = v;
	*ret_n = len / HOARD_SIGN_PUB_SIZE;
	return 0;
}

int hoard_trust_set(struct hoard_store *st, const struct hoard_pubkey *keys,
		    size_t n)
{
	struct hoard_batch *b;
	int r;

	if (n > HOARD_TRUST_MAX)
		return -E2BIG;
	b = hoard_batch_new(st);
	if (!b)
		return -ENOMEM;
	if (n)
		hoard_batch_put(b, HOARD_CF_DEFAULT, TRUST_KEY,
				strlen(TRUST_KEY), keys,
				n * sizeof(struct hoard_pubkey));
	else
		hoard_batch_delete(b, HOARD_CF_DEFAULT, TRUST_KEY,
				   strlen(TRUST_KEY));
	r = hoard_store_write(st, b, true);
	hoard_batch_free(b);
	return r;
}

int hoard_trust_request(struct hoard_store *st, const char *args,
			char **ret_out)
{
	struct hoard_pubkey keys[HOARD_TRUST_MAX], *cur = NULL;
	size_t n = 0, len = 0;
	char *text = NULL;
	FILE *f;
	int r = 0;

	*ret_out = NULL;
	if (!strcmp(args, "none")) {
		r = hoard_trust_set(st, NULL, 0);
	} else if (*args) {
		for (const char *p = args; *p;) {
			char hex[65];
			size_t w = strcspn(p, " ");

			if (w != 64 || n == HOARD_TRUST_MAX) {
				*ret_out = strdup("config trust takes up to 64 "
						  "public keys (64 hex "
						  "digits each) or none");
				return -EINVAL;
			}
			memcpy(hex, p, 64);
			hex[64] = '\0';
			if (hoard_sign_hex32(hex, keys[n].b) < 0) {
				*ret_out = strdup("config trust: a key is not "
						  "64 lower-case hex digits");
				return -EINVAL;
			}
			n++;
			p += w;
			p += *p == ' ';
		}
		r = hoard_trust_set(st, keys, n);
	}
	if (r == 0)
		r = hoard_trust_get(st, &cur, &n);
	if (r < 0)
		return r;
	f = open_memstream(&text, &len);
	if (!f) {
		free(cur);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		char id[HOARD_SIGN_ID_SIZE], hex[65];

		hoard_sign_key_id(&cur[i], id);
		hoard_hex(cur[i].b, 32, hex);
		fprintf(f, "%s %s\n", id, hex);
	}
	if (!n)
		fputs("none\n", f);
	free(cur);
	if (fclose(f) != 0) {
		free(text);
		return -ENOMEM;
	}
	*ret_out = text;
	return 0;
}
