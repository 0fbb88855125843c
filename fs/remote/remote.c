// SPDX-License-Identifier: MIT
/*
 * remote: encoders and strict decoders of the remote objects (remote.h,
 * docs/REMOTE.md).  Every decoder works on untrusted bytes: lengths are
 * checked before each read, counts against what the buffer can hold, and
 * each rule broken gets one line naming it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hoard/chunker.h"
#include "hoard/fs.h"
#include "hoard/remote.h"
#include "hoard/util.h"

#define CONFIG_MAGIC   "HOARDREP"
#define IDX_MAGIC      "HOARDIDX"
#define MANIFEST_MAGIC "HOARDMAN"
#define IDX_HEADER     56
#define ENTRY_FIXED    32 /* type .. mtime ns, before the name */
#define EXTENT_SIZE    28
#define EXTENT_V2_SIZE (EXTENT_SIZE + HOARD_SHA256_SIZE)

/* ---- config ------------------------------------------------------------ */

void hoard_remote_config_make(struct hoard_remote_config *c,
			      const uint8_t *secret, int zstd_level)
{
	memset(c, 0, sizeof(*c));
	c->format = HOARD_REMOTE_FORMAT;
	c->chunker_version = HOARD_CHUNKER_VERSION;
	c->chunk_min = HOARD_CHUNK_MIN;
	c->chunk_avg = HOARD_CHUNK_AVG;
	c->chunk_max = HOARD_CHUNK_MAX;
	c->zstd_level = (uint32_t)zstd_level;
	memcpy(c->secret, secret, HOARD_SECRET_SIZE);
}

void hoard_remote_config_encode(const struct hoard_remote_config *c,
				uint8_t out[HOARD_CONFIG_SIZE])
{
	memcpy(out, CONFIG_MAGIC, 8);
	hoard_put_be32(out + 8, c->format);
	hoard_put_be32(out + 12, c->chunker_version);
	hoard_put_be32(out + 16, c->chunk_min);
	hoard_put_be32(out + 20, c->chunk_avg);
	hoard_put_be32(out + 24, c->chunk_max);
	hoard_put_be32(out + 28, c->zstd_level);
	memcpy(out + 32, c->secret, HOARD_SECRET_SIZE);
	hoard_sha256(out, 224, out + 224);
}

int hoard_remote_config_decode(const void *buf, size_t len,
			       struct hoard_remote_config *ret, char *errbuf,
			       size_t errlen)
{
	const uint8_t *p = buf;
	uint8_t sum[HOARD_SHA256_SIZE];
	struct hoard_remote_config c;

	if (len != HOARD_CONFIG_SIZE || memcmp(p, CONFIG_MAGIC, 8))
		return hoard_errf(
			errbuf, errlen, -EBADMSG,
			"the repository config is not a hoard config");
	hoard_sha256(p, 224, sum);
	if (memcmp(sum, p + 224, HOARD_SHA256_SIZE))
		return hoard_errf(
			errbuf, errlen, -EBADMSG,
			"the repository config is corrupt (checksum)");
	c.format = hoard_get_be32(p + 8);
	c.chunker_version = hoard_get_be32(p + 12);
	c.chunk_min = hoard_get_be32(p + 16);
	c.chunk_avg = hoard_get_be32(p + 20);
	c.chunk_max = hoard_get_be32(p + 24);
	c.zstd_level = hoard_get_be32(p + 28);
	memcpy(c.secret, p + 32, HOARD_SECRET_SIZE);
	if (c.format != HOARD_REMOTE_FORMAT)
		return hoard_errf(
			errbuf, errlen, -EPROTONOSUPPORT,
			"the repository has format %u; this hoard knows "
			"format %u",
			c.format, HOARD_REMOTE_FORMAT);
	if (c.chunker_version != HOARD_CHUNKER_VERSION ||
	    c.chunk_min != HOARD_CHUNK_MIN || c.chunk_avg != HOARD_CHUNK_AVG ||
	    c.chunk_max != HOARD_CHUNK_MAX)
		return hoard_errf(
			errbuf, errlen, -EPROTONOSUPPORT,
			"the repository uses chunker %u (%u/%u/%u); this "
			"hoard uses chunker %u",
			c.chunker_version, c.chunk_min, c.chunk_avg,
			c.chunk_max, HOARD_CHUNKER_VERSION);
	*ret = c;
	return 0;
}

/* ---- pack index --------------------------------------------------------- */

size_t hoard_pack_index_size(uint32_t n)
{
	return IDX_HEADER + (size_t)n * HOARD_IDX_ENTRY_SIZE +
	       HOARD_SHA256_SIZE;
}

void hoard_pack_index_encode(const struct hoard_pack_index *ix, uint8_t *out)
{
	uint8_t *p = out + IDX_HEADER;

	memcpy(out, IDX_MAGIC, 8);
	hoard_put_be32(out + 8, 1);
	hoard_put_be32(out + 12, ix->n);
	hoard_put_be64(out + 16, ix->pack_size);
	memcpy(out + 24, ix->pack_sha, HOARD_SHA256_SIZE);
	for (uint32_t i = 0; i < ix->n; i++, p += HOARD_IDX_ENTRY_SIZE) {
		memcpy(p, ix->e[i].id.b, HOARD_ID_SIZE);
		hoard_put_be64(p + 16, ix->e[i].off);
		hoard_put_be32(p + 24, ix->e[i].frame_len);
		hoard_put_be32(p + 28, ix->e[i].raw_len);
	}
	hoard_sha256(out, (size_t)(p - out), p);
}

int hoard_pack_index_decode(const void *buf, size_t len,
			    struct hoard_pack_index *ret, char *errbuf,
			    size_t errlen)
{
	const uint8_t *p = buf, *q;
	uint8_t sum[HOARD_SHA256_SIZE];
	struct hoard_pack_index ix = {0};
	uint64_t off = HOARD_PACK_HEADER;
	uint32_t n;

	if (len < hoard_pack_index_size(0) || memcmp(p, IDX_MAGIC, 8))
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "not a hoard pack index");
	if (hoard_get_be32(p + 8) != 1)
		return hoard_errf(errbuf, errlen, -EPROTONOSUPPORT,
				  "pack index version %u is unknown",
				  hoard_get_be32(p + 8));
	n = hoard_get_be32(p + 12);
	if ((len - hoard_pack_index_size(0)) / HOARD_IDX_ENTRY_SIZE != n ||
	    hoard_pack_index_size(n) != len)
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "pack index: %u entries do not fit %zu bytes",
				  n, len);
	hoard_sha256(p, len - HOARD_SHA256_SIZE, sum);
	if (memcmp(sum, p + len - HOARD_SHA256_SIZE, HOARD_SHA256_SIZE))
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "pack index is corrupt (checksum)");
	ix.n = n;
	ix.pack_size = hoard_get_be64(p + 16);
	memcpy(ix.pack_sha, p + 24, HOARD_SHA256_SIZE);
	if (ix.pack_size > HOARD_PACK_MAX + HOARD_CHUNK_MAX + 1)
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "pack index: pack size %llu is too large",
				  (unsigned long long)ix.pack_size);
	ix.e = calloc(n ? n : 1, sizeof(*ix.e));
	if (!ix.e)
		return -ENOMEM;
	q = p + IDX_HEADER;
	for (uint32_t i = 0; i < n; i++, q += HOARD_IDX_ENTRY_SIZE) {
		struct hoard_idx_entry *e = &ix.e[i];

		memcpy(e->id.b, q, HOARD_ID_SIZE);
		e->off = hoard_get_be64(q + 16);
		e->frame_len = hoard_get_be32(q + 24);
		e->raw_len = hoard_get_be32(q + 28);
		if (e->off != off || e->raw_len == 0 ||
		    e->raw_len > HOARD_CHUNK_MAX || e->frame_len < 2 ||
		    e->frame_len > e->raw_len + 1) {
			free(ix.e);
			return hoard_errf(
				errbuf, errlen, -EBADMSG,
				"pack index: entry %u is inconsistent", i);
		}
		off += e->frame_len;
	}
	if (off != ix.pack_size) {
		free(ix.e);
		return hoard_errf(
			errbuf, errlen, -EBADMSG,
			"pack index: frames add up to %llu bytes, the "
			"pack has %llu",
			(unsigned long long)off,
			(unsigned long long)ix.pack_size);
	}
	*ret = ix;
	return 0;
}

void hoard_pack_index_clear(struct hoard_pack_index *ix)
{
	if (!ix)
		return;
	free(ix->e);
	memset(ix, 0, sizeof(*ix));
}

/* ---- manifest ------------------------------------------------------------ */

int hoard_manifest_init(struct hoard_manifest *m, uint32_t root_mode,
			uint32_t uid, uint32_t gid, int64_t mtime_s,
			uint32_t mtime_ns)
{
	struct hoard_mentry root = {
		.type = HOARD_M_DIR,
		.name = "",
		.mode = root_mode,
		.uid = uid,
		.gid = gid,
		.mtime_s = mtime_s,
		.mtime_ns = mtime_ns,
	};
	long r;

	memset(m, 0, sizeof(*m));
	r = hoard_manifest_add(m, &root);
	return r < 0 ? (int)r : 0;
}

void hoard_manifest_clear(struct hoard_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->e[i].name);
		free(m->e[i].ext);
		free(m->e[i].target);
	}
	free(m->e);
	memset(m, 0, sizeof(*m));
}

long hoard_manifest_add(struct hoard_manifest *m, const struct hoard_mentry *e)
{
	struct hoard_mentry *x;

	x = hoard_grow(m->e, &m->cap, m->n + 1, sizeof(*x), 64);
	if (!x)
		return -ENOMEM;
	m->e = x;
	x = &m->e[m->n];
	*x = *e;
	x->name = strdup(e->name ? e->name : "");
	x->target = e->target ? strdup(e->target) : NULL;
	if (!x->name || (e->target && !x->target)) {
		free(x->name);
		free(x->target);
		return -ENOMEM;
	}
	return (long)m->n++;
}

/* A message shows names from the bucket: control characters (a newline,
 * an escape sequence) become '?', so a message stays one line and cannot
 * drive a terminal. */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static const char *msg_name(const char *name,
			    char buf[HOARD_REMOTE_NAME_MAX + 1])
{
	snprintf(buf, HOARD_REMOTE_NAME_MAX + 1, "%s", name);
	printable(buf);
	return buf;
}

void hoard_manifest_path(const struct hoard_manifest *m, size_t i, char *buf,
			 size_t n)
{
	size_t chain[64], depth = 0;
	size_t len = 0;

	if (!n)
		return;
	buf[0] = '\0';
	if (i >= m->n)
		return;
	while (i != 0 && depth < 64) {
		chain[depth++] = i;
		if (m->e[i].parent >= i)
			break;
		i = m->e[i].parent;
	}
	if (depth == 0) {
		snprintf(buf, n, "/");
		return;
	}
	while (depth-- > 0 && len + 1 < n) {
		int w = snprintf(buf + len, n - len, "%s%s", len ? "/" : "",
				 m->e[chain[depth]].name);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	printable(buf);
}

/* (parent, name) set to find duplicates: open addressing over indices. */
struct nameset {
	uint32_t *slot; /* entry index + 1; 0 empty */
	size_t cap;
};

static uint64_t name_hash(uint32_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	for (const unsigned char *s = (const unsigned char *)name; *s; s++)
		h = (h ^ *s) * 1099511628211ull;
	return h ^ (h >> 29);
}

/* 0, 1 when (parent, name) of entry i is already there, or -ENOMEM. */
static int nameset_add(struct nameset *s, const struct hoard_manifest *m,
		       uint32_t i)
{
	const struct hoard_mentry *e = &m->e[i];
	size_t k = name_hash(e->parent, e->name) & (s->cap - 1);

	while (s->slot[k]) {
		const struct hoard_mentry *o = &m->e[s->slot[k] - 1];

		if (o->parent == e->parent && !strcmp(o->name, e->name))
			return 1;
		k = (k + 1) & (s->cap - 1);
	}
	s->slot[k] = i + 1;
	return 0;
}

static bool name_ok(const char *name, const char **why)
{
	size_t n = strlen(name);

	if (n == 0)
		*why = "an empty name";
	else if (!strcmp(name, ".") || !strcmp(name, ".."))
		*why = "the name '.' or '..'";
	else if (strchr(name, '/'))
		*why = "a name with '/' (a path, absolute or nested)";
	else if (n > HOARD_REMOTE_NAME_MAX)
		*why = "a name longer than 255 bytes";
	else
		return true;
	return false;
}

static uint32_t type_of_mode(uint8_t t)
{
	switch (t) {
	case HOARD_M_DIR:
		return S_IFDIR;
	case HOARD_M_FILE:
	case HOARD_M_HARDLINK:
		return S_IFREG;
	case HOARD_M_SYMLINK:
		return S_IFLNK;
	default:
		return 0;
	}
}

/* Every rule of docs/REMOTE.md section 5.3. */
static int manifest_check(const struct hoard_manifest *m, char *errbuf,
			  size_t errlen)
{
	struct nameset ns = {0};
	uint64_t total = 0; /* the regular files' sizes added */
	char path[512], nm[HOARD_REMOTE_NAME_MAX + 1];
	const char *why;
	int r = 0;

	if (m->n == 0 || m->e[0].type != HOARD_M_DIR || m->e[0].name[0] ||
	    m->e[0].parent != 0 || !S_ISDIR(m->e[0].mode))
		return hoard_errf(
			errbuf, errlen, -EBADMSG,
			"manifest: entry 0 is not the root directory");
	if (m->n > UINT32_MAX - 1)
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "manifest: too many entries");
	ns.cap = 64;
	while (ns.cap < m->n * 2)
		ns.cap *= 2;
	ns.slot = calloc(ns.cap, sizeof(*ns.slot));
	if (!ns.slot)
		return -ENOMEM;
	for (uint32_t i = 1; i < m->n && r == 0; i++) {
		const struct hoard_mentry *e = &m->e[i];
		const struct hoard_mentry *p;
		uint64_t end = 0;

#define FAIL(...)                                                              \
	do {                                                                   \
		r = hoard_errf(errbuf, errlen, -EBADMSG, __VA_ARGS__);         \
		goto out;                                                      \
	} while (0)
		if (e->parent >= i)
			FAIL("manifest: entry %u names a parent (%u) that "
			     "does not come before it",
			     i, e->parent);
		p = &m->e[e->parent];
		hoard_manifest_path(m, e->parent, path, sizeof(path));
		if (!name_ok(e->name, &why))
			FAIL("manifest: entry %u in '%s' has %s", i, path, why);
		if (p->type == HOARD_M_SYMLINK)
			FAIL("manifest: '%s/%s' would be reached through the "
			     "symlink '%s'",
			     path, msg_name(e->name, nm), path);
		if (p->type != HOARD_M_DIR)
			FAIL("manifest: '%s/%s' lies under '%s', which is not "
			     "a directory",
			     path, msg_name(e->name, nm), path);
		r = nameset_add(&ns, m, i);
		if (r < 0)
			goto out;
		if (r == 1)
			FAIL("manifest: the name '%s' appears twice in '%s'",
			     msg_name(e->name, nm), path);
		hoard_manifest_path(m, i, path, sizeof(path));
		if (e->type == HOARD_M_NODE) {
			uint32_t t = e->mode & S_IFMT;

			if (t != S_IFIFO && t != S_IFSOCK && t != S_IFCHR &&
			    t != S_IFBLK)
				FAIL("manifest: '%s' has a bad mode %o", path,
				     e->mode);
		} else if (type_of_mode(e->type) == 0) {
			FAIL("manifest: '%s' has an unknown type %u", path,
			     e->type);
		} else if (e->type != HOARD_M_HARDLINK &&
			   (e->mode & S_IFMT) != type_of_mode(e->type)) {
			FAIL("manifest: '%s' has a mode %o that does not match "
			     "its type",
			     path, e->mode);
		}
		if (e->mtime_ns >= 1000000000u)
			FAIL("manifest: '%s' has a bad mtime", path);
		switch (e->type) {
		case HOARD_M_FILE:
			if (e->size > HOARD_REMOTE_SIZE_MAX)
				FAIL("manifest: '%s' has a size of %llu bytes, "
				     "over the largest file size (2^63 - 1)",
				     path, (unsigned long long)e->size);
			if (e->size > HOARD_REMOTE_SIZE_MAX - total)
				FAIL("manifest: at '%s' the file sizes add up "
				     "to more than 2^63 - 1 bytes (overflow)",
				     path);
			total += e->size;
			for (uint32_t k = 0; k < e->n_ext; k++) {
				const struct hoard_mextent *x = &e->ext[k];

				if (x->len == 0 || x->len > HOARD_CHUNK_MAX)
					FAIL("manifest: '%s': extent %u has a "
					     "bad length %u",
					     path, k, x->len);
				if (x->off < end)
					FAIL("manifest: '%s': extents overlap "
					     "or are out of order at %llu",
					     path, (unsigned long long)x->off);
				/* off + len must not wrap: off is at most
				 * 2^64 - 1, len at most 2^18 */
				if (x->off > HOARD_REMOTE_SIZE_MAX - x->len)
					FAIL("manifest: '%s': extent %u at "
					     "offset %llu ends past 2^63 - 1 "
					     "(overflow)",
					     path, k,
					     (unsigned long long)x->off);
				end = x->off + x->len;
				if (end > e->size)
					FAIL("manifest: '%s': sizes do not add "
					     "up (extents reach %llu, the "
					     "file has %llu bytes)",
					     path, (unsigned long long)end,
					     (unsigned long long)e->size);
			}
			break;
		case HOARD_M_SYMLINK:
			if (!e->target || !e->target[0] ||
			    strlen(e->target) > HOARD_SYMLINK_MAX)
				FAIL("manifest: symlink '%s' has a bad target",
				     path);
			break;
		case HOARD_M_HARDLINK:
			if (e->link >= i || e->link == 0 ||
			    m->e[e->link].type != HOARD_M_FILE)
				FAIL("manifest: hard link '%s' names entry "
				     "%u, which is not an earlier file",
				     path, e->link);
			break;
		default:
			break;
		}
#undef FAIL
	}
	r = 0;
out:
	free(ns.slot);
	return r;
}

struct wbuf {
	uint8_t *p;
	size_t n, cap;
	bool oom;
};

static uint8_t *wb_grab(struct wbuf *w, size_t n)
{
	if (w->oom)
		return NULL;
	if (w->n + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *x;

		while (cap < w->n + n)
			cap *= 2;
		x = realloc(w->p, cap);
		if (!x) {
			w->oom = true;
			return NULL;
		}
		w->p = x;
		w->cap = cap;
	}
	w->n += n;
	return w->p + w->n - n;
}

static void wb_u8(struct wbuf *w, uint8_t v)
{
	uint8_t *p = wb_grab(w, 1);

	if (p)
		*p = v;
}

static void wb_u16(struct wbuf *w, uint16_t v)
{
	uint8_t *p = wb_grab(w, 2);

	if (p) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

static void wb_u32(struct wbuf *w, uint32_t v)
{
	uint8_t *p = wb_grab(w, 4);

	if (p)
		hoard_put_be32(p, v);
}

static void wb_u64(struct wbuf *w, uint64_t v)
{
	uint8_t *p = wb_grab(w, 8);

	if (p)
		hoard_put_be64(p, v);
}

static void wb_bytes(struct wbuf *w, const void *s, size_t n)
{
	uint8_t *p = wb_grab(w, n);

	if (p && n)
		memcpy(p, s, n);
}

int hoard_manifest_encode(const struct hoard_manifest *m, uint8_t **ret_buf,
			  size_t *ret_len, char *errbuf, size_t errlen)
{
	struct wbuf w = {0};
	uint32_t version = m->version ? m->version : HOARD_MANIFEST_V1;
	int r = manifest_check(m, errbuf, errlen);

	if (r < 0)
		return r;
	if (version != HOARD_MANIFEST_V1 && version != HOARD_MANIFEST_V2)
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "manifest version %u is unknown", version);
	wb_bytes(&w, MANIFEST_MAGIC, 8);
	wb_u32(&w, version);
	wb_u32(&w, 0);
	wb_bytes(&w, m->nonce, sizeof(m->nonce));
	wb_u64(&w, m->n);
	for (size_t i = 0; i < m->n; i++) {
		const struct hoard_mentry *e = &m->e[i];
		size_t nl = strlen(e->name);

		wb_u8(&w, e->type);
		wb_u8(&w, 0);
		wb_u16(&w, (uint16_t)nl);
		wb_u32(&w, e->parent);
		wb_u32(&w, e->mode);
		wb_u32(&w, e->uid);
		wb_u32(&w, e->gid);
		wb_u64(&w, (uint64_t)e->mtime_s);
		wb_u32(&w, e->mtime_ns);
		wb_bytes(&w, e->name, nl);
		switch (e->type) {
		case HOARD_M_FILE:
			wb_u64(&w, e->size);
			wb_u32(&w, e->n_ext);
			for (uint32_t k = 0; k < e->n_ext; k++) {
				wb_u64(&w, e->ext[k].off);
				wb_u32(&w, e->ext[k].len);
				wb_bytes(&w, e->ext[k].id.b, HOARD_ID_SIZE);
				if (version == HOARD_MANIFEST_V2)
					wb_bytes(&w, e->ext[k].sha,
						 HOARD_SHA256_SIZE);
			}
			break;
		case HOARD_M_SYMLINK:
			wb_u32(&w, (uint32_t)strlen(e->target));
			wb_bytes(&w, e->target, strlen(e->target));
			break;
		case HOARD_M_HARDLINK:
			wb_u32(&w, e->link);
			break;
		case HOARD_M_NODE:
			wb_u32(&w, e->rdev);
			break;
		default:
			break;
		}
	}
	if (w.oom) {
		free(w.p);
		return -ENOMEM;
	}
	*ret_buf = w.p;
	*ret_len = w.n;
	return 0;
}

struct rbuf {
	const uint8_t *p;
	size_t n, pos;
};

static const uint8_t *rb_take(struct rbuf *r, size_t n)
{
	if (r->n - r->pos < n)
		return NULL;
	r->pos += n;
	return r->p + r->pos - n;
}

static int decode_entry(struct rbuf *rb, struct hoard_mentry *e, size_t i,
			uint32_t version, char *errbuf, size_t errlen)
{
	const size_t xsize = version == HOARD_MANIFEST_V2 ? EXTENT_V2_SIZE
							  : EXTENT_SIZE;
	const uint8_t *p = rb_take(rb, ENTRY_FIXED), *q;
	uint16_t nl;
	uint32_t n;

#define TRUNC()                                                                \
	hoard_errf(errbuf, errlen, -EBADMSG,                                   \
		   "manifest: truncated in entry %zu", i)
	if (!p)
		return TRUNC();
	e->type = p[0];
	if (p[1] != 0)
		return hoard_errf(
			errbuf, errlen, -EBADMSG,
			"manifest: entry %zu has a non-zero reserved byte", i);
	nl = (uint16_t)(p[2] << 8 | p[3]);
	e->parent = hoard_get_be32(p + 4);
	e->mode = hoard_get_be32(p + 8);
	e->uid = hoard_get_be32(p + 12);
	e->gid = hoard_get_be32(p + 16);
	e->mtime_s = (int64_t)hoard_get_be64(p + 20);
	e->mtime_ns = hoard_get_be32(p + 28);
	q = rb_take(rb, nl);
	if (!q)
		return TRUNC();
	if (memchr(q, '\0', nl))
		return hoard_errf(
			errbuf, errlen, -EBADMSG,
			"manifest: entry %zu has a name with a NUL byte", i);
	e->name = strndup((const char *)q, nl);
	if (!e->name)
		return -ENOMEM;
	switch (e->type) {
	case HOARD_M_FILE:
		p = rb_take(rb, 12);
		if (!p)
			return TRUNC();
		e->size = hoard_get_be64(p);
		n = hoard_get_be32(p + 8);
		if ((rb->n - rb->pos) / xsize < n)
			return TRUNC();
		e->n_ext = n;
		e->ext = calloc(n ? n : 1, sizeof(*e->ext));
		if (!e->ext)
			return -ENOMEM;
		for (uint32_t k = 0; k < n; k++) {
			p = rb_take(rb, xsize);
			e->ext[k].off = hoard_get_be64(p);
			e->ext[k].len = hoard_get_be32(p + 8);
			memcpy(e->ext[k].id.b, p + 12, HOARD_ID_SIZE);
			if (version == HOARD_MANIFEST_V2)
				memcpy(e->ext[k].sha, p + EXTENT_SIZE,
				       HOARD_SHA256_SIZE);
		}
		break;
	case HOARD_M_SYMLINK:
		p = rb_take(rb, 4);
		if (!p)
			return TRUNC();
		n = hoard_get_be32(p);
		if (n > HOARD_SYMLINK_MAX)
			return hoard_errf(
				errbuf, errlen, -EBADMSG,
				"manifest: entry %zu has a symlink target "
				"of %u bytes",
				i, n);
		q = rb_take(rb, n);
		if (!q)
			return TRUNC();
		if (memchr(q, '\0', n))
			return hoard_errf(
				errbuf, errlen, -EBADMSG,
				"manifest: entry %zu has a symlink target "
				"with a NUL byte",
				i);
		e->target = strndup((const char *)q, n);
		if (!e->target)
			return -ENOMEM;
		e->size = n;
		break;
	case HOARD_M_HARDLINK:
	case HOARD_M_NODE:
		p = rb_take(rb, 4);
		if (!p)
			return TRUNC();
		if (e->type == HOARD_M_HARDLINK)
			e->link = hoard_get_be32(p);
		else
			e->rdev = hoard_get_be32(p);
		break;
	case HOARD_M_DIR:
		break;
	default:
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "manifest: entry %zu has an unknown type %u",
				  i, e->type);
	}
#undef TRUNC
	return 0;
}

int hoard_manifest_decode(const void *buf, size_t len,
			  struct hoard_manifest *ret, char *errbuf,
			  size_t errlen)
{
	struct rbuf rb = {.p = buf, .n = len};
	struct hoard_manifest m = {0};
	const uint8_t *p = rb_take(&rb, HOARD_MANIFEST_HEADER);
	uint64_t n;
	uint32_t version;
	int r;

	if (!p || memcmp(p, MANIFEST_MAGIC, 8))
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "not a hoard manifest");
	version = hoard_get_be32(p + 8);
	if (version != HOARD_MANIFEST_V1 && version != HOARD_MANIFEST_V2)
		return hoard_errf(
			errbuf, errlen, -EPROTONOSUPPORT,
			"manifest version %u is unknown (this hoard reads "
			"versions 1 and 2)",
			version);
	if (hoard_get_be32(p + 12) != 0)
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "manifest: unknown flags %#x",
				  hoard_get_be32(p + 12));
	n = hoard_get_be64(p + 32);
	if (n == 0 || n > (len - HOARD_MANIFEST_HEADER) / ENTRY_FIXED)
		return hoard_errf(
			errbuf, errlen, -EBADMSG,
			"manifest: %llu entries cannot fit in %zu bytes",
			(unsigned long long)n, len);
	m.e = calloc(n, sizeof(*m.e));
	if (!m.e)
		return -ENOMEM;
	memcpy(m.nonce, p + 16, sizeof(m.nonce));
	m.version = version;
	m.cap = n;
	for (m.n = 0; m.n < n; m.n++) {
		r = decode_entry(&rb, &m.e[m.n], m.n, version, errbuf, errlen);
		if (r < 0) {
			m.n++;
			goto fail;
		}
	}
	if (rb.pos != rb.n) {
		r = hoard_errf(errbuf, errlen, -EBADMSG,
			       "manifest: %zu bytes after the last entry",
			       rb.n - rb.pos);
		goto fail;
	}
	r = manifest_check(&m, errbuf, errlen);
	if (r < 0)
		goto fail;
	*ret = m;
	return 0;
fail:
	hoard_manifest_clear(&m);
	return r;
}

/* ---- chunk digests ------------------------------------------------------ */

static int chunk_sha_cmp(const void *a, const void *b)
{
	const struct hoard_chunk_sha *x = a, *y = b;

	return memcmp(x->id.b, y->id.b, HOARD_ID_SIZE);
}

int hoard_manifest_chunks(const struct hoard_manifest *m, bool with_sha,
			  struct hoard_chunk_sha **ret, size_t *ret_n,
			  char *errbuf, size_t errlen)
{
	struct hoard_chunk_sha *t = NULL;
	size_t n = 0, cap = 0, k = 0;
	char hex[HOARD_ID_HEX_SIZE];

	*ret = NULL;
	*ret_n = 0;
	if (with_sha && m->version != HOARD_MANIFEST_V2)
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "manifest version %u carries no chunk "
				  "digests",
				  m->version ? m->version : 1);
	for (size_t i = 0; i < m->n; i++) {
		const struct hoard_mentry *e = &m->e[i];

		if (e->type != HOARD_M_FILE)
			continue;
		for (uint32_t x = 0; x < e->n_ext; x++) {
			struct hoard_chunk_sha *c = hoard_grow(t, &cap, n + 1,
							       sizeof(*t), 256);

			if (!c) {
				free(t);
				return -ENOMEM;
			}
			t = c;
			c = &t[n++];
			c->id = e->ext[x].id;
			c->len = e->ext[x].len;
			if (with_sha)
				memcpy(c->sha, e->ext[x].sha,
				       HOARD_SHA256_SIZE);
			else
				memset(c->sha, 0, HOARD_SHA256_SIZE);
		}
	}
	if (n)
		qsort(t, n, sizeof(*t), chunk_sha_cmp);
	for (size_t i = 0; i < n; i++) {
		if (k && hoard_id_equal(&t[k - 1].id, &t[i].id)) {
			if (t[k - 1].len == t[i].len &&
			    !memcmp(t[k - 1].sha, t[i].sha, HOARD_SHA256_SIZE))
				continue;
			hoard_id_hex(&t[i].id, hex);
			free(t);
			return hoard_errf(errbuf, errlen, -EBADMSG,
					  "manifest: chunk %s is given two "
					  "lengths or two SHA-256 digests",
					  hex);
		}
		t[k++] = t[i];
	}
	*ret = t;
	*ret_n = k;
	return 0;
}

const struct hoard_chunk_sha *hoard_chunk_sha_find(
	const struct hoard_chunk_sha *t, size_t n, const struct hoard_id *id)
{
	struct hoard_chunk_sha key = {.id = *id};

	if (!n)
		return NULL;
	return bsearch(&key, t, n, sizeof(*t), chunk_sha_cmp);
}

int hoard_manifest_set_shas(struct hoard_manifest *m,
			    const struct hoard_chunk_sha *t, size_t n)
{
	for (size_t i = 0; i < m->n; i++) {
		struct hoard_mentry *e = &m->e[i];

		if (e->type != HOARD_M_FILE)
			continue;
		for (uint32_t x = 0; x < e->n_ext; x++) {
			const struct hoard_chunk_sha *c = hoard_chunk_sha_find(
				t, n, &e->ext[x].id);

			if (!c)
				return -ENOENT;
			memcpy(e->ext[x].sha, c->sha, HOARD_SHA256_SIZE);
		}
	}
	m->version = HOARD_MANIFEST_V2;
	return 0;
}

int hoard_chunk_sha_verify(const void *raw, size_t n,
			   const uint8_t sha[HOARD_SHA256_SIZE])
{
	uint8_t got[HOARD_SHA256_SIZE];

	hoard_sha256(raw, n, got);
	return memcmp(got, sha, HOARD_SHA256_SIZE) ? -EBADMSG : 0;
}

/* ---- ref ------------------------------------------------------------------ */

bool hoard_ref_name_ok(const char *name)
{
	/* a ref is named <volume>/<name>: the same rule for both halves */
	return hoard_fs_volume_name_ok(name);
}

int hoard_ref_encode(const struct hoard_ref *r, char **ret, size_t *ret_len)
{
	char key[2 * HOARD_SIGN_PUB_SIZE + 1], sig[2 * HOARD_SIGN_SIG_SIZE + 1];
	int n;

	if (r->is_signed) {
		hoard_hex(r->key.b, sizeof(r->key.b), key);
		hoard_hex(r->sig, sizeof(r->sig), sig);
	}
	n = asprintf(ret,
		     "hoard-ref %d\nmanifest %s\nfiles %llu\nbytes %llu\n"
		     "time %lld\n%s%s%s%s%s",
		     r->is_signed ? 2 : 1, r->manifest,
		     (unsigned long long)r->files, (unsigned long long)r->bytes,
		     (long long)r->time, r->is_signed ? "key " : "",
		     r->is_signed ? key : "", r->is_signed ? "\nsig " : "",
		     r->is_signed ? sig : "", r->is_signed ? "\n" : "");
	if (n < 0)
		return -ENOMEM;
	*ret_len = (size_t)n;
	return 0;
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static void unhex(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

int hoard_ref_decode(const void *buf, size_t len, struct hoard_ref *ret,
		     char *errbuf, size_t errlen)
{
	char text[HOARD_REF_MAX + 1], hex[80], key[80], sig[160];
	unsigned long long files, bytes;
	unsigned version;
	long long t;
	int used = 0, n;

	if (len > HOARD_REF_MAX || len == 0 || memchr(buf, '\0', len) ||
	    ((const char *)buf)[len - 1] != '\n')
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "the ref is not a hoard ref");
	memcpy(text, buf, len);
	text[len] = '\0';
	if (sscanf(text, "hoard-ref %u\n", &version) != 1 || version < 1)
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "the ref is not a hoard ref");
	if (version > 2)
		return hoard_errf(errbuf, errlen, -EPROTONOSUPPORT,
				  "the ref is of version %u: this hoard reads "
				  "versions 1 and 2",
				  version);
	memset(ret, 0, sizeof(*ret));
	if (version == 1) {
		n = sscanf(text,
			   "hoard-ref 1\nmanifest %79s\nfiles %llu\nbytes "
			   "%llu\ntime %lld\n%n",
			   hex, &files, &bytes, &t, &used);
		if (n != 4 || (size_t)used != len)
			goto bad;
	} else {
		n = sscanf(text,
			   "hoard-ref 2\nmanifest %79s\nfiles %llu\nbytes "
			   "%llu\ntime %lld\nkey %79s\nsig %159s\n%n",
			   hex, &files, &bytes, &t, key, sig, &used);
		if (n != 6 || (size_t)used != len || strlen(key) != 64 ||
		    !all_hex(key, 64) || strlen(sig) != 128 ||
		    !all_hex(sig, 128))
			goto bad;
		ret->is_signed = true;
		unhex(key, ret->key.b, sizeof(ret->key.b));
		unhex(sig, ret->sig, sizeof(ret->sig));
	}
	if (strlen(hex) != 64 || !all_hex(hex, 64))
		goto bad;
	/* %llu takes "-1" (and wraps it) and saturates past 2^64 - 1 */
	if (strstr(text, "\nfiles -") || strstr(text, "\nbytes -"))
		goto bad;
	if (files > UINT32_MAX || bytes > HOARD_REMOTE_SIZE_MAX) {
		memset(ret, 0, sizeof(*ret));
		return hoard_errf(errbuf, errlen, -EBADMSG,
				  "the ref's '%s' value is out of range (more "
				  "than %s)",
				  files > UINT32_MAX ? "files" : "bytes",
				  files > UINT32_MAX ? "2^32 - 1" : "2^63 - 1");
	}
	/* the text must be exactly what the encoder writes (no leading
	 * zeros, '+' or spaces): the signature covers the fields, and one
	 * ref has one spelling */
	{
		char *again;
		size_t alen;

		memcpy(ret->manifest, hex, 65);
		ret->files = files;
		ret->bytes = bytes;
		ret->time = t;
		if (hoard_ref_encode(ret, &again, &alen) < 0)
			return -ENOMEM;
		n = alen == len && !memcmp(again, text, len);
		free(again);
		if (!n)
			goto bad;
	}
	return 0;
bad:
	memset(ret, 0, sizeof(*ret));
	return hoard_errf(errbuf, errlen, -EBADMSG,
			  "the ref is not a hoard ref (version %u)", version);
}

int hoard_ref_signed_text(const struct hoard_ref *r,
			  const struct hoard_ref_site *site, char **ret,
			  size_t *ret_len)
{
	char repo[HOARD_SHA256_HEX_SIZE], key[2 * HOARD_SIGN_PUB_SIZE + 1];
	int n;

	hoard_hex(site->repo, sizeof(site->repo), repo);
	hoard_hex(r->key.b, sizeof(r->key.b), key);
	n = asprintf(ret,
		     "hoard-ref-signature 1\nrepository %s\nlocation %s/%s\n"
		     "ref %s/%s\nmanifest %s\nfiles %llu\nbytes %llu\n"
		     "time %lld\nkey %s\n",
		     repo, site->bucket, site->prefix, site->volume, site->name,
		     r->manifest, (unsigned long long)r->files,
		     (unsigned long long)r->bytes, (long long)r->time, key);
	if (n < 0)
		return -ENOMEM;
	*ret_len = (size_t)n;
	return 0;
}

int hoard_ref_sign(struct hoard_ref *r, const struct hoard_sign_key *k,
		   const struct hoard_ref_site *site)
{
	char *text;
	size_t len;
	int e;

	r->key = k->pub;
	e = hoard_ref_signed_text(r, site, &text, &len);
	if (e < 0)
		return e;
	e = hoard_sign(k, text, len, r->sig);
	free(text);
	if (e == 0)
		r->is_signed = true;
	return e;
}

int hoard_ref_verify(const struct hoard_ref *r,
		     const struct hoard_ref_site *site)
{
	char *text;
	size_t len;
	int e;

	if (!r->is_signed)
		return -ENOKEY;
	e = hoard_ref_signed_text(r, site, &text, &len);
	if (e < 0)
		return e;
	e = hoard_sign_verify(&r->key, text, len, r->sig);
	free(text);
	return e;
}

int hoard_ref_check_trust(const struct hoard_ref *r,
			  const struct hoard_ref_site *site,
			  const struct hoard_pubkey *trusted, size_t n_trusted,
			  char *errbuf, size_t errlen)
{
	char id[HOARD_SIGN_ID_SIZE];
	bool known = false;
	int e;

	if (!r->is_signed) {
		if (!n_trusted)
			return 0;
		return hoard_errf(errbuf, errlen, -EKEYREJECTED,
				  "the ref '%s/%s' is not signed, and only "
				  "refs signed by a trusted key are accepted "
				  "(--trust, hoard config trust): nothing was "
				  "pulled",
				  site->volume, site->name);
	}
	hoard_sign_key_id(&r->key, id);
	for (size_t i = 0; i < n_trusted; i++)
		if (!memcmp(trusted[i].b, r->key.b, sizeof(r->key.b)))
			known = true;
	if (n_trusted && !known)
		return hoard_errf(errbuf, errlen, -EKEYREJECTED,
				  "the ref '%s/%s' is signed by key %s, which "
				  "is not trusted here: nothing was pulled",
				  site->volume, site->name, id);
	e = hoard_ref_verify(r, site);
	if (e == -EBADMSG)
		return hoard_errf(errbuf, errlen, e,
				  "the signature of the ref '%s/%s' (key %s) "
				  "does not verify: the ref was altered, or "
				  "copied from another ref or repository; "
				  "nothing was pulled",
				  site->volume, site->name, id);
	if (e < 0)
		return hoard_errf(errbuf, errlen, e,
				  "checking the signature of the ref "
				  "'%s/%s': %s",
				  site->volume, site->name, strerror(-e));
	return 0;
}

/* ---- remote chunk index ----------------------------------------------------- */

struct rslot {
	struct hoard_id id;
	struct hoard_rloc loc;
	bool used;
};

struct hoard_rindex {
	struct rslot *s;
	size_t cap, n;
};

struct hoard_rindex *hoard_rindex_new(void)
{
	struct hoard_rindex *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->cap = 1024;
	x->s = calloc(x->cap, sizeof(*x->s));
	if (!x->s) {
		free(x);
		return NULL;
	}
	return x;
}

void hoard_rindex_free(struct hoard_rindex *x)
{
	if (!x)
		return;
	free(x->s);
	free(x);
}

static size_t rslot_of(const struct rslot *s, size_t cap,
		       const struct hoard_id *id)
{
	size_t k = (size_t)hoard_get_be64(id->b + 8) & (cap - 1);

	while (s[k].used && !hoard_id_equal(&s[k].id, id))
		k = (k + 1) & (cap - 1);
	return k;
}

int hoard_rindex_add(struct hoard_rindex *x, const struct hoard_id *id,
		     const struct hoard_rloc *loc)
{
	size_t k;

	if ((x->n + 1) * 2 > x->cap) {
		size_t cap = x->cap * 2;
		struct rslot *s = calloc(cap, sizeof(*s));

		if (!s)
			return -ENOMEM;
		for (size_t i = 0; i < x->cap; i++)
			if (x->s[i].used)
				s[rslot_of(s, cap, &x->s[i].id)] = x->s[i];
		free(x->s);
		x->s = s;
		x->cap = cap;
	}
	k = rslot_of(x->s, x->cap, id);
	if (x->s[k].used)
		return 0;
	x->s[k].used = true;
	x->s[k].id = *id;
	x->s[k].loc = *loc;
	x->n++;
	return 0;
}

const struct hoard_rloc *hoard_rindex_get(const struct hoard_rindex *x,
					  const struct hoard_id *id)
{
	size_t k = rslot_of(x->s, x->cap, id);

	return x->s[k].used ? &x->s[k].loc : NULL;
}

size_t hoard_rindex_count(const struct hoard_rindex *x)
{
	return x->n;
}

int hoard_rindex_foreach(const struct hoard_rindex *x,
			 int (*fn)(void *ud, const struct hoard_id *id,
				   const struct hoard_rloc *loc),
			 void *ud)
{
	int r;

	for (size_t i = 0; i < x->cap; i++) {
		if (!x->s[i].used)
			continue;
		r = fn(ud, &x->s[i].id, &x->s[i].loc);
		if (r)
			return r;
	}
	return 0;
}
