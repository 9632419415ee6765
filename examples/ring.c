/* examples/ring.c: a token passed around N processes, each adding one, for L laps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dragon/dragon.h>

static int fail(const char *what, int rc)
{
	fprintf(stderr, "ring: %s: %s (%s)\n", what, dragon_strerror(rc), dragon_errmsg());
	return 1;
}

static int member(int laps)
{
	int r = dragon_group_rank(), n = dragon_group_size(), rc = 0;
	char in_name[32], out_name[32];
	dragon_queue_t *in, *out;
	long token = 0;

	snprintf(in_name, sizeof(in_name), "ring.%d", r);
	snprintf(out_name, sizeof(out_name), "ring.%d", (r + 1) % n);
	if ((rc = dragon_queue_attach(in_name, 10000, &in)) ||
	    (rc = dragon_queue_attach(out_name, 10000, &out)))
		return fail("attach", rc);
	if (r == 0 && (rc = dragon_queue_put(out, &token, sizeof(token), 10000)))
		return fail("put", rc);
	for (int lap = 0; lap < laps; lap++) {
		size_t len = sizeof(token);
		if ((rc = dragon_queue_get(in, &token, &len, 10000)))
			return fail("get", rc);
		if (r == 0 && lap == laps - 1)
			break;
		token++;
		if ((rc = dragon_queue_put(out, &token, sizeof(token), 10000)))
			return fail("put", rc);
	}
	if (r == 0) {
		printf("the token went %d times around %d processes: %ld (expected %ld)\n", laps, n,
		       token, (long)laps * n - 1);
		rc = token != (long)laps * n - 1;
	}
	dragon_queue_detach(in);
	dragon_queue_detach(out);
	return rc;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4, laps = argc > 2 ? atoi(argv[2]) : 10, rc, worst = 0;
	char self[4096], lapstr[16];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *args[] = {argv[0], "0", lapstr, NULL};
	dragon_queue_t **qs;
	dragon_gid_t gid;

	if ((rc = dragon_init()))
		return fail("dragon_init", rc);
	if (dragon_group_rank() >= 0) {
		rc = member(laps);
		dragon_finalize();
		return rc;
	}
	if (n < 2 || n > 256 || laps < 1) {
		fprintf(stderr, "usage: ring [NPROCS (2-256) [LAPS]]\n");
		return 2;
	}
	if (len > 0) {
		self[len] = 0;
		args[0] = self;
	}
	snprintf(lapstr, sizeof(lapstr), "%d", laps);
	qs = calloc((size_t)n, sizeof(*qs));
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "ring.%d", i);
		if ((rc = dragon_queue_create(name, 4, sizeof(long), 0, &qs[i])))
			return fail("queue create", rc);
	}
	if ((rc = dragon_group_create(args, (unsigned)n, DRAGON_POLICY_BLOCK, 0, NULL, NULL, &gid)))
		return fail("group create", rc);
	if ((rc = dragon_group_wait_all(gid, 60000, &worst)))
		return fail("group wait", rc);
	for (int i = 0; i < n; i++)
		dragon_queue_destroy(qs[i]);
	free(qs);
	dragon_finalize();
	return worst;
}
