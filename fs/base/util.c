// SPDX-License-Identifier: MIT
/*
 * util: logging, sizes, hex, full reads and writes, randomness, clocks.
 */
#include "hoard/util.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

/*
 * Set once at start-up (see util.h), read by every thread: atomic accesses
 * keep a late change well-defined all the same.
 */
static hoard_log_sink_fn log_sink;
static int log_level = LOG_INFO;

static void log_sink_stderr(int level, const char *msg)
{
	(void)level;
	/* One stdio call: glibc locks the stream, lines never interleave. */
	fprintf(stderr, "hoard: %s\n", msg);
}

void hoard_log_set_sink(hoard_log_sink_fn sink)
{
	__atomic_store_n(&log_sink, sink, __ATOMIC_RELEASE);
}

void hoard_log_set_level(int level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int hoard_log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

void hoard_logv(int level, const char *fmt, va_list ap)
{
	hoard_log_sink_fn sink;
	int saved_errno = errno;
	char msg[2048];
	int n;

	if (level > hoard_log_get_level())
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		goto out_restore_errno;
	if ((size_t)n >= sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);

	sink = __atomic_load_n(&log_sink, __ATOMIC_ACQUIRE);
	if (!sink)
		sink = log_sink_stderr;
	sink(level, msg);
out_restore_errno:
	/* "%m" callers and error paths rely on errno surviving a log call. */
	errno = saved_errno;
}

void hoard_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hoard_logv(level, fmt, ap);
	va_end(ap);
}

/* Shift of a binary unit letter, or -1. */
static int size_unit_shift(char c)
{
	static const char units[] = "kmgtpe";
	const char *u;

	if (c == '\0')
		return -1;
	u = strchr(units, c | 0x20);
	return u ? 10 * (int)(u - units + 1) : -1;
}

static bool is_empty_or_b(const char *s)
{
	return *s == '\0' || strcasecmp(s, "b") == 0;
}

/* "", "B", "<U>", "<U>B" or "<U>iB", case-insensitive; the shift, or -1. */
static int parse_size_suffix(const char *s)
{
	int shift = size_unit_shift(*s);

	if (shift < 0)
		return is_empty_or_b(s) ? 0 : -1;
	s++;
	if (is_empty_or_b(s) || strcasecmp(s, "ib") == 0)
		return shift;
	return -1;
}

/*
 * Decimal digits at *sp into *ret, advancing *sp; digits past the first
 * max_digits are consumed but ignored (*ret_scale is 10^used).  The number
 * of digits, or -1 on overflow.
 */
static int parse_digits(const char **sp, int max_digits, uint64_t *ret,
			uint64_t *ret_scale)
{
	const char *s = *sp;
	uint64_t v = 0, scale = 1;
	int n = 0;

	for (; *s >= '0' && *s <= '9'; s++, n++) {
		if (n >= max_digits)
			continue;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -1;
		scale *= 10;
	}
	*sp = s;
	*ret = v;
	if (ret_scale)
		*ret_scale = scale;
	return n;
}

__extension__ typedef unsigned __int128 uint128;

int hoard_parse_size(const char *s, uint64_t *ret)
{
	uint64_t whole, frac = 0, scale = 1, v;
	uint128 part;
	int shift;

	if (!s)
		return -EINVAL;
	if (parse_digits(&s, INT_MAX, &whole, NULL) <= 0)
		return -EINVAL;
	/* 19 fraction digits fit a u64 and resolve far below one byte. */
	if (*s == '.') {
		s++;
		if (parse_digits(&s, 19, &frac, &scale) <= 0)
			return -EINVAL;
	}
	shift = parse_size_suffix(s);
	if (shift < 0)
		return -EINVAL;
	/* A fraction of a byte is not a size. */
	if (shift == 0 && frac != 0)
		return -EINVAL;
	if (shift > 0 && whole > (UINT64_MAX >> shift))
		return -EINVAL;
	part = ((uint128)frac << shift) / scale;
	if (__builtin_add_overflow(whole << shift, (uint64_t)part, &v))
		return -EINVAL;
	*ret = v;
	return 0;
}

void hoard_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		*out++ = digits[p[i] >> 4];
		*out++ = digits[p[i] & 15];
	}
	*out = '\0';
}

int hoard_pwrite_full(int fd, const void *buf, size_t n, off_t off)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* No progress and no error: do not spin. */
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

ssize_t hoard_pread_full(int fd, void *buf, size_t n, off_t off)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(fd, p + done, n - done, off + (off_t)done);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

int hoard_random(void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t hoard_now_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t hoard_now_coarse_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC_COARSE);
}

struct timespec hoard_deadline(clockid_t clock, uint64_t ns)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	ns += (uint64_t)ts.tv_nsec;
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	return ts;
}

void *hoard_grow(void *arr, size_t *cap, size_t need, size_t elem, size_t first)
{
	size_t n = *cap ? *cap * 2 : first;
	void *p;

	if (need <= *cap)
		return arr;
	if (n < need)
		n = need;
	p = reallocarray(arr, n, elem);
	if (p)
		*cap = n;
	return p;
}

int hoard_errf(char *errbuf, size_t errlen, int err, const char *fmt, ...)
{
	va_list ap;

	if (errbuf && errlen) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return err;
}

bool hoard_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}
