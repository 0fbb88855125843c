/* SPDX-License-Identifier: MIT */
/*
 * check.h: a minimal test harness for the C unit tests.
 *
 *	CHECK(cond)		count a check; on failure print file:line and
 *				the expression, and count the failure
 *	CHECK_EQ(a, b)		as CHECK(a == b), printing both values (as
 *				long long) on failure
 *	CHECK_DONE()		print "<test>: N checks, M failed"; evaluates to
 *				the exit status: `return CHECK_DONE();`.  A
 *				test that ran no checks at all fails too.
 *
 * The counters are updated atomically, so checks may run in several threads.
 * Only the first CHECK_MAX_REPORTS failures are printed in full.
 */
#ifndef HOARD_TESTS_CHECK_H
#define HOARD_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

#define CHECK_MAX_REPORTS 50

static unsigned long check_count __attribute__((unused));
static unsigned long check_failures __attribute__((unused));

/* Count one check; returns its outcome.  Used by the macros only. */
static inline int check_record(int ok, const char *file, int line,
			       const char *expr, long long a, long long b,
			       int show_values)
{
	unsigned long n;

	__atomic_fetch_add(&check_count, 1, __ATOMIC_RELAXED);
	if (ok)
		return 1;
	n = __atomic_add_fetch(&check_failures, 1, __ATOMIC_RELAXED);
	if (n > CHECK_MAX_REPORTS)
		return 0;
	if (show_values)
		fprintf(stderr, "%s:%d: CHECK failed: %s (%lld vs %lld)\n",
			file, line, expr, a, b);
	else
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
	if (n == CHECK_MAX_REPORTS)
		fprintf(stderr, "(further failures are counted, not shown)\n");
	return 0;
}

#define CHECK(cond) check_record(!!(cond), __FILE__, __LINE__, #cond, 0, 0, 0)

#define CHECK_EQ(a, b)                                                         \
	check_eq((long long)(a), (long long)(b), __FILE__, __LINE__,           \
		 #a " == " #b)

static inline int check_eq(long long a, long long b, const char *file, int line,
			   const char *expr)
{
	return check_record(a == b, file, line, expr, a, b, 1);
}

static inline int check_done(const char *file)
{
	const char *name = strrchr(file, '/');
	unsigned long count, failed;

	count = __atomic_load_n(&check_count, __ATOMIC_RELAXED);
	failed = __atomic_load_n(&check_failures, __ATOMIC_RELAXED);
	printf("%s: %lu checks, %lu failed\n", name ? name + 1 : file, count,
	       failed);
	fflush(stdout);
	return failed || !count ? 1 : 0;
}

#define CHECK_DONE() check_done(__FILE__)

#endif
