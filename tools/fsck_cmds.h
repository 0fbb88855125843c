/* SPDX-License-Identifier: MIT */
/*
 * hoard fsck and hoard gc: the commands, kept out of hoard.c.  Each parses
 * its own options (the common ones too: --store may follow the command, so
 * *store is updated) and returns the exit status.
 */
#ifndef HOARD_TOOLS_FSCK_CMDS_H
#define HOARD_TOOLS_FSCK_CMDS_H

int hoard_cmd_fsck(const char **store, int argc, char **argv);
int hoard_cmd_gc(const char **store, int argc, char **argv);

#endif
