// SPDX-License-Identifier: MIT
/*
 * hoard key generate FILE: an Ed25519 key pair for signed refs (sign.h).
 * hoard config trust [PUBFILE...|none]: the store's trusted keys (FORMAT.md
 * 2.1), through the daemon's control socket when hoardfs serves the store,
 * else on the store directly; both run hoard_trust_request().
 *
 * Exit status: 0 done, 1 runtime error (a key file exists, the store cannot
 * be opened), 2 usage error (not a public key file).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/ctl.h"
#include "hoard/sign.h"
#include "hoard/store.h"
#include "hoard/trust.h"
#include "hoard/util.h"
#include "cli.h"
#include "key_cmds.h"

/* clang-format off */
static const char key_help[] =
"Usage: hoard key generate FILE\n"
"\n"
"Make an Ed25519 key pair for signing refs: the secret key goes to FILE\n"
"(mode 0600) and the public key to FILE.pub.  Neither file may exist: a\n"
"key is never overwritten.  Sign a push with 'hoard push URL --sign FILE';\n"
"give FILE.pub to the hosts that should accept only your refs\n"
"('hoard pull URL --trust FILE.pub', or 'hoard config trust FILE.pub').\n"
"Keep FILE off every host that runs untrusted jobs.\n"
"\n"
"Files: one line each, 'hoard-secret-key 1 ed25519 <64 hex>' (the 32-byte\n"
"seed) and 'hoard-public-key 1 ed25519 <64 hex>' (docs/REMOTE.md 6.1).\n"
"\n"
"Exit status: 0 done; 1 a file exists or cannot be written; 2 usage.\n";
/* clang-format on */

int hoard_cmd_key(const char **store, int argc, char **argv)
{
	struct hoard_sign_key k;
	char err[512] = "", id[HOARD_SIGN_ID_SIZE];
	int r = cli_parse("key", key_help, store, argc, argv, NULL, NULL, true);

	if (r >= 0)
		return r;
	if (optind >= argc || strcmp(argv[optind], "generate"))
		return cli_usage_error("key: expected 'generate FILE'");
	if (optind + 1 >= argc)
		return cli_usage_error("key generate: which FILE?");
	if (optind + 2 < argc)
		return cli_usage_error("key generate: unexpected argument '%s'",
				       argv[optind + 2]);
	r = hoard_sign_generate(&k);
	if (r < 0)
		return cli_fail("key generate: %s", strerror(-r));
	r = hoard_sign_key_write(argv[optind + 1], &k, err, sizeof(err));
	hoard_sign_key_id(&k.pub, id);
	hoard_sign_key_wipe(&k);
	if (r < 0)
		return cli_fail("key generate: %s", *err ? err : strerror(-r));
	printf("key %s: secret key in %s, public key in %s.pub\n", id,
	       argv[optind + 1], argv[optind + 1]);
	return cli_finish_output();
}

int hoard_cmd_config_trust(const char *store, int argc, char **argv)
{
	struct hoard_store *st;
	char *args = NULL, *sock = NULL, *out = NULL, err[512] = "";
	size_t len = 0;
	FILE *f = open_memstream(&args, &len);
	int r;

	if (!f)
		return cli_fail("%s", strerror(ENOMEM));
	for (int i = 1; i < argc; i++) {
		struct hoard_pubkey k;
		char hex[65];

		if (!strcmp(argv[i], "none") && argc == 2) {
			fputs("none", f);
			break;
		}
		if (hoard_sign_pub_load(argv[i], &k, err, sizeof(err)) < 0) {
			fclose(f);
			free(args);
			return cli_usage_error("config trust: %s", err);
		}
		hoard_hex(k.b, sizeof(k.b), hex);
		fprintf(f, "%s%s", i > 1 ? " " : "", hex);
	}
	if (fclose(f) != 0 || asprintf(&sock, "%s/control.sock", store) < 0) {
		free(args);
		return cli_fail("%s", strerror(ENOMEM));
	}
	{
		char req[16 + 65 * HOARD_TRUST_MAX];

		snprintf(req, sizeof(req), "config trust%s%s", *args ? " " : "",
			 args);
		r = hoard_ctl_call(sock, req, &out);
	}
	free(sock);
	if ((r == -ENOENT || r == -ECONNREFUSED) && !out) {
		r = hoard_store_open(store, &st, err, sizeof(err));
		if (r < 0) {
			free(args);
			return *err ? cli_fail("%s", err)
				    : cli_fail("%s: %s", store, strerror(-r));
		}
		r = hoard_trust_request(st, args, &out);
		hoard_store_close(st);
	}
	free(args);
	if (r < 0) {
		r = cli_fail("config trust: %s", out ? out : strerror(-r));
		free(out);
		return r;
	}
	fputs(out, stdout);
	free(out);
	return cli_finish_output();
}
