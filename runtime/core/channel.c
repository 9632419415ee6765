/* runtime/core/channel.c: ordered MPMC channels in a pool: inline small messages, large ones as allocations. */
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

/*
 * A channel is one pool allocation: a header and `capacity` slots, a bounded MPMC ring with a
 * sequence word per slot (after Vyukov). Message i (its ticket) lives in slot i % capacity. A
 * slot's word packs the ticket it is at (40 bits, compared modulo 2^40), a state and an owner
 * tag (the pool's record of the process, pid + start time, see pool.c):
 *
 *   EMPTY(t) --send claims--> CLAIMED(t, sender) --publish--> FULL(t) --receive claims-->
 *   TAKING(t, receiver) --release--> EMPTY(t + capacity)
 *
 * Claims are CAS on the slot word; head and tail are hints any thread advances past a claimed
 * ticket (so a process dying right after its claim never stalls the counter). Publishing and
 * releasing are plain release stores: a send or receive that neither waits nor finds a sleeper
 * takes no lock and makes no system call. FIFO holds because tickets are claimed in order: the
 * slot of ticket t+1 only becomes claimable once tail moved past t, which needs t claimed.
 *
 * Crash repair: a slot that stays CLAIMED or TAKING while someone waits on it past STUCK_NS
 * has its owner checked (dg_pool_tag_dead). A dead sender's CLAIMED slot becomes a HOLE that
 * receivers skip (its message was never sent: its send never returned); a dead receiver's
 * TAKING slot is released (its message is lost with it). Both by CAS from the exact word seen,
 * so two repairers, or a repairer and a late owner, cannot both act. Large payloads travel as
 * pool allocations whose owner tag says who frees them if a process dies mid-way (see
 * enqueue and take).
 *
 * Waiting: receivers sleep on recv_seq, senders on send_seq (futex words on their own cache
 * lines), counting themselves in *_waiters first; a waker pays for FUTEX_WAKE only when that
 * count is nonzero. Spinners poll the slot word itself, one cache line per message.
 */
#define CH_MAGIC 0x324c4e4e41484344ull    /* "DCHANNL2": layout 2, the sequenced ring */
#define CH_MAGIC_V1 0x4c4e4e4148434744ull /* "DGCHANNL": layout 1 (mutex), rejected */
#define SLOT_MEM 1u                       /* payload is a pool allocation, not inline */
#define DEFAULT_CAPACITY 64u
#define DEFAULT_BLOCK 256u
#define MAX_CAPACITY (1u << 24)
#define MAX_BLOCK (1u << 24)

/* How long ADAPTIVE spins before sleeping: above a futex wake-up's cost here (~20-45 us). */
#define ADAPTIVE_SPIN_NS 30000L
/* ADAPTIVE yields the CPU between spins after this long (a ping-pong answer takes ~1 us). */
#define YIELD_AFTER_NS 4000L
/*
 * SPIN yields too, but only after 50 us without an answer: never in a ping-pong between two
 * running processes, and on an oversubscribed machine the waiter's CPU goes to whoever can run
 * (Open MPI's busy loop does the same when oversubscribed).
 */
#define SPIN_YIELD_AFTER_NS 50000L
/* A slot claimed this long while we wait gets its owner checked, then every CHECK_NS. */
#define STUCK_NS 100000L
#define CHECK_NS 2000000L

enum { ST_EMPTY = 0, ST_CLAIMED = 1, ST_FULL = 2, ST_TAKING = 3, ST_HOLE = 4 };
#define ST_SHIFT DG_TAG_BITS
#define TK_SHIFT (DG_TAG_BITS + 3)
_Static_assert(TK_SHIFT == 24, "ticket field of 40 bits");

static inline uint64_t mkw(uint64_t t, unsigned st, uint32_t tag)
{
	return t << TK_SHIFT | (uint64_t)st << ST_SHIFT | tag;
}
static inline unsigned w_st(uint64_t w)
{
	return (unsigned)(w >> ST_SHIFT) & 7u;
}
static inline uint32_t w_tag(uint64_t w)
{
	return (uint32_t)w & ((1u << DG_TAG_BITS) - 1);
}
static inline uint64_t w_tk(uint64_t w)
{
	return w >> TK_SHIFT;
}
/* Signed distance from ticket t to the word's ticket, modulo 2^40 (the low fields never carry). */
static inline int64_t w_dist(uint64_t w, uint64_t t)
{
	return (int64_t)(w - (t << TK_SHIFT)) >> TK_SHIFT;
}

struct slot {
	_Atomic uint64_t word;
	/* Atomic (relaxed) because a receiver reads them before its claim, which it then validates
	 * with the CAS on the word, while a faster one may already have recycled the slot. */
	_Atomic uint64_t len;
	_Atomic uint64_t mem_off;  /* SLOT_MEM: the allocation's offset in the pool */
	_Atomic uint32_t flags;    /* SLOT_MEM only once mem_off is written; 0 when released */
	uint32_t pad;
	unsigned char data[];
};
_Static_assert(sizeof(struct slot) == 32, "slot header");

struct ch_hdr {
	uint64_t magic;
	uint64_t id;
	uint32_t capacity;
	uint32_t block_size;
	uint32_t slot_size;
	uint32_t wait_mode;
	_Atomic uint32_t closed;
	uint32_t pad;
	pthread_mutex_t lock; /* slow path only: destroy */
	/* What senders and receivers write each on their own cache line. */
	_Alignas(64) _Atomic uint64_t head; /* next receive ticket (may lag one behind a claim) */
	_Alignas(64) _Atomic uint64_t tail; /* next send ticket (same) */
	_Alignas(64) _Atomic uint32_t recv_seq; /* receivers sleep here */
	_Atomic uint32_t recv_waiters;
	_Alignas(64) _Atomic uint32_t send_seq; /* senders sleep here */
	_Atomic uint32_t send_waiters;
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

static inline struct slot *slot_at(const struct ch_hdr *h, uint64_t i)
{
	return (struct slot *)((unsigned char *)h->slots + (i % h->capacity) * h->slot_size);
}

static int check_live(const dragon_channel_t *ch)
{
	if (ch->h->magic != CH_MAGIC || ch->h->id != ch->id ||
	    atomic_load_explicit(&ch->h->closed, memory_order_acquire))
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

/*
 * Wake the sleepers of one side after a state change they may wait for. The fence orders our
 * slot store before the load of the waiter count (StoreLoad); it pairs with the sleeper's
 * seq_cst increment of that count followed by its seq_cst re-read of the slot (wait_change).
 * Either we see its count, or it sees our store: release/acquire alone would allow both to
 * miss (Dekker). With no sleeper this is the whole cost: a fence and a load of a line that
 * only sleepers write.
 */
static inline void notify(_Atomic uint32_t *seq, _Atomic uint32_t *waiters)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(waiters, memory_order_relaxed)) {
		atomic_fetch_add(seq, 1);
		syscall(SYS_futex, (uint32_t *)seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	}
}

static inline void notify_recv(struct ch_hdr *h)
{
	notify(&h->recv_seq, &h->recv_waiters);
}

static inline void notify_send(struct ch_hdr *h)
{
	notify(&h->send_seq, &h->send_waiters);
}

/* Release a slot for the next lap. The release store orders our reads of it before reuse. */
static inline void release_slot(struct ch_hdr *h, struct slot *s, uint64_t t)
{
	atomic_store_explicit(&s->flags, 0, memory_order_relaxed);
	atomic_store_explicit(&s->word, mkw(t + h->capacity, ST_EMPTY, 0), memory_order_release);
}

/* Free an allocation a dead process left in a slot, unless its owner tag says another frees it. */
static void free_orphan(dragon_channel_t *ch, uint64_t off)
{
	/* Tag 0: it was in the channel (published, or about to be); a dead owner's tag: the pool's
	 * dead-owner sweep frees it. Taking it by CAS makes sure only one of us frees it. */
	if (dg_pool_ptr(ch->pool, off, 1) &&
	    dg_pool_owner_cas(ch->pool, off, 0, dg_pool_self_tag(ch->pool))) {
		dragon_mem_t m = { ch->pool, off, 1, NULL };
		dragon_pool_free(&m);
	}
}

/*
 * The slot was seen as `seen` (CLAIMED or TAKING) for a while: if its owner is dead, finish
 * for it. Returns 1 if the slot changed (by us or anyone), 0 if its owner lives.
 */
static int repair(dragon_channel_t *ch, struct slot *s, uint64_t seen)
{
	struct ch_hdr *h = ch->h;
	uint64_t t = w_tk(seen), expect = seen;
	uint32_t fl;
	uint64_t off;

	if (atomic_load_explicit(&s->word, memory_order_acquire) != seen)
		return 1;
	if (!dg_pool_tag_dead(ch->pool, w_tag(seen)))
		return 0;
	/* The owner is dead, so what it wrote is final; read it before the CAS that makes it ours. */
	fl = atomic_load_explicit(&s->flags, memory_order_acquire);
	off = atomic_load_explicit(&s->mem_off, memory_order_relaxed);
	if (w_st(seen) == ST_CLAIMED) {
		/* A sender died before publishing: its send never returned. A hole for receivers. */
		if (!atomic_compare_exchange_strong(&s->word, &expect, mkw(t, ST_HOLE, 0)))
			return 1;
		if (fl & SLOT_MEM)
			free_orphan(ch, off);
		/*
		 * The flags stay as they are: the receiver that takes the hole clears them when it
		 * releases the slot. Clearing them here could hit the next lap's message, once
		 * the hole has been taken and the slot claimed again.
		 */
		notify_recv(h);
	} else if (w_st(seen) == ST_TAKING) {
		/* A receiver died between taking a message and releasing its slot: lost with it. */
		if (!atomic_compare_exchange_strong(&s->word, &expect,
						    mkw(t, ST_TAKING, dg_pool_self_tag(ch->pool))))
			return 1;
		if (fl & SLOT_MEM)
			free_orphan(ch, off);
		release_slot(h, s, t);
		notify_send(h);
	}
	return 1;
}

struct waitstate {
	int started;
	struct dg_deadline dl;
	long since_ns;     /* when this operation began to wait */
	long checked_ns;   /* last owner check */
};

static int past_deadline(const struct dg_deadline *dl)
{
	struct timespec left;

	return !dg_deadline_left(dl, &left);
}

/*
 * Wait until slot s no longer holds `seen`, the channel closes, or the deadline passes: spin
 * (SPIN; ADAPTIVE for ADAPTIVE_SPIN_NS), then sleep on the side's futex. A slot held by an owner
 * (CLAIMED, TAKING) is repaired here if its owner is dead, and sleeps are cut into CHECK_NS
 * slices while it is held. DRAGON_OK: look again; DRAGON_ETIMEDOUT.
 */
static int wait_change(dragon_channel_t *ch, int recv_side, struct slot *s, uint64_t seen,
		       dragon_wait_mode_t mode, long timeout, struct waitstate *ws)
{
	struct ch_hdr *h = ch->h;
	_Atomic uint32_t *seq = recv_side ? &h->recv_seq : &h->send_seq;
	_Atomic uint32_t *waiters = recv_side ? &h->recv_waiters : &h->send_waiters;
	unsigned st = w_st(seen);
	int held = (st == ST_CLAIMED || st == ST_TAKING) && w_tag(seen);
	struct timespec left;
	long now;

	if (!ws->started) {
		ws->started = 1;
		dg_deadline_start(&ws->dl, timeout);
		ws->since_ns = dg_now_ns();
		ws->checked_ns = 0;
	}
	if (mode != DRAGON_WAIT_IDLE) {
		for (unsigned i = 1;; i++) {
			if (atomic_load_explicit(&s->word, memory_order_acquire) != seen ||
			    atomic_load_explicit(&h->closed, memory_order_relaxed))
				return DRAGON_OK;
			dg_cpu_relax();
			if ((i & 127) == 0) {
				now = dg_now_ns();
				if (!ws->dl.forever && past_deadline(&ws->dl))
					return DRAGON_ETIMEDOUT;
				if (held && now - ws->since_ns > STUCK_NS &&
				    now - ws->checked_ns > CHECK_NS) {
					ws->checked_ns = now;
					if (repair(ch, s, seen))
						return DRAGON_OK;
				}
				if (mode == DRAGON_WAIT_ADAPTIVE && now - ws->since_ns > ADAPTIVE_SPIN_NS)
					break;
				/*
				 * Past a round trip's worth of spinning, the peer we wait for is
				 * likely not running (more processes than CPUs): offer it ours.
				 */
				if ((mode == DRAGON_WAIT_ADAPTIVE && now - ws->since_ns > YIELD_AFTER_NS) ||
				    now - ws->since_ns > SPIN_YIELD_AFTER_NS)
					sched_yield();
			}
		}
	}
	now = dg_now_ns();
	if (held && now - ws->since_ns > STUCK_NS && now - ws->checked_ns > CHECK_NS) {
		ws->checked_ns = now;
		if (repair(ch, s, seen))
			return DRAGON_OK;
	}
	if (!dg_deadline_left(&ws->dl, &left))
		return DRAGON_ETIMEDOUT;
	if (held && (ws->dl.forever || left.tv_sec > 0 || left.tv_nsec > CHECK_NS)) {
		left.tv_sec = 0;
		left.tv_nsec = CHECK_NS;
	}
	/* Count ourselves, then look again (both seq_cst: see notify), then sleep on seq. */
	atomic_fetch_add(waiters, 1);
	uint32_t sq = atomic_load(seq);
	if (atomic_load(&s->word) == seen && !atomic_load(&h->closed))
		syscall(SYS_futex, (uint32_t *)seq, FUTEX_WAIT, sq,
			ws->dl.forever && !held ? NULL : &left, NULL, 0);
	atomic_fetch_sub(waiters, 1);
	return DRAGON_OK;
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
	h = dg_pool_ptr(pool, d.offset, sizeof(struct ch_hdr));
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

/*
 * Claim the slot of the next send ticket (*sp, *tp) and return DRAGON_OK, or DRAGON_EAGAIN
 * with the slot and the word to wait on when the channel is full.
 */
static int claim_send(struct ch_hdr *h, uint32_t tag, struct slot **sp, uint64_t *tp,
		      uint64_t *seen)
{
	uint64_t t = atomic_load_explicit(&h->tail, memory_order_relaxed);

	for (;;) {
		struct slot *s = slot_at(h, t);
		/* acquire: the receiver of the previous lap finished reading before it released */
		uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
		int64_t d = w_dist(w, t);

		if (d == 0 && w_st(w) == ST_EMPTY) {
			if (atomic_compare_exchange_weak_explicit(&s->word, &w,
								  mkw(t, ST_CLAIMED, tag),
								  memory_order_acquire,
								  memory_order_relaxed)) {
				/* tail is a hint: advance it past our ticket unless someone did */
				uint64_t e = t;
				atomic_compare_exchange_strong_explicit(&h->tail, &e, t + 1,
									memory_order_relaxed,
									memory_order_relaxed);
				*sp = s;
				*tp = t;
				return DRAGON_OK;
			}
			continue;
		}
		if (d == 0) {
			/* ticket t is claimed: help tail past it, then try the next */
			uint64_t e = t;
			if (atomic_compare_exchange_strong_explicit(&h->tail, &e, t + 1,
								    memory_order_relaxed,
								    memory_order_relaxed))
				t = t + 1;
			else
				t = e;
			continue;
		}
		if (d > 0) {
			/*
			 * The slot is past ticket t, so t was claimed: tail must be past it too. Help it
			 * on rather than just reload it: its claimant may have died before advancing it
			 * and nobody else helped while the slot sat at ticket t (found by the kill test:
			 * every later sender then reloaded the same stale tail forever).
			 */
			uint64_t e = t;
			if (atomic_compare_exchange_strong_explicit(&h->tail, &e, t + 1,
								    memory_order_relaxed,
								    memory_order_relaxed))
				t = t + 1;
			else
				t = e;
			continue;
		}
		/* d < 0: the slot still holds the message a lap before ours: full, unless tail moved */
		uint64_t t2 = atomic_load_explicit(&h->tail, memory_order_relaxed);
		if (t2 != t) {
			t = t2;
			continue;
		}
		*sp = s;
		*tp = t;
		*seen = w;
		return DRAGON_EAGAIN;
	}
}

/*
 * Enqueue one message: inline bytes, or the allocation at mem_off (owned: an allocation this
 * library made for the message and tagged with our owner tag, untagged as it is published).
 * With pending set, receivers are not woken here: the caller does it once for a batch.
 */
static int enqueue(dragon_channel_t *ch, const void *buf, size_t len, uint64_t mem_off,
		   int owned, const dragon_wait_t *w, int *pending)
{
	struct ch_hdr *h = ch->h;
	uint32_t tag = dg_pool_self_tag(ch->pool);
	struct waitstate ws = { 0 };
	struct slot *s;
	uint64_t t, seen;
	int rv;

	for (;;) {
		rv = check_live(ch);
		if (rv)
			return rv;
		if (claim_send(h, tag, &s, &t, &seen) == DRAGON_OK)
			break;
		if (timeout_of(w) == 0)
			return dg_err(DRAGON_EAGAIN, "channel is full (%u messages)", h->capacity);
		if (pending && *pending) { /* wake receivers of the batch so far before we wait */
			*pending = 0;
			notify_recv(h);
		}
		if (wait_change(ch, 0, s, seen, mode_of(ch, w), timeout_of(w), &ws) ==
		    DRAGON_ETIMEDOUT)
			return dg_err(DRAGON_ETIMEDOUT, "channel stayed full for %ld us",
				      timeout_of(w));
	}
	atomic_store_explicit(&s->len, len, memory_order_relaxed);
	if (mem_off != UINT64_MAX) {
		atomic_store_explicit(&s->mem_off, mem_off, memory_order_relaxed);
		/* flags after mem_off: a repairer that sees SLOT_MEM may trust mem_off */
		atomic_store_explicit(&s->flags, SLOT_MEM, memory_order_release);
		if (owned)
			dg_pool_owner_set(ch->pool, mem_off, 0); /* the channel's now */
	} else if (len) {
		memcpy(s->data, buf, len);
	}
	/* The commit point of a send: release makes the payload visible with the state. */
	atomic_store_explicit(&s->word, mkw(t, ST_FULL, 0), memory_order_release);
	if (pending)
		*pending = 1;
	else
		notify_recv(h);
	return DRAGON_OK;
}

/*
 * Find the oldest message: DRAGON_OK with its slot, ticket and word (FULL); DRAGON_EAGAIN with
 * the slot and word to wait on. Holes met on the way are taken and released (skipped).
 */
static int find_recv(dragon_channel_t *ch, struct slot **sp, uint64_t *tp, uint64_t *wp)
{
	struct ch_hdr *h = ch->h;
	uint64_t t = atomic_load_explicit(&h->head, memory_order_relaxed);

	for (;;) {
		struct slot *s = slot_at(h, t);
		/* acquire: a FULL word makes the sender's payload visible */
		uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
		int64_t d = w_dist(w, t);
		unsigned st = w_st(w);

		if (d == 0 && st == ST_FULL) {
			*sp = s;
			*tp = t;
			*wp = w;
			return DRAGON_OK;
		}
		if (d == 0 && st == ST_HOLE) {
			uint64_t e = w;
			if (atomic_compare_exchange_strong(&s->word, &e,
							   mkw(t, ST_TAKING,
							       dg_pool_self_tag(ch->pool)))) {
				e = t;
				atomic_compare_exchange_strong(&h->head, &e, t + 1);
				release_slot(h, s, t);
				notify_send(h);
			}
			continue;
		}
		if (d == 0 && st == ST_TAKING) {
			uint64_t e = t;
			if (atomic_compare_exchange_strong_explicit(&h->head, &e, t + 1,
								    memory_order_relaxed,
								    memory_order_relaxed))
				t = t + 1;
			else
				t = e;
			continue;
		}
		if (d > 0) {
			/* ticket t was taken (its slot moved on): help head past it, as senders do */
			uint64_t e = t;
			if (atomic_compare_exchange_strong_explicit(&h->head, &e, t + 1,
								    memory_order_relaxed,
								    memory_order_relaxed))
				t = t + 1;
			else
				t = e;
			continue;
		}
		/* EMPTY or CLAIMED at our ticket, or the previous lap still TAKING: nothing yet */
		uint64_t t2 = atomic_load_explicit(&h->head, memory_order_relaxed);
		if (t2 != t) {
			t = t2;
			continue;
		}
		*sp = s;
		*tp = t;
		*wp = w;
		return DRAGON_EAGAIN;
	}
}

/*
 * Receive the oldest message. peek: copy it and leave it. want_mem: hand out an allocation
 * (inline payloads are copied into a new one). Otherwise copy into buf (capacity cap).
 */
static int dequeue(dragon_channel_t *ch, void *buf, size_t cap, size_t *len,
		   dragon_mem_t *want_mem, int peek, const dragon_wait_t *w, int *pending)
{
	struct ch_hdr *h = ch->h;
	long timeout = peek ? 0 : timeout_of(w);
	struct waitstate ws = { 0 };
	uint32_t tag = dg_pool_self_tag(ch->pool);
	dragon_mem_t fresh = { 0 };
	struct slot *s;
	uint64_t t, wd;
	size_t n;
	int rv;

	for (;;) {
		rv = check_live(ch);
		if (rv)
			goto out;
		if (find_recv(ch, &s, &t, &wd) != DRAGON_OK) {
			if (timeout == 0) {
				rv = dg_err(DRAGON_EAGAIN, "channel is empty");
				goto out;
			}
			if (pending && *pending) {
				*pending = 0;
				notify_send(h);
			}
			if (wait_change(ch, 1, s, wd, mode_of(ch, w), timeout, &ws) ==
			    DRAGON_ETIMEDOUT) {
				rv = dg_err(DRAGON_ETIMEDOUT, "no message arrived within %ld us",
					    timeout);
				goto out;
			}
			continue;
		}
		/* FULL: len, flags and payload stay as they are until someone takes it */
		n = atomic_load_explicit(&s->len, memory_order_relaxed);
		uint32_t fl = atomic_load_explicit(&s->flags, memory_order_relaxed);
		if (peek) {
			if (n > cap) {
				if (atomic_load(&s->word) != wd)
					continue;
				if (len)
					*len = n;
				return dg_err(DRAGON_ETOOBIG, "message of %zu bytes does not fit a "
							      "%zu-byte buffer",
					      n, cap);
			}
			if (fl & SLOT_MEM) {
				const void *src = dg_pool_ptr(
					ch->pool,
					atomic_load_explicit(&s->mem_off, memory_order_relaxed), n);
				if (src)
					memcpy(buf, src, n);
			} else if (n) {
				memcpy(buf, s->data, n);
			}
			/* like a seqlock: valid only if the message was still there after the copy */
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&s->word, memory_order_relaxed) != wd)
				continue;
			if (len)
				*len = n;
			return DRAGON_OK;
		}
		if (!want_mem && n > cap) {
			if (atomic_load(&s->word) != wd)
				continue;
			if (len)
				*len = n;
			return dg_err(DRAGON_ETOOBIG, "message of %zu bytes does not fit a %zu-byte "
						      "buffer",
				      n, cap);
		}
		if (want_mem && !(fl & SLOT_MEM) && fresh.size != (n ? n : 1)) {
			/* allocate before taking, so that a full pool leaves the message queued */
			if (fresh.pool)
				dragon_pool_free(&fresh);
			fresh = (dragon_mem_t){ 0 };
			rv = dg_pool_alloc_owned(ch->pool, n ? n : 1, 0, tag, &fresh);
			if (rv)
				goto out;
			continue; /* look again: the message may have gone meanwhile */
		}
		uint64_t e = wd;
		if (!atomic_compare_exchange_strong_explicit(&s->word, &e, mkw(t, ST_TAKING, tag),
							     memory_order_acquire,
							     memory_order_relaxed))
			continue;
		e = t;
		atomic_compare_exchange_strong_explicit(&h->head, &e, t + 1, memory_order_relaxed,
							memory_order_relaxed);
		if (len)
			*len = n;
		if (fl & SLOT_MEM) {
			uint64_t off = atomic_load_explicit(&s->mem_off, memory_order_relaxed);
			dragon_mem_t taken = { ch->pool, off, n, dg_pool_ptr(ch->pool, off, n) };
			if (taken.ptr && !want_mem) /* ours until copied out and freed */
				dg_pool_owner_set(ch->pool, off, tag);
			release_slot(h, s, t);
			if (pending)
				*pending = 1;
			else
				notify_send(h);
			if (!taken.ptr) {
				rv = dg_err(DRAGON_EPROTO, "dropped a message whose allocation lies "
							   "outside the pool");
				goto out;
			}
			if (want_mem) {
				*want_mem = taken;
			} else {
				/* Large payloads are copied after the slot is free again. */
				memcpy(buf, taken.ptr, n);
				dragon_pool_free(&taken);
			}
			rv = DRAGON_OK;
			goto out;
		}
		if (want_mem) {
			memcpy(fresh.ptr, s->data, n);
			fresh.size = n;
			*want_mem = fresh;
			fresh = (dragon_mem_t){ 0 };
		} else if (n) {
			memcpy(buf, s->data, n);
		}
		release_slot(h, s, t);
		if (want_mem)
			dg_pool_owner_set(ch->pool, want_mem->offset, 0); /* the caller's now */
		if (pending)
			*pending = 1;
		else
			notify_send(h);
		rv = DRAGON_OK;
		goto out;
	}
out:
	if (fresh.pool)
		dragon_pool_free(&fresh);
	return rv;
}

/* A message beyond the block size travels as an allocation tagged ours until it is published. */
static int send_large(dragon_channel_t *ch, const void *buf, size_t len, const dragon_wait_t *w,
		      int *pending)
{
	dragon_mem_t mem;
	int rv = dg_pool_alloc_owned(ch->pool, len, timeout_of(w), dg_pool_self_tag(ch->pool), &mem);

	if (rv)
		return rv;
	memcpy(mem.ptr, buf, len);
	rv = enqueue(ch, NULL, len, mem.offset, 1, w, pending);
	if (rv)
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
		return enqueue(ch, buf, len, UINT64_MAX, 0, w, NULL);
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
	return dequeue(ch, buf, cap, len, NULL, 0, w, NULL);
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
	rv = enqueue(ch, NULL, mem->size, mem->offset, 0, w, NULL);
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
	return dequeue(ch, NULL, 0, NULL, mem, 0, w, NULL);
}

DRAGON_API int dragon_channel_peek(dragon_channel_t *ch, void *buf, size_t cap, size_t *len)
{
	if (!ch || (!buf && cap) || !len)
		return dg_err(DRAGON_EINVAL, "dragon_channel_peek: NULL channel, buffer or length");
	if (ch->rops)
		return dg_err(DRAGON_ENOTSUP, "peek at a remote channel");
	return dequeue(ch, buf, cap, len, NULL, 1, NULL, NULL);
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
			rv = enqueue(ch, bufs[i], lens[i], UINT64_MAX, 0, w, &pending);
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
			rv = dequeue(ch, bufs[i], caps[i], &lens[i], NULL, 0, wi, &pending);
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
		repair(ch, s, w);
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
		dragon_wait_mode_t mode = mode_of(chs[0], w);
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
				repair(ch, s, w);
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

	if (find_recv(ch, &s, &t, &w) == DRAGON_OK)
		atomic_compare_exchange_strong(&s->word, &w,
					       mkw(t, ST_TAKING, dg_pool_self_tag(ch->pool)));
	_exit(0);
}
