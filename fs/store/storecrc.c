/* SPDX-License-Identifier: MIT */
/*
 * storecrc: RocksDB's CRC32C with the CPU's crc32 instruction.
 *
 * Debian 12's librocksdb 7.8 is built without SSE4.2, so its CRC32C is the
 * table-driven software loop ("Fast CRC32 supported: Not supported on x86"
 * in its LOG).  RocksDB checksums every blob record it writes (the record
 * header's CRC covers the whole value) and every WAL record, so on ingest
 * that loop was ~10% of the daemon's CPU (docs/BENCHMARKS.md, issue 14).
 * The blob record's checksum type cannot be chosen (CRC32C only, in 7.8),
 * and the frames' own check (the keyed id, on every read) does not replace
 * the checksums RocksDB also puts on the WAL and its SST blocks.
 *
 * RocksDB calls rocksdb::crc32c::Extend() from its other translation units
 * through the PLT (an exported, default-visibility symbol), so a definition
 * of that symbol in the program takes the place of the library's
 * (ELF symbol interposition, as a program's own malloc does).  This file
 * is that definition: the same function (CRC32C, Castagnoli, with RocksDB's
 * pre- and post-inversion), computed with SSE4.2's crc32 instruction.  The
 * checksums are bit for bit the ones the library computes, so nothing on
 * disk changes and every store stays readable by either build.
 *
 * Safety: store_crc_check(), called when a store is opened, compares this
 * function with the library's own (dlsym RTLD_NEXT) on test buffers, and
 * when the CPU has no SSE4.2 or they disagree every call goes to the
 * library's function.  When a future librocksdb no longer calls Extend
 * through the PLT the override is simply not used (slower, never wrong).
 *
 * Thread contract: Extend may be called from any thread at once; the
 * choice is made once (pthread_once) and read with atomic loads.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hoard/util.h"
#include "store-internal.h"

typedef uint32_t (*crc_fn)(uint32_t, const char *, size_t);

/* rocksdb::crc32c::Extend(unsigned int, char const*, unsigned long) */
#define RDB_EXTEND "_ZN7rocksdb6crc32c6ExtendEjPKcm"

uint32_t store_crc_extend(uint32_t crc, const char *p,
			  size_t n) __asm__(RDB_EXTEND);

static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static crc_fn lib_extend; /* set once, read with atomic loads */
static int use_hw;	  /* likewise: 1 when the hardware path is checked */

/* CRC32C without the inversions, one byte at a time (the fallback when
 * there is neither SSE4.2 nor the library's function). */
static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
	}
	return c;
}

/*
 * Three streams at once: the crc32 instruction takes 3 cycles but can
 * start every cycle, so a buffer of 3 x CRC_LANE bytes is run as three
 * lanes side by side and the three CRCs joined.  Without the inversions
 * the CRC is linear: crc(A B) = crc(A) x^(8 |B|) ^ crc0(B), where crc0
 * starts from 0; the product is in GF(2) modulo the polynomial.
 */
#define CRC_POLY 0x82f63b78u /* reflected Castagnoli */
#define CRC_LANE 8192

static uint32_t crc_lane_shift; /* x^(8 CRC_LANE): set before use_hw */

/* a * b modulo the polynomial (bit 31 is x^0: reflected) */
static uint32_t crc_mulmod(uint32_t a, uint32_t b)
{
	uint32_t m = 1u << 31, r = 0;

	for (; m; m >>= 1) {
		if (a & m)
			r ^= b;
		b = (b >> 1) ^ (CRC_POLY & (0u - (b & 1)));
	}
	return r;
}

/* x^e modulo the polynomial */
static uint32_t crc_xpow(uint64_t e)
{
	uint32_t r = 1u << 31, x = 1u << 30; /* x^0, x^1 */

	for (; e; e >>= 1) {
		if (e & 1)
			r = crc_mulmod(x, r);
		x = crc_mulmod(x, x);
	}
	return r;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c,
							 const uint8_t *p,
							 size_t n)
{
	uint64_t c64 = c;

	while (n && ((uintptr_t)p & 7)) {
		c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
		n--;
	}
	while (n >= 3 * CRC_LANE) {
		uint64_t c1 = 0, c2 = 0;

		for (size_t i = 0; i < CRC_LANE; i += 8) {
			uint64_t w0, w1, w2;

			memcpy(&w0, p + i, 8);
			memcpy(&w1, p + CRC_LANE + i, 8);
			memcpy(&w2, p + 2 * CRC_LANE + i, 8);
			c64 = __builtin_ia32_crc32di(c64, w0);
			c1 = __builtin_ia32_crc32di(c1, w1);
			c2 = __builtin_ia32_crc32di(c2, w2);
		}
		c64 = crc_mulmod(crc_lane_shift, (uint32_t)c64) ^ (uint32_t)c1;
		c64 = crc_mulmod(crc_lane_shift, (uint32_t)c64) ^ (uint32_t)c2;
		p += 3 * CRC_LANE;
		n -= 3 * CRC_LANE;
	}
	/* the rest, one stream: ~8 bytes per 3 cycles */
	while (n >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c64 = __builtin_ia32_crc32di(c64, w);
		p += 8;
		n -= 8;
	}
	while (n--)
		c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
	return (uint32_t)c64;
}

static uint32_t ours(uint32_t crc, const char *p, size_t n)
{
	return ~crc_hw(~crc, (const uint8_t *)p, n);
}

static void crc_choose(void)
{
	static const char vec[] = "123456789";
	static uint8_t buf[3 * CRC_LANE + 1024 + 7];
	crc_fn lib = (crc_fn)dlsym(RTLD_NEXT, RDB_EXTEND);
	bool ok;

	__builtin_cpu_init();
	if (lib == store_crc_extend)
		lib = NULL;
	__atomic_store_n(&lib_extend, lib, __ATOMIC_RELEASE);
	if (!__builtin_cpu_supports("sse4.2"))
		return;
	crc_lane_shift = crc_xpow(8ull * CRC_LANE);
	/* the standard check value, then lengths and alignments against
	 * the library's own function */
	ok = ours(0, vec, 9) == 0xe3069283u;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 3));
	for (size_t off = 0; ok && lib && off < 8; off++)
		for (size_t n = 0; ok && n <= sizeof(buf) - 7;
		     n += n < 1024 ? 1 + n / 3 : 3 * CRC_LANE - 1024 + 1)
			ok = ours(0x1234567u * (uint32_t)n, (char *)buf + off,
				  n) == lib(0x1234567u * (uint32_t)n,
					    (char *)buf + off, n);
	if (!ok) {
		hoard_log(LOG_WARNING, "CRC32C: the crc32 instruction "
				       "disagrees with RocksDB's: using "
				       "RocksDB's own");
		return;
	}
	__atomic_store_n(&use_hw, 1, __ATOMIC_RELEASE);
}

uint32_t store_crc_extend(uint32_t crc, const char *p, size_t n)
{
	crc_fn lib;

	pthread_once(&crc_once, crc_choose);
	if (__atomic_load_n(&use_hw, __ATOMIC_ACQUIRE))
		return ours(crc, p, n);
	lib = __atomic_load_n(&lib_extend, __ATOMIC_ACQUIRE);
	if (lib)
		return lib(crc, p, n);
	return ~crc_sw(~crc, (const uint8_t *)p, n);
}

bool store_crc_hw(void)
{
	pthread_once(&crc_once, crc_choose);
	return __atomic_load_n(&use_hw, __ATOMIC_ACQUIRE);
}
