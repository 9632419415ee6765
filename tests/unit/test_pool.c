/* tests/unit/test_pool.c: unit tests of pools: create/attach/alloc/free/stats, descriptors, fd passing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <dragon/dragon.h>
#include "core/fdpass.h"
#include "core/pool_internal.h"

static dragon_pool_t *mkpool(size_t size)
{
	dragon_pool_attr_t a = { .size = size };
	dragon_pool_t *p = NULL;

	assert_int_equal(dragon_pool_create(&a, &p), DRAGON_OK);
	assert_non_null(p);
	return p;
}

static void alloc_is_aligned_writable_and_freed(void **state)
{
	dragon_pool_t *p = mkpool(1 << 20);
	dragon_mem_t m[8];
	size_t aligns[] = { 0, 1, 8, 64, 128, 512, 4096, 64 };

	for (int i = 0; i < 8; i++) {
		assert_int_equal(dragon_pool_alloc(p, 100 + i * 1000, aligns[i], &m[i]), DRAGON_OK);
		assert_int_equal((uintptr_t)m[i].ptr % (aligns[i] ? aligns[i] : 64), 0);
		memset(m[i].ptr, i, m[i].size);
	}
	for (int i = 0; i < 8; i++)
		for (size_t j = 0; j < m[i].size; j++)
			assert_int_equal(((unsigned char *)m[i].ptr)[j], i);
	dragon_pool_stats_t st;
	assert_int_equal(dragon_pool_stats(p, &st), DRAGON_OK);
	assert_int_equal(st.allocations, 8);
	assert_true(st.used >= 8 * 100);
	for (int i = 0; i < 8; i++)
		assert_int_equal(dragon_pool_free(&m[i]), DRAGON_OK);
	assert_int_equal(dragon_pool_stats(p, &st), DRAGON_OK);
	assert_int_equal(st.allocations, 0);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.largest_free, st.size);
	assert_int_equal(dragon_pool_destroy(p), DRAGON_OK);
}

static void bad_arguments_are_errors(void **state)
{
	dragon_pool_t *p = mkpool(64 * 1024);
	dragon_mem_t m;

	assert_int_equal(dragon_pool_alloc(p, 0, 0, &m), DRAGON_EINVAL);
	assert_int_equal(dragon_pool_alloc(p, 10, 3, &m), DRAGON_EINVAL);
	assert_int_equal(dragon_pool_alloc(p, 10, 8192, &m), DRAGON_EINVAL);
	assert_int_equal(dragon_pool_alloc(p, 1 << 30, 0, &m), DRAGON_ETOOBIG);
	assert_int_equal(dragon_pool_alloc(NULL, 10, 0, &m), DRAGON_EINVAL);
	assert_int_equal(dragon_pool_alloc(p, 10, 0, &m), DRAGON_OK);
	assert_int_equal(dragon_pool_free(&m), DRAGON_OK);
	/* A double free is refused, not a corruption. */
	m.size = 10;
	assert_int_equal(dragon_pool_free(&m), DRAGON_EINVAL);
	assert_non_null(strstr(dragon_errmsg(), "not allocated"));
	m.offset = 7;
	assert_int_equal(dragon_pool_free(&m), DRAGON_EINVAL);
	assert_int_equal(dragon_pool_destroy(p), DRAGON_OK);
}

static void full_pool_fails_then_waits_for_a_free(void **state)
{
	dragon_pool_t *p = mkpool(64 * 1024);
	dragon_mem_t a, b;
	dragon_pool_stats_t st;

	assert_int_equal(dragon_pool_alloc(p, 64 * 1024, 0, &a), DRAGON_OK);
	assert_int_equal(dragon_pool_alloc(p, 64, 0, &b), DRAGON_ENOSPACE);
	assert_int_equal(dragon_pool_alloc_wait(p, 64, 0, 20000, &b), DRAGON_ETIMEDOUT);
	assert_int_equal(dragon_pool_stats(p, &st), DRAGON_OK);
	assert_int_equal(st.largest_free, 0);
	pid_t pid = fork();
	if (pid == 0) {
		usleep(50000);
		_exit(dragon_pool_free(&a) == DRAGON_OK ? 0 : 1);
	}
	assert_int_equal(dragon_pool_alloc_wait(p, 64, 0, 5000000, &b), DRAGON_OK);
	int status;
	waitpid(pid, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(dragon_pool_destroy(p), DRAGON_OK);
}

static void mem_descriptor_attaches_same_memory_in_child(void **state)
{
	dragon_pool_t *p = mkpool(1 << 20);
	dragon_mem_t m;
	dragon_mem_desc_t d;
	char str[DRAGON_DESC_STRLEN];

	assert_int_equal(dragon_pool_alloc(p, 4096, 0, &m), DRAGON_OK);
	strcpy(m.ptr, "written by the parent");
	assert_int_equal(dragon_mem_serialize(&m, &d), DRAGON_OK);
	assert_int_equal(dragon_desc_format(&d, str), DRAGON_OK);
	assert_int_equal(strlen(str), 2 * DRAGON_DESC_SIZE);
	pid_t pid = fork();
	if (pid == 0) {
		/* exec-like: the child finds the pool through the parent's descriptor table. */
		dragon_mem_desc_t d2;
		dragon_mem_t m2;
		if (dragon_desc_parse(str, &d2) || dragon_mem_attach(&d2, &m2))
			_exit(2);
		if (strcmp(m2.ptr, "written by the parent"))
			_exit(3);
		strcpy(m2.ptr, "answered by the child");
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_string_equal(m.ptr, "answered by the child");
	assert_int_equal(dragon_pool_free(&m), DRAGON_OK);
	assert_int_equal(dragon_pool_destroy(p), DRAGON_OK);
}

static void garbage_truncated_and_stale_descriptors_are_errors(void **state)
{
	dragon_pool_t *p = mkpool(64 * 1024), *q = NULL;
	dragon_pool_desc_t d, bad;
	unsigned seed = 1;

	assert_int_equal(dragon_pool_serialize(p, &d), DRAGON_OK);
	/* Every single-byte change is caught. */
	for (int i = 0; i < DRAGON_DESC_SIZE; i++) {
		bad = d;
		bad.bytes[i] ^= 0x5a;
		assert_int_not_equal(dragon_pool_attach(&bad, &q), DRAGON_OK);
		assert_null(q);
	}
	for (int k = 0; k < 1000; k++) {
		for (int i = 0; i < DRAGON_DESC_SIZE; i++)
			bad.bytes[i] = (unsigned char)rand_r(&seed);
		assert_int_equal(dragon_pool_attach(&bad, &q), DRAGON_EBADDESC);
	}
	assert_int_equal(dragon_desc_parse("abc", &bad), DRAGON_EBADDESC);
	char str[DRAGON_DESC_STRLEN];
	dragon_desc_format(&d, str);
	str[10] = 'z';
	assert_int_equal(dragon_desc_parse(str, &bad), DRAGON_EBADDESC);
	/* A channel descriptor is not a pool descriptor. */
	dragon_channel_t *ch;
	dragon_channel_desc_t cd;
	assert_int_equal(dragon_channel_create(p, NULL, &ch), DRAGON_OK);
	assert_int_equal(dragon_channel_serialize(ch, &cd), DRAGON_OK);
	memcpy(bad.bytes, cd.bytes, sizeof(bad.bytes));
	assert_int_equal(dragon_pool_attach(&bad, &q), DRAGON_EBADDESC);
	assert_int_equal(dragon_channel_destroy(ch), DRAGON_OK);
	/* Stale: the pool is destroyed and its creator's descriptor closed. */
	assert_int_equal(dragon_pool_destroy(p), DRAGON_OK);
	assert_int_not_equal(dragon_pool_attach(&d, &q), DRAGON_OK);
	assert_null(q);
}

static void fd_passing_hands_a_pool_to_another_process(void **state)
{
	dragon_pool_t *p = mkpool(64 * 1024);
	dragon_mem_t m;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(dragon_pool_alloc(p, 64, 0, &m), DRAGON_OK);
	pid_t pid = fork();
	if (pid == 0) {
		int fds[2], n;
		char buf[64];
		size_t len;
		struct stat mine, theirs;
		close(sv[0]);
		if (dg_fdpass_recv(sv[1], buf, sizeof(buf), &len, fds, 2, &n) || n != 1)
			_exit(2);
		/* The received descriptor is the pool's memfd itself, not a copy. */
		if (fstat(fds[0], &mine) || fstat(dragon_pool_fd(p), &theirs))
			_exit(3);
		if (mine.st_ino != theirs.st_ino || fds[0] == dragon_pool_fd(p))
			_exit(4);
		if (len != sizeof(uint64_t))
			_exit(5);
		_exit(0);
	}
	close(sv[1]);
	int fd = dragon_pool_fd(p);
	assert_int_equal(dg_fdpass_send(sv[0], &m.offset, sizeof(m.offset), &fd, 1), DRAGON_OK);
	int status;
	waitpid(pid, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	/* Bad calls and a closed peer are errors, not crashes. */
	assert_int_equal(dg_fdpass_send(sv[0], NULL, 0, NULL, 0), DRAGON_EINVAL);
	assert_int_equal(dg_fdpass_send(sv[0], "x", 1, &fd, DG_FDPASS_MAX + 1), DRAGON_EINVAL);
	int r[1], n;
	size_t len;
	char b[4];
	assert_int_equal(dg_fdpass_recv(sv[0], b, sizeof(b), &len, r, 1, &n), DRAGON_EPEER);
	close(sv[0]);
	assert_int_equal(dragon_pool_free(&m), DRAGON_OK);
	assert_int_equal(dragon_pool_destroy(p), DRAGON_OK);
}

static void fd_passing_closes_descriptors_beyond_the_limit(void **state)
{
	int sv[2], fds[3], got[1], n;
	size_t len;
	char b[4];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (int i = 0; i < 3; i++)
		fds[i] = dup(0);
	assert_int_equal(dg_fdpass_send(sv[0], "abc", 3, fds, 3), DRAGON_OK);
	assert_int_equal(dg_fdpass_recv(sv[1], b, sizeof(b), &len, got, 1, &n), DRAGON_EPROTO);
	assert_int_equal(n, 0);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(sv[0]);
	close(sv[1]);
}

static void death_holding_the_lock_is_repaired(void **state)
{
	dragon_pool_t *p = mkpool(64 * 1024);
	dragon_pool_stats_t st;
	dragon_mem_t keep, m;
	int status;

	assert_int_equal(dragon_pool_alloc(p, 1000, 0, &keep), DRAGON_OK);
	pid_t pid = fork();
	if (pid == 0)
		dg_pool_test_die_holding_lock(p, 500);
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status));
	/* The next locker recovers: the torn run is reclaimed, the completed allocation kept. */
	assert_int_equal(dragon_pool_alloc(p, 60 * 1024, 0, &m), DRAGON_OK);
	assert_int_equal(dragon_pool_stats(p, &st), DRAGON_OK);
	assert_int_equal(st.allocations, 2);
	assert_int_equal(dragon_pool_free(&m), DRAGON_OK);
	assert_int_equal(dragon_pool_free(&keep), DRAGON_OK);
	assert_int_equal(dragon_pool_stats(p, &st), DRAGON_OK);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.largest_free, st.size);
	assert_int_equal(dragon_pool_destroy(p), DRAGON_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(alloc_is_aligned_writable_and_freed),
		cmocka_unit_test(bad_arguments_are_errors),
		cmocka_unit_test(full_pool_fails_then_waits_for_a_free),
		cmocka_unit_test(mem_descriptor_attaches_same_memory_in_child),
		cmocka_unit_test(garbage_truncated_and_stale_descriptors_are_errors),
		cmocka_unit_test(fd_passing_hands_a_pool_to_another_process),
		cmocka_unit_test(fd_passing_closes_descriptors_beyond_the_limit),
		cmocka_unit_test(death_holding_the_lock_is_repaired),
	};
	return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
