/* tests/bench/bench_util.h: timing, CPU pinning and CSV output shared by the bench programs. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_REPS 5 /* timed batches per measurement; the median is reported */

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Pin the caller to cpu (mod the CPUs online) so ping-pong partners sit on different cores. */
static inline void bench_pin(int cpu)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	if (n < 1)
		n = 1;
	CPU_ZERO(&set);
	CPU_SET(cpu % n, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

static inline int bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n)
{
	qsort(v, n, sizeof(*v), bench_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Message sizes of B1 and B2 (the latter adds the larger ones). */
static const size_t bench_lat_sizes[] = { 8, 64, 1024, 65536, 1048576 };
static const size_t bench_bw_sizes[] = { 8, 64, 1024, 8192, 65536, 1048576, 4194304 };
#define BENCH_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static inline void bench_result(const char *part, const char *bcase, size_t size, const char *impl,
				const char *metric, double value)
{
	printf("result,%s,%s,%zu,%s,%s,%.4f\n", part, bcase, size, impl, metric, value);
	fflush(stdout);
}

/* BENCH_SMOKE=1: tiny counts so CI only checks that everything builds and runs. */
static inline long bench_scale(long n)
{
	const char *s = getenv("BENCH_SMOKE");

	if (s && *s && strcmp(s, "0") != 0) {
		n /= 800;
		return n < 1 ? 1 : n;
	}
	return n;
}

/* Timed batches: one in a smoke run (its figures only have to exist). */
static inline int bench_reps(void)
{
	return bench_scale(800) < 800 ? 1 : BENCH_REPS;
}

/* Fewer iterations for big messages so every size takes about the same time (at least 10; 1 in a smoke run). */
static inline long bench_iters(long base, size_t size)
{
	long n = (long)(base / (1.0 + size / 4096.0)), least = bench_scale(800) < 800 ? 1 : 10;

	return n < least ? least : n;
}

#endif
