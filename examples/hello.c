/* examples/hello.c: a group of N workers, each reporting to the first process by name. */
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

/* A worker: says hello on its output and leaves a report under the name hello.<rank>. */
static int worker(void)
{
	char name[64], report[128], host[64] = "?";
	int rank = dragon_group_rank(), rc;

	gethostname(host, sizeof(host) - 1);
	printf("hello from rank %d of %d on %s\n", rank, dragon_group_size(), host);
	snprintf(name, sizeof(name), "hello.%d", rank);
	snprintf(report, sizeof(report), "rank %d pid %d done", rank, (int)getpid());
	/* Outlive: the report must still be there when the first process looks. */
	rc = dragon_name_register(name, DRAGON_NAME_USER, report, strlen(report) + 1,
				  DRAGON_NAME_OUTLIVE);
	return rc ? fail("register", rc) : 0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4, rc, worst = 0;
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
	{
		const char *args[] = {"/proc/self/exe", NULL};
		char self[4096];
		ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (len > 0) {
			self[len] = 0;
			args[0] = self;
		}
		if ((rc = dragon_group_create(args, (unsigned)n, DRAGON_POLICY_ROUND_ROBIN, 0, NULL,
					      "hello.workers", &gid)))
			return fail("group create", rc);
	}
	for (int r = 0; r < n; r++) {
		char name[64], report[128];
		size_t len = sizeof(report);
		snprintf(name, sizeof(name), "hello.%d", r);
		if ((rc = dragon_name_lookup(name, 10000, NULL, report, &len)))
			return fail(name, rc);
		printf("report: %s\n", report);
		dragon_name_remove(name);
	}
	if ((rc = dragon_group_wait_all(gid, 10000, &worst)))
		return fail("group wait", rc);
	printf("%d workers done, worst status %d\n", n, worst);
	dragon_finalize();
	return worst;
}
