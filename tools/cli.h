/* SPDX-License-Identifier: MIT */
/*
 * cli: what every `hoard` command file shares: the one-line error
 * messages, the exit statuses, checking that stdout was written, and the
 * one option parser of the subcommands (cli_parse_with: --store,
 * --verbose, -h/--help, --json and a table of the command's own).
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

/* A command's own option (cli_parse_with): its long name, whether it takes
 * a value, and its code, from CLI_OPT_CMD up. */
struct cli_opt {
	const char *name;
	bool arg;
	int val;
};
#define CLI_OPT_CMD  0x200
#define CLI_MAX_OPTS 24

/* Where a command's arguments (not options) may stand. */
enum cli_args {
	CLI_ARGS_NONE,	/* none: one is a usage error */
	CLI_ARGS_FIRST, /* after the options (the first at optind) */
	CLI_ARGS_ANY,	/* anywhere (getopt moves them to argv[optind..]) */
};

/*
 * The one option parser of the subcommands: --store, --verbose,
 * -h/--help, --json (when json is not NULL) as cli_parse, and the
 * command's own options extra (ended by {0}; NULL: none), each handed to
 * fn(ud, val, optarg), which returns -1 to go on or an exit status.  A
 * missing value, a value given to a flag and an unknown option are usage
 * errors naming cmd.  Returns -1 to go on, else the exit status.
 */
int cli_parse_with(const char *cmd, const char *help, const char **store,
		   int argc, char **argv, bool *json, enum cli_args args,
		   const struct cli_opt *extra,
		   int (*fn)(void *ud, int val, const char *arg), void *ud);

#endif
