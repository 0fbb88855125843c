// SPDX-License-Identifier: MIT
/*
 * fsck's report (fsck.h): names of the problem counters, JSON and text.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "hoard/fsck.h"

static const char *const problem_names[HOARD_FSCK_N_PROBLEMS] = {
	[HOARD_FSCK_BAD_RECORDS] = "bad_records",
	[HOARD_FSCK_CORRUPT_CHUNKS] = "corrupt_chunks",
	[HOARD_FSCK_MISSING_FRAMES] = "missing_frames",
	[HOARD_FSCK_ORPHAN_FRAMES] = "orphan_frames",
	[HOARD_FSCK_MISSING_CHUNKS] = "missing_chunks",
	[HOARD_FSCK_BAD_EXTENTS] = "bad_extents",
	[HOARD_FSCK_REFCOUNTS] = "wrong_refcounts",
	[HOARD_FSCK_DANGLING_DIRENTS] = "dangling_dirents",
	[HOARD_FSCK_UNREACHABLE] = "unreachable_inodes",
	[HOARD_FSCK_NLINKS] = "wrong_nlinks",
	[HOARD_FSCK_BAD_VOLUMES] = "bad_volumes",
	[HOARD_FSCK_STALE_ORPHANS] = "stale_orphans",
	[HOARD_FSCK_ORPHAN_XATTRS] = "orphan_xattrs",
	[HOARD_FSCK_BAD_PLAIN] = "bad_plain_copies",
	[HOARD_FSCK_WAL_DAMAGE] = "wal_damage",
	[HOARD_FSCK_UNREADABLE] = "unreadable_ranges",
};

const char *hoard_fsck_problem_name(enum hoard_fsck_problem p)
{
	return (unsigned)p < HOARD_FSCK_N_PROBLEMS ? problem_names[p] : "?";
}

void hoard_fsck_report_free(struct hoard_fsck_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_lost; i++)
		free(r->lost[i]);
	free(r->lost);
	free(r->wal_damage);
	free(r);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\u%04x", ch); /* bytes, not characters */
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static char *finish(FILE *f, char **buf)
{
	bool bad = ferror(f);

	if (fclose(f) || bad) {
		free(*buf);
		return NULL;
	}
	return *buf;
}

char *hoard_fsck_json(const struct hoard_fsck_report *r)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f,
		"{\"clean\":%s,\"problems\":%llu,\"repaired\":%s,"
		"\"writes\":%llu,\"seconds\":%.3f,\"closed_cleanly\":%s,",
		r->problems ? "false" : "true", (unsigned long long)r->problems,
		r->repaired ? "true" : "false", (unsigned long long)r->writes,
		r->seconds, r->unclean ? "false" : "true");
	fprintf(f,
		"\"checked\":{\"volumes\":%llu,\"inodes\":%llu,"
		"\"dirents\":%llu,\"extents\":%llu,\"xattrs\":%llu,"
		"\"chunks\":%llu,\"raw_bytes\":%llu,\"frame_bytes\":%llu,"
		"\"remote_chunks\":%llu,\"plain_copies\":%llu},",
		(unsigned long long)r->volumes, (unsigned long long)r->inodes,
		(unsigned long long)r->dirents, (unsigned long long)r->extents,
		(unsigned long long)r->xattrs, (unsigned long long)r->chunks,
		(unsigned long long)r->raw_bytes,
		(unsigned long long)r->frame_bytes,
		(unsigned long long)r->remote_chunks,
		(unsigned long long)r->plain_copies);
	fputs("\"found\":{", f);
	for (int i = 0; i < HOARD_FSCK_N_PROBLEMS; i++)
		fprintf(f, "%s\"%s\":%llu", i ? "," : "", problem_names[i],
			(unsigned long long)r->problem[i]);
	fputs("},\"lost_files\":[", f);
	for (size_t i = 0; i < r->n_lost; i++) {
		if (i)
			fputc(',', f);
		json_str(f, r->lost[i]);
	}
	fputs("],\"wal_damage\":", f);
	if (r->wal_damage)
		json_str(f, r->wal_damage);
	else
		fputs("null", f);
	fputs("}\n", f);
	return finish(f, &buf);
}

static const char *const problem_text[HOARD_FSCK_N_PROBLEMS] = {
	[HOARD_FSCK_BAD_RECORDS] = "undecodable records",
	[HOARD_FSCK_CORRUPT_CHUNKS] = "corrupt chunks (bytes do not match id)",
	[HOARD_FSCK_MISSING_FRAMES] = "chunk records without data",
	[HOARD_FSCK_ORPHAN_FRAMES] = "chunk data without a record",
	[HOARD_FSCK_MISSING_CHUNKS] = "extents naming a missing chunk",
	[HOARD_FSCK_BAD_EXTENTS] = "extents of a wrong length or owner",
	[HOARD_FSCK_REFCOUNTS] = "wrong chunk refcounts",
	[HOARD_FSCK_DANGLING_DIRENTS] = "entries naming a missing inode",
	[HOARD_FSCK_UNREACHABLE] = "unreachable inodes",
	[HOARD_FSCK_NLINKS] = "wrong link counts",
	[HOARD_FSCK_BAD_VOLUMES] = "volumes without a root directory",
	[HOARD_FSCK_STALE_ORPHANS] = "orphans entries of missing/linked inodes",
	[HOARD_FSCK_ORPHAN_XATTRS] = "xattrs of missing inodes",
	[HOARD_FSCK_WAL_DAMAGE] = "opens that skipped damaged WAL records",
	[HOARD_FSCK_UNREADABLE] = "stretches of unreadable records",
};

char *hoard_fsck_text(const struct hoard_fsck_report *r)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f,
		"checked %llu volumes, %llu inodes, %llu entries, %llu "
		"extents, %llu xattrs,\n"
		"        %llu chunks (%.1f MiB, %.1f MiB stored, all "
		"re-hashed) "
		"in %.2f s\n",
		(unsigned long long)r->volumes, (unsigned long long)r->inodes,
		(unsigned long long)r->dirents, (unsigned long long)r->extents,
		(unsigned long long)r->xattrs, (unsigned long long)r->chunks,
		(double)r->raw_bytes / (1 << 20),
		(double)r->frame_bytes / (1 << 20), r->seconds);
	if (r->unclean)
		fputs("the store was not closed cleanly (hoardfs crashed or "
		      "was "
		      "killed):\n"
		      "  chunk data of interrupted commits is expected; "
		      "mounting "
		      "drops it\n",
		      f);
	if (r->wal_damage)
		fprintf(f,
			"the write-ahead log was damaged%s; what the store "
			"recorded:\n  %s\n",
			r->repaired ? " (record cleared by the repair)" : "",
			r->wal_damage);
	for (int i = 0; i < HOARD_FSCK_N_PROBLEMS; i++)
		if (r->problem[i])
			fprintf(f, "  %-40s %llu\n", problem_text[i],
				(unsigned long long)r->problem[i]);
	if (r->n_lost)
		fprintf(f, "files whose data is lost%s:\n",
			r->repaired ? " (removed)" : "");
	for (size_t i = 0; i < r->n_lost; i++)
		fprintf(f, "  %s\n", r->lost[i]);
	if (!r->problems)
		fputs("clean: no problems found\n", f);
	else if (r->repaired)
		fprintf(f,
			"%llu problems found, all repaired (%llu records "
			"written or deleted)\n",
			(unsigned long long)r->problems,
			(unsigned long long)r->writes);
	else
		fprintf(f,
			"%llu problems found; `hoard fsck --repair` fixes "
			"them\n",
			(unsigned long long)r->problems);
	return finish(f, &buf);
}
