/* tests/multinode/mnclient.c: a fabric client the multi-node tests drive (names, groups, processes across nodes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dragon/error.h>
#include <dragon/group.h>
#include <dragon/init.h>
#include <dragon/name.h>
#include <dragon/process.h>

static int fail(const char *what, int rc)
{
	fprintf(stderr, "mnclient: %s: %s (%s)\n", what, dragon_strerror(rc), dragon_errmsg());
	return 1;
}

static const char usage[] =
	"usage: mnclient info | put NAME TEXT [outlive] | get NAME TIMEOUT_MS |\n"
	"       group N rr|block|NODE PROG [ARGS...] | spawn-wait PROG [ARGS...]\n";

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	if ((rc = dragon_init()))
		return fail("dragon_init", rc);
	if (!strcmp(argv[1], "info")) {
		printf("node %u of %u fabric %s\n", dragon_node_index(), dragon_node_count(),
		       dragon_fabric_id());
	} else if (!strcmp(argv[1], "put") && argc >= 4) {
		int flags = argc > 4 && !strcmp(argv[4], "outlive") ? DRAGON_NAME_OUTLIVE : 0;
		if ((rc = dragon_name_register(argv[2], DRAGON_NAME_USER, argv[3], strlen(argv[3]),
					       flags)))
			return fail("register", rc);
	} else if (!strcmp(argv[1], "get") && argc == 4) {
		char buf[4097];
		size_t len = sizeof(buf) - 1;
		if ((rc = dragon_name_lookup(argv[2], atoi(argv[3]), NULL, buf, &len)))
			return fail("lookup", rc);
		buf[len] = 0;
		printf("%s\n", buf);
	} else if (!strcmp(argv[1], "group") && argc >= 5) {
		dragon_process_opts_t o = DRAGON_PROCESS_OPTS_INIT;
		dragon_gid_t gid;
		int worst = -1;
		o.output = DRAGON_OUTPUT_DISCARD;
		enum dragon_policy pol = !strcmp(argv[3], "block") ? DRAGON_POLICY_BLOCK
				       : !strcmp(argv[3], "rr")  ? DRAGON_POLICY_ROUND_ROBIN
								 : DRAGON_POLICY_NODE;
		if ((rc = dragon_group_create((const char *const *)argv + 4, (unsigned)atoi(argv[2]),
					      pol, (unsigned)atoi(argv[3]), &o, NULL, &gid)))
			return fail("group create", rc);
		if ((rc = dragon_group_wait_all(gid, 30000, &worst)))
			return fail("group wait", rc);
		printf("worst %d\n", worst);
	} else if (!strcmp(argv[1], "spawn-wait") && argc > 2) {
		dragon_puid_t puid;
		int status = -1;
		if ((rc = dragon_process_create((const char *const *)argv + 2, NULL, &puid)))
			return fail("create", rc);
		if ((rc = dragon_process_wait(puid, 30000, &status)))
			return fail("wait", rc);
		printf("status %d\n", status);
	} else {
		fputs(usage, stderr);
		return 2;
	}
	dragon_finalize();
	return 0;
}
