// SPDX-License-Identifier: MIT
/*
 * store: the write-ahead log, the database's error states and scans past
 * damaged records (store-internal.h, docs/FORMAT.md 2.6).
 *
 * - A clean close flushes every column family, so the WAL holds nothing
 *   that the table and blob files do not: damage to it after a clean
 *   unmount costs nothing.
 * - Opening uses kTolerateCorruptedTailRecords with paranoid checks: a torn
 *   last record (a write never acknowledged) is dropped quietly, any other
 *   corrupt record fails the open.  store_wal_recover() then logs it, keeps
 *   a copy of the logs in damaged-wal/, salvages each damaged log (rewrites
 *   it with only its intact records: RocksDB 7.8's reader, once it has
 *   abandoned a damaged fragmented record, fails the next fragmented one
 *   too, rocksdb issue 15007, and the next open would fail), opens again
 *   with kSkipAnyCorruptedRecords (so every intact record is kept) and
 *   writes the settings key `wal_damage`, saying what was dropped; fsck
 *   reports it and lists the files that the skipped records leave
 *   inconsistent, and --repair clears it.
 * - A full disk stops RocksDB's writes (a background error); writes then
 *   call store_try_resume(), which resumes the database as soon as a flush
 *   fits again (storeresume.cc).  So that a flush and a delete always fit,
 *   new chunk data is refused (ENOSPC) while the filesystem's free space
 *   is under what the memtables hold plus SPACE_RESERVE
 *   (store_space_check).
 * - hoard_store_scan_past() goes on past records RocksDB cannot read (a
 *   damaged table file) for fsck, which deletes such stretches with
 *   hoard_store_delete_range().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "hoard/util.h"
#include "store-internal.h"

#define DAMAGE_KEY    "wal_damage"
#define DAMAGE_MAX    4000
#define RESUME_GAP_NS 200000000ull /* between two attempts to resume */
/* Free space that new chunk data may not take (docs/FORMAT.md 2.6). */
#define SPACE_RESERVE (8ull << 20)

static int copy_file(int dfd_from, const char *name, int dfd_to)
{
	char buf[65536];
	int in, out, r = 0;
	ssize_t n;

	in = openat(dfd_from, name, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = openat(dfd_to, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		     0600);
	if (out < 0) {
		r = -errno;
		close(in);
		return r;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			r = errno ? -errno : -EIO;
			break;
		}
	if (n < 0)
		r = -errno;
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	close(in);
	close(out);
	return r;
}

/* fn(dfd, name, ud) for each db/ *.log (dfd: db/), until one returns an
 * error, which is returned. */
static int each_log(struct hoard_store *st,
		    int (*fn)(int dfd, const char *name, void *ud), void *ud)
{
	char *path = store_path_join(st->dir, "db");
	int dfd = path ? open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	int r = dfd < 0 ? (path ? -errno : -ENOMEM) : 0;
	struct dirent *e;
	DIR *d = NULL;

	free(path);
	if (r == 0 && !(d = fdopendir(dup(dfd))))
		r = -errno;
	while (r == 0 && (e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n > 4 && !strcmp(e->d_name + n - 4, ".log"))
			r = fn(dfd, e->d_name, ud);
	}
	if (d)
		closedir(d);
	if (dfd >= 0)
		close(dfd);
	return r;
}

static int copy_log(int dfd, const char *name, void *to)
{
	return copy_file(dfd, name, *(int *)to);
}

/* Copy db/ *.log to damaged-wal/<stamp>/ (ret: that path, relative to the
 * store) before an open that skips damaged records drops them. */
static int keep_logs(struct hoard_store *st, const char *stamp, char *ret,
		     size_t len)
{
	char path[4096];
	int to, r;

	snprintf(path, sizeof(path), "%s/damaged-wal", st->dir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/damaged-wal/%s", st->dir, stamp);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(ret, len, "damaged-wal/%s", stamp);
	to = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (to < 0)
		return -errno;
	r = each_log(st, copy_log, &to);
	if (r == 0 && fsync(to) < 0)
		r = -errno;
	close(to);
	return r;
}

/* Remove the copy keep_logs made (rel: "damaged-wal/<stamp>"), and
 * damaged-wal/ if that leaves it empty. */
static void drop_copy(struct hoard_store *st, const char *rel)
{
	char path[4096];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", st->dir, rel);
	d = opendir(path);
	if (d) {
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(path);
	snprintf(path, sizeof(path), "%s/damaged-wal", st->dir);
	rmdir(path);
}

/* What RocksDB's info log (db/LOG, started by this open: hoard's
 * QuietLogger writes RocksDB's lines as its own logger did) says it
 * dropped: "NNNNNN.log: dropping N bytes; Corruption: ...", joined by
 * "; ".  After salvage_logs() usually nothing. */
static void dropped_records(struct hoard_store *st, char *out, size_t len)
{
	char *path = store_path_join(st->dir, "db/LOG"), line[1024];
	size_t used = 0;
	FILE *f;

	out[0] = 0;
	f = path ? fopen(path, "re") : NULL;
	free(path);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && used + 1 < len) {
		char *p = strstr(line, ".log: dropping "), *s;
		int n;

		if (!p)
			continue;
		for (s = p; s > line && s[-1] != '/' && s[-1] != ' '; s--)
			;
		line[strcspn(line, "\n")] = 0;
		n = snprintf(out + used, len - used, "%s%s", used ? "; " : "",
			     s);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
	fclose(f);
}

static void utc_stamp(char *out, size_t len, const char *fmt)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, len, fmt, &tm);
}

/* ---- salvage of a damaged log (RocksDB's legacy WAL format) ----
 *
 * RocksDB 7.8's log reader, after it abandons a damaged record of several
 * fragments, keeps that record's XXH3 state, so the next record of several
 * fragments fails the write batch's protection check and even the open
 * with kSkipAnyCorruptedRecords fails (facebook/rocksdb issue 15007, fixed
 * upstream by PR 14709, not in 7.8).  So before that open each damaged log
 * is rewritten here with only its intact records, in order, laid out as
 * RocksDB's log::Writer lays them out (db/log_format.h, db/log_writer.cc):
 * the reader then never meets a damaged fragment. */
/* storecrc.c: rocksdb::crc32c::Extend (CRC32C, Castagnoli, RocksDB's
 * inversions), the function RocksDB checksums its log records with */
uint32_t store_crc_extend(uint32_t crc, const char *p,
			  size_t n) __asm__("_ZN7rocksdb6crc32c6ExtendEjPKcm");

#define WAL_BLOCK 32768
#define WAL_HDR	  7
enum { WAL_ZERO, WAL_FULL, WAL_FIRST, WAL_MIDDLE, WAL_LAST, WAL_MAXTYPE };

struct wal_salvage {
	uint8_t *out; /* the rewritten log */
	size_t out_len, out_cap, block_off;
	uint8_t *rec; /* the logical record being assembled */
	size_t rec_len, rec_cap, rec_phys;
	uint64_t kept, stretches, dropped_bytes, tail_bytes;
	bool in_bad, foreign; /* foreign: a type salvage does not know */
};

static uint32_t wal_crc(uint8_t type, const uint8_t *p, size_t n)
{
	uint32_t c = store_crc_extend(0, (const char *)&type, 1);

	c = store_crc_extend(c, (const char *)p, n);
	return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static uint32_t wal_get32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Room for need bytes in *buf (of *cap): 0 or -ENOMEM, *buf unchanged. */
static int wal_room(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *p = hoard_grow(*buf, cap, need, 1, 65536);

	if (!p)
		return -ENOMEM;
	*buf = p;
	return 0;
}

static void wal_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* log::Writer::AddRecord */
static int wal_emit(struct wal_salvage *s, const uint8_t *p, size_t left)
{
	bool begin = true;

	do {
		size_t leftover = WAL_BLOCK - s->block_off, frag;
		uint8_t type, *h;

		if (leftover < WAL_HDR) {
			if (wal_room(&s->out, &s->out_cap,
				     s->out_len + leftover))
				return -ENOMEM;
			memset(s->out + s->out_len, 0, leftover);
			s->out_len += leftover;
			s->block_off = 0;
			leftover = WAL_BLOCK;
		}
		frag = leftover - WAL_HDR < left ? leftover - WAL_HDR : left;
		type = begin && frag == left ? WAL_FULL
		       : begin		     ? WAL_FIRST
		       : frag == left	     ? WAL_LAST
					     : WAL_MIDDLE;
		if (wal_room(&s->out, &s->out_cap, s->out_len + WAL_HDR + frag))
			return -ENOMEM;
		h = s->out + s->out_len;
		wal_put32(h, wal_crc(type, p, frag));
		h[4] = (uint8_t)(frag & 0xff);
		h[5] = (uint8_t)(frag >> 8);
		h[6] = type;
		memcpy(h + WAL_HDR, p, frag);
		s->out_len += WAL_HDR + frag;
		s->block_off += WAL_HDR + frag;
		p += frag;
		left -= frag;
		begin = false;
	} while (left > 0);
	return 0;
}

static void wal_drop(struct wal_salvage *s, size_t bytes)
{
	if (!bytes)
		return;
	if (!s->in_bad)
		s->stretches++;
	s->in_bad = true;
	s->dropped_bytes += bytes;
}

/* the record being assembled is abandoned (a bad fragment or a stray one) */
static void wal_abandon(struct wal_salvage *s)
{
	wal_drop(s, s->rec_phys);
	s->rec_len = s->rec_phys = 0;
}

/* Is there an intact physical record at off (of a block, within it)? */
static bool wal_good_at(const uint8_t *d, size_t size, size_t off)
{
	size_t room = WAL_BLOCK - off % WAL_BLOCK, len;

	if (room < WAL_HDR)
		return true; /* padding: the next block starts a record */
	if (off + WAL_HDR > size)
		return off == size;
	len = d[off + 4] | (size_t)d[off + 5] << 8;
	if (d[off + 6] == WAL_ZERO && len == 0)
		return true;
	if (d[off + 6] == WAL_ZERO || d[off + 6] >= WAL_MAXTYPE ||
	    WAL_HDR + len > room || off + WAL_HDR + len > size)
		return false;
	return wal_get32(d + off) ==
	       wal_crc(d[off + 6], d + off + WAL_HDR, len);
}

static int wal_parse(struct wal_salvage *s, const uint8_t *d, size_t size)
{
	size_t off = 0;

	while (off < size) {
		size_t room = WAL_BLOCK - off % WAL_BLOCK, len, next;
		uint8_t type;

		if (room < WAL_HDR) { /* the block's padding */
			off += room;
			continue;
		}
		if (off + WAL_HDR > size) { /* a torn last header */
			s->tail_bytes += size - off + s->rec_phys;
			s->rec_len = s->rec_phys = 0;
			break;
		}
		len = d[off + 4] | (size_t)d[off + 5] << 8;
		type = d[off + 6];
		if (type == WAL_ZERO && len == 0) { /* preallocated zeros */
			off += room;
			continue;
		}
		if (type >= WAL_MAXTYPE && type <= 9) {
			/* recyclable (11-byte header) or compression: an
			 * intact one means a format salvage does not write */
			size_t h = type == 9 ? WAL_HDR : WAL_HDR + 4;

			if (off + h + len <= size &&
			    wal_get32(d + off) == wal_crc(type,
							  d + off + WAL_HDR,
							  h - WAL_HDR + len)) {
				s->foreign = true;
				return 0;
			}
		}
		if (WAL_HDR + len <= room && off + WAL_HDR + len > size &&
		    type < WAL_MAXTYPE) { /* a torn last record */
			s->tail_bytes += size - off + s->rec_phys;
			s->rec_len = s->rec_phys = 0;
			break;
		}
		if (type == WAL_ZERO || type >= WAL_MAXTYPE ||
		    WAL_HDR + len > room ||
		    wal_get32(d + off) !=
			    wal_crc(type, d + off + WAL_HDR, len)) {
			/* damaged: its length cannot be trusted unless an
			 * intact record follows where it says; else the rest
			 * of the block goes (the next block starts a
			 * record) */
			next = off + WAL_HDR + len;
			if (WAL_HDR + len > room ||
			    (next < size && !wal_good_at(d, size, next)))
				next = off + room;
			if (next > size)
				next = size;
			wal_abandon(s);
			wal_drop(s, next - off);
			off = next;
			continue;
		}
		if ((type == WAL_FULL || type == WAL_FIRST) && s->rec_phys)
			wal_abandon(s); /* a FIRST without its LAST */
		if ((type == WAL_MIDDLE || type == WAL_LAST) && !s->rec_phys) {
			wal_drop(s, WAL_HDR + len); /* stray */
			off += WAL_HDR + len;
			continue;
		}
		if (wal_room(&s->rec, &s->rec_cap, s->rec_len + len))
			return -ENOMEM;
		memcpy(s->rec + s->rec_len, d + off + WAL_HDR, len);
		s->rec_len += len;
		s->rec_phys += WAL_HDR + len;
		off += WAL_HDR + len;
		if (type == WAL_FULL || type == WAL_LAST) {
			if (wal_emit(s, s->rec, s->rec_len))
				return -ENOMEM;
			s->kept++;
			s->in_bad = false;
			s->rec_len = s->rec_phys = 0;
		}
	}
	if (s->rec_phys) { /* the last record has no LAST: a torn tail */
		s->tail_bytes += s->rec_phys;
		s->rec_len = s->rec_phys = 0;
	}
	return 0;
}

static int read_all(int dfd, const char *name, uint8_t **ret, size_t *ret_len)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC), r = 0;
	struct stat sb;
	uint8_t *buf = NULL;
	ssize_t got = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 ||
	    !(buf = malloc(sb.st_size ? sb.st_size : 1))) {
		r = -errno;
		goto out;
	}
	got = hoard_pread_full(fd, buf, (size_t)sb.st_size, 0);
	if (got >= 0 && got < sb.st_size)
		got = -EIO;
	if (got < 0)
		r = (int)got;
out:
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = buf;
	*ret_len = (size_t)got;
	return 0;
}

static int write_all_sync(int dfd, const char *name, const uint8_t *p, size_t n)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			0644),
	    r = 0;

	if (fd < 0)
		return -errno;
	r = hoard_pwrite_full(fd, p, n, 0);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r < 0)
		unlinkat(dfd, name, 0);
	return r;
}

struct salvage_report {
	char *buf; /* "NAME: ..." per log salvaged, joined by "; " */
	size_t len;
};

/* Salvage one log: rewrite it with its intact records when it has damage
 * (report: appended to, "NAME: ..."); a log without damage, or with a
 * record type salvage does not know, is left as it is. */
static int salvage_log(int dfd, const char *name, void *ud)
{
	struct salvage_report *rep = ud;
	char *report = rep->buf, tmp[300];
	struct wal_salvage s = {0};
	uint8_t *d = NULL;
	size_t size = 0, len = rep->len, used = strlen(report);
	int r;

	r = read_all(dfd, name, &d, &size);
	if (r == 0)
		r = wal_parse(&s, d, size);
	if (r < 0 || s.foreign || !s.stretches)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s.salvage", name);
	r = write_all_sync(dfd, tmp, s.out ? s.out : (const uint8_t *)"",
			   s.out_len);
	if (r == 0 && renameat(dfd, tmp, dfd, name) < 0) {
		r = -errno;
		unlinkat(dfd, tmp, 0);
	}
	if (r == 0 && fsync(dfd) < 0)
		r = -errno;
	if (r == 0 && used + 1 < len)
		snprintf(report + used, len - used,
			 "%s%s: %llu damaged stretch%s (%llu bytes) dropped, "
			 "%llu records kept",
			 used ? "; " : "", name,
			 (unsigned long long)s.stretches,
			 s.stretches == 1 ? "" : "es",
			 (unsigned long long)s.dropped_bytes,
			 (unsigned long long)s.kept);
out:
	if (r < 0)
		hoard_log(LOG_ERR, "store: cannot salvage the log %s: %s", name,
			  strerror(-r));
	else if (s.foreign)
		hoard_log(LOG_WARNING,
			  "store: the log %s has records of a type salvage "
			  "does not read; left as it is",
			  name);
	free(d);
	free(s.out);
	free(s.rec);
	return 0; /* logged: the other logs are salvaged all the same */
}

/* Salvage every db/ *.log (report: what was dropped); a log that cannot
 * be salvaged is logged and left as it is. */
static void salvage_logs(struct hoard_store *st, char *report, size_t len)
{
	struct salvage_report rep = {report, len};

	report[0] = 0;
	each_log(st, salvage_log, &rep);
}

int store_wal_recover(struct hoard_store *st, const char *msg, char *errbuf,
		      size_t errlen)
{
	char stamp[32], when[32], kept[96] = "", dropped[1024], msg2[512] = "";
	char salvaged[1024] = "", *old = NULL, *rec = NULL;
	size_t oldlen = 0;
	int r;

	hoard_log(LOG_DEBUG,
		  "store %s: the database does not open (%s); opening again, "
		  "skipping damaged write-ahead log records",
		  st->dir, msg);
	utc_stamp(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ");
	utc_stamp(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ");
	r = keep_logs(st, stamp, kept, sizeof(kept));
	if (r < 0)
		hoard_log(LOG_ERR,
			  "store %s: cannot keep a copy of the log: %s",
			  st->dir, strerror(-r));
	else /* only with the originals kept: salvage rewrites the logs */
		salvage_logs(st, salvaged, sizeof(salvaged));
	rocksdb_options_set_wal_recovery_mode(
		st->db_opts, rocksdb_skip_any_corrupted_records_recovery);
	r = store_db_open(st, false, msg2, sizeof(msg2));
	rocksdb_options_set_wal_recovery_mode(
		st->db_opts, rocksdb_tolerate_corrupted_tail_records_recovery);
	if (r < 0) {
		/* not (only) the WAL; when salvage rewrote a log, the copy
		 * is the only original left: keep it */
		if (*kept && !*salvaged)
			drop_copy(st, kept);
		if (errbuf && errlen)
			snprintf(errbuf, errlen,
				 "store %s is damaged: its database does not "
				 "open (%s)%s%s",
				 st->dir, msg,
				 *salvaged ? "; the logs were "
					     "salvaged, the originals are in "
					   : "",
				 *salvaged ? kept : "");
		return r == -EUCLEAN ? -EIO : r;
	}
	/* what RocksDB itself still dropped (db/LOG), after salvage */
	dropped_records(st, dropped, sizeof(dropped));
	if (hoard_store_get(st, HOARD_CF_DEFAULT, DAMAGE_KEY,
			    strlen(DAMAGE_KEY), (void **)&old, &oldlen) < 0)
		old = NULL;
	if (asprintf(&rec,
		     "%.*s%s%s: damaged write-ahead log records skipped at "
		     "open (%s)%s%s%s%s; a copy of the log is in %s",
		     old ? (int)(oldlen < DAMAGE_MAX ? oldlen : DAMAGE_MAX) : 0,
		     old ? old : "", old ? "\n" : "", when, msg,
		     *salvaged ? ": salvaged " : "", salvaged,
		     *dropped ? (*salvaged ? "; " : ": ") : "", dropped,
		     *kept ? kept : "(no copy)") < 0)
		rec = NULL;
	free(old);
	if (!rec)
		return -ENOMEM;
	hoard_log(LOG_ERR,
		  "store %s: WAL damage: writes in the damaged records are "
		  "lost (%s%s%s%s%s); run `hoard fsck` to list the files "
		  "affected",
		  st->dir, msg, *salvaged ? "; salvaged " : "", salvaged,
		  *dropped ? "; " : "", dropped);
	r = hoard_store_put(st, HOARD_CF_DEFAULT, DAMAGE_KEY,
			    strlen(DAMAGE_KEY), rec, strlen(rec));
	if (r == 0)
		r = store_flush_all(st);
	if (r < 0) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen,
				 "store %s: cannot record the damage of its "
				 "write-ahead log: %s",
				 st->dir, strerror(-r));
		free(rec);
		return r;
	}
	st->wal_damage = rec;
	return 0;
}

void store_wal_damage_load(struct hoard_store *st)
{
	char *v = NULL;
	size_t n = 0;

	if (hoard_store_get(st, HOARD_CF_DEFAULT, DAMAGE_KEY,
			    strlen(DAMAGE_KEY), (void **)&v, &n) < 0)
		return;
	st->wal_damage = strndup(v, n);
	free(v);
}

const char *hoard_store_wal_damage(const struct hoard_store *st)
{
	return st->wal_damage;
}

int hoard_store_wal_damage_clear(struct hoard_store *st)
{
	struct hoard_batch *b = hoard_batch_new(st);
	int r;

	if (!b)
		return -ENOMEM;
	hoard_batch_delete(b, HOARD_CF_DEFAULT, DAMAGE_KEY, strlen(DAMAGE_KEY));
	r = hoard_store_write(st, b, true);
	hoard_batch_free(b);
	if (r == 0) {
		free(st->wal_damage);
		st->wal_damage = NULL;
	}
	return r;
}

int store_flush_all(struct hoard_store *st)
{
	char *err = NULL;
	int r = 0, r1;

	for (int i = 0; i < HOARD_CF_COUNT; i++) {
		rocksdb_flush_cf(st->db, st->fopts, st->cf[i], &err);
		r1 = store_rdb_err(err, "flush");
		err = NULL;
		if (r1 < 0 && !r)
			r = r1;
	}
	rocksdb_flush_wal(st->db, 1, &err);
	r1 = store_rdb_err(err, "flush_wal");
	return r ?: r1;
}

bool store_try_resume(struct hoard_store *st, int err_r)
{
	uint64_t now = hoard_now_mono_ns();
	bool ok = false;
	char *err;

	if (err_r != -ENOSPC || !st->db)
		return false;
	pthread_mutex_lock(&st->resume_mu);
	if (!st->resume_ns || now - st->resume_ns >= RESUME_GAP_NS) {
		err = hoard_rdb_resume(st->db);
		st->resume_ns = hoard_now_mono_ns();
		ok = !err;
		if (err)
			hoard_log(LOG_DEBUG, "rocksdb resume: %s", err);
		free(err);
	}
	pthread_mutex_unlock(&st->resume_mu);
	return ok;
}

int store_space_check(struct hoard_store *st, uint64_t add)
{
	uint64_t mem = 0, v, avail;
	struct statvfs sv;

	if (statvfs(st->dir, &sv) < 0)
		return 0; /* let RocksDB find out */
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	for (int i = 0; i < HOARD_CF_COUNT; i++)
		if (rocksdb_property_int_cf(st->db, st->cf[i],
					    "rocksdb.cur-size-all-mem-tables",
					    &v) == 0)
			mem += v;
	/* twice the memtables: a flush writes them while staging files and
	 * other writers may still be taking space */
	return avail < 2 * mem + add + SPACE_RESERVE ? -ENOSPC : 0;
}

/* ---- scans past unreadable records (a damaged table file) ---- */

static uint64_t key_prefix64(const uint8_t *k, size_t kl)
{
	uint8_t b[8] = {0};

	memcpy(b, k, kl < 8 ? kl : 8);
	return hoard_get_be64(b);
}

/* Past an unreadable stretch after keys starting with base: a fresh
 * iterator at the first readable key at or after base + 2^j for the
 * smallest j that reads (so ret_hi: the end of what was skipped). */
static struct hoard_iter *skip_unreadable(struct hoard_store *st,
					  enum hoard_cf cf, uint64_t base,
					  uint64_t *ret_hi, int *ret_r)
{
	struct hoard_iter *it;
	uint8_t k[8];
	int r;

	*ret_r = 0;
	for (uint64_t d = 1; d && base + d > base; d <<= 1) {
		hoard_put_be64(k, base + d);
		it = hoard_iter_new(st, cf, "", 0);
		if (!it) {
			*ret_r = -ENOMEM;
			return NULL;
		}
		hoard_iter_seek(it, k, 8);
		r = hoard_iter_valid(it) ? 0 : hoard_iter_status(it);
		if (r == 0) {
			*ret_hi = base + d;
			if (hoard_iter_valid(it))
				return it;
			hoard_iter_free(it); /* the end */
			return NULL;
		}
		hoard_iter_free(it);
		if (r != -EIO) {
			*ret_r = r;
			return NULL;
		}
	}
	*ret_hi = UINT64_MAX;
	return NULL;
}

int hoard_store_scan_past(struct hoard_store *st, enum hoard_cf cf,
			  hoard_scan_fn fn, hoard_gap_fn gap, void *ud)
{
	struct hoard_iter *it = hoard_iter_new(st, cf, "", 0);
	uint64_t last = 0, hi;
	int r = 0;

	if (!it)
		return -ENOMEM;
	while (it) {
		for (; r == 0 && hoard_iter_valid(it); hoard_iter_next(it)) {
			size_t kl, vl;
			const uint8_t *k = hoard_iter_key(it, &kl);
			const uint8_t *v = hoard_iter_value(it, &vl);

			last = key_prefix64(k, kl);
			r = fn(ud, k, kl, v, vl);
		}
		if (r == 0)
			r = hoard_iter_status(it);
		hoard_iter_free(it);
		it = NULL;
		if (r != -EIO)
			break;
		it = skip_unreadable(st, cf, last, &hi, &r);
		if (r == 0)
			r = gap(ud, cf, last, hi);
	}
	hoard_iter_free(it);
	return r;
}

int hoard_store_delete_range(struct hoard_store *st, enum hoard_cf cf,
			     uint64_t lo, uint64_t hi)
{
	uint8_t a[8], b[9];
	size_t bl = 8;
	char *err = NULL;

	hoard_put_be64(a, lo);
	if (hi == UINT64_MAX) {
		memset(b, 0xff, sizeof(b));
		bl = sizeof(b);
	} else {
		hoard_put_be64(b, hi);
	}
	rocksdb_delete_range_cf(st->db, st->wopts_sync, st->cf[cf],
				(const char *)a, sizeof(a), (const char *)b, bl,
				&err);
	store_written(st, cf);
	return store_rdb_err(err, "delete_range");
}
