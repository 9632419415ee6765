/* runtime/core/pool_internal.h: pool internals shared with channels and local services. */
#ifndef DRAGON_RUNTIME_POOL_INTERNAL_H
#define DRAGON_RUNTIME_POOL_INTERNAL_H

#include <stdint.h>

#include <dragon/pool.h>

#include "core/shm.h"

/*
 * Where a pool's memfd comes from when a descriptor names a pool this process has not attached:
 * local services' client code registers a provider that asks LS for the fd (returned fd is
 * owned by the caller).
 */
typedef int (*dg_pool_fd_provider_fn)(uint64_t pool_id, int *fd, void *arg);
void dg_pool_set_fd_provider(dg_pool_fd_provider_fn fn, void *arg);

/* Attach (or take another reference on) the pool a descriptor names. */
int dg_pool_attach_from(const struct dg_desc *d, dragon_pool_t **pool);
/* Fill the pool fields of a descriptor. */
void dg_pool_fill_desc(const dragon_pool_t *pool, struct dg_desc *d);
/* Address of an offset of the pool in this process; NULL if out of range. */
void *dg_pool_ptr(const dragon_pool_t *pool, uint64_t offset, uint64_t size);
/* Take one more reference on an attached pool (released by dragon_pool_detach). */
void dg_pool_ref(dragon_pool_t *pool);
/* The layout version of the pools this library makes and maps (another build may differ). */
uint32_t dg_pool_layout(void);

/*
 * Owner tags: a process's record in the pool (21 bits, never 0) and the liveness check behind
 * crash repair. dg_pool_self_tag registers the calling process on first use (0 if every record
 * is held by a live process: then its claims are never repaired). dg_pool_tag_dead is true once
 * the tagged process is gone (pid absent, a zombie, or reused by a process that started later).
 */
#define DG_TAG_BITS 21
uint32_t dg_pool_self_tag(dragon_pool_t *pool);
int dg_pool_tag_dead(const dragon_pool_t *pool, uint32_t tag);
/* Allocate with an owner tag: freed by dg_pool_reclaim_dead if that process dies holding it. */
int dg_pool_alloc_owned(dragon_pool_t *pool, size_t size, long timeout_us, uint32_t tag,
			dragon_mem_t *mem);
/* Change an allocation's owner tag (0 = none: it lives on whoever dies). */
void dg_pool_owner_set(dragon_pool_t *pool, uint64_t offset, uint32_t tag);
int dg_pool_owner_cas(dragon_pool_t *pool, uint64_t offset, uint32_t expect, uint32_t tag);
/* Release the records of dead processes and free the allocations they held; returns how many. */
uint64_t dg_pool_reclaim_dead(dragon_pool_t *pool);

/*
 * For tests of crash recovery only: take the pool's lock, leave a torn allocation of n blocks
 * (bitmap set, no size entry, as a process killed inside an allocate would), and _exit(0)
 * without unlocking. Never returns.
 */
void dg_pool_test_die_holding_lock(dragon_pool_t *pool, uint64_t n) __attribute__((noreturn));

#endif
