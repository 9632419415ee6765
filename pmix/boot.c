/* pmix/boot.c: backend selection and the `single` bootstrap backend (one node, no resource manager). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "boot.h"

struct kv {
	struct kv *next;
	char *key;
	void *val;
	size_t len;
};

static int single_init(struct dg_boot *b)
{
	b->rank = 0;
	b->size = 1;
	b->priv = NULL;
	return DRAGON_OK;
}

static int single_put(struct dg_boot *b, const char *key, const void *val, size_t len)
{
	struct kv *e = calloc(1, sizeof(*e));

	if (!e || !(e->key = strdup(key)) || !(e->val = malloc(len ? len : 1))) {
		if (e)
			free(e->key);
		free(e);
		return dg_err(DRAGON_ENOMEM, "bootstrap put of %s", key);
	}
	memcpy(e->val, val, len);
	e->len = len;
	e->next = b->priv;
	b->priv = e;
	return DRAGON_OK;
}

static int single_get(struct dg_boot *b, int rank, const char *key, void **val, size_t *len)
{
	if (rank != 0)
		return dg_err(DRAGON_ENOTFOUND, "rank %d does not exist in a single-node fabric", rank);
	/* Newest first: a later put of the same key wins, as after a fence in PMIx. */
	for (struct kv *e = b->priv; e; e = e->next) {
		if (strcmp(e->key, key))
			continue;
		*val = malloc(e->len ? e->len : 1);
		if (!*val)
			return dg_err(DRAGON_ENOMEM, "bootstrap get of %s", key);
		memcpy(*val, e->val, e->len);
		*len = e->len;
		return DRAGON_OK;
	}
	return dg_err(DRAGON_ENOTFOUND, "bootstrap key %s was not put by rank %d", key, rank);
}

static int single_fence(struct dg_boot *b)
{
	return DRAGON_OK;
}

static void single_abort(struct dg_boot *b, int status, const char *msg)
{
	fprintf(stderr, "dragon: bootstrap abort: %s\n", msg ? msg : "");
	_exit(status ? status : 1);
}

static void single_finalize(struct dg_boot *b)
{
	struct kv *e = b->priv, *n;

	for (; e; e = n) {
		n = e->next;
		free(e->key);
		free(e->val);
		free(e);
	}
	b->priv = NULL;
}

static const struct dg_boot_ops single_ops = {
	.name = "single",
	.init = single_init,
	.put = single_put,
	.get = single_get,
	.fence = single_fence,
	.abort = single_abort,
	.finalize = single_finalize,
};

int dg_boot_open(const char *backend, struct dg_boot **out)
{
	struct dg_boot *b;
	int rv;

	*out = NULL;
	const struct dg_boot_ops *ops = &single_ops;

	if (backend && !strcmp(backend, "pmix"))
		ops = &dg_boot_pmix_ops;
	else if (backend && !strcmp(backend, "file"))
		ops = &dg_boot_file_ops;
	else if (backend && strcmp(backend, "single"))
		return dg_err(DRAGON_ENOTSUP, "bootstrap backend '%s' is not built in (have: single, "
					      "pmix, file)",
			      backend);
	b = calloc(1, sizeof(*b));
	if (!b)
		return dg_err(DRAGON_ENOMEM, "bootstrap handle");
	b->ops = ops;
	rv = b->ops->init(b);
	if (rv) {
		free(b);
		return rv;
	}
	*out = b;
	return DRAGON_OK;
}

int dg_boot_put(struct dg_boot *b, const char *key, const void *val, size_t len)
{
	return b->ops->put(b, key, val, len);
}

int dg_boot_get(struct dg_boot *b, int rank, const char *key, void **val, size_t *len)
{
	return b->ops->get(b, rank, key, val, len);
}

int dg_boot_fence(struct dg_boot *b)
{
	return b->ops->fence(b);
}

void dg_boot_abort(struct dg_boot *b, int status, const char *msg)
{
	b->ops->abort(b, status, msg);
}

void dg_boot_close(struct dg_boot *b)
{
	if (!b)
		return;
	b->ops->finalize(b);
	free(b);
}
