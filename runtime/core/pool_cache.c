/* runtime/core/pool_cache.c: a per-process cache of free blocks per size class, returned to the shared heap in batches and at exit. */
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

/* --- the per-process cache (see CACHED above) --------------------------------------------- */

static pthread_once_t cache_exit_once = PTHREAD_ONCE_INIT;

static void cache_exit(void)
{
	pthread_mutex_lock(&dg_pool_table_lock);
	for (dragon_pool_t *q = dg_pool_table; q; q = q->next)
		dg_pool_cache_flush(q);
	pthread_mutex_unlock(&dg_pool_table_lock);
}

static void cache_exit_register(void)
{
	atexit(cache_exit);
}

/* Take the cache of this handle for this process, or NULL (a small pool, another thread in it). */
/*
 * Size classes: exact up to 8 blocks, then four per doubling (10, 12, 14, 16, 20, ... 256), so
 * that mixed sizes share classes; a cached allocation wastes at most 1/4 of itself.
 */
static uint64_t cache_class(uint64_t n)
{
	if (n <= 8)
		return n;
	uint64_t step = 1ull << (63 - __builtin_clzll(n - 1) - 2);
	return (n + step - 1) / step * step;
}

static struct pool_cache *cache_enter(dragon_pool_t *p)
{
	int me = dg_self_pid();

	if (p->h->nblocks < CACHE_MIN_BLOCKS ||
	    atomic_exchange_explicit(&p->cache_busy, 1, memory_order_acquire))
		return NULL;
	if (p->cache_pid != me) {
		/* a fork: what the cache holds is the parent's (its tag), not ours to hand out */
		if (!p->cache)
			p->cache = malloc(sizeof(*p->cache));
		if (p->cache)
			memset(p->cache, 0, sizeof(*p->cache));
		p->cache_pid = me;
		pthread_once(&cache_exit_once, cache_exit_register);
	}
	if (!p->cache)
		atomic_store_explicit(&p->cache_busy, 0, memory_order_release);
	return p->cache;
}

static void cache_leave(dragon_pool_t *p)
{
	atomic_store_explicit(&p->cache_busy, 0, memory_order_release);
}

/* Give back k runs of class n from the cache's top; pool lock held. */
static void cache_drop_locked(dragon_pool_t *p, struct pool_cache *c, uint32_t n, uint32_t k)
{
	while (k-- && c->n[n]) {
		uint32_t b = c->blk[n][--c->n[n]];
		c->total -= n;
		if (p->sizes[b] == n)
			dg_pool_free_locked(p, b, n);
	}
}

void dg_pool_cache_flush(dragon_pool_t *p)
{
	struct pool_cache *c;
	int any = 0;

	if (!p->cache || p->cache_pid != dg_self_pid() || !(c = cache_enter(p)))
		return;
	for (uint32_t n = 1; n <= CACHE_CLASSES; n++)
		any |= c->n[n] != 0;
	if (any && dg_pool_lock(p) == DRAGON_OK) {
		for (uint32_t n = 1; n <= CACHE_CLASSES; n++)
			cache_drop_locked(p, c, n, CACHE_DEPTH);
		pthread_mutex_unlock(&p->h->lock);
		dg_wake_seq(&p->h->free_seq, &p->h->free_waiters);
	}
	cache_leave(p);
}

/* A run of n blocks from the cache, refilled under one lock when empty. */
int dg_pool_cache_get(dragon_pool_t *p, uint64_t n, uint32_t tag, uint64_t *blk)
{
	struct pool_cache *c;
	uint32_t me;

	if (n > CACHE_CLASSES || !(me = dg_pool_self_tag(p)) || !(c = cache_enter(p)))
		return DRAGON_ENOSPACE;
	n = cache_class(n);
	if (!c->n[n] && dg_pool_lock(p) == DRAGON_OK) {
		struct pool_hdr *h = p->h;
		uint64_t at;
		/* memory often flows one way (a producer allocates, a consumer frees): big batches
		 * amortize the lock on both sides */
		uint32_t refill = n <= 16 ? CACHE_REFILL : n <= 64 ? 8 : 2;
		for (uint32_t k = 0; k < refill && c->total + n <= CACHE_MAX_BLOCKS; k++) {
			if (!dg_pool_find_run(p->bitmap, h->hint, h->nblocks, n, 1, &at) &&
			    !dg_pool_find_run(p->bitmap, 0, h->nblocks, n, 1, &at))
				break;
			dg_pool_set_range(p->bitmap, at, n, 1);
			atomic_store_explicit(&p->owners[at], me | CACHED, memory_order_relaxed);
			atomic_thread_fence(memory_order_release);
			p->sizes[at] = (uint32_t)n; /* the commit point, as in try_alloc */
			h->used_blocks += n;
			h->nallocs++;
			h->hint = at + n < h->nblocks ? at + n : 0;
			c->blk[n][c->n[n]++] = (uint32_t)at;
			c->total += (uint32_t)n;
		}
		pthread_mutex_unlock(&h->lock);
	}
	if (!c->n[n]) {
		cache_leave(p);
		return DRAGON_ENOSPACE;
	}
	*blk = c->blk[n][--c->n[n]];
	c->total -= (uint32_t)n;
	atomic_store_explicit(&p->owners[*blk], tag, memory_order_release);
	cache_leave(p);
	return DRAGON_OK;
}

/* Keep a freed run in the cache; DRAGON_ENOSPACE sends the caller down the shared path. */
int dg_pool_cache_put(dragon_pool_t *p, uint64_t blk, size_t size)
{
	struct pool_cache *c;
	uint32_t me, n = p->sizes[blk]; /* stable while allocated, and it is ours to free */

	/* someone waits for space: let the free reach the shared heap and wake them */
	if (!n || n > CACHE_CLASSES || cache_class(n) != n || (uint64_t)n * BLOCK < size ||
	    atomic_load_explicit(&p->h->free_waiters, memory_order_relaxed) ||
	    (atomic_load_explicit(&p->owners[blk], memory_order_relaxed) & CACHED) ||
	    !(me = dg_pool_self_tag(p)) || !(c = cache_enter(p)))
		return DRAGON_ENOSPACE;
	uint32_t cap = p->h->nblocks / 64 < CACHE_MAX_BLOCKS ? (uint32_t)(p->h->nblocks / 64)
							    : CACHE_MAX_BLOCKS;
	if (c->n[n] == CACHE_DEPTH || c->total + n > cap) {
		if (dg_pool_lock(p) != DRAGON_OK) {
			cache_leave(p);
			return DRAGON_ENOSPACE;
		}
		cache_drop_locked(p, c, n, CACHE_DEPTH / 2);
		pthread_mutex_unlock(&p->h->lock);
		dg_wake_seq(&p->h->free_seq, &p->h->free_waiters);
		if (c->total + n > cap) { /* other classes fill it: this one takes the shared path */
			cache_leave(p);
			return DRAGON_ENOSPACE;
		}
	}
	atomic_store_explicit(&p->owners[blk], me | CACHED, memory_order_relaxed);
	c->blk[n][c->n[n]++] = (uint32_t)blk;
	c->total += n;
	cache_leave(p);
	return DRAGON_OK;
}
