/* pmix/boot_pmix.c: the PMIx bootstrap backend: one rank per node of a fabric step started with --mpi=pmix. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pmix.h>

#include "core/err.h"
#include "boot.h"

/*
 * Why our own timeouts: Slurm 22.05's PMIx server only gives up on a fence after its PMIxTimeout
 * (300 s by default) and a blocking PMIx_Get waits for the peer's data forever. The fabric must
 * instead fail within DRAGON_STARTUP_TIMEOUT and say which node is missing, so the fence is
 * started non-blocking and waited on with a deadline, and every Get carries PMIX_TIMEOUT.
 */
#define DEFAULT_TIMEOUT_S 60

struct pmix_priv {
	pmix_proc_t me;
	int timeout_s;
};

struct fence_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	pmix_status_t status;
	int refs; /* the waiter and the callback; whoever drops the last frees it */
};

static void fence_wait_put(struct fence_wait *w)
{
	int last;

	pthread_mutex_lock(&w->lock);
	last = --w->refs == 0;
	pthread_mutex_unlock(&w->lock);
	if (last) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		free(w);
	}
}

static void fence_cb(pmix_status_t status, void *cbdata)
{
	struct fence_wait *w = cbdata;

	pthread_mutex_lock(&w->lock);
	w->status = status;
	w->done = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	fence_wait_put(w);
}

static int startup_timeout(void)
{
	const char *s = getenv("DRAGON_STARTUP_TIMEOUT");
	char *end;
	long v;

	if (!s || !*s)
		return DEFAULT_TIMEOUT_S;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > 86400)
		return DEFAULT_TIMEOUT_S;
	return (int)v;
}

static int pmix_boot_init(struct dg_boot *b)
{
	struct pmix_priv *p;
	pmix_proc_t wild;
	pmix_value_t *val = NULL;
	pmix_status_t rc;

	/*
	 * Without a server PMIx 4 quietly makes a singleton: a fabric of one node that believes it is
	 * complete. Refuse that: the step must be started by srun --mpi=pmix.
	 */
	if (!getenv("PMIX_SERVER_URI41") && !getenv("PMIX_SERVER_URI4") &&
	    !getenv("PMIX_SERVER_URI3") && !getenv("PMIX_SERVER_URI21") &&
	    !getenv("PMIX_SERVER_URI2") && !getenv("PMIX_NAMESPACE"))
		return dg_err(DRAGON_EPEER, "no PMIx server: start the fabric step with "
					    "'srun --mpi=pmix' (PMIX_SERVER_URI* is not set)");
	p = calloc(1, sizeof(*p));
	if (!p)
		return dg_err(DRAGON_ENOMEM, "PMIx bootstrap state");
	rc = PMIx_Init(&p->me, NULL, 0);
	if (rc != PMIX_SUCCESS) {
		free(p);
		return dg_err(DRAGON_EPEER, "PMIx_Init failed: %s", PMIx_Error_string(rc));
	}
	p->timeout_s = startup_timeout();
	PMIX_PROC_CONSTRUCT(&wild);
	PMIX_LOAD_PROCID(&wild, p->me.nspace, PMIX_RANK_WILDCARD);
	rc = PMIx_Get(&wild, PMIX_JOB_SIZE, NULL, 0, &val);
	if (rc != PMIX_SUCCESS || !val || val->type != PMIX_UINT32) {
		if (val)
			PMIX_VALUE_RELEASE(val);
		PMIx_Finalize(NULL, 0);
		free(p);
		return dg_err(DRAGON_EPROTO, "PMIx_Get(PMIX_JOB_SIZE) failed: %s",
			      PMIx_Error_string(rc));
	}
	b->size = (int)val->data.uint32;
	PMIX_VALUE_RELEASE(val);
	b->rank = (int)p->me.rank;
	b->priv = p;
	return DRAGON_OK;
}

static int pmix_boot_put(struct dg_boot *b, const char *key, const void *val, size_t len)
{
	pmix_value_t v;
	pmix_status_t rc;

	if (strlen(key) >= PMIX_MAX_KEYLEN)
		return dg_err(DRAGON_EINVAL, "bootstrap key '%s' is longer than PMIx allows (%d)", key,
			      PMIX_MAX_KEYLEN - 1);
	PMIX_VALUE_CONSTRUCT(&v);
	v.type = PMIX_BYTE_OBJECT;
	v.data.bo.bytes = (char *)val; /* PMIx_Put copies */
	v.data.bo.size = len;
	rc = PMIx_Put(PMIX_GLOBAL, key, &v);
	if (rc != PMIX_SUCCESS)
		return dg_err(DRAGON_EPROTO, "PMIx_Put(%s) failed: %s", key, PMIx_Error_string(rc));
	return DRAGON_OK;
}

static void node_name(struct pmix_priv *p, int rank, char *buf, size_t cap)
{
	pmix_proc_t proc;
	pmix_value_t *val = NULL;

	snprintf(buf, cap, "rank %d", rank);
	PMIX_LOAD_PROCID(&proc, p->me.nspace, (pmix_rank_t)rank);
	if (PMIx_Get(&proc, PMIX_HOSTNAME, NULL, 0, &val) == PMIX_SUCCESS && val &&
	    val->type == PMIX_STRING && val->data.string)
		snprintf(buf, cap, "rank %d (node %s)", rank, val->data.string);
	if (val)
		PMIX_VALUE_RELEASE(val);
}

static int pmix_boot_get(struct dg_boot *b, int rank, const char *key, void **out, size_t *len)
{
	struct pmix_priv *p = b->priv;
	pmix_proc_t proc;
	pmix_info_t info;
	pmix_value_t *val = NULL;
	pmix_status_t rc;
	int timeout = p->timeout_s;
	char who[300];

	if (rank < 0 || rank >= b->size)
		return dg_err(DRAGON_ENOTFOUND, "rank %d is outside the fabric (0..%d)", rank,
			      b->size - 1);
	PMIX_LOAD_PROCID(&proc, p->me.nspace, (pmix_rank_t)rank);
	PMIX_INFO_LOAD(&info, PMIX_TIMEOUT, &timeout, PMIX_INT);
	rc = PMIx_Get(&proc, key, &info, 1, &val);
	PMIX_INFO_DESTRUCT(&info);
	if (rc != PMIX_SUCCESS || !val) {
		node_name(p, rank, who, sizeof(who));
		if (val)
			PMIX_VALUE_RELEASE(val);
		if (rc == PMIX_ERR_TIMEOUT)
			return dg_err(DRAGON_ETIMEDOUT, "%s did not publish '%s' within %d s", who,
				      key, timeout);
		return dg_err(DRAGON_ENOTFOUND, "%s: PMIx_Get(%s) failed: %s", who, key,
			      PMIx_Error_string(rc));
	}
	if (val->type != PMIX_BYTE_OBJECT) {
		PMIX_VALUE_RELEASE(val);
		return dg_err(DRAGON_EPROTO, "bootstrap key '%s' of rank %d is not a byte object",
			      key, rank);
	}
	*out = malloc(val->data.bo.size ? val->data.bo.size : 1);
	if (!*out) {
		PMIX_VALUE_RELEASE(val);
		return dg_err(DRAGON_ENOMEM, "bootstrap get of %s", key);
	}
	memcpy(*out, val->data.bo.bytes, val->data.bo.size);
	*len = val->data.bo.size;
	PMIX_VALUE_RELEASE(val);
	return DRAGON_OK;
}

static int pmix_boot_fence(struct dg_boot *b)
{
	struct pmix_priv *p = b->priv;
	struct fence_wait *w;
	pmix_info_t info;
	bool collect = true;
	struct timespec deadline;
	pmix_status_t rc;
	int rv = DRAGON_OK;

	rc = PMIx_Commit();
	if (rc != PMIX_SUCCESS)
		return dg_err(DRAGON_EPROTO, "PMIx_Commit failed: %s", PMIx_Error_string(rc));
	w = calloc(1, sizeof(*w));
	if (!w)
		return dg_err(DRAGON_ENOMEM, "fence state");
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->refs = 2;
	PMIX_INFO_LOAD(&info, PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
	rc = PMIx_Fence_nb(NULL, 0, &info, 1, fence_cb, w);
	PMIX_INFO_DESTRUCT(&info);
	if (rc != PMIX_SUCCESS) {
		w->refs = 1;
		fence_wait_put(w);
		return dg_err(DRAGON_EPROTO, "PMIx_Fence failed to start: %s",
			      PMIx_Error_string(rc));
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += p->timeout_s;
	pthread_mutex_lock(&w->lock);
	while (!w->done) {
		if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == ETIMEDOUT)
			break;
	}
	if (!w->done)
		rv = dg_err(DRAGON_ETIMEDOUT,
			    "the bootstrap fence of %d nodes did not complete within %d s: a node's "
			    "local services did not start, or Slurm's PMIx refused a connection "
			    "between the step's slurmstepds (see the slurmd logs; spank-dragon(8), "
			    "DIAGNOSTICS)",
			    b->size, p->timeout_s);
	else if (w->status != PMIX_SUCCESS)
		rv = dg_err(DRAGON_EPEER, "PMIx_Fence failed: %s", PMIx_Error_string(w->status));
	pthread_mutex_unlock(&w->lock);
	fence_wait_put(w);
	return rv;
}

static void pmix_boot_abort(struct dg_boot *b, int status, const char *msg)
{
	fprintf(stderr, "dragon: bootstrap abort: %s\n", msg ? msg : "");
	PMIx_Abort(status ? status : 1, msg, NULL, 0);
	_exit(status ? status : 1);
}

static void pmix_boot_finalize(struct dg_boot *b)
{
	PMIx_Finalize(NULL, 0);
	free(b->priv);
	b->priv = NULL;
}

const struct dg_boot_ops dg_boot_pmix_ops = {
	.name = "pmix",
	.init = pmix_boot_init,
	.put = pmix_boot_put,
	.get = pmix_boot_get,
	.fence = pmix_boot_fence,
	.abort = pmix_boot_abort,
	.finalize = pmix_boot_finalize,
};
