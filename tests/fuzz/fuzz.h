/*
 * fuzz.h - helpers shared by the libFuzzer targets of tests/fuzz/.
 *
 * A target checks properties of what it parsed (round trips, invariants)
 * with FUZZ_CHECK: a broken property prints what failed and abort()s, which
 * libFuzzer reports as a crash and saves the input.
 */
#ifndef VSYNC_FUZZ_H
#define VSYNC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: property failed: %s\n",        \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated malloc'd copy of the input (the parsers that take C
 * strings get one; an embedded NUL then ends it, as it would in C). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
