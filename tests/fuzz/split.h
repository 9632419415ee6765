/* tests/fuzz/split.h: cutting a fuzz input into NUL-separated strings (shared by the fuzz targets of text inputs). */
#ifndef DRAGON_TESTS_FUZZ_SPLIT_H
#define DRAGON_TESTS_FUZZ_SPLIT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_STRINGS 16

/* Copy data into a NUL-terminated buffer (freed by the caller) and point s[] at up to
 * FUZZ_MAX_STRINGS of its NUL-separated strings; returns how many. */
static inline int fuzz_split(const uint8_t *data, size_t size, char **buf, char *s[FUZZ_MAX_STRINGS])
{
	char *b = malloc(size + 1), *p, *end;
	int n = 0;

	if (!b)
		abort();
	memcpy(b, data, size);
	b[size] = 0;
	end = b + size;
	for (p = b; n < FUZZ_MAX_STRINGS && p <= end; p += strlen(p) + 1)
		s[n++] = p;
	*buf = b;
	return n;
}

#endif
