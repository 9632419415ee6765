/* runtime/ddict/store.c: a manager's shard: a chained hash table in the manager's pool, readable in place by processes of its node. */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "core/err.h"
#include "ddict/dd.h"

#define INITIAL_BUCKETS 1024u
#define INLINE_MAX 4096u /* larger values get an allocation of their own */
#define BLK 64u          /* the pool's allocation unit: what an allocation really holds */

static uint64_t round_blk(uint64_t n)
{
	return (n + BLK - 1) / BLK * BLK;
}

/* What an entry holds of the pool, counted against the budget. */
static uint64_t charge(size_t klen, size_t vlen, int separate)
{
	if (separate)
		return round_blk(sizeof(struct dd_entry) + klen) + round_blk(vlen ? vlen : 1);
	return round_blk(sizeof(struct dd_entry) + klen + vlen);
}

uint64_t dd_charge(size_t klen, size_t vlen)
{
	return charge(klen, vlen, vlen > INLINE_MAX);
}

DRAGON_API uint64_t dragon_ddict_hash(const void *key, size_t klen)
{
	unsigned char h[8];
	uint64_t v = 0;

	/* libsodium's generichash is BLAKE2b: Python gets the same from hashlib.blake2b. */
	crypto_generichash(h, sizeof(h), key, klen, NULL, 0);
	for (int i = 7; i >= 0; i--)
		v = v << 8 | h[i];
	return v;
}

static uint64_t *buckets(const struct dd_shard *s)
{
	return (uint64_t *)(s->base + s->h->buckets_off);
}

/* Bucket of a hash: the bits above those that chose the manager, so a shard's keys spread. */
static uint64_t bucket_of(const struct dd_shard *s, uint64_t hash)
{
	uint64_t n = s->h->nmanagers ? s->h->nmanagers : 1;
	return (hash / n) & (s->h->nbuckets - 1);
}

static void note_span(struct dd_shard *s, const dragon_mem_t *m)
{
	if (m->offset + m->size > s->h->span)
		s->h->span = m->offset + m->size;
}

static dragon_mem_t mem_at(const struct dd_shard *s, uint64_t off, size_t size)
{
	dragon_mem_t m = { s->pool, off, size, s->base + off };
	return m;
}

int dd_shard_create(dragon_pool_t *pool, uint64_t budget, unsigned index, unsigned nmanagers,
		    struct dd_shard *s)
{
	dragon_mem_t b;
	int rc;

	memset(s, 0, sizeof(*s));
	s->pool = pool;
	rc = dragon_pool_alloc(pool, sizeof(struct dd_shard_hdr), 0, &s->hdr_mem);
	if (rc)
		return rc;
	s->h = s->hdr_mem.ptr;
	s->base = (unsigned char *)s->hdr_mem.ptr - s->hdr_mem.offset;
	memset(s->h, 0, sizeof(*s->h));
	dragon_pool_stats_t st;
	if ((rc = dragon_pool_stats(pool, &st))) {
		dragon_pool_free(&s->hdr_mem);
		return rc;
	}
	s->size = st.size;
	rc = dragon_pool_alloc(pool, INITIAL_BUCKETS * sizeof(uint64_t), 0, &b);
	if (rc) {
		dragon_pool_free(&s->hdr_mem);
		return rc;
	}
	memset(b.ptr, 0, b.size);
	s->h->version = 1;
	s->h->nbuckets = INITIAL_BUCKETS;
	s->h->buckets_off = b.offset;
	s->h->budget = budget;
	s->h->index = index;
	s->h->nmanagers = nmanagers;
	note_span(s, &s->hdr_mem);
	note_span(s, &b);
	__atomic_store_n(&s->h->magic, DD_SHARD_MAGIC, __ATOMIC_RELEASE);
	return DRAGON_OK;
}

void dd_shard_free(struct dd_shard *s)
{
	if (!s->h)
		return;
	dd_shard_clear(s);
	dragon_mem_t b = mem_at(s, s->h->buckets_off, s->h->nbuckets * sizeof(uint64_t));
	dragon_pool_free(&b);
	dragon_pool_free(&s->hdr_mem);
	s->h = NULL;
}

int dd_shard_view(const dragon_mem_desc_t *hdr, struct dd_shard *s)
{
	int rc;

	memset(s, 0, sizeof(*s));
	rc = dragon_mem_attach(hdr, &s->hdr_mem);
	if (rc)
		return rc;
	if (s->hdr_mem.size < sizeof(struct dd_shard_hdr) ||
	    __atomic_load_n(&((struct dd_shard_hdr *)s->hdr_mem.ptr)->magic, __ATOMIC_ACQUIRE) !=
		    DD_SHARD_MAGIC) {
		dragon_pool_detach(s->hdr_mem.pool);
		return dg_err(DRAGON_EBADDESC, "the allocation is not a dictionary shard");
	}
	s->pool = s->hdr_mem.pool;
	s->h = s->hdr_mem.ptr;
	s->base = (unsigned char *)s->hdr_mem.ptr - s->hdr_mem.offset;
	dragon_pool_stats_t st;
	if ((rc = dragon_pool_stats(s->pool, &st))) {
		dragon_pool_detach(s->pool);
		return rc;
	}
	s->size = st.size;
	return DRAGON_OK;
}

/* An entry at off, if it lies whole inside the shard (a reader may see anything). */
static struct dd_entry *entry_at(const struct dd_shard *s, uint64_t off)
{
	uint64_t span = s->h->span;
	struct dd_entry *e;

	if (!off || off % 8 || off > span || span - off < sizeof(struct dd_entry))
		return NULL;
	e = (struct dd_entry *)(s->base + off);
	if (e->klen > span - off - sizeof(struct dd_entry))
		return NULL;
	return e;
}

const unsigned char *dd_shard_value(const struct dd_shard *s, const struct dd_entry *e)
{
	uint64_t span = s->h->span;

	if (e->val_off > span || e->vlen > span - e->val_off)
		return NULL;
	return s->base + e->val_off;
}

int dd_shard_find(const struct dd_shard *s, uint64_t hash, const void *key, size_t klen,
		  struct dd_entry **out)
{
	uint64_t nb = s->h->nbuckets, boff = s->h->buckets_off, span = s->h->span;
	unsigned hops = 0;

	if (!nb || nb & (nb - 1) || boff > span || nb > (span - boff) / sizeof(uint64_t))
		return dg_err(DRAGON_EBADDESC, "shard table out of bounds");
	for (struct dd_entry *e = entry_at(s, buckets(s)[bucket_of(s, hash)]); e;
	     e = entry_at(s, e->next)) {
		if (e->hash == hash && e->klen == klen && (!klen || !memcmp(e->key, key, klen))) {
			*out = e;
			return DRAGON_OK;
		}
		if (++hops > s->h->count + 1) /* a cycle: only a torn read makes one */
			break;
	}
	return DRAGON_ENOTFOUND;
}

/* Unlink and free the entry of key; charge returned. */
static int remove_entry(struct dd_shard *s, uint64_t hash, const void *key, size_t klen)
{
	uint64_t *link = &buckets(s)[bucket_of(s, hash)];

	while (*link) {
		struct dd_entry *e = (struct dd_entry *)(s->base + *link);
		if (e->hash == hash && e->klen == klen && (!klen || !memcmp(e->key, key, klen))) {
			uint64_t off = *link;
			int sep = e->flags & DD_ENT_SEPARATE;
			*link = e->next;
			s->h->used -= charge(e->klen, e->vlen, sep);
			s->h->count--;
			if (sep) {
				dragon_mem_t v = mem_at(s, e->val_off, 1);
				dragon_pool_free(&v);
			}
			dragon_mem_t m = mem_at(s, off, 1);
			dragon_pool_free(&m);
			return DRAGON_OK;
		}
		link = &e->next;
	}
	return DRAGON_ENOTFOUND;
}

/* Double the table when it holds more keys than buckets (best effort: a full pool keeps it). */
static void maybe_grow(struct dd_shard *s)
{
	uint64_t nb = s->h->nbuckets, *old = buckets(s), *nw;
	dragon_mem_t m, o;

	if (s->h->count <= nb || nb >= (1ull << 32))
		return;
	if (dragon_pool_alloc(s->pool, 2 * nb * sizeof(uint64_t), 0, &m))
		return;
	note_span(s, &m);
	nw = m.ptr;
	memset(nw, 0, 2 * nb * sizeof(uint64_t));
	o = mem_at(s, s->h->buckets_off, 1);
	s->h->nbuckets = 2 * nb;
	for (uint64_t i = 0; i < nb; i++) {
		uint64_t off = old[i];
		while (off) {
			struct dd_entry *e = (struct dd_entry *)(s->base + off);
			uint64_t next = e->next, b = bucket_of(s, e->hash);
			e->next = nw[b];
			nw[b] = off;
			off = next;
		}
	}
	s->h->buckets_off = m.offset;
	dragon_pool_free(&o);
}

int dd_shard_put(struct dd_shard *s, uint64_t hash, const void *key, size_t klen, const void *val,
		 size_t vlen, dragon_mem_t *vmem)
{
	int separate = vmem || vlen > INLINE_MAX;
	uint64_t need = charge(klen, vlen, separate), freed = 0;
	struct dd_entry *old = NULL, *e;
	dragon_mem_t em, vm;
	int rc;

	if (klen > DD_KEY_MAX)
		return dg_err(DRAGON_ETOOBIG, "key of %zu bytes (at most %u)", klen, DD_KEY_MAX);
	if (dd_shard_find(s, hash, key, klen, &old) == DRAGON_OK)
		freed = charge(old->klen, old->vlen, old->flags & DD_ENT_SEPARATE);
	if (s->h->used - freed + need > s->h->budget)
		return dg_err(DRAGON_ENOSPACE,
			      "manager %u: %llu of %llu bytes used, the put needs %llu more",
			      s->h->index, (unsigned long long)s->h->used,
			      (unsigned long long)s->h->budget,
			      (unsigned long long)(need > freed ? need - freed : 0));
	/* Allocate everything before touching the table: a failure leaves it as it was. */
	rc = dragon_pool_alloc(s->pool, sizeof(struct dd_entry) + klen + (separate ? 0 : vlen), 8,
			       &em);
	if (rc)
		goto nospace;
	if (separate && !vmem) {
		rc = dragon_pool_alloc(s->pool, vlen ? vlen : 1, 0, &vm);
		if (rc) {
			dragon_pool_free(&em);
			goto nospace;
		}
		memcpy(vm.ptr, val, vlen);
		note_span(s, &vm);
	} else if (vmem) {
		vm = *vmem;
		note_span(s, &vm);
	}
	note_span(s, &em);
	e = em.ptr;
	e->hash = hash;
	e->klen = (uint32_t)klen;
	e->vlen = vlen;
	e->flags = separate ? DD_ENT_SEPARATE : 0;
	if (klen) /* an empty key may come as NULL: memcpy's arguments must not be */
		memcpy(e->key, key, klen);
	if (separate) {
		e->val_off = vm.offset;
	} else {
		e->val_off = em.offset + sizeof(struct dd_entry) + klen;
		if (vlen)
			memcpy(e->key + klen, val, vlen);
	}
	if (old)
		remove_entry(s, hash, key, klen);
	uint64_t *b = &buckets(s)[bucket_of(s, hash)];
	e->next = *b;
	*b = em.offset;
	s->h->count++;
	s->h->used += need;
	maybe_grow(s);
	return DRAGON_OK;
nospace:
	return dg_err(DRAGON_ENOSPACE,
		      "manager %u: its pool is full (%llu of %llu budget bytes used) for %zu more",
		      s->h->index, (unsigned long long)s->h->used, (unsigned long long)s->h->budget,
		      klen + vlen);
}

int dd_shard_del(struct dd_shard *s, uint64_t hash, const void *key, size_t klen)
{
	return remove_entry(s, hash, key, klen);
}

void dd_shard_clear(struct dd_shard *s)
{
	uint64_t *b = buckets(s);

	for (uint64_t i = 0; i < s->h->nbuckets; i++) {
		while (b[i]) {
			struct dd_entry *e = (struct dd_entry *)(s->base + b[i]);
			uint64_t off = b[i];
			b[i] = e->next;
			if (e->flags & DD_ENT_SEPARATE) {
				dragon_mem_t v = mem_at(s, e->val_off, 1);
				dragon_pool_free(&v);
			}
			dragon_mem_t m = mem_at(s, off, 1);
			dragon_pool_free(&m);
		}
	}
	s->h->count = 0;
	s->h->used = 0;
}

int dd_shard_keys(const struct dd_shard *s, uint64_t *cursor, dd_key_fn fn, void *arg)
{
	uint64_t *b = buckets(s);
	uint64_t i;

	/* Whole buckets only, so that the cursor (a bucket number) never splits one. */
	for (i = *cursor; i < s->h->nbuckets; i++) {
		int full = 0;
		for (uint64_t off = b[i]; off; off = ((struct dd_entry *)(s->base + off))->next)
			full |= fn(arg, (struct dd_entry *)(s->base + off));
		if (full) {
			i++;
			break;
		}
	}
	*cursor = i >= s->h->nbuckets ? UINT64_MAX : i;
	return DRAGON_OK;
}
