// SPDX-License-Identifier: MIT
/*
 * hoard config / pin / unpin (budget_cmds.h): the size budget's settings.
 * Messages follow hoard.c: one line "hoard: <message>" on stderr per
 * failure; exit 0 success, 1 runtime error, 2 usage error.
 *
 * config reads and writes the store setting max_size (docs/FORMAT.md 2.1):
 * through the daemon's control socket when hoardfs serves the store (the
 * daemon applies a new value at once), else on the store directly.
 *
 * pin and unpin set and remove the xattr user.hoard.pin (evict.h) on paths
 * of a mounted hoard volume; the daemon keeps it in the store like any
 * xattr, so pins persist, and the eviction pass reads them.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "hoard/ctl.h"
#include "hoard/json.h"
#include "hoard/evict.h"
#include "hoard/store.h"
#include "hoard/util.h"
#include "budget_cmds.h"
#include "cli.h"
#include "key_cmds.h"

/* clang-format off */
static const char config_help[] =
"Usage: hoard config [--store DIR] [--json] [max-size [SIZE|none]]\n"
"       hoard config [--store DIR] trust [PUBFILE...|none]\n"
"\n"
"Show or change the store's settings.  trust: the public keys (.pub files\n"
"of 'hoard key generate') whose signed refs pulls accept; once set, every\n"
"pull into this store (CLI or daemon) refuses unsigned refs and refs\n"
"signed by other keys (exit 3).  PUBFILE... replaces the list, none\n"
"removes it; each line of output is a key id and the key.\n"
"\n"
"max-size is the size budget: when the store's stored bytes (hoard stats) pass SIZE, the\n"
"daemon removes the least recently used files until they are at or under\n"
"90% of SIZE.  Open files and pinned ones (hoard pin) are never removed.\n"
"SIZE takes K, M, G and T suffixes (powers of 1024); 'none' removes the\n"
"budget.  hoardfs --max-size overrides the setting.  While hoardfs serves\n"
"the store, the daemon stores and applies a new value at once.\n"
"\n"
"  hoard config                  show every setting\n"
"  hoard config max-size         show the budget (bytes, or none)\n"
"  hoard config max-size 20G     set it\n"
"  hoard config max-size none    remove it\n"
"  hoard config trust ci.pub     accept only refs signed by ci's key\n"
"\n"
"Exit status: 0 done; 1 runtime error; 2 usage error (bad value).\n";

static const char pin_help[] =
"Usage: hoard pin PATH...\n"
"       hoard unpin PATH...\n"
"\n"
"Exempt files, or whole trees, of a mounted hoard volume from the size\n"
"budget: a pinned file is never removed, and pinning a directory exempts\n"
"every file below it, including files made there later.  A pin is the\n"
"extended attribute user.hoard.pin, kept in the store, so it lasts across\n"
"restarts; 'getfattr -n user.hoard.pin PATH' shows it.  unpin removes the\n"
"pin (a path that was not pinned is left as it is).\n"
"\n"
"Exit status: 0 done; 1 a path could not be pinned or unpinned (one line\n"
"each: not found, not on a hoard mount); 2 usage error.\n";
/* clang-format on */

/* ---- config ---- */

static int print_size(const char *what, uint64_t v, bool json)
{
	if (json) {
		char *t = hoard_json_dump(
			json_pack("{s:o}", what, hoard_json_u64(v)), true);

		if (!t)
			return cli_fail("%s", strerror(ENOMEM));
		fputs(t, stdout);
		free(t);
	} else if (v) {
		printf("max-size %llu\n", (unsigned long long)v);
	} else {
		printf("max-size none\n");
	}
	return 0;
}

static int config_daemon(const char *sock, const char *value, bool json,
			 bool *ret_no_daemon)
{
	char req[128], *reply = NULL;
	int r;

	snprintf(req, sizeof(req), "config max-size%s%s", value ? " " : "",
		 value ? value : "");
	r = hoard_ctl_call(sock, req, &reply);
	*ret_no_daemon = (r == -ENOENT || r == -ECONNREFUSED) && !reply;
	if (*ret_no_daemon)
		return 0;
	if (r < 0) {
		r = reply ? cli_fail("the hoardfs daemon refused: %s", reply)
			  : cli_fail("cannot ask the hoardfs daemon on %s: %s",
				     sock, strerror(-r));
		free(reply);
		return r;
	}
	if (json) {
		fputs(reply, stdout);
	} else {
		/* the daemon's answer to "config max-size [V]" (FORMAT 6) */
		json_t *o = hoard_json_parse_object(reply);
		uint64_t max = 0, in_force = 0;
		bool over = false;

		if (!o || hoard_json_get_u64(o, "max_size", false, &max) < 0 ||
		    hoard_json_get_u64(o, "in_force", false, &in_force) < 0 ||
		    hoard_json_get_bool(o, "overridden", false, &over) < 0) {
			json_decref(o);
			free(reply);
			return cli_fail("the daemon's config reply is not "
					"understood");
		}
		json_decref(o);
		print_size("max_size", max, false);
		if (over)
			printf("(the running daemon uses --max-size %llu)\n",
			       (unsigned long long)in_force);
	}
	free(reply);
	return cli_finish_output();
}

static int config_offline(const char *store, const char *value, uint64_t max,
			  bool json)
{
	struct hoard_store *st;
	char err[512] = "";
	uint64_t cur;
	int r;

	r = hoard_store_open(store, &st, err, sizeof(err));
	if (r < 0)
		return *err ? cli_fail("%s", err)
			    : cli_fail("%s: %s", store, strerror(-r));
	if (value)
		r = hoard_budget_set(st, max);
	if (r == 0)
		r = hoard_budget_get(st, &cur);
	hoard_store_close(st);
	if (r < 0)
		return cli_fail("%s the size budget of %s: %s",
				value ? "setting" : "reading", store,
				strerror(-r));
	r = print_size("max_size", cur, json);
	return r ? r : cli_finish_output();
}

int hoard_cmd_config(const char **store, int argc, char **argv)
{
	const char *key, *value = NULL;
	char *sock;
	bool json = false, no_daemon;
	uint64_t max = 0;
	int r;

	r = cli_parse("config", config_help, store, argc, argv, &json, NULL,
		      true);
	if (r >= 0)
		return r;
	key = optind < argc ? argv[optind] : NULL;
	if (key && !strcmp(key, "trust"))
		return hoard_cmd_config_trust(*store, argc - optind,
					      argv + optind);
	if (key && strcmp(key, "max-size"))
		return cli_usage_error("config: unknown setting '%s' (the "
				       "settings are max-size and trust)",
				       key);
	if (key && optind + 1 < argc)
		value = argv[optind + 1];
	if (key && optind + 2 < argc)
		return cli_usage_error("config: unexpected argument '%s'",
				       argv[optind + 2]);
	if (value && strcmp(value, "none")) {
		if (hoard_parse_size(value, &max) < 0)
			return cli_usage_error(
				"config: bad max-size '%s': "
				"expected a size such as 500M or "
				"20G, or none",
				value);
		if (!max)
			return cli_usage_error(
				"config: bad max-size '%s': the "
				"budget must be more than 0 (none "
				"removes it)",
				value);
	}
	if (asprintf(&sock, "%s/%s", *store, CTL_SOCKET) < 0)
		return cli_fail("%s", strerror(ENOMEM));
	r = config_daemon(sock, value, json, &no_daemon);
	free(sock);
	if (!no_daemon)
		return r;
	return config_offline(*store, value, max, json);
}

/* ---- pin / unpin ---- */

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] &&
		    s[3]) {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

/* 1 when the (resolved) path is on a hoard mount, 0 when not, -errno. */
static int on_hoard(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192], mp[4096], type[256];
	size_t best = 0;
	bool hoard = false;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		const char *dash = strstr(line, " - ");
		size_t n;

		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    sscanf(dash + 3, "%255s", type) != 1)
			continue;
		unescape(mp);
		n = strlen(mp);
		if (strncmp(path, mp, n) ||
		    (n > 1 && path[n] != '/' && path[n] != 0))
			continue;
		if (n >= best) { /* later mounts stack over earlier ones */
			best = n;
			hoard = !strcmp(type, "fuse.hoard");
		}
	}
	fclose(f);
	return hoard;
}

static int pin_one(const char *path, bool pin)
{
	char real[PATH_MAX];
	int r;

	if (!realpath(path, real))
		return cli_fail("%s: %s", path, strerror(errno));
	r = on_hoard(real);
	if (r < 0)
		return cli_fail("%s: reading the mount table: %s", path,
				strerror(-r));
	if (r == 0)
		return cli_fail("%s: not on a mounted hoard volume", path);
	if (pin)
		r = setxattr(real, HOARD_PIN_XATTR, "1", 1, 0);
	else
		r = removexattr(real, HOARD_PIN_XATTR);
	if (r < 0 && !(!pin && errno == ENODATA))
		return cli_fail("%s: cannot %s: %s", path,
				pin ? "pin" : "unpin", strerror(errno));
	return 0;
}

static int pin_cmd(const char *cmd, const char **store, int argc, char **argv,
		   bool pin)
{
	int r, status = EXIT_SUCCESS;

	r = cli_parse(cmd, pin_help, store, argc, argv, NULL, NULL, true);
	if (r >= 0)
		return r;
	if (optind >= argc)
		return cli_usage_error("%s: no path given", cmd);
	for (int i = optind; i < argc; i++) {
		if (pin_one(argv[i], pin))
			status = EXIT_FAILURE;
	}
	return status;
}

int hoard_cmd_pin(const char **store, int argc, char **argv)
{
	return pin_cmd("pin", store, argc, argv, true);
}

int hoard_cmd_unpin(const char **store, int argc, char **argv)
{
	return pin_cmd("unpin", store, argc, argv, false);
}
