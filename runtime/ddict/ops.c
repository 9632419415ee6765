/* runtime/ddict/ops.c: the dictionary's operations: puts and batches, gets (copied, zero-copy or frozen in place), single-key and whole-dictionary operations, key iteration. */
#include "config.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/err.h"
#include "ddict/client.h"

/* ---- put and batches ------------------------------------------------------------------------ */

/* Collect acknowledgements of the batch until at most `keep` are outstanding. */
static void batch_collect(dragon_ddict_t *d, size_t keep)
{
	while (d->nb - d->bdone > keep) {
		DdRep *rep;
		dragon_mem_t mem;
		const unsigned char *pl;
		size_t plen, b = d->bdone++;
		int rc = dd_wait_rep(d, d->bmgr[b], d->bseq[b], d->timeout_ms, &rep, &mem, &pl, &plen);
		if (!rc) {
			rc = dd_rep_rc(rep);
			dd_release(rep, &mem);
		}
		if (rc && !d->brc) {
			d->brc = rc;
			snprintf(d->bmsg, sizeof(d->bmsg), "%s", dragon_errmsg());
		}
	}
}

/*
 * Batch messages in flight at once: their acknowledgements must fit in our reply channel (64),
 * or a manager would block answering while we are still sending.
 */
#define BATCH_INFLIGHT 32

static int batch_flush(dragon_ddict_t *d, unsigned i)
{
	struct mgr *m = &d->m[i];
	DdReq q = DD_REQ__INIT;
	uint64_t seq;
	int rc;

	if (!m->n)
		return DRAGON_OK;
	q.op = DD_OP_BATCH;
	q.n_keys = m->n;
	q.keys = m->keys;
	q.n_vlens = m->n;
	q.vlens = m->vlens;
	rc = dd_send_req(d, i, &q, m->vals, m->vlen, &seq);
	for (size_t k = 0; k < m->n; k++)
		free(m->keys[k].data);
	m->n = 0;
	m->vlen = 0;
	if (rc)
		return rc;
	if (d->nb == d->nbcap) {
		size_t nc = d->nbcap ? 2 * d->nbcap : 16;
		uint64_t *ns = realloc(d->bseq, nc * sizeof(*ns));
		if (ns)
			d->bseq = ns;
		unsigned *nm = realloc(d->bmgr, nc * sizeof(*nm));
		if (nm)
			d->bmgr = nm;
		if (!ns || !nm)
			return dg_err(DRAGON_ENOMEM, "batch bookkeeping");
		d->nbcap = nc;
	}
	d->bseq[d->nb] = seq;
	d->bmgr[d->nb] = i;
	d->nb++;
	batch_collect(d, BATCH_INFLIGHT);
	return DRAGON_OK;
}

static int batch_add(dragon_ddict_t *d, unsigned i, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	struct mgr *m = &d->m[i];

	if (m->n == m->ncap) {
		size_t nc = m->ncap ? 2 * m->ncap : 256;
		ProtobufCBinaryData *nk = realloc(m->keys, nc * sizeof(*nk));
		if (nk)
			m->keys = nk;
		uint64_t *nv = realloc(m->vlens, nc * sizeof(*nv));
		if (nv)
			m->vlens = nv;
		if (!nk || !nv)
			return dg_err(DRAGON_ENOMEM, "batch of %zu keys", nc);
		m->ncap = nc;
	}
	if (m->vlen + vlen > m->vcap) {
		size_t nc = m->vcap ? m->vcap : 65536;
		while (nc < m->vlen + vlen)
			nc *= 2;
		unsigned char *nb = realloc(m->vals, nc);
		if (!nb)
			return dg_err(DRAGON_ENOMEM, "batch of %zu bytes", nc);
		m->vals = nb;
		m->vcap = nc;
	}
	m->keys[m->n].data = malloc(klen ? klen : 1);
	if (!m->keys[m->n].data)
		return dg_err(DRAGON_ENOMEM, "batch key");
	memcpy(m->keys[m->n].data, key, klen);
	m->keys[m->n].len = klen;
	m->vlens[m->n] = vlen;
	m->n++;
	if (vlen)
		memcpy(m->vals + m->vlen, val, vlen);
	m->vlen += vlen;
	if (m->vlen + m->n * 16 >= BATCH_FLUSH)
		return batch_flush(d, i);
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_batch_begin(dragon_ddict_t *d)
{
	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	if (d->in_batch)
		return dg_err(DRAGON_EINVAL, "a batch is already open on this handle");
	d->in_batch = 1;
	d->nb = d->bdone = 0;
	d->brc = DRAGON_OK;
	d->bmsg[0] = 0;
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_batch_end(dragon_ddict_t *d)
{
	int rc;

	if (!d || !d->in_batch)
		return dg_err(DRAGON_EINVAL, "no batch is open on this handle");
	for (unsigned i = 0; i < d->desc.managers; i++) {
		rc = batch_flush(d, i);
		if (rc && !d->brc) {
			d->brc = rc;
			snprintf(d->bmsg, sizeof(d->bmsg), "%s", dragon_errmsg());
		}
	}
	batch_collect(d, 0);
	d->nb = d->bdone = 0;
	d->in_batch = 0;
	return d->brc ? dg_err(d->brc, "%s", d->bmsg) : DRAGON_OK;
}

DRAGON_API int dragon_ddict_put(dragon_ddict_t *d, const void *key, size_t klen, const void *val,
				size_t vlen)
{
	DdReq q = DD_REQ__INIT;
	struct dd_shard *v;
	unsigned i;
	int rc;

	if ((rc = dd_check_key(d, key, klen)))
		return rc;
	if (!val && vlen)
		return dg_err(DRAGON_EINVAL, "NULL value");
	i = dd_target(d, key, klen);
	if (d->in_batch)
		return batch_add(d, i, key, klen, val, vlen);
	q.op = DD_OP_PUT;
	q.key.data = (uint8_t *)key;
	q.key.len = klen;
	if (vlen >= ZC_PUT_MIN && (v = dd_mgr_view(d, i)) && !v->h->frozen) {
		/* Same node: write the value once, into the manager's pool, and hand it over. */
		dragon_mem_t m;
		if (dragon_pool_alloc(v->pool, vlen, 0, &m) == DRAGON_OK) {
			int64_t num;
			memcpy(m.ptr, val, vlen);
			q.mem_off = m.offset;
			q.mem_len = vlen;
			rc = dd_simple(d, i, &q, &num);
			/* The manager frees it on failure; after a timeout it is lost, not reused. */
			return rc;
		}
	}
	q.vlen = vlen;
	DdRep *rep;
	dragon_mem_t mem;
	const unsigned char *pl;
	size_t plen;
	rc = dd_call(d, i, &q, val, vlen, d->timeout_ms, &rep, &mem, &pl, &plen);
	if (rc)
		return rc;
	rc = dd_rep_rc(rep);
	dd_release(rep, &mem);
	return rc;
}

/* ---- get, pop ------------------------------------------------------------------------------- */

/*
 * Frozen fast path: read the shard in place. DRAGON_EAGAIN means "ask the manager" (not frozen,
 * not on this node, or the state changed while reading).
 */
static int frozen_get(dragon_ddict_t *d, unsigned i, const void *key, size_t klen, void *buf,
		      size_t cap, size_t *vlen, dragon_mem_t *mem)
{
	struct dd_shard *v = dd_mgr_view(d, i);
	struct dd_entry *e;
	const unsigned char *p;
	uint64_t g;
	int rc;

	if (!v || !__atomic_load_n(&v->h->frozen, __ATOMIC_ACQUIRE))
		return DRAGON_EAGAIN;
	g = __atomic_load_n(&v->h->gen, __ATOMIC_ACQUIRE);
	rc = dd_shard_find(v, dragon_ddict_hash(key, klen), key, klen, &e);
	if (rc == DRAGON_ENOTFOUND) {
		if (__atomic_load_n(&v->h->gen, __ATOMIC_ACQUIRE) != g)
			return DRAGON_EAGAIN;
		char n[64];
		dd_mname(d, i, n, sizeof(n));
		return dg_err(DRAGON_ENOTFOUND, "%s: no such key", n);
	}
	if (rc || !(p = dd_shard_value(v, e)))
		return DRAGON_EAGAIN;
	size_t len = e->vlen;
	if (mem) {
		if (dragon_pool_alloc(v->pool, len ? len : 1, 0, mem))
			return DRAGON_EAGAIN;
		memcpy(mem->ptr, p, len);
	} else if (len <= cap) {
		memcpy(buf, p, len);
	}
	if (__atomic_load_n(&v->h->gen, __ATOMIC_ACQUIRE) != g) {
		if (mem)
			dragon_pool_free(mem);
		return DRAGON_EAGAIN;
	}
	*vlen = len;
	if (!mem && len > cap)
		return dg_err(DRAGON_ETOOBIG, "the value is %zu bytes, the buffer %zu", len, cap);
	return DRAGON_OK;
}

/* A value from a reply: in our received message, or an allocation of the manager's pool. */
static int reply_value(dragon_ddict_t *d, unsigned i, DdRep *rep, dragon_mem_t *rmem,
		       const unsigned char *pl, const unsigned char **val, dragon_mem_t *vmem)
{
	memset(vmem, 0, sizeof(*vmem));
	if (rep->mem_len || rep->mem_off) {
		struct dd_shard *v = dd_mgr_view(d, i);
		if (!v || rep->mem_off > v->size || rep->mem_len > v->size - rep->mem_off)
			return dg_err(DRAGON_EPROTO, "reply names allocation %llu+%llu outside the pool",
				      (unsigned long long)rep->mem_off,
				      (unsigned long long)rep->mem_len);
		vmem->pool = v->pool;
		vmem->offset = rep->mem_off;
		vmem->size = rep->mem_len;
		vmem->ptr = v->base + rep->mem_off;
		*val = vmem->ptr;
		rep->vlen = rep->mem_len;
		return DRAGON_OK;
	}
	(void)rmem;
	*val = pl;
	return DRAGON_OK;
}

static int get_common(dragon_ddict_t *d, uint32_t op, const void *key, size_t klen, void *buf,
		      size_t cap, size_t *vlen, dragon_mem_t *out)
{
	DdReq q = DD_REQ__INIT;
	DdRep *rep;
	dragon_mem_t rmem, vmem;
	const unsigned char *pl, *val = NULL;
	size_t plen;
	unsigned i;
	int rc;

	if ((rc = dd_check_key(d, key, klen)))
		return rc;
	if (!vlen || (!out && !buf && cap))
		return dg_err(DRAGON_EINVAL, "NULL buffer or length");
	i = dd_target(d, key, klen);
	if (op == DD_OP_GET) {
		rc = frozen_get(d, i, key, klen, buf, cap, vlen, out);
		if (rc != DRAGON_EAGAIN)
			return rc;
	}
	q.op = op;
	q.key.data = (uint8_t *)key;
	q.key.len = klen;
	rc = dd_call(d, i, &q, NULL, 0, d->timeout_ms, &rep, &rmem, &pl, &plen);
	if (rc)
		return rc;
	if ((rc = dd_rep_rc(rep)) || (rc = reply_value(d, i, rep, &rmem, pl, &val, &vmem))) {
		dd_release(rep, &rmem);
		return rc;
	}
	*vlen = rep->vlen;
	if (out) {
		if (vmem.pool) {
			*out = vmem;
			dragon_pool_free(&rmem);
		} else {
			/* The value leads the received message: hand the message over. */
			*out = rmem;
		}
		dd_rep__free_unpacked(rep, NULL);
		return DRAGON_OK;
	}
	if (rep->vlen > cap) {
		rc = dg_err(DRAGON_ETOOBIG, "the value is %llu bytes, the buffer %zu%s",
			    (unsigned long long)rep->vlen, cap,
			    op == DD_OP_POP ? " (the key was removed)" : "");
	} else if (rep->vlen) {
		memcpy(buf, val, rep->vlen);
	}
	if (vmem.pool)
		dragon_pool_free(&vmem);
	dd_release(rep, &rmem);
	return rc;
}

DRAGON_API int dragon_ddict_get(dragon_ddict_t *d, const void *key, size_t klen, void *buf,
				size_t cap, size_t *vlen)
{
	return get_common(d, DD_OP_GET, key, klen, buf, cap, vlen, NULL);
}

DRAGON_API int dragon_ddict_get_mem(dragon_ddict_t *d, const void *key, size_t klen,
				    dragon_mem_t *mem, size_t *vlen)
{
	if (!mem)
		return dg_err(DRAGON_EINVAL, "NULL allocation");
	return get_common(d, DD_OP_GET, key, klen, NULL, 0, vlen, mem);
}

DRAGON_API int dragon_ddict_get_view(dragon_ddict_t *d, const void *key, size_t klen,
				     const void **val, size_t *vlen)
{
	struct dd_shard *v;
	struct dd_entry *e;
	const unsigned char *p;
	unsigned i;
	int rc;

	if ((rc = dd_check_key(d, key, klen)))
		return rc;
	if (!val || !vlen)
		return dg_err(DRAGON_EINVAL, "NULL value pointer or length");
	i = dd_target(d, key, klen);
	v = dd_mgr_view(d, i);
	if (!v || !__atomic_load_n(&v->h->frozen, __ATOMIC_ACQUIRE))
		return dg_err(DRAGON_EAGAIN, "a view needs a frozen dictionary and the key's manager "
					     "(%u) on this node",
			      i);
	rc = dd_shard_find(v, dragon_ddict_hash(key, klen), key, klen, &e);
	if (rc == DRAGON_ENOTFOUND)
		return dg_err(rc, "no such key");
	if (rc || !(p = dd_shard_value(v, e)))
		return dg_err(DRAGON_EAGAIN, "the shard changed while it was read");
	*val = p;
	*vlen = e->vlen;
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_pop(dragon_ddict_t *d, const void *key, size_t klen, void *buf,
				size_t cap, size_t *vlen)
{
	return get_common(d, DD_OP_POP, key, klen, buf, cap, vlen, NULL);
}

DRAGON_API int dragon_ddict_pop_mem(dragon_ddict_t *d, const void *key, size_t klen,
				    dragon_mem_t *mem, size_t *vlen)
{
	if (!mem)
		return dg_err(DRAGON_EINVAL, "NULL allocation");
	return get_common(d, DD_OP_POP, key, klen, NULL, 0, vlen, mem);
}

/* ---- the other single-key operations -------------------------------------------------------- */

static int key_op(dragon_ddict_t *d, uint32_t op, const void *key, size_t klen, int64_t delta,
		  int timeout_ms, int64_t *num)
{
	DdReq q = DD_REQ__INIT;
	int rc;

	if ((rc = dd_check_key(d, key, klen)))
		return rc;
	q.op = op;
	q.key.data = (uint8_t *)key;
	q.key.len = klen;
	q.delta = delta;
	q.timeout_ms = timeout_ms;
	if (op == DD_OP_WAIT) {
		unsigned i = dd_target(d, key, klen);
		DdRep *rep;
		dragon_mem_t mem;
		const unsigned char *pl;
		size_t plen;
		/* The manager times the wait; we allow it a margin to answer. */
		rc = dd_call(d, i, &q, NULL, 0, timeout_ms < 0 ? -1 : timeout_ms + 5000, &rep, &mem,
			  &pl, &plen);
		if (rc)
			return rc;
		rc = dd_rep_rc(rep);
		dd_release(rep, &mem);
		return rc;
	}
	return dd_simple(d, dd_target(d, key, klen), &q, num);
}

DRAGON_API int dragon_ddict_del(dragon_ddict_t *d, const void *key, size_t klen)
{
	return key_op(d, DD_OP_DEL, key, klen, 0, 0, NULL);
}

DRAGON_API int dragon_ddict_contains(dragon_ddict_t *d, const void *key, size_t klen,
				     int *present)
{
	size_t vlen;
	int rc;

	if (!present)
		return dg_err(DRAGON_EINVAL, "NULL result pointer");
	if (d && dd_check_key(d, key, klen) == DRAGON_OK) {
		/* frozen: answered from shared memory like a get (without copying the value) */
		rc = frozen_get(d, dd_target(d, key, klen), key, klen, NULL, 0, &vlen, NULL);
		if (rc == DRAGON_OK || rc == DRAGON_ETOOBIG || rc == DRAGON_ENOTFOUND) {
			*present = rc != DRAGON_ENOTFOUND;
			return DRAGON_OK;
		}
	}
	rc = key_op(d, DD_OP_CONTAINS, key, klen, 0, 0, NULL);
	*present = rc == DRAGON_OK;
	return rc == DRAGON_ENOTFOUND ? DRAGON_OK : rc;
}

DRAGON_API int dragon_ddict_wait_for_key(dragon_ddict_t *d, const void *key, size_t klen,
					 int timeout_ms)
{
	return key_op(d, DD_OP_WAIT, key, klen, 0, timeout_ms < 0 ? -1 : timeout_ms, NULL);
}

DRAGON_API int dragon_ddict_fetch_add(dragon_ddict_t *d, const void *key, size_t klen,
				      int64_t delta, int64_t *old)
{
	int64_t num = 0;
	int rc = key_op(d, DD_OP_FETCH_ADD, key, klen, delta, 0, &num);

	if (!rc && old)
		*old = num;
	return rc;
}

/* ---- whole-dictionary operations ------------------------------------------------------------ */

DRAGON_API int dragon_ddict_len(dragon_ddict_t *d, uint64_t *n)
{
	int64_t sum;
	int rc;

	if (!d || !n)
		return dg_err(DRAGON_EINVAL, "NULL argument");
	rc = dd_every(d, DD_OP_LEN, NULL, &sum);
	if (!rc)
		*n = (uint64_t)sum;
	return rc;
}

DRAGON_API int dragon_ddict_manager_stats(dragon_ddict_t *d, unsigned m, uint64_t *keys,
					  uint64_t *used, uint64_t *budget)
{
	DdReq q = DD_REQ__INIT;
	DdRep *rep;
	dragon_mem_t mem;
	const unsigned char *pl;
	size_t plen;
	int rc;

	if (!d || m >= d->desc.managers)
		return dg_err(DRAGON_EINVAL, "manager %u of %u", m, d ? d->desc.managers : 0);
	q.op = DD_OP_STATS;
	rc = dd_call(d, m, &q, NULL, 0, d->timeout_ms, &rep, &mem, &pl, &plen);
	if (rc)
		return rc;
	if (keys)
		*keys = (uint64_t)rep->num;
	if (used)
		*used = rep->used;
	if (budget)
		*budget = rep->budget;
	dd_release(rep, &mem);
	return DRAGON_OK;
}

int dd_manager_waiters(dragon_ddict_t *d, unsigned m, uint64_t *n)
{
	DdReq q = DD_REQ__INIT;
	DdRep *rep;
	dragon_mem_t mem;
	const unsigned char *pl;
	size_t plen;
	int rc;

	if (!d || m >= d->desc.managers || !n)
		return dg_err(DRAGON_EINVAL, "manager %u", m);
	q.op = DD_OP_STATS;
	rc = dd_call(d, m, &q, NULL, 0, d->timeout_ms, &rep, &mem, &pl, &plen);
	if (rc)
		return rc;
	*n = rep->waiters;
	dd_release(rep, &mem);
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_clear(dragon_ddict_t *d)
{
	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	return dd_every(d, DD_OP_CLEAR, NULL, NULL);
}

DRAGON_API int dragon_ddict_freeze(dragon_ddict_t *d)
{
	int pin, rc;

	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	pin = d->pin;
	d->pin = -1; /* the whole dictionary, pinned or not */
	rc = dd_every(d, DD_OP_FREEZE, NULL, NULL);
	d->pin = pin;
	return rc;
}

DRAGON_API int dragon_ddict_unfreeze(dragon_ddict_t *d)
{
	int pin, rc;

	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	pin = d->pin;
	d->pin = -1;
	rc = dd_every(d, DD_OP_UNFREEZE, NULL, NULL);
	d->pin = pin;
	return rc;
}

static int dir_op(dragon_ddict_t *d, uint32_t op, const char *dir)
{
	int pin, rc;

	if (!d || !dir || !*dir)
		return dg_err(DRAGON_EINVAL, "NULL handle or directory");
	if (strlen(dir) > 3900)
		return dg_err(DRAGON_EINVAL, "directory name of %zu bytes", strlen(dir));
	pin = d->pin;
	d->pin = -1;
	rc = dd_every(d, op, dir, NULL);
	d->pin = pin;
	return rc;
}

DRAGON_API int dragon_ddict_persist(dragon_ddict_t *d, const char *dir)
{
	return dir_op(d, DD_OP_PERSIST, dir);
}

DRAGON_API int dragon_ddict_restore(dragon_ddict_t *d, const char *dir)
{
	return dir_op(d, DD_OP_RESTORE, dir);
}

/* ---- key iteration -------------------------------------------------------------------------- */

struct dragon_ddict_iter {
	dragon_ddict_t *d;
	unsigned m, last;
	uint64_t cursor;
	DdRep *rep;
	size_t pos;
};

DRAGON_API int dragon_ddict_iter_start(dragon_ddict_t *d, int m, dragon_ddict_iter_t **out)
{
	dragon_ddict_iter_t *it;

	if (!d || !out || m < -1 || (m >= 0 && (unsigned)m >= d->desc.managers))
		return dg_err(DRAGON_EINVAL, "iteration over manager %d of %u", m,
			      d ? d->desc.managers : 0);
	it = calloc(1, sizeof(*it));
	if (!it)
		return dg_err(DRAGON_ENOMEM, "iterator");
	it->d = d;
	if (m < 0 && d->pin >= 0)
		m = d->pin;
	it->m = m < 0 ? 0 : (unsigned)m;
	it->last = m < 0 ? d->desc.managers - 1 : (unsigned)m;
	*out = it;
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_iter_next(dragon_ddict_iter_t *it, void *key, size_t cap,
				      size_t *klen)
{
	int rc;

	if (!it || !klen || (!key && cap))
		return dg_err(DRAGON_EINVAL, "NULL iterator, key or length");
	while (!it->rep || it->pos >= it->rep->n_keys) {
		if (it->rep) {
			dd_rep__free_unpacked(it->rep, NULL);
			it->rep = NULL;
			if (it->cursor == UINT64_MAX) { /* this manager is done */
				if (it->m >= it->last)
					return DRAGON_ENOTFOUND;
				it->m++;
				it->cursor = 0;
			}
		}
		DdReq q = DD_REQ__INIT;
		dragon_mem_t mem;
		const unsigned char *pl;
		size_t plen;
		q.op = DD_OP_KEYS;
		q.cursor = it->cursor;
		rc = dd_call(it->d, it->m, &q, NULL, 0, it->d->timeout_ms, &it->rep, &mem, &pl, &plen);
		if (rc)
			return rc;
		if (mem.pool)
			dragon_pool_free(&mem);
		if ((rc = dd_rep_rc(it->rep))) {
			dd_rep__free_unpacked(it->rep, NULL);
			it->rep = NULL;
			return rc;
		}
		it->cursor = it->rep->cursor;
		it->pos = 0;
	}
	ProtobufCBinaryData *k = &it->rep->keys[it->pos];
	*klen = k->len;
	if (k->len > cap)
		return dg_err(DRAGON_ETOOBIG, "key of %zu bytes, room for %zu", k->len, cap);
	memcpy(key, k->data, k->len);
	it->pos++;
	return DRAGON_OK;
}

DRAGON_API void dragon_ddict_iter_end(dragon_ddict_iter_t *it)
{
	if (!it)
		return;
	if (it->rep)
		dd_rep__free_unpacked(it->rep, NULL);
	free(it);
}
