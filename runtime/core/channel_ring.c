/* runtime/core/channel_ring.c: the channel's lock-free ring: claiming, publishing and taking slots, repairing what dead processes hold, waiting for a change. */
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
int dg_ch_repair(dragon_channel_t *ch, struct slot *s, uint64_t seen)
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
					if (dg_ch_repair(ch, s, seen))
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
		if (dg_ch_repair(ch, s, seen))
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

/*
 * DRAGON_WAIT_TAKEN: wait until a receiver takes the message we published at ticket t in slot s
 * (its word leaves FULL(t): TAKING, then the next lap). Receivers wake sleeping senders when they
 * release a slot. Past the deadline the message is withdrawn by turning it into a hole, which
 * receivers skip, unless a receiver got to it first; the caller's error path then frees or keeps
 * the allocation as for any failed send (the hole's receiver only releases the slot).
 */
static int wait_taken(dragon_channel_t *ch, struct slot *s, uint64_t t, const dragon_wait_t *w,
		      struct waitstate *ws, int *gone)
{
	uint64_t seen = mkw(t, ST_FULL, 0);
	int rv;

	for (;;) {
		if (atomic_load_explicit(&s->word, memory_order_acquire) != seen)
			return DRAGON_OK;
		rv = check_live(ch);
		if (rv) {
			/* the message went with the channel: its destroy frees the allocation */
			if (gone)
				*gone = 1;
			return rv;
		}
		if (timeout_of(w) == 0 ||
		    wait_change(ch, 0, s, seen, mode_of(ch, w), timeout_of(w), ws) ==
			    DRAGON_ETIMEDOUT) {
			uint64_t e = seen;
			if (!atomic_compare_exchange_strong(&s->word, &e, mkw(t, ST_HOLE, 0)))
				return DRAGON_OK; /* taken (or the channel went) just now */
			if (timeout_of(w) == 0)
				return dg_err(DRAGON_EAGAIN, "no receiver was waiting to take the "
							     "message at once (withdrawn)");
			return dg_err(DRAGON_ETIMEDOUT, "no receiver took the message within %ld us "
							"(withdrawn)",
				      timeout_of(w));
		}
	}
}

/*
 * Move a ring index (head or tail, a hint) from ticket t to t + 1 unless another process moved
 * it already; return where it is now, the ticket to look at next.
 */
static inline uint64_t help_past(_Atomic uint64_t *idx, uint64_t t)
{
	uint64_t e = t;

	if (atomic_compare_exchange_strong_explicit(idx, &e, t + 1, memory_order_relaxed,
						    memory_order_relaxed))
		return t + 1;
	return e;
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
		if (d >= 0) {
			/*
			 * Ticket t is claimed (d == 0), or the slot is already past it (d > 0): tail
			 * must be past t too. Help it on rather than just reload it: its claimant may
			 * have died before advancing it and nobody else helped while the slot sat at
			 * ticket t (found by the kill test: every later sender then reloaded the same
			 * stale tail forever).
			 */
			t = help_past(&h->tail, t);
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
 * DRAGON_WAIT_TAKEN may fail after the message was published: withdrawn, it is the caller's
 * again as after any failure; but if the channel was destroyed meanwhile, *gone (may be NULL for
 * inline messages) is set: the allocation went with the channel.
 */
int dg_ch_enqueue(dragon_channel_t *ch, const void *buf, size_t len, uint64_t mem_off,
		   int owned, const dragon_wait_t *w, int *pending, int *gone)
{
	struct ch_hdr *h = ch->h;
	uint32_t tag = dg_pool_self_tag(ch->pool);
	struct waitstate ws = { 0 };
	struct slot *s;
	uint64_t t, seen;
	int rv, taken;

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
	/* the header's first line is read on every send (check_live): written only on a change */
	if (atomic_load_explicit(&h->agent_fed, memory_order_relaxed) != dg_ch_agent_feeder)
		atomic_store_explicit(&h->agent_fed, dg_ch_agent_feeder, memory_order_relaxed);
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
	taken = w && (w->flags & DRAGON_WAIT_TAKEN);
	if (pending && !taken) {
		*pending = 1; /* the caller wakes receivers once for the batch */
		return DRAGON_OK;
	}
	if (pending)
		*pending = 0; /* a send that waits for its receiver wakes them now, for the batch too */
	notify_recv(h);
	return taken ? wait_taken(ch, s, t, w, &ws, gone) : DRAGON_OK;
}

/*
 * Find the oldest message: DRAGON_OK with its slot, ticket and word (FULL); DRAGON_EAGAIN with
 * the slot and word to wait on. Holes met on the way are taken and released (skipped).
 */
int dg_ch_find_recv(dragon_channel_t *ch, struct slot **sp, uint64_t *tp, uint64_t *wp)
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
		if ((d == 0 && st == ST_TAKING) || d > 0) {
			/* ticket t is being taken, or was (its slot moved on): help head past it, as
			 * senders help tail */
			t = help_past(&h->head, t);
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
int dg_ch_dequeue(dragon_channel_t *ch, void *buf, size_t cap, size_t *len,
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
		if (dg_ch_find_recv(ch, &s, &t, &wd) != DRAGON_OK) {
			if (timeout == 0) {
				rv = dg_err(DRAGON_EAGAIN, "channel is empty");
				goto out;
			}
			if (pending && *pending) {
				*pending = 0;
				notify_send(h);
			}
			if (wait_change(ch, 1, s, wd, recv_mode_of(ch, w), timeout, &ws) ==
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
