/* spank/options.c: pure parser of the plugin's key=value settings (no Slurm calls, so it is unit-tested). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dragon/error.h>
#include "options.h"

enum source { FROM_CONF, FROM_OPTION };

void dragon_spank_opts_init(struct dragon_spank_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->on = false;
	snprintf(o->runtime_dir, sizeof(o->runtime_dir), "%s", "/run/dragon");
	o->startup_timeout = 30;
	snprintf(o->transport, sizeof(o->transport), "%s", "tcp;ofi_rxm");
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return DRAGON_EINVAL;
}

static int parse_timeout(const char *key, const char *v, unsigned *out, char *err, size_t errlen)
{
	char *end = NULL;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (!*v || *end || errno || n < 1 || n > DRAGON_SPANK_TIMEOUT_MAX)
		return fail(err, errlen, "%s='%s': expected whole seconds from 1 to 3600", key, v);
	*out = (unsigned)n;
	return DRAGON_OK;
}

/* Seconds with at most three decimals ("2.5", "10"), 0.1 to 3600, kept in milliseconds: what
 * local services accept in DRAGON_NODE_TIMEOUT, without strtod's "inf", "1e3" or "0x10". */
static int parse_node_timeout(const char *key, const char *v, unsigned *out, char *err, size_t errlen)
{
	unsigned long whole = 0, frac = 0;
	size_t i = 0, nw = 0, nf = 0;

	for (; v[i] >= '0' && v[i] <= '9' && nw < 8; i++, nw++)
		whole = whole * 10 + (unsigned long)(v[i] - '0');
	if (v[i] == '.')
		for (i++; v[i] >= '0' && v[i] <= '9' && nf < 3; i++, nf++)
			frac = frac * 10 + (unsigned long)(v[i] - '0');
	for (size_t k = nf; k < 3; k++)
		frac *= 10;
	if (!nw || v[i] || (v[nw] == '.' && !nf) || whole * 1000 + frac < DRAGON_SPANK_NODE_TIMEOUT_MIN_MS ||
	    whole * 1000 + frac > DRAGON_SPANK_NODE_TIMEOUT_MAX_MS)
		return fail(err, errlen,
			    "%s='%s': expected seconds from 0.1 to 3600, at most 3 decimals (e.g. 5 or 2.5)", key, v);
	*out = (unsigned)(whole * 1000 + frac);
	return DRAGON_OK;
}

void dragon_spank_format_seconds(unsigned ms, char *buf, size_t len)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%u", ms / 1000);
	else if (ms % 100 == 0)
		snprintf(buf, len, "%u.%u", ms / 1000, ms % 1000 / 100);
	else if (ms % 10 == 0)
		snprintf(buf, len, "%u.%02u", ms / 1000, ms % 1000 / 10);
	else
		snprintf(buf, len, "%u.%03u", ms / 1000, ms % 1000);
}

/* A libfabric provider list: letters, digits and ; _ - . only (it ends up in the environment). */
static int parse_transport(const char *key, const char *v, char *out, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (n == 0 || n > DRAGON_SPANK_TRANSPORT_MAX ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789;_-.") != n)
		return fail(err, errlen, "%s='%s': expected a libfabric provider such as tcp;ofi_rxm", key, v);
	memcpy(out, v, n + 1);
	return DRAGON_OK;
}

/* An absolute path without '..' components: root creates directories below it. */
static int parse_dir(const char *key, const char *v, char *out, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (v[0] != '/' || n > DRAGON_SPANK_RUNTIME_DIR_MAX || strstr(v, "/../") ||
	    (n >= 3 && strcmp(v + n - 3, "/..") == 0))
		return fail(err, errlen, "%s='%s': expected an absolute path without '..' (at most 200 bytes)", key, v);
	memcpy(out, v, n + 1);
	return DRAGON_OK;
}

/* Apply one "key=value" (kv is a private copy it may modify). */
static int apply(struct dragon_spank_opts *o, char *kv, enum source src, char *err, size_t errlen)
{
	char *eq = strchr(kv, '=');
	const char *key = kv, *v;

	if (!eq || eq == kv)
		return fail(err, errlen, "'%s': expected key=value", kv);
	*eq = '\0';
	v = eq + 1;
	if (strcmp(key, "startup_timeout") == 0)
		return parse_timeout(key, v, &o->startup_timeout, err, errlen);
	if (strcmp(key, "transport") == 0)
		return parse_transport(key, v, o->transport, err, errlen);
	if (strcmp(key, "node_timeout") == 0)
		return parse_node_timeout(key, v, &o->node_timeout_ms, err, errlen);
	if (src == FROM_CONF && strcmp(key, "runtime_dir") == 0)
		return parse_dir(key, v, o->runtime_dir, err, errlen);
	if (src == FROM_CONF && strcmp(key, "libexec_dir") == 0)
		return parse_dir(key, v, o->libexec_dir, err, errlen);
	if (src == FROM_CONF && strcmp(key, "default") == 0) {
		if (strcmp(v, "on") == 0)
			o->on = true;
		else if (strcmp(v, "off") == 0)
			o->on = false;
		else
			return fail(err, errlen, "%s='%s': expected on or off", key, v);
		return DRAGON_OK;
	}
	if (src == FROM_OPTION && (strcmp(key, "runtime_dir") == 0 || strcmp(key, "default") == 0 ||
				   strcmp(key, "libexec_dir") == 0))
		return fail(err, errlen, "key '%s' can only be set by the administrator in plugstack.conf", key);
	return fail(err, errlen, "unknown key '%s' (known: %s)", key,
		    src == FROM_CONF ? "default, runtime_dir, startup_timeout, transport, node_timeout, libexec_dir"
				     : "startup_timeout, transport, node_timeout");
}

int dragon_spank_parse_conf(struct dragon_spank_opts *o, int argc, char *const argv[], char *err,
			    size_t errlen)
{
	for (int i = 0; i < argc; i++) {
		char *kv = strdup(argv[i] ? argv[i] : "");
		int rc;

		if (!kv)
			return fail(err, errlen, "out of memory");
		rc = apply(o, kv, FROM_CONF, err, errlen);
		free(kv);
		if (rc != DRAGON_OK)
			return rc;
	}
	return DRAGON_OK;
}

int dragon_spank_parse_option(struct dragon_spank_opts *o, const char *value, char *err, size_t errlen)
{
	int rv = DRAGON_EINVAL;
	char *copy = NULL, *save = NULL, *kv;
	struct dragon_spank_opts tmp = *o;

	if (value && *value) {
		copy = strdup(value);
		if (!copy) {
			rv = fail(err, errlen, "out of memory");
			goto out;
		}
		/* "a=1,,b=2" and a trailing comma are mistakes worth naming, so split by hand. */
		for (kv = copy;; kv = save + 1) {
			save = strchr(kv, ',');
			if (save)
				*save = '\0';
			if ((rv = apply(&tmp, kv, FROM_OPTION, err, errlen)) != DRAGON_OK)
				goto out;
			if (!save)
				break;
		}
	}
	tmp.on = true;
	*o = tmp;
	rv = DRAGON_OK;
out:
	free(copy);
	return rv;
}

int dragon_spank_parse_env(struct dragon_spank_opts *o, const char *(*get)(const char *, void *),
			   void *arg, char *err, size_t errlen)
{
	static const struct {
		const char *var, *key;
	} keyed[] = {{"DRAGON_STARTUP_TIMEOUT", "startup_timeout"},
		     {"DRAGON_TRANSPORT", "transport"},
		     {"DRAGON_NODE_TIMEOUT", "node_timeout"}};
	struct dragon_spank_opts tmp = *o;
	const char *v = get("DRAGON_ENABLE", arg);
	char kv[DRAGON_SPANK_TRANSPORT_MAX + 64], why[256];

	if (v && *v) {
		if (!strcmp(v, "1") || !strcmp(v, "on") || !strcmp(v, "yes"))
			tmp.on = true;
		else if (!strcmp(v, "0") || !strcmp(v, "off") || !strcmp(v, "no"))
			tmp.on = false;
		else
			return fail(err, errlen, "DRAGON_ENABLE='%s': expected 1/on/yes or 0/off/no", v);
	}
	for (size_t i = 0; i < sizeof(keyed) / sizeof(keyed[0]); i++) {
		if (!(v = get(keyed[i].var, arg)) || !*v)
			continue;
		if ((size_t)snprintf(kv, sizeof(kv), "%s=%s", keyed[i].key, v) >= sizeof(kv))
			return fail(err, errlen, "%s is too long", keyed[i].var);
		if (apply(&tmp, kv, FROM_OPTION, why, sizeof(why)) != DRAGON_OK)
			return fail(err, errlen, "%s: %s", keyed[i].var, why);
	}
	*o = tmp;
	return DRAGON_OK;
}

int dragon_spank_opts_format(const struct dragon_spank_opts *o, char *buf, size_t len)
{
	char nt[32] = "";
	int n;

	if (o->node_timeout_ms) {
		memcpy(nt, ",node_timeout=", 15);
		dragon_spank_format_seconds(o->node_timeout_ms, nt + 14, sizeof(nt) - 14);
	}
	n = snprintf(buf, len, "transport=%s,startup_timeout=%u%s", o->transport, o->startup_timeout, nt);

	if (n < 0 || (size_t)n >= len)
		return DRAGON_ETOOBIG;
	return DRAGON_OK;
}
