/* dragon/ddict.h: the distributed dictionary: byte-string keys and values sharded over manager processes on the fabric's nodes. */
#ifndef DRAGON_DDICT_H
#define DRAGON_DDICT_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A dictionary is served by managers: processes started as one group, `managers_per_node` on
 * each node of the fabric, each holding the shard of the keys that hash to it in a pool of its
 * node (at most `budget` bytes of keys, values and per-entry overhead). A key goes to manager
 * blake2b-64(key) mod managers (docs/ddict.md: Python's
 * int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") % managers).
 *
 * A handle (dragon_ddict_t) is used by one thread at a time; threads attach their own handles.
 * Every call returns DRAGON_OK or a DRAGON_E* code with dragon_errmsg() naming the manager:
 * DRAGON_ENOTFOUND for a missing key, DRAGON_ENOSPACE when a put would pass a manager's budget
 * (nothing is stored then), DRAGON_EPEER when the manager holding the key is dead or its node
 * unreachable (the other managers keep serving), DRAGON_ETIMEDOUT after the handle's timeout.
 */
typedef struct dragon_ddict dragon_ddict_t;

enum {
	DRAGON_DDICT_OUTLIVE = 1, /* managers and name stay when the creating process exits */
};

typedef struct dragon_ddict_attr {
	unsigned managers_per_node; /* 0 = 1 */
	unsigned nodes;             /* nodes 0..nodes-1 of the fabric; 0 = every node */
	size_t budget;              /* bytes per manager; 0 = 64 MiB */
	int flags;                  /* DRAGON_DDICT_OUTLIVE */
	int timeout_ms;             /* per operation of handles of this process; 0 = 30 s */
} dragon_ddict_attr_t;

/*
 * Start the managers and wait until each serves. name (may be NULL) registers the dictionary so
 * that any process attaches it with dragon_ddict_attach. attr may be NULL. Needs dragon_init.
 */
int dragon_ddict_create(const char *name, const dragon_ddict_attr_t *attr, dragon_ddict_t **d);

/* Attach a dictionary by name, waiting up to timeout_ms for the name (< 0: forever). */
int dragon_ddict_attach(const char *name, int timeout_ms, dragon_ddict_t **d);

/*
 * Serialized descriptor: *desc is malloc'd (free it), *len bytes; pass it to another process,
 * which attaches with dragon_ddict_attach_desc (no name lookup).
 */
int dragon_ddict_serialize(const dragon_ddict_t *d, void **desc, size_t *len);
int dragon_ddict_attach_desc(const void *desc, size_t len, dragon_ddict_t **d);

/* Forget the handle (the dictionary lives on). */
int dragon_ddict_detach(dragon_ddict_t *d);

/* Stop every manager (their shards are lost unless persisted) and forget the handle. */
int dragon_ddict_destroy(dragon_ddict_t *d);

/* Number of managers, and the manager a key belongs to (the pinned one if pinned). */
unsigned dragon_ddict_managers(const dragon_ddict_t *d);
unsigned dragon_ddict_manager_of(const dragon_ddict_t *d, const void *key, size_t klen);

/*
 * Send every operation of this handle to manager m (-1: back to hashing). Keys put through a
 * pinned handle live on m, and are found through a handle pinned to m.
 */
int dragon_ddict_pin(dragon_ddict_t *d, int m);

/* Timeout of this handle's operations in milliseconds (< 0: forever). */
int dragon_ddict_set_timeout(dragon_ddict_t *d, int timeout_ms);

/* Store (replacing) a value. Inside a batch (below) it is queued and acknowledged at its end. */
int dragon_ddict_put(dragon_ddict_t *d, const void *key, size_t klen, const void *val,
		     size_t vlen);

/*
 * Copy the value into buf (cap bytes), *vlen = its size. DRAGON_ETOOBIG if it does not fit
 * (*vlen says the size needed; nothing is copied).
 */
int dragon_ddict_get(dragon_ddict_t *d, const void *key, size_t klen, void *buf, size_t cap,
		     size_t *vlen);

/*
 * The value as a pool allocation the caller frees with dragon_pool_free: mem->ptr holds it,
 * *vlen its size (mem->size may be larger). On the manager's node it is an allocation of the
 * manager's pool filled by the manager (one copy, none through a channel); from another node it
 * is the received message itself.
 */
int dragon_ddict_get_mem(dragon_ddict_t *d, const void *key, size_t klen, dragon_mem_t *mem,
			 size_t *vlen);

/*
 * No copy at all: *val points at the value in the manager's shared memory. Only while the
 * dictionary is frozen and the key's manager is on this node (else DRAGON_EAGAIN: use get); the
 * pointer is valid until the dictionary is unfrozen. Read it, never write it.
 */
int dragon_ddict_get_view(dragon_ddict_t *d, const void *key, size_t klen, const void **val,
			  size_t *vlen);

/* get, then remove the key. */
int dragon_ddict_pop(dragon_ddict_t *d, const void *key, size_t klen, void *buf, size_t cap,
		     size_t *vlen);

/*
 * pop into a pool allocation, like get_mem: for a caller that does not know the value's size (a
 * pop into a buffer that is too small loses the value).
 */
int dragon_ddict_pop_mem(dragon_ddict_t *d, const void *key, size_t klen, dragon_mem_t *mem,
			 size_t *vlen);

/* Remove a key; DRAGON_ENOTFOUND if absent. */
int dragon_ddict_del(dragon_ddict_t *d, const void *key, size_t klen);

/* *present = 1 if the key exists. */
int dragon_ddict_contains(dragon_ddict_t *d, const void *key, size_t klen, int *present);

/* Keys of the whole dictionary (or of the pinned manager). */
int dragon_ddict_len(dragon_ddict_t *d, uint64_t *n);

/* Keys, bytes used and budget of manager m. */
int dragon_ddict_manager_stats(dragon_ddict_t *d, unsigned m, uint64_t *keys, uint64_t *used,
			       uint64_t *budget);

/* Remove every key (of every manager, or of the pinned one). */
int dragon_ddict_clear(dragon_ddict_t *d);

/*
 * Batched puts: between batch_begin and batch_end, puts are queued per manager and sent in large
 * messages; batch_end waits for one acknowledgement per message and reports the first failure
 * (the keys of a failed message that were stored stay stored; dragon_errmsg names the key).
 */
int dragon_ddict_batch_begin(dragon_ddict_t *d);
int dragon_ddict_batch_end(dragon_ddict_t *d);

/* Wait until key exists, up to timeout_ms (< 0: forever): DRAGON_ETIMEDOUT after that. */
int dragon_ddict_wait_for_key(dragon_ddict_t *d, const void *key, size_t klen, int timeout_ms);

/*
 * Atomically add delta to the 64-bit little-endian counter stored at key (absent = 0) and give
 * the value before (old may be NULL). DRAGON_EINVAL if the value there is not 8 bytes.
 */
int dragon_ddict_fetch_add(dragon_ddict_t *d, const void *key, size_t klen, int64_t delta,
			   int64_t *old);

/*
 * Freeze: the dictionary becomes read-only (puts, pops, clears fail with DRAGON_EPERM), and gets
 * on a manager's node read its shard in shared memory without asking the manager. Unfreeze
 * makes it writable again.
 */
int dragon_ddict_freeze(dragon_ddict_t *d);
int dragon_ddict_unfreeze(dragon_ddict_t *d);

/*
 * Key iteration over manager m, or every manager (m = -1). Keys come in chunks from the managers.
 * Without puts and removals meanwhile every key is seen once; keys put or removed meanwhile may or
 * may not be seen, and if a shard's table grew meanwhile a key may be seen twice or missed.
 * next gives DRAGON_ENOTFOUND at the end, DRAGON_ETOOBIG when the key does not fit in cap
 * (*klen says its size; call again with more room).
 */
typedef struct dragon_ddict_iter dragon_ddict_iter_t;
int dragon_ddict_iter_start(dragon_ddict_t *d, int m, dragon_ddict_iter_t **it);
int dragon_ddict_iter_next(dragon_ddict_iter_t *it, void *key, size_t cap, size_t *klen);
void dragon_ddict_iter_end(dragon_ddict_iter_t *it);

/*
 * Persistence. persist writes each manager's shard to DIR/ddict-<m>-of-<n>.shard on its node
 * (a directory every node can write: a shared file system, or each node's own disk), with a
 * checksum; restore (in a dictionary with the same number of managers, e.g. in a later job)
 * replaces each shard with its file. A missing, truncated or corrupt shard fails the call with
 * an error naming the file (the other managers still restore theirs).
 */
int dragon_ddict_persist(dragon_ddict_t *d, const char *dir);
int dragon_ddict_restore(dragon_ddict_t *d, const char *dir);

/* The stable hash of keys (blake2b, 8 bytes, read little-endian). */
uint64_t dragon_ddict_hash(const void *key, size_t klen);

#ifdef __cplusplus
}
#endif
#endif
