/* SPDX-License-Identifier: MIT */
/*
 * hoard config, pin and unpin: the size budget's commands, kept out of
 * hoard.c.  Each parses its own options (--store may follow the command, so
 * *store is updated) and returns the exit status.
 */
#ifndef HOARD_TOOLS_BUDGET_CMDS_H
#define HOARD_TOOLS_BUDGET_CMDS_H

int hoard_cmd_config(const char **store, int argc, char **argv);
int hoard_cmd_pin(const char **store, int argc, char **argv);
int hoard_cmd_unpin(const char **store, int argc, char **argv);

#endif
