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

#include "hoard/json.h"
#include "hoard/records.h"
#include "hoard/stats.h"
#include "hoard/htab.h"
#include "hoard/util.h"

/* ---- a set of chunk ids (htab.h) ---- */

struct id_set {
	struct hoard_htab t; /* entries: the ids; load 1/2 */
};

static bool id_set_has(const struct id_set *s, const struct hoard_id *id)
{
	return hoard_htab_get(&s->t, id) != NULL;
}

static int id_set_add(struct id_set *s, const struct hoard_id *id)
{
	if (!s->t.esz) { /* a calloc()ed set: its first id */
		s->t = HOARD_HTAB_INIT(sizeof(*id), sizeof(*id), 50);
		s->t.min_cap = 256;
	}
	return hoard_htab_put(&s->t, id, NULL) ? 0 : -ENOMEM;
}

static void id_set_free(struct id_set *s)
{
	hoard_htab_free(&s->t);
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
		uint64_t root;
		void *nv;

		if (volume_rec_decode(k, klen, v, vlen, &root) < 0) {
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
		vol->root_ino = root;
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
		struct extent_rec e;
		int r;

		if (extent_decode(k, klen, v, vlen, &e) < 0)
			continue;
		if (e.ino < ino)
			continue; /* no inode record: skipped */
		if (e.ino > ino)
			break;
		r = id_set_add(set, &e.id);
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
		struct hoard_inode in;
		uint64_t ino;

		if (ino_key_decode(k, klen, &ino) < 0 ||
		    inode_decode_attrs(v, vlen, &in) < 0) {
			hoard_log(LOG_DEBUG,
				  "stats: skipping a bad inode record");
			continue;
		}
		vol = volume_of(sc, in.volume, &vi);
		if (!vol) /* a root whose volume field is not itself */
			vol = volume_of(sc, ino, &vi);

		if (in.nlink > 0) {
			count_inode(&sc->s->total, in.mode, in.size);
			if (vol)
				count_inode(&vol->f, in.mode, in.size);
		}
		if (vol && S_ISREG(in.mode)) {
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
		struct chunk_rec rec;
		uint32_t raw, frame;
		struct hoard_id id;

		if (chunk_key_decode(k, klen, &id) < 0 ||
		    chunk_rec_decode(v, vlen, &rec) < 0) {
			hoard_log(LOG_DEBUG,
				  "stats: skipping a bad chunk record");
			continue;
		}
		if (rec.refcount == 0)
			continue;
		raw = rec.raw_size;
		frame = rec.frame_size;
		count_chunk(&s->total, raw, frame);
		if (!(rec.flags & 1)) {
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
	free(s->pt);
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

/* The figures of g as an object; db_bytes too when not NULL. */
static json_t *json_figs(const struct hoard_stats_figs *g,
			 const uint64_t *db_bytes)
{
	json_t *o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "files",
			      hoard_json_u64(g->files), "logical_bytes",
			      hoard_json_u64(g->logical_bytes), "unique_bytes",
			      hoard_json_u64(g->unique_bytes), "stored_bytes",
			      hoard_json_u64(g->stored_bytes), "chunks",
			      hoard_json_u64(g->chunks), "dirs",
			      hoard_json_u64(g->dirs), "symlinks",
			      hoard_json_u64(g->symlinks), "others",
			      hoard_json_u64(g->others));

	if (o && db_bytes &&
	    json_object_set_new(o, "db_bytes", hoard_json_u64(*db_bytes)) < 0)
		goto out_fail;
	if (o && json_object_set_new(o, "dedup_ratio",
				     hoard_json_real3(ratio(g))) < 0)
		goto out_fail;
	return o;
out_fail:
	json_decref(o);
	return NULL;
}

/* Set the n (name, value) pairs on o; -1 if one could not be. */
static int set_u64s(json_t *o, const char *const *names, const uint64_t *vals,
		    size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (json_object_set_new(o, names[i], hoard_json_u64(vals[i])) <
		    0)
			return -1;
	return 0;
}

#define SET_U64S(o, names, ...)                                                \
	set_u64s(o, names, (const uint64_t[]){__VA_ARGS__},                    \
		 sizeof(names) / sizeof(names[0]))

/* {"global": "on" or "off (why)", "mounts": {VOLUME: the same}}; NULL on
 * ENOMEM (json_object_set_new then fails too). */
static json_t *json_passthrough(const struct hoard_stats *s)
{
	json_t *pt = json_object(), *mounts = json_object();
	int r = pt && mounts ? 0 : -1;

	for (size_t i = 0; r == 0 && i < s->n_pt; i++)
		r = json_object_set_new(mounts, s->pt[i].volume,
					json_string(s->pt[i].why));
	if (r == 0)
		r = json_object_set_new(pt, "global",
					json_string(s->pt_global));
	if (r == 0)
		r = json_object_set_new(pt, "mounts", mounts);
	else
		json_decref(mounts);
	if (r < 0) {
		json_decref(pt);
		return NULL;
	}
	return pt;
}

char *hoard_stats_json(const struct hoard_stats *s)
{
	static const char *const cache[] = {"cache_hits", "cache_misses"};
	static const char *const local[] = {"chunks_not_local",
					    "not_local_bytes"};
	static const char *const fetch[] = {"fetched_chunks", "fetched_bytes",
					    "fetch_gets",     "fetch_get_bytes",
					    "fetch_failures", "fetch_retries"};
	static const char *const reads[] = {"read_errors", "commit_errors"};
	static const char *const lookups[] = {
		"lookup_scans", "lookup_window_hits", "lookup_prefetch_bytes"};
	static const char *const budget[] = {"max_size", "pinned_bytes",
					     "evicted_files", "evicted_bytes"};
	static const char *const plain[] = {"plain_bytes",   "plain_files",
					    "plain_hits",    "plain_made",
					    "plain_dropped", "plain_failed"};
	json_t *o = json_figs(&s->total, &s->db_bytes), *vols;
	int r = o ? 0 : -1;

	if (r == 0 && s->have_cache)
		r = SET_U64S(o, cache, s->cache_hits, s->cache_misses);
	if (r == 0 && (s->not_local_chunks || s->have_fetch))
		r = SET_U64S(o, local, s->not_local_chunks, s->not_local_bytes);
	if (r == 0 && s->have_fetch)
		r = SET_U64S(o, fetch, s->fetched_chunks, s->fetched_bytes,
			     s->fetch_gets, s->fetch_get_bytes,
			     s->fetch_failures, s->fetch_retries);
	if (r == 0 && s->have_budget)
		r = SET_U64S(o, budget, s->max_size, s->pinned_bytes,
			     s->evicted_files, s->evicted_bytes);
	if (r == 0 && s->have_reads)
		r = SET_U64S(o, reads, s->read_errors, s->commit_errors);
	if (r == 0 && s->have_lookups)
		r = SET_U64S(o, lookups, s->lookup_scans, s->lookup_window_hits,
			     s->lookup_prefetch_bytes);
	if (r == 0 && s->have_plain)
		r = SET_U64S(o, plain, s->plain_bytes, s->plain_files,
			     s->plain_hits, s->plain_made, s->plain_dropped,
			     s->plain_failed);
	if (r == 0 && s->have_passthrough)
		r = json_object_set_new(o, "passthrough", json_passthrough(s));
	vols = json_object();
	if (r == 0 && json_object_set_new(o, "volumes", vols) < 0)
		r = -1;
	for (size_t i = 0; r == 0 && i < s->n_volumes; i++) {
		json_t *name = hoard_json_str_lossy(s->volumes[i].name);

		if (!name ||
		    json_object_set_new(vols, json_string_value(name),
					json_figs(&s->volumes[i].f, NULL)) < 0)
			r = -1;
		json_decref(name);
	}
	if (r < 0) {
		json_decref(o);
		return NULL;
	}
	return hoard_json_dump(o, true);
}

/* ---- text out ---- */

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
	if (s->have_lookups) {
		char pb[32];

		human(s->lookup_prefetch_bytes, pb, sizeof(pb));
		fprintf(f,
			"lookups answered from entries read ahead: %llu (%llu "
			"windows read, %s of tables read ahead)\n",
			(unsigned long long)s->lookup_window_hits,
			(unsigned long long)s->lookup_scans, pb);
	}
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

/* ---- Prometheus out ---- */

/* One family's # HELP and # TYPE lines. */
static void prom_family(FILE *f, const char *name, const char *type,
			const char *help)
{
	fprintf(f, "# HELP hoard_%s %s\n# TYPE hoard_%s %s\n", name, help, name,
		type);
}

/* A label value: backslash, double quote and newline escaped. */
static void prom_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void prom_u64(FILE *f, const char *name, const char *type,
		     const char *help, uint64_t v)
{
	prom_family(f, name, type, help);
	fprintf(f, "hoard_%s %llu\n", name, (unsigned long long)v);
}

static const struct {
	const char *name; /* after hoard_store_ / hoard_volume_ */
	size_t off;	  /* in struct hoard_stats_figs */
	const char *help;
} prom_figs[] = {
#define FIG(n, x, h)                                                           \
	{                                                                      \
		n, offsetof(struct hoard_stats_figs, x), h                     \
	}
	FIG("files", files, "Regular files (hard links counted once)."),
	FIG("dirs", dirs, "Directories."),
	FIG("symlinks", symlinks, "Symbolic links."),
	FIG("others", others, "Other inodes (devices, FIFOs, sockets)."),
	FIG("logical_bytes", logical_bytes, "Sum of the files' sizes."),
	FIG("unique_bytes", unique_bytes,
	    "Raw bytes of the distinct chunks the files use."),
	FIG("stored_bytes", stored_bytes,
	    "Bytes of those chunks after compression."),
	FIG("chunks", chunks, "Distinct chunks."),
#undef FIG
};

char *hoard_stats_prometheus(const struct hoard_stats *s)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < sizeof(prom_figs) / sizeof(prom_figs[0]); i++) {
		char name[64];

		snprintf(name, sizeof(name), "store_%s", prom_figs[i].name);
		prom_u64(f, name, "gauge", prom_figs[i].help,
			 *(const uint64_t *)((const char *)&s->total +
					     prom_figs[i].off));
	}
	prom_family(f, "store_dedup_ratio", "gauge",
		    "Logical bytes / stored bytes (1 when empty).");
	fprintf(f, "hoard_store_dedup_ratio %.3f\n", ratio(&s->total));
	prom_u64(f, "store_db_bytes", "gauge",
		 "RocksDB's live SST and blob bytes.", s->db_bytes);
	for (size_t i = 0; i < sizeof(prom_figs) / sizeof(prom_figs[0]); i++) {
		char name[64];

		snprintf(name, sizeof(name), "volume_%s", prom_figs[i].name);
		prom_family(f, name, "gauge", prom_figs[i].help);
		for (size_t v = 0; v < s->n_volumes; v++) {
			fprintf(f, "hoard_%s{volume=\"", name);
			prom_label(f, s->volumes[v].name);
			fprintf(f, "\"} %llu\n",
				(unsigned long long)*(
					const uint64_t *)((const char *)&s
								  ->volumes[v]
								  .f +
							  prom_figs[i].off));
		}
	}
	prom_family(f, "volume_dedup_ratio", "gauge",
		    "Logical bytes / stored bytes of the volume.");
	for (size_t v = 0; v < s->n_volumes; v++) {
		fputs("hoard_volume_dedup_ratio{volume=\"", f);
		prom_label(f, s->volumes[v].name);
		fprintf(f, "\"} %.3f\n", ratio(&s->volumes[v].f));
	}
	if (s->have_cache) {
		prom_u64(f, "chunk_cache_hits_total", "counter",
			 "Decompressed-chunk cache hits since the daemon "
			 "started.",
			 s->cache_hits);
		prom_u64(f, "chunk_cache_misses_total", "counter",
			 "Decompressed-chunk cache misses since the daemon "
			 "started.",
			 s->cache_misses);
	}
	if (s->have_reads)
		prom_u64(f, "read_errors_total", "counter",
			 "Reads the daemon answered with EIO (a corrupt or "
			 "unfetchable chunk).",
			 s->read_errors);
	if (s->have_reads)
		prom_u64(f, "commit_errors_total", "counter",
			 "Commits after a close had returned that failed (the "
			 "file kept its previous content).",
			 s->commit_errors);
	if (s->have_lookups) {
		prom_u64(f, "lookup_scans_total", "counter",
			 "Windows of directory entries read ahead for LOOKUP "
			 "walks.",
			 s->lookup_scans);
		prom_u64(f, "lookup_window_hits_total", "counter",
			 "LOOKUPs answered from those windows.",
			 s->lookup_window_hits);
		prom_u64(f, "lookup_prefetch_bytes_total", "counter",
			 "Bytes of table files the kernel was asked to read "
			 "ahead for them.",
			 s->lookup_prefetch_bytes);
	}
	if (s->have_plain) {
		prom_u64(f, "plain_bytes", "gauge",
			 "Bytes of the plain-file tier's copies.",
			 s->plain_bytes);
		prom_u64(f, "plain_files", "gauge", "Files with a plain copy.",
			 s->plain_files);
		prom_u64(f, "plain_hits_total", "counter",
			 "Reads served from plain copies.", s->plain_hits);
		prom_u64(f, "plain_made_total", "counter", "Plain copies made.",
			 s->plain_made);
		prom_u64(f, "plain_dropped_total", "counter",
			 "Plain copies dropped.", s->plain_dropped);
		prom_u64(f, "plain_failed_total", "counter",
			 "Plain copies that could not be made.",
			 s->plain_failed);
	}
	if (s->not_local_chunks || s->have_fetch) {
		prom_u64(f, "not_local_chunks", "gauge",
			 "Chunks with a reference that are only in the remote.",
			 s->not_local_chunks);
		prom_u64(f, "not_local_bytes", "gauge",
			 "Frame bytes of those chunks.", s->not_local_bytes);
	}
	if (s->have_fetch) {
		prom_u64(f, "fetched_chunks_total", "counter",
			 "Chunks fetched and stored by lazy fetch.",
			 s->fetched_chunks);
		prom_u64(f, "fetched_bytes_total", "counter",
			 "Frame bytes fetched and stored by lazy fetch.",
			 s->fetched_bytes);
		prom_u64(f, "fetch_gets_total", "counter",
			 "Ranged GETs made by lazy fetch.", s->fetch_gets);
		prom_u64(f, "fetch_get_bytes_total", "counter",
			 "Bytes those GETs brought.", s->fetch_get_bytes);
		prom_u64(f, "fetch_failures_total", "counter",
			 "Lazy fetches that ended in EIO.", s->fetch_failures);
		prom_u64(f, "fetch_retries_total", "counter",
			 "Lazy fetch requests retried after a failed attempt.",
			 s->fetch_retries);
	}
	if (s->have_budget) {
		prom_u64(f, "budget_max_bytes", "gauge",
			 "The size budget in force (0: none).", s->max_size);
		prom_family(f, "budget_used_ratio", "gauge",
			    "Stored bytes / the size budget (0: no budget).");
		fprintf(f, "hoard_budget_used_ratio %.3f\n",
			s->max_size ? (double)s->total.stored_bytes /
					      (double)s->max_size
				    : 0.0);
		prom_u64(f, "budget_pinned_bytes", "gauge",
			 "Frame bytes of the distinct chunks of pinned files.",
			 s->pinned_bytes);
		prom_u64(f, "evicted_files_total", "counter",
			 "Files removed by the size budget since the daemon "
			 "started.",
			 s->evicted_files);
		prom_u64(f, "evicted_bytes_total", "counter",
			 "Bytes those removals freed.", s->evicted_bytes);
	}
	return memstream_finish(f, &buf);
}

/* ---- JSON in ---- */

static const struct {
	const char *name;
	size_t off;
} fig_names[] = {
#define FIG(x)                                                                 \
	{                                                                      \
#x, offsetof(struct hoard_stats_figs, x)                       \
	}
	FIG(files),	    FIG(dirs),	       FIG(symlinks),	  FIG(others),
	FIG(logical_bytes), FIG(unique_bytes), FIG(stored_bytes), FIG(chunks),
#undef FIG
};

/* The figures of object o into g (missing ones stay 0). */
static int figs_from(const json_t *o, struct hoard_stats_figs *g)
{
	if (!json_is_object(o))
		return -EBADMSG;
	for (size_t i = 0; i < sizeof(fig_names) / sizeof(fig_names[0]); i++) {
		int r = hoard_json_get_u64(
			o, fig_names[i].name, true,
			(uint64_t *)((char *)g + fig_names[i].off));

		if (r < 0 && r != -ENOENT)
			return r;
	}
	return 0;
}

int hoard_stats_from_json(const char *json, struct hoard_stats **ret)
{
	static const struct {
		const char *name;
		size_t off;
	} tops[] = {
#define TOP(k, x) {k, offsetof(struct hoard_stats, x)}
		TOP("db_bytes", db_bytes),
		TOP("cache_hits", cache_hits),
		TOP("cache_misses", cache_misses),
		TOP("max_size", max_size),
		TOP("pinned_bytes", pinned_bytes),
		TOP("evicted_files", evicted_files),
		TOP("evicted_bytes", evicted_bytes),
		TOP("chunks_not_local", not_local_chunks),
		TOP("not_local_bytes", not_local_bytes),
		TOP("fetched_chunks", fetched_chunks),
		TOP("fetched_bytes", fetched_bytes),
		TOP("fetch_gets", fetch_gets),
		TOP("fetch_get_bytes", fetch_get_bytes),
		TOP("fetch_failures", fetch_failures),
		TOP("fetch_retries", fetch_retries),
		TOP("read_errors", read_errors),
		TOP("commit_errors", commit_errors),
		TOP("plain_bytes", plain_bytes),
		TOP("plain_files", plain_files),
		TOP("plain_hits", plain_hits),
		TOP("plain_made", plain_made),
		TOP("plain_dropped", plain_dropped),
		TOP("plain_failed", plain_failed),
		TOP("lookup_scans", lookup_scans),
		TOP("lookup_window_hits", lookup_window_hits),
		TOP("lookup_prefetch_bytes", lookup_prefetch_bytes),
#undef TOP
	};
	json_t *o = hoard_json_parse_object(json), *vols, *v;
	struct hoard_stats *s;
	const char *name;
	size_t cap = 0;
	int r = -EBADMSG;

	if (!o)
		return -EBADMSG;
	s = calloc(1, sizeof(*s));
	if (!s) {
		json_decref(o);
		return -ENOMEM;
	}
	if (figs_from(o, &s->total) < 0)
		goto out_free;
	for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
		int e = hoard_json_get_u64(
			o, tops[i].name, true,
			(uint64_t *)((char *)s + tops[i].off));

		if (e == -ENOENT)
			continue;
		if (e < 0)
			goto out_free;
		if (!strncmp(tops[i].name, "cache_", 6))
			s->have_cache = true;
		if (!strcmp(tops[i].name, "max_size"))
			s->have_budget = true;
		if (!strncmp(tops[i].name, "fetch", 5))
			s->have_fetch = true;
		if (!strcmp(tops[i].name, "read_errors"))
			s->have_reads = true;
		if (!strncmp(tops[i].name, "plain_", 6))
			s->have_plain = true;
		if (!strncmp(tops[i].name, "lookup_", 7))
			s->have_lookups = true;
	}
	vols = json_object_get(o, "volumes");
	if (vols && !json_is_object(vols))
		goto out_free;
	json_object_foreach(vols, name, v)
	{
		struct hoard_stats_volume *nv = hoard_grow(
			s->volumes, &cap, s->n_volumes + 1, sizeof(*nv), 8);

		if (!nv) {
			r = -ENOMEM;
			goto out_free;
		}
		s->volumes = nv;
		nv = &s->volumes[s->n_volumes];
		memset(nv, 0, sizeof(*nv));
		if (strlen(name) >= sizeof(nv->name) ||
		    figs_from(v, &nv->f) < 0)
			goto out_free;
		strcpy(nv->name, name);
		s->n_volumes++;
	}
	json_decref(o);
	*ret = s;
	return 0;
out_free:
	json_decref(o);
	hoard_stats_free(s);
	return r;
}
