/* tests/bench/bench_nng.c: the nng ipc peer of B1 (pair0 ping-pong between two pinned processes). */
#include "bench_util.h"

#include <sys/wait.h>
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>

static void die(const char *what, int rv)
{
	fprintf(stderr, "bench_nng: %s: %s\n", what, nng_strerror(rv));
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_nng DIR [ITERS]\n");
		return 2;
	}
	long base = argc > 2 ? atol(argv[2]) : 4000;
	size_t maxsz = bench_lat_sizes[BENCH_NELEM(bench_lat_sizes) - 1];
	unsigned char *buf = calloc(1, maxsz);
	char url[256];
	nng_socket s;
	int rv, st;

	if (!buf)
		return 1;
	snprintf(url, sizeof(url), "ipc://%s/nng", argv[1]);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	int parent = pid != 0;
	bench_pin(parent ? 0 : 1);
	if ((rv = nng_pair0_open(&s)))
		die("open", rv);
	nng_setopt_size(s, NNG_OPT_RECVMAXSZ, 0); /* no limit: up to 1 MiB travels */
	if (parent)
		rv = nng_listen(s, url, NULL, 0);
	else
		while ((rv = nng_dial(s, url, NULL, 0)) == NNG_ECONNREFUSED || rv == NNG_ENOENT)
			usleep(1000);
	if (rv)
		die(url, rv);
	for (size_t i = 0; i < BENCH_NELEM(bench_lat_sizes); i++) {
		size_t size = bench_lat_sizes[i], len;
		long n = bench_iters(bench_scale(base), size);
		long per = n / bench_reps() > 0 ? n / bench_reps() : 1;
		double t[BENCH_REPS];
		for (int r = -1; r < bench_reps(); r++) {
			double t0 = bench_now();
			for (long k = 0; k < per; k++) {
				if (parent && (rv = nng_send(s, buf, size, 0)))
					die("send", rv);
				len = maxsz;
				if ((rv = nng_recv(s, buf, &len, 0)))
					die("recv", rv);
				if (!parent && (rv = nng_send(s, buf, len, 0)))
					die("send", rv);
			}
			if (r >= 0)
				t[r] = (bench_now() - t0) / per / 2 * 1e6;
		}
		if (parent)
			bench_result("B1", "pingpong", size, "nng-ipc", "lat_us", bench_median(t, bench_reps()));
	}
	if (!parent) {
		usleep(100000); /* let the last echo leave before closing */
		nng_close(s);
		_exit(0);
	}
	nng_close(s);
	free(buf);
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
