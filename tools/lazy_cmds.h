/* SPDX-License-Identifier: MIT */
/*
 * hoard prefetch: make files of a lazily pulled volume local (lazy.h),
 * through the daemon's control socket.
 */
#ifndef HOARD_TOOLS_LAZY_CMDS_H
#define HOARD_TOOLS_LAZY_CMDS_H

int hoard_cmd_prefetch(const char **store, int argc, char **argv);

#endif
