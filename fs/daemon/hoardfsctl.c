/* SPDX-License-Identifier: MIT */
/*
 * hoardfsctl.c: the daemon's control-socket requests (ping, stats, gc,
 * push/pull, config, prefetch, mount/umount, volume ...), on the daemon's
 * state D (hoardfs-internal.h).
 *
 * Threads: ctl.h serves several requests at once.  The ones a CI host
 * sends for a job's start and finish (ping, stats, mount, umount, volume
 * ls, create, clone, rm) overlap: they hold ctl_rw shared, and the core
 * (volume.c) and D.notify_mu keep them correct.  Every other request
 * (push, pull, gc, config, prefetch, volume merge) holds ctl_rw
 * exclusively, so it runs alone, as every request did before.
 *
 * A volume's name between "mount" and "volume rm": a mount takes its slot
 * (starting) and a rm puts the name in removing[], both under D.notify_mu
 * after looking at the other, so a volume is never mounted while it is
 * being removed.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <fuse_lowlevel.h>
#include <jansson.h>

#include "hoard/ctl.h"
#include "hoard/evict.h"
#include "hoard/fs.h"
#include "hoard/gc.h"
#include "hoard/json.h"
#include "hoard/lazy.h"
#include "hoard/plain.h"
#include "hoard/sign.h"
#include "hoard/stats.h"
#include "hoard/store.h"
#include "hoard/sync.h"
#include "hoard/trust.h"
#include "hoard/util.h"
#include "hoard/volumectl.h"

#include "hoardfs-internal.h"

/* Shared by the requests that may overlap, exclusive for the others;
 * writers first, so a push is not starved by a stream of job starts. */
static pthread_rwlock_t ctl_rw =
	PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

/* Volumes being removed by a "volume rm" (protected by D.notify_mu). */
static const char *removing[HOARD_CTL_WORKERS];

/* Which "mount" request took a slot (protected by D.notify_mu). */
static unsigned mount_gen;

/* "config max-size SIZE|none": the store setting, applied at once unless
 * --max-size overrides it. */
static int ctl_config(const char *req, char **ret_out)
{
	static const char prefix[] = "config max-size ";
	const char *v = req + sizeof(prefix) - 1;
	uint64_t max = 0, cur;
	int r;

	if (!strcmp(req, "config max-size")) { /* read */
		r = hoard_budget_get(D.st, &cur);
		if (r < 0)
			return r;
		max = cur;
		goto reply;
	}
	if (strncmp(req, prefix, sizeof(prefix) - 1) ||
	    (strcmp(v, "none") && (hoard_parse_size(v, &max) < 0 || !max))) {
		*ret_out = strdup("bad config request");
		return -EINVAL;
	}
	r = hoard_budget_set(D.st, max);
	if (r < 0)
		return r;
	if (!D.max_size)
		hoard_evict_set_budget(D.ev, max);
	hoard_log(LOG_INFO, "store setting max_size set to %llu%s",
		  (unsigned long long)max,
		  D.max_size ? " (--max-size overrides it)" : "");
reply:
	*ret_out = hoard_json_dump(
		json_pack("{s:o,s:o,s:b}", "max_size", hoard_json_u64(max),
			  "in_force",
			  hoard_json_u64(D.max_size ? D.max_size : max),
			  "overridden", D.max_size != 0),
		true);
	if (!*ret_out)
		return -ENOMEM;
	return 0;
}

/* "push ..." / "pull ...": run the engine on the open filesystem. */
static int ctl_sync(const char *req, char **ret_out)
{
	struct hoard_sync_request q;
	struct hoard_sync_result res;
	struct hoard_sync_opts o = {0};
	char err[1024] = "";
	int r = hoard_sync_request_decode(req, &q);

	if (r < 0) {
		hoard_sync_request_clear(&q);
		*ret_out = strdup("malformed push/pull request");
		return r;
	}
	o.s3 = &q.s3;
	o.url = q.url;
	o.volume = q.volume;
	o.ref = q.ref;
	o.jobs = q.jobs;
	o.lazy = q.lazy != 0;
	o.allow_rollback = q.allow_rollback != 0;
	o.sign = q.has_sign ? &q.sign : NULL;
	o.trust = q.trust;
	o.n_trust = q.n_trust;
	if (!strcmp(q.op, "pull")) {
		o.changed = pull_changed;
		o.changed_ud = q.volume;
		r = hoard_sync_pull(D.fs, &o, &res, err, sizeof(err));
	} else {
		/* a file closed before the push is in it */
		commit_closed_files(true);
		r = hoard_sync_push(D.fs, &o, &res, err, sizeof(err));
	}
	if (r < 0) {
		hoard_log(LOG_WARNING, "%s of volume %s failed: %s", q.op,
			  q.volume, *err ? err : strerror(-r));
		*ret_out = strdup(*err ? err : strerror(-r));
	} else {
		hoard_log(LOG_INFO, "%s of volume %s done", q.op, q.volume);
		if (o.lazy)
			start_lazy(D.remote ? D.remote : q.url, &q.s3);
		hoard_evict_poke(D.ev);
		*ret_out = hoard_sync_result_json(&res);
		if (!*ret_out)
			r = -ENOMEM;
	}
	hoard_sync_request_clear(&q);
	return r;
}

/* "prefetch INO...": make the files local (lazy.h).  The JSON line, then
 * a "missing ..." line per file that is not (docs/FORMAT.md 6). */
static int ctl_prefetch(const char *args, char **ret_out)
{
	struct hoard_lazy_prefetch_res res;
	unsigned long long ino;
	uint64_t total = 0;
	unsigned files = 0, streak = 0;
	char *end, *miss = NULL, *x, *json, idhex[HOARD_ID_HEX_SIZE];
	int r;

	if (!D.lz) {
		*ret_out = strdup("no remote: the store has no lazy chunks to "
				  "fetch");
		return -ENOTCONN;
	}
	while (*args) {
		errno = 0;
		ino = strtoull(args, &end, 10);
		if (errno || end == args || (*end && *end != ' ')) {
			free(miss);
			*ret_out = strdup("malformed prefetch request");
			return -EINVAL;
		}
		r = hoard_lazy_prefetch(D.lz, ino, &streak, &res);
		total += res.fetched_bytes;
		if (r < 0 && r != -EIO) {
			free(miss);
			if (asprintf(ret_out, "inode %llu: %s", ino,
				     strerror(-r)) < 0)
				*ret_out = NULL;
			return r;
		}
		if (r == -EIO) {
			hoard_id_hex(&res.first_missing, idhex);
			if (asprintf(&x,
				     "%smissing %llu %llu %llu %llu %s %d\n",
				     miss ? miss : "", ino,
				     (unsigned long long)res.missing,
				     (unsigned long long)res.chunks,
				     (unsigned long long)res.missing_bytes,
				     idhex, -res.first_err) < 0) {
				free(miss);
				return -ENOMEM;
			}
			free(miss);
			miss = x;
		} else {
			files++;
		}
		args = *end ? end + 1 : end;
	}
	/* one JSON line, then main's "missing ..." text lines */
	json = hoard_json_dump(json_pack("{s:I,s:o}", "files",
					 (json_int_t)files, "fetched_bytes",
					 hoard_json_u64(total)),
			       true);
	r = json ? asprintf(ret_out, "%s%s", json, miss ? miss : "") : -1;
	free(json);
	free(miss);
	return r < 0 ? -ENOMEM : 0;
}

static int stats_budget(struct hoard_stats *s)
{
	struct hoard_evict_counts c;

	hoard_evict_get_counts(D.ev, &c);
	s->have_budget = true;
	s->max_size = c.max_bytes;
	s->evicted_files = c.files;
	s->evicted_bytes = c.bytes;
	return hoard_budget_pinned_bytes(D.st, &s->pinned_bytes);
}

/* The tier's figures and each mount's path (stats.h: plain_*,
 * passthrough): the global one is "on" when any mount uses it, else the
 * last mount's "off (why)". */
static int stats_plain(struct hoard_stats *s)
{
	struct hoard_plain_counts pc;
	const char *global = NULL;

	hoard_plain_get_counts(D.plain, &pc);
	s->have_plain = true;
	s->plain_bytes = pc.bytes;
	s->plain_files = pc.files;
	s->plain_hits = pc.hits;
	s->plain_made = pc.made;
	s->plain_dropped = pc.dropped;
	s->plain_failed = pc.failed;
	s->pt = calloc(MAX_MOUNTS, sizeof(*s->pt));
	if (!s->pt)
		return -ENOMEM;
	s->have_passthrough = true;
	pthread_mutex_lock(&D.notify_mu);
	for (int i = 0; i < MAX_MOUNTS; i++) {
		const struct mount *m = &D.mounts[i];
		const char *why = m->pt_why ? m->pt_why
					    : "off (not initialized)";

		if (!m->used || m->ended)
			continue;
		snprintf(s->pt[s->n_pt].volume, sizeof(s->pt[0].volume), "%s",
			 m->name);
		snprintf(s->pt[s->n_pt++].why, sizeof(s->pt[0].why), "%s", why);
		if (m->pt)
			global = "on";
		else if (!global || strcmp(global, "on"))
			global = why;
	}
	pthread_mutex_unlock(&D.notify_mu);
	snprintf(s->pt_global, sizeof(s->pt_global), "%s",
		 global ? global : "off");
	return 0;
}

/* ---- mounts on request --------------------------------------------------- */

/* Decode %XX escapes in place (the words of "mount"); -EINVAL if bad. */
static int pct_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		unsigned x;

		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		if (sscanf(s + 1, "%2x", &x) != 1 || !s[1] || !s[2] || !x)
			return -EINVAL;
		*o++ = (char)x;
		s += 2;
	}
	*o = '\0';
	return 0;
}

static int ctl_reply(char **ret_out, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int ctl_reply(char **ret_out, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(ret_out, fmt, ap) < 0)
		*ret_out = NULL;
	va_end(ap);
	return *ret_out || r < 0 ? r : -ENOMEM;
}

/* The reply of mount and umount: {"volume":...,"mountpoint":...}. */
static int mount_json(char **ret_out, const char *volume, const char *mp)
{
	json_t *o = json_pack("{s:s, s:s}", "volume", volume, "mountpoint", mp);
	char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int r = t ? ctl_reply(ret_out, 0, "%s\n", t) : -ENOMEM;

	free(t);
	json_decref(o);
	return r;
}

static bool removing_locked(const char *name)
{
	for (int i = 0; i < HOARD_CTL_WORKERS; i++)
		if (removing[i] && !strcmp(removing[i], name))
			return true;
	return false;
}

/* The live (or starting) mount of volume name or at path mp (D.notify_mu
 * held). */
static struct mount *find_mount_locked(const char *name, const char *mp)
{
	for (int i = 0; i < MAX_MOUNTS; i++) {
		struct mount *m = &D.mounts[i];

		if (!m->used || (m->ended && !m->starting))
			continue;
		if ((name && !strcmp(m->name, name)) ||
		    (mp && !strcmp(m->mountpoint, mp)))
			return m;
	}
	return NULL;
}

/* "mount NAME PATH": a new FUSE session with the daemon's options. */
static int ctl_mount(char *name, char *path, char **ret_out)
{
	char real[PATH_MAX], err[1024] = "";
	const char *orig_name = name;
	struct mount *m = NULL;
	struct stat sb;
	int r;

	if (pct_decode(name) < 0 || pct_decode(path) < 0 ||
	    !hoard_fs_volume_name_ok(name))
		return ctl_reply(ret_out, -EINVAL,
				 "invalid volume name '%s': use 1-64 of "
				 "[A-Za-z0-9._-], not starting with '.'",
				 name);
	if (!realpath(path, real) || stat(real, &sb) < 0)
		return ctl_reply(ret_out, -errno, "mountpoint %s: %s", path,
				 strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return ctl_reply(ret_out, -ENOTDIR,
				 "mountpoint %s is not a directory", path);
	if (is_mountpoint(real))
		return ctl_reply(ret_out, -EBUSY,
				 "mountpoint %s is busy: something is already "
				 "mounted there",
				 real);
	pthread_mutex_lock(&D.notify_mu);
	if (D.stopping) {
		r = -ESHUTDOWN;
	} else if (find_mount_locked(name, real)) {
		r = -EBUSY;
	} else if (removing_locked(name)) {
		r = -EBUSY;
		name = NULL;
	} else {
		r = -ENOSPC;
		for (int i = 0; i < MAX_MOUNTS && !m; i++)
			if (!D.mounts[i].used)
				m = &D.mounts[i];
	}
	if (m) {
		reap_locked(m);
		*m = (struct mount){.name = strdup(name),
				    .mountpoint = strdup(real),
				    .used = true,
				    .ended = true, /* until its thread runs */
				    .starting = true,
				    .gen = ++mount_gen,
				    .requested = true};
		r = m->name && m->mountpoint ? 0 : -ENOMEM;
	}
	pthread_mutex_unlock(&D.notify_mu);
	if (r == 0)
		r = mount_setup(m, err, sizeof(err));
	if (r == 0) {
		r = mount_start(m);
		if (r < 0) {
			fuse_session_unmount(m->se);
			fuse_session_destroy(m->se);
			hoard_fs_forget(D.fs, m->root, 1);
			snprintf(err, sizeof(err), "cannot start a thread");
		}
	}
	if (r < 0) {
		if (m) {
			pthread_mutex_lock(&D.notify_mu);
			free(m->name);
			free(m->mountpoint);
			*m = (struct mount){0};
			pthread_mutex_unlock(&D.notify_mu);
		}
		if (r == -EBUSY && !name)
			return ctl_reply(ret_out, r,
					 "volume '%s' is being removed",
					 orig_name);
		if (r == -EBUSY)
			return ctl_reply(ret_out, r,
					 "volume '%s' or mountpoint %s is "
					 "mounted already",
					 name, real);
		if (r == -ESHUTDOWN)
			return ctl_reply(ret_out, r, "the daemon is stopping");
		if (r == -ENOSPC)
			return ctl_reply(ret_out, r, "at most %d mounts",
					 MAX_MOUNTS);
		return ctl_reply(ret_out, r, "%s", *err ? err : strerror(-r));
	}
	pthread_mutex_lock(&D.notify_mu);
	m->starting = false;
	if (D.stopping) /* a signal came meanwhile and missed this mount */
		umount2(real, MNT_DETACH);
	pthread_mutex_unlock(&D.notify_mu);
	raise_read_ahead(m);
	hoard_log(LOG_INFO, "volume '%s' mounted at %s on request", name, real);
	return mount_json(ret_out, name, real);
}

/* "umount NAME": unmount, and answer once the session has ended (its
 * files committed, its slot free). */
static int ctl_umount(char *name, char **ret_out)
{
	char mp[PATH_MAX] = "";
	struct mount *m;
	unsigned gen = 0;

	if (pct_decode(name) < 0)
		return ctl_reply(ret_out, -EINVAL, "malformed umount request");
	pthread_mutex_lock(&D.notify_mu);
	m = find_mount_locked(name, NULL);
	if (m && m->starting)
		m = NULL; /* not mounted yet */
	if (m) {
		snprintf(mp, sizeof(mp), "%s", m->mountpoint);
		gen = m->gen;
	}
	pthread_mutex_unlock(&D.notify_mu);
	if (!m)
		return ctl_reply(ret_out, -ENOENT, "volume '%s' is not mounted",
				 name);
	if (umount2(mp, 0) < 0)
		return ctl_reply(ret_out, -errno, "cannot unmount %s: %s%s", mp,
				 strerror(errno),
				 errno == EBUSY ? " (a process still uses it)"
						: "");
	/* until the slot is free, or taken by another mount since */
	pthread_mutex_lock(&D.notify_mu);
	while (m->used && m->gen == gen)
		pthread_cond_wait(&D.mounts_cv, &D.notify_mu);
	pthread_mutex_unlock(&D.notify_mu);
	return mount_json(ret_out, name, mp);
}

/* volumectl's hook: where a volume is mounted (the calling thread's
 * buffer: volumectl uses it before its next call). */
static const char *mounted_at(void *ud, const char *name)
{
	static __thread char buf[PATH_MAX];
	struct mount *m;

	pthread_mutex_lock(&D.notify_mu);
	m = find_mount_locked(name, NULL);
	if (m)
		snprintf(buf, sizeof(buf), "%s", m->mountpoint);
	pthread_mutex_unlock(&D.notify_mu);
	return m ? buf : NULL;
}

static int ctl_mounts(const char *req, char **ret_out)
{
	char *copy = strdup(req), *w[4] = {0}, *save = NULL;
	int n = 0, r;

	if (!copy)
		return -ENOMEM;
	for (char *p = strtok_r(copy, " ", &save); p && n < 4;
	     p = strtok_r(NULL, " ", &save))
		w[n++] = p;
	if (n == 3 && !strcmp(w[0], "mount"))
		r = ctl_mount(w[1], w[2], ret_out);
	else if (n == 2 && !strcmp(w[0], "umount"))
		r = ctl_umount(w[1], ret_out);
	else
		r = ctl_reply(ret_out, -EINVAL,
			      "malformed request (mount NAME PATH | umount "
			      "NAME)");
	free(copy);
	return r;
}

/*
 * "volume rm NAME": put NAME in removing[] (its index in *ret_slot, -1 if
 * the request is malformed: volumectl says so), unless a mount of it is
 * starting (a mounted one is left to volumectl's refusal) or another rm
 * has it.  A session of it that is ending is waited for.
 */
static int rm_claim(const char *name, int *ret_slot, char **ret_out)
{
	int r = 0;

	*ret_slot = -1;
	if (!*name || strchr(name, ' '))
		return 0;
	pthread_mutex_lock(&D.notify_mu);
	for (int i = 0; i < MAX_MOUNTS && r == 0; i++) {
		const struct mount *m = &D.mounts[i];

		if (!m->used || !m->ended || strcmp(m->name, name))
			continue;
		if (m->starting) {
			r = ctl_reply(ret_out, -EBUSY,
				      "volume '%s' is being mounted", name);
		} else { /* its session is ending: wait, then look again */
			pthread_cond_wait(&D.mounts_cv, &D.notify_mu);
			i = -1;
		}
	}
	if (r == 0 && removing_locked(name))
		r = ctl_reply(ret_out, -EBUSY, "volume '%s' is being removed",
			      name);
	for (int i = 0; i < HOARD_CTL_WORKERS && r == 0 && *ret_slot < 0; i++)
		if (!removing[i])
			*ret_slot = i;
	if (r == 0) /* at most HOARD_CTL_WORKERS requests: a slot is free */
		removing[*ret_slot] = name;
	pthread_mutex_unlock(&D.notify_mu);
	return r;
}

static void rm_release(int slot)
{
	if (slot < 0)
		return;
	pthread_mutex_lock(&D.notify_mu);
	removing[slot] = NULL;
	pthread_mutex_unlock(&D.notify_mu);
}

/* May req run while others are served (see the top of the file)? */
static bool overlaps(const char *req)
{
	static const char *const ok[] = {
		"ping",	     "stats",	       "mount ",	"umount ",
		"volume ls", "volume create ", "volume clone ", "volume rm "};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		size_t n = strlen(ok[i]);

		if (!strncmp(req, ok[i], n) && (ok[i][n - 1] == ' ' || !req[n]))
			return true;
	}
	return false;
}

static int ctl_serve(void *ud, const char *req, char **ret_out)
{
	struct hoard_stats *s;
	int r;

	if (!strcmp(req, "ping")) {
		*ret_out = strdup("pong\n");
		return *ret_out ? 0 : -ENOMEM;
	}
	/* every other request reads or writes the store as a whole: the
	 * creates answered from memory land first (fs/core/pend.c; an
	 * error stays for their files' fsync) */
	hoard_fs_land_creates(D.fs);
	if (!strcmp(req, "stats")) {
		/* the figures follow every close */
		commit_closed_files(false);
		r = hoard_stats_compute(D.st, &s);
		if (r < 0)
			return r;
		hoard_fs_cache_counts(D.fs, &s->cache_hits, &s->cache_misses);
		s->have_cache = true;
		hoard_fs_lookup_counts(D.fs, &s->lookup_scans,
				       &s->lookup_window_hits,
				       &s->lookup_prefetch_bytes);
		s->have_lookups = true;
		s->have_reads = true;
		s->read_errors = __atomic_load_n(&D.read_errors,
						 __ATOMIC_RELAXED);
		s->commit_errors = hoard_fs_commit_errors(D.fs);
		if (D.lz) {
			struct hoard_lazy_counts lc;

			hoard_lazy_get_counts(D.lz, &lc);
			s->have_fetch = true;
			s->fetched_chunks = lc.fetched_chunks;
			s->fetched_bytes = lc.fetched_bytes;
			s->fetch_gets = lc.gets;
			s->fetch_failures = lc.failures;
			s->fetch_get_bytes = lc.get_bytes;
			s->fetch_retries = lc.retries;
		}
		r = stats_budget(s);
		if (r == 0)
			r = stats_plain(s);
		if (r < 0) {
			hoard_stats_free(s);
			return r;
		}
		*ret_out = hoard_stats_json(s);
		hoard_stats_free(s);
		return *ret_out ? 0 : -ENOMEM;
	}
	if (!strcmp(req, "gc")) {
		struct hoard_gc_report g;

		r = hoard_gc_run(D.st, &g);
		if (r < 0)
			return r;
		*ret_out = hoard_gc_json(&g);
		return *ret_out ? 0 : -ENOMEM;
	}
	if (!strncmp(req, "push ", 5) || !strncmp(req, "pull ", 5))
		return ctl_sync(req, ret_out);
	if (!strcmp(req, "config trust") || !strncmp(req, "config trust ", 13))
		return hoard_trust_request(D.st, req[12] ? req + 13 : "",
					   ret_out);
	if (!strncmp(req, "config ", 7))
		return ctl_config(req, ret_out);
	if (!strncmp(req, "prefetch ", 9))
		return ctl_prefetch(req + 9, ret_out);
	if (!strncmp(req, "mount ", 6) || !strncmp(req, "umount ", 7))
		return ctl_mounts(req, ret_out);
	if (!strncmp(req, "volume ", 7)) {
		struct hoard_volume_hooks h = {.mountpoint = mounted_at,
					       .changed = pull_changed};
		int slot = -1;

		/* a file closed just before its volume's unmount is still
		 * open in the daemon until its queued release is made: a
		 * removal would find it in use */
		commit_wait_idle();
		if (!strncmp(req, "volume rm ", 10)) {
			r = rm_claim(req + 10, &slot, ret_out);
			if (r < 0)
				return r;
		}
		r = hoard_volume_request(D.fs, req, &h, ret_out);
		rm_release(slot);
		hoard_evict_poke(D.ev);
		return r;
	}
	*ret_out = strdup("unknown request");
	return -EINVAL;
}

/* Every request: while one is served the daemon does not exit (a client
 * that unmounted the last mount may have more to ask). */
int ctl_handler(void *ud, const char *req, char **ret_out)
{
	int r;

	bool shared = overlaps(req);

	pthread_mutex_lock(&D.notify_mu);
	D.ctl_busy++;
	pthread_mutex_unlock(&D.notify_mu);
	if (shared)
		pthread_rwlock_rdlock(&ctl_rw);
	else
		pthread_rwlock_wrlock(&ctl_rw);
	r = ctl_serve(ud, req, ret_out);
	pthread_rwlock_unlock(&ctl_rw);
	pthread_mutex_lock(&D.notify_mu);
	D.ctl_busy--;
	pthread_cond_broadcast(&D.mounts_cv);
	pthread_mutex_unlock(&D.notify_mu);
	return r;
}
