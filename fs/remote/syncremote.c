// SPDX-License-Identifier: MIT
/*
 * syncremote: what push, pull and remote gc share (sync-internal.h): the
 * repository handle, its config, the bucket's chunk index (every pack
 * index, cached in the store directory), a small thread pool, progress.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hoard/util.h"
#include "sync-internal.h"

/* ---- common --------------------------------------------------------------- */

int s3_fail(char *errbuf, size_t errlen, int err, const char *what)
{
	const char *m = hoard_s3_last_error();

	if (m && *m)
		return hoard_errf(errbuf, errlen, err, "%s: %s", what, m);
	return hoard_errf(errbuf, errlen, err, "%s: %s", what, strerror(-err));
}

int remote_open(struct remote *r, const struct hoard_s3_config *s3,
		const char *url, unsigned jobs, char *errbuf, size_t errlen)
{
	char *prefix = NULL;
	int e;

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	r->url = url;
	r->jobs = jobs ? jobs : HOARD_SYNC_DEFAULT_JOBS;
	r->t0 = r->phase_t0 = hoard_now_mono_ns();
	e = hoard_s3_url_split(url, &r->bucket, &prefix, errbuf, errlen);
	if (e < 0)
		return e;
	/* PREFIX names a directory: "a/b" and "a/b/" are the same one */
	if (*prefix && prefix[strlen(prefix) - 1] != '/') {
		if (asprintf(&r->prefix, "%s/", prefix) < 0)
			r->prefix = NULL;
		free(prefix);
	} else {
		r->prefix = prefix;
	}
	if (!r->prefix)
		return -ENOMEM;
	r->rx = hoard_rindex_new();
	if (!r->rx)
		return -ENOMEM;
	e = hoard_s3_client_new(s3, &r->cl);
	if (e < 0)
		return hoard_errf(errbuf, errlen, e,
				  "cannot make an S3 client: %s", strerror(-e));
	e = hoard_s3_bucket_check(r->cl, r->bucket);
	if (e == -ENXIO)
		return hoard_errf(errbuf, errlen, e,
				  "the bucket '%s' does not exist", r->bucket);
	if (e == -EACCES)
		return hoard_errf(
			errbuf, errlen, e,
			"access to the bucket '%s' denied (%s): check "
			"the credentials (AWS_ACCESS_KEY_ID, "
			"AWS_SECRET_ACCESS_KEY, AWS_PROFILE), the "
			"region and the clock",
			r->bucket, hoard_s3_last_error());
	if (e < 0)
		return s3_fail(errbuf, errlen, e, "checking the bucket");
	return 0;
}

void remote_close(struct remote *r)
{
	hoard_s3_client_free(r->cl);
	hoard_rindex_free(r->rx);
	free(r->packs);
	free(r->pack_chunks);
	free(r->bucket);
	free(r->prefix);
	pthread_mutex_destroy(&r->mu);
	memset(r, 0, sizeof(*r));
}

char *remote_key(const struct remote *r, const char *fmt, ...)
{
	char *rest, *key;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&rest, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	n = asprintf(&key, "%s%s", r->prefix, rest);
	free(rest);
	return n < 0 ? NULL : key;
}

int remote_get_explained(struct remote *r, const char *rel, void **ret_buf,
			 size_t *ret_len, const char *what, char *errbuf,
			 size_t errlen, const char *missing, ...)
{
	char *key = remote_key(r, "%s", rel);
	va_list ap;
	int e;

	*ret_buf = NULL;
	if (!key)
		return -ENOMEM;
	e = hoard_s3_get_object(r->cl, r->bucket, key, ret_buf, ret_len, NULL);
	free(key);
	if (e == -ENOENT) {
		va_start(ap, missing);
		if (errbuf && errlen)
			vsnprintf(errbuf, errlen, missing, ap);
		va_end(ap);
		return e;
	}
	if (e < 0)
		return s3_fail(errbuf, errlen, e, what);
	return 0;
}

int remote_get_config(struct remote *r, struct hoard_remote_config *ret,
		      char *errbuf, size_t errlen)
{
	void *buf;
	size_t len;
	int e;

	e = remote_get_explained(r, "config", &buf, &len,
				 "reading the repository config", errbuf,
				 errlen,
				 "there is no hoard repository at %s (no "
				 "config object)",
				 r->url);
	if (e < 0)
		return e;
	hoard_sha256(buf, len, r->config_sha);
	e = hoard_remote_config_decode(buf, len, ret, errbuf, errlen);
	free(buf);
	return e;
}

void remote_ref_site(const struct remote *r, const char *volume,
		     const char *name, struct hoard_ref_site *ret)
{
	memcpy(ret->repo, r->config_sha, sizeof(ret->repo));
	ret->bucket = r->bucket;
	ret->prefix = r->prefix;
	ret->volume = volume;
	ret->name = name;
}

struct pool {
	size_t n;
	atomic_size_t next;
	atomic_int err;
	int (*fn)(void *ud, size_t i);
	void *ud;
};

static void *pool_thread(void *arg)
{
	struct pool *p = arg;
	size_t i;
	int r;

	while (atomic_load(&p->err) == 0 &&
	       (i = atomic_fetch_add(&p->next, 1)) < p->n) {
		r = p->fn(p->ud, i);
		if (r < 0) {
			int zero = 0;

			atomic_compare_exchange_strong(&p->err, &zero, r);
		}
	}
	return NULL;
}

int run_parallel(size_t n, unsigned jobs, int (*fn)(void *ud, size_t i),
		 void *ud)
{
	struct pool p = {.n = n, .fn = fn, .ud = ud};
	pthread_t th[HOARD_SYNC_MAX_JOBS];
	unsigned started = 0;

	atomic_init(&p.next, 0);
	atomic_init(&p.err, 0);
	if (jobs > HOARD_SYNC_MAX_JOBS)
		jobs = HOARD_SYNC_MAX_JOBS;
	if (jobs > n)
		jobs = (unsigned)n;
	for (unsigned k = 1; k < jobs; k++)
		if (pthread_create(&th[started], NULL, pool_thread, &p) == 0)
			started++;
	pool_thread(&p); /* this thread works too */
	for (unsigned k = 0; k < started; k++)
		pthread_join(th[k], NULL);
	return atomic_load(&p.err);
}

void progress_add(struct remote *r, uint64_t bytes, uint64_t objects)
{
	pthread_mutex_lock(&r->mu);
	r->prog.bytes_done += bytes;
	r->prog.objects_done += objects;
	r->prog.elapsed_ns = hoard_now_mono_ns() - r->phase_t0;
	if (r->progress)
		r->progress(r->progress_ud, &r->prog);
	pthread_mutex_unlock(&r->mu);
}

void progress_phase(struct remote *r)
{
	pthread_mutex_lock(&r->mu);
	r->prog = (struct hoard_sync_progress){0};
	r->phase_t0 = hoard_now_mono_ns();
	pthread_mutex_unlock(&r->mu);
}

void result_finish(struct remote *r, struct hoard_sync_result *res)
{
	struct hoard_s3_stats s;

	hoard_s3_client_stats(r->cl, &s);
	res->requests = s.requests;
	res->retries = s.retries;
	res->bytes_up = s.bytes_up;
	res->bytes_down = s.bytes_down;
	res->elapsed_ns = hoard_now_mono_ns() - r->t0;
}

/* ---- the bucket's chunk index ----------------------------------------------- */

struct idx_list {
	struct remote *r;
	char (*names)[HOARD_SHA256_HEX_SIZE];
	size_t n, cap;
};

static bool hex64(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == '\0';
}

/* Append a 64-hex-digit pack name to l. */
static int idx_list_add(struct idx_list *l, const char *name)
{
	void *x = hoard_grow(l->names, &l->cap, l->n + 1, sizeof(*l->names),
			     64);

	if (!x)
		return -ENOMEM;
	l->names = x;
	memcpy(l->names[l->n++], name, HOARD_SHA256_HEX_SIZE);
	return 0;
}

static int list_idx_cb(const struct hoard_s3_entry *e, void *arg)
{
	struct idx_list *l = arg;
	const char *base = e->key + strlen(l->r->prefix) + strlen("packs/");
	char name[80];
	size_t bl = strlen(base);

	if (e->is_prefix || bl != 68 || strcmp(base + 64, ".idx"))
		return 0;
	memcpy(name, base, 64);
	name[64] = '\0';
	if (!hex64(name))
		return 0;
	return idx_list_add(l, name);
}

struct idx_load {
	struct remote *r;
	struct idx_list *l;
	struct hoard_pack_index *ix;
	pthread_mutex_t mu;
	char *errbuf;
	size_t errlen;
};

void set_err_once(pthread_mutex_t *mu, char *errbuf, size_t errlen,
		  const char *msg)
{
	pthread_mutex_lock(mu);
	if (errbuf && errlen && !*errbuf)
		snprintf(errbuf, errlen, "%s", msg);
	pthread_mutex_unlock(mu);
}

int set_err_oncef(pthread_mutex_t *mu, char *errbuf, size_t errlen, int err,
		  const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_err_once(mu, errbuf, errlen, msg);
	return err;
}

static int read_cached(const char *path, void **ret, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t got;
	void *buf;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size > (64 << 20)) {
		close(fd);
		return -EIO;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	got = hoard_pread_full(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (got != st.st_size) {
		free(buf);
		return -EIO;
	}
	*ret = buf;
	*ret_len = (size_t)st.st_size;
	return 0;
}

void write_cached(const char *dir, const char *name, const void *buf,
		  size_t len)
{
	char path[PATH_MAX + 80], tmp[PATH_MAX + 100];
	int fd;

	if (!*dir)
		return;
	snprintf(path, sizeof(path), "%s/%s.idx", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)gettid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (hoard_pwrite_full(fd, buf, len, 0) < 0 || close(fd) < 0 ||
	    rename(tmp, path) < 0)
		unlink(tmp);
}

static int idx_load_one(void *ud, size_t i)
{
	struct idx_load *L = ud;
	struct remote *r = L->r;
	const char *name = L->l->names[i];
	char path[PATH_MAX + 80], msg[512] = "", hex[HOARD_SHA256_HEX_SIZE];
	void *buf = NULL;
	size_t len = 0;
	bool cached = false;
	int e;

	if (*r->cache_dir) {
		snprintf(path, sizeof(path), "%s/%s.idx", r->cache_dir, name);
		cached = read_cached(path, &buf, &len) == 0;
	}
	if (!cached) {
		char *key = remote_key(r, "packs/%s.idx", name);

		if (!key)
			return -ENOMEM;
		e = hoard_s3_get_object(r->cl, r->bucket, key, &buf, &len,
					NULL);
		if (e < 0) {
			snprintf(msg, sizeof(msg), "reading %s: %s", key,
				 hoard_s3_last_error());
			free(key);
			set_err_once(&L->mu, L->errbuf, L->errlen, msg);
			return e;
		}
		free(key);
	}
	e = hoard_pack_index_decode(buf, len, &L->ix[i], msg, sizeof(msg));
	if (e == 0) {
		hoard_hex(L->ix[i].pack_sha, HOARD_SHA256_SIZE, hex);
		if (strcmp(hex, name)) {
			hoard_pack_index_clear(&L->ix[i]);
			snprintf(msg, sizeof(msg), "is for another pack");
			e = -EBADMSG;
		}
	}
	if (e < 0) {
		char full[700];

		free(buf);
		if (cached) { /* a damaged cache file: fetch it afresh */
			unlink(path);
			return idx_load_one(ud, i);
		}
		snprintf(full, sizeof(full), "pack index %s: %s", name, msg);
		set_err_once(&L->mu, L->errbuf, L->errlen, full);
		return e;
	}
	if (!cached)
		write_cached(r->cache_dir, name, buf, len);
	free(buf);
	progress_add(r, len, 1);
	return 0;
}

static void cache_dir_make(struct remote *r, const char *store_dir)
{
	char id[HOARD_SHA256_HEX_SIZE], *s;

	r->cache_dir[0] = '\0';
	if (!store_dir || asprintf(&s, "%s\n%s", r->bucket, r->prefix) < 0)
		return;
	hoard_sha256_hex(s, strlen(s), id);
	free(s);
	id[16] = '\0';
	snprintf(r->cache_dir, sizeof(r->cache_dir), "%s/remote", store_dir);
	mkdir(r->cache_dir, 0700);
	snprintf(r->cache_dir, sizeof(r->cache_dir), "%s/remote/%s", store_dir,
		 id);
	if (mkdir(r->cache_dir, 0700) < 0 && errno != EEXIST)
		r->cache_dir[0] = '\0';
}

static int list_condemned_cb(const struct hoard_s3_entry *e, void *arg)
{
	struct idx_list *l = arg;
	const char *base = e->key + strlen(l->r->prefix) +
			   strlen("gc/condemned/");

	if (e->is_prefix || strlen(base) != 64 || !hex64(base))
		return 0;
	return idx_list_add(l, base);
}

/*
 * Packs that remote gc condemned (REMOTE.md section 9): dropped from l when
 * drop, else moved after the others, so that a chunk held by a condemned
 * pack and by another is read from the other (a repacked chunk from its
 * new pack).
 */
static int order_condemned(struct remote *r, struct idx_list *l, bool drop,
			   char *errbuf, size_t errlen)
{
	struct idx_list c = {.r = r};
	char(*tail)[HOARD_SHA256_HEX_SIZE] = NULL;
	char *key = remote_key(r, "gc/condemned/");
	size_t n = 0, nt = 0;
	int e;

	if (!key)
		return -ENOMEM;
	e = hoard_s3_list(r->cl, r->bucket, key, NULL, list_condemned_cb, &c);
	free(key);
	if (e < 0) {
		free(c.names);
		return e == -ENOMEM ? e
				    : s3_fail(errbuf, errlen, e,
					      "listing condemned packs");
	}
	if (c.n && !drop) {
		tail = malloc(l->n * sizeof(*tail));
		if (!tail) {
			free(c.names);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < l->n; i++) {
		bool gone = false;

		for (size_t k = 0; k < c.n && !gone; k++)
			gone = !strcmp(l->names[i], c.names[k]);
		if (!gone)
			memmove(l->names[n++], l->names[i],
				HOARD_SHA256_HEX_SIZE);
		else if (tail)
			memcpy(tail[nt++], l->names[i], HOARD_SHA256_HEX_SIZE);
	}
	for (size_t i = 0; i < nt; i++)
		memcpy(l->names[n++], tail[i], HOARD_SHA256_HEX_SIZE);
	l->n = n;
	free(tail);
	free(c.names);
	return 0;
}

int remote_load_index(struct remote *r, const char *store_dir, char *errbuf,
		      size_t errlen)
{
	struct idx_list l = {.r = r};
	struct idx_load L = {
		.r = r, .l = &l, .errbuf = errbuf, .errlen = errlen};
	char *key;
	int e;

	cache_dir_make(r, store_dir);
	hoard_rindex_free(r->rx);
	free(r->packs);
	r->packs = NULL;
	r->n_packs = 0;
	r->rx = hoard_rindex_new();
	if (!r->rx)
		return -ENOMEM;
	key = remote_key(r, "packs/");
	if (!key)
		return -ENOMEM;
	e = hoard_s3_list(r->cl, r->bucket, key, NULL, list_idx_cb, &l);
	free(key);
	if (e < 0) {
		free(l.names);
		return e == -ENOMEM ? e
				    : s3_fail(errbuf, errlen, e,
					      "listing the packs");
	}
	e = order_condemned(r, &l, r->skip_condemned, errbuf, errlen);
	if (e < 0) {
		free(l.names);
		return e;
	}
	free(r->pack_chunks);
	r->pack_chunks = calloc(l.n ? l.n : 1, sizeof(*r->pack_chunks));
	if (!r->pack_chunks) {
		free(l.names);
		return -ENOMEM;
	}
	L.ix = calloc(l.n ? l.n : 1, sizeof(*L.ix));
	if (!L.ix) {
		free(l.names);
		return -ENOMEM;
	}
	pthread_mutex_init(&L.mu, NULL);
	if (errbuf && errlen)
		*errbuf = '\0';
	progress_phase(r); /* reading the indexes */
	r->prog.objects_total = l.n;
	e = run_parallel(l.n, r->jobs, idx_load_one, &L);
	pthread_mutex_destroy(&L.mu);
	for (size_t i = 0; e == 0 && i < l.n; i++) {
		r->pack_chunks[i] = L.ix[i].n;
		for (uint32_t k = 0; e == 0 && k < L.ix[i].n; k++) {
			struct hoard_rloc loc = {
				.pack = (uint32_t)i,
				.off = L.ix[i].e[k].off,
				.frame_len = L.ix[i].e[k].frame_len,
				.raw_len = L.ix[i].e[k].raw_len,
			};

			e = hoard_rindex_add(r->rx, &L.ix[i].e[k].id, &loc);
		}
	}
	for (size_t i = 0; i < l.n; i++)
		hoard_pack_index_clear(&L.ix[i]);
	free(L.ix);
	if (e < 0) {
		free(l.names);
		return e;
	}
	r->packs = l.names;
	r->n_packs = r->cap_packs = l.n;
	return 0;
}
