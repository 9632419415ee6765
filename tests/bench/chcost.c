/* tests/bench/chcost.c: per-message instruction probe for callgrind: one process sends and receives on one channel. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dragon/channel.h>
#include <dragon/error.h>
#include <dragon/pool.h>

/*
 * Usage: chcost one|window|batch|alloc|line N
 *   one     N times: send one 8-byte message, receive it (the ping-pong path without the peer)
 *   window  N/32 times: send 32 messages of 8 bytes, receive 32 (the streaming path)
 *   batch   N/32 times: send_many 32 messages of 8 bytes, recv_many 32
 *   alloc   N times: allocate and free 64 bytes of a pool
 *   line    the hardware floor, not under callgrind: one cache line handed back and forth
 *           between a process on CPU 0 and one on CPU 1, 21 batches of N round trips; prints
 *           the one-way time of the fastest and the median batch
 * Run under `valgrind --tool=callgrind` and divide the inclusive cost of the public calls by N:
 * instruction counts do not depend on the machine's load, unlike wall-clock figures.
 */
static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One line, two writers taking turns: each turn is one transfer of the line to the other CPU. */
static int line(long n)
{
	_Atomic long *turn = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				  -1, 0);
	double t[21];

	if (turn == MAP_FAILED)
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		pin(1);
		for (long i = 0; i < 21 * n; i++) {
			while (atomic_load_explicit(turn, memory_order_acquire) != 2 * i + 1)
				__builtin_ia32_pause();
			atomic_store_explicit(turn, 2 * i + 2, memory_order_release);
		}
		_exit(0);
	}
	pin(0);
	for (int r = 0; r < 21; r++) {
		double t0 = now_s();
		for (long i = r * n; i < (r + 1) * n; i++) {
			atomic_store_explicit(turn, 2 * i + 1, memory_order_release);
			while (atomic_load_explicit(turn, memory_order_acquire) != 2 * i + 2)
				__builtin_ia32_pause();
		}
		t[r] = (now_s() - t0) / n / 2 * 1e9;
	}
	waitpid(pid, NULL, 0);
	qsort(t, 21, sizeof(double), cmp_d);
	printf("cache-line hand-off CPU 0 <-> CPU 1, one way: fastest batch %.1f ns, median %.1f ns\n",
	       t[0], t[10]);
	return 0;
}

int main(int argc, char **argv)
{
	dragon_pool_t *pool;
	dragon_channel_t *ch;
	const dragon_channel_attr_t ca = { .capacity = 64 };
	const dragon_wait_t w = { .timeout_us = -1, .mode = DRAGON_WAIT_ADAPTIVE };
	char buf[64] = "12345678";
	size_t len;
	long n;
	int rc;

	if (argc != 3)
		return fprintf(stderr, "usage: chcost one|window|batch|alloc|line N\n"), 2;
	n = atol(argv[2]);
	if (!strcmp(argv[1], "line"))
		return line(n);
	if ((rc = dragon_pool_create(NULL, &pool)) || (rc = dragon_channel_create(pool, &ca, &ch)))
		return fprintf(stderr, "chcost: %s\n", dragon_errmsg()), 1;
	if (!strcmp(argv[1], "one")) {
		for (long i = 0; i < n; i++)
			if (dragon_channel_send(ch, buf, 8, &w) || dragon_channel_recv(ch, buf, 64, &len, &w))
				return fprintf(stderr, "chcost: %s\n", dragon_errmsg()), 1;
	} else if (!strcmp(argv[1], "window")) {
		for (long i = 0; i < n / 32; i++) {
			for (int k = 0; k < 32; k++)
				if (dragon_channel_send(ch, buf, 8, &w))
					return fprintf(stderr, "chcost: %s\n", dragon_errmsg()), 1;
			for (int k = 0; k < 32; k++)
				if (dragon_channel_recv(ch, buf, 64, &len, &w))
					return fprintf(stderr, "chcost: %s\n", dragon_errmsg()), 1;
		}
	} else if (!strcmp(argv[1], "batch")) {
		const void *sb[32];
		void *rb[32];
		size_t sl[32], caps[32], rl[32], k;
		char r[32][64];
		for (int j = 0; j < 32; j++) {
			sb[j] = buf;
			sl[j] = 8;
			rb[j] = r[j];
			caps[j] = 64;
		}
		for (long i = 0; i < n / 32; i++)
			if (dragon_channel_send_many(ch, sb, sl, 32, &k, &w) ||
			    dragon_channel_recv_many(ch, rb, caps, rl, 32, &k, &w) || k != 32)
				return fprintf(stderr, "chcost: %s\n", dragon_errmsg()), 1;
	} else if (!strcmp(argv[1], "alloc")) {
		dragon_mem_t m;
		for (long i = 0; i < n; i++)
			if (dragon_pool_alloc(pool, 64, 0, &m) || dragon_pool_free(&m))
				return fprintf(stderr, "chcost: %s\n", dragon_errmsg()), 1;
	} else {
		return fprintf(stderr, "chcost: unknown mode %s\n", argv[1]), 2;
	}
	dragon_channel_destroy(ch);
	dragon_pool_destroy(pool);
	return 0;
}
