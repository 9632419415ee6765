/* runtime/core/channel.c: ordered MPMC channels in a pool: create, attach, destroy; send and receive (inline, large, zero-copy, batched); poll; count. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/channel_internal.h"
#include "core/channel_remote.h"
#include "core/err.h"
#include "core/pool_internal.h"
#include "core/channel_ring.h"

static const struct dg_channel_remote_ops *remote_ops = &dg_ta_remote_ops;

uint32_t dg_ch_agent_feeder;

void dg_channel_fed_by_agent(void)
{
	dg_ch_agent_feeder = 1;
}

void dg_channel_set_remote_ops(const struct dg_channel_remote_ops *ops)
{
	remote_ops = ops;
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
	for (uint32_t i = 0; i < cap; i++) {
		struct slot *s = slot_at(h, i);
		atomic_init(&s->word, mkw(i, ST_EMPTY, 0));
		atomic_init(&s->flags, 0);
	}
	/* The magic last: an attacher never sees a half-initialized channel as valid. */
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
	/* Channels are pool allocations, aligned for their header: an offset that is not comes
	 * from a damaged or forged descriptor, and reading a header there is undefined. */
	h = d.offset % _Alignof(struct ch_hdr) ? NULL
					     : dg_pool_ptr(pool, d.offset, sizeof(struct ch_hdr));
	if (h && h->magic == CH_MAGIC_V1 && h->id == d.size) {
		dragon_pool_detach(pool);
		free(ch);
		return dg_err(DRAGON_EBADDESC, "channel %016llx has the old (layout 1, mutex) layout; "
					       "this library reads layout 2",
			      (unsigned long long)d.size);
	}
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
			/* Every later operation sees closed; free what published messages own. */
			for (uint64_t i = atomic_load(&h->head), n = 0;
			     i < atomic_load(&h->tail) + 1 && n < h->capacity; i++, n++) {
				struct slot *s = slot_at(h, i);
				uint64_t w = atomic_load(&s->word);
				if (w_dist(w, i) == 0 && w_st(w) == ST_FULL &&
				    (atomic_load(&s->flags) & SLOT_MEM)) {
					mem = (dragon_mem_t){ ch->pool, atomic_load(&s->mem_off),
							      atomic_load(&s->len), NULL };
					dragon_pool_free(&mem);
				}
			}
			atomic_store(&h->head, atomic_load(&h->tail));
			pthread_mutex_unlock(&h->lock);
		}
		/* Unconditional bumps: a sleeper either sees closed or the changed futex word. */
		dg_wake_seq(&h->recv_seq, &h->recv_waiters);
		dg_wake_seq(&h->send_seq, &h->send_waiters);
		h->magic = 0;
		mem = (dragon_mem_t){ ch->pool, ch->offset, 1, h };
		dragon_pool_free(&mem);
	}
	return dragon_channel_detach(ch);
}

/* A message beyond the block size travels as an allocation tagged ours until it is published. */
static int send_large(dragon_channel_t *ch, const void *buf, size_t len, const dragon_wait_t *w,
		      int *pending)
{
	dragon_mem_t mem;
	int gone = 0;
	int rv = dg_pool_alloc_owned(ch->pool, len, timeout_of(w), dg_pool_self_tag(ch->pool), &mem);

	if (rv)
		return rv;
	memcpy(mem.ptr, buf, len);
	rv = dg_ch_enqueue(ch, NULL, len, mem.offset, 1, w, pending, &gone);
	if (rv && !gone)
		dragon_pool_free(&mem);
	return rv;
}

DRAGON_API int dragon_channel_send(dragon_channel_t *ch, const void *buf, size_t len,
				   const dragon_wait_t *w)
{
	if (!ch || (!buf && len))
		return dg_err(DRAGON_EINVAL, "dragon_channel_send: NULL channel or buffer");
	if (ch->rops)
		return ch->rops->send(ch->rstate, buf, len, w);
	if (len <= ch->h->block_size)
		return dg_ch_enqueue(ch, buf, len, UINT64_MAX, 0, w, NULL, NULL);
	return send_large(ch, buf, len, w, NULL);
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
	return dg_ch_dequeue(ch, buf, cap, len, NULL, 0, w, NULL);
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
	int gone = 0;
	rv = dg_ch_enqueue(ch, NULL, mem->size, mem->offset, 0, w, NULL, &gone);
	if (rv == DRAGON_OK || gone)
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
	return dg_ch_dequeue(ch, NULL, 0, NULL, mem, 0, w, NULL);
}

DRAGON_API int dragon_channel_peek(dragon_channel_t *ch, void *buf, size_t cap, size_t *len)
{
	if (!ch || (!buf && cap) || !len)
		return dg_err(DRAGON_EINVAL, "dragon_channel_peek: NULL channel, buffer or length");
	if (ch->rops)
		return dg_err(DRAGON_ENOTSUP, "peek at a remote channel");
	return dg_ch_dequeue(ch, buf, cap, len, NULL, 1, NULL, NULL);
}

DRAGON_API int dragon_channel_send_many(dragon_channel_t *ch, const void *const *bufs,
					const size_t *lens, size_t n, size_t *sent,
					const dragon_wait_t *w)
{
	int pending = 0, rv = DRAGON_OK;
	size_t i;

	if (sent)
		*sent = 0;
	if (!ch || (n && (!bufs || !lens)))
		return dg_err(DRAGON_EINVAL, "dragon_channel_send_many: NULL channel or arrays");
	for (i = 0; i < n; i++)
		if (!bufs[i] && lens[i])
			return dg_err(DRAGON_EINVAL, "dragon_channel_send_many: buffer %zu is NULL", i);
	for (i = 0; i < n && rv == DRAGON_OK; i++) {
		if (ch->rops)
			rv = ch->rops->send(ch->rstate, bufs[i], lens[i], w);
		else if (lens[i] <= ch->h->block_size)
			rv = dg_ch_enqueue(ch, bufs[i], lens[i], UINT64_MAX, 0, w, &pending, NULL);
		else
			rv = send_large(ch, bufs[i], lens[i], w, &pending);
		if (rv == DRAGON_OK && sent)
			*sent = i + 1;
	}
	/* One wake-up check for the whole batch. */
	if (pending)
		notify_recv(ch->h);
	return rv;
}

DRAGON_API int dragon_channel_recv_many(dragon_channel_t *ch, void *const *bufs,
					const size_t *caps, size_t *lens, size_t n,
					size_t *received, const dragon_wait_t *w)
{
	const dragon_wait_t now = { .timeout_us = 0 };
	int pending = 0, rv = DRAGON_OK;
	size_t i;

	if (received)
		*received = 0;
	if (!ch || !n || !bufs || !caps || !lens || !received)
		return dg_err(DRAGON_EINVAL, "dragon_channel_recv_many: NULL channel, arrays or "
					     "count, or n == 0");
	for (i = 0; i < n; i++) {
		if (!bufs[i] && caps[i])
			return dg_err(DRAGON_EINVAL, "dragon_channel_recv_many: buffer %zu is NULL", i);
	}
	/* The first waits as w says; the rest take only what is there already. */
	for (i = 0; i < n; i++) {
		const dragon_wait_t *wi = i ? &now : w;
		if (ch->rops)
			rv = ch->rops->recv(ch->rstate, bufs[i], caps[i], &lens[i], wi);
		else
			rv = dg_ch_dequeue(ch, bufs[i], caps[i], &lens[i], NULL, 0, wi, &pending);
		if (rv)
			break;
		*received = i + 1;
	}
	if (pending)
		notify_send(ch->h);
	if (i > 0 && (rv == DRAGON_EAGAIN || rv == DRAGON_ETOOBIG || rv == DRAGON_ETIMEDOUT))
		return DRAGON_OK; /* what is left stays queued for the next call */
	return rv;
}

/* What holds now: a published message (or a hole, skipped by the receive), a free slot. */
static unsigned ready(const dragon_channel_t *ch, unsigned events)
{
	const struct ch_hdr *h = ch->h;
	unsigned r = 0;

	if (events & DRAGON_POLLIN) {
		uint64_t t = atomic_load(&h->head);
		for (int k = 0; k < 3; k++, t++) { /* head may lag one behind a taken ticket */
			uint64_t w = atomic_load(&slot_at(h, t)->word);
			if (w_dist(w, t) > 0)
				continue; /* taken already */
			if (w_dist(w, t) != 0)
				break;
			if (w_st(w) == ST_FULL || w_st(w) == ST_HOLE) {
				r |= DRAGON_POLLIN;
				break;
			}
			if (w_st(w) != ST_TAKING)
				break;
		}
	}
	if (events & DRAGON_POLLOUT) {
		uint64_t t = atomic_load(&h->tail);
		for (int k = 0; k < 3; k++, t++) { /* tail may lag one behind a claimed ticket */
			uint64_t w = atomic_load(&slot_at(h, t)->word);
			if (w_dist(w, t) > 0)
				continue; /* claimed already */
			if (w_dist(w, t) != 0)
				break;
			if (w_st(w) == ST_EMPTY) {
				r |= DRAGON_POLLOUT;
				break;
			}
		}
	}
	return r;
}

/* A poller waiting for input on a channel whose oldest ticket is held by a dead sender. */
static void poll_repair(dragon_channel_t *ch)
{
	struct ch_hdr *h = ch->h;
	uint64_t t = atomic_load(&h->head);
	struct slot *s = slot_at(h, t);
	uint64_t w = atomic_load(&s->word);

	if (w_dist(w, t) == 0 && (w_st(w) == ST_CLAIMED || w_st(w) == ST_TAKING) && w_tag(w))
		dg_ch_repair(ch, s, w);
}

DRAGON_API int dragon_channel_poll_many(dragon_channel_t *const *chs, const unsigned *events,
					unsigned *revents, size_t n, const dragon_wait_t *w)
{
	long timeout = w ? w->timeout_us : -1;
	struct dg_deadline dl;
	struct timespec left;
	long since = 0, checked = 0;

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
		long now = dg_now_ns();
		if (!since)
			since = now;
		if (now - since > STUCK_NS && now - checked > CHECK_NS) {
			checked = now;
			for (size_t i = 0; i < n; i++)
				if (events[i] & DRAGON_POLLIN)
					poll_repair(chs[i]);
		}
		dragon_wait_mode_t mode = events[0] & DRAGON_POLLIN ? recv_mode_of(chs[0], w)
								    : mode_of(chs[0], w);
		if (mode == DRAGON_WAIT_SPIN ||
		    (mode == DRAGON_WAIT_ADAPTIVE && now - since < ADAPTIVE_SPIN_NS)) {
			for (int k = 0; k < 64; k++)
				dg_cpu_relax();
			continue;
		}
		/*
		 * A futex waits on one word: sleep on the first channel's, in slices of at most
		 * CHECK_NS so that the others are looked at again (and held slots checked). Count
		 * ourselves before the last look, as wait_change does.
		 */
		struct ch_hdr *h = chs[0]->h;
		int in = events[0] & DRAGON_POLLIN;
		_Atomic uint32_t *seq = in ? &h->recv_seq : &h->send_seq;
		_Atomic uint32_t *waiters = in ? &h->recv_waiters : &h->send_waiters;
		int held = 0;
		for (size_t i = 0; i < n && !held; i++) {
			if (!(events[i] & DRAGON_POLLIN))
				continue;
			uint64_t t = atomic_load(&chs[i]->h->head);
			uint64_t hw = atomic_load(&slot_at(chs[i]->h, t)->word);
			held = w_dist(hw, t) == 0 && w_tag(hw) &&
			       (w_st(hw) == ST_CLAIMED || w_st(hw) == ST_TAKING);
		}
		/* one channel whose head nobody holds: sleep until woken (or the deadline) */
		int sliced = n > 1 || held;
		if (sliced && (left.tv_sec > 0 || left.tv_nsec > CHECK_NS)) {
			left.tv_sec = 0;
			left.tv_nsec = CHECK_NS;
		}
		atomic_fetch_add(waiters, 1);
		uint32_t sq = atomic_load(seq);
		int now_ready = 0;
		for (size_t i = 0; i < n && !now_ready; i++)
			now_ready = ready(chs[i], events[i]) != 0 ||
				    atomic_load(&chs[i]->h->closed);
		if (!now_ready)
			syscall(SYS_futex, (uint32_t *)seq, FUTEX_WAIT, sq,
				dl.forever && !sliced ? NULL : &left, NULL, 0);
		atomic_fetch_sub(waiters, 1);
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
	uint64_t hd = atomic_load(&ch->h->head), t = atomic_load(&ch->h->tail);
	/* both are hints that may lag one claim: clamp to what the ring can hold */
	*count = t > hd ? (uint32_t)(t - hd < ch->h->capacity ? t - hd : ch->h->capacity) : 0;
	*capacity = ch->h->capacity;
	return DRAGON_OK;
}

int dg_channel_audit(dragon_channel_t *ch, struct dg_channel_audit *a)
{
	memset(a, 0, sizeof(*a));
	if (!ch || ch->rops)
		return dg_err(DRAGON_EINVAL, "dg_channel_audit: no local channel");
	for (uint32_t i = 0; i < ch->h->capacity; i++) {
		struct slot *s = slot_at(ch->h, i);
		uint64_t w = atomic_load(&s->word);

		switch (w_st(w)) {
		case ST_EMPTY:
			a->empty++;
			break;
		case ST_FULL:
			a->full++;
			break;
		case ST_HOLE:
			a->holes++;
			break;
		default:
			if (w_tag(w) && dg_pool_tag_dead(ch->pool, w_tag(w))) {
				dg_ch_repair(ch, s, w);
				a->repaired++;
			} else {
				a->held_live++;
			}
		}
	}
	return DRAGON_OK;
}

void dg_channel_test_die_claiming(dragon_channel_t *ch)
{
	/* Claim as claim_send does, but die before advancing tail: the harshest moment. */
	uint64_t t = atomic_load(&ch->h->tail);
	struct slot *s = slot_at(ch->h, t);
	uint64_t w = mkw(t, ST_EMPTY, 0);

	if (atomic_compare_exchange_strong(&s->word, &w,
					   mkw(t, ST_CLAIMED, dg_pool_self_tag(ch->pool)))) {
		atomic_store(&s->len, 5);
		memcpy(s->data, "torn", 5);
	}
	_exit(0);
}

void dg_channel_test_die_taking(dragon_channel_t *ch)
{
	struct slot *s;
	uint64_t t, w;

	if (dg_ch_find_recv(ch, &s, &t, &w) == DRAGON_OK)
		atomic_compare_exchange_strong(&s->word, &w,
					       mkw(t, ST_TAKING, dg_pool_self_tag(ch->pool)));
	_exit(0);
}
