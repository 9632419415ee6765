/* tests/launcher/dgtool.c: a fabric client the launcher tests drive (start, wait, list, names, queues). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dragon/dragon.h>

static int fail(const char *what, int rc)
{
	fprintf(stderr, "dgtool: %s: %s (%s)\n", what, dragon_strerror(rc), dragon_errmsg());
	return 1;
}

/* spawn-wait PROG ARGS...: start it, print its pid, wait, print its status. */
static int spawn_wait(char **argv)
{
	dragon_puid_t puid;
	dragon_process_info_t *l = NULL;
	size_t n = 0;
	int rc, status = -1;

	if ((rc = dragon_process_create((const char *const *)argv, NULL, &puid)))
		return fail("create", rc);
	if ((rc = dragon_process_list(&l, &n)))
		return fail("list", rc);
	for (size_t i = 0; i < n; i++)
		if (l[i].puid == puid)
			printf("pid %d\n", l[i].pid);
	free(l);
	fflush(stdout);
	if ((rc = dragon_process_wait(puid, -1, &status)))
		return fail("wait", rc);
	printf("status %d\n", status);
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: dgtool spawn-wait PROG [ARGS...] | orphan PROG [ARGS...] | "
				"queue NAME\n");
		return 2;
	}
	if ((rc = dragon_init()))
		return fail("dragon_init", rc);
	if (!strcmp(argv[1], "spawn-wait") && argc > 2) {
		rc = spawn_wait(argv + 2);
	} else if (!strcmp(argv[1], "orphan") && argc > 2) {
		/* Start PROG and exit at once: the fabric must still clean PROG up. */
		dragon_puid_t puid;
		dragon_process_opts_t o = DRAGON_PROCESS_OPTS_INIT;
		o.outlive = 1;
		rc = dragon_process_create((const char *const *)argv + 2, &o, &puid);
		if (rc)
			return fail("create", rc);
		printf("started %llu\n", (unsigned long long)puid);
	} else if (!strcmp(argv[1], "queue") && argc == 3) {
		/* A named queue holding one message that outlives this process, for dragon status. */
		dragon_queue_t *q;
		rc = dragon_queue_create(argv[2], 4, 16, DRAGON_QUEUE_OUTLIVE, &q);
		if (rc)
			return fail("queue create", rc);
		if ((rc = dragon_queue_put(q, "x", 1, 0)))
			return fail("queue put", rc);
		dragon_queue_detach(q);
		printf("queue %s\n", argv[2]);
	} else {
		fprintf(stderr, "dgtool: unknown command %s\n", argv[1]);
		rc = 2;
	}
	dragon_finalize();
	return rc;
}
