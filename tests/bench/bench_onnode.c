/* tests/bench/bench_onnode.c: B1/B2/B3/B7 for dragon channels and pools and the local peers (futex, pipe, memcpy, malloc). */
#include "bench_util.h"

#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <dragon/channel.h>
#include <dragon/error.h>
#include <dragon/pool.h>

#define MAX_PROCS 16

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_onnode: %s: %s\n", what, rc ? dragon_errmsg() : strerror(errno));
	exit(1);
}

static int reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Shared between the processes of one measurement (anonymous shared mapping made before fork). */
struct shared {
	_Atomic uint32_t turn; /* futex ping-pong: whose move it is */
	_Atomic int ready;
	_Atomic int go;
	_Atomic long received;
	double done_at[MAX_PROCS];
	unsigned char buf[]; /* futex ping-pong payload */
};

static struct shared *shared_map(size_t payload)
{
	struct shared *s = mmap(NULL, sizeof(*s) + payload, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (s == MAP_FAILED)
		die("mmap", 0);
	memset(s, 0, sizeof(*s));
	return s;
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static int read_full(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t r = read(fd, (char *)buf + got, len - got);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		got += r;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	for (size_t put = 0; put < len;) {
		ssize_t r = write(fd, (const char *)buf + put, len - put);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		put += r;
	}
	return 0;
}

/* ---- B1: ping-pong latency ---- */

enum lat_kind { LAT_DRAGON, LAT_FUTEX, LAT_PIPE };

struct lat_ctx {
	enum lat_kind kind;
	dragon_channel_t *ab, *ba;
	dragon_wait_t w;
	struct shared *sh;
	int ab_fd[2], ba_fd[2];
	unsigned char *buf;
};

/* One round trip as the initiator (ping) or the echoer (!ping). */
static void lat_step(struct lat_ctx *c, size_t size, int ping)
{
	size_t len;
	int rc;

	switch (c->kind) {
	case LAT_DRAGON:
		if (ping) {
			if ((rc = dragon_channel_send(c->ab, c->buf, size, &c->w)))
				die("send", rc);
			if ((rc = dragon_channel_recv(c->ba, c->buf, size, &len, &c->w)))
				die("recv", rc);
		} else {
			if ((rc = dragon_channel_recv(c->ab, c->buf, size, &len, &c->w)))
				die("recv", rc);
			if ((rc = dragon_channel_send(c->ba, c->buf, size, &c->w)))
				die("send", rc);
		}
		break;
	case LAT_FUTEX: {
		/* The floor: copy the payload through shared memory and wake the sleeping peer. */
		uint32_t me = ping ? 0 : 1;
		if (ping) {
			memcpy(c->sh->buf, c->buf, size);
			atomic_store(&c->sh->turn, 1);
			futex_wake(&c->sh->turn);
		}
		while (atomic_load(&c->sh->turn) != me)
			futex_wait(&c->sh->turn, !me);
		memcpy(c->buf, c->sh->buf, size);
		if (!ping) {
			memcpy(c->sh->buf, c->buf, size);
			atomic_store(&c->sh->turn, 0);
			futex_wake(&c->sh->turn);
		}
		break;
	}
	case LAT_PIPE:
		if (ping) {
			if (write_full(c->ab_fd[1], c->buf, size) || read_full(c->ba_fd[0], c->buf, size))
				die("pipe", 0);
		} else {
			if (read_full(c->ab_fd[0], c->buf, size) || write_full(c->ba_fd[1], c->buf, size))
				die("pipe", 0);
		}
		break;
	}
}

static int bench_lat(const char *impl, long base)
{
	struct lat_ctx c = { 0 };
	dragon_pool_t *pool = NULL;
	size_t maxsz = bench_lat_sizes[BENCH_NELEM(bench_lat_sizes) - 1];
	int rc;

	c.w.timeout_us = -1;
	if (!strncmp(impl, "dragon-", 7)) {
		const dragon_pool_attr_t pa = { .size = 64u << 20 };
		const dragon_channel_attr_t ca = { .capacity = 2 };
		c.kind = LAT_DRAGON;
		if (!strcmp(impl, "dragon-spin"))
			c.w.mode = DRAGON_WAIT_SPIN;
		else if (!strcmp(impl, "dragon-idle"))
			c.w.mode = DRAGON_WAIT_IDLE;
		else if (!strcmp(impl, "dragon-adaptive"))
			c.w.mode = DRAGON_WAIT_ADAPTIVE;
		else
			return fprintf(stderr, "unknown impl %s\n", impl), 2;
		if ((rc = dragon_pool_create(&pa, &pool)) || (rc = dragon_channel_create(pool, &ca, &c.ab)) ||
		    (rc = dragon_channel_create(pool, &ca, &c.ba)))
			die("create", rc);
	} else if (!strcmp(impl, "futex")) {
		c.kind = LAT_FUTEX;
		c.sh = shared_map(maxsz);
	} else if (!strcmp(impl, "pipe")) {
		c.kind = LAT_PIPE;
		if (pipe(c.ab_fd) || pipe(c.ba_fd))
			die("pipe", 0);
	} else {
		return fprintf(stderr, "unknown impl %s\n", impl), 2;
	}
	c.buf = calloc(1, maxsz);
	if (!c.buf)
		die("calloc", 0);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork", 0);
	int ping = pid != 0;
	bench_pin(ping ? 0 : 1);
	for (size_t i = 0; i < BENCH_NELEM(bench_lat_sizes); i++) {
		size_t size = bench_lat_sizes[i];
		long n = bench_iters(bench_scale(base), size);
		long per = n / bench_reps() > 0 ? n / bench_reps() : 1;
		double t[BENCH_REPS];
		for (long k = 0; k < per / 4 + 1; k++) /* warm up caches and the pool */
			lat_step(&c, size, ping);
		for (int r = 0; r < bench_reps(); r++) {
			double t0 = bench_now();
			for (long k = 0; k < per; k++)
				lat_step(&c, size, ping);
			t[r] = (bench_now() - t0) / per / 2 * 1e6;
		}
		if (ping)
			bench_result("B1", "pingpong", size, impl, "lat_us", bench_median(t, bench_reps()));
	}
	if (!ping)
		_exit(0);
	rc = reap(pid);
	if (pool) {
		dragon_channel_destroy(c.ab);
		dragon_channel_destroy(c.ba);
		dragon_pool_destroy(pool);
	}
	free(c.buf);
	return rc ? 1 : 0;
}

/* ---- B2: streaming bandwidth, windows of 64 messages each acknowledged ---- */

#define WINDOW 64

static int bench_bw(const char *impl, long base)
{
	size_t maxsz = bench_bw_sizes[BENCH_NELEM(bench_bw_sizes) - 1];
	unsigned char *buf = calloc(1, maxsz), *dst = calloc(1, maxsz);
	int rc;

	if (!buf || !dst)
		die("calloc", 0);
	memset(buf, 0x5a, maxsz);
	if (!strcmp(impl, "memcpy")) {
		for (size_t i = 0; i < BENCH_NELEM(bench_bw_sizes); i++) {
			size_t size = bench_bw_sizes[i];
			long n = bench_iters(bench_scale(base), size) * WINDOW;
			double t[BENCH_REPS];
			for (int r = 0; r < bench_reps(); r++) {
				double t0 = bench_now();
				for (long k = 0; k < n / bench_reps() + 1; k++) {
					memcpy(dst, buf, size);
					__asm__ __volatile__("" ::"r"(dst) : "memory");
				}
				t[r] = (double)size * (n / bench_reps() + 1) / (bench_now() - t0) / 1e6;
			}
			bench_result("B2", "stream", size, impl, "bw_MBps", bench_median(t, bench_reps()));
		}
		return 0;
	}
	/* dragon-zc: zero-copy, the sender fills a pool allocation and passes it (one copy, not two) */
	int zc = !strcmp(impl, "dragon-zc");
	/* dragon-batch: the window as one dragon_channel_send_many, drained by recv_many */
	int batch = !strcmp(impl, "dragon-batch");
	if (strcmp(impl, "dragon-adaptive") && strcmp(impl, "dragon-spin") && !zc && !batch)
		return fprintf(stderr, "unknown impl %s\n", impl), 2;
	const dragon_pool_attr_t pa = { .size = (size_t)(WINDOW + 8) * maxsz + (64u << 20) };
	const dragon_channel_attr_t ca = { .capacity = WINDOW };
	dragon_pool_t *pool;
	dragon_channel_t *data, *ack;
	const void *sbufs[WINDOW];
	void *rbufs[WINDOW];
	size_t lens[WINDOW], caps[WINDOW], rlens[WINDOW];
	for (int m = 0; m < WINDOW; m++) {
		sbufs[m] = buf;
		rbufs[m] = dst; /* every message lands on the same buffer, as the plain receive does */
		caps[m] = maxsz;
	}
	dragon_wait_t w = { .timeout_us = -1,
			    .mode = strcmp(impl, "dragon-spin") ? DRAGON_WAIT_ADAPTIVE : DRAGON_WAIT_SPIN };
	if ((rc = dragon_pool_create(&pa, &pool)) || (rc = dragon_channel_create(pool, &ca, &data)) ||
	    (rc = dragon_channel_create(pool, &ca, &ack)))
		die("create", rc);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork", 0);
	int sender = pid != 0;
	bench_pin(sender ? 0 : 1);
	for (size_t i = 0; i < BENCH_NELEM(bench_bw_sizes); i++) {
		size_t size = bench_bw_sizes[i], len;
		long windows = bench_iters(bench_scale(base), size);
		long per = windows / bench_reps() > 0 ? windows / bench_reps() : 1;
		double t[BENCH_REPS];
		for (int r = -1; r < bench_reps(); r++) { /* round -1 warms up */
			double t0 = bench_now();
			for (long k = 0; k < per; k++) {
				if (sender && batch) {
					size_t sent;
					for (int m = 0; m < WINDOW; m++)
						lens[m] = size;
					if ((rc = dragon_channel_send_many(data, sbufs, lens, WINDOW, &sent, &w)))
						die("send_many", rc);
					if ((rc = dragon_channel_recv(ack, dst, 1, &len, &w)))
						die("recv ack", rc);
				} else if (batch) {
					for (size_t got = 0, n; got < WINDOW; got += n)
						if ((rc = dragon_channel_recv_many(data, rbufs, caps, rlens,
										   WINDOW - got, &n, &w)))
							die("recv_many", rc);
					if ((rc = dragon_channel_send(ack, dst, 1, &w)))
						die("send ack", rc);
				} else if (sender) {
					for (int m = 0; m < WINDOW; m++) {
						dragon_mem_t mem;
						if (zc) {
							if ((rc = dragon_pool_alloc_wait(pool, size, 0, -1, &mem)))
								die("alloc", rc);
							memcpy(mem.ptr, buf, size);
							rc = dragon_channel_send_mem(data, &mem, &w);
						} else {
							rc = dragon_channel_send(data, buf, size, &w);
						}
						if (rc)
							die("send", rc);
					}
					if ((rc = dragon_channel_recv(ack, dst, 1, &len, &w)))
						die("recv ack", rc);
				} else {
					for (int m = 0; m < WINDOW; m++) {
						dragon_mem_t mem;
						if (zc) {
							if ((rc = dragon_channel_recv_mem(data, &mem, &w)))
								die("recv_mem", rc);
							if (mem.size < size || ((volatile unsigned char *)mem.ptr)[size - 1] != 0x5a)
							{
								fprintf(stderr, "bench_onnode: recv_mem: short or wrong message\n");
								exit(1);
							}
							rc = dragon_pool_free(&mem);
						} else {
							rc = dragon_channel_recv(data, dst, maxsz, &len, &w);
						}
						if (rc)
							die("recv", rc);
					}
					if ((rc = dragon_channel_send(ack, dst, 1, &w)))
						die("send ack", rc);
				}
			}
			if (r >= 0)
				t[r] = (double)size * WINDOW * per / (bench_now() - t0) / 1e6;
		}
		if (sender)
			bench_result("B2", "stream", size, impl, "bw_MBps", bench_median(t, bench_reps()));
	}
	if (!sender)
		_exit(0);
	rc = reap(pid);
	dragon_channel_destroy(data);
	dragon_channel_destroy(ack);
	dragon_pool_destroy(pool);
	free(buf);
	free(dst);
	return rc ? 1 : 0;
}

/* ---- B3: n producers and n consumers on one queue, 64 B messages ---- */

#define MPMC_SIZE 64
#define MPMC_BATCH 32

static void wait_go(struct shared *sh)
{
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->go))
		usleep(50);
}

static int bench_mpmc(const char *impl, int n, long base)
{
	long total = bench_scale(base) / n * n;
	struct shared *sh = shared_map(0);
	dragon_pool_t *pool = NULL;
	dragon_channel_t *ch = NULL;
	dragon_wait_t w = { .timeout_us = -1, .mode = DRAGON_WAIT_ADAPTIVE };
	int fds[2] = { -1, -1 }, rc, failed = 0;
	pid_t pids[2 * MAX_PROCS];

	if (n < 1 || n > MAX_PROCS)
		return fprintf(stderr, "1 <= n <= %d\n", MAX_PROCS), 2;
	/* dragon-batch: producers send 32 at a time (send_many), consumers take up to 32 (recv_many) */
	int batch = !strcmp(impl, "dragon-batch");
	if (!strcmp(impl, "dragon-adaptive") || batch) {
		const dragon_channel_attr_t ca = { .capacity = 256, .block_size = MPMC_SIZE };
		if ((rc = dragon_pool_create(NULL, &pool)) || (rc = dragon_channel_create(pool, &ca, &ch)))
			die("create", rc);
	} else if (!strcmp(impl, "pipe")) {
		if (pipe(fds))
			die("pipe", 0);
	} else {
		return fprintf(stderr, "unknown impl %s\n", impl), 2;
	}
	fflush(stdout);
	for (int i = 0; i < 2 * n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork", 0);
		if (pids[i])
			continue;
		int producer = i < n;
		unsigned char msg[MPMC_SIZE] = { 0 };
		size_t len;
		long got = 0;
		bench_pin(i);
		if (fds[0] >= 0)
			close(producer ? fds[0] : fds[1]);
		wait_go(sh);
		if (producer && batch) {
			unsigned char bm[MPMC_BATCH][MPMC_SIZE] = { { 0 } };
			const void *bufs[MPMC_BATCH];
			size_t lens[MPMC_BATCH], sent;
			for (int j = 0; j < MPMC_BATCH; j++) {
				bufs[j] = bm[j];
				lens[j] = MPMC_SIZE;
			}
			for (long k = 0; k < total / n; k += MPMC_BATCH) {
				size_t m = total / n - k < MPMC_BATCH ? (size_t)(total / n - k) : MPMC_BATCH;
				for (size_t j = 0; j < m; j++) {
					long v = k + (long)j;
					memcpy(bm[j], &v, sizeof(v));
				}
				if (dragon_channel_send_many(ch, bufs, lens, m, &sent, &w))
					_exit(3);
			}
			_exit(0);
		}
		if (batch) {
			unsigned char bm[MPMC_BATCH][MPMC_SIZE];
			void *bufs[MPMC_BATCH];
			size_t caps[MPMC_BATCH], lens[MPMC_BATCH], m;
			int stop = 0;
			for (int j = 0; j < MPMC_BATCH; j++) {
				bufs[j] = bm[j];
				caps[j] = MPMC_SIZE;
			}
			while (!stop) {
				if (dragon_channel_recv_many(ch, bufs, caps, lens, MPMC_BATCH, &m, &w))
					_exit(3);
				for (size_t j = 0; j < m; j++) {
					if (lens[j] != MPMC_SIZE) { /* a stop: pass on others taken with it */
						for (size_t x = j + 1; x < m; x++)
							if (lens[x] != MPMC_SIZE &&
							    dragon_channel_send(ch, "", 1, &w))
								_exit(3);
						stop = 1;
						break;
					}
					got++;
				}
			}
			atomic_fetch_add(&sh->received, got);
			sh->done_at[i - n] = bench_now();
			_exit(0);
		}
		if (producer) {
			for (long k = 0; k < total / n; k++) {
				memcpy(msg, &k, sizeof(k));
				if (ch ? dragon_channel_send(ch, msg, sizeof(msg), &w) != 0
				       : write_full(fds[1], msg, sizeof(msg)) != 0)
					_exit(3);
			}
			_exit(0);
		}
		for (;;) {
			if (ch) {
				if (dragon_channel_recv(ch, msg, sizeof(msg), &len, &w))
					_exit(3);
				if (len != MPMC_SIZE) /* a stop message */
					break;
			} else if (read_full(fds[0], msg, sizeof(msg))) {
				break; /* EOF: every producer is done */
			}
			got++;
		}
		atomic_fetch_add(&sh->received, got);
		sh->done_at[i - n] = bench_now();
		_exit(0);
	}
	if (fds[0] >= 0) {
		close(fds[0]);
		close(fds[1]);
	}
	while (atomic_load(&sh->ready) < 2 * n)
		usleep(100);
	double t0 = bench_now();
	atomic_store(&sh->go, 1);
	for (int i = 0; i < n; i++)
		failed |= reap(pids[i]);
	if (ch) /* FIFO: the stops arrive after every data message */
		for (int i = 0; i < n; i++)
			if ((rc = dragon_channel_send(ch, "", 1, &w)))
				die("send stop", rc);
	for (int i = n; i < 2 * n; i++)
		failed |= reap(pids[i]);
	double t1 = 0;
	for (int i = 0; i < n; i++)
		if (sh->done_at[i] > t1)
			t1 = sh->done_at[i];
	if (failed || atomic_load(&sh->received) != total) {
		fprintf(stderr, "bench_onnode: mpmc %s: %ld of %ld messages, failed %d\n", impl,
			(long)atomic_load(&sh->received), total, failed);
		return 1;
	}
	char bcase[16];
	snprintf(bcase, sizeof(bcase), "%d+%d", n, n);
	bench_result("B3", bcase, MPMC_SIZE, impl, "rate_per_s", total / (t1 - t0));
	if (ch) {
		dragon_channel_destroy(ch);
		dragon_pool_destroy(pool);
	}
	return 0;
}

/* ---- B7: allocate + free in batches of 32 (so neither side gets the trivial LIFO case only) ---- */

#define BATCH 32

static int bench_alloc(const char *impl, long base)
{
	static const struct {
		const char *name;
		size_t size; /* 0: random 8 B .. 16 KiB */
	} cases[] = { { "64B", 64 }, { "4KiB", 4096 }, { "random", 0 } };
	int dragon = !strcmp(impl, "dragon-pool");
	dragon_pool_t *pool = NULL;
	dragon_mem_t mem[BATCH];
	void *p[BATCH];
	size_t sizes[1024];
	int rc;

	if (!dragon && strcmp(impl, "glibc-malloc"))
		return fprintf(stderr, "unknown impl %s\n", impl), 2;
	if (dragon && (rc = dragon_pool_create(NULL, &pool)))
		die("pool create", rc);
	srand(42);
	for (size_t i = 0; i < BENCH_NELEM(cases); i++) {
		long batches = bench_scale(base) / BATCH + 1;
		double t[BENCH_REPS];
		for (int k = 0; k < 1024; k++)
			sizes[k] = cases[i].size ? cases[i].size : 8 + (size_t)rand() % (16384 - 8);
		for (int r = -1; r < bench_reps(); r++) {
			unsigned s = 0;
			double t0 = bench_now();
			for (long b = 0; b < batches; b++) {
				for (int k = 0; k < BATCH; k++, s++) {
					size_t sz = sizes[s % 1024];
					if (dragon) {
						if ((rc = dragon_pool_alloc(pool, sz, 0, &mem[k])))
							die("alloc", rc);
					} else if (!(p[k] = malloc(sz))) {
						die("malloc", 0);
					}
				}
				for (int k = 0; k < BATCH; k++) {
					if (dragon) {
						if ((rc = dragon_pool_free(&mem[k])))
							die("free", rc);
					} else {
						free(p[k]);
					}
				}
			}
			if (r >= 0)
				t[r] = (bench_now() - t0) / (batches * BATCH) * 1e9;
		}
		bench_result("B7", cases[i].name, cases[i].size, impl, "ns_per_op",
			     bench_median(t, bench_reps()));
	}
	if (pool)
		dragon_pool_destroy(pool);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_onnode lat|bw|alloc IMPL [ITERS]\n"
				"       bench_onnode mpmc IMPL N [MESSAGES]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	const char *what = argv[1], *impl = argv[2];
	if (!strcmp(what, "lat"))
		return bench_lat(impl, argc > 3 ? atol(argv[3]) : 20000);
	if (!strcmp(what, "bw"))
		return bench_bw(impl, argc > 3 ? atol(argv[3]) : 200);
	if (!strcmp(what, "alloc"))
		return bench_alloc(impl, argc > 3 ? atol(argv[3]) : 2000000);
	if (!strcmp(what, "mpmc") && argc > 3)
		return bench_mpmc(impl, atoi(argv[3]), argc > 4 ? atol(argv[4]) : 400000);
	fprintf(stderr, "bench_onnode: unknown benchmark %s\n", what);
	return 2;
}
