/* tests/ddict/ddtool.c: the dictionary from the command line, for the integration tests (one machine, several nodes, Slurm). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ddict/dd.h"

static int fails;

#define CHECK(rc, what)                                                                          \
	do {                                                                                     \
		int rc_ = (rc);                                                                  \
		if (rc_) {                                                                       \
			fprintf(stderr, "ddtool: %s: %s: %s\n", what, dragon_strerror(rc_),      \
				dragon_errmsg());                                                \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

#define EXPECT(cond)                                                                             \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "ddtool: line %d: expected %s (%s)\n", __LINE__, #cond,  \
				dragon_errmsg());                                                \
			fails++;                                                                 \
		}                                                                                \
	} while (0)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Value of key i: size bytes, every byte a function of (i, position, seed). */
static void value(uint64_t i, size_t size, unsigned seed, unsigned char *v)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + seed;
	for (size_t j = 0; j < size; j++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v[j] = (unsigned char)x;
	}
}

static size_t keyname(uint64_t i, char *k)
{
	return (size_t)sprintf(k, "key-%" PRIu64, i);
}

static dragon_ddict_t *open_dict(const char *name)
{
	dragon_ddict_t *d;
	CHECK(dragon_ddict_attach(name, 10000, &d), "attach");
	return d;
}

static int cmd_fill(const char *name, uint64_t n, size_t size, unsigned seed, int batch)
{
	dragon_ddict_t *d = open_dict(name);
	unsigned char *v = malloc(size ? size : 1);
	char k[32];
	double t0 = now();

	if (batch)
		CHECK(dragon_ddict_batch_begin(d), "batch_begin");
	for (uint64_t i = 0; i < n; i++) {
		value(i, size, seed, v);
		CHECK(dragon_ddict_put(d, k, keyname(i, k), v, size), "put");
	}
	if (batch)
		CHECK(dragon_ddict_batch_end(d), "batch_end");
	printf("filled %" PRIu64 " keys of %zu bytes in %.2f s\n", n, size, now() - t0);
	free(v);
	dragon_ddict_detach(d);
	return 0;
}

static int cmd_check(const char *name, uint64_t n, size_t size, unsigned seed)
{
	dragon_ddict_t *d = open_dict(name);
	unsigned char *v = malloc(size + 1), *g = malloc(size + 1);
	char k[32];
	uint64_t bad = 0, len;
	size_t vl;

	for (uint64_t i = 0; i < n; i++) {
		value(i, size, seed, v);
		CHECK(dragon_ddict_get(d, k, keyname(i, k), g, size + 1, &vl), "get");
		if (vl != size || memcmp(v, g, size)) {
			if (bad++ < 5)
				fprintf(stderr, "ddtool: key %" PRIu64 " differs\n", i);
		}
	}
	CHECK(dragon_ddict_len(d, &len), "len");
	printf("checked %" PRIu64 " keys, %" PRIu64 " bad, len %" PRIu64 "\n", n, bad, len);
	free(v);
	free(g);
	dragon_ddict_detach(d);
	return bad != 0;
}

/* Every operation of the API against a fresh dictionary on the fabric. */
static char self[4096];

static int cmd_api(void)
{
	dragon_ddict_attr_t a = { .managers_per_node = 2, .budget = 1u << 20 };
	dragon_ddict_t *d, *d2;
	char buf[4096], k[64];
	size_t vl;
	int present;
	uint64_t n;
	int64_t old;

	CHECK(dragon_ddict_create("api-dict", &a, &d), "create");
	unsigned nm = dragon_ddict_managers(d);
	EXPECT(nm == 2 * dragon_node_count());
	CHECK(dragon_ddict_put(d, "a", 1, "alpha", 5), "put");
	CHECK(dragon_ddict_get(d, "a", 1, buf, sizeof(buf), &vl), "get");
	EXPECT(vl == 5 && !memcmp(buf, "alpha", 5));
	EXPECT(dragon_ddict_get(d, "a", 1, buf, 2, &vl) == DRAGON_ETOOBIG && vl == 5);
	EXPECT(dragon_ddict_get(d, "nope", 4, buf, sizeof(buf), &vl) == DRAGON_ENOTFOUND);
	CHECK(dragon_ddict_contains(d, "a", 1, &present), "contains");
	EXPECT(present == 1);
	CHECK(dragon_ddict_contains(d, "b", 1, &present), "contains");
	EXPECT(present == 0);

	/* large values: zero-copy put and a get as an allocation the caller frees */
	static unsigned char big[300000], back[300000];
	value(1, sizeof(big), 3, big);
	CHECK(dragon_ddict_put(d, "big", 3, big, sizeof(big)), "put big");
	dragon_mem_t m;
	CHECK(dragon_ddict_get_mem(d, "big", 3, &m, &vl), "get_mem");
	EXPECT(vl == sizeof(big) && !memcmp(m.ptr, big, vl));
	CHECK(dragon_pool_free(&m), "free get_mem");
	CHECK(dragon_ddict_get_mem(d, "a", 1, &m, &vl), "get_mem small");
	EXPECT(vl == 5 && !memcmp(m.ptr, "alpha", 5));
	CHECK(dragon_pool_free(&m), "free get_mem small");
	CHECK(dragon_ddict_get(d, "big", 3, back, sizeof(back), &vl), "get big");
	EXPECT(vl == sizeof(big) && !memcmp(back, big, vl));

	/* budget: 1 MiB per manager; 4 values of 300 KB on one manager pass it */
	uint64_t keys, used, budget, keys0;
	CHECK(dragon_ddict_manager_stats(d, 0, &keys0, NULL, NULL), "stats");
	CHECK(dragon_ddict_pin(d, 0), "pin");
	int rc = DRAGON_OK, i;
	for (i = 0; i < 10 && rc == DRAGON_OK; i++) {
		snprintf(k, sizeof(k), "fill%d", i);
		rc = dragon_ddict_put(d, k, strlen(k), big, sizeof(big));
	}
	EXPECT(rc == DRAGON_ENOSPACE);
	EXPECT(strstr(dragon_errmsg(), "manager 0") != NULL);
	snprintf(k, sizeof(k), "fill%d", i - 1);
	EXPECT(dragon_ddict_get(d, k, strlen(k), back, sizeof(back), &vl) == DRAGON_ENOTFOUND);
	CHECK(dragon_ddict_manager_stats(d, 0, &keys, &used, &budget), "stats");
	EXPECT(keys == keys0 + (uint64_t)(i - 1) && used <= budget && budget == (1u << 20));
	CHECK(dragon_ddict_len(d, &n), "len pinned");
	EXPECT(n == keys);
	dragon_ddict_iter_t *it;
	CHECK(dragon_ddict_iter_start(d, 0, &it), "iter");
	unsigned seen = 0;
	while ((rc = dragon_ddict_iter_next(it, k, sizeof(k), &vl)) == DRAGON_OK)
		seen++;
	EXPECT(rc == DRAGON_ENOTFOUND && seen == keys);
	dragon_ddict_iter_end(it);
	CHECK(dragon_ddict_clear(d), "clear pinned");
	CHECK(dragon_ddict_manager_stats(d, 0, &keys, &used, NULL), "stats");
	EXPECT(keys == 0 && used == 0);
	CHECK(dragon_ddict_pin(d, -1), "unpin");
	/* the clear of manager 0 may have taken these */
	CHECK(dragon_ddict_put(d, "a", 1, "alpha", 5), "put");
	CHECK(dragon_ddict_put(d, "big", 3, big, sizeof(big)), "put big");

	/* pop, del */
	CHECK(dragon_ddict_pop(d, "a", 1, buf, sizeof(buf), &vl), "pop");
	EXPECT(vl == 5 && !memcmp(buf, "alpha", 5));
	EXPECT(dragon_ddict_pop(d, "a", 1, buf, sizeof(buf), &vl) == DRAGON_ENOTFOUND);
	CHECK(dragon_ddict_put(d, "x", 1, "", 0), "put empty");
	CHECK(dragon_ddict_del(d, "x", 1), "del");
	EXPECT(dragon_ddict_del(d, "x", 1) == DRAGON_ENOTFOUND);

	/* counters: from another process too */
	CHECK(dragon_ddict_fetch_add(d, "ctr", 3, 10, &old), "fetch_add");
	EXPECT(old == 0);
	/* processes of the fabric (not forks: a fork shares our connection to local services) */
	dragon_puid_t kids[4];
	for (int c = 0; c < 4; c++) {
		const char *av[] = { self, "count", "api-dict", "250", NULL };
		CHECK(dragon_process_create(av, NULL, &kids[c]), "start a counter");
	}
	for (int c = 0; c < 4; c++) {
		int st = -1;
		CHECK(dragon_process_wait(kids[c], 60000, &st), "wait for a counter");
		EXPECT(st == 0);
	}
	CHECK(dragon_ddict_fetch_add(d, "ctr", 3, 0, &old), "fetch_add");
	EXPECT(old == 1010);
	EXPECT(dragon_ddict_fetch_add(d, "big", 3, 1, NULL) == DRAGON_EINVAL);

	/* wait_for_key: times out, then sees a key another process puts */
	double t0 = now();
	EXPECT(dragon_ddict_wait_for_key(d, "w", 1, 200) == DRAGON_ETIMEDOUT);
	EXPECT(now() - t0 >= 0.19 && now() - t0 < 3);
	dragon_puid_t p;
	const char *av[] = { self, "putlater", "api-dict", "w", NULL };
	CHECK(dragon_process_create(av, NULL, &p), "start a putter");
	CHECK(dragon_ddict_wait_for_key(d, "w", 1, 20000), "wait_for_key");
	int pst = -1;
	CHECK(dragon_process_wait(p, 20000, &pst), "wait for the putter");
	EXPECT(pst == 0); /* it saw our wait registered before it put */

	/* batch: 10,000 puts, one ack per message */
	CHECK(dragon_ddict_batch_begin(d), "batch_begin");
	for (i = 0; i < 10000; i++) {
		size_t kl = keyname((uint64_t)i, k);
		CHECK(dragon_ddict_put(d, k, kl, &i, sizeof(i)), "batched put");
	}
	CHECK(dragon_ddict_batch_end(d), "batch_end");
	CHECK(dragon_ddict_len(d, &n), "len");
	EXPECT(n == 10000 + 3); /* big, ctr, w */

	/* iteration over all managers sees every key once */
	unsigned char *seenk = calloc(10000, 1);
	CHECK(dragon_ddict_iter_start(d, -1, &it), "iter all");
	seen = 0;
	while ((rc = dragon_ddict_iter_next(it, k, sizeof(k), &vl)) == DRAGON_OK) {
		seen++;
		if (vl > 4 && !memcmp(k, "key-", 4)) {
			k[vl] = 0;
			seenk[atoi(k + 4)]++;
		}
	}
	dragon_ddict_iter_end(it);
	EXPECT(rc == DRAGON_ENOTFOUND && seen == n);
	for (i = 0; i < 10000; i++)
		EXPECT(seenk[i] == 1);
	free(seenk);

	/* freeze: puts refused, gets served (from shared memory on this node) */
	CHECK(dragon_ddict_freeze(d), "freeze");
	EXPECT(dragon_ddict_put(d, "f", 1, "x", 1) == DRAGON_EPERM);
	CHECK(dragon_ddict_get(d, "big", 3, back, sizeof(back), &vl), "frozen get");
	EXPECT(vl == sizeof(big) && !memcmp(back, big, vl));
	CHECK(dragon_ddict_get(d, "key-77", 6, buf, sizeof(buf), &vl), "frozen get");
	EXPECT(vl == sizeof(int) && *(int *)buf == 77);
	EXPECT(dragon_ddict_get(d, "nope", 4, buf, sizeof(buf), &vl) == DRAGON_ENOTFOUND);
	CHECK(dragon_ddict_contains(d, "key-5", 5, &present), "frozen contains");
	EXPECT(present);
	const void *view;
	if (dragon_ddict_manager_of(d, "big", 3) / 2 == dragon_node_index()) {
		CHECK(dragon_ddict_get_view(d, "big", 3, &view, &vl), "frozen view");
		EXPECT(vl == sizeof(big) && !memcmp(view, big, vl));
	}
	EXPECT(dragon_ddict_get_view(d, "nope", 4, &view, &vl) != DRAGON_OK);
	CHECK(dragon_ddict_get_mem(d, "big", 3, &m, &vl), "frozen get_mem");
	EXPECT(vl == sizeof(big) && !memcmp(m.ptr, big, vl));
	dragon_pool_free(&m);
	CHECK(dragon_ddict_unfreeze(d), "unfreeze");
	EXPECT(dragon_ddict_get_view(d, "big", 3, &view, &vl) == DRAGON_EAGAIN);
	CHECK(dragon_ddict_put(d, "f", 1, "x", 1), "put after unfreeze");

	/* a serialized descriptor attaches without the name */
	void *desc;
	size_t dl;
	CHECK(dragon_ddict_serialize(d, &desc, &dl), "serialize");
	CHECK(dragon_ddict_attach_desc(desc, dl, &d2), "attach_desc");
	CHECK(dragon_ddict_get(d2, "f", 1, buf, sizeof(buf), &vl), "get through desc");
	EXPECT(dragon_ddict_attach_desc(desc, dl - 1, &d2) == DRAGON_EBADDESC);
	free(desc);
	dragon_ddict_detach(d2);

	/* bad arguments */
	EXPECT(dragon_ddict_put(d, NULL, 3, "x", 1) == DRAGON_EINVAL);
	EXPECT(dragon_ddict_pin(d, (int)nm) == DRAGON_EINVAL);
	EXPECT(dragon_ddict_attach("no-such-dict", 0, &d2) != DRAGON_OK);

	CHECK(dragon_ddict_destroy(d), "destroy");
	EXPECT(dragon_ddict_attach("api-dict", 0, &d2) != DRAGON_OK);
	printf("api: %d failures\n", fails);
	return fails != 0;
}

/* Which manager each of keys 0..n-1 lives on, and the managers' pids. */
static int cmd_pids(const char *name)
{
	dragon_ddict_t *d = open_dict(name);
	void *desc;
	size_t dl;
	struct dd_desc hd;

	CHECK(dragon_ddict_serialize(d, &desc, &dl), "serialize");
	memcpy(&hd, desc, sizeof(hd));
	for (unsigned i = 0; i < hd.managers; i++) {
		struct dd_minfo mi;
		memcpy(&mi, (char *)desc + sizeof(hd) + i * sizeof(mi), sizeof(mi));
		printf("%u %u %u\n", i, mi.node, mi.pid);
	}
	free(desc);
	dragon_ddict_detach(d);
	return 0;
}

/* After a manager was killed: its keys fail with EPEER in bounded time, the others are served. */
static int cmd_probe(const char *name, uint64_t n, size_t size, unsigned seed, unsigned dead)
{
	dragon_ddict_t *d = open_dict(name);
	unsigned char *v = malloc(size + 1), *g = malloc(size + 1);
	char k[32];
	uint64_t ok = 0, peer = 0, other = 0;
	double worst = 0;
	size_t vl;

	for (uint64_t i = 0; i < n; i++) {
		size_t kl = keyname(i, k);
		double t0 = now();
		int rc = dragon_ddict_get(d, k, kl, g, size + 1, &vl);
		double t = now() - t0;
		unsigned m = dragon_ddict_manager_of(d, k, kl);
		value(i, size, seed, v);
		if (m == dead) {
			if (rc == DRAGON_EPEER)
				peer++;
			else
				other++;
			if (t > worst)
				worst = t;
		} else if (rc == DRAGON_OK && vl == size && !memcmp(v, g, size)) {
			ok++;
		} else {
			other++;
			fprintf(stderr, "ddtool: key %" PRIu64 " on manager %u: %s\n", i, m,
				dragon_errmsg());
		}
	}
	printf("ok %" PRIu64 " epeer %" PRIu64 " other %" PRIu64 " worst %.3f s\n", ok, peer, other,
	       worst);
	free(v);
	free(g);
	dragon_ddict_detach(d);
	return other != 0 || peer == 0;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: ddtool create NAME PER_NODE BUDGET | fill NAME N SIZE SEED "
				"[batch] | check NAME N SIZE SEED | persist NAME DIR | restore NAME DIR "
				"| destroy NAME | pids NAME | probe NAME N SIZE SEED DEAD | set NAME KEY VALUE "
				"| show NAME KEY | api\n");
		return 2;
	}
	if (!strcmp(argv[1], "hash")) {
		/* hash MANAGERS: for each line of hex key bytes on stdin, "hash manager" (no fabric) */
		char line[8192];
		unsigned m = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
		while (fgets(line, sizeof(line), stdin)) {
			unsigned char k[4096];
			size_t n = 0;
			for (char *p = line; p[0] && p[1] && p[0] != '\n' && n < sizeof(k); p += 2) {
				unsigned v;
				if (sscanf(p, "%2x", &v) != 1)
					break;
				k[n++] = (unsigned char)v;
			}
			uint64_t h = dragon_ddict_hash(k, n);
			printf("%016" PRIx64 " %u\n", h, m ? (unsigned)(h % m) : 0);
		}
		return 0;
	}
	CHECK(dragon_init(), "dragon_init");
	const char *c = argv[1];
	if (!strcmp(c, "create") && argc >= 5) {
		dragon_ddict_attr_t a = { .managers_per_node = (unsigned)atoi(argv[3]),
					  .budget = strtoull(argv[4], NULL, 10),
					  .flags = DRAGON_DDICT_OUTLIVE };
		dragon_ddict_t *d;
		CHECK(dragon_ddict_create(argv[2], &a, &d), "create");
		printf("created %s with %u managers\n", argv[2], dragon_ddict_managers(d));
		dragon_ddict_detach(d);
		rc = 0;
	} else if (!strcmp(c, "fill") && argc >= 6) {
		rc = cmd_fill(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
			      (unsigned)atoi(argv[5]), argc > 6 && !strcmp(argv[6], "batch"));
	} else if (!strcmp(c, "check") && argc >= 6) {
		rc = cmd_check(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
			       (unsigned)atoi(argv[5]));
	} else if ((!strcmp(c, "persist") || !strcmp(c, "restore")) && argc >= 4) {
		dragon_ddict_t *d = open_dict(argv[2]);
		rc = c[0] == 'p' ? dragon_ddict_persist(d, argv[3]) : dragon_ddict_restore(d, argv[3]);
		if (rc)
			fprintf(stderr, "ddtool: %s: %s: %s\n", c, dragon_strerror(rc), dragon_errmsg());
		else
			printf("%s ok\n", c);
		dragon_ddict_detach(d);
		rc = rc != 0;
	} else if (!strcmp(c, "destroy") && argc >= 3) {
		dragon_ddict_t *d = open_dict(argv[2]);
		CHECK(dragon_ddict_destroy(d), "destroy");
		printf("destroyed\n");
		rc = 0;
	} else if (!strcmp(c, "pids") && argc >= 3) {
		rc = cmd_pids(argv[2]);
	} else if (!strcmp(c, "probe") && argc >= 7) {
		rc = cmd_probe(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
			       (unsigned)atoi(argv[5]), (unsigned)atoi(argv[6]));
	} else if (!strcmp(c, "count") && argc >= 4) {
		dragon_ddict_t *d = open_dict(argv[2]);
		for (int j = 0; j < atoi(argv[3]); j++)
			CHECK(dragon_ddict_fetch_add(d, "ctr", 3, 1, NULL), "fetch_add");
		dragon_ddict_detach(d);
		rc = 0;
	} else if (!strcmp(c, "putlater") && argc >= 4) {
		/* put once the key has a waiter (its manager says so), not after a fixed pause */
		dragon_ddict_t *d = open_dict(argv[2]);
		unsigned m = dragon_ddict_manager_of(d, argv[3], strlen(argv[3]));
		uint64_t w = 0;
		for (int i = 0; i < 10000 && !w; i++) {
			CHECK(dd_manager_waiters(d, m, &w), "waiters");
			if (!w)
				usleep(1000);
		}
		if (!w)
			fprintf(stderr, "ddtool: no waiter appeared in 10 s\n");
		CHECK(dragon_ddict_put(d, argv[3], strlen(argv[3]), "here", 4), "put");
		dragon_ddict_detach(d);
		rc = w ? 0 : 1;
	} else if (!strcmp(c, "set") && argc >= 5) {
		/* set NAME KEY VALUE: the key's and value's bytes as given (what Python must see) */
		dragon_ddict_t *d = open_dict(argv[2]);
		CHECK(dragon_ddict_put(d, argv[3], strlen(argv[3]), argv[4], strlen(argv[4])), "put");
		dragon_ddict_detach(d);
		rc = 0;
	} else if (!strcmp(c, "show") && argc >= 4) {
		/* show NAME KEY: "value <bytes>" or "absent" */
		dragon_ddict_t *d = open_dict(argv[2]);
		char v[4096];
		size_t n = 0;
		rc = dragon_ddict_get(d, argv[3], strlen(argv[3]), v, sizeof(v) - 1, &n);
		if (rc == DRAGON_ENOTFOUND) {
			printf("absent\n");
		} else {
			CHECK(rc, "get");
			v[n] = 0;
			printf("value %s\n", v);
		}
		dragon_ddict_detach(d);
		rc = 0;
	} else if (!strcmp(c, "api")) {
		ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (sl > 0)
			self[sl] = 0;
		rc = cmd_api();
	} else {
		fprintf(stderr, "ddtool: bad command %s\n", c);
		rc = 2;
	}
	dragon_finalize();
	return rc;
}
