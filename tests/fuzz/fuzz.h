/* SPDX-License-Identifier: MIT */
/*
 * fuzz: what every fuzz target in tests/fuzz/ shares (zstd's tests/fuzz
 * habit: one target per decoder, and a replay driver).
 *
 * A target is one LLVMFuzzerTestOneInput() over one decoder's public entry
 * point.  It is linked twice: with libFuzzer (clang, -Dfuzz=true: the
 * fuzz_<name> binaries) and with replay.c (any compiler: the
 * fuzz_<name>_replay binaries, which run a corpus once, under ASan/UBSan in
 * build-asan).  Besides "no crash", each target checks what the decoder
 * promises and calls fuzz_fail() when a promise breaks, so libFuzzer saves
 * the input.
 *
 * Thread contract: single-threaded, as libFuzzer runs them.
 */
#ifndef HOARD_FUZZ_H
#define HOARD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken promise: say which and abort (libFuzzer keeps the input). */
#define fuzz_fail(...)                                                         \
	do {                                                                   \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		abort();                                                       \
	} while (0)

/* A decoder's message on failure: one non-empty line. */
#define fuzz_check_msg(r, err)                                                 \
	do {                                                                   \
		if ((r) < 0 && (!(err)[0] || strchr((err), '\n')))             \
			fuzz_fail("error %d without one line of message: "     \
				  "'%s'",                                      \
				  (r), (err));                                 \
	} while (0)

/* An exact-size heap copy, so reading one byte past the input is caught
 * by ASan in the replay build too (libFuzzer already does this). */
static inline uint8_t *fuzz_dup(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);

	if (!p)
		abort();
	for (size_t i = 0; i < size; i++)
		p[i] = data[i];
	return p;
}

#endif
