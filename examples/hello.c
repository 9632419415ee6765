/* examples/hello.c: a group of N workers, each reporting to the first process over a queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dragon/dragon.h>

static int fail(const char *what, int rc)
{
	fprintf(stderr, "hello: %s: %s (%s)\n", what, dragon_strerror(rc), dragon_errmsg());
	return 1;
}

/* A worker: says hello on its output and puts a report into the queue named hello.reports. */
static int worker(void)
{
	char report[128], host[64] = "?";
	int rank = dragon_group_rank(), rc;
	dragon_queue_t *q;

	gethostname(host, sizeof(host) - 1);
	printf("hello from rank %d of %d on %s\n", rank, dragon_group_size(), host);
	if ((rc = dragon_queue_attach("hello.reports", 10000, &q)))
		return fail("attach", rc);
	snprintf(report, sizeof(report), "rank %d pid %d done", rank, (int)getpid());
	rc = dragon_queue_put(q, report, strlen(report) + 1, 10000);
	dragon_queue_detach(q);
	return rc ? fail("put", rc) : 0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4, rc, worst = 0;
	const char *args[] = {argv[0], NULL};
	char self[4096];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	dragon_queue_t *q;
	dragon_gid_t gid;

	if ((rc = dragon_init()))
		return fail("dragon_init", rc);
	if (dragon_group_rank() >= 0) {
		rc = worker();
		dragon_finalize();
		return rc;
	}
	if (n < 1 || n > 1024) {
		fprintf(stderr, "usage: hello [NWORKERS (1-1024)]\n");
		return 2;
	}
	if (len > 0) {
		self[len] = 0;
		args[0] = self;
	}
	if ((rc = dragon_queue_create("hello.reports", 64, 128, 0, &q)))
		return fail("queue create", rc);
	if ((rc = dragon_group_create(args, (unsigned)n, DRAGON_POLICY_ROUND_ROBIN, 0, NULL,
				      "hello.workers", &gid)))
		return fail("group create", rc);
	for (int r = 0; r < n; r++) {
		char report[128];
		size_t rl = sizeof(report);
		if ((rc = dragon_queue_get(q, report, &rl, 10000)))
			return fail("get", rc);
		printf("report: %s\n", report);
	}
	if ((rc = dragon_group_wait_all(gid, 10000, &worst)))
		return fail("group wait", rc);
	printf("%d workers done, worst status %d\n", n, worst);
	dragon_queue_destroy(q);
	dragon_finalize();
	return worst;
}
