/* runtime/core/channel.c: ordered MPMC channels in a pool: inline small messages, large ones as allocations. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/channel_remote.h"
#include "core/err.h"
#include "core/pool_internal.h"

/*
 * A channel is one pool allocation: a header and `capacity` slots. head and tail count messages
 * received and sent since creation; slot i % capacity holds message i. Both change only under
 * the robust mutex, and a message is sent exactly when tail is incremented past it and received
 * exactly when head is (the commit points): a process killed anywhere before a commit point
 * leaves the channel as if it never started, one killed after it as if it finished. So the lock
 * needs no repair when its owner dies; the next locker just marks it consistent.
 *
 * Waiting never holds the lock: readers wait on recv_seq (bumped by every send), writers on
 * send_seq (bumped by every receive), spinning, sleeping on the futex, or both (dg_wait_seq).
 */
#define CH_MAGIC 0x4c4e4e4148434744ull /* "DGCHANNL" */
#define SLOT_MEM 1u                    /* payload is a pool allocation, not inline */
#define DEFAULT_CAPACITY 64u
#define DEFAULT_BLOCK 256u
#define MAX_CAPACITY (1u << 24)
#define MAX_BLOCK (1u << 24)

struct slot {
	uint64_t len;
	uint64_t mem_off; /* SLOT_MEM: the allocation's offset in the pool */
	uint32_t flags;
	uint32_t pad[3];
	unsigned char data[];
};

struct ch_hdr {
	uint64_t magic;
	uint64_t id;
	uint32_t capacity;
	uint32_t block_size;
	uint32_t slot_size;
	uint32_t wait_mode;
	_Atomic uint32_t closed;
	uint32_t pad;
	pthread_mutex_t lock;
	/* Separate cache lines for what readers and writers poll. */
	_Alignas(64) _Atomic uint64_t head;
	_Atomic uint32_t send_seq;
	_Atomic uint32_t send_waiters;
	_Alignas(64) _Atomic uint64_t tail;
	_Atomic uint32_t recv_seq;
	_Atomic uint32_t recv_waiters;
	_Alignas(64) unsigned char slots[];
};

struct dragon_channel {
	dragon_pool_t *pool;
	struct ch_hdr *h;
	uint64_t id;
	uint64_t offset;
	dragon_wait_mode_t mode;
	int owner_of_pool_ref;
	const struct dg_channel_remote_ops *rops;
	void *rstate;
	dragon_channel_desc_t desc;
};

static const struct dg_channel_remote_ops *remote_ops = &dg_ta_remote_ops;

void dg_channel_set_remote_ops(const struct dg_channel_remote_ops *ops)
{
	remote_ops = ops;
}

static struct slot *slot_at(const struct ch_hdr *h, uint64_t i)
{
	return (struct slot *)((unsigned char *)h->slots + (i % h->capacity) * h->slot_size);
}

static int check_live(const dragon_channel_t *ch)
{
	if (ch->h->magic != CH_MAGIC || ch->h->id != ch->id || atomic_load(&ch->h->closed))
		return dg_err(DRAGON_ECLOSED, "channel %016llx was destroyed",
			      (unsigned long long)ch->id);
	return DRAGON_OK;
}

static dragon_wait_mode_t mode_of(const dragon_channel_t *ch, const dragon_wait_t *w)
{
	if (w && w->mode != DRAGON_WAIT_DEFAULT)
		return w->mode;
	return ch->mode;
}

static long timeout_of(const dragon_wait_t *w)
{
	return w ? w->timeout_us : -1;
}

DRAGON_API int dragon_channel_create(dragon_pool_t *pool, const dragon_channel_attr_t *attr,
				     dragon_channel_t **out)
{
	uint32_t cap = attr && attr->capacity ? attr->capacity : DEFAULT_CAPACITY;
	uint32_t blk = attr && attr->block_size ? attr->block_size : DEFAULT_BLOCK;
	dragon_wait_mode_t mode = attr && attr->wait ? attr->wait : DRAGON_WAIT_ADAPTIVE;
	dragon_channel_t *ch;
	struct ch_hdr *h;
	dragon_mem_t mem;
	uint32_t slot_size;
	uint64_t id = 0;
	int rv;

	if (!pool || !out)
		return dg_err(DRAGON_EINVAL, "dragon_channel_create: NULL pool or channel");
	*out = NULL;
	if (cap > MAX_CAPACITY || blk > MAX_BLOCK)
		return dg_err(DRAGON_ETOOBIG, "channel capacity %u or block size %u beyond %u", cap,
			      blk, MAX_CAPACITY);
	if (mode > DRAGON_WAIT_IDLE)
		return dg_err(DRAGON_EINVAL, "unknown wait mode %d", (int)mode);
	slot_size = (uint32_t)((sizeof(struct slot) + blk + 63) / 64 * 64);
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return dg_err(DRAGON_ENOMEM, "channel handle");
	rv = dragon_pool_alloc(pool, sizeof(struct ch_hdr) + (uint64_t)slot_size * cap, 64, &mem);
	if (rv) {
		free(ch);
		return rv;
	}
	while (!id)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = 0;
	h = mem.ptr;
	memset(h, 0, sizeof(*h));
	h->id = id;
	h->capacity = cap;
	h->block_size = blk;
	h->slot_size = slot_size;
	h->wait_mode = mode;
	rv = dg_robust_init(&h->lock);
	if (rv) {
		dragon_pool_free(&mem);
		free(ch);
		return rv;
	}
	atomic_thread_fence(memory_order_release);
	h->magic = CH_MAGIC;
	dg_pool_ref(pool);
	ch->pool = pool;
	ch->h = h;
	ch->id = id;
	ch->offset = mem.offset;
	ch->mode = mode;
	dragon_channel_serialize(ch, &ch->desc);
	*out = ch;
	return DRAGON_OK;
}

DRAGON_API int dragon_channel_serialize(const dragon_channel_t *ch, dragon_channel_desc_t *desc)
{
	struct dg_desc d;

	if (!ch || !desc)
		return dg_err(DRAGON_EINVAL, "dragon_channel_serialize: NULL argument");
	if (ch->rops) {
		*desc = ch->desc;
		return DRAGON_OK;
	}
	dg_pool_fill_desc(ch->pool, &d);
	d.kind = DG_DESC_CHANNEL;
	d.offset = ch->offset;
	d.size = ch->id;
	dg_desc_pack(&d, desc->bytes);
	return DRAGON_OK;
}

DRAGON_API int dragon_channel_attach(const dragon_channel_desc_t *desc, dragon_channel_t **out)
{
	dragon_channel_t *ch;
	struct dg_desc d;
	struct ch_hdr *h;
	dragon_pool_t *pool;
	int rv;

	if (!out)
		return dg_err(DRAGON_EINVAL, "dragon_channel_attach: channel is NULL");
	*out = NULL;
	rv = dg_desc_unpack(desc ? desc->bytes : NULL, DG_DESC_CHANNEL, &d);
	if (rv)
		return rv;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return dg_err(DRAGON_ENOMEM, "channel handle");
	ch->desc = *desc;
	ch->id = d.size;
	if (d.node != dg_local_node()) {
		if (!remote_ops) {
			free(ch);
			return dg_err(DRAGON_EPEER, "channel lives on node %u and no transport agent "
						    "is reachable from node %u",
				      d.node, dg_local_node());
		}
		rv = remote_ops->attach(desc, &ch->rstate);
		if (rv) {
			free(ch);
			return rv;
		}
		ch->rops = remote_ops;
		*out = ch;
		return DRAGON_OK;
	}
	rv = dg_pool_attach_from(&d, &pool);
	if (rv) {
		free(ch);
		return rv;
	}
	h = dg_pool_ptr(pool, d.offset, sizeof(struct ch_hdr));
	if (!h || h->magic != CH_MAGIC || h->id != d.size ||
	    !dg_pool_ptr(pool, d.offset,
			 sizeof(struct ch_hdr) + (uint64_t)h->slot_size * h->capacity)) {
		dragon_pool_detach(pool);
		free(ch);
		return dg_err(DRAGON_ESTALE, "channel %016llx no longer exists in its pool",
			      (unsigned long long)d.size);
	}
	ch->pool = pool;
	ch->h = h;
	ch->offset = d.offset;
	ch->mode = (dragon_wait_mode_t)h->wait_mode;
	*out = ch;
	return DRAGON_OK;
}

DRAGON_API int dragon_channel_detach(dragon_channel_t *ch)
{
	int rv = DRAGON_OK;

	if (!ch)
		return dg_err(DRAGON_EINVAL, "dragon_channel_detach: channel is NULL");
	if (ch->rops)
		rv = ch->rops->detach(ch->rstate);
	else
		dragon_pool_detach(ch->pool);
	free(ch);
	return rv;
}

DRAGON_API int dragon_channel_destroy(dragon_channel_t *ch)
{
	struct ch_hdr *h;
	dragon_mem_t mem;

	if (!ch)
		return dg_err(DRAGON_EINVAL, "dragon_channel_destroy: channel is NULL");
	if (ch->rops) {
		dragon_channel_detach(ch);
		return dg_err(DRAGON_ENOTSUP, "a remote channel is destroyed on its own node");
	}
	h = ch->h;
	if (check_live(ch) == DRAGON_OK) {
		atomic_store(&h->closed, 1);
		/* Free what queued messages own, then wake everyone so they see it closed. */
		int recovered;
		if (dg_robust_lock(&h->lock, &recovered) == DRAGON_OK) {
			for (uint64_t i = atomic_load(&h->head); i < atomic_load(&h->tail); i++) {
				struct slot *s = slot_at(h, i);
				if (s->flags & SLOT_MEM) {
					mem = (dragon_mem_t){ ch->pool, s->mem_off, s->len,
							      NULL };
					dragon_pool_free(&mem);
				}
			}
			atomic_store(&h->head, atomic_load(&h->tail));
			pthread_mutex_unlock(&h->lock);
		}
		dg_wake_seq(&h->recv_seq, &h->recv_waiters);
		dg_wake_seq(&h->send_seq, &h->send_waiters);
		h->magic = 0;
		mem = (dragon_mem_t){ ch->pool, ch->offset, 1, h };
		dragon_pool_free(&mem);
	}
	return dragon_channel_detach(ch);
}

static int lock_ch(dragon_channel_t *ch)
{
	int recovered;

	/* Commit points make every state consistent: nothing to repair after a dead owner. */
	return dg_robust_lock(&ch->h->lock, &recovered);
}

/* Enqueue one message (inline bytes, or an allocation when mem_off != UINT64_MAX). */
static int enqueue(dragon_channel_t *ch, const void *buf, size_t len, uint64_t mem_off,
		   const dragon_wait_t *w)
{
	struct ch_hdr *h = ch->h;
	dragon_wait_mode_t mode = mode_of(ch, w);
	long timeout = timeout_of(w);
	struct dg_deadline dl;
	int rv;

	dg_deadline_start(&dl, timeout);
	for (;;) {
		uint32_t seen = atomic_load_explicit(&h->send_seq, memory_order_acquire);

		rv = check_live(ch);
		if (rv)
			return rv;
		if (atomic_load_explicit(&h->tail, memory_order_relaxed) -
			    atomic_load_explicit(&h->head, memory_order_acquire) <
		    h->capacity) {
			rv = lock_ch(ch);
			if (rv)
				return rv;
			uint64_t t = atomic_load_explicit(&h->tail, memory_order_relaxed);
			if (t - atomic_load_explicit(&h->head, memory_order_relaxed) < h->capacity) {
				struct slot *s = slot_at(h, t);
				s->len = len;
				if (mem_off != UINT64_MAX) {
					s->flags = SLOT_MEM;
					s->mem_off = mem_off;
				} else {
					s->flags = 0;
					if (len)
						memcpy(s->data, buf, len);
				}
				atomic_store_explicit(&h->tail, t + 1, memory_order_release);
				pthread_mutex_unlock(&h->lock);
				dg_wake_seq(&h->recv_seq, &h->recv_waiters);
				return DRAGON_OK;
			}
			pthread_mutex_unlock(&h->lock);
			continue;
		}
		if (timeout == 0)
			return dg_err(DRAGON_EAGAIN, "channel is full (%u messages)", h->capacity);
		if (dg_wait_seq(&h->send_seq, seen, &h->send_waiters, mode, &dl) ==
		    DRAGON_ETIMEDOUT)
			return dg_err(DRAGON_ETIMEDOUT, "channel stayed full for %ld us", timeout);
	}
}

/*
 * Dequeue the oldest message. peek: copy it but leave it. With want_mem, hand out an allocation
 * (inline payloads are copied into a new one). Otherwise copy into buf.
 */
static int dequeue(dragon_channel_t *ch, void *buf, size_t cap, size_t *len, dragon_mem_t *want_mem,
		   int peek, const dragon_wait_t *w)
{
	struct ch_hdr *h = ch->h;
	dragon_wait_mode_t mode = mode_of(ch, w);
	long timeout = peek ? 0 : timeout_of(w);
	struct dg_deadline dl;
	dragon_mem_t taken = { 0 };
	int rv;

	dg_deadline_start(&dl, timeout);
	for (;;) {
		uint32_t seen = atomic_load_explicit(&h->recv_seq, memory_order_acquire);

		rv = check_live(ch);
		if (rv)
			return rv;
		if (atomic_load_explicit(&h->head, memory_order_relaxed) !=
		    atomic_load_explicit(&h->tail, memory_order_acquire)) {
			rv = lock_ch(ch);
			if (rv)
				return rv;
			uint64_t hd = atomic_load_explicit(&h->head, memory_order_relaxed);
			if (hd == atomic_load_explicit(&h->tail, memory_order_relaxed)) {
				pthread_mutex_unlock(&h->lock);
				continue;
			}
			struct slot *s = slot_at(h, hd);
			size_t n = s->len;
			if (len)
				*len = n;
			if (!want_mem && n > cap) {
				pthread_mutex_unlock(&h->lock);
				return dg_err(DRAGON_ETOOBIG, "message of %zu bytes does not fit a "
							      "%zu-byte buffer",
					      n, cap);
			}
			if (s->flags & SLOT_MEM) {
				taken = (dragon_mem_t){ ch->pool, s->mem_off, n,
							dg_pool_ptr(ch->pool, s->mem_off, n) };
				if (!taken.ptr) {
					/* A corrupt slot: drop it rather than wedge the channel. */
					atomic_store_explicit(&h->head, hd + 1, memory_order_release);
					pthread_mutex_unlock(&h->lock);
					dg_wake_seq(&h->send_seq, &h->send_waiters);
					return dg_err(DRAGON_EPROTO, "dropped a message whose "
								     "allocation lies outside the pool");
				}
				if (peek) {
					memcpy(buf, taken.ptr, n);
					pthread_mutex_unlock(&h->lock);
					return DRAGON_OK;
				}
			} else if (want_mem) {
				rv = dragon_pool_alloc(ch->pool, n ? n : 1, 0, want_mem);
				if (rv) {
					pthread_mutex_unlock(&h->lock);
					return rv;
				}
				memcpy(want_mem->ptr, s->data, n);
				want_mem->size = n;
			} else if (n) {
				memcpy(buf, s->data, n);
			}
			if (peek) {
				pthread_mutex_unlock(&h->lock);
				return DRAGON_OK;
			}
			atomic_store_explicit(&h->head, hd + 1, memory_order_release);
			pthread_mutex_unlock(&h->lock);
			dg_wake_seq(&h->send_seq, &h->send_waiters);
			if (taken.ptr) {
				/* Large payloads are copied outside the lock. */
				if (want_mem) {
					*want_mem = taken;
				} else {
					memcpy(buf, taken.ptr, n);
					dragon_pool_free(&taken);
				}
			}
			return DRAGON_OK;
		}
		if (timeout == 0)
			return dg_err(DRAGON_EAGAIN, "channel is empty");
		if (dg_wait_seq(&h->recv_seq, seen, &h->recv_waiters, mode, &dl) ==
		    DRAGON_ETIMEDOUT)
			return dg_err(DRAGON_ETIMEDOUT, "no message arrived within %ld us", timeout);
	}
}

DRAGON_API int dragon_channel_send(dragon_channel_t *ch, const void *buf, size_t len,
				   const dragon_wait_t *w)
{
	dragon_mem_t mem;
	int rv;

	if (!ch || (!buf && len))
		return dg_err(DRAGON_EINVAL, "dragon_channel_send: NULL channel or buffer");
	if (ch->rops)
		return ch->rops->send(ch->rstate, buf, len, w);
	if (len <= ch->h->block_size)
		return enqueue(ch, buf, len, UINT64_MAX, w);
	rv = dragon_pool_alloc_wait(ch->pool, len, 0, timeout_of(w), &mem);
	if (rv)
		return rv;
	memcpy(mem.ptr, buf, len);
	rv = enqueue(ch, NULL, len, mem.offset, w);
	if (rv)
		dragon_pool_free(&mem);
	return rv;
}

DRAGON_API int dragon_channel_try_send(dragon_channel_t *ch, const void *buf, size_t len)
{
	const dragon_wait_t now = { .timeout_us = 0 };

	return dragon_channel_send(ch, buf, len, &now);
}

DRAGON_API int dragon_channel_recv(dragon_channel_t *ch, void *buf, size_t cap, size_t *len,
				   const dragon_wait_t *w)
{
	if (!ch || (!buf && cap) || !len)
		return dg_err(DRAGON_EINVAL, "dragon_channel_recv: NULL channel, buffer or length");
	if (ch->rops)
		return ch->rops->recv(ch->rstate, buf, cap, len, w);
	return dequeue(ch, buf, cap, len, NULL, 0, w);
}

DRAGON_API int dragon_channel_try_recv(dragon_channel_t *ch, void *buf, size_t cap, size_t *len)
{
	const dragon_wait_t now = { .timeout_us = 0 };

	return dragon_channel_recv(ch, buf, cap, len, &now);
}

DRAGON_API int dragon_channel_send_mem(dragon_channel_t *ch, dragon_mem_t *mem,
				       const dragon_wait_t *w)
{
	int rv;

	if (!ch || !mem || !mem->pool || !mem->ptr)
		return dg_err(DRAGON_EINVAL, "dragon_channel_send_mem: NULL channel or allocation");
	if (ch->rops) {
		rv = ch->rops->send(ch->rstate, mem->ptr, mem->size, w);
		if (rv == DRAGON_OK)
			dragon_pool_free(mem);
		return rv;
	}
	if (mem->pool != ch->pool)
		return dg_err(DRAGON_EINVAL, "zero-copy send needs an allocation of the channel's "
					     "pool (use dragon_channel_send to copy)");
	rv = enqueue(ch, NULL, mem->size, mem->offset, w);
	if (rv == DRAGON_OK)
		*mem = (dragon_mem_t){ 0 };
	return rv;
}

DRAGON_API int dragon_channel_recv_mem(dragon_channel_t *ch, dragon_mem_t *mem,
				       const dragon_wait_t *w)
{
	if (!ch || !mem)
		return dg_err(DRAGON_EINVAL, "dragon_channel_recv_mem: NULL channel or allocation");
	if (ch->rops)
		return dg_err(DRAGON_ENOTSUP, "zero-copy receive from a remote channel");
	return dequeue(ch, NULL, 0, NULL, mem, 0, w);
}

DRAGON_API int dragon_channel_peek(dragon_channel_t *ch, void *buf, size_t cap, size_t *len)
{
	if (!ch || (!buf && cap) || !len)
		return dg_err(DRAGON_EINVAL, "dragon_channel_peek: NULL channel, buffer or length");
	if (ch->rops)
		return dg_err(DRAGON_ENOTSUP, "peek at a remote channel");
	return dequeue(ch, buf, cap, len, NULL, 1, NULL);
}

static unsigned ready(const dragon_channel_t *ch, unsigned events)
{
	const struct ch_hdr *h = ch->h;
	uint64_t hd = atomic_load(&ch->h->head), t = atomic_load(&ch->h->tail);
	unsigned r = 0;

	if ((events & DRAGON_POLLIN) && t != hd)
		r |= DRAGON_POLLIN;
	if ((events & DRAGON_POLLOUT) && t - hd < h->capacity)
		r |= DRAGON_POLLOUT;
	return r;
}

DRAGON_API int dragon_channel_poll_many(dragon_channel_t *const *chs, const unsigned *events,
					unsigned *revents, size_t n, const dragon_wait_t *w)
{
	long timeout = w ? w->timeout_us : -1;
	struct dg_deadline dl;
	struct timespec left;

	if (!chs || !events || !revents || n == 0)
		return dg_err(DRAGON_EINVAL, "dragon_channel_poll_many: no channels");
	for (size_t i = 0; i < n; i++) {
		if (!chs[i])
			return dg_err(DRAGON_EINVAL, "dragon_channel_poll_many: channel %zu is NULL",
				      i);
		if (chs[i]->rops && n > 1)
			return dg_err(DRAGON_ENOTSUP, "polling a remote channel among others");
	}
	if (n == 1 && chs[0]->rops)
		return chs[0]->rops->poll(chs[0]->rstate, events[0], revents, w);
	dg_deadline_start(&dl, timeout);
	for (;;) {
		int any = 0;
		uint32_t seen;

		for (size_t i = 0; i < n; i++) {
			int rv = check_live(chs[i]);
			if (rv)
				return rv;
			revents[i] = ready(chs[i], events[i]);
			any |= revents[i] != 0;
		}
		if (any)
			return DRAGON_OK;
		if (!dg_deadline_left(&dl, &left))
			return timeout == 0 ? dg_err(DRAGON_EAGAIN, "no channel is ready")
					    : dg_err(DRAGON_ETIMEDOUT,
						     "no channel became ready within %ld us", timeout);
		/*
		 * A futex waits on one word: sleep on the first channel's, in short slices so
		 * that the others are looked at again (and spin first in adaptive mode).
		 */
		struct ch_hdr *h = chs[0]->h;
		int in = events[0] & DRAGON_POLLIN;
		struct dg_deadline slice;
		seen = atomic_load(in ? &h->recv_seq : &h->send_seq);
		if (ready(chs[0], events[0]))
			continue;
		dg_deadline_start(&slice, n > 1 ? 1000 : timeout);
		if (!dl.forever && (slice.forever || slice.at.tv_sec > dl.at.tv_sec ||
				    (slice.at.tv_sec == dl.at.tv_sec &&
				     slice.at.tv_nsec > dl.at.tv_nsec)))
			slice = dl;
		dg_wait_seq(in ? &h->recv_seq : &h->send_seq, seen,
			    in ? &h->recv_waiters : &h->send_waiters, mode_of(chs[0], w), &slice);
	}
}

DRAGON_API int dragon_channel_poll(dragon_channel_t *ch, unsigned events, unsigned *revents,
				   const dragon_wait_t *w)
{
	return dragon_channel_poll_many(&ch, &events, revents, 1, w);
}

DRAGON_API int dragon_channel_count(const dragon_channel_t *ch, uint32_t *count, uint32_t *capacity)
{
	if (!ch || !count || !capacity)
		return dg_err(DRAGON_EINVAL, "dragon_channel_count: NULL argument");
	if (ch->rops)
		return dg_err(DRAGON_ENOTSUP, "count of a remote channel");
	*count = (uint32_t)(atomic_load(&ch->h->tail) - atomic_load(&ch->h->head));
	*capacity = ch->h->capacity;
	return DRAGON_OK;
}
