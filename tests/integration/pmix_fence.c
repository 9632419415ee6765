/* tests/integration/pmix_fence.c: a PMIx Put/Commit/Fence/Get round across every rank, as the fabric step's wire-up does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pmix.h>

#define KEY "dragon.test.card"

static int get_u32(const pmix_proc_t *who, const char *key, uint32_t *out)
{
	pmix_value_t *val = NULL;
	pmix_status_t rc = PMIx_Get(who, key, NULL, 0, &val);

	if (rc != PMIX_SUCCESS || !val || val->type != PMIX_UINT32) {
		fprintf(stderr, "pmix_fence: PMIx_Get(%s): %s\n", key, PMIx_Error_string(rc));
		if (val)
			PMIX_VALUE_RELEASE(val);
		return -1;
	}
	*out = val->data.uint32;
	PMIX_VALUE_RELEASE(val);
	return 0;
}

int main(void)
{
	int rv = 1;
	pmix_proc_t me, wild, peer;
	pmix_value_t v;
	pmix_info_t info[2];
	pmix_status_t rc;
	char host[256], mine[512];
	uint32_t size = 0, bad = 0, other_hosts = 0;
	bool collect = true;
	int timeout = 20;
	bool inited = false;

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "?");
	rc = PMIx_Init(&me, NULL, 0);
	if (rc != PMIX_SUCCESS) {
		fprintf(stderr, "pmix_fence: PMIx_Init: %s (no PMIx server: run with srun --mpi=pmix)\n",
			PMIx_Error_string(rc));
		goto out;
	}
	inited = true;
	PMIX_PROC_CONSTRUCT(&wild);
	PMIX_LOAD_PROCID(&wild, me.nspace, PMIX_RANK_WILDCARD);
	if (get_u32(&wild, PMIX_JOB_SIZE, &size) != 0)
		goto out;

	snprintf(mine, sizeof(mine), "rank=%u host=%s", me.rank, host);
	v.type = PMIX_STRING;
	v.data.string = mine;
	if ((rc = PMIx_Put(PMIX_GLOBAL, KEY, &v)) != PMIX_SUCCESS ||
	    (rc = PMIx_Commit()) != PMIX_SUCCESS) {
		fprintf(stderr, "pmix_fence: PMIx_Put/Commit: %s\n", PMIx_Error_string(rc));
		goto out;
	}
	/* A bounded fence: a missing rank must be an error, never a hang. */
	PMIX_INFO_CONSTRUCT(&info[0]);
	PMIX_INFO_LOAD(&info[0], PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
	PMIX_INFO_CONSTRUCT(&info[1]);
	PMIX_INFO_LOAD(&info[1], PMIX_TIMEOUT, &timeout, PMIX_INT);
	rc = PMIx_Fence(&wild, 1, info, 2);
	PMIX_INFO_DESTRUCT(&info[0]);
	PMIX_INFO_DESTRUCT(&info[1]);
	if (rc != PMIX_SUCCESS) {
		fprintf(stderr, "pmix_fence: PMIx_Fence: %s\n", PMIx_Error_string(rc));
		goto out;
	}
	for (uint32_t r = 0; r < size; r++) {
		pmix_value_t *got = NULL;
		char want[32], *sp;

		PMIX_LOAD_PROCID(&peer, me.nspace, r);
		rc = PMIx_Get(&peer, KEY, NULL, 0, &got);
		snprintf(want, sizeof(want), "rank=%u host=", r);
		if (rc != PMIX_SUCCESS || !got || got->type != PMIX_STRING ||
		    strncmp(got->data.string, want, strlen(want)) != 0) {
			fprintf(stderr, "pmix_fence: rank %u: bad value from rank %u: %s\n", me.rank, r,
				rc != PMIX_SUCCESS ? PMIx_Error_string(rc) : "wrong content");
			bad++;
		} else {
			sp = got->data.string + strlen(want);
			if (strcmp(sp, host) != 0)
				other_hosts++;
		}
		if (got)
			PMIX_VALUE_RELEASE(got);
	}
	printf("pmix_fence: rank %u of %u on %s: %u/%u values ok, %u from other hosts\n", me.rank, size, host,
	       size - bad, size, other_hosts);
	if (bad == 0)
		rv = 0;
out:
	if (inited)
		PMIx_Finalize(NULL, 0);
	return rv;
}
