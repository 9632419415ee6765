/* tests/bench/bench_zmq.c: the ZeroMQ ipc peers of B1 (PAIR ping-pong), B2 (PUSH/PULL stream) and B3 (PUSH/PULL fan-in). */
#include "bench_util.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <zmq.h>

#define WINDOW 64
#define MAX_PROCS 16
#define MPMC_SIZE 64

static void die(const char *what)
{
	fprintf(stderr, "bench_zmq: %s: %s\n", what, zmq_strerror(zmq_errno()));
	exit(1);
}

static int reap(pid_t pid)
{
	int st;

	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void *sock(void *ctx, int type, const char *ep, int bind)
{
	void *s = zmq_socket(ctx, type);
	int hwm = 0; /* unlimited: the window and ack bound what is in flight */

	if (!s)
		die("socket");
	zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if ((bind ? zmq_bind(s, ep) : zmq_connect(s, ep)) != 0)
		die(ep);
	return s;
}

static void xsend(void *s, const void *buf, size_t len)
{
	while (zmq_send(s, buf, len, 0) < 0)
		if (zmq_errno() != EINTR)
			die("send");
}

static int xrecv(void *s, void *buf, size_t cap)
{
	int r;

	while ((r = zmq_recv(s, buf, cap, 0)) < 0)
		if (zmq_errno() != EINTR)
			return -1;
	return r;
}

/* B1 and B2 between two processes: the parent (CPU 0) measures, the child (CPU 1) echoes or acks. */
static int two_procs(const char *what, const char *dir, long base)
{
	int lat = !strcmp(what, "lat");
	const size_t *sizes = lat ? bench_lat_sizes : bench_bw_sizes;
	size_t nsizes = lat ? BENCH_NELEM(bench_lat_sizes) : BENCH_NELEM(bench_bw_sizes);
	size_t maxsz = sizes[nsizes - 1];
	char ep_a[256], ep_b[256];
	unsigned char *buf = calloc(1, maxsz);

	if (!buf)
		die("calloc");
	snprintf(ep_a, sizeof(ep_a), "ipc://%s/a", dir);
	snprintf(ep_b, sizeof(ep_b), "ipc://%s/b", dir);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	int parent = pid != 0;
	bench_pin(parent ? 0 : 1);
	void *ctx = zmq_ctx_new();
	void *out, *in;
	if (lat) {
		out = in = sock(ctx, ZMQ_PAIR, ep_a, parent);
	} else { /* data PUSH parent -> child, acks PUSH child -> parent */
		out = sock(ctx, ZMQ_PUSH, parent ? ep_a : ep_b, parent);
		in = sock(ctx, ZMQ_PULL, parent ? ep_b : ep_a, parent);
	}
	for (size_t i = 0; i < nsizes; i++) {
		size_t size = sizes[i];
		long n = bench_iters(bench_scale(base), size);
		long per = n / bench_reps() > 0 ? n / bench_reps() : 1;
		double t[BENCH_REPS];
		for (int r = -1; r < bench_reps(); r++) { /* round -1 connects and warms up */
			double t0 = bench_now();
			for (long k = 0; k < per; k++) {
				if (lat && parent) {
					xsend(out, buf, size);
					if (xrecv(in, buf, maxsz) < 0)
						die("recv");
				} else if (lat) {
					int len = xrecv(in, buf, maxsz);
					if (len < 0)
						die("recv");
					xsend(out, buf, len);
				} else if (parent) {
					for (int m = 0; m < WINDOW; m++)
						xsend(out, buf, size);
					if (xrecv(in, buf, maxsz) < 0)
						die("recv ack");
				} else {
					for (int m = 0; m < WINDOW; m++)
						if (xrecv(in, buf, maxsz) < 0)
							die("recv");
					xsend(out, buf, 1);
				}
			}
			double dt = bench_now() - t0;
			if (r >= 0)
				t[r] = lat ? dt / per / 2 * 1e6 : (double)size * WINDOW * per / dt / 1e6;
		}
		if (parent && lat)
			bench_result("B1", "pingpong", size, "zmq-ipc", "lat_us", bench_median(t, bench_reps()));
		else if (parent)
			bench_result("B2", "stream", size, "zmq-ipc", "bw_MBps", bench_median(t, bench_reps()));
	}
	int linger = 2000; /* the last echo or ack must still leave */
	zmq_setsockopt(out, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_close(out);
	if (in != out) {
		zmq_setsockopt(in, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_close(in);
	}
	zmq_ctx_term(ctx);
	if (!parent)
		_exit(0);
	free(buf);
	return reap(pid) ? 1 : 0;
}

struct shared {
	_Atomic int ready, go, bound;
	_Atomic long received;
	double done_at[MAX_PROCS];
};

/*
 * B3: each consumer binds a PULL socket; each producer's PUSH connects to all of them and
 * deals its messages round robin. Consumers stop once all messages are counted in.
 */
static int mpmc(const char *dir, int n, long base)
{
	long total = bench_scale(base) / n * n;
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pids[2 * MAX_PROCS];
	int failed = 0;

	if (n < 1 || n > MAX_PROCS || sh == MAP_FAILED)
		return 2;
	memset(sh, 0, sizeof(*sh));
	fflush(stdout);
	for (int i = 0; i < 2 * n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork");
		if (pids[i])
			continue;
		int producer = i < n;
		char ep[256];
		unsigned char msg[MPMC_SIZE] = { 0 };
		void *ctx = zmq_ctx_new(), *s;
		bench_pin(i);
		if (producer) {
			/* connect once every consumer is bound: a refused ipc connect retries only after 100 ms */
			while (atomic_load(&sh->bound) < n)
				usleep(100);
			s = zmq_socket(ctx, ZMQ_PUSH);
			for (int c = 0; c < n; c++) {
				snprintf(ep, sizeof(ep), "ipc://%s/c%d", dir, c);
				if (zmq_connect(s, ep))
					die("connect");
			}
		} else {
			snprintf(ep, sizeof(ep), "ipc://%s/c%d", dir, i - n);
			s = sock(ctx, ZMQ_PULL, ep, 1);
			int tmo = 5;
			zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
			atomic_fetch_add(&sh->bound, 1);
		}
		atomic_fetch_add(&sh->ready, 1);
		while (!atomic_load(&sh->go))
			usleep(50);
		if (producer) {
			for (long k = 0; k < total / n; k++)
				xsend(s, msg, sizeof(msg));
		} else {
			while (atomic_load(&sh->received) < total) {
				if (zmq_recv(s, msg, sizeof(msg), 0) == MPMC_SIZE)
					atomic_fetch_add(&sh->received, 1);
			}
			sh->done_at[i - n] = bench_now();
		}
		zmq_close(s); /* the default linger lets a producer's queue drain */
		zmq_ctx_term(ctx);
		_exit(0);
	}
	while (atomic_load(&sh->ready) < 2 * n)
		usleep(100);
	usleep(20000); /* let the PUSH sockets finish connecting so round robin spreads over all */
	double t0 = bench_now();
	atomic_store(&sh->go, 1);
	for (int i = 0; i < 2 * n; i++)
		failed |= reap(pids[i]);
	double t1 = 0;
	for (int i = 0; i < n; i++)
		if (sh->done_at[i] > t1)
			t1 = sh->done_at[i];
	if (failed || atomic_load(&sh->received) != total) {
		fprintf(stderr, "bench_zmq: mpmc: %ld of %ld messages\n", (long)atomic_load(&sh->received), total);
		return 1;
	}
	char bcase[16];
	snprintf(bcase, sizeof(bcase), "%d+%d", n, n);
	bench_result("B3", bcase, MPMC_SIZE, "zmq-ipc", "rate_per_s", total / (t1 - t0));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_zmq lat|bw DIR [ITERS] | bench_zmq mpmc DIR N [MESSAGES]\n");
		return 2;
	}
	if (!strcmp(argv[1], "lat"))
		return two_procs("lat", argv[2], argc > 3 ? atol(argv[3]) : 4000);
	if (!strcmp(argv[1], "bw"))
		return two_procs("bw", argv[2], argc > 3 ? atol(argv[3]) : 200);
	if (!strcmp(argv[1], "mpmc") && argc > 3)
		return mpmc(argv[2], atoi(argv[3]), argc > 4 ? atol(argv[4]) : 400000);
	return 2;
}
