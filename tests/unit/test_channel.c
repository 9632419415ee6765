/* tests/unit/test_channel.c: unit tests of channels: order, sizes, zero copy, timeouts, poll, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <dragon/dragon.h>
#include "core/channel_remote.h"
#include "core/shm.h"

struct fx {
	dragon_pool_t *pool;
	dragon_channel_t *ch;
};

static int setup(void **state)
{
	static struct fx f;
	dragon_pool_attr_t pa = { .size = 8 << 20 };
	dragon_channel_attr_t ca = { .capacity = 8, .block_size = 128 };

	if (dragon_pool_create(&pa, &f.pool) || dragon_channel_create(f.pool, &ca, &f.ch))
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	dragon_channel_destroy(f->ch);
	dragon_pool_destroy(f->pool);
	return 0;
}

static const dragon_wait_t now = { .timeout_us = 0 };

static void fifo_inline_and_large_messages(void **state)
{
	struct fx *f = *state;
	size_t sizes[] = { 0, 1, 127, 128, 129, 4096, 1 << 20 };
	char *buf = malloc(1 << 20), *out = malloc(1 << 20);
	size_t len;

	for (size_t i = 0; i < 7; i++) {
		memset(buf, (int)i + 1, sizes[i]);
		assert_int_equal(dragon_channel_send(f->ch, buf, sizes[i], NULL), DRAGON_OK);
	}
	uint32_t count, cap;
	assert_int_equal(dragon_channel_count(f->ch, &count, &cap), DRAGON_OK);
	assert_int_equal(count, 7);
	assert_int_equal(cap, 8);
	for (size_t i = 0; i < 7; i++) {
		assert_int_equal(dragon_channel_recv(f->ch, out, 1 << 20, &len, NULL), DRAGON_OK);
		assert_int_equal(len, sizes[i]);
		for (size_t j = 0; j < len; j++)
			assert_int_equal((unsigned char)out[j], i + 1);
	}
	/* Large messages went through the pool and came back: nothing is left allocated but the
	 * channel itself. */
	dragon_pool_stats_t st;
	assert_int_equal(dragon_pool_stats(f->pool, &st), DRAGON_OK);
	assert_int_equal(st.allocations, 1);
	free(buf);
	free(out);
}

static void full_and_empty_with_timeouts(void **state)
{
	struct fx *f = *state;
	size_t len;
	char b[8];
	const dragon_wait_t brief = { .timeout_us = 20000 };
	struct timespec t0, t1;

	assert_int_equal(dragon_channel_try_recv(f->ch, b, sizeof(b), &len), DRAGON_EAGAIN);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(dragon_channel_recv(f->ch, b, sizeof(b), &len, &brief), DRAGON_ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	assert_true(us >= 19000);
	for (int i = 0; i < 8; i++)
		assert_int_equal(dragon_channel_try_send(f->ch, &i, sizeof(i)), DRAGON_OK);
	assert_int_equal(dragon_channel_try_send(f->ch, b, 1), DRAGON_EAGAIN);
	for (int m = DRAGON_WAIT_ADAPTIVE; m <= DRAGON_WAIT_IDLE; m++) {
		const dragon_wait_t w = { .timeout_us = 10000, .mode = m };
		assert_int_equal(dragon_channel_send(f->ch, b, 1, &w), DRAGON_ETIMEDOUT);
	}
	for (int i = 0; i < 8; i++) {
		int v;
		assert_int_equal(dragon_channel_recv(f->ch, &v, sizeof(v), &len, &now), DRAGON_OK);
		assert_int_equal(v, i);
	}
}

static void too_small_buffer_keeps_the_message(void **state)
{
	struct fx *f = *state;
	char big[300] = "hello", small[4];
	size_t len = 0;

	assert_int_equal(dragon_channel_send(f->ch, big, sizeof(big), NULL), DRAGON_OK);
	assert_int_equal(dragon_channel_recv(f->ch, small, sizeof(small), &len, &now), DRAGON_ETOOBIG);
	assert_int_equal(len, sizeof(big));
	assert_int_equal(dragon_channel_peek(f->ch, big, sizeof(big), &len), DRAGON_OK);
	assert_string_equal(big, "hello");
	assert_int_equal(dragon_channel_recv(f->ch, big, sizeof(big), &len, &now), DRAGON_OK);
	assert_int_equal(dragon_channel_try_recv(f->ch, big, sizeof(big), &len), DRAGON_EAGAIN);
}

static void zero_copy_transfers_ownership(void **state)
{
	struct fx *f = *state;
	dragon_mem_t m, r;
	void *where;

	assert_int_equal(dragon_pool_alloc(f->pool, 10000, 0, &m), DRAGON_OK);
	where = m.ptr;
	memset(m.ptr, 7, 10000);
	assert_int_equal(dragon_channel_send_mem(f->ch, &m, NULL), DRAGON_OK);
	assert_null(m.ptr);
	assert_int_equal(dragon_channel_recv_mem(f->ch, &r, NULL), DRAGON_OK);
	assert_ptr_equal(r.ptr, where); /* the same bytes, never copied */
	assert_int_equal(r.size, 10000);
	assert_int_equal(((unsigned char *)r.ptr)[9999], 7);
	assert_int_equal(dragon_pool_free(&r), DRAGON_OK);
	/* An inline message received as an allocation is copied into one. */
	assert_int_equal(dragon_channel_send(f->ch, "abc", 4, NULL), DRAGON_OK);
	assert_int_equal(dragon_channel_recv_mem(f->ch, &r, NULL), DRAGON_OK);
	assert_string_equal(r.ptr, "abc");
	assert_int_equal(dragon_pool_free(&r), DRAGON_OK);
	/* An allocation of another pool cannot be sent zero-copy. */
	dragon_pool_t *other;
	dragon_pool_attr_t pa = { .size = 65536 };
	assert_int_equal(dragon_pool_create(&pa, &other), DRAGON_OK);
	assert_int_equal(dragon_pool_alloc(other, 64, 0, &m), DRAGON_OK);
	assert_int_equal(dragon_channel_send_mem(f->ch, &m, NULL), DRAGON_EINVAL);
	assert_int_equal(dragon_pool_free(&m), DRAGON_OK);
	dragon_pool_destroy(other);
}

static void poll_reports_readiness_and_poll_many_wakes(void **state)
{
	struct fx *f = *state;
	dragon_channel_t *second;
	unsigned rev, evs[2] = { DRAGON_POLLIN, DRAGON_POLLIN }, revs[2];
	size_t len;
	char b[16];

	assert_int_equal(dragon_channel_poll(f->ch, DRAGON_POLLIN | DRAGON_POLLOUT, &rev, &now),
			 DRAGON_OK);
	assert_int_equal(rev, DRAGON_POLLOUT);
	assert_int_equal(dragon_channel_create(f->pool, NULL, &second), DRAGON_OK);
	dragon_channel_t *both[2] = { f->ch, second };
	const dragon_wait_t brief = { .timeout_us = 10000 };
	assert_int_equal(dragon_channel_poll_many(both, evs, revs, 2, &brief), DRAGON_ETIMEDOUT);
	pid_t pid = fork();
	if (pid == 0) {
		usleep(30000);
		_exit(dragon_channel_send(second, "x", 1, NULL) ? 1 : 0);
	}
	const dragon_wait_t long_wait = { .timeout_us = 5000000 };
	assert_int_equal(dragon_channel_poll_many(both, evs, revs, 2, &long_wait), DRAGON_OK);
	assert_int_equal(revs[0], 0);
	assert_int_equal(revs[1], DRAGON_POLLIN);
	int status;
	waitpid(pid, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(dragon_channel_recv(second, b, sizeof(b), &len, &now), DRAGON_OK);
	assert_int_equal(dragon_channel_destroy(second), DRAGON_OK);
}

static void blocked_receiver_in_each_mode_wakes_on_send(void **state)
{
	struct fx *f = *state;
	dragon_channel_desc_t d;

	assert_int_equal(dragon_channel_serialize(f->ch, &d), DRAGON_OK);
	for (int m = DRAGON_WAIT_ADAPTIVE; m <= DRAGON_WAIT_IDLE; m++) {
		pid_t pid = fork();
		if (pid == 0) {
			dragon_channel_t *c;
			char b[8];
			size_t len;
			const dragon_wait_t w = { .timeout_us = 5000000, .mode = m };
			if (dragon_channel_attach(&d, &c))
				_exit(2);
			if (dragon_channel_recv(c, b, sizeof(b), &len, &w))
				_exit(3);
			if (dragon_channel_send(c, b, len, NULL)) /* echo */
				_exit(4);
			_exit(0);
		}
		usleep(20000);
		int v = m, back = 0, status;
		size_t len;
		assert_int_equal(dragon_channel_send(f->ch, &v, sizeof(v), NULL), DRAGON_OK);
		waitpid(pid, &status, 0);
		assert_int_equal(WEXITSTATUS(status), 0);
		assert_int_equal(dragon_channel_recv(f->ch, &back, sizeof(back), &len, &now), DRAGON_OK);
		assert_int_equal(back, m);
	}
}

static void destroy_wakes_blocked_and_later_ops_fail(void **state)
{
	dragon_pool_attr_t pa = { .size = 1 << 20 };
	dragon_pool_t *p;
	dragon_channel_t *ch, *again;
	dragon_channel_desc_t d;
	char b[8];
	size_t len;

	assert_int_equal(dragon_pool_create(&pa, &p), DRAGON_OK);
	assert_int_equal(dragon_channel_create(p, NULL, &ch), DRAGON_OK);
	assert_int_equal(dragon_channel_serialize(ch, &d), DRAGON_OK);
	pid_t pid = fork();
	if (pid == 0) {
		dragon_channel_t *c;
		if (dragon_channel_attach(&d, &c))
			_exit(2);
		_exit(dragon_channel_recv(c, b, sizeof(b), &len, NULL) == DRAGON_ECLOSED ? 0 : 3);
	}
	usleep(50000);
	assert_int_equal(dragon_channel_destroy(ch), DRAGON_OK);
	int status;
	waitpid(pid, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_not_equal(dragon_channel_attach(&d, &again), DRAGON_OK);
	dragon_pool_destroy(p);
}

static void remote_channel_without_transport_is_a_clear_error(void **state)
{
	struct fx *f = *state;
	dragon_channel_desc_t d;
	struct dg_desc raw;
	dragon_channel_t *c;

	assert_int_equal(dragon_channel_serialize(f->ch, &d), DRAGON_OK);
	memcpy(&raw, d.bytes, sizeof(raw));
	raw.node = dg_local_node() + 1;
	dg_desc_pack(&raw, d.bytes);
	assert_int_equal(dragon_channel_attach(&d, &c), DRAGON_EPEER);
	assert_non_null(strstr(dragon_errmsg(), "transport agent"));
}

static void garbage_channel_descriptors_are_errors(void **state)
{
	struct fx *f = *state;
	dragon_channel_desc_t d, bad;
	dragon_channel_t *c = NULL;
	unsigned seed = 7;

	assert_int_equal(dragon_channel_serialize(f->ch, &d), DRAGON_OK);
	for (int i = 0; i < DRAGON_DESC_SIZE; i++) {
		bad = d;
		bad.bytes[i] ^= 1;
		assert_int_not_equal(dragon_channel_attach(&bad, &c), DRAGON_OK);
	}
	for (int k = 0; k < 1000; k++) {
		for (int i = 0; i < DRAGON_DESC_SIZE; i++)
			bad.bytes[i] = (unsigned char)rand_r(&seed);
		assert_int_equal(dragon_channel_attach(&bad, &c), DRAGON_EBADDESC);
	}
	/* A well-formed descriptor naming a channel that is not there (wrong id). */
	struct dg_desc raw;
	memcpy(&raw, d.bytes, sizeof(raw));
	raw.size ^= 0xffff;
	dg_desc_pack(&raw, bad.bytes);
	assert_int_equal(dragon_channel_attach(&bad, &c), DRAGON_ESTALE);
	assert_null(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(fifo_inline_and_large_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(full_and_empty_with_timeouts, setup, teardown),
		cmocka_unit_test_setup_teardown(too_small_buffer_keeps_the_message, setup, teardown),
		cmocka_unit_test_setup_teardown(zero_copy_transfers_ownership, setup, teardown),
		cmocka_unit_test_setup_teardown(poll_reports_readiness_and_poll_many_wakes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(blocked_receiver_in_each_mode_wakes_on_send, setup,
						teardown),
		cmocka_unit_test(destroy_wakes_blocked_and_later_ops_fail),
		cmocka_unit_test_setup_teardown(remote_channel_without_transport_is_a_clear_error,
						setup, teardown),
		cmocka_unit_test_setup_teardown(garbage_channel_descriptors_are_errors, setup,
						teardown),
	};
	return cmocka_run_group_tests_name("channel", tests, NULL, NULL);
}
