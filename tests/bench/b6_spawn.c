/* tests/bench/b6_spawn.c: process launch rate, through the fabric or with a raw posix_spawn loop. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <dragon/dragon.h>

extern char **environ;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* N runs of /bin/true with up to K in flight: the oldest is waited for before the next starts. */
int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 2000, k = argc > 3 ? atoi(argv[3]) : 4, rc;
	const char *args[] = {"/bin/true", NULL};
	double t0, t;

	if (argc < 2 || n < 1 || k < 1 || k > 64) {
		fprintf(stderr, "usage: b6_spawn dragon|posix [N [K]]\n");
		return 2;
	}
	if (!strcmp(argv[1], "posix")) {
		pid_t ring[64];
		int st;
		t0 = now();
		for (int i = 0; i < n + k; i++) {
			if (i >= k && waitpid(ring[i % k], &st, 0) < 0)
				return 1;
			if (i < n && posix_spawn(&ring[i % k], args[0], NULL, NULL, (char **)args,
						 environ))
				return 1;
		}
	} else {
		dragon_puid_t ring[64];
		dragon_process_opts_t o = DRAGON_PROCESS_OPTS_INIT;
		int st;
		o.output = DRAGON_OUTPUT_DISCARD;
		if ((rc = dragon_init())) {
			fprintf(stderr, "b6_spawn: %s\n", dragon_errmsg());
			return 1;
		}
		t0 = now();
		for (int i = 0; i < n + k; i++) {
			if (i >= k && (rc = dragon_process_wait(ring[i % k], -1, &st))) {
				fprintf(stderr, "b6_spawn: wait: %s\n", dragon_errmsg());
				return 1;
			}
			if (i < n && (rc = dragon_process_create(args, &o, &ring[i % k]))) {
				fprintf(stderr, "b6_spawn: create: %s\n", dragon_errmsg());
				return 1;
			}
		}
		dragon_finalize();
	}
	t = now() - t0;
	printf("%.1f\n", n / t);
	return 0;
}
