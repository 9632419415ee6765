/* dragon/pool.h: managed shared-memory pools that many processes allocate from at once. */
#ifndef DRAGON_POOL_H
#define DRAGON_POOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A process's handle on a pool (opaque). One pool may be attached by many processes. */
typedef struct dragon_pool dragon_pool_t;

/* Serialized descriptors: fixed-size bytes another process attaches from. */
#define DRAGON_DESC_SIZE 64
/* Printable form of a descriptor (for environment variables), with its terminating NUL. */
#define DRAGON_DESC_STRLEN (2 * DRAGON_DESC_SIZE + 1)

typedef struct dragon_pool_desc {
	unsigned char bytes[DRAGON_DESC_SIZE];
} dragon_pool_desc_t;

typedef struct dragon_mem_desc {
	unsigned char bytes[DRAGON_DESC_SIZE];
} dragon_mem_desc_t;

typedef struct dragon_pool_attr {
	size_t size;   /* bytes usable for allocations; 0 = 64 MiB */
	int hugepages; /* nonzero: back the pool with huge pages (MFD_HUGETLB) */
} dragon_pool_attr_t;

/*
 * An allocation in a pool: a value, not a handle, so allocate and free cost no malloc.
 * `ptr` is the address in this process; (pool, offset) is what other processes attach.
 */
typedef struct dragon_mem {
	dragon_pool_t *pool;
	uint64_t offset;
	size_t size;
	void *ptr;
} dragon_mem_t;

typedef struct dragon_pool_stats {
	size_t size;          /* bytes managed */
	size_t used;          /* bytes allocated (rounded to the pool's block size) */
	size_t free;          /* size - used */
	size_t largest_free;  /* largest block one allocation could get now */
	uint64_t allocations; /* live allocations */
} dragon_pool_stats_t;

/* Create a pool in a new memfd (readable only by this user). attr may be NULL. */
int dragon_pool_create(const dragon_pool_attr_t *attr, dragon_pool_t **pool);

/*
 * Attach a pool from its descriptor. The memory is found, in this order: already attached in
 * this process; from the fabric's local services (after dragon_init); through the creating
 * process's descriptor table (same user only). DRAGON_EBADDESC for a garbage or truncated
 * descriptor, DRAGON_ESTALE if the pool is gone, DRAGON_EPERM for another user's pool,
 * DRAGON_ENOTSUP for a pool of another layout version (made by another build of Dragon).
 */
int dragon_pool_attach(const dragon_pool_desc_t *desc, dragon_pool_t **pool);

/* Attach a pool from a file descriptor received by inheritance or over a unix socket (dup'ed). */
int dragon_pool_attach_fd(int fd, dragon_pool_t **pool);

/* Drop this process's handle; the pool lives on for the others. */
int dragon_pool_detach(dragon_pool_t *pool);

/* Mark the pool destroyed (later attaches fail with DRAGON_ESTALE) and drop the handle. */
int dragon_pool_destroy(dragon_pool_t *pool);

int dragon_pool_serialize(const dragon_pool_t *pool, dragon_pool_desc_t *desc);
/* The pool's memfd (owned by the handle; dup it to keep it). For handing the pool to others. */
int dragon_pool_fd(const dragon_pool_t *pool);
uint64_t dragon_pool_id(const dragon_pool_t *pool);
int dragon_pool_stats(const dragon_pool_t *pool, dragon_pool_stats_t *stats);

/*
 * Allocate size bytes aligned to align (a power of two; 0 = 64). dragon_pool_alloc fails at once
 * with DRAGON_ENOSPACE when the pool is full; dragon_pool_alloc_wait waits up to timeout_us
 * (-1 = forever) for space to be freed, then fails with DRAGON_ETIMEDOUT.
 */
int dragon_pool_alloc(dragon_pool_t *pool, size_t size, size_t align, dragon_mem_t *mem);
int dragon_pool_alloc_wait(dragon_pool_t *pool, size_t size, size_t align, long timeout_us,
			   dragon_mem_t *mem);
int dragon_pool_free(dragon_mem_t *mem);

/* An allocation's descriptor; dragon_mem_attach attaches its pool if needed. */
int dragon_mem_serialize(const dragon_mem_t *mem, dragon_mem_desc_t *desc);
int dragon_mem_attach(const dragon_mem_desc_t *desc, dragon_mem_t *mem);

/*
 * Printable form of any descriptor (pool, mem, channel: all DRAGON_DESC_SIZE bytes).
 * dragon_desc_parse fails with DRAGON_EBADDESC on a wrong length or a non-hex character.
 */
int dragon_desc_format(const void *desc, char out[DRAGON_DESC_STRLEN]);
int dragon_desc_parse(const char *str, void *desc);

#ifdef __cplusplus
}
#endif
#endif
