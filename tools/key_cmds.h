/* SPDX-License-Identifier: MIT */
/*
 * hoard key generate / hoard config trust: the signing keys of refs
 * (sign.h, docs/REMOTE.md section 6.1).
 */
#ifndef HOARD_TOOLS_KEY_CMDS_H
#define HOARD_TOOLS_KEY_CMDS_H

int hoard_cmd_key(const char **store, int argc, char **argv);
/* `hoard config trust [PUBFILE...|none]`: argv[0] is "trust". */
int hoard_cmd_config_trust(const char *store, int argc, char **argv);

#endif
