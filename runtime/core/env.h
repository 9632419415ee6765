/* runtime/core/env.h: reading the runtime's numeric DRAGON_* settings from the environment, with bounds. */
#ifndef DRAGON_CORE_ENV_H
#define DRAGON_CORE_ENV_H

/*
 * The whole number in environment variable name, if it lies in [min, max]; otherwise (unset,
 * empty, not a number, trailing characters, out of range) dflt. Callers that scale the value
 * (seconds to milliseconds) choose max so that the product fits.
 */
unsigned long dg_env_ulong(const char *name, unsigned long dflt, unsigned long min, unsigned long max);

/* The same parse of a string (NULL: dflt), for values that do not come from the environment. */
unsigned long dg_parse_ulong(const char *s, unsigned long dflt, unsigned long min, unsigned long max);

/* Seconds that waits for a fabric's start take: DRAGON_STARTUP_TIMEOUT, 1 s to a day, default 30. */
#define DG_STARTUP_TIMEOUT_MS() ((int)dg_env_ulong("DRAGON_STARTUP_TIMEOUT", 30, 1, 86400) * 1000)

#endif
