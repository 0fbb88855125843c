/* SPDX-License-Identifier: MIT */
/*
 * util: logging, byte order, sizes.  Layer 1: uses nothing else of hoard.
 *
 * Thread contract: every function here is safe to call from any thread.
 * hoard_log_set_sink()/hoard_log_set_level() are meant to be called once at
 * start-up, before other threads exist.
 *
 * Logging rule (from systemd's style): library code logs at LOG_DEBUG only,
 * except where a problem would otherwise be invisible (a corrupt chunk is
 * logged once at LOG_ERR with its id).  The front ends (hoardfs, hoard) log
 * each failure once, where they turn it into an exit code or an errno reply.
 * Secrets never reach a log.
 */
#ifndef HOARD_UTIL_H
#define HOARD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>
#include <sys/types.h>
#include <time.h>

#define HOARD_VERSION "0.1.0"

typedef void (*hoard_log_sink_fn)(int level, const char *msg);

/* printf-style log at a syslog level (LOG_ERR ... LOG_DEBUG). */
void hoard_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void hoard_logv(int level, const char *fmt, va_list ap);
/* Default sink: stderr, "hoard: <msg>".  NULL restores the default. */
void hoard_log_set_sink(hoard_log_sink_fn sink);
/* Messages above this level are dropped (default LOG_INFO). */
void hoard_log_set_level(int level);
int hoard_log_get_level(void);

/* For functions that explain a failure in a caller's buffer: format into
 * errbuf when it is given (errbuf may be NULL or errlen 0); returns err. */
int hoard_errf(char *errbuf, size_t errlen, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Growing arrays: arr (an array of *cap elements of elem bytes each) with
 * room for need elements: arr itself when it has it, else reallocated to
 * twice its capacity (first when it had none, and at least need) with *cap
 * updated.  NULL on ENOMEM, arr and *cap unchanged.
 */
void *hoard_grow(void *arr, size_t *cap, size_t need, size_t elem,
		 size_t first);

/* Big-endian integers: keys sort numerically under bytewise comparison.
 * The 64-bit ones as two 32-bit halves: gcc turns each half into one load
 * and a bswap, where it left the 8-step byte loop as 8 loads and shifts
 * (a record decode has six of them). */
static inline void hoard_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline uint32_t hoard_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}
static inline void hoard_put_be64(uint8_t *p, uint64_t v)
{
	hoard_put_be32(p, (uint32_t)(v >> 32));
	hoard_put_be32(p + 4, (uint32_t)v);
}
static inline uint64_t hoard_get_be64(const uint8_t *p)
{
	return (uint64_t)hoard_get_be32(p) << 32 | hoard_get_be32(p + 4);
}

/*
 * Parse a size such as "512", "64K", "10G", "1.5GiB" (binary units).
 * Returns 0 and sets *ret, or -EINVAL.
 */
int hoard_parse_size(const char *s, uint64_t *ret);

/*
 * The name rule of volumes and of both halves of a ref (<volume>/<name>):
 * 1 to 64 of [A-Za-z0-9._-], not starting with '.'.  A leaf, so that the
 * remote formats (remote.c) and the filesystem (dir.c) share it.
 */
bool hoard_name_ok(const char *name);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void hoard_hex(const uint8_t *p, size_t n, char *out);

/* Write all of buf at off / read exactly n bytes at off (EINTR-safe).
 * pread_full returns bytes read (short only at EOF) or -errno. */
int hoard_pwrite_full(int fd, const void *buf, size_t n, off_t off);
ssize_t hoard_pread_full(int fd, void *buf, size_t n, off_t off);
/* Fill buf with n bytes from the kernel CSPRNG; 0 or -errno. */
int hoard_random(void *buf, size_t n);
/* Monotonic time in nanoseconds; _coarse: to within a clock tick (a few
 * ms), cheaper, for rate limits on hot paths. */
uint64_t hoard_now_mono_ns(void);
uint64_t hoard_now_coarse_ns(void);
/* The time ns nanoseconds from now on clock: a timed wait's deadline. */
struct timespec hoard_deadline(clockid_t clock, uint64_t ns);

#endif
