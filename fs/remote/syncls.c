// SPDX-License-Identifier: MIT
/*
 * syncls: `hoard ls-remote` and the config fetch of `hoard init --from`
 * (sync.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hoard/json.h"
#include "hoard/util.h"
#include "sync-internal.h"

/* ---- init --from, ls-remote ------------------------------------------------------ */

int hoard_sync_fetch_config(const struct hoard_s3_config *s3, const char *url,
			    struct hoard_remote_config *ret, char *errbuf,
			    size_t errlen)
{
	struct remote r;
	int e = remote_open(&r, s3, url, 1, errbuf, errlen);

	if (e == 0)
		e = remote_get_config(&r, ret, errbuf, errlen);
	remote_close(&r);
	return e;
}

struct refs {
	struct remote *r;
	const struct hoard_pubkey *trust;
	size_t n_trust;
	char **keys;
	size_t n, cap;
};

static int list_ref_cb(const struct hoard_s3_entry *e, void *arg)
{
	struct refs *l = arg;
	void *x;

	if (e->is_prefix)
		return 0;
	x = hoard_grow(l->keys, &l->cap, l->n + 1, sizeof(*l->keys), 16);
	if (!x)
		return -ENOMEM;
	l->keys = x;
	l->keys[l->n] = strdup(e->key);
	return l->keys[l->n++] ? 0 : -ENOMEM;
}

/* What ls-remote says of a ref's signature: "unsigned", "valid",
 * "trusted" (valid, by a trusted key), "untrusted" (valid, another key
 * while some are trusted) or "invalid"; the key id into id. */
static const char *sig_state(const struct refs *l, const struct hoard_ref *rf,
			     const char *volume, const char *name,
			     char id[HOARD_SIGN_ID_SIZE])
{
	struct hoard_ref_site site;

	*id = '\0';
	if (!rf->is_signed)
		return "unsigned";
	hoard_sign_key_id(&rf->key, id);
	remote_ref_site(l->r, volume, name, &site);
	if (hoard_ref_verify(rf, &site) < 0)
		return "invalid";
	if (!l->n_trust)
		return "valid";
	for (size_t i = 0; i < l->n_trust; i++)
		if (!memcmp(l->trust[i].b, rf->key.b, sizeof(rf->key.b)))
			return "trusted";
	return "untrusted";
}

/* One ref: a row of the table on out, or an object appended to arr. */
static int ls_one(struct refs *l, const char *key, json_t *arr, FILE *out)
{
	struct remote *r = l->r;
	char id[HOARD_SIGN_ID_SIZE];
	const char *sig;
	const char *name = key + strlen(r->prefix) + strlen("refs/");
	struct hoard_s3_object_info info = {0};
	struct hoard_ref rf;
	char when[32] = "?", *mkey;
	void *buf;
	size_t len;
	struct tm tm;
	time_t t;
	int e;

	char vol[80];
	const char *slash = strchr(name, '/');

	/* only names push can make: they are safe in JSON and tables */
	if (!slash || (size_t)(slash - name) >= sizeof(vol))
		return 0;
	memcpy(vol, name, (size_t)(slash - name));
	vol[slash - name] = '\0';
	if (!hoard_ref_name_ok(vol) || !hoard_ref_name_ok(slash + 1))
		return 0;
	e = hoard_s3_get_object(r->cl, r->bucket, key, &buf, &len, NULL);
	if (e == -ENOENT)
		return 0; /* deleted meanwhile */
	if (e < 0)
		return e;
	e = hoard_ref_decode(buf, len, &rf, NULL, 0);
	free(buf);
	if (e < 0) {
		if (arr)
			return json_array_append_new(
				       arr,
				       json_pack("{s:s,s:s}", "ref", name,
						 "error", "not a hoard ref"))
				       ? -ENOMEM
				       : 0;
		else
			fprintf(out, "%-24s (not a hoard ref)\n", name);
		return 0;
	}
	sig = sig_state(l, &rf, vol, slash + 1, id);
	mkey = remote_key(r, "manifests/%s", rf.manifest);
	if (!mkey)
		return -ENOMEM;
	e = hoard_s3_head_object(r->cl, r->bucket, mkey, &info);
	free(mkey);
	if (e < 0 && e != -ENOENT)
		return e;
	t = (time_t)rf.time;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (arr)
		return json_array_append_new(
			       arr,
			       json_pack(
				       "{s:s,s:s,s:o,s:o,s:I,s:I,s:s,s:o,s:s}",
				       "ref", name, "manifest", rf.manifest,
				       "files", hoard_json_u64(rf.files),
				       "bytes", hoard_json_u64(rf.bytes),
				       "manifest_size",
				       (json_int_t)(e == 0 ? (long long)info.size
							   : -1LL),
				       "time", (json_int_t)rf.time, "date",
				       when, "key",
				       *id ? json_string(id) : json_null(),
				       "signature", sig))
			       ? -ENOMEM
			       : 0;
	else
		fprintf(out, "%-24s %.12s %8llu %14llu %12lld  %s  %s%s%s%s\n",
			name, rf.manifest, (unsigned long long)rf.files,
			(unsigned long long)rf.bytes,
			e == 0 ? (long long)info.size : -1LL, when, sig,
			*id ? " " : "", id,
			e == 0 ? "" : "  (manifest missing)");
	return 0;
}

int hoard_sync_ls_remote(const struct hoard_s3_config *s3, const char *url,
			 const struct hoard_pubkey *trust, size_t n_trust,
			 bool json, char **ret_out, char *errbuf, size_t errlen)
{
	struct hoard_remote_config c;
	struct remote r;
	struct refs l = {.r = &r, .trust = trust, .n_trust = n_trust};
	char *text = NULL, *key;
	size_t tlen = 0;
	json_t *arr = NULL;
	FILE *out;
	int e = remote_open(&r, s3, url, 1, errbuf, errlen);

	if (e == 0)
		e = remote_get_config(&r, &c, errbuf, errlen);
	if (e < 0)
		goto done;
	key = remote_key(&r, "refs/");
	if (!key) {
		e = -ENOMEM;
		goto done;
	}
	e = hoard_s3_list(r.cl, r.bucket, key, NULL, list_ref_cb, &l);
	free(key);
	if (e < 0) {
		e = s3_fail(errbuf, errlen, e, "listing the refs");
		goto done;
	}
	out = open_memstream(&text, &tlen);
	if (!out) {
		e = -ENOMEM;
		goto done;
	}
	if (json) {
		arr = json_array();
		if (!arr)
			e = -ENOMEM;
	} else {
		fprintf(out, "%-24s %-12s %8s %14s %12s  %-20s  %s\n", "REF",
			"MANIFEST", "FILES", "BYTES", "MANIFEST-B", "PUSHED",
			"SIGNATURE");
	}
	for (size_t i = 0; e == 0 && i < l.n; i++) {
		e = ls_one(&l, l.keys[i], arr, out);
		if (e < 0)
			s3_fail(errbuf, errlen, e, "reading a ref");
	}
	if (e == 0 && json) {
		char *t = hoard_json_dump(json_pack("{s:O}", "refs", arr),
					  true);

		if (!t || fputs(t, out) < 0)
			e = -ENOMEM;
		free(t);
	}
	json_decref(arr);
	fclose(out);
	if (e == 0)
		*ret_out = text;
	else
		free(text);
done:
	for (size_t i = 0; i < l.n; i++)
		free(l.keys[i]);
	free(l.keys);
	remote_close(&r);
	return e;
}
