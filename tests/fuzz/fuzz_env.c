/* tests/fuzz/fuzz_env.c: libFuzzer target of the runtime's DRAGON_* environment: numeric settings and the transport agent's configuration. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/env.h"
#include "ta/ta.h"
#include "split.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The variables set from strings 1.. of the input, in this order. */
static const char *const vars[] = {
	"DRAGON_STARTUP_TIMEOUT", "DRAGON_NODE_INDEX", "DRAGON_TA_PROVIDER", "DRAGON_TA_IFACE",
	"DRAGON_TA_BIND",	  "DRAGON_TA_DEAD_MS", "DRAGON_TA_SPIN_US",  "DRAGON_TA_CHUNK_KB",
	"DRAGON_TA_WINDOW",	  "DRAGON_TA_ZCOPY_KB", "DRAGON_TA_BULK_KB",
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

/*
 * Input: NUL-separated strings. String 0 goes through the bounded parser with bounds taken from
 * its first bytes; strings 1.. become the variables above (unset when missing). Whatever was
 * set, the values the runtime takes must lie in their documented ranges.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s[FUZZ_MAX_STRINGS], *buf;
	int n = fuzz_split(data, size, &buf, s);
	unsigned long lo = size > 0 ? data[0] : 0, hi = size > 1 ? (unsigned long)data[1] << 24 : 0, v;
	struct dg_ta_config cfg;
	int ms;

	v = dg_parse_ulong(s[0], 7, lo, hi);
	if (v != 7 && (v < lo || v > hi))
		abort();
	for (size_t i = 0; i < NVARS; i++) {
		if ((int)i + 1 < n)
			setenv(vars[i], s[i + 1], 1);
		else
			unsetenv(vars[i]);
	}
	ms = DG_STARTUP_TIMEOUT_MS();
	if (ms < 1000 || ms > 86400 * 1000)
		abort();
	dg_ta_config_init(&cfg);
	if (cfg.dead_ms < 1 || cfg.spin_us < 0 || cfg.chunk < 4096 || cfg.chunk > (16384u << 10) ||
	    cfg.window < 2 || cfg.window > 1024 || cfg.slots != 2 * cfg.window || !cfg.provider ||
	    cfg.bulk_min > ((size_t)1 << 30) || cfg.bulk_chunk < 4096 ||
	    cfg.bulk_chunk > ((size_t)1 << 30))
		abort();
	free(buf);
	return 0;
}
