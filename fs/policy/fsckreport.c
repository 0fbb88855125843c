// SPDX-License-Identifier: MIT
/*
 * fsck's report (fsck.h): names of the problem counters, JSON and text.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "hoard/fsck.h"
#include "hoard/json.h"

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
	[HOARD_FSCK_ORPHAN_DIGESTS] = "orphan_digests",
	[HOARD_FSCK_STALE_COPIES] = "stale_copies",
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

/* Memstream close for the text report: the text, or NULL (freed). */
static char *finish(FILE *f, char **buf)
{
	bool bad = ferror(f);

	if (fclose(f) || bad) {
		free(*buf);
		return NULL;
	}
	return *buf;
}

/* lost_files are paths: bytes, not characters (json.h's str_bytes). */
char *hoard_fsck_json(const struct hoard_fsck_report *r)
{
	json_t *o, *found = json_object(), *lost = json_array();
	int e = found && lost ? 0 : -1;

	for (int i = 0; e == 0 && i < HOARD_FSCK_N_PROBLEMS; i++)
		e = json_object_set_new(found, problem_names[i],
					hoard_json_u64(r->problem[i]));
	for (size_t i = 0; e == 0 && i < r->n_lost; i++)
		e = json_array_append_new(lost,
					  hoard_json_str_bytes(r->lost[i]));
	if (e < 0) {
		json_decref(found);
		json_decref(lost);
		return NULL;
	}
	o = json_pack(
		"{s:b,s:o,s:b,s:o,s:o,s:b,s:{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:"
		"o,s:o,s:o},s:o,s:o,s:o}",
		"clean", !r->problems, "problems", hoard_json_u64(r->problems),
		"repaired", (int)r->repaired, "writes",
		hoard_json_u64(r->writes), "seconds",
		hoard_json_real3(r->seconds), "closed_cleanly", !r->unclean,
		"checked", "volumes", hoard_json_u64(r->volumes), "inodes",
		hoard_json_u64(r->inodes), "dirents",
		hoard_json_u64(r->dirents), "extents",
		hoard_json_u64(r->extents), "xattrs", hoard_json_u64(r->xattrs),
		"chunks", hoard_json_u64(r->chunks), "raw_bytes",
		hoard_json_u64(r->raw_bytes), "frame_bytes",
		hoard_json_u64(r->frame_bytes), "remote_chunks",
		hoard_json_u64(r->remote_chunks), "plain_copies",
		hoard_json_u64(r->plain_copies), "digests",
		hoard_json_u64(r->digests), "found", found, "lost_files", lost,
		"wal_damage",
		r->wal_damage ? hoard_json_str_bytes(r->wal_damage)
			      : json_null());
	if (o &&
	    json_object_set_new(
		    o, "interrupted",
		    json_pack("{s:o,s:o}", "operations",
			      hoard_json_u64(r->interrupted), "inodes",
			      hoard_json_u64(r->interrupted_inodes))) < 0) {
		json_decref(o);
		return NULL;
	}
	return hoard_json_dump(o, true);
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
	[HOARD_FSCK_BAD_PLAIN] = "plain copies that are not their file",
	[HOARD_FSCK_UNREADABLE] = "stretches of unreadable records",
	[HOARD_FSCK_ORPHAN_DIGESTS] = "digests of chunks gone (no problem)",
	[HOARD_FSCK_STALE_COPIES] = "stale copies of records in entries",
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
	if (r->interrupted)
		fprintf(f,
			"%llu clone(s) or volume removal(s) a crash "
			"interrupted (%llu inodes): %s\n",
			(unsigned long long)r->interrupted,
			(unsigned long long)r->interrupted_inodes,
			r->repaired ? "finished by the repair"
				    : "finished at the next start (or by "
				      "--repair); no problem");
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
