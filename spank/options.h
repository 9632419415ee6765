/* spank/options.h: the plugin's settings and the pure parser of plugstack.conf arguments and --dragon values. */
#ifndef DRAGON_SPANK_OPTIONS_H
#define DRAGON_SPANK_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#define DRAGON_SPANK_RUNTIME_DIR_MAX 200
#define DRAGON_SPANK_TRANSPORT_MAX 64
#define DRAGON_SPANK_TIMEOUT_MAX 3600
/* node_timeout in milliseconds: 0.1 s to 3600 s, as local services accept DRAGON_NODE_TIMEOUT */
#define DRAGON_SPANK_NODE_TIMEOUT_MIN_MS 100u
#define DRAGON_SPANK_NODE_TIMEOUT_MAX_MS 3600000u

struct dragon_spank_opts {
	bool on;              /* the job uses Dragon: --dragon given, or default=on */
	char runtime_dir[DRAGON_SPANK_RUNTIME_DIR_MAX + 1];
	unsigned startup_timeout; /* seconds a task waits for its node's runtime */
	char transport[DRAGON_SPANK_TRANSPORT_MAX + 1];
	char libexec_dir[DRAGON_SPANK_RUNTIME_DIR_MAX + 1]; /* where dragon-ls is; "" = the installed one */
	unsigned node_timeout_ms; /* how long a silent node stays in the fabric; 0 = local services' default (10 s) */
};

/* Fill in the built-in defaults (off, /run/dragon, 30 s, tcp;ofi_rxm). */
void dragon_spank_opts_init(struct dragon_spank_opts *o);

/* Apply plugstack.conf arguments (each "key=value": default, runtime_dir, startup_timeout,
 * transport, node_timeout, libexec_dir). Returns DRAGON_OK, or DRAGON_EINVAL with a message naming the argument in err. */
int dragon_spank_parse_conf(struct dragon_spank_opts *o, int argc, char *const argv[], char *err,
			    size_t errlen);

/* Apply the value of --dragon[=key=value,...] (NULL or "" = just enable; keys startup_timeout,
 * transport and node_timeout) and set o->on. Returns DRAGON_OK, or DRAGON_EINVAL with a message naming the key. */
int dragon_spank_parse_option(struct dragon_spank_opts *o, const char *value, char *err, size_t errlen);

/* Apply the user's environment, read through get(name, arg) (a value is used before the next is read): DRAGON_ENABLE=1|on|yes (as a bare
 * --dragon) or 0|off|no, DRAGON_STARTUP_TIMEOUT, DRAGON_TRANSPORT, DRAGON_NODE_TIMEOUT. Between plugstack.conf and
 * --dragon in precedence. Returns DRAGON_OK, or DRAGON_EINVAL with a message naming the variable. */
int dragon_spank_parse_env(struct dragon_spank_opts *o, const char *(*get)(const char *, void *),
			   void *arg, char *err, size_t errlen);

/* Write the effective settings as "transport=...,startup_timeout=..." (then ",node_timeout=..."
 * when set) into buf. Returns DRAGON_OK,
 * or DRAGON_ETOOBIG when buf is too small. */
int dragon_spank_opts_format(const struct dragon_spank_opts *o, char *buf, size_t len);

/* Seconds of a node timeout in milliseconds as local services read DRAGON_NODE_TIMEOUT ("2.5",
 * "10"): buf of at least 16 bytes. */
void dragon_spank_format_seconds(unsigned ms, char *buf, size_t len);

#endif
