// SPDX-License-Identifier: MIT
/*
 * hoard prefetch (lazy_cmds.h).  Every PATH (a file, or a directory: every
 * regular file below it) of a volume that the hoardfs daemon of --store
 * serves is made fully local: the daemon fetches each chunk that is not
 * local from the store's remote (docs/FORMAT.md 6, `prefetch`).  The inode
 * number st_ino of a file on a hoard mount is its store inode.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hoard/ctl.h"
#include "hoard/json.h"
#include "hoard/util.h"
#include "cli.h"
#include "lazy_cmds.h"

#define PREFETCH_TIMEOUT_S (7 * 86400)
#define BATCH		   64 /* inodes per request */

/* clang-format off */
static const char prefetch_help[] =
"Usage: hoard prefetch [--store DIR] [--json] PATH...\n"
"\n"
"Make files of a lazily pulled volume (hoard pull --lazy) fully local, so\n"
"that they read without the remote (an offline host).  PATH is a file or\n"
"a directory (every regular file below it) on a volume that hoardfs\n"
"serves from DIR; the daemon fetches every chunk that is not local.\n"
"\n"
"Exit status: 0 every file is local; 1 a chunk could not be fetched (the\n"
"remote is unreachable) or no daemon serves the store; 2 usage error.\n";
/* clang-format on */

static unsigned long long *inos;
static size_t n_inos, cap_inos;

static int add_ino(const struct stat *sb)
{
	void *x;

	if (!S_ISREG(sb->st_mode))
		return 0;
	x = hoard_grow(inos, &cap_inos, n_inos + 1, sizeof(*inos), 64);
	if (!x)
		return -1;
	inos = x;
	inos[n_inos++] = (unsigned long long)sb->st_ino;
	return 0;
}

static int walk_one(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	return flag == FTW_F ? add_ino(sb) : 0;
}

int hoard_cmd_prefetch(const char **store, int argc, char **argv)
{
	unsigned long long bytes = 0, files = 0;
	char *sock = NULL;
	bool json = false;
	int r;

	r = cli_parse("prefetch", prefetch_help, store, argc, argv, &json, NULL,
		      true);
	if (r >= 0)
		return r;
	if (optind >= argc)
		return cli_usage_error("prefetch: no path given");
	for (int i = optind; i < argc; i++) {
		struct stat sb;

		if (stat(argv[i], &sb) < 0)
			return cli_fail("prefetch: %s: %s", argv[i],
					strerror(errno));
		if (S_ISDIR(sb.st_mode)) {
			if (nftw(argv[i], walk_one, 16, FTW_PHYS | FTW_MOUNT))
				return cli_fail("prefetch: walking %s: %s",
						argv[i], strerror(errno));
		} else if (S_ISREG(sb.st_mode)) {
			if (add_ino(&sb))
				return cli_fail("prefetch: %s",
						strerror(ENOMEM));
		}
	}
	if (asprintf(&sock, "%s/%s", *store, CTL_SOCKET) < 0)
		return cli_fail("prefetch: %s", strerror(ENOMEM));
	for (size_t i = 0; i < n_inos; i += BATCH) {
		char req[32 + BATCH * 21], *reply = NULL;
		size_t len = (size_t)snprintf(req, sizeof(req), "prefetch");
		uint64_t b = 0, f = 0;
		json_t *o;

		for (size_t k = i; k < n_inos && k < i + BATCH; k++)
			len += (size_t)snprintf(req + len, sizeof(req) - len,
						" %llu", inos[k]);
		r = hoard_ctl_call_timeout(sock, req, PREFETCH_TIMEOUT_S,
					   &reply);
		if (r < 0) {
			r = cli_fail("prefetch: %s",
				     reply ? reply
				     : r == -ENOENT || r == -ECONNREFUSED
					     ? "no hoardfs daemon serves the "
					       "store (see --store)"
					     : strerror(-r));
			free(reply);
			free(sock);
			return r;
		}
		o = hoard_json_parse_object(reply);
		if (!o || hoard_json_get_u64(o, "files", false, &f) < 0 ||
		    hoard_json_get_u64(o, "fetched_bytes", false, &b) < 0) {
			json_decref(o);
			free(reply);
			free(sock);
			return cli_fail("prefetch: the daemon's reply is not "
					"understood");
		}
		json_decref(o);
		files += f;
		bytes += b;
		free(reply);
	}
	free(sock);
	free(inos);
	if (json) {
		char *t = hoard_json_dump(
			json_pack("{s:o,s:o}", "files", hoard_json_u64(files),
				  "fetched_bytes", hoard_json_u64(bytes)),
			true);

		if (!t)
			return cli_fail("prefetch: %s", strerror(ENOMEM));
		fputs(t, stdout);
		free(t);
	} else {
		printf("%llu files local; %llu bytes fetched\n", files, bytes);
	}
	return cli_finish_output();
}
