/* runtime/core/channel_ring.h: a channel's layout in shared memory and the ring's operations that channel.c and channel_ring.c share. */
#ifndef DRAGON_RUNTIME_CHANNEL_RING_H
#define DRAGON_RUNTIME_CHANNEL_RING_H

#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <dragon/channel.h>

#include "core/channel_remote.h"
#include "core/err.h"
#include "core/pool_internal.h"
#include "core/shm.h"

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
	/* 1 while the last message came through a transport agent: see dg_channel_fed_by_agent */
	_Atomic uint32_t agent_fed;
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

static inline struct slot *slot_at(const struct ch_hdr *h, uint64_t i)
{
	return (struct slot *)((unsigned char *)h->slots + (i % h->capacity) * h->slot_size);
}

static inline int check_live(const dragon_channel_t *ch)
{
	if (ch->h->magic != CH_MAGIC || ch->h->id != ch->id ||
	    atomic_load_explicit(&ch->h->closed, memory_order_acquire))
		return dg_err(DRAGON_ECLOSED, "channel %016llx was destroyed",
			      (unsigned long long)ch->id);
	return DRAGON_OK;
}

static inline dragon_wait_mode_t mode_of(const dragon_channel_t *ch, const dragon_wait_t *w)
{
	if (w && w->mode != DRAGON_WAIT_DEFAULT)
		return w->mode;
	return ch->mode;
}

/* Set in a transport agent (dg_channel_fed_by_agent): its sends mark the channel agent-fed. */
extern uint32_t dg_ch_agent_feeder;

/*
 * The mode a receiver waits in: ADAPTIVE does not spin on a channel whose last message came
 * through a transport agent (the next one is likely to come the same way, tens of us later).
 */
static inline dragon_wait_mode_t recv_mode_of(const dragon_channel_t *ch, const dragon_wait_t *w)
{
	dragon_wait_mode_t m = mode_of(ch, w);

	if (m == DRAGON_WAIT_ADAPTIVE && atomic_load_explicit(&ch->h->agent_fed, memory_order_relaxed))
		return DRAGON_WAIT_IDLE;
	return m;
}

static inline long timeout_of(const dragon_wait_t *w)
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

struct waitstate {
	int started;
	struct dg_deadline dl;
	long since_ns;     /* when this operation began to wait */
	long checked_ns;   /* last owner check */
};


/* channel_ring.c: claiming, publishing and taking slots, crash repair, waiting. */
int dg_ch_dequeue(dragon_channel_t *ch, void *buf, size_t cap, size_t *len, dragon_mem_t *want_mem, int peek, const dragon_wait_t *w, int *pending);
int dg_ch_enqueue(dragon_channel_t *ch, const void *buf, size_t len, uint64_t mem_off, int owned, const dragon_wait_t *w, int *pending, int *gone);
int dg_ch_find_recv(dragon_channel_t *ch, struct slot **sp, uint64_t *tp, uint64_t *wp);
int dg_ch_repair(dragon_channel_t *ch, struct slot *s, uint64_t seen);

#endif
