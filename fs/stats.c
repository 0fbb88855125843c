// SPDX-License-Identifier: MIT
/*
 * stats: store figures by scanning column families (stats.h).
 *
 * Three passes, each with one iterator:
 *
 *   volumes   name -> root ino (FORMAT 2)            the volume table
 *   inodes    ino -> inode record (FORMAT 2.2)       type, nlink, size, volume
 *     + extents  ino + offset -> id + length (FORMAT 2)
 *   chunks    id -> chunk record (FORMAT 2.3)        sizes, refcount
 *
 * Inodes and extents are both keyed by the big-endian inode number, so the
 * second pass walks them side by side (a merge join): for each regular file
 * the extents iterator is advanced to that inode's extents, and the chunk ids
 * they name go into a set per volume.  No map of inodes is kept; the memory
 * used is the per-volume sets of distinct chunk ids (16 bytes per chunk and
 * volume, at most half full).  The chunks pass then adds each live chunk
 * (refcount > 0) to the totals and to every volume whose set holds it.
 *
 * Counting rules: files/dirs/symlinks/others count inodes with nlink > 0
 * (an unlinked but still open file is not counted, but the chunks it holds
 * are, in the store's figures and in its volume's).  logical_bytes sums the
 * sizes of the counted regular files.  Records of an unknown version or too
 * short are skipped (logged at debug).
 *
 * The JSON written by hoard_stats_json() is what `stats` answers on the
 * control socket (FORMAT 6); hoard_stats_from_json() reads it back so that
 * the CLI can print the daemon's figures as text.
 */
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hoard/stats.h"
#include "hoard/util.h"

#define INODE_REC_MIN	40 /* up to and including the volume field */
#define CHUNK_REC_MIN	24 /* up to and including the refcount */
#define VOLUME_NAME_MAX 64

/* ---- a set of chunk ids (open addressing, linear probing) ---- */

struct id_set {
	struct hoard_id *ids;
	uint8_t *used;
	size_t cap; /* a power of two, or 0 */
	size_t n;
};

static inline uint64_t mix64(uint64_t x)
{
	/* splitmix64's finalizer: ids are hashes already, but test ids and
	 * damaged ones need not be */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static size_t id_slot(const struct hoard_id *id, size_t cap)
{
	uint64_t h = hoard_get_be64(id->b) ^ mix64(hoard_get_be64(id->b + 8));

	return mix64(h) & (cap - 1);
}

static bool id_set_has(const struct id_set *s, const struct hoard_id *id)
{
	size_t j;

	if (!s->n)
		return false;
	for (j = id_slot(id, s->cap); s->used[j]; j = (j + 1) & (s->cap - 1))
		if (hoard_id_equal(&s->ids[j], id))
			return true;
	return false;
}

static void id_set_place(struct id_set *s, const struct hoard_id *id)
{
	size_t j = id_slot(id, s->cap);

	while (s->used[j])
		j = (j + 1) & (s->cap - 1);
	s->ids[j] = *id;
	s->used[j] = 1;
	s->n++;
}

static int id_set_grow(struct id_set *s)
{
	struct id_set g = {.cap = s->cap ? s->cap * 2 : 256};
	size_t i;

	g.ids = malloc(g.cap * sizeof(*g.ids));
	g.used = calloc(g.cap, 1);
	if (!g.ids || !g.used) {
		free(g.ids);
		free(g.used);
		return -ENOMEM;
	}
	for (i = 0; i < s->cap; i++)
		if (s->used[i])
			id_set_place(&g, &s->ids[i]);
	free(s->ids);
	free(s->used);
	*s = g;
	return 0;
}

static int id_set_add(struct id_set *s, const struct hoard_id *id)
{
	int r;

	if (id_set_has(s, id))
		return 0;
	if ((s->n + 1) * 2 > s->cap) {
		r = id_set_grow(s);
		if (r < 0)
			return r;
	}
	id_set_place(s, id);
	return 0;
}

static void id_set_free(struct id_set *s)
{
	free(s->ids);
	free(s->used);
}

/* ---- the scan ---- */

/* Volume root inode -> index in s->volumes, sorted by root for bsearch. */
struct root_ent {
	uint64_t root;
	size_t vol;
};

struct scan {
	struct hoard_store *st;
	struct hoard_stats *s;
	struct root_ent *roots; /* n_volumes entries */
	struct id_set *sets;	/* one per volume */
	size_t n_sets;
};

static int root_cmp(const void *a, const void *b)
{
	const struct root_ent *x = a, *y = b;

	return x->root < y->root ? -1 : x->root > y->root;
}

static struct hoard_stats_volume *volume_of(const struct scan *sc,
					    uint64_t root, size_t *ret_idx)
{
	struct root_ent key = {.root = root}, *e;

	if (!sc->s->n_volumes)
		return NULL;
	e = bsearch(&key, sc->roots, sc->s->n_volumes, sizeof(*e), root_cmp);
	if (!e)
		return NULL;
	*ret_idx = e->vol;
	return &sc->s->volumes[e->vol];
}

static int scan_volumes(struct scan *sc)
{
	struct hoard_stats *s = sc->s;
	struct hoard_iter *it;
	size_t cap = 0, klen, vlen;
	int r = 0;

	it = hoard_iter_new(sc->st, HOARD_CF_VOLUMES, NULL, 0);
	if (!it)
		return -ENOMEM;
	for (; hoard_iter_valid(it); hoard_iter_next(it)) {
		const uint8_t *k = hoard_iter_key(it, &klen);
		const uint8_t *v = hoard_iter_value(it, &vlen);
		struct hoard_stats_volume *vol;
		void *nv;

		if (klen == 0 || klen > VOLUME_NAME_MAX || vlen != 8) {
			hoard_log(LOG_DEBUG,
				  "stats: skipping a bad volume entry");
			continue;
		}
		nv = hoard_grow(s->volumes, &cap, s->n_volumes + 1,
				sizeof(*s->volumes), 8);
		if (!nv) {
			r = -ENOMEM;
			goto out_free_iter;
		}
		s->volumes = nv;
		vol = &s->volumes[s->n_volumes++];
		memset(vol, 0, sizeof(*vol));
		memcpy(vol->name, k, klen);
		vol->root_ino = hoard_get_be64(v);
	}
	if (!s->n_volumes)
		goto out_free_iter;

	sc->roots = calloc(s->n_volumes, sizeof(*sc->roots));
	sc->sets = calloc(s->n_volumes, sizeof(*sc->sets));
	if (!sc->roots || !sc->sets) {
		r = -ENOMEM;
		goto out_free_iter;
	}
	sc->n_sets = s->n_volumes;
	for (size_t i = 0; i < s->n_volumes; i++) {
		sc->roots[i].root = s->volumes[i].root_ino;
		sc->roots[i].vol = i;
	}
	qsort(sc->roots, s->n_volumes, sizeof(*sc->roots), root_cmp);
out_free_iter:
	hoard_iter_free(it);
	return r;
}

static void count_inode(struct hoard_stats_figs *f, uint32_t mode,
			uint64_t size)
{
	if (S_ISREG(mode)) {
		f->files++;
		f->logical_bytes += size;
	} else if (S_ISDIR(mode)) {
		f->dirs++;
	} else if (S_ISLNK(mode)) {
		f->symlinks++;
	} else {
		f->others++;
	}
}

/* Add the chunks named by ino's extents to set, advancing ext past them. */
static int collect_extents(struct hoard_iter *ext, uint64_t ino,
			   struct id_set *set)
{
	for (; hoard_iter_valid(ext); hoard_iter_next(ext)) {
		size_t klen, vlen;
		const uint8_t *k = hoard_iter_key(ext, &klen);
		const uint8_t *v = hoard_iter_value(ext, &vlen);
		uint64_t owner;
		struct hoard_id id;
		int r;

		if (klen < 8)
			continue;
		owner = hoard_get_be64(k);
		if (owner < ino)
			continue; /* no inode record: skipped */
		if (owner > ino)
			break;
		if (vlen < HOARD_ID_SIZE)
			continue;
		memcpy(id.b, v, HOARD_ID_SIZE);
		r = id_set_add(set, &id);
		if (r < 0)
			return r;
	}
	return 0;
}

static int scan_inodes(struct scan *sc)
{
	struct hoard_iter *it, *ext;
	int r = 0;

	it = hoard_iter_new(sc->st, HOARD_CF_INODES, NULL, 0);
	ext = hoard_iter_new(sc->st, HOARD_CF_EXTENTS, NULL, 0);
	if (!it || !ext) {
		r = -ENOMEM;
		goto out_free_iters;
	}
	for (; hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t klen, vlen, vi = 0;
		const uint8_t *k = hoard_iter_key(it, &klen);
		const uint8_t *v = hoard_iter_value(it, &vlen);
		struct hoard_stats_volume *vol;
		uint64_t ino, size;
		uint32_t mode, nlink;

		if (klen != 8 || vlen < INODE_REC_MIN || v[0] != 1) {
			hoard_log(LOG_DEBUG,
				  "stats: skipping a bad inode record");
			continue;
		}
		ino = hoard_get_be64(k);
		mode = hoard_get_be32(v + 4);
		nlink = hoard_get_be32(v + 16);
		size = hoard_get_be64(v + 24);
		vol = volume_of(sc, hoard_get_be64(v + 32), &vi);
		if (!vol) /* a root whose volume field is not itself */
			vol = volume_of(sc, ino, &vi);

		if (nlink > 0) {
			count_inode(&sc->s->total, mode, size);
			if (vol)
				count_inode(&vol->f, mode, size);
		}
		if (vol && S_ISREG(mode)) {
			r = collect_extents(ext, ino, &sc->sets[vi]);
			if (r < 0)
				goto out_free_iters;
		}
	}
out_free_iters:
	hoard_iter_free(ext);
	hoard_iter_free(it);
	return r;
}

static void count_chunk(struct hoard_stats_figs *f, uint32_t raw,
			uint32_t frame)
{
	f->chunks++;
	f->unique_bytes += raw;
	f->stored_bytes += frame;
}

static int scan_chunks(struct scan *sc)
{
	struct hoard_stats *s = sc->s;
	struct hoard_iter *it;

	it = hoard_iter_new(sc->st, HOARD_CF_CHUNKS, NULL, 0);
	if (!it)
		return -ENOMEM;
	for (; hoard_iter_valid(it); hoard_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = hoard_iter_key(it, &klen);
		const uint8_t *v = hoard_iter_value(it, &vlen);
		uint32_t raw, frame;
		struct hoard_id id;

		if (klen != HOARD_ID_SIZE || vlen < CHUNK_REC_MIN ||
		    (v[0] != 1 && v[0] != 2)) {
			hoard_log(LOG_DEBUG,
				  "stats: skipping a bad chunk record");
			continue;
		}
		if (hoard_get_be64(v + 16) == 0)
			continue;
		memcpy(id.b, k, HOARD_ID_SIZE);
		raw = hoard_get_be32(v + 4);
		frame = hoard_get_be32(v + 8);
		count_chunk(&s->total, raw, frame);
		if (!(v[1] & 1)) {
			s->not_local_chunks++;
			s->not_local_bytes += frame;
		}
		for (size_t i = 0; i < s->n_volumes; i++)
			if (id_set_has(&sc->sets[i], &id))
				count_chunk(&s->volumes[i].f, raw, frame);
	}
	hoard_iter_free(it);
	return 0;
}

int hoard_stats_compute(struct hoard_store *st, struct hoard_stats **ret)
{
	struct scan sc = {.st = st};
	int r;

	sc.s = calloc(1, sizeof(*sc.s));
	if (!sc.s)
		return -ENOMEM;
	r = scan_volumes(&sc);
	if (r < 0)
		goto out_free_scan;
	r = scan_inodes(&sc);
	if (r < 0)
		goto out_free_scan;
	r = scan_chunks(&sc);
	if (r < 0)
		goto out_free_scan;
	for (int cf = 0; cf < HOARD_CF_COUNT; cf++)
		sc.s->db_bytes += hoard_store_cf_size(st, (enum hoard_cf)cf);

	*ret = sc.s;
	sc.s = NULL;
out_free_scan:
	for (size_t i = 0; i < sc.n_sets; i++)
		id_set_free(&sc.sets[i]);
	free(sc.sets);
	free(sc.roots);
	hoard_stats_free(sc.s);
	return r;
}

void hoard_stats_free(struct hoard_stats *s)
{
	if (!s)
		return;
	free(s->volumes);
	free(s);
}

/* ---- JSON out ---- */

static double ratio(const struct hoard_stats_figs *f)
{
	/* logical / stored: dedup and compression together; 1 when empty */
	if (!f->stored_bytes)
		return 1.0;
	return (double)f->logical_bytes / (double)f->stored_bytes;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t c;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, c = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return len;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD. */
static void json_string(FILE *f, const char *str)
{
	const unsigned char *p = (const unsigned char *)str;
	size_t n = strlen(str);

	fputc('"', f);
	while (n) {
		size_t len = 1;

		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else if (*p < 0x80)
			fputc(*p, f);
		else if ((len = utf8_len(p, n)))
			fwrite(p, 1, len, f);
		else
			fputs("\\ufffd", f), len = 1;
		p += len;
		n -= len;
	}
	fputc('"', f);
}

static void json_figs(FILE *f, const struct hoard_stats_figs *g,
		      const uint64_t *db_bytes)
{
	fprintf(f,
		"{\"files\":%llu,\"logical_bytes\":%llu,\"unique_bytes\":%llu,"
		"\"stored_bytes\":%llu,\"chunks\":%llu,\"dirs\":%llu,"
		"\"symlinks\":%llu,\"others\":%llu,",
		(unsigned long long)g->files,
		(unsigned long long)g->logical_bytes,
		(unsigned long long)g->unique_bytes,
		(unsigned long long)g->stored_bytes,
		(unsigned long long)g->chunks, (unsigned long long)g->dirs,
		(unsigned long long)g->symlinks, (unsigned long long)g->others);
	if (db_bytes)
		fprintf(f, "\"db_bytes\":%llu,", (unsigned long long)*db_bytes);
	fprintf(f, "\"dedup_ratio\":%.3f", ratio(g));
}

/* Close a memstream on *buf: the text, or NULL (freed) if a write failed.
 * (fclose() sets *buf, so it is read only after.) */
static char *memstream_finish(FILE *f, char **buf)
{
	bool bad = ferror(f);

	if (fclose(f) || bad) {
		free(*buf);
		return NULL;
	}
	return *buf;
}

char *hoard_stats_json(const struct hoard_stats *s)
{
	char *buf = NULL;
	size_t len;
	FILE *f;

	f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	json_figs(f, &s->total, &s->db_bytes);
	if (s->have_cache)
		fprintf(f, ",\"cache_hits\":%llu,\"cache_misses\":%llu",
			(unsigned long long)s->cache_hits,
			(unsigned long long)s->cache_misses);
	if (s->not_local_chunks || s->have_fetch)
		fprintf(f,
			",\"chunks_not_local\":%llu,\"not_local_bytes\":%llu",
			(unsigned long long)s->not_local_chunks,
			(unsigned long long)s->not_local_bytes);
	if (s->have_fetch)
		fprintf(f,
			",\"fetched_chunks\":%llu,\"fetched_bytes\":%llu,"
			"\"fetch_gets\":%llu,\"fetch_get_bytes\":%llu,"
			"\"fetch_failures\":%llu",
			(unsigned long long)s->fetched_chunks,
			(unsigned long long)s->fetched_bytes,
			(unsigned long long)s->fetch_gets,
			(unsigned long long)s->fetch_get_bytes,
			(unsigned long long)s->fetch_failures);
	if (s->have_budget)
		fprintf(f,
			",\"max_size\":%llu,\"pinned_bytes\":%llu,"
			"\"evicted_files\":%llu,\"evicted_bytes\":%llu",
			(unsigned long long)s->max_size,
			(unsigned long long)s->pinned_bytes,
			(unsigned long long)s->evicted_files,
			(unsigned long long)s->evicted_bytes);
	fputs(",\"volumes\":{", f);
	for (size_t i = 0; i < s->n_volumes; i++) {
		if (i)
			fputc(',', f);
		json_string(f, s->volumes[i].name);
		fputc(':', f);
		json_figs(f, &s->volumes[i].f, NULL);
		fputc('}', f);
	}
	fputs("}}\n", f);
	return memstream_finish(f, &buf);
}

/* ---- text out ---- */

static void human(uint64_t n, char *out, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB",
					    "TiB", "PiB", "EiB"};
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(out, len, "%llu B", (unsigned long long)n);
		return;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, "%.1f %s", v, units[u]);
}

static void text_row(FILE *f, int w, const char *name,
		     const struct hoard_stats_figs *g)
{
	char lb[32], ub[32], sb[32], rb[32];

	human(g->logical_bytes, lb, sizeof(lb));
	human(g->unique_bytes, ub, sizeof(ub));
	human(g->stored_bytes, sb, sizeof(sb));
	if (g->stored_bytes)
		snprintf(rb, sizeof(rb), "%.2fx", ratio(g));
	else
		snprintf(rb, sizeof(rb), "-");
	fprintf(f, "%-*s %8llu %6llu %8llu %6llu %10s %10s %10s %8llu %7s\n", w,
		name, (unsigned long long)g->files, (unsigned long long)g->dirs,
		(unsigned long long)g->symlinks, (unsigned long long)g->others,
		lb, ub, sb, (unsigned long long)g->chunks, rb);
}

char *hoard_stats_text(const struct hoard_stats *s)
{
	char *buf = NULL, db[32];
	size_t len;
	int w = 7; /* strlen("(total)") */
	FILE *f;

	for (size_t i = 0; i < s->n_volumes; i++)
		if ((int)strlen(s->volumes[i].name) > w)
			w = (int)strlen(s->volumes[i].name);
	f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	fprintf(f, "%-*s %8s %6s %8s %6s %10s %10s %10s %8s %7s\n", w, "VOLUME",
		"FILES", "DIRS", "SYMLINKS", "OTHERS", "LOGICAL", "UNIQUE",
		"STORED", "CHUNKS", "RATIO");
	for (size_t i = 0; i < s->n_volumes; i++)
		text_row(f, w, s->volumes[i].name, &s->volumes[i].f);
	text_row(f, w, "(total)", &s->total);
	human(s->db_bytes, db, sizeof(db));
	fprintf(f,
		"\n"
		"logical: size of the files; unique: their distinct chunks; "
		"stored: those chunks\n"
		"compressed; ratio: logical / stored.  A chunk shared by "
		"volumes counts in each.\n"
		"database on disk: %s\n",
		db);
	if (s->have_cache)
		fprintf(f, "decompressed-chunk cache: %llu hits, %llu misses\n",
			(unsigned long long)s->cache_hits,
			(unsigned long long)s->cache_misses);
	if (s->not_local_chunks || s->have_fetch) {
		char nb[32], fb[32];

		human(s->not_local_bytes, nb, sizeof(nb));
		human(s->fetched_bytes, fb, sizeof(fb));
		fprintf(f, "not local (lazy, in the remote): %llu chunks, %s",
			(unsigned long long)s->not_local_chunks, nb);
		if (s->have_fetch)
			fprintf(f,
				"; fetched since the daemon started: %llu "
				"chunks, %s in %llu GETs, %llu failed",
				(unsigned long long)s->fetched_chunks, fb,
				(unsigned long long)s->fetch_gets,
				(unsigned long long)s->fetch_failures);
		fputc('\n', f);
	}
	if (s->have_budget) {
		char mb[32], pb[32], eb[32];

		human(s->max_size, mb, sizeof(mb));
		human(s->pinned_bytes, pb, sizeof(pb));
		human(s->evicted_bytes, eb, sizeof(eb));
		fprintf(f,
			"size budget: %s; pinned: %s; evicted since the "
			"daemon started: %llu files, %s\n",
			s->max_size ? mb : "none", pb,
			(unsigned long long)s->evicted_files, eb);
	}
	return memstream_finish(f, &buf);
}

/* ---- JSON in: just enough for what hoard_stats_json() writes ---- */

struct jp {
	const char *p;
};

static void jp_ws(struct jp *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static bool jp_eat(struct jp *j, char c)
{
	jp_ws(j);
	if (*j->p != c)
		return false;
	j->p++;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int jp_u4(struct jp *j, uint32_t *ret)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		int h = hexval(j->p[i]);

		if (h < 0)
			return -EBADMSG;
		v = (v << 4) | (uint32_t)h;
	}
	j->p += 4;
	*ret = v;
	return 0;
}

/* Append code point c as UTF-8 to out (cap bytes, *n used); out may be
 * NULL (skipping a string). */
static int put_utf8(char *out, size_t cap, size_t *n, uint32_t c)
{
	unsigned char b[4];
	size_t len;

	if (c < 0x80) {
		b[0] = (unsigned char)c;
		len = 1;
	} else if (c < 0x800) {
		b[0] = (unsigned char)(0xc0 | (c >> 6));
		b[1] = (unsigned char)(0x80 | (c & 0x3f));
		len = 2;
	} else if (c < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (c >> 12));
		b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (c & 0x3f));
		len = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (c >> 18));
		b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (c & 0x3f));
		len = 4;
	}
	if (!out)
		return 0;
	if (*n + len >= cap)
		return -EBADMSG;
	memcpy(out + *n, b, len);
	*n += len;
	return 0;
}

/* The escape after a backslash (j->p is past it) as a code point. */
static int jp_escape(struct jp *j, uint32_t *ret)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *e;
	uint32_t c, lo;
	char x = *j->p;

	if (!x)
		return -EBADMSG;
	j->p++;
	if (x != 'u') {
		e = strchr(from, x);
		if (!e)
			return -EBADMSG;
		*ret = (unsigned char)to[e - from];
		return 0;
	}
	if (jp_u4(j, &c) < 0)
		return -EBADMSG;
	if (c >= 0xd800 && c <= 0xdbff && j->p[0] == '\\' && j->p[1] == 'u') {
		j->p += 2;
		if (jp_u4(j, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
			return -EBADMSG;
		c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
	} else if (c >= 0xd800 && c <= 0xdfff) {
		c = 0xfffd; /* a lone surrogate */
	}
	if (c == 0)
		return -EBADMSG; /* would cut a C string */
	*ret = c;
	return 0;
}

/* A string into out (cap bytes, NUL-terminated); out NULL skips it. */
static int jp_string(struct jp *j, char *out, size_t cap)
{
	size_t n = 0;

	if (!jp_eat(j, '"'))
		return -EBADMSG;
	while (*j->p != '"') {
		uint32_t c = (unsigned char)*j->p++;

		if (c < 0x20)
			return -EBADMSG; /* also the end of the text */
		if (c == '\\') {
			if (jp_escape(j, &c) < 0 ||
			    put_utf8(out, cap, &n, c) < 0)
				return -EBADMSG;
			continue;
		}
		if (!out)
			continue;
		if (n + 1 >= cap)
			return -EBADMSG;
		out[n++] = (char)c;
	}
	j->p++;
	if (out)
		out[n] = '\0';
	return 0;
}

static int jp_u64(struct jp *j, uint64_t *ret)
{
	uint64_t v = 0;

	jp_ws(j);
	if (*j->p < '0' || *j->p > '9')
		return -EBADMSG;
	for (; *j->p >= '0' && *j->p <= '9'; j->p++) {
		if (v > (UINT64_MAX - (uint64_t)(*j->p - '0')) / 10)
			return -EBADMSG;
		v = v * 10 + (uint64_t)(*j->p - '0');
	}
	*ret = v;
	return 0;
}

/* Skip any value (depth-limited). */
static int jp_skip(struct jp *j, int depth)
{
	const char *lit[] = {"true", "false", "null"};
	char close;

	jp_ws(j);
	if (*j->p == '"')
		return jp_string(j, NULL, 0);
	if (*j->p == '{' || *j->p == '[') {
		if (depth > 32)
			return -EBADMSG;
		close = *j->p == '{' ? '}' : ']';
		j->p++;
		if (jp_eat(j, close))
			return 0;
		do {
			if (close == '}' &&
			    (jp_string(j, NULL, 0) < 0 || !jp_eat(j, ':')))
				return -EBADMSG;
			if (jp_skip(j, depth + 1) < 0)
				return -EBADMSG;
		} while (jp_eat(j, ','));
		return jp_eat(j, close) ? 0 : -EBADMSG;
	}
	for (int i = 0; i < 3; i++)
		if (!strncmp(j->p, lit[i], strlen(lit[i]))) {
			j->p += strlen(lit[i]);
			return 0;
		}
	if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
		char *end;

		strtod(j->p, &end);
		if (end == j->p)
			return -EBADMSG;
		j->p = end;
		return 0;
	}
	return -EBADMSG;
}

/* Set the figure named key from the next value; 0 if key is not a figure. */
static int jp_fig(struct jp *j, const char *key, struct hoard_stats_figs *g,
		  uint64_t *db_bytes)
{
	static const struct {
		const char *name;
		size_t off;
	} figs[] = {
#define FIG(x) {#x, offsetof(struct hoard_stats_figs, x)}
		FIG(files),	   FIG(dirs),	       FIG(symlinks),
		FIG(others),	   FIG(logical_bytes), FIG(unique_bytes),
		FIG(stored_bytes), FIG(chunks),
#undef FIG
	};

	for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++)
		if (!strcmp(key, figs[i].name))
			return jp_u64(j, (uint64_t *)((char *)g + figs[i].off));
	if (db_bytes && !strcmp(key, "db_bytes"))
		return jp_u64(j, db_bytes);
	return jp_skip(j, 1);
}

static int jp_volume(struct jp *j, struct hoard_stats_volume *v)
{
	char key[64];

	if (!jp_eat(j, '{'))
		return -EBADMSG;
	if (jp_eat(j, '}'))
		return 0;
	do {
		if (jp_string(j, key, sizeof(key)) < 0 || !jp_eat(j, ':') ||
		    jp_fig(j, key, &v->f, NULL) < 0)
			return -EBADMSG;
	} while (jp_eat(j, ','));
	return jp_eat(j, '}') ? 0 : -EBADMSG;
}

static int jp_volumes(struct jp *j, struct hoard_stats *s)
{
	size_t cap = 0;

	if (!jp_eat(j, '{'))
		return -EBADMSG;
	if (jp_eat(j, '}'))
		return 0;
	do {
		struct hoard_stats_volume *v;

		void *nv = hoard_grow(s->volumes, &cap, s->n_volumes + 1,
				      sizeof(*v), 8);

		if (!nv)
			return -ENOMEM;
		s->volumes = nv;
		v = &s->volumes[s->n_volumes];
		memset(v, 0, sizeof(*v));
		if (jp_string(j, v->name, sizeof(v->name)) < 0 ||
		    !jp_eat(j, ':') || jp_volume(j, v) < 0)
			return -EBADMSG;
		s->n_volumes++;
	} while (jp_eat(j, ','));
	return jp_eat(j, '}') ? 0 : -EBADMSG;
}

int hoard_stats_from_json(const char *json, struct hoard_stats **ret)
{
	struct jp j = {.p = json};
	struct hoard_stats *s;
	char key[64];
	int r = -EBADMSG;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (!jp_eat(&j, '{'))
		goto out_free_stats;
	if (!jp_eat(&j, '}')) {
		do {
			r = -EBADMSG;
			if (jp_string(&j, key, sizeof(key)) < 0 ||
			    !jp_eat(&j, ':'))
				goto out_free_stats;
			if (!strcmp(key, "volumes"))
				r = jp_volumes(&j, s);
			else if (!strcmp(key, "cache_hits"))
				r = jp_u64(&j, &s->cache_hits);
			else if (!strcmp(key, "cache_misses"))
				r = jp_u64(&j, &s->cache_misses);
			else if (!strcmp(key, "max_size"))
				r = jp_u64(&j, &s->max_size);
			else if (!strcmp(key, "pinned_bytes"))
				r = jp_u64(&j, &s->pinned_bytes);
			else if (!strcmp(key, "evicted_files"))
				r = jp_u64(&j, &s->evicted_files);
			else if (!strcmp(key, "evicted_bytes"))
				r = jp_u64(&j, &s->evicted_bytes);
			else if (!strcmp(key, "chunks_not_local"))
				r = jp_u64(&j, &s->not_local_chunks);
			else if (!strcmp(key, "not_local_bytes"))
				r = jp_u64(&j, &s->not_local_bytes);
			else if (!strcmp(key, "fetched_chunks"))
				r = jp_u64(&j, &s->fetched_chunks);
			else if (!strcmp(key, "fetched_bytes"))
				r = jp_u64(&j, &s->fetched_bytes);
			else if (!strcmp(key, "fetch_gets"))
				r = jp_u64(&j, &s->fetch_gets);
			else if (!strcmp(key, "fetch_get_bytes"))
				r = jp_u64(&j, &s->fetch_get_bytes);
			else if (!strcmp(key, "fetch_failures"))
				r = jp_u64(&j, &s->fetch_failures);
			else
				r = jp_fig(&j, key, &s->total, &s->db_bytes);
			if (r < 0)
				goto out_free_stats;
			if (!strncmp(key, "cache_", 6))
				s->have_cache = true;
			if (!strcmp(key, "max_size"))
				s->have_budget = true;
			if (!strncmp(key, "fetch", 5))
				s->have_fetch = true;
		} while (jp_eat(&j, ','));
		r = -EBADMSG;
		if (!jp_eat(&j, '}'))
			goto out_free_stats;
	}
	jp_ws(&j);
	if (*j.p)
		goto out_free_stats;
	*ret = s;
	return 0;
out_free_stats:
	hoard_stats_free(s);
	return r;
}
