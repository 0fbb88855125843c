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
"Every chunk is tried (twice when the remote answers at all); a file\n"
"that is still not fully local afterwards is named on stderr with the\n"
"number of its chunks and bytes missing and the first missing chunk.\n"
"\n"
"Exit status: 0 every file is local; 1 a file is not (a chunk could not\n"
"be fetched: the remote is unreachable or lacks it), or no daemon serves\n"
"the store; 2 usage error.\n";
/* clang-format on */

static unsigned long long *inos;
static char **paths; /* of inos[i] */
static size_t n_inos, cap_inos, cap_paths;

static int add_ino(const char *path, const struct stat *sb)
{
	void *x;

	if (!S_ISREG(sb->st_mode))
		return 0;
	x = hoard_grow(inos, &cap_inos, n_inos + 1, sizeof(*inos), 64);
	if (!x)
		return -1;
	inos = x;
	x = hoard_grow(paths, &cap_paths, n_inos + 1, sizeof(*paths), 64);
	if (!x)
		return -1;
	paths = x;
	paths[n_inos] = strdup(path);
	if (!paths[n_inos])
		return -1;
	inos[n_inos++] = (unsigned long long)sb->st_ino;
	return 0;
}

static int walk_one(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)ftw;
	return flag == FTW_F ? add_ino(path, sb) : 0;
}

static const char *path_of(unsigned long long ino, size_t from, size_t to)
{
	for (size_t k = from; k < to && k < n_inos; k++)
		if (inos[k] == ino)
			return paths[k];
	return "?";
}

/* The "missing INO N OF BYTES CHUNK ERRNO" lines after the JSON line of a
 * reply (docs/FORMAT.md 6), one stderr line each.  Returns their count. */
static unsigned long long report_missing(const char *reply, size_t from,
					 size_t to)
{
	unsigned long long n = 0;

	for (const char *l = strchr(reply, '\n'); l && l[1];
	     l = strchr(l + 1, '\n')) {
		unsigned long long ino, miss, chunks, bytes;
		char id[64];
		int err;

		if (sscanf(l + 1, "missing %llu %llu %llu %llu %63s %d", &ino,
			   &miss, &chunks, &bytes, id, &err) != 6)
			continue;
		fprintf(stderr,
			"hoard: prefetch: %s: %llu of %llu chunks (%llu bytes) "
			"not fetched, the first chunk %s: %s\n",
			path_of(ino, from, to), miss, chunks, bytes, id,
			err == ECANCELED ? "not tried, the remote looked down"
			: err == ENODATA ? "not local and in no pack"
					 : strerror(err));
		n++;
	}
	return n;
}

int hoard_cmd_prefetch(const char **store, int argc, char **argv)
{
	unsigned long long bytes = 0, files = 0, missing = 0;
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
			if (add_ino(argv[i], &sb))
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
		char *nl;
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
		/* one JSON line, then "missing ..." lines (FORMAT 6) */
		nl = strchr(reply, '\n');
		if (nl)
			*nl = '\0';
		o = hoard_json_parse_object(reply);
		if (nl)
			*nl = '\n';
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
		missing += report_missing(reply, i, i + BATCH);
		free(reply);
	}
	free(sock);
	free(inos);
	for (size_t i = 0; i < n_inos; i++)
		free(paths[i]);
	free(paths);
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
	r = cli_finish_output();
	if (missing)
		return cli_fail("prefetch: %llu of %llu files not fully local "
				"(named above)",
				missing, missing + files);
	return r;
}
