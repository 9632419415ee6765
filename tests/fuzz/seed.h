/* tests/fuzz/seed.h: writing a libFuzzer seed corpus from a replay program (shared by the fuzz targets). */
#ifndef DRAGON_TESTS_FUZZ_SEED_H
#define DRAGON_TESTS_FUZZ_SEED_H

#include <stdio.h>

/* Write data as DIR/seedI; 0 on success, -1 (with a message) when the file cannot be written. */
static inline int fuzz_write_seed(const char *dir, int i, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed%d", dir, i);
	if (!(f = fopen(path, "wb")) || fwrite(data, 1, len, f) != len) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f) ? -1 : 0;
}

#endif
