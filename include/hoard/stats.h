/* SPDX-License-Identifier: MIT */
/*
 * stats: store figures, computed by scanning the column families.  Layer 6:
 * uses store and the record layouts of docs/FORMAT.md.
 *
 * files:         regular files with nlink > 0 (hard links counted once)
 * logical_bytes: sum of their sizes
 * unique_bytes:  sum of the raw sizes of distinct chunks (refcount > 0)
 * stored_bytes:  sum of those chunks' frame sizes (after compression)
 * chunks:        number of distinct chunks
 * The same per volume, counting the distinct chunks that volume's files use
 * (so per-volume unique bytes can add up to more than the store's).
 *
 * Thread contract: hoard_stats_compute may run while other threads write;
 * it reads each column family with one iterator (RocksDB gives each an
 * implicit snapshot), so figures of a store under change are approximate.
 */
#ifndef HOARD_STATS_H
#define HOARD_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include "hoard/store.h"

struct hoard_stats_figs {
	uint64_t files, dirs, symlinks, others;
	uint64_t logical_bytes, unique_bytes, stored_bytes, chunks;
};

struct hoard_stats_volume {
	char name[65];
	uint64_t root_ino;
	struct hoard_stats_figs f;
};

struct hoard_stats {
	struct hoard_stats_figs total;
	uint64_t db_bytes; /* RocksDB's live SST + blob bytes */
	/* The running daemon's decompressed-chunk cache (hoard_fs_cache_counts);
	 * filled by the daemon, have_cache false (and 0) when computed offline. */
	bool have_cache;
	uint64_t cache_hits, cache_misses;
	/* The size budget (evict.h), filled by the daemon or, offline, by the
	 * CLI from the store: max_size 0 when none; evicted_* since the daemon
	 * started (0 offline). */
	bool have_budget;
	uint64_t max_size, pinned_bytes, evicted_files, evicted_bytes;
	/* Lazy chunks (docs/REMOTE.md 10): distinct chunks with refcount > 0
	 * that are not local, and their frame bytes (in the remote). */
	uint64_t not_local_chunks, not_local_bytes;
	/* The daemon's lazy fetcher (lazy.h): have_fetch false offline. */
	bool have_fetch;
	uint64_t fetched_chunks, fetched_bytes, fetch_gets, fetch_failures;
	uint64_t fetch_get_bytes; /* bytes the fetches' GETs brought */
	uint64_t fetch_retries;	  /* attempts after the first of a GET */
	/* The daemon's reads answered with EIO (a corrupt or unfetchable
	 * chunk): have_reads false offline. */
	bool have_reads;
	uint64_t read_errors;
	uint64_t commit_errors; /* commits after a close returned that failed */
	/* The daemon's LOOKUP windows (hoard_fs_lookup_counts): have_lookups
	 * false offline. */
	bool have_lookups;
	uint64_t lookup_scans, lookup_window_hits, lookup_prefetch_bytes;
	/* The daemon's plain-file tier (plain.h): have_plain false offline. */
	bool have_plain;
	uint64_t plain_bytes, plain_files, plain_hits, plain_made;
	uint64_t plain_dropped, plain_failed;
	/* The daemon's FUSE passthrough: "on", or "off (why)", globally ("on"
	 * when any mount uses it) and per mount (pt, malloc()ed, freed by
	 * hoard_stats_free); have_passthrough false offline.  Written to the
	 * JSON only (not read back). */
	bool have_passthrough;
	char pt_global[128];
	size_t n_pt;
	struct hoard_stats_pt {
		char volume[65];
		char why[128];
	} * pt;
	size_t n_volumes;
	struct hoard_stats_volume *volumes;
};

int hoard_stats_compute(struct hoard_store *st, struct hoard_stats **ret);
void hoard_stats_free(struct hoard_stats *s);
/* malloc()ed JSON object (one line + "\n"), NULL on ENOMEM. */
char *hoard_stats_json(const struct hoard_stats *s);
/* malloc()ed human-readable table. */
char *hoard_stats_text(const struct hoard_stats *s);
/*
 * malloc()ed Prometheus text exposition (format 0.0.4): every figure of the
 * JSON, store-wide as hoard_store_*, per volume as hoard_volume_* with a
 * volume label, the daemon's counters as hoard_*_total (README, stats).
 */
char *hoard_stats_prometheus(const struct hoard_stats *s);
/*
 * Read back what hoard_stats_json() wrote (the daemon's `stats` reply), so
 * that a client can print it with hoard_stats_text().  Unknown keys are
 * skipped.  0, -EBADMSG (not such JSON) or -ENOMEM.
 */
int hoard_stats_from_json(const char *json, struct hoard_stats **ret);

#endif
