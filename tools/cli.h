/* SPDX-License-Identifier: MIT */
/*
 * cli: what every `hoard` command file shares: the one-line error
 * messages, the exit statuses, checking that stdout was written, and the
 * options the subcommands of tools/fsck_cmds.c and tools/budget_cmds.c
 * take (--store, --verbose, -h/--help, --json, --repair).
 */
#ifndef HOARD_TOOLS_CLI_H
#define HOARD_TOOLS_CLI_H

#include <stdarg.h>
#include <stdbool.h>

#define EXIT_USAGE 2
#define CTL_SOCKET "control.sock"

/* "hoard: MESSAGE" on stderr (a usage error also points at --help);
 * returns status. */
int cli_vreport(int status, const char *fmt, va_list ap);
/* A runtime error: one line, returns EXIT_FAILURE. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error: one line, returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Flush stdout: EXIT_SUCCESS, or a runtime error if it could not be
 * written (a full disk, a closed pipe). */
int cli_finish_output(void);

/*
 * Parse a subcommand's options with getopt_long from optind: --store DIR
 * (updates *store), --verbose, -h/--help (prints help), --json when json
 * is not NULL, --repair when repair is not NULL.  Arguments that are not
 * options are an error unless positional: then options must come before
 * them, and optind is the first.
 * Returns -1 to go on, else the exit status.
 */
int cli_parse(const char *cmd, const char *help, const char **store, int argc,
	      char **argv, bool *json, bool *repair, bool positional);

#endif
