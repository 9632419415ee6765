/* examples/pingpong.c: two processes bounce a message over a pair of queues and time the round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dragon/dragon.h>

static int fail(const char *what, int rc)
{
	fprintf(stderr, "pingpong: %s: %s (%s)\n", what, dragon_strerror(rc), dragon_errmsg());
	return 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int player(int iters)
{
	int r = dragon_group_rank(), rc = 0;
	dragon_queue_t *ping, *pong;
	char msg[64] = "ball";
	double t0;

	if ((rc = dragon_queue_attach("pingpong.ping", 10000, &ping)) ||
	    (rc = dragon_queue_attach("pingpong.pong", 10000, &pong)))
		return fail("attach", rc);
	t0 = now();
	for (int i = 0; i < iters; i++) {
		size_t len = sizeof(msg);
		if (r == 0) {
			if ((rc = dragon_queue_put(ping, msg, 8, 10000)) ||
			    (rc = dragon_queue_get(pong, msg, &len, 10000)))
				return fail("rank 0", rc);
		} else {
			if ((rc = dragon_queue_get(ping, msg, &len, 10000)) ||
			    (rc = dragon_queue_put(pong, msg, len, 10000)))
				return fail("rank 1", rc);
		}
	}
	if (r == 0)
		printf("pingpong: %d round trips of 8 bytes, %.1f us per round trip\n", iters,
		       (now() - t0) * 1e6 / iters);
	dragon_queue_detach(ping);
	dragon_queue_detach(pong);
	return 0;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 1000, rc, worst = 0;
	char self[4096], it[16];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *args[] = {argv[0], it, NULL};
	dragon_queue_t *a, *b;
	dragon_gid_t gid;

	if ((rc = dragon_init()))
		return fail("dragon_init", rc);
	if (dragon_group_rank() >= 0) {
		rc = player(iters);
		dragon_finalize();
		return rc;
	}
	if (iters < 1) {
		fprintf(stderr, "usage: pingpong [ITERATIONS]\n");
		return 2;
	}
	if (len > 0) {
		self[len] = 0;
		args[0] = self;
	}
	snprintf(it, sizeof(it), "%d", iters);
	if ((rc = dragon_queue_create("pingpong.ping", 1, 64, 0, &a)) ||
	    (rc = dragon_queue_create("pingpong.pong", 1, 64, 0, &b)))
		return fail("queue create", rc);
	if ((rc = dragon_group_create(args, 2, DRAGON_POLICY_ROUND_ROBIN, 0, NULL, NULL, &gid)))
		return fail("group create", rc);
	if ((rc = dragon_group_wait_all(gid, 60000, &worst)))
		return fail("group wait", rc);
	dragon_queue_destroy(a);
	dragon_queue_destroy(b);
	dragon_finalize();
	return worst;
}
