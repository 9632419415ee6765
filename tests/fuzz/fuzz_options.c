/* tests/fuzz/fuzz_options.c: libFuzzer target of the SPANK plugin's settings: plugstack.conf arguments, DRAGON_* variables and the --dragon value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dragon/error.h>
#include "../../spank/options.h"
#include "split.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *strs[FUZZ_MAX_STRINGS];
static int nstrs;

/* The environment: DRAGON_ENABLE, DRAGON_STARTUP_TIMEOUT and DRAGON_TRANSPORT are strings 1-3;
 * DRAGON_NODE_TIMEOUT is string 2 as well (the corpus keeps its layout). */
static const char *get(const char *name, void *arg)
{
	(void)arg;
	if (!strcmp(name, "DRAGON_ENABLE"))
		return nstrs > 1 ? strs[1] : NULL;
	if (!strcmp(name, "DRAGON_STARTUP_TIMEOUT") || !strcmp(name, "DRAGON_NODE_TIMEOUT"))
		return nstrs > 2 ? strs[2] : NULL;
	if (!strcmp(name, "DRAGON_TRANSPORT"))
		return nstrs > 3 ? strs[3] : NULL;
	return NULL;
}

/* What was accepted is what the parsers promise: bounded timeouts, a provider of safe
 * characters, an absolute runtime directory without "..", and a formatting that fits. */
static void check(const struct dragon_spank_opts *o)
{
	char buf[DRAGON_SPANK_TRANSPORT_MAX + 64];
	size_t n = strlen(o->transport);

	if (o->startup_timeout < 1 || o->startup_timeout > DRAGON_SPANK_TIMEOUT_MAX || n == 0 ||
	    (o->node_timeout_ms && (o->node_timeout_ms < DRAGON_SPANK_NODE_TIMEOUT_MIN_MS ||
				    o->node_timeout_ms > DRAGON_SPANK_NODE_TIMEOUT_MAX_MS)) ||
	    strspn(o->transport, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789;_-.") != n ||
	    o->runtime_dir[0] != '/' || strstr(o->runtime_dir, "/../") ||
	    dragon_spank_opts_format(o, buf, sizeof(buf)) != DRAGON_OK)
		abort();
}

/*
 * Input: NUL-separated strings. String 0 is the --dragon value, 1-3 the environment, the rest
 * plugstack.conf's arguments. They are applied as the plugin does: conf, environment, option.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dragon_spank_opts o;
	char err[256], *buf;

	nstrs = fuzz_split(data, size, &buf, strs);
	dragon_spank_opts_init(&o);
	if (dragon_spank_parse_conf(&o, nstrs > 4 ? nstrs - 4 : 0, strs + 4, err, sizeof(err)) == DRAGON_OK) {
		check(&o);
		if (dragon_spank_parse_env(&o, get, NULL, err, sizeof(err)) == DRAGON_OK)
			check(&o);
		if (dragon_spank_parse_option(&o, strs[0], err, sizeof(err)) == DRAGON_OK)
			check(&o);
	}
	/* An empty value (a bare --dragon) and NULL are the same. */
	dragon_spank_opts_init(&o);
	if (dragon_spank_parse_option(&o, strs[0][0] ? strs[0] : NULL, err, sizeof(err)) == DRAGON_OK)
		check(&o);
	free(buf);
	return 0;
}
