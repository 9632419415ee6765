/* tests/integration/join_check.c: a task of a --dragon step joins its job's fabric and says where it stands in it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <dragon/dragon.h>

/*
 * join_check                  prints "joined FABRIC_ID NODE_INDEX NODE_COUNT HOST" (what the fabric
 *                             says, not the environment)
 * join_check put NAME VALUE   also registers VALUE under NAME, to outlive this process (and step)
 * join_check get NAME         also looks NAME up (waiting up to 5 s): "name NAME = VALUE"
 */
int main(int argc, char **argv)
{
	char host[256] = "?", value[256];
	size_t len = sizeof(value) - 1;
	int rv;

	gethostname(host, sizeof(host) - 1);
	if ((rv = dragon_init())) {
		fprintf(stderr, "join_check on %s: %s: %s\n", host, dragon_strerror(rv), dragon_errmsg());
		return 1;
	}
	printf("joined %s %u %u %s\n", dragon_fabric_id(), dragon_node_index(), dragon_node_count(), host);
	if (argc == 4 && !strcmp(argv[1], "put"))
		rv = dragon_name_register(argv[2], DRAGON_NAME_USER, argv[3], strlen(argv[3]) + 1,
					  DRAGON_NAME_OUTLIVE);
	else if (argc == 3 && !strcmp(argv[1], "get") && !(rv = dragon_name_lookup(argv[2], 5000, NULL, value, &len)))
		printf("name %s = %.*s\n", argv[2], (int)len, value);
	if (rv)
		fprintf(stderr, "join_check on %s: %s %s: %s: %s\n", host, argv[1], argv[2], dragon_strerror(rv),
			dragon_errmsg());
	fflush(stdout);
	if (dragon_finalize() && !rv) {
		fprintf(stderr, "join_check on %s: finalize: %s\n", host, dragon_errmsg());
		return 1;
	}
	return rv ? 1 : 0;
}
