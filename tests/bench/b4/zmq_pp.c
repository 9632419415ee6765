/* tests/bench/b4/zmq_pp.c: B4 peer: ZeroMQ tcp PAIR ping-pong and windowed streaming across two namespaces. */
#include "../bench_util.h"

#include <errno.h>
#include <stdint.h>
#include <zmq.h>

#define WINDOW 64 /* streamed messages between acks, as in B2 */

static const char usage[] = "usage: zmq_pp server PORT\n"
			    "       zmq_pp ping IP PORT ITERS SIZE...   prints SIZE one-way-us per size\n"
			    "       zmq_pp stream IP PORT SIZE COUNT    prints MB/s\n";

/* What the client asks of the server before each run; size == 0 and count == 0 ends it. */
struct req {
	uint64_t size, count, stream;
};

static void die(const char *what)
{
	fprintf(stderr, "zmq_pp: %s: %s\n", what, zmq_strerror(zmq_errno()));
	exit(1);
}

static void xsend(void *s, const void *buf, size_t len)
{
	while (zmq_send(s, buf, len, 0) < 0)
		if (zmq_errno() != EINTR)
			die("send");
}

static size_t xrecv(void *s, void *buf, size_t cap)
{
	int r;

	while ((r = zmq_recv(s, buf, cap, 0)) < 0)
		if (zmq_errno() != EINTR)
			die("recv");
	return (size_t)r;
}

/* Echo each ping-pong message; in a stream answer one byte per window and at the end. */
static int server(void *s)
{
	struct req q;
	unsigned char *buf = NULL;

	for (;;) {
		if (xrecv(s, &q, sizeof(q)) != sizeof(q))
			return 1;
		if (!q.size && !q.count)
			return 0;
		free(buf);
		if (!(buf = malloc(q.size ? q.size : 1)))
			return 1;
		for (uint64_t i = 0; i < q.count; i++) {
			size_t n = xrecv(s, buf, q.size);
			if (!q.stream)
				xsend(s, buf, n);
			else if ((i + 1) % WINDOW == 0 || i + 1 == q.count)
				xsend(s, "a", 1);
		}
	}
}

static void ask(void *s, uint64_t size, uint64_t count, uint64_t stream)
{
	struct req q = {size, count, stream};

	xsend(s, &q, sizeof(q));
}

/* One-way latency per size: the median of BENCH_REPS batches, each round trip / 2. */
static void ping(void *s, long iters, char **sizes, int nsizes)
{
	long batch = iters / BENCH_REPS > 0 ? iters / BENCH_REPS : 1;

	for (int k = 0; k < nsizes; k++) {
		size_t size = strtoull(sizes[k], NULL, 10);
		unsigned char *buf = calloc(1, size ? size : 1);
		double t[BENCH_REPS];
		if (!buf)
			die("calloc");
		ask(s, size, (uint64_t)(batch * BENCH_REPS + 2), 0);
		for (int w = 0; w < 2; w++) { /* warm-up: connection and buffers */
			xsend(s, buf, size);
			xrecv(s, buf, size);
		}
		for (int r = 0; r < BENCH_REPS; r++) {
			double t0 = bench_now();
			for (long i = 0; i < batch; i++) {
				xsend(s, buf, size);
				if (xrecv(s, buf, size) != size)
					die("short echo");
			}
			t[r] = (bench_now() - t0) / batch / 2 * 1e6;
		}
		printf("%zu %.2f\n", size, bench_median(t, BENCH_REPS));
		fflush(stdout);
		free(buf);
	}
}

static void stream(void *s, size_t size, long count)
{
	unsigned char *buf = calloc(1, size ? size : 1), a;

	if (!buf)
		die("calloc");
	ask(s, size, (uint64_t)count, 1);
	double t0 = bench_now();
	for (long i = 0; i < count; i++) {
		xsend(s, buf, size);
		if ((i + 1) % WINDOW == 0 || i + 1 == count)
			xrecv(s, &a, 1);
	}
	printf("%.1f\n", (double)size * count / (bench_now() - t0) / 1e6);
	free(buf);
}

int main(int argc, char **argv)
{
	char ep[128];
	int hwm = 0; /* unlimited: the window and ack bound what is in flight */
	int server_mode = argc == 3 && !strcmp(argv[1], "server");

	if (!server_mode && !(argc >= 6 && !strcmp(argv[1], "ping")) &&
	    !(argc == 6 && !strcmp(argv[1], "stream"))) {
		fputs(usage, stderr);
		return 2;
	}
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_PAIR);
	if (!s)
		die("socket");
	zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (server_mode) {
		snprintf(ep, sizeof(ep), "tcp://*:%s", argv[2]);
		if (zmq_bind(s, ep))
			die(ep);
		int rc = server(s);
		zmq_close(s);
		zmq_ctx_term(ctx);
		return rc;
	}
	/* connect retries by itself in the background, so a server that starts late is fine */
	snprintf(ep, sizeof(ep), "tcp://%s:%s", argv[2], argv[3]);
	if (zmq_connect(s, ep))
		die(ep);
	if (!strcmp(argv[1], "ping"))
		ping(s, atol(argv[4]), argv + 5, argc - 5);
	else
		stream(s, strtoull(argv[4], NULL, 10), atol(argv[5]));
	ask(s, 0, 0, 0);
	/* linger so the stop request leaves before the context closes */
	int linger = 1000;
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_close(s);
	zmq_ctx_term(ctx);
	return 0;
}
