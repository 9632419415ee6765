/* runtime/core/pool_alloc.c: the pool's crash-tolerant block allocator: bitmap and size map under a robust lock, repair, process records, owner tags and the dead-owner sweep. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdatomic.h>

#include "core/err.h"
#include "core/pool_internal.h"
#include "core/pool_impl.h"

static int test_bit(const uint64_t *bm, uint64_t i)
{
	return (bm[i >> 6] >> (i & 63)) & 1;
}

void dg_pool_set_range(uint64_t *bm, uint64_t i, uint64_t n, int on)
{
	while (n) {
		uint64_t w = i >> 6, b = i & 63, k = 64 - b < n ? 64 - b : n;
		uint64_t mask = (k == 64 ? ~0ull : ((1ull << k) - 1)) << b;

		if (on)
			bm[w] |= mask;
		else
			bm[w] &= ~mask;
		i += k;
		n -= k;
	}
}

/* First index >= i whose bit equals `bit`, or end. */
uint64_t dg_pool_next_bit(const uint64_t *bm, uint64_t i, uint64_t end, int bit)
{
	while (i < end) {
		uint64_t w = bm[i >> 6];

		if (!bit)
			w = ~w;
		w &= ~0ull << (i & 63);
		if (w) {
			uint64_t j = (i & ~63ull) + (uint64_t)__builtin_ctzll(w);
			return j < end ? j : end;
		}
		i = (i & ~63ull) + 64;
	}
	return end;
}

/* Find n free blocks starting at a multiple of a, in [from, end). */
int dg_pool_find_run(const uint64_t *bm, uint64_t from, uint64_t end, uint64_t n, uint64_t a,
		    uint64_t *at)
{
	uint64_t i = from;

	while (i < end) {
		uint64_t z = dg_pool_next_bit(bm, i, end, 0), o;

		z = (z + a - 1) / a * a;
		if (z >= end || end - z < n)
			return 0;
		if (z > 0 && z < end && test_bit(bm, z)) {
			i = z + 1;
			continue;
		}
		o = dg_pool_next_bit(bm, z, z + n, 1);
		if (o >= z + n) {
			*at = z;
			return 1;
		}
		i = o + 1;
	}
	return 0;
}

/* Rebuild what is derived from the size map after a process died holding the lock. */
static void repair(dragon_pool_t *p)
{
	struct pool_hdr *h = p->h;
	uint64_t used = 0, allocs = 0;

	uint64_t nb = h->nblocks;

	/*
	 * The bitmap is a superset of the truth (an allocation sets its bits before its size entry,
	 * a free clears them after; fences keep the compiler to that order), so only its set bits
	 * need a look: O(bitmap words + allocations), not O(blocks). A set bit that starts no
	 * allocation is a torn one's, cleared.
	 */
	for (uint64_t i = dg_pool_next_bit(p->bitmap, 0, nb, 1); i < nb; i = dg_pool_next_bit(p->bitmap, i, nb, 1)) {
		uint32_t n = p->sizes[i];

		if (n && n <= nb - i) {
			dg_pool_set_range(p->bitmap, i, n, 1);
			used += n;
			allocs++;
			i += n;
			continue;
		}
		p->sizes[i] = 0; /* a torn write: that allocation never completed */
		dg_pool_set_range(p->bitmap, i, 1, 0);
		i++;
	}
	h->used_blocks = used;
	h->nallocs = allocs;
	h->hint = 0;
}

int dg_pool_lock(dragon_pool_t *p)
{
	int recovered, rv = dg_robust_lock(&p->h->lock, &recovered);

	if (rv == DRAGON_OK && recovered)
		repair(p);
	return rv;
}

void dg_pool_test_die_holding_lock(dragon_pool_t *p, uint64_t n)
{
	dg_pool_lock(p);
	dg_pool_set_range(p->bitmap, 0, n < p->h->nblocks ? n : p->h->nblocks, 1);
	p->h->used_blocks += n;
	_exit(0);
}

void dg_pool_free_locked(dragon_pool_t *p, uint64_t blk, uint32_t n)
{
	struct pool_hdr *h = p->h;

	p->sizes[blk] = 0; /* the commit point of a free */
	atomic_thread_fence(memory_order_release); /* ... before the bits go (see repair) */
	atomic_store_explicit(&p->owners[blk], 0, memory_order_relaxed);
	dg_pool_set_range(p->bitmap, blk, n, 0);
	h->used_blocks -= n;
	h->nallocs--;
	if (blk < h->hint)
		h->hint = blk;
}


/* --- process records and owner tags (see the top of this file) ---------------------------- */

/* Free every allocation still tagged with tag (its process is dead); pool lock held. */
static uint64_t sweep_locked(dragon_pool_t *p, uint32_t tag)
{
	uint64_t freed = 0;

	uint64_t nb = p->h->nblocks;

	/* allocations start at set bits of the bitmap: skip the free space a word at a time */
	for (uint64_t i = dg_pool_next_bit(p->bitmap, 0, nb, 1); i < nb; i = dg_pool_next_bit(p->bitmap, i, nb, 1)) {
		uint32_t n = p->sizes[i];

		if (!n) {
			i++;
			continue;
		}
		if ((atomic_load_explicit(&p->owners[i], memory_order_relaxed) & ~CACHED) == tag) {
			dg_pool_free_locked(p, i, n);
			freed++;
		}
		i += n;
	}
	return freed;
}

static uint32_t rec_tag(const dragon_pool_t *p, uint32_t idx)
{
	return (atomic_load(&p->recs[idx].gen) & GEN_MASK) << REC_BITS | idx;
}

/* Record idx is taken by a process that is gone; pool lock held. */
static int rec_dead_locked(dragon_pool_t *p, uint32_t idx)
{
	struct pool_rec *r = &p->recs[idx];
	uint32_t pid = atomic_load(&r->pid);

	return pid && !dg_proc_alive((int)pid, atomic_load(&r->start));
}

/* Give back a dead process's record and reclaim what it held; pool lock held. */
static uint64_t rec_release_locked(dragon_pool_t *p, uint32_t idx)
{
	struct pool_rec *r = &p->recs[idx];
	uint64_t freed = sweep_locked(p, rec_tag(p, idx));

	atomic_store(&r->pid, 0);
	/* A new generation: claims stamped with the old tag now read as a dead owner's. */
	atomic_store(&r->gen, (atomic_load(&r->gen) + 1) & GEN_MASK);
	return freed;
}

static __attribute__((noinline)) uint32_t register_self(dragon_pool_t *p, int me)
{
	uint64_t start, s;
	uint32_t idx = 0, tag = 0;

	if (dg_proc_start(me, &start) != DRAGON_OK || dg_pool_lock(p) != DRAGON_OK)
		return 0;
	s = atomic_load(&p->self);
	if ((uint32_t)s && (int)(s >> 32) == me) { /* another thread of ours was first */
		pthread_mutex_unlock(&p->h->lock);
		return (uint32_t)s;
	}
	for (uint32_t i = 1; i < NREC && !idx; i++)
		if (!atomic_load(&p->recs[i].pid))
			idx = i;
	for (uint32_t i = 1; i < NREC && !idx; i++)
		if (rec_dead_locked(p, i)) {
			rec_release_locked(p, i);
			idx = i;
		}
	if (idx) {
		struct pool_rec *r = &p->recs[idx];
		atomic_store(&r->gen, (atomic_load(&r->gen) + 1) & GEN_MASK);
		atomic_store(&r->start, start);
		atomic_store(&r->pid, (uint32_t)me); /* last: the record is taken */
		tag = rec_tag(p, idx);
	}
	pthread_mutex_unlock(&p->h->lock);
	/* tag 0 (every record taken by a live process): this process's claims are never repaired */
	atomic_store(&p->self, (uint64_t)(uint32_t)me << 32 | tag);
	return tag;
}

uint32_t dg_pool_self_tag(dragon_pool_t *p)
{
	uint64_t s = atomic_load_explicit(&p->self, memory_order_relaxed);
	int me = dg_self_pid();

	if ((int)(s >> 32) == me && (uint32_t)s)
		return (uint32_t)s;
	return register_self(p, me);
}

int dg_pool_tag_dead(const dragon_pool_t *p, uint32_t tag)
{
	uint32_t idx = tag & (NREC - 1), g1, g2, pid;
	uint64_t start;

	if (!idx)
		return 0; /* unknown owner: never declared dead */
	struct pool_rec *r = &p->recs[idx];
	/* Read the record like a seqlock: a generation change means the owner was released. */
	g1 = atomic_load(&r->gen);
	pid = atomic_load(&r->pid);
	start = atomic_load(&r->start);
	g2 = atomic_load(&r->gen);
	if (g1 != g2 || (g1 & GEN_MASK) != tag >> REC_BITS || !pid)
		return 1;
	return !dg_proc_alive((int)pid, start);
}

int dg_pool_owner_cas(dragon_pool_t *p, uint64_t offset, uint32_t expect, uint32_t tag)
{
	return atomic_compare_exchange_strong(&p->owners[offset / BLOCK], &expect, tag);
}

void dg_pool_owner_set(dragon_pool_t *p, uint64_t offset, uint32_t tag)
{
	atomic_store_explicit(&p->owners[offset / BLOCK], tag, memory_order_release);
}

int dg_pool_alloc_owned(dragon_pool_t *pool, size_t size, long timeout_us, uint32_t tag,
			dragon_mem_t *mem)
{
	return dg_pool_alloc_common(pool, size, 0, timeout_us, tag, mem);
}

uint64_t dg_pool_reclaim_dead(dragon_pool_t *p)
{
	uint32_t idx[NREC], gen[NREC], pid[NREC], nd = 0;
	uint64_t freed = 0;

	/*
	 * The /proc checks happen outside the lock (a thousand records take ~10 ms, far more on a
	 * loaded machine, and every allocator would wait); under it, only records that are still
	 * the dead ones we saw (same generation and pid) are released.
	 */
	for (uint32_t i = 1; i < NREC; i++) {
		struct pool_rec *r = &p->recs[i];
		uint32_t g = atomic_load(&r->gen), q = atomic_load(&r->pid);
		if (q && !dg_proc_alive((int)q, atomic_load(&r->start))) {
			idx[nd] = i;
			gen[nd] = g;
			pid[nd++] = q;
		}
	}
	if (!nd || dg_pool_lock(p) != DRAGON_OK)
		return 0;
	for (uint32_t k = 0; k < nd; k++) {
		struct pool_rec *r = &p->recs[idx[k]];
		if (atomic_load(&r->gen) == gen[k] && atomic_load(&r->pid) == pid[k])
			freed += rec_release_locked(p, idx[k]);
	}
	pthread_mutex_unlock(&p->h->lock);
	if (freed)
		dg_wake_seq(&p->h->free_seq, &p->h->free_waiters);
	return freed;
}

static int try_alloc(dragon_pool_t *p, uint64_t n, uint64_t a, uint32_t tag, uint64_t *blk)
{
	struct pool_hdr *h = p->h;
	uint64_t at;
	int rv;

	rv = dg_pool_lock(p);
	if (rv)
		return rv;
	if (!dg_pool_find_run(p->bitmap, h->hint, h->nblocks, n, a, &at) &&
	    !dg_pool_find_run(p->bitmap, 0, h->nblocks, n, a, &at)) {
		pthread_mutex_unlock(&h->lock);
		return DRAGON_ENOSPACE;
	}
	/* Bitmap and owner first, size map last: the size entry is the commit point (see repair). */
	dg_pool_set_range(p->bitmap, at, n, 1);
	atomic_store_explicit(&p->owners[at], tag, memory_order_relaxed);
	atomic_thread_fence(memory_order_release); /* bits before the commit (see repair) */
	p->sizes[at] = (uint32_t)n;
	h->used_blocks += n;
	h->nallocs++;
	h->hint = at + n < h->nblocks ? at + n : 0;
	pthread_mutex_unlock(&h->lock);
	*blk = at;
	return DRAGON_OK;
}

static int check_alloc_args(dragon_pool_t *pool, size_t size, size_t *align, dragon_mem_t *mem)
{
	if (!pool || !mem)
		return dg_err(DRAGON_EINVAL, "pool allocation: NULL pool or mem");
	if (*align == 0)
		*align = BLOCK;
	if (*align & (*align - 1) || *align > MAX_ALIGN)
		return dg_err(DRAGON_EINVAL, "alignment %zu is not a power of two up to %u", *align,
			      MAX_ALIGN);
	if (size == 0)
		return dg_err(DRAGON_EINVAL, "pool allocation of 0 bytes");
	if (size > pool->h->nblocks * BLOCK)
		return dg_err(DRAGON_ETOOBIG, "allocation of %zu bytes is larger than the pool "
					      "(%llu bytes)",
			      size, (unsigned long long)(pool->h->nblocks * BLOCK));
	if (atomic_load(&pool->h->destroyed))
		return dg_err(DRAGON_ESTALE, "pool %016llx was destroyed",
			      (unsigned long long)pool->id);
	return DRAGON_OK;
}


/* At exit, cached runs go back to the shared heap (a killed process's go by the sweep). */
int dg_pool_alloc_common(dragon_pool_t *pool, size_t size, size_t align, long timeout_us,
			uint32_t tag, dragon_mem_t *mem)
{
	struct pool_hdr *h;
	struct dg_deadline dl;
	uint64_t blk, n, a;
	int rv = check_alloc_args(pool, size, &align, mem);

	if (rv)
		return rv;
	h = pool->h;
	n = (size + BLOCK - 1) / BLOCK;
	a = align > BLOCK ? align / BLOCK : 1;
	if (a == 1 && dg_pool_cache_get(pool, n, tag, &blk) == DRAGON_OK)
		goto done;
	dg_deadline_start(&dl, timeout_us);
	for (int flushed = 0;;) {
		uint32_t seen = atomic_load(&h->free_seq);

		rv = try_alloc(pool, n, a, tag, &blk);
		if (rv == DRAGON_OK)
			break;
		if (rv != DRAGON_ENOSPACE)
			return rv;
		if (flushed == 0) { /* what our own cache holds first ... */
			flushed = 1;
			dg_pool_cache_flush(pool);
			continue;
		}
		if (flushed == 1) { /* ... then what dead processes held */
			flushed = 2;
			if (dg_pool_reclaim_dead(pool))
				continue;
		}
		if (timeout_us == 0)
			return dg_err(DRAGON_ENOSPACE, "pool %016llx has no free run of %zu bytes",
				      (unsigned long long)pool->id, size);
		if (atomic_load(&h->destroyed))
			return dg_err(DRAGON_ESTALE, "pool %016llx was destroyed",
				      (unsigned long long)pool->id);
		if (dg_wait_seq(&h->free_seq, seen, &h->free_waiters, DRAGON_WAIT_IDLE, &dl) ==
		    DRAGON_ETIMEDOUT)
			return dg_err(DRAGON_ETIMEDOUT, "no %zu bytes were freed in pool %016llx "
							"within %ld us",
				      size, (unsigned long long)pool->id, timeout_us);
	}
done:
	mem->pool = pool;
	mem->offset = blk * BLOCK;
	mem->size = size;
	mem->ptr = pool->heap + mem->offset;
	return DRAGON_OK;
}
