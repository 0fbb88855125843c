// SPDX-License-Identifier: MIT
/*
 * syncpull: pull a volume from a repository (sync.h, docs/REMOTE.md
 * section 8).
 *
 * Pull, in order; nothing is written to the store before step 4:
 *   1. config (its secret must be the store's), ref, manifest (its SHA-256
 *      must be its name), strict decode of the manifest.
 *   2. the bucket's chunk index (sync.c).
 *   3. the chunks the manifest names that the store lacks, each found in a
 *      pack, or the pull stops naming the first that is in none.
 *   4. fetch: those chunks grouped per pack into ranged GETs (adjacent
 *      frames, gaps under RANGE_GAP, ranges up to RANGE_MAX), on `jobs`
 *      threads; every frame is decoded and hashed, and must give its id
 *      (a mismatch refetches the range, then fails); good chunks are staged
 *      into the store (counted in flight, so nothing drops them).
 *   5. the tree, entry by entry in manifest order (parents first), with the
 *      merge rule of REMOTE.md 8.2.  A new or replaced file is made under a
 *      temporary name, filled with one WriteBatch (extents, chunk refcounts,
 *      inode), then renamed onto its name: a file appears whole or not at
 *      all.
 *   6. the in-flight counts are dropped, the WAL synced, and the caller
 *      told which names changed (the daemon invalidates the kernel's
 *      caches with them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>

#include "hoard/chunker.h"
#include "hoard/codec.h"
#include "hoard/core.h"
#include "hoard/idmap.h"
#include "hoard/trust.h"
#include "hoard/util.h"
#include "sync-internal.h"

#define RANGE_GAP      (256u << 10)
#define RANGE_MAX      (16u << 20)
#define TMP_PREFIX     ".hoard-pull."
#define RANGE_ATTEMPTS 3

struct want {
	struct hoard_id id;
	struct hoard_rloc loc;
};

struct range {
	size_t first, n; /* in pull.want */
	uint32_t pack;
	uint64_t off, len;
};

struct changed {
	uint64_t parent;
	char *name; /* NULL: the directory itself */
};

struct pull {
	struct remote *r;
	struct hoard_fs *fs;
	const struct hoard_sync_opts *o;
	struct hoard_manifest m;
	struct want *want;
	size_t n_want;
	struct range *ranges;
	size_t n_ranges;
	pthread_mutex_t mu;  /* protects staged, errbuf, counters */
	struct idmap staged; /* chunks this pull staged: count, frame_size */
	char *errbuf;
	size_t errlen;
	uint64_t fetched, fetched_bytes;
	uint64_t *local; /* manifest entry -> local inode, 0: none */
	struct changed *chg;
	size_t n_chg, cap_chg;
	unsigned long tmp_seq;
	struct hoard_sync_result *res;
	bool merge; /* hoard_sync_merge: the chunks are the store's own */
	/* REMOTE.md 5.4, 6.2: a trusted pull (keys in force), its ref, and
	 * the digests of a version-2 manifest (sorted by id) */
	bool trusted;
	struct hoard_ref rf;
	struct hoard_ref_site site;
	struct hoard_chunk_sha *sha;
	size_t n_sha;
	/* [i]: sha[i]'s chunk was local already, its bytes not checked
	 * against sha[i] by this pull: no row is kept for it (a push
	 * computes it from the bytes, synctrust.c) */
	bool *sha_local;
};

#define pull_fail(P, err, ...)                                                 \
	set_err_oncef(&(P)->mu, (P)->errbuf, (P)->errlen, err, __VA_ARGS__)

/* ---- step 1: ref and manifest ----------------------------------------------- */

/* The ref's signature against the trusted keys: the request's and the
 * store's setting (REMOTE.md 6.1).  Before anything else is read. */
static int check_trust(struct pull *P, const struct hoard_ref *rf,
		       const char *ref, char *errbuf, size_t errlen)
{
	struct hoard_ref_site site;
	struct hoard_pubkey *keys = NULL, *all = NULL;
	size_t n = 0;
	int e = hoard_trust_get(hoard_fs_store(P->fs), &keys, &n);

	if (e < 0)
		return hoard_errf(errbuf, errlen, e,
				  "reading the store's trust setting: %s",
				  strerror(-e));
	if (P->o->n_trust) {
		all = calloc(n + P->o->n_trust, sizeof(*all));
		if (!all) {
			free(keys);
			return -ENOMEM;
		}
		if (n)
			memcpy(all, keys, n * sizeof(*all));
		memcpy(all + n, P->o->trust, P->o->n_trust * sizeof(*all));
		n += P->o->n_trust;
		free(keys);
		keys = all;
	}
	remote_ref_site(P->r, P->o->volume, ref, &site);
	e = hoard_ref_check_trust(rf, &site, keys, n, errbuf, errlen);
	free(keys);
	P->trusted = n > 0;
	P->rf = *rf;
	P->site = site;
	if (e == 0 && P->trusted && rf->is_signed)
		e = sync_rollback_check(hoard_fs_store(P->fs), &site, rf,
					P->o->allow_rollback, errbuf, errlen);
	if (e == 0 && rf->is_signed)
		hoard_sign_key_id(&rf->key, P->res->key_id);
	return e;
}

static int get_manifest(struct pull *P, const char *ref, char *errbuf,
			size_t errlen)
{
	struct remote *r = P->r;
	struct hoard_ref rf;
	char *key = NULL, rel[32 + 2 * 65];
	char sum[HOARD_SHA256_HEX_SIZE];
	void *buf = NULL;
	size_t len;
	int e;

	if ((size_t)snprintf(rel, sizeof(rel), "refs/%s/%s", P->o->volume,
			     ref) >= sizeof(rel))
		return -ENAMETOOLONG; /* names were checked: cannot happen */
	e = remote_get_explained(r, rel, &buf, &len, "reading the ref", errbuf,
				 errlen, "there is no ref '%s/%s' at %s",
				 P->o->volume, ref, r->url);
	if (e < 0)
		return e;
	e = hoard_ref_decode(buf, len, &rf, errbuf, errlen);
	free(buf);
	if (e < 0)
		return e;
	e = check_trust(P, &rf, ref, errbuf, errlen);
	if (e < 0)
		return e;
	key = remote_key(r, "manifests/%s", rf.manifest);
	if (!key)
		return -ENOMEM;
	e = hoard_s3_get_object(r->cl, r->bucket, key, &buf, &len, NULL);
	free(key);
	if (e == -ENOENT)
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "the ref '%s/%s' names manifest %s, which is "
				  "not in the bucket",
				  P->o->volume, ref, rf.manifest);
	if (e < 0)
		return s3_fail(errbuf, errlen, e, "reading the manifest");
	hoard_sha256_hex(buf, len, sum);
	if (strcmp(sum, rf.manifest)) {
		free(buf);
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "manifest %s is corrupt (its SHA-256 is %s)",
				  rf.manifest, sum);
	}
	memcpy(P->res->manifest, sum, sizeof(sum));
	e = hoard_manifest_decode(buf, len, &P->m, errbuf, errlen);
	free(buf);
	if (e == 0) {
		uint64_t files = 0, bytes = 0;

		for (size_t i = 0; i < P->m.n; i++) {
			if (P->m.e[i].type == HOARD_M_FILE) {
				files++;
				bytes += P->m.e[i].size;
			}
		}
		if (files != rf.files || bytes != rf.bytes)
			e = hoard_errf(
				errbuf, errlen, -EBADMSG,
				"the ref '%s/%s' and its manifest do not "
				"add up (%llu files of %llu bytes "
				"against %llu of %llu)",
				P->o->volume, ref, (unsigned long long)rf.files,
				(unsigned long long)rf.bytes,
				(unsigned long long)files,
				(unsigned long long)bytes);
	}
	if (e == 0)
		e = sync_pull_digests(&P->m, &rf, P->trusted, &P->site, &P->sha,
				      &P->n_sha, errbuf, errlen);
	if (e == 0 && P->sha) {
		P->sha_local = calloc(P->n_sha, sizeof(*P->sha_local));
		if (!P->sha_local)
			e = -ENOMEM;
	}
	return e;
}

/* ---- steps 3, 4: what to fetch, fetching it ------------------------------------ */

static int want_cmp(const void *a, const void *b)
{
	const struct want *x = a, *y = b;

	if (x->loc.pack != y->loc.pack)
		return x->loc.pack < y->loc.pack ? -1 : 1;
	return x->loc.off < y->loc.off ? -1 : x->loc.off > y->loc.off;
}

/* A chunk the store has: its bytes are not read, so the manifest's digest
 * of it is not checked and not kept. */
static void sha_local(struct pull *P, const struct hoard_id *id)
{
	const struct hoard_chunk_sha *c;

	if (!P->sha || !P->sha_local)
		return;
	c = hoard_chunk_sha_find(P->sha, P->n_sha, id);
	if (c)
		P->sha_local[c - P->sha] = true;
}

/* The digests to keep: P->sha without the local chunks' (packed in place,
 * still sorted; the fetch that used them is over).  Their number. */
static size_t sha_checked(struct pull *P)
{
	size_t k = 0;

	for (size_t i = 0; i < P->n_sha; i++)
		if (!P->sha_local[i])
			P->sha[k++] = P->sha[i];
	return k;
}

static int plan_fetch(struct pull *P, char *errbuf, size_t errlen)
{
	struct idmap seen;
	size_t cap = 0, cap_r = 0;
	int e = 0;

	if (idmap_init(&seen, 1024) < 0)
		return -ENOMEM;
	for (size_t i = 0; e == 0 && i < P->m.n; i++) {
		const struct hoard_mentry *me = &P->m.e[i];

		if (me->type != HOARD_M_FILE)
			continue;
		P->res->files++;
		P->res->logical_bytes += me->size;
		for (uint32_t k = 0; e == 0 && k < me->n_ext; k++) {
			const struct hoard_id *id = &me->ext[k].id;
			const struct hoard_rloc *loc;
			struct idmap_ent *d = idmap_add(&seen, id);
			struct chunk_rec rec;
			struct want *want;
			char hex[HOARD_ID_HEX_SIZE], path[512];

			if (!d) {
				e = -ENOMEM;
				break;
			}
			if (d->count++ > 0)
				continue;
			P->res->chunks++;
			e = chunk_rec_load(P->fs, id, &rec);
			if (e == 0 && rec.refcount > 0 && (rec.flags & 1))
				sha_local(P, id);
			if (e == 0 && rec.refcount > 0 &&
			    ((rec.flags & 1) || (P->o->lazy && rec.has_loc)))
				continue;
			if (e < 0 && e != -ENOENT)
				break;
			e = 0;
			loc = hoard_rindex_get(P->r->rx, id);
			if (!loc || loc->raw_len != me->ext[k].len) {
				hoard_id_hex(id, hex);
				hoard_manifest_path(&P->m, i, path,
						    sizeof(path));
				e = hoard_errf(errbuf, errlen, -EBADMSG,
					       "chunk %s of '%s' is in no pack "
					       "of the bucket (or with another "
					       "length): the repository is "
					       "damaged",
					       hex, path);
				break;
			}
			want = hoard_grow(P->want, &cap, P->n_want + 1,
					  sizeof(*P->want), 256);
			if (!want) {
				e = -ENOMEM;
				break;
			}
			P->want = want;
			P->want[P->n_want++] = (struct want){.id = *id,
							     .loc = *loc};
		}
	}
	idmap_free(&seen);
	if (e < 0)
		return e;
	if (P->n_want)
		qsort(P->want, P->n_want, sizeof(*P->want), want_cmp);
	for (size_t i = 0; i < P->n_want; i++) {
		const struct hoard_rloc *l = &P->want[i].loc;
		struct range *g = P->n_ranges ? &P->ranges[P->n_ranges - 1]
					      : NULL;

		if (g && g->pack == l->pack && l->off >= g->off + g->len &&
		    l->off - (g->off + g->len) <= RANGE_GAP &&
		    l->off + l->frame_len - g->off <= RANGE_MAX) {
			g->len = l->off + l->frame_len - g->off;
			g->n++;
		} else {
			void *grown = hoard_grow(P->ranges, &cap_r,
						 P->n_ranges + 1,
						 sizeof(*P->ranges), 64);

			if (!grown)
				return -ENOMEM;
			P->ranges = grown;
			P->ranges[P->n_ranges++] = (struct range){
				.first = i,
				.n = 1,
				.pack = l->pack,
				.off = l->off,
				.len = l->frame_len,
			};
		}
		P->r->prog.bytes_total += l->frame_len;
	}
	P->r->prog.objects_total = P->n_ranges;
	return 0;
}

/* Check every frame of a fetched range; 0, or the index of the first bad
 * one + 1 (*sha_bad: it has its id but not its signed SHA-256). */
static size_t check_range(struct pull *P, const struct range *g,
			  const uint8_t *buf, uint8_t *raw, bool *sha_bad)
{
	const struct hoard_key *key = hoard_store_key(hoard_fs_store(P->fs));

	*sha_bad = false; /* of this attempt */
	for (size_t k = 0; k < g->n; k++) {
		const struct want *w = &P->want[g->first + k];
		struct hoard_id got;
		ssize_t n;

		n = hoard_codec_decode(buf + (w->loc.off - g->off),
				       w->loc.frame_len, raw, HOARD_CHUNK_MAX,
				       w->loc.raw_len);
		if (n < 0)
			return k + 1;
		hoard_id_compute(key, raw, (size_t)n, &got);
		if (!hoard_id_equal(&got, &w->id))
			return k + 1;
		if (P->sha) { /* REMOTE.md 5.4 */
			const struct hoard_chunk_sha *c = hoard_chunk_sha_find(
				P->sha, P->n_sha, &w->id);

			*sha_bad = !c || hoard_chunk_sha_verify(raw, (size_t)n,
								c->sha) < 0;
			if (*sha_bad)
				return k + 1;
		}
	}
	return 0;
}

static int stage_range(struct pull *P, const struct range *g,
		       const uint8_t *buf, uint8_t *raw)
{
	for (size_t k = 0; k < g->n; k++) {
		const struct want *w = &P->want[g->first + k];
		struct idmap_ent *d;
		uint32_t flen;
		ssize_t n;
		int e;

		n = hoard_codec_decode(buf + (w->loc.off - g->off),
				       w->loc.frame_len, raw, HOARD_CHUNK_MAX,
				       w->loc.raw_len);
		if (n < 0)
			return (int)n;
		e = chunks_stage(P->fs, &w->id, raw, (size_t)n, &flen);
		if (e < 0)
			return pull_fail(P, e, "storing a fetched chunk: %s",
					 strerror(-e));
		pthread_mutex_lock(&P->mu);
		d = idmap_add(&P->staged, &w->id);
		if (d) {
			d->count++;
			d->raw_size = (uint32_t)n;
			d->frame_size = flen;
			P->fetched++;
			P->fetched_bytes += w->loc.frame_len;
		}
		pthread_mutex_unlock(&P->mu);
		if (!d) {
			/* not recorded: drop this stage count at once */
			struct idmap one;

			if (idmap_init(&one, 1) == 0) {
				idmap_add(&one, &w->id)->count = 1;
				hoard_core_unstage(P->fs, &one);
				idmap_free(&one);
			}
			return -ENOMEM;
		}
	}
	return 0;
}

static int fetch_range(void *ud, size_t i)
{
	struct pull *P = ud;
	const struct range *g = &P->ranges[i];
	const char *pack = P->r->packs[g->pack];
	uint8_t *buf = malloc(g->len), *raw = malloc(HOARD_CHUNK_MAX);
	char *key = remote_key(P->r, "packs/%s.pack", pack);
	size_t bad = 0;
	bool sha_bad = false;
	ssize_t n;
	int e = -ENOMEM;

	if (!buf || !raw || !key)
		goto out;
	for (int attempt = 0; attempt < RANGE_ATTEMPTS; attempt++) {
		n = hoard_s3_get_range(P->r->cl, P->r->bucket, key, g->off,
				       g->len, buf);
		if (n < 0) {
			e = pull_fail(P, (int)n, "reading %s: %s", key,
				      hoard_s3_last_error());
			goto out;
		}
		if ((uint64_t)n != g->len) {
			e = pull_fail(P, -EBADMSG,
				      "pack %s is truncated (%zd of %llu "
				      "bytes at %llu)",
				      pack, n, (unsigned long long)g->len,
				      (unsigned long long)g->off);
			goto out;
		}
		bad = check_range(P, g, buf, raw, &sha_bad);
		if (!bad)
			break;
		hoard_log(LOG_DEBUG,
			  "pull: pack %s: a frame did not verify, "
			  "fetching the range again",
			  pack);
	}
	if (bad) {
		char hex[HOARD_ID_HEX_SIZE];

		hoard_id_hex(&P->want[g->first + bad - 1].id, hex);
		e = pull_fail(P, -EBADMSG,
			      sha_bad ? "pack %s: chunk %s has its id but not "
					"the SHA-256 the signed manifest gives "
					"it: refused"
				      : "pack %s is corrupt: chunk %s does not "
					"match its id",
			      pack, hex);
		goto out;
	}
	e = stage_range(P, g, buf, raw);
	if (e == 0) {
		pthread_mutex_lock(&P->mu);
		P->res->range_gets++;
		pthread_mutex_unlock(&P->mu);
		progress_add(P->r, g->len, 1);
	}
out:
	free(key);
	free(buf);
	free(raw);
	return e;
}

static void sha_from_hex(const char *hex, uint8_t out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned x = 0;

		sscanf(hex + 2 * i, "%2x", &x);
		out[i] = (uint8_t)x;
	}
}

/* ---- step 5: the tree ------------------------------------------------------------ */

static void note_changed(struct pull *P, uint64_t parent, const char *name)
{
	struct changed *c;

	if (!P->o->changed)
		return;
	c = hoard_grow(P->chg, &P->cap_chg, P->n_chg + 1, sizeof(*c), 64);
	if (!c)
		return;
	P->chg = c;
	c = &P->chg[P->n_chg];
	c->parent = parent;
	c->name = name ? strdup(name) : NULL;
	if (!name || c->name)
		P->n_chg++;
}

static bool newer(const struct hoard_mentry *e, const struct timespec *t)
{
	return e->mtime_s > t->tv_sec ||
	       (e->mtime_s == t->tv_sec && e->mtime_ns > t->tv_nsec);
}

/* 1 when the local file ino has exactly e's size and extents. */
static int same_file(struct pull *P, uint64_t ino, uint64_t size,
		     const struct hoard_mentry *e)
{
	struct hoard_iter *it;
	uint8_t k[8];
	uint32_t i = 0;
	int same = size == e->size;

	ino_key(k, ino);
	it = hoard_iter_new(hoard_fs_store(P->fs), HOARD_CF_EXTENTS, k, 8);
	if (!it)
		return -ENOMEM;
	for (; same && hoard_iter_valid(it); hoard_iter_next(it), i++) {
		size_t kl, vl;
		const uint8_t *key = hoard_iter_key(it, &kl);
		const uint8_t *v = hoard_iter_value(it, &vl);
		struct extent_rec er;

		if (i >= e->n_ext || extent_decode(key, kl, v, vl, &er) < 0 ||
		    er.off != e->ext[i].off ||
		    memcmp(er.id.b, e->ext[i].id.b, HOARD_ID_SIZE) ||
		    er.len != e->ext[i].len)
			same = 0;
	}
	if (i != e->n_ext)
		same = 0;
	hoard_iter_free(it);
	return same;
}

/* Where a chunk that stays remote is (a lazy pull's records): the
 * bucket's chunk index, read before the tree (core.h's locate). */
static int pull_locate(void *ud, const struct hoard_id *id,
		       struct chunk_rec *rec)
{
	struct pull *P = ud;
	const struct hoard_rloc *loc = hoard_rindex_get(P->r->rx, id);

	if (!loc)
		return -ENOENT;
	rec->raw_size = loc->raw_len;
	rec->frame_size = loc->frame_len;
	rec->pack_off = loc->off;
	sha_from_hex(P->r->packs[loc->pack], rec->pack);
	return 0;
}

/* The one batch that gives the new inode ino e's content (the core's
 * commit path, core.h). */
static int fill(struct pull *P, uint64_t ino, const struct hoard_mentry *e)
{
	struct hoard_core_file f = {
		.size = e->size,
		.mode = e->mode & 07777,
		.uid = e->uid,
		.gid = e->gid,
		.mtime = {.tv_sec = e->mtime_s, .tv_nsec = e->mtime_ns},
		.n_ext = e->n_ext,
	};
	struct hoard_core_extent *x = malloc(e->n_ext ? e->n_ext * sizeof(*x)
						      : 1);
	int r;

	if (!x)
		return -ENOMEM;
	for (uint32_t k = 0; k < e->n_ext; k++)
		x[k] = (struct hoard_core_extent){
			.off = e->ext[k].off,
			.len = e->ext[k].len,
			.id = e->ext[k].id,
		};
	f.ext = x;
	r = hoard_core_install_file(P->fs, ino, &f, &P->staged,
				    P->o->lazy || P->merge,
				    P->o->lazy ? pull_locate : NULL, P);
	free(x);
	return r;
}

/* A temporary name for an entry being made in a directory. */
static void tmp_name(struct pull *P, char *tmp, size_t n)
{
	snprintf(tmp, n, TMP_PREFIX "%d.%lu", (int)getpid(), P->tmp_seq++);
}

/* The end of making an entry under tmp (r: how it went): renamed onto
 * name, or removed; the lookup the making took is given back. */
static int put_in_place(struct pull *P, uint64_t parent, const char *tmp,
			const char *name, uint64_t ino, int r,
			uint64_t *ret_ino)
{
	if (r == 0)
		r = hoard_fs_rename(P->fs, parent, tmp, parent, name, 0);
	if (r < 0)
		hoard_fs_unlink(P->fs, parent, tmp);
	hoard_fs_forget(P->fs, ino, 1);
	if (r == 0)
		*ret_ino = ino;
	return r;
}

/* Make e under a temporary name in parent, then rename it onto name. */
static int put_file(struct pull *P, uint64_t parent, const char *name,
		    const struct hoard_mentry *e, uint64_t *ret_ino)
{
	struct hoard_ctx ctx = {.uid = e->uid, .gid = e->gid};
	char tmp[64];
	struct stat st;
	int r;

	tmp_name(P, tmp, sizeof(tmp));
	r = hoard_fs_mknod(P->fs, parent, tmp, S_IFREG | (e->mode & 07777), 0,
			   &ctx, &st);
	if (r < 0)
		return r;
	r = fill(P, st.st_ino, e);
	return put_in_place(P, parent, tmp, name, st.st_ino, r, ret_ino);
}

static int set_meta(struct pull *P, uint64_t ino, const struct hoard_mentry *e,
		    bool mode)
{
	struct stat a = {0}, st;
	int to_set = HOARD_SET_UID | HOARD_SET_GID | HOARD_SET_MTIME;

	a.st_uid = e->uid;
	a.st_gid = e->gid;
	a.st_mtim.tv_sec = e->mtime_s;
	a.st_mtim.tv_nsec = e->mtime_ns;
	if (mode) {
		a.st_mode = e->mode;
		to_set |= HOARD_SET_MODE;
	}
	return hoard_fs_setattr(P->fs, ino, &a, to_set, NULL, &st);
}

/* A symlink, node or hard link under a temporary name, renamed onto name. */
static int put_other(struct pull *P, uint64_t parent, const char *name,
		     const struct hoard_mentry *e, uint64_t *ret_ino)
{
	struct hoard_ctx ctx = {.uid = e->uid, .gid = e->gid};
	char tmp[64];
	struct stat st;
	int r;

	tmp_name(P, tmp, sizeof(tmp));
	if (e->type == HOARD_M_SYMLINK)
		r = hoard_fs_symlink(P->fs, parent, tmp, e->target, &ctx, &st);
	else if (e->type == HOARD_M_HARDLINK)
		r = hoard_fs_link(P->fs, P->local[e->link], parent, tmp, &st);
	else
		r = hoard_fs_mknod(P->fs, parent, tmp, e->mode, e->rdev, &ctx,
				   &st);
	if (r < 0)
		return r;
	if (e->type != HOARD_M_HARDLINK)
		r = set_meta(P, st.st_ino, e, e->type == HOARD_M_NODE);
	return put_in_place(P, parent, tmp, name, st.st_ino, r, ret_ino);
}

/* Is the local entry the same as e?  1 yes, 0 no, -errno. */
static int same_entry(struct pull *P, uint64_t ino,
		      const struct hoard_inode *in,
		      const struct hoard_mentry *e)
{
	switch (e->type) {
	case HOARD_M_FILE:
		return S_ISREG(in->mode) ? same_file(P, ino, in->size, e) : 0;
	case HOARD_M_SYMLINK:
		return S_ISLNK(in->mode) && in->target &&
		       !strcmp(in->target, e->target);
	case HOARD_M_HARDLINK:
		return ino == P->local[e->link];
	case HOARD_M_NODE:
		return (in->mode & S_IFMT) == (e->mode & S_IFMT) &&
		       in->rdev == e->rdev;
	default:
		return 0;
	}
}

static int apply_dir(struct pull *P, size_t i, uint64_t parent, bool *made)
{
	const struct hoard_mentry *e = &P->m.e[i];
	struct hoard_ctx ctx = {.uid = e->uid, .gid = e->gid};
	struct stat st;
	int r = hoard_fs_lookup(P->fs, parent, e->name, &st);

	*made = false;
	if (r == 0) {
		hoard_fs_forget(P->fs, st.st_ino, 1);
		if (S_ISDIR(st.st_mode)) {
			P->local[i] = st.st_ino;
			return 0;
		}
		if (!newer(e, &st.st_mtim)) {
			P->res->kept_newer++;
			return 0; /* its subtree is skipped */
		}
		r = hoard_fs_unlink(P->fs, parent, e->name);
		if (r < 0)
			return r;
		P->res->replaced++;
	} else if (r != -ENOENT) {
		return r;
	}
	r = hoard_fs_mkdir(P->fs, parent, e->name, e->mode & 07777, &ctx, &st);
	if (r < 0)
		return r;
	hoard_fs_forget(P->fs, st.st_ino, 1);
	P->local[i] = st.st_ino;
	*made = true;
	note_changed(P, parent, e->name);
	return 0;
}

static int apply_entry(struct pull *P, size_t i)
{
	const struct hoard_mentry *e = &P->m.e[i];
	const struct hoard_mentry *t = e->type == HOARD_M_HARDLINK
					       ? &P->m.e[e->link]
					       : e;
	uint64_t parent = P->local[e->parent], ino = 0;
	struct hoard_inode in;
	struct stat st;
	bool replace = false;
	int r;

	if (!parent)
		return 0; /* under a directory we did not take */
	if (e->type == HOARD_M_HARDLINK && !P->local[e->link])
		return 0;
	r = hoard_fs_lookup(P->fs, parent, e->name, &st);
	if (r == 0) {
		hoard_fs_forget(P->fs, st.st_ino, 1);
		r = inode_load(P->fs, st.st_ino, &in);
		if (r < 0)
			return r;
		r = same_entry(P, st.st_ino, &in, e);
		inode_clear(&in);
		if (r < 0)
			return r;
		if (r == 1) {
			P->local[i] = st.st_ino;
			P->res->identical++;
			return 0;
		}
		if (S_ISDIR(st.st_mode)) {
			P->res->conflicts++; /* never replace a directory */
			return 0;
		}
		if (!newer(t, &st.st_mtim)) {
			P->local[i] = st.st_ino;
			P->res->kept_newer++;
			return 0;
		}
		replace = true;
	} else if (r != -ENOENT) {
		return r;
	}
	if (e->type == HOARD_M_FILE)
		r = put_file(P, parent, e->name, e, &ino);
	else
		r = put_other(P, parent, e->name, e, &ino);
	if (r < 0)
		return r;
	P->local[i] = ino;
	if (replace)
		P->res->replaced++;
	else
		P->res->added++;
	note_changed(P, parent, e->name);
	return 0;
}

/* Remove what interrupted pulls left under temporary names in dir: names
 * of this process, or of one that is gone. */
static void sweep_tmp(struct pull *P, uint64_t dir)
{
	uint8_t k[8 + sizeof(TMP_PREFIX)];
	char names[8][NAME_MAX_LEN + 1];
	struct hoard_iter *it;
	int n = 0;

	it = hoard_iter_new(hoard_fs_store(P->fs), HOARD_CF_DIRENTS, k,
			    dirent_key(k, dir, TMP_PREFIX));
	if (!it)
		return;
	for (; n < 8 && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl;
		const uint8_t *key = hoard_iter_key(it, &kl);
		const char *name;
		uint64_t parent;
		size_t nl;
		long pid;

		if (dirent_key_decode(key, kl, &parent, &name, &nl) < 0)
			continue;
		memcpy(names[n], name, nl);
		names[n][nl] = '\0';
		pid = strtol(names[n] + strlen(TMP_PREFIX), NULL, 10);
		if (pid > 0 && pid != getpid() && kill((pid_t)pid, 0) == 0)
			continue; /* a pull under way elsewhere */
		n++;
	}
	hoard_iter_free(it);
	for (int i = 0; i < n; i++)
		if (hoard_fs_unlink(P->fs, dir, names[i]) == 0)
			note_changed(P, dir, names[i]);
}

static int apply_tree(struct pull *P, uint64_t root, char *errbuf,
		      size_t errlen)
{
	bool *made = calloc(P->m.n, sizeof(*made));
	char path[512];
	int r = 0;

	if (!made)
		return -ENOMEM;
	P->local[0] = root;
	for (size_t i = 1; i < P->m.n; i++) {
		if (P->m.e[i].type == HOARD_M_DIR)
			r = apply_dir(P, i, P->local[P->m.e[i].parent],
				      &made[i]);
		else
			r = apply_entry(P, i);
		if (r < 0) {
			hoard_manifest_path(&P->m, i, path, sizeof(path));
			if (r == -EAGAIN)
				hoard_errf(
					errbuf, errlen, r,
					"'%s': a local chunk vanished during "
					"the pull; run it again",
					path);
			else
				hoard_errf(errbuf, errlen, r, "'%s': %s", path,
					   strerror(-r));
			break;
		}
	}
	for (size_t i = 0; i < P->m.n; i++)
		if (P->m.e[i].type == HOARD_M_DIR && P->local[i])
			sweep_tmp(P, P->local[i]);
	/* Directory times last (making entries in them changed them). */
	for (size_t i = P->m.n; r == 0 && i-- > 1;)
		if (made[i] && P->local[i])
			set_meta(P, P->local[i], &P->m.e[i], true);
	free(made);
	return r;
}

/* ---- the engine ---------------------------------------------------------------- */

static int pull_config(struct pull *P, char *errbuf, size_t errlen)
{
	struct hoard_remote_config c;
	int e = remote_get_config(P->r, &c, errbuf, errlen);

	if (e < 0)
		return e;
	e = memcmp(c.secret, hoard_store_key(hoard_fs_store(P->fs))->secret,
		   HOARD_SECRET_SIZE);
	memset(&c, 0, sizeof(c));
	if (e)
		return hoard_errf(errbuf, errlen, -EKEYREJECTED,
				  "this store's chunk secret differs from the "
				  "repository's at %s: its chunks cannot be "
				  "used here.  Pull into a store made with "
				  "'hoard init --from %s --store NEWDIR'",
				  P->r->url, P->r->url);
	return 0;
}

static void pull_release(struct pull *P)
{
	hoard_core_unstage(P->fs, &P->staged);
}

/* A lazy pull: the store remembers the remote (the daemon fetches from
 * it) and says format 2 (version-2 chunk records), before any record. */
static int lazy_setting(struct pull *P, char *errbuf, size_t errlen)
{
	struct hoard_store *st = hoard_fs_store(P->fs);
	uint8_t v[4];
	int e;

	hoard_put_be32(v, HOARD_STORE_FORMAT);
	e = hoard_store_put(st, HOARD_CF_DEFAULT, "format", 6, v, 4);
	if (e == 0)
		e = hoard_store_put(st, HOARD_CF_DEFAULT, "remote", 6,
				    P->o->url, strlen(P->o->url));
	if (e < 0)
		return hoard_errf(errbuf, errlen, e,
				  "writing the store's remote setting: %s",
				  strerror(-e));
	return 0;
}

int hoard_sync_pull(struct hoard_fs *fs, const struct hoard_sync_opts *o,
		    struct hoard_sync_result *res, char *errbuf, size_t errlen)
{
	const char *ref = o->ref ? o->ref : HOARD_SYNC_DEFAULT_REF;
	struct pull P = {.fs = fs, .o = o, .res = res};
	struct remote r;
	uint64_t root;
	bool fresh = false, held = false;
	int e;

	memset(res, 0, sizeof(*res));
	res->pull = true;
	if (errbuf && errlen)
		*errbuf = '\0';
	e = sync_names_check(o->volume, ref, errbuf, errlen);
	if (e < 0)
		return e;
	e = remote_open(&r, o->s3, o->url, o->jobs, errbuf, errlen);
	P.r = &r;
	P.errbuf = errbuf;
	P.errlen = errlen;
	pthread_mutex_init(&P.mu, NULL);
	if (idmap_init(&P.staged, 1024) < 0)
		e = -ENOMEM;
	if (e == 0) {
		r.progress = o->progress;
		r.progress_ud = o->progress_ud;
		e = pull_config(&P, errbuf, errlen);
	}
	if (e == 0)
		e = get_manifest(&P, ref, errbuf, errlen);
	if (e == 0)
		e = remote_load_index(&r, hoard_store_dir(hoard_fs_store(fs)),
				      errbuf, errlen);
	if (e == 0) {
		progress_phase(&r);
		e = plan_fetch(&P, errbuf, errlen);
	}
	if (e == 0 && o->lazy)
		e = lazy_setting(&P, errbuf, errlen);
	else if (e == 0)
		e = run_parallel(P.n_ranges, r.jobs, fetch_range, &P);
	if (e == 0) { /* after the fetch: a refused chunk makes no volume */
		fresh = hoard_fs_volume(fs, o->volume, false, &root) == -ENOENT;
		e = hoard_fs_volume(fs, o->volume, true, &root);
		if (e < 0)
			hoard_errf(errbuf, errlen, e, "volume '%s': %s",
				   o->volume, strerror(-e));
	}
	if (e == 0 && P.trusted && P.sha) { /* for the lazy fetch, 5.4 */
		hoard_core_digests_hold(fs, true);
		held = true;
		e = sync_chunk_sha_save(hoard_fs_store(fs), P.sha,
					sha_checked(&P));
	}
	if (e == 0) {
		P.local = calloc(P.m.n, sizeof(*P.local));
		e = P.local ? apply_tree(&P, root, errbuf, errlen) : -ENOMEM;
	}
	if (e == 0 && fresh) /* a volume this pull made: the root's too */
		set_meta(&P, root, &P.m.e[0], true);
	if (P.staged.t.esz) /* initialized */
		pull_release(&P);
	if (held)
		hoard_core_digests_hold(fs, false);
	if (e == 0)
		e = hoard_store_sync(hoard_fs_store(fs));
	if (e == 0 && P.trusted && P.rf.is_signed)
		e = sync_rollback_note(hoard_fs_store(fs), &P.site, &P.rf);
	res->chunks_fetched = P.fetched;
	res->bytes_fetched = P.fetched_bytes;
	if (r.cl)
		result_finish(&r, res);
	for (size_t i = 0; i < P.n_chg; i++) {
		o->changed(o->changed_ud, P.chg[i].parent, P.chg[i].name);
		free(P.chg[i].name);
	}
	free(P.chg);
	free(P.local);
	free(P.want);
	free(P.ranges);
	free(P.sha);
	free(P.sha_local);
	idmap_free(&P.staged);
	hoard_manifest_clear(&P.m);
	pthread_mutex_destroy(&P.mu);
	remote_close(&r);
	return e;
}

/* ---- merge: another volume of the store as the source --------------------------- */

int hoard_sync_merge(struct hoard_fs *fs, const char *src, const char *dst,
		     void (*changed)(void *ud, uint64_t parent,
				     const char *name),
		     void *changed_ud, struct hoard_sync_result *res,
		     char *errbuf, size_t errlen)
{
	struct hoard_sync_opts o = {
		.volume = dst, .changed = changed, .changed_ud = changed_ud};
	struct pull P = {.fs = fs, .o = &o, .res = res, .merge = true};
	uint64_t t0 = hoard_now_mono_ns(), sroot, droot;
	int e;

	memset(res, 0, sizeof(*res));
	res->pull = true;
	if (errbuf && errlen)
		*errbuf = '\0';
	P.errbuf = errbuf;
	P.errlen = errlen;
	pthread_mutex_init(&P.mu, NULL);
	e = idmap_init(&P.staged, 16);
	if (e == 0) {
		e = hoard_fs_volume(fs, src, false, &sroot);
		if (e < 0)
			hoard_errf(errbuf, errlen, e, "volume '%s': %s", src,
				   e == -ENOENT ? "there is no such volume"
						: strerror(-e));
	}
	if (e == 0) {
		e = hoard_fs_volume(fs, dst, false, &droot);
		if (e < 0)
			hoard_errf(errbuf, errlen, e, "volume '%s': %s", dst,
				   e == -ENOENT ? "there is no such volume"
						: strerror(-e));
	}
	if (e == 0 && sroot == droot)
		e = hoard_errf(errbuf, errlen, -EINVAL,
			       "cannot merge volume '%s' into itself", src);
	if (e == 0) {
		e = sync_snapshot(fs, sroot, &P.m);
		if (e < 0)
			hoard_errf(errbuf, errlen, e, "reading volume '%s': %s",
				   src, strerror(-e));
	}
	for (size_t i = 0; e == 0 && i < P.m.n; i++) {
		if (P.m.e[i].type == HOARD_M_FILE) {
			res->files++;
			res->logical_bytes += P.m.e[i].size;
		}
	}
	if (e == 0) {
		P.local = calloc(P.m.n, sizeof(*P.local));
		e = P.local ? apply_tree(&P, droot, errbuf, errlen) : -ENOMEM;
	}
	if (e == 0)
		e = hoard_store_sync(hoard_fs_store(fs));
	for (size_t i = 0; i < P.n_chg; i++) {
		if (changed)
			changed(changed_ud, P.chg[i].parent, P.chg[i].name);
		free(P.chg[i].name);
	}
	free(P.chg);
	free(P.local);
	idmap_free(&P.staged);
	hoard_manifest_clear(&P.m);
	pthread_mutex_destroy(&P.mu);
	res->elapsed_ns = hoard_now_mono_ns() - t0;
	return e;
}
