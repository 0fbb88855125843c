// SPDX-License-Identifier: MIT
/*
 * sync: the push engine (sync.h, docs/REMOTE.md section 7); what it shares
 * with pull and remote gc is in syncremote.c.
 *
 * Push, in order:
 *   1. config: read PREFIX/config; create it from the store's secret when
 *      the repository is new; refuse when its secret is another one.
 *   2. index: list PREFIX/packs/ and read every *.idx not in the local
 *      cache (STORE/remote/<hash of bucket+prefix>/), so the bucket's chunk
 *      ids are known.
 *   3. snapshot: under the core's metadata lock (hoard_core_read_locked,
 *      core.h), walk the volume and build its manifest (names, modes,
 *      owners, mtimes, symlinks, hard links, each file's extents).  Every
 *      file is as its last commit left it, all at one instant; the walk
 *      only reads RocksDB, so the lock is held for milliseconds per
 *      thousand files.
 *   4. packs: the chunks the bucket lacks, in manifest order, cut into
 *      packs of about HOARD_PACK_TARGET frame bytes; `jobs` threads read
 *      the frames (each verified against its id), PUT the pack, then its
 *      index.  A frame that vanished since the snapshot (its file was
 *      rewritten and the chunk dropped) restarts from step 3; what was
 *      uploaded stays useful, since packs are named by content.
 *   5. the manifest (unless the bucket has it), then the ref: the commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hoard/chunker.h"
#include "hoard/codec.h"
#include "hoard/core.h"
#include "hoard/idmap.h"
#include "hoard/util.h"
#include "pack-internal.h"
#include "sync-internal.h"

#define SNAPSHOT_ATTEMPTS 3

/* ---- snapshot of a volume ---------------------------------------------------- */

struct chunk_ref {
	struct hoard_id id;
	uint32_t raw_len, frame_len;
};

struct snap {
	struct hoard_fs *fs;
	struct hoard_manifest m;
	struct idmap seen;	 /* distinct chunk ids */
	struct chunk_ref *order; /* distinct chunks, first-use order */
	size_t n_order, cap_order;
	struct idmap links; /* ino of a file with nlink > 1 -> entry index */
	uint64_t files, bytes;
	uint64_t root;
};

/* Hard links: inode numbers kept in an idmap keyed by the ino's bytes. */
static void ino_id(uint64_t ino, struct hoard_id *id)
{
	memset(id, 0, sizeof(*id));
	hoard_put_be64(id->b, ino);
	id->b[15] = 1;
}

static int snap_extents(struct snap *s, uint64_t ino, struct hoard_mentry *e)
{
	struct hoard_iter *it;
	uint8_t k[8];
	size_t cap = 0;
	int r = 0;

	ino_key(k, ino);
	it = hoard_iter_new(hoard_fs_store(s->fs), HOARD_CF_EXTENTS, k, 8);
	if (!it)
		return -ENOMEM;
	for (; r == 0 && hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *key = hoard_iter_key(it, &kl);
		const uint8_t *v = hoard_iter_value(it, &vl);
		struct hoard_mextent *x;
		struct idmap_ent *d;
		struct extent_rec er;

		if (extent_decode(key, kl, v, vl, &er) < 0) {
			r = -EBADMSG;
			break;
		}
		x = hoard_grow(e->ext, &cap, e->n_ext + 1, sizeof(*x), 16);
		if (!x) {
			r = -ENOMEM;
			break;
		}
		e->ext = x;
		x = &e->ext[e->n_ext++];
		x->off = er.off;
		x->id = er.id;
		x->len = er.len;
		d = idmap_add(&s->seen, &x->id);
		if (!d) {
			r = -ENOMEM;
			break;
		}
		if (d->count++ == 0) {
			struct chunk_rec rec;

			r = chunk_rec_load(s->fs, &x->id, &rec);
			if (r < 0)
				break;
			if (s->n_order == s->cap_order) {
				size_t c2 = s->cap_order ? s->cap_order * 2
							 : 256;
				void *o = realloc(s->order,
						  c2 * sizeof(*s->order));

				if (!o) {
					r = -ENOMEM;
					break;
				}
				s->order = o;
				s->cap_order = c2;
			}
			s->order[s->n_order++] = (struct chunk_ref){
				.id = x->id,
				.raw_len = rec.raw_size,
				.frame_len = rec.frame_size,
			};
		}
	}
	if (r == 0)
		r = hoard_iter_status(it);
	hoard_iter_free(it);
	return r;
}

static int snap_entry(struct snap *s, uint32_t parent, const char *name,
		      uint64_t ino, uint64_t **queue, size_t *nq, size_t *cq)
{
	struct hoard_inode in;
	struct hoard_mentry e = {0};
	struct idmap_ent *l = NULL;
	long idx;
	int r = inode_load(s->fs, ino, &in);

	if (r < 0)
		return r;
	e.parent = parent;
	e.name = (char *)name;
	e.mode = in.mode;
	e.uid = in.uid;
	e.gid = in.gid;
	e.mtime_s = in.mtime.tv_sec;
	e.mtime_ns = (uint32_t)in.mtime.tv_nsec;
	if (S_ISDIR(in.mode)) {
		e.type = HOARD_M_DIR;
	} else if (S_ISREG(in.mode)) {
		if (in.nlink > 1) {
			struct hoard_id k;

			ino_id(ino, &k);
			l = idmap_add(&s->links, &k);
			if (!l) {
				inode_clear(&in);
				return -ENOMEM;
			}
		}
		if (l && l->count > 0) {
			e.type = HOARD_M_HARDLINK;
			e.link = (uint32_t)(l->count - 1);
		} else {
			e.type = HOARD_M_FILE;
			e.size = in.size;
			r = snap_extents(s, ino, &e);
			if (r < 0) {
				free(e.ext);
				inode_clear(&in);
				return r;
			}
			s->files++;
			s->bytes += in.size;
		}
	} else if (S_ISLNK(in.mode)) {
		e.type = HOARD_M_SYMLINK;
		e.target = in.target;
		e.size = in.target ? strlen(in.target) : 0;
	} else {
		e.type = HOARD_M_NODE;
		e.rdev = in.rdev;
	}
	idx = hoard_manifest_add(&s->m, &e);
	inode_clear(&in);
	if (idx < 0) {
		free(e.ext);
		return (int)idx;
	}
	if (l && l->count == 0)
		l->count = idx + 1;
	if (e.type == HOARD_M_DIR) {
		uint64_t *q = hoard_grow(*queue, cq, *nq + 2, sizeof(*q), 64);

		if (!q)
			return -ENOMEM;
		*queue = q;
		(*queue)[(*nq)++] = ino;
		(*queue)[(*nq)++] = (uint64_t)idx;
	}
	return 0;
}

/* Walk the volume breadth first (the core's lock held): parents come
 * first. */
static int snap_walk(struct snap *s, uint64_t root)
{
	uint64_t *queue = NULL;
	size_t nq = 0, cq = 0, head = 0;
	int r = 0;

	if (nq + 2 > cq) {
		queue = malloc(64 * sizeof(*queue));
		if (!queue)
			return -ENOMEM;
		cq = 64;
	}
	queue[nq++] = root;
	queue[nq++] = 0;
	while (r == 0 && head < nq) {
		uint64_t dir = queue[head++];
		uint32_t idx = (uint32_t)queue[head++];
		struct hoard_iter *it;
		uint8_t k[8];

		ino_key(k, dir);
		it = hoard_iter_new(hoard_fs_store(s->fs), HOARD_CF_DIRENTS, k,
				    8);
		if (!it) {
			r = -ENOMEM;
			break;
		}
		for (; r == 0 && hoard_iter_valid(it); hoard_iter_next(it)) {
			size_t kl, vl;
			const uint8_t *key = hoard_iter_key(it, &kl);
			const uint8_t *v = hoard_iter_value(it, &vl);
			char name[NAME_MAX_LEN + 1];
			const char *np;
			uint64_t parent, child;
			size_t nl;

			if (dirent_key_decode(key, kl, &parent, &np, &nl) < 0 ||
			    dirent_decode(v, vl, &child, NULL) < 0) {
				r = -EBADMSG;
				break;
			}
			memcpy(name, np, nl);
			name[nl] = '\0';
			r = snap_entry(s, idx, name, child, &queue, &nq, &cq);
		}
		if (r == 0)
			r = hoard_iter_status(it);
		hoard_iter_free(it);
	}
	free(queue);
	return r;
}

static void snap_clear(struct snap *s)
{
	hoard_manifest_clear(&s->m);
	idmap_free(&s->seen);
	idmap_free(&s->links);
	free(s->order);
	memset(s, 0, sizeof(*s));
}

/* The walk under the core's lock (hoard_core_read_locked): one state. */
static int snap_locked(struct hoard_fs *fs, void *ud)
{
	struct snap *s = ud;
	struct hoard_inode in;
	int r;

	r = inode_load(fs, s->root, &in);
	if (r == 0) {
		r = hoard_manifest_init(&s->m, in.mode, in.uid, in.gid,
					in.mtime.tv_sec,
					(uint32_t)in.mtime.tv_nsec);
		inode_clear(&in);
	}
	if (r == 0)
		r = snap_walk(s, s->root);
	return r;
}

static int snap_take(struct hoard_fs *fs, uint64_t root, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	s->fs = fs;
	s->root = root;
	if (idmap_init(&s->seen, 1024) < 0 || idmap_init(&s->links, 64) < 0)
		return -ENOMEM;
	return hoard_core_read_locked(fs, snap_locked, s);
}

int sync_snapshot(struct hoard_fs *fs, uint64_t root,
		  struct hoard_manifest *ret)
{
	struct snap s;
	int r = snap_take(fs, root, &s);

	if (r == 0) {
		*ret = s.m;
		memset(&s.m, 0, sizeof(s.m));
	}
	snap_clear(&s);
	return r;
}

/* ---- push ------------------------------------------------------------------ */

struct pack_plan {
	size_t first, n; /* range of push.todo */
	uint64_t bytes;
};

struct push {
	struct remote *r;
	struct hoard_fs *fs;
	struct chunk_ref *todo; /* chunks the bucket lacks, manifest order */
	size_t n_todo;
	struct pack_plan *plans;
	size_t n_plans;
	pthread_mutex_t mu; /* protects errbuf, packs_new, bytes_new */
	char *errbuf;
	size_t errlen;
	uint64_t packs_new, bytes_new;
};

#define push_fail(p, err, ...)                                                 \
	set_err_oncef(&(p)->mu, (p)->errbuf, (p)->errlen, err, __VA_ARGS__)

/* Read and verify one frame, append it to the pack. */
static int pack_add_frame(struct push *p, const struct chunk_ref *c,
			  struct pack_writer *w)
{
	void *frame;
	size_t flen;
	char hex[HOARD_ID_HEX_SIZE];
	int r;

	r = hoard_store_get(hoard_fs_store(p->fs), HOARD_CF_CHUNKDATA, c->id.b,
			    HOARD_ID_SIZE, &frame, &flen);
	hoard_id_hex(&c->id, hex);
	if (r == -ENOENT) {
		struct chunk_rec rec;

		if (chunk_rec_load(p->fs, &c->id, &rec) == 0 &&
		    !(rec.flags & 1) && rec.has_loc && rec.refcount > 0)
			return push_fail(
				p, -ENODATA,
				"chunk %s is not local (a lazy pull's, "
				"REMOTE.md 10) and this repository "
				"lacks it: run 'hoard prefetch' on the "
				"volume first",
				hex);
		return -ESTALE; /* dropped since the snapshot */
	}
	if (r < 0)
		return push_fail(p, r, "reading chunk %s: %s", hex,
				 strerror(-r));
	r = pack_writer_add(w, hoard_store_key(hoard_fs_store(p->fs)), &c->id,
			    frame, (uint32_t)flen, c->raw_len);
	free(frame);
	if (r == -EBADMSG)
		return push_fail(p, -EBADMSG,
				 "local chunk %s is corrupt: not pushed (run "
				 "'hoard fsck')",
				 hex);
	return r;
}

static int push_pack(void *ud, size_t k)
{
	struct push *p = ud;
	struct pack_plan *pl = &p->plans[k];
	struct pack_writer w;
	char *key = NULL;
	int r;

	r = pack_writer_init(&w, pl->bytes + 4096, pl->n);
	for (size_t i = 0; r == 0 && i < pl->n; i++)
		r = pack_add_frame(p, &p->todo[pl->first + i], &w);
	if (r == 0)
		r = pack_writer_finish(&w);
	if (r < 0)
		goto out;
	r = pack_writer_upload(&w, p->r, &key);
	if (r < 0) {
		if (key)
			push_fail(p, r, "uploading %s: %s", key,
				  hoard_s3_last_error());
		goto out;
	}
	progress_add(p->r, w.len, 1);
	pthread_mutex_lock(&p->mu);
	p->packs_new++;
	p->bytes_new += w.len;
	pthread_mutex_unlock(&p->mu);
out:
	free(key);
	pack_writer_clear(&w);
	return r;
}

/* The chunks of the snapshot the bucket lacks, cut into packs. */
static int push_plan(struct push *p, const struct snap *s,
		     struct hoard_sync_result *res)
{
	size_t cap = 0;

	p->todo = malloc((s->n_order ? s->n_order : 1) * sizeof(*p->todo));
	if (!p->todo)
		return -ENOMEM;
	p->n_todo = 0;
	for (size_t i = 0; i < s->n_order; i++) {
		if (hoard_rindex_get(p->r->rx, &s->order[i].id)) {
			res->bytes_dedup += s->order[i].frame_len;
			continue;
		}
		p->todo[p->n_todo++] = s->order[i];
	}
	p->n_plans = 0;
	for (size_t i = 0; i < p->n_todo; i++) {
		struct pack_plan *pl;

		if (p->n_plans == 0 ||
		    p->plans[p->n_plans - 1].bytes >= HOARD_PACK_TARGET) {
			void *x = hoard_grow(p->plans, &cap, p->n_plans + 1,
					     sizeof(*pl), 16);

			if (!x)
				return -ENOMEM;
			p->plans = x;
			p->plans[p->n_plans++] = (struct pack_plan){.first = i,
								    .n = 0};
		}
		pl = &p->plans[p->n_plans - 1];
		pl->n++;
		pl->bytes += p->todo[i].frame_len;
		p->r->prog.bytes_total += p->todo[i].frame_len;
	}
	p->r->prog.objects_total += p->n_plans;
	return 0;
}

static int push_config(struct remote *r, struct hoard_fs *fs, char *errbuf,
		       size_t errlen)
{
	const struct hoard_key *key = hoard_store_key(hoard_fs_store(fs));
	struct hoard_remote_config c;
	uint8_t buf[HOARD_CONFIG_SIZE];
	char *k;
	int e = remote_get_config(r, &c, errbuf, errlen);

	if (e == 0) {
		if (memcmp(c.secret, key->secret, HOARD_SECRET_SIZE))
			return hoard_errf(
				errbuf, errlen, -EKEYREJECTED,
				"this store's chunk secret differs from the "
				"repository's at %s, so its chunk ids mean "
				"other things there: nothing was pushed.  Make "
				"a store keyed like the repository ('hoard "
				"init --from %s --store NEWDIR'), pull into it "
				"and push from it, or push to another prefix",
				r->url, r->url);
		return 0;
	}
	if (e != -ENOENT)
		return e;
	/* A new repository: ours. */
	hoard_remote_config_make(&c, key->secret,
				 hoard_store_zstd_level(hoard_fs_store(fs)));
	hoard_remote_config_encode(&c, buf);
	k = remote_key(r, "config");
	if (!k)
		return -ENOMEM;
	e = hoard_s3_put_object(r->cl, r->bucket, k, buf, sizeof(buf), NULL);
	free(k);
	memset(buf, 0, sizeof(buf));
	memset(&c, 0, sizeof(c));
	if (e < 0)
		return s3_fail(errbuf, errlen, e,
			       "writing the repository config");
	return 0;
}

/* 1 when the ref at key names a manifest with the same tree as mb (all
 * but the nonce), 0 when not (or no ref), -errno.  A push that signs also
 * needs the ref signed by its key, valid where it is. */
static int same_as_ref(struct remote *r, const char *key, const uint8_t *mb,
		       size_t ml, const struct hoard_sign_key *sign,
		       const struct hoard_ref_site *site,
		       char ret_name[HOARD_SHA256_HEX_SIZE], int64_t *ret_time)
{
	struct hoard_ref cur;
	void *buf = NULL;
	size_t len;
	char *mkey;
	int e = hoard_s3_get_object(r->cl, r->bucket, key, &buf, &len, NULL);

	if (e == -ENOENT)
		return 0;
	if (e < 0)
		return e;
	e = hoard_ref_decode(buf, len, &cur, NULL, 0);
	free(buf);
	if (e < 0)
		return 0; /* not ours: replace it */
	if (sign && (!cur.is_signed || memcmp(cur.key.b, sign->pub.b, 32) ||
		     hoard_ref_verify(&cur, site) < 0))
		return 0; /* sign it */
	if (sign)
		*ret_time = cur.time; /* ours: the next one is later */
	mkey = remote_key(r, "manifests/%s", cur.manifest);
	if (!mkey)
		return -ENOMEM;
	e = hoard_s3_get_object(r->cl, r->bucket, mkey, &buf, &len, NULL);
	free(mkey);
	if (e == -ENOENT)
		return 0;
	if (e < 0)
		return e;
	e = len == ml && !memcmp(buf, mb, 16) &&
	    !memcmp((uint8_t *)buf + 32, mb + 32, ml - 32);
	free(buf);
	if (e)
		memcpy(ret_name, cur.manifest, HOARD_SHA256_HEX_SIZE);
	return e;
}

/*
 * The commit: the manifest, then the ref.  The manifest carries a fresh
 * nonce, so it is a new object that no gc can be deleting; when the ref
 * already names the same tree, nothing is uploaded.
 */
static int push_commit(struct remote *r, const struct hoard_sync_opts *o,
		       const char *ref, struct snap *s,
		       struct hoard_sync_result *res, char *errbuf,
		       size_t errlen)
{
	struct hoard_ref rf = {.files = s->files, .bytes = s->bytes};
	struct hoard_ref_site site;
	uint8_t *mb = NULL;
	size_t ml, rl;
	char *key = NULL, *rtext = NULL;
	int64_t last = INT64_MIN;
	int e;

	e = hoard_random(s->m.nonce, sizeof(s->m.nonce));
	if (e == 0)
		e = hoard_manifest_encode(&s->m, &mb, &ml, errbuf, errlen);
	if (e < 0)
		return e;
	key = remote_key(r, "refs/%s/%s", o->volume, ref);
	if (!key) {
		e = -ENOMEM;
		goto out;
	}
	remote_ref_site(r, o->volume, ref, &site);
	e = same_as_ref(r, key, mb, ml, o->sign, &site, res->manifest, &last);
	if (e < 0) {
		e = s3_fail(errbuf, errlen, e, "reading the current ref");
		goto out;
	}
	if (e == 1) {
		e = 0;
		if (o->sign)
			hoard_sign_key_id(&o->sign->pub, res->key_id);
		goto out; /* unchanged: nothing to commit */
	}
	hoard_sha256_hex(mb, ml, res->manifest);
	free(key);
	key = remote_key(r, "manifests/%s", res->manifest);
	if (!key) {
		e = -ENOMEM;
		goto out;
	}
	e = hoard_s3_put_object(r->cl, r->bucket, key, mb, ml, NULL);
	if (e < 0) {
		e = s3_fail(errbuf, errlen, e, "uploading the manifest");
		goto out;
	}
	res->manifest_new = true;
	free(key);
	key = remote_key(r, "refs/%s/%s", o->volume, ref);
	if (!key) {
		e = -ENOMEM;
		goto out;
	}
	memcpy(rf.manifest, res->manifest, sizeof(rf.manifest));
	rf.time = time(NULL);
	if (o->sign && last != INT64_MIN && last < INT64_MAX && rf.time <= last)
		rf.time = last + 1; /* REMOTE.md 6.2: strictly increasing */
	if (o->sign) {
		e = hoard_ref_sign(&rf, o->sign, &site);
		if (e < 0) {
			hoard_errf(errbuf, errlen, e, "signing the ref: %s",
				   strerror(-e));
			goto out;
		}
		hoard_sign_key_id(&rf.key, res->key_id);
	}
	e = hoard_ref_encode(&rf, &rtext, &rl);
	if (e < 0)
		goto out;
	e = hoard_s3_put_object(r->cl, r->bucket, key, rtext, rl, NULL);
	if (e < 0) {
		e = s3_fail(errbuf, errlen, e, "uploading the ref");
		goto out;
	}
	res->ref_updated = true;
out:
	free(rtext);
	free(key);
	free(mb);
	return e;
}

int sync_names_check(const char *volume, const char *ref, char *errbuf,
		     size_t errlen)
{
	if (!hoard_fs_volume_name_ok(volume))
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "'%s' is not a volume name", volume);
	if (!hoard_ref_name_ok(ref))
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "'%s' is not a ref name (1-64 of A-Z a-z 0-9 "
				  ". _ -, not starting with '.')",
				  ref);
	return 0;
}

/* The SHA-256 of the chunks of m (REMOTE.md 5.4).  Those read and hashed
 * are kept as the store's rows, so the next signed push reads only new
 * chunks: the rows are right for as long as their chunk id is (the keyed
 * id fixes the bytes), and the store deletes a row with its chunk. */
static int push_hash(struct hoard_fs *fs, struct hoard_manifest *m,
		     unsigned jobs, struct hoard_sync_result *res, char *errbuf,
		     size_t errlen)
{
	struct hoard_chunk_sha *t;
	size_t n;
	int e = sync_manifest_hash(hoard_fs_store(fs), m, jobs, &t, &n, errbuf,
				   errlen);

	if (e == 0 && n) {
		/* the store has rows now: a chunk freed from here on takes
		 * its row along (chunks.c) */
		hoard_core_digests_hold(fs, true);
		e = sync_chunk_sha_save(hoard_fs_store(fs), t, n);
		hoard_core_digests_hold(fs, false);
		if (e < 0)
			hoard_errf(errbuf, errlen, e,
				   "keeping the chunks' SHA-256: %s",
				   strerror(-e));
	}
	res->chunks_hashed = n;
	free(t);
	return e;
}

int hoard_sync_push(struct hoard_fs *fs, const struct hoard_sync_opts *o,
		    struct hoard_sync_result *res, char *errbuf, size_t errlen)
{
	const char *ref = o->ref ? o->ref : HOARD_SYNC_DEFAULT_REF;
	struct remote r;
	struct snap s = {0};
	struct push p = {0};
	uint64_t root;
	int e;

	memset(res, 0, sizeof(*res));
	if (errbuf && errlen)
		*errbuf = '\0';
	e = sync_names_check(o->volume, ref, errbuf, errlen);
	if (e < 0)
		return e;
	e = hoard_fs_volume(fs, o->volume, false, &root);
	if (e == -ENOENT)
		return hoard_errf(errbuf, errlen, e,
				  "the store has no volume '%s'", o->volume);
	if (e < 0)
		return hoard_errf(errbuf, errlen, e, "volume '%s': %s",
				  o->volume, strerror(-e));
	e = remote_open(&r, o->s3, o->url, o->jobs, errbuf, errlen);
	if (e < 0)
		goto out;
	r.progress = o->progress;
	r.progress_ud = o->progress_ud;
	r.skip_condemned = true; /* REMOTE.md 9: never rely on those */
	e = push_config(&r, fs, errbuf, errlen);
	if (e == 0)
		e = remote_load_index(&r, hoard_store_dir(hoard_fs_store(fs)),
				      errbuf, errlen);
	if (e < 0)
		goto out;
	p.r = &r;
	p.fs = fs;
	p.errbuf = errbuf;
	p.errlen = errlen;
	pthread_mutex_init(&p.mu, NULL);
	for (int attempt = 0;; attempt++) {
		snap_clear(&s);
		e = snap_take(fs, root, &s);
		if (e < 0) {
			hoard_errf(errbuf, errlen, e, "reading volume '%s': %s",
				   o->volume, strerror(-e));
			break;
		}
		res->bytes_dedup = 0;
		progress_phase(&r);
		free(p.todo);
		free(p.plans);
		p.todo = NULL;
		p.plans = NULL;
		e = push_plan(&p, &s, res);
		if (e == 0)
			e = run_parallel(p.n_plans, r.jobs, push_pack, &p);
		if (e != -ESTALE)
			break;
		if (attempt + 1 == SNAPSHOT_ATTEMPTS) {
			hoard_errf(errbuf, errlen, -EAGAIN,
				   "volume '%s' kept changing under the push "
				   "(%d snapshots); try again",
				   o->volume, SNAPSHOT_ATTEMPTS);
			e = -EAGAIN;
			break;
		}
		/* what was uploaded so far is in the bucket's index now */
		e = remote_load_index(&r, hoard_store_dir(hoard_fs_store(fs)),
				      errbuf, errlen);
		if (e < 0)
			break;
	}
	/* Two first pushes may have raced to write the config: commit only
	 * if the one that stayed is ours (else its packs mean nothing). */
	if (e == 0)
		e = push_config(&r, fs, errbuf, errlen);
	if (e == 0 && o->sign) /* REMOTE.md 5.4: the chunk bytes signed too */
		e = push_hash(fs, &s.m, r.jobs, res, errbuf, errlen);
	if (e == 0)
		e = push_commit(&r, o, ref, &s, res, errbuf, errlen);
	if (e == 0) {
		res->files = s.files;
		res->logical_bytes = s.bytes;
		res->chunks = s.n_order;
		res->chunks_new = p.n_todo;
		res->packs_new = p.packs_new;
		res->bytes_new = p.bytes_new;
	}
	pthread_mutex_destroy(&p.mu);
	free(p.todo);
	free(p.plans);
out:
	if (r.cl)
		result_finish(&r, res);
	remote_close(&r);
	snap_clear(&s);
	return e;
}
