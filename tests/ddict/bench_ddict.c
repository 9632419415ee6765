/* tests/ddict/bench_ddict.c: benchmark B9, our side: puts and gets of C clients on a dictionary, batched puts, frozen gets (CSV lines for tests/bench/run). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dragon/dragon.h>

#define CHECK(x)                                                                                 \
	do {                                                                                     \
		int rc_ = (x);                                                                   \
		if (rc_) {                                                                       \
			fprintf(stderr, "bench_ddict: %s: %s: %s\n", #x, dragon_strerror(rc_),   \
				dragon_errmsg());                                                \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char self[4096];

/*
 * A client: wait for "go", put n keys of its own (c<rank>-<i>), then get them all, and leave its
 * two durations in the dictionary for the coordinator.
 */
static int client(const char *name, int rank, long n, size_t size)
{
	dragon_ddict_t *d;
	unsigned char *v = malloc(size), *g = malloc(size);
	char k[64];
	size_t vl;
	double t[2];

	CHECK(dragon_ddict_attach(name, 30000, &d));
	memset(v, rank + 1, size);
	CHECK(dragon_ddict_fetch_add(d, "ready", 5, 1, NULL));
	CHECK(dragon_ddict_wait_for_key(d, "go", 2, 60000));
	double t0 = now();
	for (long i = 0; i < n; i++) {
		int kl = snprintf(k, sizeof(k), "c%d-%ld", rank, i);
		CHECK(dragon_ddict_put(d, k, (size_t)kl, v, size));
	}
	t[0] = now() - t0;
	t0 = now();
	for (long i = 0; i < n; i++) {
		int kl = snprintf(k, sizeof(k), "c%d-%ld", rank, i);
		CHECK(dragon_ddict_get(d, k, (size_t)kl, g, size, &vl));
	}
	t[1] = now() - t0;
	if (vl != size || memcmp(g, v, size)) {
		fprintf(stderr, "bench_ddict: client %d read a wrong value\n", rank);
		return 1;
	}
	int kl = snprintf(k, sizeof(k), "time-%d", rank);
	CHECK(dragon_ddict_put(d, k, (size_t)kl, t, sizeof(t)));
	dragon_ddict_detach(d);
	free(v);
	free(g);
	return 0;
}

/* Coordinator: a dictionary, `clients` client processes (spread round robin), aggregate rates. */
static int run(const char *cas, unsigned per_node, unsigned clients, long n, size_t size)
{
	dragon_ddict_attr_t a = { .managers_per_node = per_node, .budget = (size_t)1 << 30 };
	dragon_ddict_t *d;
	char cl[32], ns[32], ss[32];
	dragon_gid_t gid;
	int64_t ready = 0;
	int worst;
	double put = 0, get = 0;

	CHECK(dragon_ddict_create("b9", &a, &d));
	snprintf(cl, sizeof(cl), "%u", clients);
	snprintf(ns, sizeof(ns), "%ld", n);
	snprintf(ss, sizeof(ss), "%zu", size);
	const char *argv[] = { self, "client", "b9", ns, ss, NULL };
	CHECK(dragon_group_create(argv, clients, DRAGON_POLICY_ROUND_ROBIN, 0, NULL, NULL, &gid));
	/* every client attached and waiting: start them together */
	while (ready < (int64_t)clients) {
		CHECK(dragon_ddict_fetch_add(d, "ready", 5, 0, &ready));
		if (ready < (int64_t)clients)
			usleep(1000);
	}
	CHECK(dragon_ddict_put(d, "go", 2, "", 0));
	CHECK(dragon_group_wait_all(gid, -1, &worst));
	if (worst) {
		fprintf(stderr, "bench_ddict: a client failed (%d)\n", worst);
		return 1;
	}
	for (unsigned r = 0; r < clients; r++) {
		double t[2];
		size_t vl;
		char k[32];
		int kl = snprintf(k, sizeof(k), "time-%u", r);
		CHECK(dragon_ddict_get(d, k, (size_t)kl, t, sizeof(t), &vl));
		put = t[0] > put ? t[0] : put;
		get = t[1] > get ? t[1] : get;
	}
	printf("result,B9,%s put,%zu,dragon-ddict,rate_per_s,%.0f\n", cas, size, clients * n / put);
	printf("result,B9,%s get,%zu,dragon-ddict,rate_per_s,%.0f\n", cas, size, clients * n / get);
	CHECK(dragon_ddict_destroy(d));
	return 0;
}

/* One client, batched puts of n small values, repeated reps times (best). */
static int batch(long n, size_t size, int reps)
{
	dragon_ddict_attr_t a = { .managers_per_node = 1, .budget = (size_t)1 << 30 };
	dragon_ddict_t *d;
	unsigned char *v = calloc(1, size);
	char k[64];
	double best = 1e9;

	CHECK(dragon_ddict_create(NULL, &a, &d));
	for (int r = 0; r < reps; r++) {
		double t0 = now();
		CHECK(dragon_ddict_batch_begin(d));
		for (long i = 0; i < n; i++) {
			int kl = snprintf(k, sizeof(k), "b%ld", i);
			CHECK(dragon_ddict_put(d, k, (size_t)kl, v, size));
		}
		CHECK(dragon_ddict_batch_end(d));
		double t = now() - t0;
		best = t < best ? t : best;
	}
	printf("result,B9,batch put,%zu,dragon-ddict,rate_per_s,%.0f\n", size, n / best);
	CHECK(dragon_ddict_destroy(d));
	free(v);
	return 0;
}

/* The frozen get of one value on the manager's node, against memcpy of the same size. */
static int frozen(size_t size, long iters)
{
	dragon_ddict_attr_t a = { .managers_per_node = 1, .budget = (size_t)1 << 30 };
	dragon_ddict_t *d;
	unsigned char *v = malloc(size), *g = malloc(size);
	size_t vl;
	double t0, best = 1e9, bestm = 1e9;

	memset(v, 7, size);
	CHECK(dragon_ddict_create(NULL, &a, &d));
	CHECK(dragon_ddict_put(d, "big", 3, v, size));
	CHECK(dragon_ddict_freeze(d));
	for (int r = 0; r < 5; r++) {
		t0 = now();
		for (long i = 0; i < iters; i++)
			CHECK(dragon_ddict_get(d, "big", 3, g, size, &vl));
		double t = now() - t0;
		best = t < best ? t : best;
		t0 = now();
		for (long i = 0; i < iters; i++) {
			memcpy(g, v, size);
			__asm__ __volatile__("" ::"r"(g) : "memory");
		}
		t = now() - t0;
		bestm = t < bestm ? t : bestm;
	}
	if (memcmp(g, v, size))
		return 1;
	printf("result,B9,frozen get,%zu,dragon-ddict,bw_MBps,%.0f\n", size, iters * size / best / 1e6);
	printf("result,B9,frozen get,%zu,memcpy,bw_MBps,%.0f\n", size, iters * size / bestm / 1e6);
	/* unfrozen, the same get is a round trip to the manager */
	CHECK(dragon_ddict_unfreeze(d));
	t0 = now();
	for (long i = 0; i < iters / 4 + 1; i++)
		CHECK(dragon_ddict_get(d, "big", 3, g, size, &vl));
	printf("result,B9,unfrozen get,%zu,dragon-ddict,bw_MBps,%.0f\n", size,
	       (iters / 4 + 1) * size / (now() - t0) / 1e6);
	CHECK(dragon_ddict_destroy(d));
	free(v);
	free(g);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (sl > 0)
		self[sl] = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: bench_ddict run CASE MANAGERS_PER_NODE CLIENTS N SIZE | batch N "
				"SIZE | frozen SIZE ITERS\n");
		return 2;
	}
	CHECK(dragon_init());
	if (!strcmp(argv[1], "client") && argc >= 5)
		rc = client(argv[2], dragon_group_rank(), atol(argv[3]), strtoull(argv[4], NULL, 10));
	else if (!strcmp(argv[1], "run") && argc >= 7)
		rc = run(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]), atol(argv[5]),
			 strtoull(argv[6], NULL, 10));
	else if (!strcmp(argv[1], "batch") && argc >= 4)
		rc = batch(atol(argv[2]), strtoull(argv[3], NULL, 10), 3);
	else if (!strcmp(argv[1], "frozen") && argc >= 4)
		rc = frozen(strtoull(argv[2], NULL, 10), atol(argv[3]));
	dragon_finalize();
	return rc;
}
