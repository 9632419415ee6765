/* runtime/core/env.c: reading the runtime's numeric DRAGON_* settings from the environment, with bounds. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "core/env.h"

unsigned long dg_parse_ulong(const char *s, unsigned long dflt, unsigned long min, unsigned long max)
{
	unsigned long v;
	char *end;

	/* strtoul takes "-1" as ULONG_MAX and skips leading space: neither is a setting. */
	if (!s || !isdigit((unsigned char)s[0]))
		return dflt;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return dflt;
	return v;
}

unsigned long dg_env_ulong(const char *name, unsigned long dflt, unsigned long min, unsigned long max)
{
	return dg_parse_ulong(getenv(name), dflt, min, max);
}
