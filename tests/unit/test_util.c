// SPDX-License-Identifier: MIT
/* Tests for util: sizes, hex, full I/O, logging. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoard/util.h"
#include "check.h"

static void test_parse_size(void)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{"0", 0},
		{"512", 512},
		{"512b", 512},
		{"64K", 65536},
		{"64k", 65536},
		{"64KiB", 65536},
		{"64kib", 65536},
		{"64KB", 65536},
		{"10G", 10ull << 30},
		{"1.5G", 3ull << 29},
		{"1.5GiB", 3ull << 29},
		{"2T", 2ull << 40},
		{"0.5K", 512},
		{"1.0", 1},
		{"3M", 3ull << 20},
		{"1E", 1ull << 60},
		{"15.999999999999999999E", UINT64_MAX - 1},
		{"18446744073709551615", UINT64_MAX},
		{"16383P", 16383ull << 50},
		{"007", 7},
	};
	static const char *bad[] = {
		"",	  "K",
		"-1",	  "-1K",
		"+5",	  " 5",
		"5 ",	  "5KK",
		"5Kb!",	  "1.5",
		"1.",	  ".5",
		"1.5.5K", "18446744073709551616",
		"16E",	  "16384P",
		"5X",	  "5iB",
		"5Ki",	  "0x10",
		"1e3",	  "5KiBB",
		"1,5G",	  "nan",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		CHECK_EQ(hoard_parse_size(good[i].s, &v), 0);
		if (v != good[i].v)
			fprintf(stderr, "%s -> %llu\n", good[i].s,
				(unsigned long long)v);
		CHECK(v == good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		if (hoard_parse_size(bad[i], &v) != -EINVAL)
			fprintf(stderr, "accepted '%s'\n", bad[i]);
		CHECK_EQ(hoard_parse_size(bad[i], &v), -EINVAL);
		CHECK_EQ(v, 12345);
	}
	CHECK_EQ(hoard_parse_size(NULL, &v), -EINVAL);
}

static char last_msg[4096];
static int last_level, calls;
static void sink(int level, const char *msg)
{
	last_level = level;
	calls++;
	snprintf(last_msg, sizeof(last_msg), "%s", msg);
}

static void test_log(void)
{
	char big[5000];

	CHECK_EQ(hoard_log_get_level(), LOG_INFO);
	hoard_log_set_sink(sink);
	hoard_log(LOG_DEBUG, "dropped %d", 1);
	CHECK_EQ(calls, 0);
	errno = ENOENT;
	hoard_log(LOG_ERR, "kept %d %s", 2, "x");
	CHECK_EQ(errno, ENOENT);
	CHECK_EQ(calls, 1);
	CHECK_EQ(last_level, LOG_ERR);
	CHECK(strcmp(last_msg, "kept 2 x") == 0);
	hoard_log_set_level(LOG_DEBUG);
	hoard_log(LOG_DEBUG, "now %s", "in");
	CHECK_EQ(calls, 2);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	hoard_log(LOG_INFO, "%s", big);
	CHECK(strlen(last_msg) < sizeof(big) &&
	      strcmp(last_msg + strlen(last_msg) - 3, "...") == 0);
	hoard_log_set_sink(NULL);
	hoard_log(LOG_WARNING, "to stderr %d", 3);
	CHECK_EQ(calls, 3);
}

static void test_io(void)
{
	char path[] = "/tmp/hoard-util-XXXXXX";
	int fd = mkstemp(path);
	static uint8_t buf[100000], back[100000];
	char hex[7];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7);
	CHECK(fd >= 0);
	CHECK_EQ(hoard_pwrite_full(fd, buf, sizeof(buf), 10), 0);
	CHECK_EQ(hoard_pread_full(fd, back, sizeof(back), 10), sizeof(back));
	CHECK(memcmp(buf, back, sizeof(buf)) == 0);
	CHECK_EQ(hoard_pread_full(fd, back, sizeof(back), 20),
		 sizeof(back) - 10);
	CHECK_EQ(hoard_pread_full(-1, back, 1, 0), -EBADF);
	CHECK_EQ(hoard_pwrite_full(-1, back, 1, 0), -EBADF);
	close(fd);
	unlink(path);
	hoard_hex((const uint8_t *)"\x01\xab\xff", 3, hex);
	CHECK(strcmp(hex, "01abff") == 0);
	memset(buf, 0, 64);
	memset(back, 0, 64);
	CHECK_EQ(hoard_random(buf, 64), 0);
	CHECK_EQ(hoard_random(back, 64), 0);
	CHECK(memcmp(buf, back, 64) != 0);
	uint64_t t0 = hoard_now_mono_ns();
	usleep(2000);
	CHECK(hoard_now_mono_ns() - t0 >= 2000000);
}

/* The volume/ref name rule (hoard_name_ok): 1-64 of [A-Za-z0-9._-], not
 * starting with '.'. */
static void test_name_ok(void)
{
	static const char *good[] = {"a",
				     "Vol-1",
				     "x.y_z",
				     "a..",
				     "0",
				     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
				     "OPQRSTUVWXYZ0123456789-_"};
	static const char *bad[] = {"",
				    ".",
				    "..",
				    ".hidden",
				    "a/b",
				    "a b",
				    "a\n",
				    "\xc3\xa9",
				    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
				    "QRSTUVWXYZ0123456789-_."};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(hoard_name_ok(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!hoard_name_ok(bad[i]));
}

int main(void)
{
	test_parse_size();
	test_name_ok();
	test_log();
	test_io();
	return CHECK_DONE();
}
