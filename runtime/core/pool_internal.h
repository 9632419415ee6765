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

/*
 * For tests of crash recovery only: take the pool's lock, leave a torn allocation of n blocks
 * (bitmap set, no size entry, as a process killed inside an allocate would), and _exit(0)
 * without unlocking. Never returns.
 */
void dg_pool_test_die_holding_lock(dragon_pool_t *pool, uint64_t n) __attribute__((noreturn));

#endif
