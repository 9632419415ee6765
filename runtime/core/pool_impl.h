/* runtime/core/pool_impl.h: a pool's layout in shared memory and what pool.c, pool_alloc.c and pool_cache.c share. */
#ifndef DRAGON_RUNTIME_POOL_IMPL_H
#define DRAGON_RUNTIME_POOL_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <dragon/pool.h>

#include "core/pool_internal.h"


/*
 * Layout of a pool: a header page, the allocation bitmap (one bit per block), the size map (for
 * each allocated block run, its length in blocks at its first block), then the heap.
 *
 * Crash tolerance: every change happens under one robust mutex, and the size map is the truth:
 * an allocation exists exactly when its first block has a nonzero size entry. The bitmap and
 * the counters are derived from it. When a process dies holding the lock (EOWNERDEAD), the next
 * locker rebuilds the bitmap and counters from the size map, so a half-done allocate or free
 * can at worst leak the one allocation the dead process was making or freeing, never corrupt
 * the pool or wedge it for the others.
 *
 * Version 2 adds a registry of the processes using the pool (pid + start time, so a reused pid
 * is not mistaken for its dead predecessor) and an owner map: for each allocation, the record
 * tag of the process that holds it while it is private to the runtime (a channel's large
 * message between allocation and send, or between receipt and the copy out), 0 otherwise.
 * Channels stamp their claims with the same tag, so one dead-owner check serves both: a
 * claim of a dead process becomes a hole, and its tagged allocations are reclaimed when its
 * record is recycled (or by dg_pool_reclaim_dead).
 */
#define POOL_MAGIC 0x4c4f4f504e474452ull /* "RDGNPOOL" */
#define POOL_VERSION 2
#define BLOCK 64u
#define HDR_SIZE 4096u
#define NREC 1024u     /* process records; a tag is gen << 10 | index, index 1..1023 */
#define REC_BITS 10u
#define GEN_MASK 0x7ffu /* 11 bits of generation: tags fit DG_TAG_BITS (21) */

/*
 * The per-process cache: freed runs of 1..CACHE_CLASSES blocks stay allocated in the shared
 * heap, owner-tagged with this process's tag and CACHED, and are handed out again without the
 * pool lock. Refilled CACHE_REFILL at a time and flushed half a class at a time under one lock
 * each; flushed on stats, detach, ENOSPACE and exit; a killed process's cached runs carry its
 * tag and go back by the dead-owner sweep like anything else it held.
 */
#define CACHED 0x80000000u
#define CACHE_CLASSES 256u      /* 64 B .. 16 KiB */
#define CACHE_DEPTH 64u
#define CACHE_MAX_BLOCKS 16384u /* at most 1 MiB cached per process and pool (and 1/64 of it) */
#define CACHE_REFILL 32u
#define CACHE_MIN_BLOCKS 16384u /* pools under 1 MiB keep no cache: it would crowd them */

struct pool_cache {
	uint32_t total; /* blocks cached */
	uint32_t n[CACHE_CLASSES + 1];
	uint32_t blk[CACHE_CLASSES + 1][CACHE_DEPTH];
};
#define DEFAULT_SIZE (64ull << 20)
#define MAX_ALIGN 4096u

struct pool_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t uid;
	uint64_t pool_id;
	uint64_t map_size;
	uint64_t bitmap_off;
	uint64_t sizes_off;
	uint64_t heap_off;
	uint64_t nblocks;
	_Atomic uint32_t destroyed;
	pthread_mutex_t lock;
	uint64_t used_blocks;
	uint64_t nallocs;
	uint64_t hint;
	_Atomic uint32_t free_seq;     /* bumped by every free, for blocked allocators */
	_Atomic uint32_t free_waiters;
	uint64_t reg_off;              /* NREC process records */
	uint64_t owners_off;           /* owner tag per block (meaningful at an allocation's first) */
};

/* A process using the pool. pid is written last when a record is taken (0 = free). */
struct pool_rec {
	_Atomic uint32_t pid;
	_Atomic uint32_t gen;
	_Atomic uint64_t start; /* /proc/PID/stat field 22: tells a reused pid from the dead one */
	uint64_t pad[2];
};

struct dragon_pool {
	struct dragon_pool *next;
	struct pool_hdr *h;
	uint64_t *bitmap;
	uint32_t *sizes;
	_Atomic uint32_t *owners;
	struct pool_rec *recs;
	char *heap;
	int fd;
	int refs;
	uint64_t id;
	uint64_t map_size;
	_Atomic uint64_t self; /* this process's tag (low 32 bits) and the pid it was taken by */
	_Atomic int cache_busy; /* a try-lock: threads that find it taken use the shared path */
	int cache_pid;          /* the process the cache's runs belong to (a fork starts empty) */
	struct pool_cache *cache;
};

/* pool_alloc.c: the allocator under the pool's lock, process records and owner tags. */
int dg_pool_alloc_common(dragon_pool_t *pool, size_t size, size_t align, long timeout_us, uint32_t tag, dragon_mem_t *mem);
int dg_pool_find_run(const uint64_t *bm, uint64_t from, uint64_t end, uint64_t n, uint64_t a, uint64_t *at);
void dg_pool_free_locked(dragon_pool_t *p, uint64_t blk, uint32_t n);
uint64_t dg_pool_next_bit(const uint64_t *bm, uint64_t i, uint64_t end, int bit);
int dg_pool_lock(dragon_pool_t *p);
void dg_pool_set_range(uint64_t *bm, uint64_t i, uint64_t n, int on);

/* pool_cache.c: the per-process cache of free blocks. */
void dg_pool_cache_flush(dragon_pool_t *p);
int dg_pool_cache_get(dragon_pool_t *p, uint64_t n, uint32_t tag, uint64_t *blk);
int dg_pool_cache_put(dragon_pool_t *p, uint64_t blk, size_t size);

/* pool.c: the pools this process attached, each mapped once. */
extern pthread_mutex_t dg_pool_table_lock;
extern struct dragon_pool *dg_pool_table;

#endif
