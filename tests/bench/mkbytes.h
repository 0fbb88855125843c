/* SPDX-License-Identifier: MIT */
/*
 * mkbytes.h: the files `hoard-bench mkfiles DIR N MAXSIZE` makes, for it
 * and for hoard-commit-bench, which must write exactly the same bytes (its
 * first round new content, later rounds dedup hits, as the create
 * benchmark's rounds).
 *
 *	MK_NDIRS		the files are spread over this many directories
 *				(file i in directory i % MK_NDIRS)
 *	mk_init(m, maxsize)	the buffer filled: 0, or -1 (no memory)
 *	mk_next(m, i)		file i's length (1..maxsize, 0 when maxsize is
 *				0); its bytes are m->buf[0..length)
 *	mk_free(m)
 */
#ifndef HOARD_TESTS_MKBYTES_H
#define HOARD_TESTS_MKBYTES_H

#include <stdint.h>
#include <stdlib.h>

#define MK_NDIRS 100

struct mk {
	uint8_t *buf;
	uint64_t x;
	long maxsize;
};

static inline uint64_t mk_step(struct mk *m)
{
	m->x = m->x * 6364136223846793005ull + 1442695040888963407ull;
	return m->x;
}

static inline int mk_init(struct mk *m, long maxsize)
{
	m->buf = malloc(maxsize > 0 ? (size_t)maxsize : 1);
	m->x = 0x9e3779b97f4a7c15ull;
	m->maxsize = maxsize;
	if (!m->buf)
		return -1;
	for (long k = 0; k < maxsize; k++)
		m->buf[k] = (uint8_t)(mk_step(m) >> 56);
	return 0;
}

static inline size_t mk_next(struct mk *m, long i)
{
	size_t len;

	if (m->maxsize <= 0)
		return 0;
	len = (size_t)((mk_step(m) >> 33) % (uint64_t)m->maxsize) + 1;
	/* each file starts at a different place of the buffer, so files
	 * differ */
	m->buf[(size_t)i % len] ^= (uint8_t)(i + 1);
	return len;
}

static inline void mk_free(struct mk *m)
{
	free(m->buf);
}

#endif
