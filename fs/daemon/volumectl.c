/* SPDX-License-Identifier: MIT */
/* volumectl: see volumectl.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hoard/sync.h"
#include "hoard/util.h"
#include "hoard/volume.h"
#include "hoard/volumectl.h"

#define MAX_WORDS 5

/* Split a copy of req at spaces into at most MAX_WORDS words. */
static int split(const char *req, char **ret_copy, char *w[MAX_WORDS],
		 int *ret_n)
{
	char *copy = strdup(req), *save = NULL, *p;
	int n = 0;

	if (!copy)
		return -ENOMEM;
	for (p = strtok_r(copy, " ", &save); p;
	     p = strtok_r(NULL, " ", &save)) {
		if (n == MAX_WORDS) {
			free(copy);
			return -EINVAL;
		}
		w[n++] = p;
	}
	*ret_copy = copy;
	*ret_n = n;
	return 0;
}

static const char *mounted(const struct hoard_volume_hooks *h, const char *name)
{
	return h && h->mountpoint ? h->mountpoint(h->ud, name) : NULL;
}

static int req_ls(struct hoard_fs *fs, const struct hoard_volume_hooks *h,
		  char **ret_out)
{
	struct hoard_volume_info *v = NULL;
	json_t *arr = json_array(), *o = NULL;
	size_t n = 0;
	char *s;
	int r = arr ? hoard_volume_list(fs, &v, &n) : -ENOMEM;

	for (size_t i = 0; r == 0 && i < n; i++) {
		const char *mp = mounted(h, v[i].name);
		json_t *e = json_pack("{s:s, s:I, s:o}", "name", v[i].name,
				      "root", (json_int_t)v[i].root,
				      "mountpoint",
				      mp ? json_string(mp) : json_null());

		if (!e || json_array_append_new(arr, e) < 0)
			r = -ENOMEM;
	}
	free(v);
	if (r == 0) {
		o = json_pack("{s:O}", "volumes", arr);
		s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (!s || asprintf(ret_out, "%s\n", s) < 0)
			r = -ENOMEM;
		free(s);
	}
	json_decref(o);
	json_decref(arr);
	if (r < 0)
		*ret_out = strdup(strerror(-r));
	return r;
}

/* "volume create NAME": made empty (0755 root:root) unless it exists. */
static int req_create(struct hoard_fs *fs, const char *name, char **ret_out)
{
	bool had;
	uint64_t root;
	json_t *o;
	char *s;
	int r;

	if (!hoard_fs_volume_name_ok(name)) {
		*ret_out = strdup("not a volume name (1-64 of A-Z a-z 0-9 . _ "
				  "-, not starting with '.')");
		return -EINVAL;
	}
	had = hoard_fs_volume(fs, name, false, &root) == 0;
	r = hoard_fs_volume(fs, name, true, &root);
	if (r < 0) {
		*ret_out = strdup(strerror(-r));
		return r;
	}
	o = json_pack("{s:s, s:I, s:b}", "volume", name, "root",
		      (json_int_t)root, "created", !had);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s || asprintf(ret_out, "%s\n", s) < 0)
		*ret_out = NULL;
	free(s);
	return *ret_out ? 0 : -ENOMEM;
}

static int reply_err(int r, const char *err, char **ret_out)
{
	*ret_out = strdup(*err ? err : strerror(-r));
	return r;
}

int hoard_volume_request(struct hoard_fs *fs, const char *req,
			 const struct hoard_volume_hooks *h, char **ret_out)
{
	struct hoard_volume_result vr;
	struct hoard_sync_result sr;
	char *copy = NULL, *w[MAX_WORDS], err[1024] = "";
	int n = 0, r = split(req, &copy, w, &n);
	const char *mp;

	*ret_out = NULL;
	if (r == 0 && (n < 2 || strcmp(w[0], "volume")))
		r = -EINVAL;
	if (r < 0)
		goto out_malformed;
	if (!strcmp(w[1], "ls") && n == 2) {
		r = req_ls(fs, h, ret_out);
	} else if (!strcmp(w[1], "clone") && n == 4) {
		r = hoard_volume_clone(fs, w[2], w[3], &vr, err, sizeof(err));
		if (r < 0)
			r = reply_err(r, err, ret_out);
		else
			hoard_log(LOG_INFO,
				  "volume '%s' cloned to '%s': %llu inodes, "
				  "%llu chunks shared, %.3f s",
				  w[2], w[3], (unsigned long long)vr.inodes,
				  (unsigned long long)vr.chunks, vr.seconds);
		if (r == 0)
			*ret_out = hoard_volume_result_json("clone", w[3], &vr);
	} else if (!strcmp(w[1], "create") && n == 3) {
		r = req_create(fs, w[2], ret_out);
	} else if (!strcmp(w[1], "rm") && n == 3) {
		mp = mounted(h, w[2]);
		if (mp) {
			r = -EBUSY;
			if (asprintf(ret_out,
				     "volume '%s' is mounted at %s: unmount it "
				     "first (fusermount3 -u %s)",
				     w[2], mp, mp) < 0)
				*ret_out = NULL;
			goto out;
		}
		r = hoard_volume_remove(fs, w[2], &vr, err, sizeof(err));
		if (r < 0)
			r = reply_err(r, err, ret_out);
		else
			*ret_out = hoard_volume_result_json("rm", w[2], &vr);
		if (r == 0)
			hoard_log(LOG_INFO,
				  "volume '%s' removed: %llu inodes, %llu "
				  "chunks freed",
				  w[2], (unsigned long long)vr.inodes,
				  (unsigned long long)vr.chunks_freed);
	} else if (!strcmp(w[1], "merge") && n == 4) {
		r = hoard_sync_merge(fs, w[2], w[3], h ? h->changed : NULL,
				     w[3], &sr, err, sizeof(err));
		if (r < 0)
			r = reply_err(r, err, ret_out);
		else
			*ret_out = hoard_sync_result_json(&sr);
		if (r == 0)
			hoard_log(LOG_INFO,
				  "volume '%s' merged into '%s': %llu added, "
				  "%llu replaced",
				  w[2], w[3], (unsigned long long)sr.added,
				  (unsigned long long)sr.replaced);
	} else {
		r = -EINVAL;
		goto out_malformed;
	}
	if (r == 0 && !*ret_out)
		r = -ENOMEM;
	goto out;
out_malformed:
	*ret_out = strdup("malformed volume request (volume ls | create NAME "
			  "| clone SRC DST | rm NAME | merge SRC DST)");
out:
	free(copy);
	return r;
}
