/* spank/test_options.c: unit tests of the plugin's key=value parser (plugstack.conf arguments and --dragon values). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <dragon/error.h>
#include "options.h"

static void defaults_are_off_run_dragon_30s_tcp(void **state)
{
	struct dragon_spank_opts o;

	(void)state;
	dragon_spank_opts_init(&o);
	assert_false(o.on);
	assert_string_equal(o.runtime_dir, "/run/dragon");
	assert_int_equal(o.startup_timeout, 30);
	assert_string_equal(o.transport, "tcp;ofi_rxm");
}

static void conf_sets_every_key(void **state)
{
	struct dragon_spank_opts o;
	char err[256] = "";
	char *argv[] = {"default=on", "runtime_dir=/var/run/dg", "startup_timeout=5", "transport=verbs;ofi_rxm",
			"libexec_dir=/opt/dragon/libexec"};

	(void)state;
	dragon_spank_opts_init(&o);
	assert_string_equal(o.libexec_dir, "");
	assert_int_equal(dragon_spank_parse_conf(&o, 5, argv, err, sizeof(err)), DRAGON_OK);
	assert_true(o.on);
	assert_string_equal(o.libexec_dir, "/opt/dragon/libexec");
	assert_string_equal(o.runtime_dir, "/var/run/dg");
	assert_int_equal(o.startup_timeout, 5);
	assert_string_equal(o.transport, "verbs;ofi_rxm");
	char *off[] = {"default=off"};
	assert_int_equal(dragon_spank_parse_conf(&o, 1, off, err, sizeof(err)), DRAGON_OK);
	assert_false(o.on);
}

static void conf_unknown_key_is_named(void **state)
{
	struct dragon_spank_opts o;
	char err[256] = "";
	char *argv[] = {"transport=tcp", "sbatch_supprt=yes"};

	(void)state;
	dragon_spank_opts_init(&o);
	assert_int_equal(dragon_spank_parse_conf(&o, 2, argv, err, sizeof(err)), DRAGON_EINVAL);
	assert_non_null(strstr(err, "unknown key 'sbatch_supprt'"));
}

static void conf_bad_values_are_errors(void **state)
{
	const char *bad[] = {"default=yes", "default=", "runtime_dir=relative", "runtime_dir=/a/../b",
			     "runtime_dir=/a/..", "libexec_dir=bin", "libexec_dir=", "startup_timeout=0", "startup_timeout=3601",
			     "startup_timeout=5s", "startup_timeout=", "startup_timeout=-1",
			     "startup_timeout=99999999999999999999", "transport=", "transport=tcp ofi",
			     "transport=$(reboot)", "noequals", "=value", ""};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dragon_spank_opts o;
		char err[256] = "";
		char *argv[] = {(char *)bad[i]};

		dragon_spank_opts_init(&o);
		assert_int_equal(dragon_spank_parse_conf(&o, 1, argv, err, sizeof(err)), DRAGON_EINVAL);
		assert_true(strlen(err) > 0);
		/* A failed argument leaves the defaults alone. */
		assert_int_equal(o.startup_timeout, 30);
	}
}

static void conf_long_runtime_dir_is_rejected_not_truncated(void **state)
{
	struct dragon_spank_opts o;
	char err[256] = "", arg[400];
	char *argv[] = {arg};

	(void)state;
	memset(arg, 'a', sizeof(arg) - 1);
	arg[sizeof(arg) - 1] = '\0';
	memcpy(arg, "runtime_dir=/", 13);
	dragon_spank_opts_init(&o);
	assert_int_equal(dragon_spank_parse_conf(&o, 1, argv, err, sizeof(err)), DRAGON_EINVAL);
	assert_string_equal(o.runtime_dir, "/run/dragon");
}

static void option_without_value_enables(void **state)
{
	struct dragon_spank_opts o;
	char err[64];

	(void)state;
	dragon_spank_opts_init(&o);
	assert_int_equal(dragon_spank_parse_option(&o, NULL, err, sizeof(err)), DRAGON_OK);
	assert_true(o.on);
	dragon_spank_opts_init(&o);
	assert_int_equal(dragon_spank_parse_option(&o, "", err, sizeof(err)), DRAGON_OK);
	assert_true(o.on);
}

static void option_sets_user_keys(void **state)
{
	struct dragon_spank_opts o;
	char err[64], buf[128];

	(void)state;
	dragon_spank_opts_init(&o);
	assert_int_equal(dragon_spank_parse_option(&o, "startup_timeout=7,transport=shm", err, sizeof(err)),
			 DRAGON_OK);
	assert_true(o.on);
	assert_int_equal(o.startup_timeout, 7);
	assert_string_equal(o.transport, "shm");
	assert_int_equal(dragon_spank_opts_format(&o, buf, sizeof(buf)), DRAGON_OK);
	assert_string_equal(buf, "transport=shm,startup_timeout=7");
	assert_int_equal(dragon_spank_opts_format(&o, buf, 8), DRAGON_ETOOBIG);
}

static void option_unknown_key_is_named_and_changes_nothing(void **state)
{
	struct dragon_spank_opts o;
	char err[256] = "";

	(void)state;
	dragon_spank_opts_init(&o);
	assert_int_equal(dragon_spank_parse_option(&o, "transport=shm,bogus=1", err, sizeof(err)), DRAGON_EINVAL);
	assert_non_null(strstr(err, "unknown key 'bogus'"));
	assert_false(o.on);
	assert_string_equal(o.transport, "tcp;ofi_rxm");
}

static void option_cannot_set_admin_keys(void **state)
{
	struct dragon_spank_opts o;
	char err[256] = "";

	(void)state;
	dragon_spank_opts_init(&o);
	assert_int_equal(dragon_spank_parse_option(&o, "runtime_dir=/tmp/x", err, sizeof(err)), DRAGON_EINVAL);
	assert_non_null(strstr(err, "runtime_dir"));
	assert_int_equal(dragon_spank_parse_option(&o, "default=on", err, sizeof(err)), DRAGON_EINVAL);
	assert_non_null(strstr(err, "default"));
	/* A user picks the programs the fabric runs only through DRAGON_LIBEXECDIR (as themselves). */
	assert_int_equal(dragon_spank_parse_option(&o, "libexec_dir=/home/x", err, sizeof(err)), DRAGON_EINVAL);
	assert_non_null(strstr(err, "only be set by the administrator"));
	assert_string_equal(o.runtime_dir, "/run/dragon");
}

static void option_empty_items_are_errors(void **state)
{
	const char *bad[] = {",", "transport=shm,", ",transport=shm", "transport=shm,,startup_timeout=3", "on"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dragon_spank_opts o;
		char err[256] = "";

		dragon_spank_opts_init(&o);
		assert_int_equal(dragon_spank_parse_option(&o, bad[i], err, sizeof(err)), DRAGON_EINVAL);
		assert_true(strlen(err) > 0);
	}
}

static void small_error_buffer_is_safe(void **state)
{
	struct dragon_spank_opts o;
	char err[4];

	(void)state;
	dragon_spank_opts_init(&o);
	assert_int_equal(dragon_spank_parse_option(&o, "bogus=1", err, sizeof(err)), DRAGON_EINVAL);
	assert_int_equal(strlen(err), 3);
	assert_int_equal(dragon_spank_parse_option(&o, "bogus=1", NULL, 0), DRAGON_EINVAL);
}

/* A fake environment: "NAME=value" strings. */
static const char *fake_get(const char *name, void *arg)
{
	for (const char *const *e = arg; *e; e++) {
		size_t n = strlen(name);
		if (!strncmp(*e, name, n) && (*e)[n] == '=')
			return *e + n + 1;
	}
	return NULL;
}

static void env_enables_and_sets_keys_and_option_wins(void **state)
{
	const char *env[] = {"DRAGON_ENABLE=1", "DRAGON_STARTUP_TIMEOUT=45", "DRAGON_TRANSPORT=verbs;ofi_rxm",
			     NULL};
	struct dragon_spank_opts o;
	char err[256];

	(void)state;
	dragon_spank_opts_init(&o);
	assert_int_equal(dragon_spank_parse_env(&o, fake_get, env, err, sizeof(err)), DRAGON_OK);
	assert_true(o.on);
	assert_int_equal(o.startup_timeout, 45);
	assert_string_equal(o.transport, "verbs;ofi_rxm");
	/* --dragon is applied after the environment and wins. */
	assert_int_equal(dragon_spank_parse_option(&o, "startup_timeout=5", err, sizeof(err)), DRAGON_OK);
	assert_int_equal(o.startup_timeout, 5);
}

static void env_without_variables_changes_nothing(void **state)
{
	const char *env[] = {"PATH=/bin", NULL};
	struct dragon_spank_opts o, before;
	char err[256];

	(void)state;
	dragon_spank_opts_init(&o);
	before = o;
	assert_int_equal(dragon_spank_parse_env(&o, fake_get, env, err, sizeof(err)), DRAGON_OK);
	assert_memory_equal(&o, &before, sizeof(o));
}

static void env_bad_values_name_the_variable_and_change_nothing(void **state)
{
	const char *bad_enable[] = {"DRAGON_ENABLE=maybe", NULL};
	const char *bad_timeout[] = {"DRAGON_ENABLE=1", "DRAGON_STARTUP_TIMEOUT=soon", NULL};
	const char *bad_transport[] = {"DRAGON_TRANSPORT=tcp rxm", NULL};
	struct dragon_spank_opts o, before;
	char err[256];

	(void)state;
	dragon_spank_opts_init(&o);
	before = o;
	assert_int_equal(dragon_spank_parse_env(&o, fake_get, bad_enable, err, sizeof(err)), DRAGON_EINVAL);
	assert_non_null(strstr(err, "DRAGON_ENABLE"));
	assert_int_equal(dragon_spank_parse_env(&o, fake_get, bad_timeout, err, sizeof(err)), DRAGON_EINVAL);
	assert_non_null(strstr(err, "DRAGON_STARTUP_TIMEOUT"));
	assert_int_equal(dragon_spank_parse_env(&o, fake_get, bad_transport, err, sizeof(err)), DRAGON_EINVAL);
	assert_non_null(strstr(err, "DRAGON_TRANSPORT"));
	assert_memory_equal(&o, &before, sizeof(o));
}

/* node_timeout: seconds with up to three decimals, 0.1 to 3600, from every source; the fabric
 * step gets it back as seconds. */
static void node_timeout_is_seconds_with_fractions(void **state)
{
	const struct {
		const char *v;
		unsigned ms;
		const char *shown;
	} good[] = {{"5", 5000, "5"},	  {"2.5", 2500, "2.5"},	     {"0.1", 100, "0.1"},
		    {"0.25", 250, "0.25"}, {"1.005", 1005, "1.005"}, {"3600", 3600000, "3600"},
		    {"010", 10000, "10"},  {"3600.000", 3600000, "3600"}};
	const char *bad[] = {"0",   "0.09", "3600.001", "5s",  "",	  "-1",	  ".5",	  "5.",	  "1.0001",
			     "1e3", "inf",  "nan",      "0x10", " 5", "5 ", "+5", "99999999999", "1;5"};
	char err[256], kv[64], buf[128], shown[16];
	char *argv[1] = {kv};
	struct dragon_spank_opts o;

	(void)state;
	dragon_spank_opts_init(&o);
	assert_int_equal(o.node_timeout_ms, 0);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		dragon_spank_opts_init(&o);
		snprintf(kv, sizeof(kv), "node_timeout=%s", good[i].v);
		assert_int_equal(dragon_spank_parse_option(&o, kv, err, sizeof(err)), DRAGON_OK);
		assert_int_equal(o.node_timeout_ms, good[i].ms);
		dragon_spank_format_seconds(o.node_timeout_ms, shown, sizeof(shown));
		assert_string_equal(shown, good[i].shown);
		dragon_spank_opts_init(&o);
		assert_int_equal(dragon_spank_parse_conf(&o, 1, argv, err, sizeof(err)), DRAGON_OK);
		assert_int_equal(o.node_timeout_ms, good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dragon_spank_opts_init(&o);
		snprintf(kv, sizeof(kv), "node_timeout=%s", bad[i]);
		err[0] = 0;
		assert_int_equal(dragon_spank_parse_option(&o, kv, err, sizeof(err)), DRAGON_EINVAL);
		assert_non_null(strstr(err, "node_timeout="));
		assert_non_null(strstr(err, "seconds from 0.1 to 3600"));
		assert_int_equal(dragon_spank_parse_conf(&o, 1, argv, err, sizeof(err)), DRAGON_EINVAL);
		assert_int_equal(o.node_timeout_ms, 0);
	}
	/* The environment's, then --dragon's; the tasks see it in DRAGON_SPANK_OPTIONS. */
	{
		const char *env[] = {"DRAGON_NODE_TIMEOUT=7.5", NULL};
		const char *bad_env[] = {"DRAGON_NODE_TIMEOUT=soon", NULL};

		dragon_spank_opts_init(&o);
		assert_int_equal(dragon_spank_parse_env(&o, fake_get, env, err, sizeof(err)), DRAGON_OK);
		assert_int_equal(o.node_timeout_ms, 7500);
		assert_int_equal(dragon_spank_opts_format(&o, buf, sizeof(buf)), DRAGON_OK);
		assert_string_equal(buf, "transport=tcp;ofi_rxm,startup_timeout=30,node_timeout=7.5");
		assert_int_equal(dragon_spank_parse_option(&o, "node_timeout=3", err, sizeof(err)), DRAGON_OK);
		assert_int_equal(o.node_timeout_ms, 3000);
		assert_int_equal(dragon_spank_parse_env(&o, fake_get, bad_env, err, sizeof(err)), DRAGON_EINVAL);
		assert_non_null(strstr(err, "DRAGON_NODE_TIMEOUT: node_timeout='soon'"));
		assert_int_equal(o.node_timeout_ms, 3000);
	}
	/* The longest settings still fit the tasks' environment buffer (remote.c's size). */
	{
		char big[DRAGON_SPANK_TRANSPORT_MAX + 64];

		dragon_spank_opts_init(&o);
		memset(o.transport, 'x', DRAGON_SPANK_TRANSPORT_MAX);
		o.transport[DRAGON_SPANK_TRANSPORT_MAX] = 0;
		o.startup_timeout = DRAGON_SPANK_TIMEOUT_MAX;
		o.node_timeout_ms = 1234567;
		assert_int_equal(dragon_spank_opts_format(&o, big, sizeof(big)), DRAGON_OK);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_are_off_run_dragon_30s_tcp),
		cmocka_unit_test(conf_sets_every_key),
		cmocka_unit_test(conf_unknown_key_is_named),
		cmocka_unit_test(conf_bad_values_are_errors),
		cmocka_unit_test(conf_long_runtime_dir_is_rejected_not_truncated),
		cmocka_unit_test(option_without_value_enables),
		cmocka_unit_test(option_sets_user_keys),
		cmocka_unit_test(option_unknown_key_is_named_and_changes_nothing),
		cmocka_unit_test(option_cannot_set_admin_keys),
		cmocka_unit_test(option_empty_items_are_errors),
		cmocka_unit_test(small_error_buffer_is_safe),
		cmocka_unit_test(env_enables_and_sets_keys_and_option_wins),
		cmocka_unit_test(env_without_variables_changes_nothing),
		cmocka_unit_test(env_bad_values_name_the_variable_and_change_nothing),
		cmocka_unit_test(node_timeout_is_seconds_with_fractions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
