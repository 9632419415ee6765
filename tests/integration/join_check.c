/* tests/integration/join_check.c: a task of a --dragon step joins its job's fabric and says where it stands in it. */
#include <stdio.h>
#include <unistd.h>

#include <dragon/dragon.h>

/* Prints "joined FABRIC_ID NODE_INDEX NODE_COUNT HOST" (what the fabric says, not the environment). */
int main(void)
{
	char host[256] = "?";
	int rv;

	gethostname(host, sizeof(host) - 1);
	if ((rv = dragon_init())) {
		fprintf(stderr, "join_check on %s: %s: %s\n", host, dragon_strerror(rv), dragon_errmsg());
		return 1;
	}
	printf("joined %s %u %u %s\n", dragon_fabric_id(), dragon_node_index(), dragon_node_count(), host);
	fflush(stdout);
	if ((rv = dragon_finalize())) {
		fprintf(stderr, "join_check on %s: finalize: %s\n", host, dragon_errmsg());
		return 1;
	}
	return 0;
}
