/* runtime/client/sync.c: queues (channels kept by local services) and the lock, semaphore, barrier, event on them. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dragon/dragon.h>
#include "core/err.h"
#include "client/client.h"

/*
 * A queue is a channel kept by the creator's local services (dragon_fchannel_create), so puts and
 * gets on its node are shared-memory operations, and from other nodes they go through the
 * transport agents like any channel's. Its name maps to the channel's descriptor followed by the
 * queue's message limit (little-endian 32 bits), registered as a channel with the channel's
 * lifetime: a descriptor of another length is not a queue.
 */
#define QUEUE_NAME_LEN (DRAGON_DESC_SIZE + 4)

struct dragon_queue {
	dragon_channel_t *ch;
	uint32_t msg_max;
	char name[256]; /* "" when unnamed */
};

/* The queue's own words for what the channel says. */
static int queue_rc(int rv)
{
	if (rv == DRAGON_ECLOSED || rv == DRAGON_ESTALE)
		return dg_err(DRAGON_ESTALE, "the queue was destroyed");
	return rv;
}

static dragon_wait_t queue_wait(int timeout_ms)
{
	dragon_wait_t w = {.timeout_us = timeout_ms < 0 ? -1 : (long)timeout_ms * 1000};
	return w;
}

DRAGON_API int dragon_queue_create(const char *name, unsigned capacity, size_t msg_max, int flags,
				   dragon_queue_t **q)
{
	dragon_channel_attr_t attr = {.capacity = capacity};
	unsigned char desc[QUEUE_NAME_LEN];
	dragon_queue_t *h;
	int rv;

	if (!q)
		return dg_err(DRAGON_EINVAL, "q is NULL");
	if (capacity < 1 || capacity > 65536 || msg_max < 1 || msg_max > 65536)
		return dg_err(DRAGON_EINVAL, "a queue holds 1..65536 messages of 1..65536 bytes "
					     "(asked: %u of %zu)",
			      capacity, msg_max);
	if (name && strlen(name) >= sizeof(h->name))
		return dg_err(DRAGON_EINVAL, "queue name longer than %zu bytes", sizeof(h->name) - 1);
	/* Small messages inline; larger ones travel as allocations of the node's pool. */
	attr.block_size = msg_max < 512 ? (uint32_t)msg_max : 512;
	if (!(h = calloc(1, sizeof(*h))))
		return dg_err(DRAGON_ENOMEM, "queue handle");
	h->msg_max = (uint32_t)msg_max;
	if ((rv = dragon_fchannel_create(NULL, &attr,
					 flags & DRAGON_QUEUE_OUTLIVE ? DRAGON_FCHANNEL_OUTLIVE : 0,
					 &h->ch))) {
		free(h);
		return rv;
	}
	if (name && *name) {
		snprintf(h->name, sizeof(h->name), "%s", name);
		rv = dragon_channel_serialize(h->ch, (dragon_channel_desc_t *)desc);
		for (int k = 0; k < 4; k++)
			desc[DRAGON_DESC_SIZE + k] = (unsigned char)(h->msg_max >> (8 * k));
		if (!rv)
			rv = dragon_name_register(name, DRAGON_NAME_CHANNEL, desc, sizeof(desc),
						  flags & DRAGON_QUEUE_OUTLIVE ? DRAGON_NAME_OUTLIVE : 0);
		if (rv) {
			char why[512];
			snprintf(why, sizeof(why), "%s", dragon_errmsg());
			dragon_fchannel_destroy(h->ch);
			free(h);
			return dg_err(rv, "%s", why);
		}
	}
	*q = h;
	return DRAGON_OK;
}

DRAGON_API int dragon_queue_attach(const char *name, int timeout_ms, dragon_queue_t **q)
{
	enum dragon_name_kind kind;
	unsigned char desc[QUEUE_NAME_LEN + 1];
	size_t len = sizeof(desc);
	dragon_queue_t *h;
	int rv;

	if (!q || !name)
		return dg_err(DRAGON_EINVAL, "name or q is NULL");
	rv = dragon_name_lookup(name, timeout_ms, &kind, desc, &len);
	if (rv == DRAGON_ETOOBIG || (!rv && (kind != DRAGON_NAME_CHANNEL || len != QUEUE_NAME_LEN)))
		return dg_err(DRAGON_EINVAL, "'%s' names something else than a queue", name);
	if (rv)
		return rv;
	if (!(h = calloc(1, sizeof(*h))))
		return dg_err(DRAGON_ENOMEM, "queue handle");
	for (int k = 0; k < 4; k++)
		h->msg_max |= (uint32_t)desc[DRAGON_DESC_SIZE + k] << (8 * k);
	snprintf(h->name, sizeof(h->name), "%s", name);
	if ((rv = dragon_channel_attach((const dragon_channel_desc_t *)desc, &h->ch))) {
		free(h);
		return queue_rc(rv);
	}
	*q = h;
	return DRAGON_OK;
}

DRAGON_API int dragon_queue_put(dragon_queue_t *q, const void *data, size_t len, int timeout_ms)
{
	dragon_wait_t w = queue_wait(timeout_ms);

	if (!q || (!data && len))
		return dg_err(DRAGON_EINVAL, "q or data is NULL");
	if (len > q->msg_max)
		return dg_err(DRAGON_ETOOBIG, "message of %zu bytes, the queue takes %u", len,
			      q->msg_max);
	return queue_rc(dragon_channel_send(q->ch, data, len, &w));
}

DRAGON_API int dragon_queue_get(dragon_queue_t *q, void *buf, size_t *len, int timeout_ms)
{
	dragon_wait_t w = queue_wait(timeout_ms);

	if (!q || !len || (!buf && *len))
		return dg_err(DRAGON_EINVAL, "q, buf or len is NULL");
	/* A message larger than buf stays in the queue; *len says what it needs. */
	return queue_rc(dragon_channel_recv(q->ch, buf, *len, len, &w));
}

DRAGON_API size_t dragon_queue_msg_max(const dragon_queue_t *q)
{
	return q ? q->msg_max : 0;
}

DRAGON_API int dragon_queue_detach(dragon_queue_t *q)
{
	if (q) {
		dragon_channel_detach(q->ch);
		free(q);
	}
	return DRAGON_OK;
}

DRAGON_API int dragon_queue_destroy(dragon_queue_t *q)
{
	int rv;

	if (!q)
		return dg_err(DRAGON_EINVAL, "q is NULL");
	if (q->name[0])
		dragon_name_remove(q->name); /* it may be gone already with its owner */
	rv = dragon_fchannel_destroy(q->ch);
	if (rv)
		dragon_channel_detach(q->ch);
	free(q);
	return rv == DRAGON_ENOTFOUND ? dg_err(DRAGON_ESTALE, "the queue was destroyed") : rv;
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
