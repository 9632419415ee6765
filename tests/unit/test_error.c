/* tests/unit/test_error.c: unit tests of the return-code convention (dragon_strerror, dragon_errmsg) and of bounded numeric settings (core/env.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include <dragon/dragon.h>
#include "core/env.h"
#include "core/err.h"
#include <stdlib.h>

static void every_code_has_a_distinct_name(void **state)
{
	(void)state;
	for (int i = 0; i < DRAGON_ERR_MAX; i++) {
		const char *a = dragon_strerror(i);
		assert_non_null(a);
		assert_null(strstr(a, "unknown"));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(a, dragon_strerror(j));
	}
}

static void out_of_range_is_unknown_not_a_crash(void **state)
{
	(void)state;
	assert_non_null(strstr(dragon_strerror(-1), "unknown"));
	assert_non_null(strstr(dragon_strerror(DRAGON_ERR_MAX), "unknown"));
	assert_non_null(strstr(dragon_strerror(1 << 30), "unknown"));
}

/* Numeric settings: a whole number in range, else the default (no sign, no space, no suffix). */
static void env_numbers_are_bounded(void **state)
{
	(void)state;
	assert_int_equal(dg_parse_ulong("42", 7, 1, 100), 42);
	assert_int_equal(dg_parse_ulong(NULL, 7, 1, 100), 7);
	assert_int_equal(dg_parse_ulong("", 7, 1, 100), 7);
	assert_int_equal(dg_parse_ulong("0", 7, 1, 100), 7);
	assert_int_equal(dg_parse_ulong("101", 7, 1, 100), 7);
	assert_int_equal(dg_parse_ulong("-1", 7, 0, 100), 7);
	assert_int_equal(dg_parse_ulong(" 5", 7, 0, 100), 7);
	assert_int_equal(dg_parse_ulong("5s", 7, 0, 100), 7);
	assert_int_equal(dg_parse_ulong("99999999999999999999999", 7, 0, ~0UL), 7);
	/* DRAGON_STARTUP_TIMEOUT=3000000 made LS, the agent and the launcher multiply past INT_MAX
	 * (undefined behaviour; a negative wait in practice): now out of range, the default. */
	setenv("DRAGON_STARTUP_TIMEOUT", "3000000", 1);
	assert_int_equal(DG_STARTUP_TIMEOUT_MS(), 30000);
	setenv("DRAGON_STARTUP_TIMEOUT", "86400", 1);
	assert_int_equal(DG_STARTUP_TIMEOUT_MS(), 86400000);
	unsetenv("DRAGON_STARTUP_TIMEOUT");
	assert_int_equal(DG_STARTUP_TIMEOUT_MS(), 30000);
}

static void detail_is_recorded_and_rc_returned(void **state)
{
	(void)state;
	assert_int_equal(dg_err(DRAGON_EBADDESC, "descriptor has %d bytes, need %d", 3, 40),
			 DRAGON_EBADDESC);
	assert_string_equal(dragon_errmsg(), "descriptor has 3 bytes, need 40");
}

static void sys_detail_names_errno_and_preserves_it(void **state)
{
	(void)state;
	errno = ENOENT;
	assert_int_equal(dg_err_sys("open %s", "/nonexistent"), DRAGON_ESYS);
	assert_int_equal(errno, ENOENT);
	assert_string_equal(dragon_errmsg(), "open /nonexistent: No such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_code_has_a_distinct_name),
		cmocka_unit_test(out_of_range_is_unknown_not_a_crash),
		cmocka_unit_test(detail_is_recorded_and_rc_returned),
		cmocka_unit_test(env_numbers_are_bounded),
		cmocka_unit_test(sys_detail_names_errno_and_preserves_it),
	};
	return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
