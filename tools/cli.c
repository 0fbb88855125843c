// SPDX-License-Identifier: MIT
/* cli: see cli.h. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/util.h"
#include "cli.h"

enum {
	OPT_STORE = 0x100, /* long-only options: not a printable char */
	OPT_VERBOSE,
	OPT_JSON,
	OPT_REPAIR,
};

static int set_repair(void *ud, int val, const char *arg);

int cli_vreport(int status, const char *fmt, va_list ap)
{
	fputs("hoard: ", stderr);
	vfprintf(stderr, fmt, ap);
	if (status == EXIT_USAGE)
		fputs(" (see 'hoard --help')", stderr);
	fputc('\n', stderr);
	return status;
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vreport(EXIT_FAILURE, fmt, ap);
	va_end(ap);
	return EXIT_FAILURE;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vreport(EXIT_USAGE, fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

int cli_finish_output(void)
{
	if (fflush(stdout) == EOF || ferror(stdout))
		return cli_fail("writing output: %s", strerror(errno));
	return EXIT_SUCCESS;
}

int cli_parse(const char *cmd, const char *help, const char **store, int argc,
	      char **argv, bool *json, bool *repair, bool positional)
{
	static const struct cli_opt rep[] = {{"repair", false, OPT_REPAIR},
					     {0}};

	return cli_parse_with(cmd, help, store, argc, argv, json,
			      positional ? CLI_ARGS_FIRST : CLI_ARGS_NONE,
			      repair ? rep : NULL, set_repair, repair);
}

static int set_repair(void *ud, int val, const char *arg)
{
	*(bool *)ud = true;
	return -1;
}

int cli_parse_with(const char *cmd, const char *help, const char **store,
		   int argc, char **argv, bool *json, enum cli_args args,
		   const struct cli_opt *extra,
		   int (*fn)(void *ud, int val, const char *arg), void *ud)
{
	static const struct option common[] = {
		{"store", required_argument, NULL, OPT_STORE},
		{"verbose", no_argument, NULL, OPT_VERBOSE},
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, OPT_JSON},
	};
	struct option opts[CLI_MAX_OPTS + 5];
	int opt, n = 0, r;

	/* an option the command does not take is unknown to getopt */
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		if (common[i].val != OPT_JSON || json)
			opts[n++] = common[i];
	for (int i = 0; extra && extra[i].name && i < CLI_MAX_OPTS; i++)
		opts[n++] = (struct option){extra[i].name,
					    extra[i].arg ? required_argument
							 : no_argument,
					    NULL, extra[i].val};
	memset(&opts[n], 0, sizeof(opts[n]));
	/* CLI_ARGS_FIRST: options come first ("+": stop at the first
	 * argument), so that a value such as "-5M" is an argument for the
	 * command to judge, not an unknown option. */
	while ((opt = getopt_long(argc, argv,
				  args == CLI_ARGS_FIRST ? "+:h" : ":h", opts,
				  NULL)) != -1) {
		const char *bad = argv[optind - 1];

		switch (opt) {
		case OPT_STORE:
			if (!*optarg)
				return cli_usage_error(
					"--store needs a directory");
			*store = optarg;
			break;
		case OPT_VERBOSE:
			hoard_log_set_level(LOG_DEBUG);
			break;
		case OPT_JSON:
			*json = true;
			break;
		case 'h':
			fputs(help, stdout);
			return cli_finish_output();
		case ':':
			return cli_usage_error("%s: option '%s' needs a value",
					       cmd, bad);
		case '?':
			if (optopt && (optopt >= 0x100 || strchr(bad, '=')))
				return cli_usage_error(
					"%s: option '%.*s' takes no value", cmd,
					(int)strcspn(bad, "="), bad);
			if (optopt > 0 && optopt < 0x100 &&
			    strncmp(bad, "--", 2))
				return cli_usage_error(
					"%s: unknown option '-%c'", cmd,
					optopt);
			return cli_usage_error("%s: unknown option '%s'", cmd,
					       bad);
		default:
			r = fn(ud, opt, optarg);
			if (r >= 0)
				return r;
		}
	}
	if (args == CLI_ARGS_NONE && optind < argc)
		return cli_usage_error("%s: unexpected argument '%s'", cmd,
				       argv[optind]);
	return -1;
}
