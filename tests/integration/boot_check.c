/* tests/integration/boot_check.c: drive libdragon's PMIx bootstrap backend as local services do, one rank per node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dragon/dragon.h>
#include "../../pmix/boot.h"

/*
 * Usage: boot_check [exchange|missing]
 *   exchange: every rank puts an endpoint, fences, gets every rank's; prints one line per rank.
 *   missing:  every rank asks for a key the last rank never put; must fail naming that rank.
 */
int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "exchange";
	struct dg_boot *b;
	char host[256], ep[300];
	int ok = 0, rv;

	gethostname(host, sizeof(host));
	rv = dg_boot_open("pmix", &b);
	if (rv) {
		fprintf(stderr, "boot_check: %s: %s\n", dragon_strerror(rv), dragon_errmsg());
		return 1;
	}
	snprintf(ep, sizeof(ep), "endpoint-of-rank-%d-on-%s", b->rank, host);
	if ((rv = dg_boot_put(b, "ep", ep, strlen(ep) + 1)) || (rv = dg_boot_fence(b))) {
		fprintf(stderr, "boot_check: %s: %s\n", dragon_strerror(rv), dragon_errmsg());
		return 1;
	}
	if (!strcmp(mode, "missing")) {
		void *v;
		size_t len;
		rv = dg_boot_get(b, b->size - 1, "never-put", &v, &len);
		printf("rank %d: get of a missing key: %s: %s\n", b->rank, dragon_strerror(rv),
		       dragon_errmsg());
		dg_boot_close(b);
		return rv == DRAGON_OK ? 1 : 0;
	}
	for (int r = 0; r < b->size; r++) {
		void *v = NULL;
		size_t len = 0;
		char want[300];
		if ((rv = dg_boot_get(b, r, "ep", &v, &len))) {
			fprintf(stderr, "boot_check: rank %d: %s\n", r, dragon_errmsg());
			continue;
		}
		/* Each rank's endpoint names that rank; its host we cannot know, so check the prefix. */
		snprintf(want, sizeof(want), "endpoint-of-rank-%d-on-", r);
		if (len > strlen(want) && !strncmp(v, want, strlen(want)))
			ok++;
		free(v);
	}
	printf("rank %d of %d on %s: %d/%d endpoints ok\n", b->rank, b->size, host, ok, b->size);
	dg_boot_close(b);
	return ok == b->size ? 0 : 1;
}
