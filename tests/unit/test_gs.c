/* tests/unit/test_gs.c: global services: names, lookups that wait, lifetimes, groups, bad requests; queues and sync objects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dragon/dragon.h>
#include "core/err.h"
#include "test_ls_fixture.h"

#include <pthread.h>

static char self[4096];

static int setup(void **state)
{
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	(void)state;
	if (n <= 0)
		return -1;
	self[n] = 0;
	if (fx_start())
		return -1;
	return dragon_init() == DRAGON_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	dragon_finalize();
	fx_stop();
	return 0;
}

static void names_register_lookup_remove(void **state)
{
	char buf[16];
	size_t len = sizeof(buf);
	enum dragon_name_kind kind;

	(void)state;
	assert_int_equal(dragon_name_register("unit.a", DRAGON_NAME_USER, "hello", 6, 0), DRAGON_OK);
	assert_int_equal(dragon_name_register("unit.a", DRAGON_NAME_USER, "x", 1, 0), DRAGON_EEXIST);
	assert_int_equal(dragon_name_lookup("unit.a", 0, &kind, buf, &len), DRAGON_OK);
	assert_int_equal(len, 6);
	assert_int_equal(kind, DRAGON_NAME_USER);
	assert_string_equal(buf, "hello");
	len = 2;
	assert_int_equal(dragon_name_lookup("unit.a", 0, NULL, buf, &len), DRAGON_ETOOBIG);
	assert_int_equal(len, 6);
	assert_int_equal(dragon_name_remove("unit.a"), DRAGON_OK);
	assert_int_equal(dragon_name_remove("unit.a"), DRAGON_ENOTFOUND);
	len = sizeof(buf);
	assert_int_equal(dragon_name_lookup("unit.a", 0, NULL, buf, &len), DRAGON_ENOTFOUND);
	assert_int_equal(dragon_name_lookup("unit.a", 50, NULL, buf, &len), DRAGON_ETIMEDOUT);
}

static void bad_names_are_refused(void **state)
{
	char longname[300], *big = calloc(1, 5000);
	size_t len = 0;

	(void)state;
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(dragon_name_register("", DRAGON_NAME_USER, "x", 1, 0), DRAGON_EINVAL);
	assert_int_equal(dragon_name_register(longname, DRAGON_NAME_USER, "x", 1, 0), DRAGON_EINVAL);
	assert_int_equal(dragon_name_register("unit.big", DRAGON_NAME_USER, big, 5000, 0),
			 DRAGON_ETOOBIG);
	assert_int_equal(dragon_name_lookup("", 0, NULL, NULL, &len), DRAGON_EINVAL);
	assert_int_equal(dragon_name_register(NULL, DRAGON_NAME_USER, "x", 1, 0), DRAGON_EINVAL);
	free(big);
}

/* Helper mode of this binary: register a name (with or without outlive) and exit. */
static int helper(int argc, char **argv)
{
	int rc;

	if (dragon_init())
		return 10;
	if (argc > 3)
		usleep((useconds_t)atoi(argv[3]) * 1000);
	rc = dragon_name_register(argv[2], DRAGON_NAME_USER, "from-helper", 12,
				  strstr(argv[2], "keep") ? DRAGON_NAME_OUTLIVE : 0);
	dragon_finalize();
	return rc;
}

/* Helper mode: after a pause, put one message into a named queue. */
static int helper_qput(int argc, char **argv)
{
	dragon_queue_t *q;
	int rc;

	if (dragon_init())
		return 10;
	if (argc > 3)
		usleep((useconds_t)atoi(argv[3]) * 1000);
	if ((rc = dragon_queue_attach(argv[2], 5000, &q)))
		return rc;
	rc = dragon_queue_put(q, "from-helper", 12, 5000);
	dragon_queue_detach(q);
	dragon_finalize();
	return rc;
}

/* Helper mode: 5 rounds of a barrier; a shared counter checks nobody runs ahead. */
static int helper_barrier(char **argv)
{
	dragon_barrier_t *b;
	int rc;

	if (dragon_init())
		return 10;
	if ((rc = dragon_barrier_attach(argv[2], 5000, &b)))
		return rc;
	for (int round = 0; round < 5; round++) {
		/* Unequal pace: the fast ones must wait. */
		usleep((useconds_t)(dragon_group_rank() * 3000));
		if ((rc = dragon_barrier_wait(b, 5000)))
			return 20 + rc;
	}
	dragon_barrier_detach(b);
	dragon_finalize();
	return 0;
}

static void a_lookup_waits_for_another_process_to_register(void **state)
{
	const char *argv[] = {self, "register", "unit.later.keep", "100", NULL};
	dragon_puid_t p;
	char buf[32];
	size_t len = sizeof(buf);
	int st = -1;

	(void)state;
	assert_int_equal(dragon_process_create(argv, NULL, &p), DRAGON_OK);
	assert_int_equal(dragon_name_lookup("unit.later.keep", 5000, NULL, buf, &len), DRAGON_OK);
	assert_string_equal(buf, "from-helper");
	assert_int_equal(dragon_process_wait(p, 5000, &st), DRAGON_OK);
	assert_int_equal(st, 0);
	/* outlive: still there after the registering process is gone */
	len = sizeof(buf);
	assert_int_equal(dragon_name_lookup("unit.later.keep", 0, NULL, buf, &len), DRAGON_OK);
}

static void a_name_goes_with_its_process_unless_outlive(void **state)
{
	const char *argv[] = {self, "register", "unit.transient", NULL};
	dragon_puid_t p;
	char buf[32];
	size_t len = sizeof(buf);
	int st = -1;

	(void)state;
	assert_int_equal(dragon_process_create(argv, NULL, &p), DRAGON_OK);
	assert_int_equal(dragon_process_wait(p, 5000, &st), DRAGON_OK);
	assert_int_equal(st, 0);
	assert_int_equal(dragon_name_lookup("unit.transient", 0, NULL, buf, &len), DRAGON_ENOTFOUND);
}

static void a_group_knows_ranks_and_reports_all(void **state)
{
	const char *argv[] = {"sh", "-c", "test $DRAGON_GROUP_SIZE = 4 && exit $DRAGON_GROUP_RANK", NULL};
	dragon_gid_t gid;
	dragon_puid_t p;
	int worst = -1, st = -1;
	uint8_t desc[8];
	size_t len = sizeof(desc);
	uint64_t named = 0;

	(void)state;
	assert_int_equal(dragon_group_create(argv, 4, DRAGON_POLICY_BLOCK, 0, NULL, "unit.grp", &gid),
			 DRAGON_OK);
	assert_int_equal(dragon_name_lookup("unit.grp", 0, NULL, desc, &len), DRAGON_OK);
	for (int i = 0; i < 8; i++)
		named |= (uint64_t)desc[i] << (8 * i);
	assert_int_equal(named, gid);
	assert_int_equal(dragon_group_wait_all(gid, 5000, &worst), DRAGON_OK);
	assert_int_equal(worst, 3);
	/* Each wait-any reports one member, none twice and none lost, then there are no more. */
	unsigned seen = 0;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(dragon_group_wait_any(gid, 0, &p, &st), DRAGON_OK);
		assert_true(st >= 0 && st <= 3);
		assert_false(seen & (1u << st));
		seen |= 1u << st;
	}
	assert_int_equal(seen, 0xfu);
	assert_int_equal(dragon_group_wait_any(gid, 0, &p, &st), DRAGON_ENOTFOUND);
}

static void a_group_is_signalled_as_one(void **state)
{
	const char *argv[] = {"sleep", "30", NULL};
	dragon_gid_t gid;
	int worst = -1;

	(void)state;
	assert_int_equal(dragon_group_create(argv, 3, DRAGON_POLICY_ROUND_ROBIN, 0, NULL, NULL, &gid),
			 DRAGON_OK);
	assert_int_equal(dragon_group_wait_all(gid, 0, &worst), DRAGON_ETIMEDOUT);
	assert_int_equal(dragon_group_signal(gid, SIGTERM), DRAGON_OK);
	assert_int_equal(dragon_group_wait_all(gid, 5000, &worst), DRAGON_OK);
	assert_int_equal(worst, 128 + SIGTERM);
}

static void bad_group_requests_get_errors(void **state)
{
	const char *ok[] = {"true", NULL};
	const char *missing[] = {"no-such-program-anywhere", NULL};
	dragon_gid_t gid;
	dragon_puid_t p;
	int st;

	(void)state;
	assert_int_equal(dragon_group_create(ok, 0, DRAGON_POLICY_BLOCK, 0, NULL, NULL, &gid),
			 DRAGON_EINVAL);
	assert_int_equal(dragon_group_create(ok, 100000, DRAGON_POLICY_BLOCK, 0, NULL, NULL, &gid),
			 DRAGON_EINVAL);
	assert_int_equal(dragon_group_create(ok, 2, DRAGON_POLICY_NODE, 3, NULL, NULL, &gid),
			 DRAGON_EINVAL);
	assert_non_null(strstr(dragon_errmsg(), "node 3"));
	assert_int_equal(dragon_group_create(ok, 2, (enum dragon_policy)9, 0, NULL, NULL, &gid),
			 DRAGON_EINVAL);
	assert_int_equal(dragon_group_create(missing, 2, DRAGON_POLICY_BLOCK, 0, NULL, NULL, &gid),
			 DRAGON_ENOTFOUND);
	assert_non_null(strstr(dragon_errmsg(), "rank 0"));
	assert_int_equal(dragon_group_wait_all(987654, 0, &st), DRAGON_ENOTFOUND);
	assert_int_equal(dragon_group_wait_any(987654, 0, &p, &st), DRAGON_ENOTFOUND);
	assert_int_equal(dragon_group_signal(987654, SIGTERM), DRAGON_ENOTFOUND);
	assert_int_equal(dragon_group_signal(0, SIGTERM), DRAGON_EINVAL);
}


static void queues_are_fifo_bounded_and_checked(void **state)
{
	dragon_queue_t *q, *q2;
	char buf[16];
	size_t len;
	int v;

	(void)state;
	assert_int_equal(dragon_queue_create("unit.q", 0, 8, 0, &q), DRAGON_EINVAL);
	assert_int_equal(dragon_queue_create("unit.q", 2, 100000, 0, &q), DRAGON_EINVAL);
	assert_int_equal(dragon_queue_create("unit.q", 2, 8, 0, &q), DRAGON_OK);
	assert_int_equal(dragon_queue_create("unit.q", 2, 8, 0, &q2), DRAGON_EEXIST);
	len = sizeof(buf);
	assert_int_equal(dragon_queue_get(q, buf, &len, 0), DRAGON_EAGAIN);
	assert_int_equal(dragon_queue_get(q, buf, &len, 30), DRAGON_ETIMEDOUT);
	assert_int_equal(dragon_queue_put(q, "123456789", 9, 0), DRAGON_ETOOBIG);
	v = 1;
	assert_int_equal(dragon_queue_put(q, &v, sizeof(v), 0), DRAGON_OK);
	v = 2;
	assert_int_equal(dragon_queue_put(q, &v, sizeof(v), 0), DRAGON_OK);
	assert_int_equal(dragon_queue_put(q, &v, sizeof(v), 0), DRAGON_EAGAIN);
	assert_int_equal(dragon_queue_put(q, &v, sizeof(v), 30), DRAGON_ETIMEDOUT);
	assert_int_equal(dragon_queue_attach("unit.q", 0, &q2), DRAGON_OK);
	len = sizeof(v);
	assert_int_equal(dragon_queue_get(q2, &v, &len, 0), DRAGON_OK);
	assert_int_equal(v, 1);
	len = 2;
	assert_int_equal(dragon_queue_get(q2, &v, &len, 0), DRAGON_ETOOBIG);
	assert_int_equal(len, sizeof(int));
	assert_int_equal(dragon_queue_destroy(q), DRAGON_OK);
	len = sizeof(v);
	assert_int_equal(dragon_queue_get(q2, &v, &len, 0), DRAGON_ESTALE);
	dragon_queue_detach(q2);
	assert_int_equal(dragon_queue_attach("unit.q", 0, &q2), DRAGON_ENOTFOUND);
	assert_int_equal(dragon_queue_attach("unit.later.keep", 0, &q2), DRAGON_EINVAL);
}

static void a_blocked_get_is_served_by_another_process(void **state)
{
	const char *argv[] = {self, "qput", "unit.q2", "50", NULL};
	dragon_queue_t *q;
	dragon_puid_t p;
	char buf[32];
	size_t len = sizeof(buf);
	int st = -1;

	(void)state;
	assert_int_equal(dragon_queue_create("unit.q2", 1, 32, 0, &q), DRAGON_OK);
	assert_int_equal(dragon_process_create(argv, NULL, &p), DRAGON_OK);
	assert_int_equal(dragon_queue_get(q, buf, &len, 5000), DRAGON_OK);
	assert_string_equal(buf, "from-helper");
	assert_int_equal(dragon_process_wait(p, 5000, &st), DRAGON_OK);
	assert_int_equal(st, 0);
	dragon_queue_destroy(q);
}

static void semaphore_lock_and_event(void **state)
{
	dragon_sem_t *s;
	dragon_lock_t *l, *l2;
	dragon_event_t *e;

	(void)state;
	assert_int_equal(dragon_sem_create("unit.sem", 3, 2, 0, &s), DRAGON_EINVAL);
	assert_int_equal(dragon_sem_create("unit.sem", 1, 2, 0, &s), DRAGON_OK);
	assert_int_equal(dragon_sem_acquire(s, 0), DRAGON_OK);
	assert_int_equal(dragon_sem_acquire(s, 0), DRAGON_EAGAIN);
	assert_int_equal(dragon_sem_release(s), DRAGON_OK);
	assert_int_equal(dragon_sem_release(s), DRAGON_OK);
	assert_int_equal(dragon_sem_release(s), DRAGON_ENOSPACE);
	assert_int_equal(dragon_sem_destroy(s), DRAGON_OK);
	assert_int_equal(dragon_lock_create("unit.lock", 0, &l), DRAGON_OK);
	assert_int_equal(dragon_lock_attach("unit.lock", 0, &l2), DRAGON_OK);
	assert_int_equal(dragon_lock_acquire(l, 0), DRAGON_OK);
	assert_int_equal(dragon_lock_acquire(l2, 20), DRAGON_ETIMEDOUT);
	assert_int_equal(dragon_lock_release(l), DRAGON_OK);
	assert_int_equal(dragon_lock_release(l), DRAGON_EINVAL);
	assert_int_equal(dragon_lock_acquire(l2, 0), DRAGON_OK);
	dragon_lock_detach(l2);
	assert_int_equal(dragon_lock_destroy(l), DRAGON_OK);
	assert_int_equal(dragon_event_create("unit.ev", 0, &e), DRAGON_OK);
	assert_int_equal(dragon_event_wait(e, 0), DRAGON_EAGAIN);
	assert_int_equal(dragon_event_set(e), DRAGON_OK);
	assert_int_equal(dragon_event_set(e), DRAGON_OK);
	assert_int_equal(dragon_event_wait(e, 0), DRAGON_OK);
	assert_int_equal(dragon_event_wait(e, 0), DRAGON_OK);
	assert_int_equal(dragon_event_clear(e), DRAGON_OK);
	assert_int_equal(dragon_event_wait(e, 20), DRAGON_ETIMEDOUT);
	assert_int_equal(dragon_event_destroy(e), DRAGON_OK);
}

static void a_barrier_holds_a_group_together_for_several_rounds(void **state)
{
	const char *argv[] = {self, "barrier", "unit.bar", NULL};
	dragon_barrier_t *b;
	dragon_gid_t gid;
	int worst = -1;

	(void)state;
	assert_int_equal(dragon_barrier_create("unit.bar", 1, 0, &b), DRAGON_EINVAL);
	assert_int_equal(dragon_barrier_create("unit.bar", 3, 0, &b), DRAGON_OK);
	assert_int_equal(dragon_group_create(argv, 3, DRAGON_POLICY_BLOCK, 0, NULL, NULL, &gid),
			 DRAGON_OK);
	assert_int_equal(dragon_group_wait_all(gid, 10000, &worst), DRAGON_OK);
	assert_int_equal(worst, 0);
	assert_int_equal(dragon_barrier_destroy(b), DRAGON_OK);
}

static void *getter(void *arg)
{
	char buf[16];
	size_t len = sizeof(buf);
	static int rc;

	rc = dragon_queue_get(arg, buf, &len, 5000);
	if (!rc && strcmp(buf, "t"))
		rc = -1;
	return &rc;
}

static void a_thread_blocked_in_a_call_does_not_block_the_others(void **state)
{
	dragon_queue_t *q;
	pthread_t t;
	void *res;

	(void)state;
	assert_int_equal(dragon_queue_create(NULL, 1, 16, 0, &q), DRAGON_OK);
	assert_int_equal(pthread_create(&t, NULL, getter, q), 0);
	usleep(50000); /* the getter waits on the queue's channel by now */
	assert_int_equal(dragon_queue_put(q, "t", 2, 1000), DRAGON_OK);
	assert_int_equal(pthread_join(t, &res), 0);
	assert_int_equal(*(int *)res, 0);
	assert_int_equal(dragon_queue_destroy(q), DRAGON_OK);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_register_lookup_remove),
		cmocka_unit_test(bad_names_are_refused),
		cmocka_unit_test(a_lookup_waits_for_another_process_to_register),
		cmocka_unit_test(a_name_goes_with_its_process_unless_outlive),
		cmocka_unit_test(a_group_knows_ranks_and_reports_all),
		cmocka_unit_test(a_group_is_signalled_as_one),
		cmocka_unit_test(bad_group_requests_get_errors),
		cmocka_unit_test(queues_are_fifo_bounded_and_checked),
		cmocka_unit_test(a_blocked_get_is_served_by_another_process),
		cmocka_unit_test(semaphore_lock_and_event),
		cmocka_unit_test(a_barrier_holds_a_group_together_for_several_rounds),
		cmocka_unit_test(a_thread_blocked_in_a_call_does_not_block_the_others),
	};

	if (argc > 2 && !strcmp(argv[1], "register"))
		return helper(argc, argv);
	if (argc > 2 && !strcmp(argv[1], "qput"))
		return helper_qput(argc, argv);
	if (argc > 2 && !strcmp(argv[1], "barrier"))
		return helper_barrier(argv);
	return cmocka_run_group_tests(tests, setup, teardown);
}
