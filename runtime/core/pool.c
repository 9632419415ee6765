/* runtime/core/pool.c: memfd-backed shared-memory pools with a crash-tolerant block allocator. */
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

/* Attached pools of this process, so that a pool is mapped once however often it is attached. */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dragon_pool *table;
static dg_pool_fd_provider_fn fd_provider;
static void *fd_provider_arg;

void dg_pool_set_fd_provider(dg_pool_fd_provider_fn fn, void *arg)
{
	pthread_mutex_lock(&table_lock);
	fd_provider = fn;
	fd_provider_arg = arg;
	pthread_mutex_unlock(&table_lock);
}

static void layout(uint64_t usable, uint64_t *nblocks, uint64_t *bitmap_off, uint64_t *sizes_off,
		   uint64_t *heap_off, uint64_t *total)
{
	uint64_t n = (usable + BLOCK - 1) / BLOCK;
	uint64_t bm = (n + 63) / 64 * 8;
	uint64_t sz = n * 4;

	*nblocks = n;
	*bitmap_off = HDR_SIZE + NREC * sizeof(struct pool_rec);
	*sizes_off = *bitmap_off + bm;
	/* the owner map follows the size map (same length) */
	*heap_off = (*sizes_off + 2 * sz + MAX_ALIGN - 1) / MAX_ALIGN * MAX_ALIGN;
	*total = *heap_off + n * BLOCK;
}

static int map_pool(int fd, uint64_t expect_id, dragon_pool_t **out)
{
	struct stat st;
	struct pool_hdr *h;
	dragon_pool_t *p;
	void *base;

	if (fstat(fd, &st) < 0)
		return dg_err_sys("fstat of a pool descriptor");
	if (st.st_uid != getuid() && getuid() != 0)
		return dg_err(DRAGON_EPERM, "pool belongs to uid %u, this process is uid %u",
			      (unsigned)st.st_uid, (unsigned)getuid());
	if ((uint64_t)st.st_size < HDR_SIZE)
		return dg_err(DRAGON_ESTALE, "file descriptor %d is not a Dragon pool (%lld bytes)",
			      fd, (long long)st.st_size);
	base = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return dg_err_sys("mmap of a pool (%lld bytes)", (long long)st.st_size);
	h = base;
	if (h->magic != POOL_MAGIC || h->version != POOL_VERSION ||
	    h->map_size != (uint64_t)st.st_size || (expect_id && h->pool_id != expect_id)) {
		munmap(base, st.st_size);
		return dg_err(DRAGON_ESTALE, "file descriptor %d does not hold the pool %016llx", fd,
			      (unsigned long long)expect_id);
	}
	if (atomic_load(&h->destroyed)) {
		munmap(base, st.st_size);
		return dg_err(DRAGON_ESTALE, "pool %016llx was destroyed",
			      (unsigned long long)h->pool_id);
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		munmap(base, st.st_size);
		return dg_err(DRAGON_ENOMEM, "pool handle");
	}
	p->h = h;
	p->bitmap = (uint64_t *)((char *)base + h->bitmap_off);
	p->sizes = (uint32_t *)((char *)base + h->sizes_off);
	p->owners = (_Atomic uint32_t *)((char *)base + h->owners_off);
	p->recs = (struct pool_rec *)((char *)base + h->reg_off);
	p->heap = (char *)base + h->heap_off;
	p->fd = fd;
	p->refs = 1;
	p->id = h->pool_id;
	p->map_size = h->map_size;
	*out = p;
	return DRAGON_OK;
}

static void cache_flush(dragon_pool_t *p);

static void unmap_pool(dragon_pool_t *p)
{
	cache_flush(p);
	free(p->cache);
	munmap(p->h, p->map_size);
	close(p->fd);
	free(p);
}

/* Insert into the table, or return the entry another thread put there first (p is then freed). */
static dragon_pool_t *publish(dragon_pool_t *p)
{
	pthread_mutex_lock(&table_lock);
	for (dragon_pool_t *q = table; q; q = q->next) {
		if (q->id == p->id) {
			q->refs++;
			pthread_mutex_unlock(&table_lock);
			unmap_pool(p);
			return q;
		}
	}
	p->next = table;
	table = p;
	pthread_mutex_unlock(&table_lock);
	return p;
}

static dragon_pool_t *find_ref(uint64_t id)
{
	dragon_pool_t *q;

	pthread_mutex_lock(&table_lock);
	for (q = table; q; q = q->next)
		if (q->id == id) {
			q->refs++;
			break;
		}
	pthread_mutex_unlock(&table_lock);
	return q;
}

void dg_pool_ref(dragon_pool_t *pool)
{
	pthread_mutex_lock(&table_lock);
	pool->refs++;
	pthread_mutex_unlock(&table_lock);
}

DRAGON_API int dragon_pool_create(const dragon_pool_attr_t *attr, dragon_pool_t **pool)
{
	uint64_t usable = attr && attr->size ? attr->size : DEFAULT_SIZE;
	int huge = attr && attr->hugepages;
	uint64_t nblocks, bm, sz, heap, total, id = 0;
	struct pool_hdr *h;
	dragon_pool_t *p = NULL;
	int fd, rv;

	if (!pool)
		return dg_err(DRAGON_EINVAL, "dragon_pool_create: pool is NULL");
	*pool = NULL;
	if (usable > (1ull << 40) || usable / BLOCK > UINT32_MAX)
		return dg_err(DRAGON_ETOOBIG, "pool size %llu is beyond the 1 TiB limit",
			      (unsigned long long)usable);
	layout(usable, &nblocks, &bm, &sz, &heap, &total);
	if (huge)
		total = (total + (2u << 20) - 1) / (2u << 20) * (2u << 20);
	fd = memfd_create("dragon-pool", MFD_CLOEXEC | (huge ? MFD_HUGETLB : 0));
	if (fd < 0)
		return dg_err_sys("memfd_create%s", huge ? " with huge pages" : "");
	if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)total) < 0) {
		rv = huge && errno != EPERM
			     ? dg_err(DRAGON_ENOSPACE, "no huge pages for a %llu-byte pool: reserve "
						       "some with sysctl vm.nr_hugepages",
				      (unsigned long long)total)
			     : dg_err_sys("sizing a pool of %llu bytes", (unsigned long long)total);
		close(fd);
		return rv;
	}
	while (!id)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id)) {
			close(fd);
			return dg_err_sys("getrandom for a pool id");
		}
	h = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED) {
		rv = huge ? dg_err(DRAGON_ENOSPACE, "no huge pages for a %llu-byte pool: reserve some "
						    "with sysctl vm.nr_hugepages",
				   (unsigned long long)total)
			  : dg_err_sys("mmap of a new pool");
		close(fd);
		return rv;
	}
	h->version = POOL_VERSION;
	h->uid = getuid();
	h->pool_id = id;
	h->map_size = total;
	h->bitmap_off = bm;
	h->sizes_off = sz;
	h->owners_off = sz + nblocks * 4;
	h->reg_off = HDR_SIZE;
	h->heap_off = heap;
	h->nblocks = nblocks;
	rv = dg_robust_init(&h->lock);
	if (rv) {
		munmap(h, total);
		close(fd);
		return rv;
	}
	/* The magic goes last: a reader never sees a half-initialized pool as valid. */
	atomic_thread_fence(memory_order_release);
	h->magic = POOL_MAGIC;
	munmap(h, total);
	rv = map_pool(fd, id, &p);
	if (rv) {
		close(fd);
		return rv;
	}
	*pool = publish(p);
	return DRAGON_OK;
}

DRAGON_API int dragon_pool_attach_fd(int fd, dragon_pool_t **pool)
{
	dragon_pool_t *p;
	int mine, rv;

	if (fd < 0 || !pool)
		return dg_err(DRAGON_EINVAL, "dragon_pool_attach_fd: bad fd or NULL pool");
	*pool = NULL;
	mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (mine < 0)
		return dg_err_sys("dup of pool descriptor %d", fd);
	rv = map_pool(mine, 0, &p);
	if (rv) {
		close(mine);
		return rv;
	}
	*pool = publish(p);
	return DRAGON_OK;
}

int dg_pool_attach_from(const struct dg_desc *d, dragon_pool_t **pool)
{
	dragon_pool_t *p;
	dg_pool_fd_provider_fn prov;
	void *arg;
	char path[64];
	int fd = -1, rv;

	*pool = find_ref(d->pool_id);
	if (*pool)
		return DRAGON_OK;
	if (d->uid != getuid() && getuid() != 0)
		return dg_err(DRAGON_EPERM, "the pool belongs to uid %u, this process is uid %u",
			      d->uid, (unsigned)getuid());
	pthread_mutex_lock(&table_lock);
	prov = fd_provider;
	arg = fd_provider_arg;
	pthread_mutex_unlock(&table_lock);
	if (prov && prov(d->pool_id, &fd, arg) != DRAGON_OK)
		fd = -1;
	if (fd < 0 && d->pid > 0 && d->fd >= 0) {
		char link[64];
		ssize_t n;

		/*
		 * Open only what is one of our pools' memfds: a forged descriptor must not make us
		 * open an arbitrary file (a device, a FIFO) of another process.
		 */
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", d->pid, d->fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			if (!strncmp(link, "/memfd:dragon-pool", 18))
				fd = open(path, O_RDWR | O_CLOEXEC);
		}
	}
	if (fd < 0)
		return dg_err(DRAGON_ESTALE, "pool %016llx cannot be reached: its creator (pid %d) "
					     "is gone and no local services hold it",
			      (unsigned long long)d->pool_id, d->pid);
	rv = map_pool(fd, d->pool_id, &p);
	if (rv) {
		close(fd);
		return rv;
	}
	*pool = publish(p);
	return DRAGON_OK;
}

DRAGON_API int dragon_pool_attach(const dragon_pool_desc_t *desc, dragon_pool_t **pool)
{
	struct dg_desc d;
	int rv;

	if (!pool)
		return dg_err(DRAGON_EINVAL, "dragon_pool_attach: pool is NULL");
	*pool = NULL;
	rv = dg_desc_unpack(desc ? desc->bytes : NULL, DG_DESC_POOL, &d);
	if (rv)
		return rv;
	return dg_pool_attach_from(&d, pool);
}

DRAGON_API int dragon_pool_detach(dragon_pool_t *pool)
{
	int last;

	if (!pool)
		return dg_err(DRAGON_EINVAL, "dragon_pool_detach: pool is NULL");
	pthread_mutex_lock(&table_lock);
	last = --pool->refs == 0;
	if (last)
		for (dragon_pool_t **pp = &table; *pp; pp = &(*pp)->next)
			if (*pp == pool) {
				*pp = pool->next;
				break;
			}
	pthread_mutex_unlock(&table_lock);
	if (last)
		unmap_pool(pool);
	return DRAGON_OK;
}

DRAGON_API int dragon_pool_destroy(dragon_pool_t *pool)
{
	if (!pool)
		return dg_err(DRAGON_EINVAL, "dragon_pool_destroy: pool is NULL");
	atomic_store(&pool->h->destroyed, 1);
	dg_wake_seq(&pool->h->free_seq, &pool->h->free_waiters);
	return dragon_pool_detach(pool);
}

void dg_pool_fill_desc(const dragon_pool_t *pool, struct dg_desc *d)
{
	memset(d, 0, sizeof(*d));
	d->uid = pool->h->uid;
	d->node = dg_local_node();
	d->pool_id = pool->id;
	d->pid = getpid();
	d->fd = pool->fd;
	d->map_size = pool->map_size;
}

DRAGON_API int dragon_pool_serialize(const dragon_pool_t *pool, dragon_pool_desc_t *desc)
{
	struct dg_desc d;

	if (!pool || !desc)
		return dg_err(DRAGON_EINVAL, "dragon_pool_serialize: NULL argument");
	dg_pool_fill_desc(pool, &d);
	d.kind = DG_DESC_POOL;
	dg_desc_pack(&d, desc->bytes);
	return DRAGON_OK;
}

DRAGON_API int dragon_pool_fd(const dragon_pool_t *pool)
{
	return pool ? pool->fd : -1;
}

DRAGON_API uint64_t dragon_pool_id(const dragon_pool_t *pool)
{
	return pool ? pool->id : 0;
}

void *dg_pool_ptr(const dragon_pool_t *pool, uint64_t offset, uint64_t size)
{
	uint64_t heap = pool->h->nblocks * BLOCK;

	if (offset > heap || size > heap - offset)
		return NULL;
	return pool->heap + offset;
}

/* --- the allocator: all below runs with h->lock held ------------------------------------- */

static int test_bit(const uint64_t *bm, uint64_t i)
{
	return (bm[i >> 6] >> (i & 63)) & 1;
}

static void set_range(uint64_t *bm, uint64_t i, uint64_t n, int on)
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
static uint64_t next_bit(const uint64_t *bm, uint64_t i, uint64_t end, int bit)
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
static int find_run(const uint64_t *bm, uint64_t from, uint64_t end, uint64_t n, uint64_t a,
		    uint64_t *at)
{
	uint64_t i = from;

	while (i < end) {
		uint64_t z = next_bit(bm, i, end, 0), o;

		z = (z + a - 1) / a * a;
		if (z >= end || end - z < n)
			return 0;
		if (z > 0 && z < end && test_bit(bm, z)) {
			i = z + 1;
			continue;
		}
		o = next_bit(bm, z, z + n, 1);
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
	for (uint64_t i = next_bit(p->bitmap, 0, nb, 1); i < nb; i = next_bit(p->bitmap, i, nb, 1)) {
		uint32_t n = p->sizes[i];

		if (n && n <= nb - i) {
			set_range(p->bitmap, i, n, 1);
			used += n;
			allocs++;
			i += n;
			continue;
		}
		p->sizes[i] = 0; /* a torn write: that allocation never completed */
		set_range(p->bitmap, i, 1, 0);
		i++;
	}
	h->used_blocks = used;
	h->nallocs = allocs;
	h->hint = 0;
}

static int pool_lock(dragon_pool_t *p)
{
	int recovered, rv = dg_robust_lock(&p->h->lock, &recovered);

	if (rv == DRAGON_OK && recovered)
		repair(p);
	return rv;
}

void dg_pool_test_die_holding_lock(dragon_pool_t *p, uint64_t n)
{
	pool_lock(p);
	set_range(p->bitmap, 0, n < p->h->nblocks ? n : p->h->nblocks, 1);
	p->h->used_blocks += n;
	_exit(0);
}

static void free_locked(dragon_pool_t *p, uint64_t blk, uint32_t n)
{
	struct pool_hdr *h = p->h;

	p->sizes[blk] = 0; /* the commit point of a free */
	atomic_thread_fence(memory_order_release); /* ... before the bits go (see repair) */
	atomic_store_explicit(&p->owners[blk], 0, memory_order_relaxed);
	set_range(p->bitmap, blk, n, 0);
	h->used_blocks -= n;
	h->nallocs--;
	if (blk < h->hint)
		h->hint = blk;
}

static int alloc_common(dragon_pool_t *pool, size_t size, size_t align, long timeout_us,
			uint32_t tag, dragon_mem_t *mem);

/* --- process records and owner tags (see the top of this file) ---------------------------- */

/* Free every allocation still tagged with tag (its process is dead); pool lock held. */
static uint64_t sweep_locked(dragon_pool_t *p, uint32_t tag)
{
	uint64_t freed = 0;

	uint64_t nb = p->h->nblocks;

	/* allocations start at set bits of the bitmap: skip the free space a word at a time */
	for (uint64_t i = next_bit(p->bitmap, 0, nb, 1); i < nb; i = next_bit(p->bitmap, i, nb, 1)) {
		uint32_t n = p->sizes[i];

		if (!n) {
			i++;
			continue;
		}
		if ((atomic_load_explicit(&p->owners[i], memory_order_relaxed) & ~CACHED) == tag) {
			free_locked(p, i, n);
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

	if (dg_proc_start(me, &start) != DRAGON_OK || pool_lock(p) != DRAGON_OK)
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
	return alloc_common(pool, size, 0, timeout_us, tag, mem);
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
	if (!nd || pool_lock(p) != DRAGON_OK)
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

	rv = pool_lock(p);
	if (rv)
		return rv;
	if (!find_run(p->bitmap, h->hint, h->nblocks, n, a, &at) &&
	    !find_run(p->bitmap, 0, h->nblocks, n, a, &at)) {
		pthread_mutex_unlock(&h->lock);
		return DRAGON_ENOSPACE;
	}
	/* Bitmap and owner first, size map last: the size entry is the commit point (see repair). */
	set_range(p->bitmap, at, n, 1);
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

/* --- the per-process cache (see CACHED above) --------------------------------------------- */

static pthread_once_t cache_exit_once = PTHREAD_ONCE_INIT;

/* At exit, cached runs go back to the shared heap (a killed process's go by the sweep). */
static void cache_exit(void)
{
	pthread_mutex_lock(&table_lock);
	for (dragon_pool_t *q = table; q; q = q->next)
		cache_flush(q);
	pthread_mutex_unlock(&table_lock);
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
			free_locked(p, b, n);
	}
}

static void cache_flush(dragon_pool_t *p)
{
	struct pool_cache *c;
	int any = 0;

	if (!p->cache || p->cache_pid != dg_self_pid() || !(c = cache_enter(p)))
		return;
	for (uint32_t n = 1; n <= CACHE_CLASSES; n++)
		any |= c->n[n] != 0;
	if (any && pool_lock(p) == DRAGON_OK) {
		for (uint32_t n = 1; n <= CACHE_CLASSES; n++)
			cache_drop_locked(p, c, n, CACHE_DEPTH);
		pthread_mutex_unlock(&p->h->lock);
		dg_wake_seq(&p->h->free_seq, &p->h->free_waiters);
	}
	cache_leave(p);
}

/* A run of n blocks from the cache, refilled under one lock when empty. */
static int cache_get(dragon_pool_t *p, uint64_t n, uint32_t tag, uint64_t *blk)
{
	struct pool_cache *c;
	uint32_t me;

	if (n > CACHE_CLASSES || !(me = dg_pool_self_tag(p)) || !(c = cache_enter(p)))
		return DRAGON_ENOSPACE;
	n = cache_class(n);
	if (!c->n[n] && pool_lock(p) == DRAGON_OK) {
		struct pool_hdr *h = p->h;
		uint64_t at;
		/* memory often flows one way (a producer allocates, a consumer frees): big batches
		 * amortize the lock on both sides */
		uint32_t refill = n <= 16 ? CACHE_REFILL : n <= 64 ? 8 : 2;
		for (uint32_t k = 0; k < refill && c->total + n <= CACHE_MAX_BLOCKS; k++) {
			if (!find_run(p->bitmap, h->hint, h->nblocks, n, 1, &at) &&
			    !find_run(p->bitmap, 0, h->nblocks, n, 1, &at))
				break;
			set_range(p->bitmap, at, n, 1);
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
static int cache_put(dragon_pool_t *p, uint64_t blk, size_t size)
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
		if (pool_lock(p) != DRAGON_OK) {
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

static int alloc_common(dragon_pool_t *pool, size_t size, size_t align, long timeout_us,
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
	if (a == 1 && cache_get(pool, n, tag, &blk) == DRAGON_OK)
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
			cache_flush(pool);
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

DRAGON_API int dragon_pool_alloc(dragon_pool_t *pool, size_t size, size_t align, dragon_mem_t *mem)
{
	return alloc_common(pool, size, align, 0, 0, mem);
}

DRAGON_API int dragon_pool_alloc_wait(dragon_pool_t *pool, size_t size, size_t align,
				      long timeout_us, dragon_mem_t *mem)
{
	return alloc_common(pool, size, align, timeout_us, 0, mem);
}

DRAGON_API int dragon_pool_free(dragon_mem_t *mem)
{
	dragon_pool_t *p;
	struct pool_hdr *h;
	uint64_t blk;
	uint32_t n;
	int rv;

	if (!mem || !mem->pool)
		return dg_err(DRAGON_EINVAL, "dragon_pool_free: NULL mem or pool");
	p = mem->pool;
	h = p->h;
	if (mem->offset % BLOCK || mem->offset / BLOCK >= h->nblocks)
		return dg_err(DRAGON_EINVAL, "offset %llu is not an allocation of pool %016llx",
			      (unsigned long long)mem->offset, (unsigned long long)p->id);
	blk = mem->offset / BLOCK;
	if (cache_put(p, blk, mem->size) == DRAGON_OK) {
		mem->ptr = NULL;
		mem->size = 0;
		return DRAGON_OK;
	}
	rv = pool_lock(p);
	if (rv)
		return rv;
	n = p->sizes[blk];
	if (!n || (uint64_t)n * BLOCK < mem->size ||
	    (atomic_load_explicit(&p->owners[blk], memory_order_relaxed) & CACHED)) {
		pthread_mutex_unlock(&h->lock);
		return dg_err(DRAGON_EINVAL, "offset %llu of pool %016llx is not allocated "
					     "(double free?)",
			      (unsigned long long)mem->offset, (unsigned long long)p->id);
	}
	free_locked(p, blk, n);
	pthread_mutex_unlock(&h->lock);
	dg_wake_seq(&h->free_seq, &h->free_waiters);
	mem->ptr = NULL;
	mem->size = 0;
	return DRAGON_OK;
}

DRAGON_API int dragon_pool_stats(const dragon_pool_t *pool, dragon_pool_stats_t *st)
{
	dragon_pool_t *p = (dragon_pool_t *)pool;
	struct pool_hdr *h;
	uint64_t best = 0, i = 0;
	int rv;

	if (!pool || !st)
		return dg_err(DRAGON_EINVAL, "dragon_pool_stats: NULL argument");
	h = p->h;
	cache_flush(p); /* our cached runs are free space; other processes' count as used */
	rv = pool_lock(p);
	if (rv)
		return rv;
	while (i < h->nblocks) {
		uint64_t z = next_bit(p->bitmap, i, h->nblocks, 0);
		uint64_t o = next_bit(p->bitmap, z, h->nblocks, 1);

		if (o - z > best)
			best = o - z;
		i = o + 1;
	}
	st->size = h->nblocks * BLOCK;
	st->used = h->used_blocks * BLOCK;
	st->free = st->size - st->used;
	st->largest_free = best * BLOCK;
	st->allocations = h->nallocs;
	pthread_mutex_unlock(&h->lock);
	return DRAGON_OK;
}

DRAGON_API int dragon_mem_serialize(const dragon_mem_t *mem, dragon_mem_desc_t *desc)
{
	struct dg_desc d;

	if (!mem || !mem->pool || !desc)
		return dg_err(DRAGON_EINVAL, "dragon_mem_serialize: NULL argument");
	dg_pool_fill_desc(mem->pool, &d);
	d.kind = DG_DESC_MEM;
	d.offset = mem->offset;
	d.size = mem->size;
	dg_desc_pack(&d, desc->bytes);
	return DRAGON_OK;
}

DRAGON_API int dragon_mem_attach(const dragon_mem_desc_t *desc, dragon_mem_t *mem)
{
	dragon_pool_t *p;
	struct dg_desc d;
	void *ptr;
	int rv;

	if (!mem)
		return dg_err(DRAGON_EINVAL, "dragon_mem_attach: mem is NULL");
	rv = dg_desc_unpack(desc ? desc->bytes : NULL, DG_DESC_MEM, &d);
	if (rv)
		return rv;
	rv = dg_pool_attach_from(&d, &p);
	if (rv)
		return rv;
	ptr = dg_pool_ptr(p, d.offset, d.size);
	if (!ptr) {
		dragon_pool_detach(p);
		return dg_err(DRAGON_EBADDESC, "allocation %llu+%llu lies outside its pool",
			      (unsigned long long)d.offset, (unsigned long long)d.size);
	}
	mem->pool = p;
	mem->offset = d.offset;
	mem->size = d.size;
	mem->ptr = ptr;
	return DRAGON_OK;
}
