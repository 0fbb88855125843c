/* SPDX-License-Identifier: MIT */
/*
 * The hoard CLI's remote commands (tools/sync_cmds.c): push, pull,
 * ls-remote and init --from.  Each returns the exit status; *store is the
 * store directory chosen so far (a --store after the command updates it).
 */
#ifndef HOARD_SYNC_CMDS_H
#define HOARD_SYNC_CMDS_H

#define HOARD_EXIT_REMOTE 3 /* the repository lacks or refuses what was asked */

int sync_cmd_push(const char **store, int argc, char **argv);
int sync_cmd_pull(const char **store, int argc, char **argv);
int sync_cmd_ls_remote(const char **store, int argc, char **argv);
/* `hoard gc --remote URL ...` (hoard.c sends gc here when --remote is
 * among its arguments). */
int sync_cmd_gc_remote(const char **store, int argc, char **argv);
/* `hoard init --from URL`: a new store keyed like the repository. */
int sync_init_from(const char *store, int zstd_level, const char *url);

#endif
