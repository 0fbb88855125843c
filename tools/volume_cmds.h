/* SPDX-License-Identifier: MIT */
/*
 * hoard volume (ls, clone, rm, merge), mount and umount (tools/
 * volume_cmds.c), and the request helper that hoard job (tools/
 * job_cmds.c) shares.  Each command parses its own options (--store may
 * follow the command, so *store is updated) and returns the exit status.
 */
#ifndef HOARD_TOOLS_VOLUME_CMDS_H
#define HOARD_TOOLS_VOLUME_CMDS_H

int hoard_cmd_volume(const char **store, int argc, char **argv);
int hoard_cmd_mount(const char **store, int argc, char **argv);
int hoard_cmd_umount(const char **store, int argc, char **argv);
/* hoard job start / finish (tools/job_cmds.c) */
int hoard_cmd_job(const char **store, int argc, char **argv);

/*
 * Send a control request (docs/FORMAT.md 6) to the daemon serving store;
 * a "volume ..." request runs on the store itself when no daemon serves
 * it.  0 and the payload in *ret_out; else -errno and, when it is known,
 * a one-line reason in *ret_out (each malloc()ed).  *ret_no_daemon says
 * that no daemon answered (then "mount" and "umount" fail with
 * -ENOTCONN).
 */
int vol_request(const char *store, const char *req, char **ret_out,
		bool *ret_no_daemon);
/* %XX-escape bytes <= 0x20, 0x7f and '%' of s (a word of a request);
 * malloc()ed. */
char *vol_word(const char *s);

#endif
