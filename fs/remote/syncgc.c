// SPDX-License-Identifier: MIT
/*
 * syncgc: remote garbage collection, mark and sweep with a grace period
 * (sync.h, docs/REMOTE.md section 9).
 *
 *   1. list everything under the prefix (keys, sizes, LastModified);
 *   2. mark: every ref's manifest is read and strictly decoded, and every
 *      chunk it names is live.  A ref or manifest that cannot be read or
 *      decoded stops the gc before anything is deleted;
 *   3. the bucket's chunk index (every pack index, condemned ones too): a
 *      pack is live when a live chunk's location (the first pack, in name
 *      order, not condemned ones first, that holds it: the one every reader
 *      uses) is in it;
 *   4. sweep, per pack: live and condemned -> the mark is removed (a push
 *      used it again); dead, uploaded more than `grace` ago and not
 *      condemned -> condemned (PREFIX/gc/condemned/<name>); dead and
 *      condemned more than `grace` ago -> its index, then the pack, then
 *      the mark are deleted.  Unreferenced manifests older than `grace`,
 *      packs without an index older than `grace` (a killed push), and marks
 *      of packs that are gone are deleted too.
 *
 * Why that is safe while other hosts push: a push never relies on a
 * condemned pack (it leaves them out of its chunk index), so a push that
 * relies on pack P read the index before P was condemned; a pack is deleted
 * only `grace` after its condemnation, by a gc that marks afresh, and by
 * then any such push has committed its ref (pushes take less than
 * `grace`), which makes P live again.
 *
 * Repacking: a live pack with fewer than half of its chunks live (and no
 * younger than `grace`) has its live chunks copied, verified, into a new
 * pack, and is condemned.  Readers prefer a chunk's copy in a pack that is
 * not condemned, so the old pack is dead for the next gc, which deletes it
 * after the grace period, or revives it if a push relied on one of its
 * dead chunks meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hoard/chunker.h"
#include "hoard/codec.h"
#include "hoard/json.h"
#include "hoard/util.h"
#include "pack-internal.h"
#include "sync-internal.h"

struct obj {
	char *key;
	uint64_t size;
	int64_t mtime;
};

struct listing {
	struct remote *r;
	struct obj *o;
	size_t n, cap;
};

static int list_all_cb(const struct hoard_s3_entry *e, void *arg)
{
	struct listing *l = arg;
	void *x;

	if (e->is_prefix)
		return 0;
	x = hoard_grow(l->o, &l->cap, l->n + 1, sizeof(*l->o), 256);
	if (!x)
		return -ENOMEM;
	l->o = x;
	l->o[l->n].key = strdup(e->key + strlen(l->r->prefix));
	l->o[l->n].size = e->size;
	l->o[l->n].mtime = e->last_modified;
	return l->o[l->n++].key ? 0 : -ENOMEM;
}

static const struct obj *find(const struct listing *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->o[i].key, key))
			return &l->o[i];
	return NULL;
}

struct gc {
	struct remote *r;
	const struct hoard_gc_remote_opts *o;
	struct listing l;
	struct hoard_rindex *live; /* live chunk ids (loc unused) */
	char (*manifests)[HOARD_SHA256_HEX_SIZE]; /* referenced ones */
	size_t n_manifests;
	int64_t now;
	struct hoard_gc_remote_result *res;
	struct hoard_key key; /* the repository's, to verify repacked chunks */
	char *errbuf;
	size_t errlen;
};

static bool old_enough(const struct gc *g, int64_t mtime)
{
	return mtime >= 0 && g->now - mtime >= (int64_t)g->o->grace_s;
}

/* Step 2 for one ref key ("refs/V/N"). */
static int mark_ref(struct gc *g, const char *key)
{
	struct remote *r = g->r;
	struct hoard_manifest m = {0};
	struct hoard_ref rf;
	char sum[HOARD_SHA256_HEX_SIZE], *full, msg[512];
	void *buf = NULL;
	size_t len;
	int e;

	full = remote_key(r, "%s", key);
	if (!full)
		return -ENOMEM;
	e = hoard_s3_get_object(r->cl, r->bucket, full, &buf, &len, NULL);
	free(full);
	if (e == -ENOENT)
		return 0; /* deleted since the listing */
	if (e < 0)
		return s3_fail(g->errbuf, g->errlen, e, "reading a ref");
	e = hoard_ref_decode(buf, len, &rf, msg, sizeof(msg));
	free(buf);
	if (e < 0)
		return hoard_errf(g->errbuf, g->errlen, e,
				  "%s: %s; nothing was deleted", key, msg);
	full = remote_key(r, "manifests/%s", rf.manifest);
	if (!full)
		return -ENOMEM;
	e = hoard_s3_get_object(r->cl, r->bucket, full, &buf, &len, NULL);
	free(full);
	if (e < 0)
		return hoard_errf(
			g->errbuf, g->errlen, e == -ENOENT ? -EBADMSG : e,
			"%s names manifest %s, which cannot be read "
			"(%s); nothing was deleted",
			key, rf.manifest,
			e == -ENOENT ? "missing" : hoard_s3_last_error());
	hoard_sha256_hex(buf, len, sum);
	e = strcmp(sum, rf.manifest)
		    ? -EBADMSG
		    : hoard_manifest_decode(buf, len, &m, msg, sizeof(msg));
	free(buf);
	if (e < 0)
		return hoard_errf(g->errbuf, g->errlen, e,
				  "manifest %s of %s is corrupt or invalid; "
				  "nothing was deleted",
				  rf.manifest, key);
	for (size_t i = 0; e == 0 && i < m.n; i++)
		for (uint32_t k = 0; e == 0 && k < m.e[i].n_ext; k++)
			e = hoard_rindex_add(g->live, &m.e[i].ext[k].id,
					     &(struct hoard_rloc){0});
	hoard_manifest_clear(&m);
	if (e < 0)
		return e;
	{
		void *x = realloc(g->manifests,
				  (g->n_manifests + 1) * sizeof(*g->manifests));

		if (!x)
			return -ENOMEM;
		g->manifests = x;
		memcpy(g->manifests[g->n_manifests++], rf.manifest,
		       HOARD_SHA256_HEX_SIZE);
	}
	g->res->refs++;
	return 0;
}

static int del(struct gc *g, const char *rel, uint64_t size)
{
	char *key;
	int e;

	if (g->o->dry_run)
		return 0;
	key = remote_key(g->r, "%s", rel);
	if (!key)
		return -ENOMEM;
	e = hoard_s3_delete_object(g->r->cl, g->r->bucket, key);
	free(key);
	if (e < 0)
		return s3_fail(g->errbuf, g->errlen, e, "deleting an object");
	g->res->bytes_deleted += size;
	return 0;
}

static int condemn(struct gc *g, const char *name)
{
	char *key, body[32];
	int n, e;

	if (g->o->dry_run)
		return 0;
	key = remote_key(g->r, "gc/condemned/%s", name);
	if (!key)
		return -ENOMEM;
	n = snprintf(body, sizeof(body), "%lld\n", (long long)g->now);
	e = hoard_s3_put_object(g->r->cl, g->r->bucket, key, body, (size_t)n,
				NULL);
	free(key);
	return e < 0 ? s3_fail(g->errbuf, g->errlen, e, "condemning a pack")
		     : 0;
}

/* Step 4 for pack number i of r->packs. */
static int sweep_pack(struct gc *g, size_t i, const bool *live,
		      const uint32_t *live_chunks)
{
	const char *name = g->r->packs[i];
	char k_idx[100], k_pack[100], k_mark[100];
	const struct obj *idx, *pack, *mark;
	int e = 0;

	snprintf(k_idx, sizeof(k_idx), "packs/%s.idx", name);
	snprintf(k_pack, sizeof(k_pack), "packs/%s.pack", name);
	snprintf(k_mark, sizeof(k_mark), "gc/condemned/%s", name);
	idx = find(&g->l, k_idx);
	pack = find(&g->l, k_pack);
	mark = find(&g->l, k_mark);
	g->res->packs++;
	if (live[i]) {
		g->res->packs_live++;
		if (live_chunks[i] < g->r->pack_chunks[i])
			g->res->packs_partly_dead++;
		if (mark) {
			g->res->packs_revived++;
			e = del(g, k_mark, 0);
		}
		return e;
	}
	if (!mark) {
		if (idx && old_enough(g, idx->mtime)) {
			g->res->packs_condemned++;
			return condemn(g, name);
		}
		return 0;
	}
	if (!old_enough(g, mark->mtime))
		return 0;
	e = del(g, k_idx, idx ? idx->size : 0);
	if (e == 0)
		e = del(g, k_pack, pack ? pack->size : 0);
	if (e == 0)
		e = del(g, k_mark, 0);
	if (e == 0)
		g->res->packs_deleted++;
	return e;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && !strcmp(s + n - m, suf);
}

/* Step 4 for what is not a known pack: manifests, stray packs, marks. */
static int sweep_rest(struct gc *g)
{
	int e = 0;

	for (size_t i = 0; e == 0 && i < g->l.n; i++) {
		const struct obj *o = &g->l.o[i];
		char other[100];
		bool used = false;

		if (!strncmp(o->key, "manifests/", 10)) {
			for (size_t k = 0; k < g->n_manifests && !used; k++)
				used = !strcmp(o->key + 10, g->manifests[k]);
			if (!used && old_enough(g, o->mtime)) {
				g->res->manifests_deleted++;
				e = del(g, o->key, o->size);
			}
		} else if (!strncmp(o->key, "packs/", 6) &&
			   has_suffix(o->key, ".pack") &&
			   strlen(o->key) == 6 + 64 + 5) {
			snprintf(other, sizeof(other), "packs/%.64s.idx",
				 o->key + 6);
			if (!find(&g->l, other) && old_enough(g, o->mtime)) {
				g->res->packs_deleted++;
				e = del(g, o->key, o->size);
			}
		} else if (!strncmp(o->key, "gc/condemned/", 13) &&
			   strlen(o->key) == 13 + 64) {
			snprintf(other, sizeof(other), "packs/%s.idx",
				 o->key + 13);
			if (!find(&g->l, other))
				e = del(g, o->key, 0);
		}
	}
	return e;
}

struct mark_packs {
	const struct hoard_rindex *rx;
	bool *live;
	uint32_t *live_chunks;
};

static int mark_pack_of(void *ud, const struct hoard_id *id,
			const struct hoard_rloc *unused)
{
	struct mark_packs *m = ud;
	const struct hoard_rloc *loc = hoard_rindex_get(m->rx, id);

	(void)unused;
	if (!loc)
		return -ENOENT;
	m->live[loc->pack] = true;
	m->live_chunks[loc->pack]++;
	return 0;
}

/* ---- repacking --------------------------------------------------------- */

struct live_in {
	uint32_t pack;
	struct want_loc {
		struct hoard_id id;
		struct hoard_rloc loc;
	} * w;
	size_t n, cap;
	const struct hoard_rindex *rx;
};

static int collect_live(void *ud, const struct hoard_id *id,
			const struct hoard_rloc *unused)
{
	struct live_in *li = ud;
	const struct hoard_rloc *loc = hoard_rindex_get(li->rx, id);
	void *x;

	(void)unused;
	if (!loc || loc->pack != li->pack)
		return 0;
	x = hoard_grow(li->w, &li->cap, li->n + 1, sizeof(*li->w), 64);
	if (!x)
		return -ENOMEM;
	li->w = x;
	li->w[li->n].id = *id;
	li->w[li->n++].loc = *loc;
	return 0;
}

static int by_off(const void *a, const void *b)
{
	const struct want_loc *x = a, *y = b;

	return x->loc.off < y->loc.off ? -1 : x->loc.off > y->loc.off;
}

/*
 * Copy the live chunks of pack i (each verified against its id) into a new
 * pack, upload it and its index, then condemn pack i: readers prefer the
 * new copy, and a later gc deletes the old pack once the grace period has
 * passed (or revives it if a push relied on one of its dead chunks).
 */
static int repack(struct gc *g, size_t i)
{
	struct remote *r = g->r;
	struct live_in li = {.pack = (uint32_t)i, .rx = r->rx};
	struct pack_writer w = {0};
	uint8_t *old = NULL;
	char hex[HOARD_SHA256_HEX_SIZE], *key = NULL;
	size_t olen = 0;
	int e;

	e = hoard_rindex_foreach(g->live, collect_live, &li);
	if (e < 0 || li.n == 0)
		goto out;
	qsort(li.w, li.n, sizeof(*li.w), by_off);
	key = remote_key(r, "packs/%s.pack", r->packs[i]);
	if (!key) {
		e = -ENOMEM;
		goto out;
	}
	e = hoard_s3_get_object(r->cl, r->bucket, key, (void **)&old, &olen,
				NULL);
	if (e < 0) {
		e = s3_fail(g->errbuf, g->errlen, e,
			    "reading a pack to repack");
		goto out;
	}
	hoard_sha256_hex(old, olen, hex);
	e = pack_writer_init(&w, olen, li.n);
	if (e < 0)
		goto out;
	if (strcmp(hex, r->packs[i])) {
		e = hoard_errf(g->errbuf, g->errlen, -EBADMSG,
			       "pack %s is corrupt (SHA-256 %s); not repacked",
			       r->packs[i], hex);
		goto out;
	}
	for (size_t k = 0; e == 0 && k < li.n; k++) {
		const struct hoard_rloc *l = &li.w[k].loc;

		e = l->off + l->frame_len > olen
			    ? -EBADMSG
			    : pack_writer_add(&w, &g->key, &li.w[k].id,
					      old + l->off, l->frame_len,
					      l->raw_len);
		if (e == -EBADMSG)
			e = hoard_errf(g->errbuf, g->errlen, -EBADMSG,
				       "pack %s holds a corrupt chunk; not "
				       "repacked",
				       r->packs[i]);
	}
	if (e == 0)
		e = pack_writer_finish(&w);
	if (e < 0)
		goto out;
	g->res->packs_repacked++;
	g->res->bytes_repacked += w.len;
	if (g->o->dry_run)
		goto out;
	e = pack_writer_upload(&w, r, NULL);
	if (e < 0) {
		e = s3_fail(g->errbuf, g->errlen, e,
			    "uploading a repacked pack");
		goto out;
	}
	e = condemn(g, r->packs[i]);
out:
	free(li.w);
	free(key);
	free(old);
	pack_writer_clear(&w);
	return e;
}

static int gc_run(struct gc *g)
{
	struct remote *r = g->r;
	struct hoard_remote_config c;
	bool *live = NULL;
	uint32_t *live_chunks = NULL;
	char *key;
	int e;

	e = remote_get_config(r, &c, g->errbuf, g->errlen);
	if (e == 0)
		hoard_key_init(&g->key, c.secret);
	memset(&c, 0, sizeof(c));
	if (e < 0)
		return e;
	key = remote_key(r, "%s", "");
	if (!key)
		return -ENOMEM;
	e = hoard_s3_list(r->cl, r->bucket, key, NULL, list_all_cb, &g->l);
	free(key);
	if (e < 0)
		return s3_fail(g->errbuf, g->errlen, e,
			       "listing the repository");
	g->now = time(NULL);
	for (size_t i = 0; e == 0 && i < g->l.n; i++)
		if (!strncmp(g->l.o[i].key, "refs/", 5))
			e = mark_ref(g, g->l.o[i].key);
	if (e == 0)
		e = remote_load_index(r, g->o->store_dir, g->errbuf, g->errlen);
	if (e < 0)
		return e;
	live = calloc(r->n_packs + 1, sizeof(*live));
	live_chunks = calloc(r->n_packs + 1, sizeof(*live_chunks));
	if (!live || !live_chunks) {
		e = -ENOMEM;
		goto out;
	}
	/* a live chunk keeps the pack every reader takes it from */
	e = hoard_rindex_foreach(
		g->live, mark_pack_of,
		&(struct mark_packs){r->rx, live, live_chunks});
	if (e < 0) {
		e = hoard_errf(g->errbuf, g->errlen, -EBADMSG,
			       "a ref names chunks that are in no pack: the "
			       "repository is damaged; nothing was deleted");
		goto out;
	}
	for (size_t i = 0; e == 0 && i < r->n_packs; i++)
		e = sweep_pack(g, i, live, live_chunks);
	/* mostly dead packs: their live chunks to a new pack */
	for (size_t i = 0; e == 0 && i < r->n_packs; i++) {
		char k_idx[100], k_mark[100];
		const struct obj *idx, *mark;

		if (!live[i] ||
		    (uint64_t)live_chunks[i] * 2 >= r->pack_chunks[i])
			continue;
		snprintf(k_idx, sizeof(k_idx), "packs/%s.idx", r->packs[i]);
		snprintf(k_mark, sizeof(k_mark), "gc/condemned/%s",
			 r->packs[i]);
		idx = find(&g->l, k_idx);
		mark = find(&g->l, k_mark);
		if (idx && !mark && old_enough(g, idx->mtime))
			e = repack(g, i);
	}
	if (e == 0)
		e = sweep_rest(g);
	g->res->chunks_live = hoard_rindex_count(g->live);
	g->res->manifests = g->n_manifests;
out:
	free(live);
	free(live_chunks);
	return e;
}

int hoard_sync_gc_remote(const struct hoard_gc_remote_opts *o,
			 struct hoard_gc_remote_result *res, char *errbuf,
			 size_t errlen)
{
	struct remote r;
	struct gc g = {
		.r = &r, .o = o, .res = res, .errbuf = errbuf, .errlen = errlen};
	int e;

	memset(res, 0, sizeof(*res));
	if (errbuf && errlen)
		*errbuf = '\0';
	e = remote_open(&r, o->s3, o->url, o->jobs, errbuf, errlen);
	g.l.r = &r;
	g.live = hoard_rindex_new();
	if (e == 0 && !g.live)
		e = -ENOMEM;
	if (e == 0)
		e = gc_run(&g);
	if (r.cl) {
		struct hoard_s3_stats s;

		hoard_s3_client_stats(r.cl, &s);
		res->requests = s.requests;
		res->seconds = (double)(hoard_now_mono_ns() - r.t0) / 1e9;
	}
	for (size_t i = 0; i < g.l.n; i++)
		free(g.l.o[i].key);
	free(g.l.o);
	free(g.manifests);
	hoard_rindex_free(g.live);
	remote_close(&r);
	return e;
}

char *hoard_gc_remote_result_json(const struct hoard_gc_remote_result *x,
				  bool dry_run)
{
	return hoard_json_dump(
		json_pack(
			"{s:s,s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,"
			"s:o,s:o,s:o,s:o}",
			"op", "gc-remote", "dry_run", (int)dry_run, "refs",
			hoard_json_u64(x->refs), "manifests",
			hoard_json_u64(x->manifests), "chunks_live",
			hoard_json_u64(x->chunks_live), "packs",
			hoard_json_u64(x->packs), "packs_live",
			hoard_json_u64(x->packs_live), "packs_partly_dead",
			hoard_json_u64(x->packs_partly_dead), "packs_condemned",
			hoard_json_u64(x->packs_condemned), "packs_revived",
			hoard_json_u64(x->packs_revived), "packs_deleted",
			hoard_json_u64(x->packs_deleted), "packs_repacked",
			hoard_json_u64(x->packs_repacked), "bytes_repacked",
			hoard_json_u64(x->bytes_repacked), "manifests_deleted",
			hoard_json_u64(x->manifests_deleted), "bytes_deleted",
			hoard_json_u64(x->bytes_deleted), "requests",
			hoard_json_u64(x->requests), "seconds",
			hoard_json_real3(x->seconds)),
		true);
}
