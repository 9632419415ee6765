/* runtime/client/sync.c: queues (served by global services) and the lock, semaphore, barrier, event on them. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dragon/dragon.h>
#include "err.h"
#include "client/client.h"

struct dragon_queue {
	uint64_t qid;
	uint32_t cap, msg_max;
};

static int queue_from_reply(Dragon__Msg *rep, dragon_queue_t **q)
{
	dragon_queue_t *h;

	if (rep->body_case != DRAGON__MSG__BODY_QUEUE_REPLY)
		return dg_err(DRAGON_EPROTO, "expected a queue reply, got %s", dg_msg_name(rep));
	h = calloc(1, sizeof(*h));
	if (!h)
		return dg_err(DRAGON_ENOMEM, "queue handle");
	h->qid = rep->queue_reply->qid;
	h->cap = rep->queue_reply->capacity;
	h->msg_max = rep->queue_reply->msg_max;
	*q = h;
	return DRAGON_OK;
}

DRAGON_API int dragon_queue_create(const char *name, unsigned capacity, size_t msg_max, int flags,
				   dragon_queue_t **q)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__QueueCreate c = DRAGON__QUEUE_CREATE__INIT;
	int rv;

	if (!q)
		return dg_err(DRAGON_EINVAL, "q is NULL");
	if (msg_max > UINT32_MAX)
		return dg_err(DRAGON_EINVAL, "msg_max %zu is beyond 65536", msg_max);
	c.name = (char *)(name ? name : "");
	c.capacity = capacity;
	c.msg_max = (uint32_t)msg_max;
	c.outlive = !!(flags & DRAGON_QUEUE_OUTLIVE);
	m.body_case = DRAGON__MSG__BODY_QUEUE_CREATE;
	m.queue_create = &c;
	rv = dg_client_call(&m, &rep, NULL);
	if (!rv)
		rv = queue_from_reply(rep, q);
	dg_msg_free(rep);
	return rv;
}

DRAGON_API int dragon_queue_attach(const char *name, int timeout_ms, dragon_queue_t **q)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__QueueInfo i = DRAGON__QUEUE_INFO__INIT;
	enum dragon_name_kind kind;
	uint8_t desc[64];
	size_t len = sizeof(desc);
	int rv;

	if (!q || !name)
		return dg_err(DRAGON_EINVAL, "name or q is NULL");
	rv = dragon_name_lookup(name, timeout_ms, &kind, desc, &len);
	if (rv == DRAGON_ETOOBIG)
		return dg_err(DRAGON_EINVAL, "'%s' names something else than a queue", name);
	if (rv)
		return rv;
	if (kind != (enum dragon_name_kind)DRAGON__KIND__KIND_QUEUE || len != 8)
		return dg_err(DRAGON_EINVAL, "'%s' names something else than a queue", name);
	for (int k = 0; k < 8; k++)
		i.qid |= (uint64_t)desc[k] << (8 * k);
	m.body_case = DRAGON__MSG__BODY_QUEUE_INFO;
	m.queue_info = &i;
	rv = dg_client_call(&m, &rep, NULL);
	if (!rv)
		rv = queue_from_reply(rep, q);
	dg_msg_free(rep);
	return rv;
}

DRAGON_API int dragon_queue_put(dragon_queue_t *q, const void *data, size_t len, int timeout_ms)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__QueuePut p = DRAGON__QUEUE_PUT__INIT;

	if (!q || (!data && len))
		return dg_err(DRAGON_EINVAL, "q or data is NULL");
	if (len > q->msg_max)
		return dg_err(DRAGON_ETOOBIG, "message of %zu bytes, the queue takes %u", len,
			      q->msg_max);
	p.qid = q->qid;
	p.data.data = (uint8_t *)data;
	p.data.len = len;
	p.timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
	m.body_case = DRAGON__MSG__BODY_QUEUE_PUT;
	m.queue_put = &p;
	return dg_client_call(&m, NULL, NULL);
}

DRAGON_API int dragon_queue_get(dragon_queue_t *q, void *buf, size_t *len, int timeout_ms)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__QueueGet g = DRAGON__QUEUE_GET__INIT;
	int rv;

	if (!q || !len || (!buf && *len))
		return dg_err(DRAGON_EINVAL, "q, buf or len is NULL");
	g.qid = q->qid;
	g.timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
	m.body_case = DRAGON__MSG__BODY_QUEUE_GET;
	m.queue_get = &g;
	rv = dg_client_call(&m, &rep, NULL);
	if (rv)
		return rv;
	if (rep->body_case != DRAGON__MSG__BODY_QUEUE_ITEM) {
		rv = dg_err(DRAGON_EPROTO, "expected a queue item, got %s", dg_msg_name(rep));
	} else if (rep->queue_item->data.len > *len) {
		rv = dg_err(DRAGON_ETOOBIG, "message of %zu bytes, buffer of %zu",
			    rep->queue_item->data.len, *len);
		*len = rep->queue_item->data.len;
	} else {
		memcpy(buf, rep->queue_item->data.data, rep->queue_item->data.len);
		*len = rep->queue_item->data.len;
	}
	dg_msg_free(rep);
	return rv;
}

DRAGON_API size_t dragon_queue_msg_max(const dragon_queue_t *q)
{
	return q ? q->msg_max : 0;
}

DRAGON_API int dragon_queue_detach(dragon_queue_t *q)
{
	free(q);
	return DRAGON_OK;
}

DRAGON_API int dragon_queue_destroy(dragon_queue_t *q)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__QueueDestroy d = DRAGON__QUEUE_DESTROY__INIT;
	int rv;

	if (!q)
		return dg_err(DRAGON_EINVAL, "q is NULL");
	d.qid = q->qid;
	m.body_case = DRAGON__MSG__BODY_QUEUE_DESTROY;
	m.queue_destroy = &d;
	rv = dg_client_call(&m, NULL, NULL);
	free(q);
	return rv;
}

/* ---- semaphore and lock: a queue of `max` one-byte permits ---------------------------------- */

struct dragon_sem {
	dragon_queue_t *q;
};

DRAGON_API int dragon_sem_create(const char *name, unsigned initial, unsigned max, int flags,
				 dragon_sem_t **s)
{
	dragon_sem_t *h;
	int rv;

	if (!s || initial > max)
		return dg_err(DRAGON_EINVAL, "s is NULL or initial %u > max %u", initial, max);
	h = calloc(1, sizeof(*h));
	if (!h)
		return dg_err(DRAGON_ENOMEM, "semaphore");
	rv = dragon_queue_create(name, max, 1, flags & DRAGON_SYNC_OUTLIVE ? DRAGON_QUEUE_OUTLIVE : 0,
				 &h->q);
	for (unsigned i = 0; !rv && i < initial; i++)
		rv = dragon_queue_put(h->q, "p", 1, 0);
	if (rv) {
		if (h->q)
			dragon_queue_destroy(h->q);
		free(h);
		return rv;
	}
	*s = h;
	return DRAGON_OK;
}

DRAGON_API int dragon_sem_attach(const char *name, int timeout_ms, dragon_sem_t **s)
{
	dragon_sem_t *h = calloc(1, sizeof(*h));
	int rv;

	if (!h)
		return dg_err(DRAGON_ENOMEM, "semaphore");
	if ((rv = dragon_queue_attach(name, timeout_ms, &h->q))) {
		free(h);
		return rv;
	}
	*s = h;
	return DRAGON_OK;
}

DRAGON_API int dragon_sem_acquire(dragon_sem_t *s, int timeout_ms)
{
	char p;
	size_t len = 1;

	if (!s)
		return dg_err(DRAGON_EINVAL, "s is NULL");
	return dragon_queue_get(s->q, &p, &len, timeout_ms);
}

DRAGON_API int dragon_sem_release(dragon_sem_t *s)
{
	int rv;

	if (!s)
		return dg_err(DRAGON_EINVAL, "s is NULL");
	rv = dragon_queue_put(s->q, "p", 1, 0);
	if (rv == DRAGON_EAGAIN)
		return dg_err(DRAGON_ENOSPACE, "releasing beyond the semaphore's maximum");
	return rv;
}

DRAGON_API int dragon_sem_detach(dragon_sem_t *s)
{
	if (s) {
		dragon_queue_detach(s->q);
		free(s);
	}
	return DRAGON_OK;
}

DRAGON_API int dragon_sem_destroy(dragon_sem_t *s)
{
	int rv;

	if (!s)
		return dg_err(DRAGON_EINVAL, "s is NULL");
	rv = dragon_queue_destroy(s->q);
	free(s);
	return rv;
}

DRAGON_API int dragon_lock_create(const char *name, int flags, dragon_lock_t **l)
{
	return dragon_sem_create(name, 1, 1, flags, l);
}

DRAGON_API int dragon_lock_attach(const char *name, int timeout_ms, dragon_lock_t **l)
{
	return dragon_sem_attach(name, timeout_ms, l);
}

DRAGON_API int dragon_lock_acquire(dragon_lock_t *l, int timeout_ms)
{
	return dragon_sem_acquire(l, timeout_ms);
}

DRAGON_API int dragon_lock_release(dragon_lock_t *l)
{
	int rv = dragon_sem_release(l);

	return rv == DRAGON_ENOSPACE ? dg_err(DRAGON_EINVAL, "the lock is not held") : rv;
}

DRAGON_API int dragon_lock_detach(dragon_lock_t *l)
{
	return dragon_sem_detach(l);
}

DRAGON_API int dragon_lock_destroy(dragon_lock_t *l)
{
	return dragon_sem_destroy(l);
}

/* ---- barrier ------------------------------------------------------------------------------ */
/*
 * A counter queue holds one token {round, arrived}; taking it is the barrier's lock. The last
 * arrival of a round puts n-1 go tokens into go[round % 2]: alternating between two go queues
 * keeps a fast process of the next round from taking a token meant for this one.
 */
struct dragon_barrier {
	dragon_queue_t *count, *go[2];
};

struct bar_token {
	uint32_t round, arrived, n;
};

static void bar_names(const char *name, char *g0, char *g1, size_t len)
{
	snprintf(g0, len, "%s#go0", name);
	snprintf(g1, len, "%s#go1", name);
}

static void bar_free(dragon_barrier_t *b, int destroy)
{
	for (int i = 0; i < 3; i++) {
		dragon_queue_t *q = i == 0 ? b->count : b->go[i - 1];
		if (q && destroy)
			dragon_queue_destroy(q);
		else if (q)
			dragon_queue_detach(q);
	}
	free(b);
}

DRAGON_API int dragon_barrier_create(const char *name, unsigned n, int flags,
				     dragon_barrier_t **b)
{
	char g0[300], g1[300];
	int qf = flags & DRAGON_SYNC_OUTLIVE ? DRAGON_QUEUE_OUTLIVE : 0, rv;
	struct bar_token t = {0, 0, n};
	dragon_barrier_t *h;

	if (!b || n < 2 || n > 65535)
		return dg_err(DRAGON_EINVAL, "a barrier is for 2 to 65535 processes");
	if (name && strlen(name) > 250)
		return dg_err(DRAGON_EINVAL, "a barrier's name is at most 250 bytes");
	h = calloc(1, sizeof(*h));
	if (!h)
		return dg_err(DRAGON_ENOMEM, "barrier");
	if (name)
		bar_names(name, g0, g1, sizeof(g0));
	if ((rv = dragon_queue_create(name, 1, sizeof(t), qf, &h->count)) ||
	    (rv = dragon_queue_create(name ? g0 : NULL, n, 1, qf, &h->go[0])) ||
	    (rv = dragon_queue_create(name ? g1 : NULL, n, 1, qf, &h->go[1])) ||
	    (rv = dragon_queue_put(h->count, &t, sizeof(t), 0))) {
		bar_free(h, 1);
		return rv;
	}
	*b = h;
	return DRAGON_OK;
}

DRAGON_API int dragon_barrier_attach(const char *name, int timeout_ms, dragon_barrier_t **b)
{
	char g0[300], g1[300];
	dragon_barrier_t *h;
	int rv;

	if (!b || !name || strlen(name) > 250)
		return dg_err(DRAGON_EINVAL, "b or name is NULL, or the name is too long");
	h = calloc(1, sizeof(*h));
	if (!h)
		return dg_err(DRAGON_ENOMEM, "barrier");
	bar_names(name, g0, g1, sizeof(g0));
	if ((rv = dragon_queue_attach(name, timeout_ms, &h->count)) ||
	    (rv = dragon_queue_attach(g0, timeout_ms, &h->go[0])) ||
	    (rv = dragon_queue_attach(g1, timeout_ms, &h->go[1]))) {
		bar_free(h, 0);
		return rv;
	}
	*b = h;
	return DRAGON_OK;
}

DRAGON_API int dragon_barrier_wait(dragon_barrier_t *b, int timeout_ms)
{
	struct bar_token t;
	size_t len = sizeof(t);
	uint32_t round;
	char go;
	int rv;

	if (!b)
		return dg_err(DRAGON_EINVAL, "b is NULL");
	if ((rv = dragon_queue_get(b->count, &t, &len, timeout_ms)))
		return rv;
	if (len != sizeof(t))
		return dg_err(DRAGON_EPROTO, "the barrier's counter is corrupt");
	round = t.round;
	if (++t.arrived == t.n) {
		uint32_t n = t.n;
		t.round++;
		t.arrived = 0;
		if ((rv = dragon_queue_put(b->count, &t, sizeof(t), -1)))
			return rv;
		for (uint32_t i = 0; i + 1 < n; i++)
			if ((rv = dragon_queue_put(b->go[round % 2], "g", 1, -1)))
				return rv;
		return DRAGON_OK;
	}
	if ((rv = dragon_queue_put(b->count, &t, sizeof(t), -1)))
		return rv;
	len = 1;
	return dragon_queue_get(b->go[round % 2], &go, &len, timeout_ms);
}

DRAGON_API int dragon_barrier_detach(dragon_barrier_t *b)
{
	if (b)
		bar_free(b, 0);
	return DRAGON_OK;
}

DRAGON_API int dragon_barrier_destroy(dragon_barrier_t *b)
{
	if (!b)
		return dg_err(DRAGON_EINVAL, "b is NULL");
	bar_free(b, 1);
	return DRAGON_OK;
}

/* ---- event: a queue of one token that is there while the event is set ---------------------- */

struct dragon_event {
	dragon_queue_t *q;
};

DRAGON_API int dragon_event_create(const char *name, int flags, dragon_event_t **e)
{
	dragon_event_t *h = calloc(1, sizeof(*h));
	int rv;

	if (!h || !e) {
		free(h);
		return dg_err(e ? DRAGON_ENOMEM : DRAGON_EINVAL, "event");
	}
	rv = dragon_queue_create(name, 1, 1, flags & DRAGON_SYNC_OUTLIVE ? DRAGON_QUEUE_OUTLIVE : 0,
				 &h->q);
	if (rv) {
		free(h);
		return rv;
	}
	*e = h;
	return DRAGON_OK;
}

DRAGON_API int dragon_event_attach(const char *name, int timeout_ms, dragon_event_t **e)
{
	dragon_event_t *h = calloc(1, sizeof(*h));
	int rv;

	if (!h || !e) {
		free(h);
		return dg_err(e ? DRAGON_ENOMEM : DRAGON_EINVAL, "event");
	}
	if ((rv = dragon_queue_attach(name, timeout_ms, &h->q))) {
		free(h);
		return rv;
	}
	*e = h;
	return DRAGON_OK;
}

DRAGON_API int dragon_event_set(dragon_event_t *e)
{
	int rv;

	if (!e)
		return dg_err(DRAGON_EINVAL, "e is NULL");
	rv = dragon_queue_put(e->q, "s", 1, 0);
	return rv == DRAGON_EAGAIN ? DRAGON_OK : rv; /* already set */
}

DRAGON_API int dragon_event_clear(dragon_event_t *e)
{
	char c;
	size_t len = 1;
	int rv;

	if (!e)
		return dg_err(DRAGON_EINVAL, "e is NULL");
	rv = dragon_queue_get(e->q, &c, &len, 0);
	return rv == DRAGON_EAGAIN ? DRAGON_OK : rv; /* already clear */
}

DRAGON_API int dragon_event_wait(dragon_event_t *e, int timeout_ms)
{
	char c;
	size_t len = 1;
	int rv;

	if (!e)
		return dg_err(DRAGON_EINVAL, "e is NULL");
	if ((rv = dragon_queue_get(e->q, &c, &len, timeout_ms)))
		return rv;
	/* Put the token back for the other waiters; someone may have set it again meanwhile. */
	rv = dragon_queue_put(e->q, "s", 1, 0);
	return rv == DRAGON_EAGAIN ? DRAGON_OK : rv;
}

DRAGON_API int dragon_event_detach(dragon_event_t *e)
{
	if (e) {
		dragon_queue_detach(e->q);
		free(e);
	}
	return DRAGON_OK;
}

DRAGON_API int dragon_event_destroy(dragon_event_t *e)
{
	int rv;

	if (!e)
		return dg_err(DRAGON_EINVAL, "e is NULL");
	rv = dragon_queue_destroy(e->q);
	free(e);
	return rv;
}
