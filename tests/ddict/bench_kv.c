/* tests/ddict/bench_kv.c: benchmark B9, the peers: the same puts and gets against Redis (hiredis) and memcached (libmemcached), and their batched puts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif
#ifdef HAVE_MEMCACHED
#include <libmemcached/memcached.h>
#endif

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_kv: %s\n", what);
	exit(1);
}

/* One client's connection and its put/get of one key. */
struct kv {
#ifdef HAVE_HIREDIS
	redisContext *r;
#endif
#ifdef HAVE_MEMCACHED
	memcached_st *m;
#endif
	int is_redis;
};

static void kv_open(struct kv *c, const char *impl, const char *host, int port)
{
	memset(c, 0, sizeof(*c));
	if (!strcmp(impl, "redis")) {
#ifdef HAVE_HIREDIS
		c->is_redis = 1;
		c->r = redisConnect(host, port);
		if (!c->r || c->r->err)
			die("cannot connect to redis");
		return;
#endif
	} else {
#ifdef HAVE_MEMCACHED
		char cfg[256];
		snprintf(cfg, sizeof(cfg), "--SERVER=%s:%d --BINARY-PROTOCOL", host, port);
		c->m = memcached(cfg, strlen(cfg));
		if (!c->m)
			die("cannot configure libmemcached");
		memcached_behavior_set(c->m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
		return;
#endif
	}
	die("this peer was not built (configure found no client library)");
}

static void kv_put(struct kv *c, const char *k, size_t kl, const void *v, size_t vl)
{
#ifdef HAVE_HIREDIS
	if (c->is_redis) {
		redisReply *rep = redisCommand(c->r, "SET %b %b", k, kl, v, vl);
		if (!rep || rep->type == REDIS_REPLY_ERROR)
			die("redis SET failed");
		freeReplyObject(rep);
		return;
	}
#endif
#ifdef HAVE_MEMCACHED
	if (memcached_set(c->m, k, kl, v, vl, 0, 0) != MEMCACHED_SUCCESS)
		die("memcached set failed");
#endif
}

static void kv_get(struct kv *c, const char *k, size_t kl, void *buf, size_t cap, size_t *vl)
{
#ifdef HAVE_HIREDIS
	if (c->is_redis) {
		redisReply *rep = redisCommand(c->r, "GET %b", k, kl);
		if (!rep || rep->type != REDIS_REPLY_STRING)
			die("redis GET failed");
		*vl = rep->len;
		memcpy(buf, rep->str, rep->len < cap ? rep->len : cap);
		freeReplyObject(rep);
		return;
	}
#endif
#ifdef HAVE_MEMCACHED
	memcached_return_t rc;
	uint32_t flags;
	char *v = memcached_get(c->m, k, kl, vl, &flags, &rc);
	if (!v)
		die("memcached get failed");
	memcpy(buf, v, *vl < cap ? *vl : cap);
	free(v);
#endif
}

/*
 * CLIENTS processes, each with its own connection: put n keys, then get them; started together
 * (a pipe each tells it to go), aggregate rate = all operations / the slowest client's time.
 */
static int run(const char *cas, const char *impl, const char *host, int port, int clients, long n,
	       size_t size)
{
	double *t = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int go[2], ready[2];
	double put = 0, get = 0;

	/* B9_KEY_PREFIX: instances on several nodes use keys of their own */
	const char *pfx = getenv("B9_KEY_PREFIX") ? getenv("B9_KEY_PREFIX") : "";

	if (t == MAP_FAILED || pipe(go) || pipe(ready) || clients < 1 || clients > 256)
		die("setup (1..256 clients)");
	for (int r = 0; r < clients; r++) {
		if (fork() == 0) {
			struct kv c;
			unsigned char *v = malloc(size), *g = malloc(size);
			char k[64], x;
			size_t vl = 0;
			kv_open(&c, impl, host, port);
			memset(v, r + 1, size);
			if (write(ready[1], "r", 1) != 1 || read(go[0], &x, 1) != 1)
				_exit(1);
			double t0 = now();
			for (long i = 0; i < n; i++) {
				int kl = snprintf(k, sizeof(k), "%sc%d-%ld", pfx, r, i);
				kv_put(&c, k, (size_t)kl, v, size);
			}
			t[2 * r] = now() - t0;
			t0 = now();
			for (long i = 0; i < n; i++) {
				int kl = snprintf(k, sizeof(k), "%sc%d-%ld", pfx, r, i);
				kv_get(&c, k, (size_t)kl, g, size, &vl);
			}
			t[2 * r + 1] = now() - t0;
			_exit(vl == size && !memcmp(g, v, size) ? 0 : 3);
		}
	}
	for (int r = 0; r < clients; r++) {
		char x;
		if (read(ready[0], &x, 1) != 1)
			die("a client did not start");
	}
	/* B9_START_AT (seconds since the epoch): instances on several nodes start together. */
	const char *at = getenv("B9_START_AT");
	if (at && *at) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		double wait = atof(at) - (ts.tv_sec + ts.tv_nsec / 1e9);
		if (wait > 0 && wait < 600) {
			struct timespec d = { (time_t)wait, (long)((wait - (time_t)wait) * 1e9) };
			nanosleep(&d, NULL);
		}
	}
	for (int r = 0; r < clients; r++)
		if (write(go[1], "g", 1) != 1)
			die("go");
	for (int r = 0; r < clients; r++) {
		int st;
		wait(&st);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			die("a client failed");
	}
	for (int r = 0; r < clients; r++) {
		put = t[2 * r] > put ? t[2 * r] : put;
		get = t[2 * r + 1] > get ? t[2 * r + 1] : get;
	}
	printf("result,B9,%s put,%zu,%s,rate_per_s,%.0f\n", cas, size, impl, clients * n / put);
	printf("result,B9,%s get,%zu,%s,rate_per_s,%.0f\n", cas, size, impl, clients * n / get);
	return 0;
}

/* One client, n small puts pipelined (Redis: append all, then read all replies). */
static int batch(const char *impl, const char *host, int port, long n, size_t size)
{
	struct kv c;
	unsigned char *v = calloc(1, size);
	char k[64];
	double best = 1e9;

	kv_open(&c, impl, host, port);
	for (int rep = 0; rep < 3; rep++) {
		double t0 = now();
#ifdef HAVE_HIREDIS
		if (c.is_redis) {
			for (long i = 0; i < n; i++) {
				int kl = snprintf(k, sizeof(k), "b%ld", i);
				redisAppendCommand(c.r, "SET %b %b", k, (size_t)kl, v, size);
			}
			for (long i = 0; i < n; i++) {
				void *r;
				if (redisGetReply(c.r, &r) != REDIS_OK)
					die("pipelined SET failed");
				freeReplyObject(r);
			}
		}
#endif
#ifdef HAVE_MEMCACHED
		if (!c.is_redis) {
			/* noreply sets: the client writes them back to back, the server answers none */
			memcached_behavior_set(c.m, MEMCACHED_BEHAVIOR_NOREPLY, 1);
			for (long i = 0; i < n; i++) {
				int kl = snprintf(k, sizeof(k), "b%ld", i);
				memcached_return_t rc = memcached_set(c.m, k, (size_t)kl, (char *)v, size, 0, 0);
				if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_BUFFERED)
					die("noreply set failed");
			}
			memcached_behavior_set(c.m, MEMCACHED_BEHAVIOR_NOREPLY, 0);
			/* a get on the same connection: the server handled every set before it */
			size_t vl;
			uint32_t fl;
			memcached_return_t rc;
			snprintf(k, sizeof(k), "b%ld", n - 1);
			free(memcached_get(c.m, k, strlen(k), &vl, &fl, &rc));
			if (rc != MEMCACHED_SUCCESS)
				die("the last noreply set is missing");
		}
#endif
		double t = now() - t0;
		best = t < best ? t : best;
	}
	printf("result,B9,batch put,%zu,%s,rate_per_s,%.0f\n", size, impl, n / best);
	free(v);
	return 0;
}

/* Wait up to 10 s for a server to answer (it was just started). */
static int wait_server(const char *impl, const char *host, int port)
{
	for (int i = 0; i < 1000; i++) {
#ifdef HAVE_HIREDIS
		if (!strcmp(impl, "redis")) {
			redisContext *r = redisConnect(host, port);
			redisReply *rep = r && !r->err ? redisCommand(r, "PING") : NULL;
			int ok = rep != NULL;
			if (rep)
				freeReplyObject(rep);
			if (r)
				redisFree(r);
			if (ok)
				return 0;
		}
#endif
#ifdef HAVE_MEMCACHED
		if (!strcmp(impl, "memcached")) {
			char cfg[256];
			snprintf(cfg, sizeof(cfg), "--SERVER=%s:%d --BINARY-PROTOCOL", host, port);
			memcached_st *m = memcached(cfg, strlen(cfg));
			int ok = m && memcached_set(m, "ping", 4, "x", 1, 0, 0) == MEMCACHED_SUCCESS;
			if (m)
				memcached_free(m);
			if (ok)
				return 0;
		}
#endif
		usleep(10000);
	}
	return 1;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "has")) { /* was this peer's client library found? */
#ifdef HAVE_HIREDIS
		if (!strcmp(argv[2], "redis"))
			return 0;
#endif
#ifdef HAVE_MEMCACHED
		if (!strcmp(argv[2], "memcached"))
			return 0;
#endif
		return 1;
	}
	if (argc >= 5 && !strcmp(argv[1], "wait"))
		return wait_server(argv[2], argv[3], atoi(argv[4]));
	if (argc >= 9 && !strcmp(argv[1], "run"))
		return run(argv[2], argv[3], argv[4], atoi(argv[5]), atoi(argv[6]), atol(argv[7]),
			   strtoull(argv[8], NULL, 10));
	if (argc >= 7 && !strcmp(argv[1], "batch"))
		return batch(argv[2], argv[3], atoi(argv[4]), atol(argv[5]),
			     strtoull(argv[6], NULL, 10));
	fprintf(stderr, "usage: bench_kv run CASE redis|memcached HOST PORT CLIENTS N SIZE | batch "
			"redis|memcached HOST PORT N SIZE\n");
	return 2;
}
