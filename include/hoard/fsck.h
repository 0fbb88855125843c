/* SPDX-License-Identifier: MIT */
/*
 * fsck: prove a store sound, or repair it.  Layer 5: uses store, codec,
 * hash and the record layouts of docs/FORMAT.md (it reads the store
 * directly, never through struct hoard_fs, so that checking changes
 * nothing: no start-up recovery runs).
 *
 * What is checked (each a counter in struct hoard_fsck_report):
 *   - every chunk frame decodes and re-hashes to its id (the expensive
 *     part: every stored byte is read, decompressed and hashed);
 *   - every chunk record has its frame (when its "present" flag says so),
 *     and every frame has a record;
 *   - every extent names a chunk that has a record, with the chunk's length,
 *     and belongs to a regular file;
 *   - every record's refcount equals the number of extents naming it
 *     (counted, never trusted);
 *   - every directory entry's parent is a directory and its child exists;
 *   - every inode is reachable from a volume root, or listed in orphans;
 *   - every nlink equals the entries naming the inode (2 + subdirectories
 *     for a directory); volume entries name directories; xattrs and
 *     orphans entries belong to existing inodes; no record is undecodable;
 *   - every chunk digest row (`sha256.`) names a chunk that has a record
 *     (orphan_digests: counted, but no problem).
 * Files whose data is gone (a chunk missing, corrupt, or of the wrong
 * length) are "lost" and listed by path.
 *
 * Repair (opts.repair): lost files are removed (all their names, extents,
 * xattrs and the inode; never truncated), unreachable inodes and dangling
 * records and digest rows are deleted, nlinks and refcounts are rewritten from the counts
 * that remain after those deletions, chunks nobody references any more are
 * deleted with their frames.  All changes go through WriteBatches of at
 * most a few thousand operations, synced; an interrupted repair leaves a
 * store that a second `fsck --repair` finishes.
 *
 * A clone or volume removal a crash interrupted (FORMAT 2.1 `clone.`,
 * `rm.`) is not a problem: its inodes are counted as interrupted, and the
 * repair finishes it as the next start would (fsckpending.c).
 *
 * The caller must hold the store exclusively (hoard_store_open takes its
 * lock, so a running daemon makes that fail with -EBUSY).
 *
 * Memory: one entry per inode (~40 bytes) and per chunk (~80 bytes with the
 * hash table's slack), so about 1.3 GiB per TiB of 64 KiB chunks.
 *
 * Thread contract: one thread; the progress callback runs on it.
 */
#ifndef HOARD_FSCK_H
#define HOARD_FSCK_H

#include <stdbool.h>
#include <stdint.h>

#include "hoard/store.h"

typedef void (*hoard_fsck_progress_fn)(void *ud, const char *phase,
				       uint64_t items, uint64_t bytes);

struct hoard_fsck_opts {
	bool repair;
	hoard_fsck_progress_fn progress; /* may be NULL; called often */
	void *ud;
};

/* The problem counters, in report order (names: hoard_fsck_problem_name). */
enum hoard_fsck_problem {
	HOARD_FSCK_BAD_RECORDS = 0,  /* undecodable record, any family */
	HOARD_FSCK_CORRUPT_CHUNKS,   /* frame does not decode or match its id */
	HOARD_FSCK_MISSING_FRAMES,   /* record without its frame */
	HOARD_FSCK_ORPHAN_FRAMES,    /* frame without a record */
	HOARD_FSCK_MISSING_CHUNKS,   /* extent naming a chunk with no record */
	HOARD_FSCK_BAD_EXTENTS,	     /* wrong length, or owner not a file */
	HOARD_FSCK_REFCOUNTS,	     /* refcount != extents naming the chunk */
	HOARD_FSCK_DANGLING_DIRENTS, /* parent or child inode missing */
	HOARD_FSCK_UNREACHABLE,	     /* inode in no tree and not an orphan */
	HOARD_FSCK_NLINKS,	     /* nlink != entries naming it */
	HOARD_FSCK_BAD_VOLUMES,	     /* volume root missing / not a dir */
	HOARD_FSCK_STALE_ORPHANS, /* orphans entry of a missing or linked inode */
	HOARD_FSCK_ORPHAN_XATTRS, /* xattr of a missing inode */
	HOARD_FSCK_BAD_PLAIN,	  /* plain copy that is not its file (FORMAT 7);
				   * --repair deletes it */
	HOARD_FSCK_WAL_DAMAGE,	  /* an open skipped damaged WAL records */
	HOARD_FSCK_UNREADABLE,	  /* a stretch of records that cannot be read */
	HOARD_FSCK_ORPHAN_DIGESTS, /* digest row of a chunk with no record:
				    * counted, not in problems (harmless);
				    * --repair deletes them */
	HOARD_FSCK_STALE_COPIES,   /* a directory entry's copy of its file's
				   * record (FORMAT 2.2) that differs from it,
				   * or a record whose home entry does not
				   * carry its copy; --repair drops both */
	HOARD_FSCK_N_PROBLEMS
};

struct hoard_fsck_report {
	/* what was checked */
	uint64_t volumes, inodes, dirents, extents, xattrs, chunks;
	uint64_t raw_bytes;	/* chunk bytes verified (decoded) */
	uint64_t frame_bytes;	/* stored bytes read */
	uint64_t remote_chunks; /* not local, with a remote location (lazy) */
	uint64_t plain_copies;	/* files in STORE/plain (FORMAT 7) */
	uint64_t digests;	/* chunk digest rows (FORMAT 2.1 `sha256.`) */
	/* what was found */
	uint64_t problem[HOARD_FSCK_N_PROBLEMS];
	uint64_t problems; /* the sum */
	bool repaired;	   /* repair ran and wrote every change */
	/* the settings key "clean" is not 1: the last daemon did not close the
	 * store (crashed or killed); chunk data of interrupted commits is then
	 * expected (orphan_frames), and mounting runs the recovery */
	bool unclean;
	/* hoard_store_wal_damage(): an open skipped damaged records of the
	 * write-ahead log (what it dropped, where a copy is); NULL if none.
	 * The files those records leave inconsistent are among lost; the
	 * repair clears it. */
	char *wal_damage;
	/* clones and volume removals a crash interrupted (FORMAT 2.1
	 * `clone.`, `rm.`): the next start finishes them; their inodes are
	 * counted here, not as unreachable; the repair finishes them too */
	uint64_t interrupted, interrupted_inodes;
	uint64_t writes; /* records written or deleted by the repair */
	/* files whose data is lost: "VOLUME:/PATH", or "inode N" when the
	 * file has no name */
	char **lost;
	size_t n_lost;
	double seconds;
};

/* 0 (the report says whether problems were found), or -errno when the
 * check itself failed (I/O error, out of memory). */
int hoard_fsck_run(struct hoard_store *st, const struct hoard_fsck_opts *o,
		   struct hoard_fsck_report **ret);
void hoard_fsck_report_free(struct hoard_fsck_report *r);
/* Short snake_case name of a problem counter ("corrupt_chunks"). */
const char *hoard_fsck_problem_name(enum hoard_fsck_problem p);
/* malloc()ed report: one-line JSON + "\n", or a human-readable text. */
char *hoard_fsck_json(const struct hoard_fsck_report *r);
char *hoard_fsck_text(const struct hoard_fsck_report *r);

#endif
