/* runtime/core/pool.c: memfd-backed shared-memory pools: create, attach (once per process), detach, destroy, descriptors; the public allocate and free. */
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

/* Attached pools of this process, so that a pool is mapped once however often it is attached. */
pthread_mutex_t dg_pool_table_lock = PTHREAD_MUTEX_INITIALIZER;
struct dragon_pool *dg_pool_table;
static dg_pool_fd_provider_fn fd_provider;
static void *fd_provider_arg;

void dg_pool_set_fd_provider(dg_pool_fd_provider_fn fn, void *arg)
{
	pthread_mutex_lock(&dg_pool_table_lock);
	fd_provider = fn;
	fd_provider_arg = arg;
	pthread_mutex_unlock(&dg_pool_table_lock);
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
	/*
	 * Say which of these it is: they have different causes and different fixes. A layout of
	 * another version means that the pool's creator (often local services, which make the
	 * node's pool) comes from another build of Dragon than this library: every later attach
	 * would fail the same way.
	 */
	if (h->magic != POOL_MAGIC) {
		munmap(base, st.st_size);
		return dg_err(DRAGON_ESTALE, "file descriptor %d is not a Dragon pool (no pool header)",
			      fd);
	}
	if (h->version != POOL_VERSION) {
		uint32_t v = h->version;
		uint64_t id = h->pool_id;
		munmap(base, st.st_size);
		return dg_err(DRAGON_ENOTSUP, "pool %016llx has layout version %u and this library reads "
					      "version %u: its creator (the fabric's local services, or the "
					      "process that made it) runs another build of Dragon; run every "
					      "part of the fabric from one build or installation",
			      (unsigned long long)(expect_id ? expect_id : id), v, POOL_VERSION);
	}
	if (expect_id && h->pool_id != expect_id) {
		uint64_t other = h->pool_id;
		munmap(base, st.st_size);
		return dg_err(DRAGON_ESTALE, "file descriptor %d holds the pool %016llx, not the pool "
					     "%016llx that was asked for",
			      fd, (unsigned long long)other, (unsigned long long)expect_id);
	}
	if (h->map_size != (uint64_t)st.st_size) {
		uint64_t want = h->map_size, id = h->pool_id;
		munmap(base, st.st_size);
		return dg_err(DRAGON_ESTALE, "pool %016llx is %lld bytes but its header says %llu: it was "
					     "resized by something other than Dragon",
			      (unsigned long long)id, (long long)st.st_size,
			      (unsigned long long)want);
	}
	if (atomic_load(&h->destroyed)) {
		uint64_t id = h->pool_id; /* read before the unmap */
		munmap(base, st.st_size);
		return dg_err(DRAGON_ESTALE, "pool %016llx was destroyed", (unsigned long long)id);
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


static void unmap_pool(dragon_pool_t *p)
{
	dg_pool_cache_flush(p);
	free(p->cache);
	munmap(p->h, p->map_size);
	close(p->fd);
	free(p);
}

/* Insert into the table, or return the entry another thread put there first (p is then freed). */
static dragon_pool_t *publish(dragon_pool_t *p)
{
	pthread_mutex_lock(&dg_pool_table_lock);
	for (dragon_pool_t *q = dg_pool_table; q; q = q->next) {
		if (q->id == p->id) {
			q->refs++;
			pthread_mutex_unlock(&dg_pool_table_lock);
			unmap_pool(p);
			return q;
		}
	}
	p->next = dg_pool_table;
	dg_pool_table = p;
	pthread_mutex_unlock(&dg_pool_table_lock);
	return p;
}

static dragon_pool_t *find_ref(uint64_t id)
{
	dragon_pool_t *q;

	pthread_mutex_lock(&dg_pool_table_lock);
	for (q = dg_pool_table; q; q = q->next)
		if (q->id == id) {
			q->refs++;
			break;
		}
	pthread_mutex_unlock(&dg_pool_table_lock);
	return q;
}

uint32_t dg_pool_layout(void)
{
	return POOL_VERSION;
}

void dg_pool_ref(dragon_pool_t *pool)
{
	pthread_mutex_lock(&dg_pool_table_lock);
	pool->refs++;
	pthread_mutex_unlock(&dg_pool_table_lock);
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
	pthread_mutex_lock(&dg_pool_table_lock);
	prov = fd_provider;
	arg = fd_provider_arg;
	pthread_mutex_unlock(&dg_pool_table_lock);
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
	pthread_mutex_lock(&dg_pool_table_lock);
	last = --pool->refs == 0;
	if (last)
		for (dragon_pool_t **pp = &dg_pool_table; *pp; pp = &(*pp)->next)
			if (*pp == pool) {
				*pp = pool->next;
				break;
			}
	pthread_mutex_unlock(&dg_pool_table_lock);
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

DRAGON_API int dragon_pool_alloc(dragon_pool_t *pool, size_t size, size_t align, dragon_mem_t *mem)
{
	return dg_pool_alloc_common(pool, size, align, 0, 0, mem);
}

DRAGON_API int dragon_pool_alloc_wait(dragon_pool_t *pool, size_t size, size_t align,
				      long timeout_us, dragon_mem_t *mem)
{
	return dg_pool_alloc_common(pool, size, align, timeout_us, 0, mem);
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
	if (dg_pool_cache_put(p, blk, mem->size) == DRAGON_OK) {
		mem->ptr = NULL;
		mem->size = 0;
		return DRAGON_OK;
	}
	rv = dg_pool_lock(p);
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
	dg_pool_free_locked(p, blk, n);
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
	dg_pool_cache_flush(p); /* our cached runs are free space; other processes' count as used */
	rv = dg_pool_lock(p);
	if (rv)
		return rv;
	while (i < h->nblocks) {
		uint64_t z = dg_pool_next_bit(p->bitmap, i, h->nblocks, 0);
		uint64_t o = dg_pool_next_bit(p->bitmap, z, h->nblocks, 1);

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
