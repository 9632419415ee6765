/* runtime/ddict/dd.h: internals of the distributed dictionary shared by the client library, the manager and the tests. */
#ifndef DRAGON_RUNTIME_DDICT_DD_H
#define DRAGON_RUNTIME_DDICT_DD_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/dragon.h>
#include <dragon/ddict.h>

#include "ddict/ddict.pb-c.h"

/* ---- the shard store: a hash table living in the manager's pool --------------------------- */

#define DD_SHARD_MAGIC 0x4444534841524431ull /* "DDSHARD1" */

/*
 * The shard's header, an allocation of the pool. Everything else is found through offsets from
 * the pool's base, so that processes of the node that map the pool (frozen gets) read the same
 * table without the manager. Only the manager writes; readers trust nothing they read: every
 * offset is checked against `span` before it is followed.
 */
struct dd_shard_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t frozen;       /* 1: read-only, readers may use the table directly */
	uint64_t gen;          /* bumped by freeze/unfreeze: a reader checks it did not change */
	uint64_t nbuckets;     /* power of two */
	uint64_t buckets_off;  /* offset of uint64_t[nbuckets]: first entry of each bucket, 0 = none */
	uint64_t count;        /* keys */
	uint64_t used;         /* bytes counted against the budget */
	uint64_t budget;
	uint64_t span;         /* no valid offset reaches past it */
	uint32_t index, nmanagers;
};

enum { DD_ENT_SEPARATE = 1 }; /* the value is an allocation of its own (not after the key) */

struct dd_entry {
	uint64_t next;    /* offset of the next entry of the bucket, 0 = none */
	uint64_t hash;
	uint64_t val_off; /* offset of the value */
	uint64_t vlen;
	uint32_t klen;
	uint32_t flags;   /* DD_ENT_* */
	unsigned char key[];
};

/* What a put of klen + vlen bytes charges against the budget: the pool bytes its entry holds. */
uint64_t dd_charge(size_t klen, size_t vlen);

struct dd_shard {
	dragon_pool_t *pool;
	dragon_mem_t hdr_mem;
	struct dd_shard_hdr *h;
	unsigned char *base; /* the pool's address 0 in this process */
	uint64_t size;       /* bytes of the pool's heap (read once: dragon_pool_stats scans) */
};

int dd_shard_create(dragon_pool_t *pool, uint64_t budget, unsigned index, unsigned nmanagers,
		    struct dd_shard *s);
void dd_shard_free(struct dd_shard *s);
/* Attach a shard read-only from its header's allocation descriptor (frozen readers). */
int dd_shard_view(const dragon_mem_desc_t *hdr, struct dd_shard *s);
/* Find key; *e is its entry (pointer into the pool). DRAGON_ENOTFOUND if absent. */
int dd_shard_find(const struct dd_shard *s, uint64_t hash, const void *key, size_t klen,
		  struct dd_entry **e);
/* The value of an entry, or NULL if its offsets point outside the shard. */
const unsigned char *dd_shard_value(const struct dd_shard *s, const struct dd_entry *e);
/*
 * Store key -> val (copied). With vmem (not NULL), the value is that allocation of the shard's
 * pool, taken over on success (zero-copy put). DRAGON_ENOSPACE past the budget or when the pool
 * is full: then nothing changed.
 */
int dd_shard_put(struct dd_shard *s, uint64_t hash, const void *key, size_t klen, const void *val,
		 size_t vlen, dragon_mem_t *vmem);
int dd_shard_del(struct dd_shard *s, uint64_t hash, const void *key, size_t klen);
void dd_shard_clear(struct dd_shard *s);
/* Visit keys from bucket *cursor on, at most max_bytes of keys (at least one key); *cursor is
 * where to go on, UINT64_MAX at the end. */
typedef int (*dd_key_fn)(void *arg, const struct dd_entry *e);
int dd_shard_keys(const struct dd_shard *s, uint64_t *cursor, dd_key_fn fn, void *arg);
/* Offset of p, a pointer into the shard's pool. */
static inline uint64_t dd_off(const struct dd_shard *s, const void *p)
{
	return (uint64_t)((const unsigned char *)p - s->base);
}

/* ---- persistence ---------------------------------------------------------------------------- */

/* DIR/ddict-<index>-of-<n>.shard */
void dd_shard_path(const char *dir, unsigned index, unsigned n, char *out, size_t cap);
int dd_shard_save(const struct dd_shard *s, const char *path);
/* Replace the shard's contents with the file's; the file is checked whole before anything changes. */
int dd_shard_load(struct dd_shard *s, const char *path);

/* ---- messages: [payload][packed protobuf][u32 length of the protobuf, little-endian] ------- */

enum dd_op {
	DD_OP_PUT = 1,
	DD_OP_GET = 2,
	DD_OP_POP = 3,
	DD_OP_DEL = 4,
	DD_OP_CONTAINS = 5,
	DD_OP_LEN = 6,
	DD_OP_CLEAR = 7,
	DD_OP_KEYS = 8,
	DD_OP_BATCH = 9,
	DD_OP_WAIT = 10,
	DD_OP_FETCH_ADD = 11,
	DD_OP_FREEZE = 12,
	DD_OP_UNFREEZE = 13,
	DD_OP_PERSIST = 14,
	DD_OP_RESTORE = 15,
	DD_OP_SHUTDOWN = 16,
	DD_OP_STATS = 17,
	DD_OP_MAX
};

#define DD_MSG_MAX (1u << 30)
#define DD_KEY_MAX (1u << 20)

/* Encode header + payload into one malloc'd buffer. */
int dd_encode(const ProtobufCMessage *m, const void *payload, size_t plen, unsigned char **out,
	      size_t *len);
/* Size of an encoding, and encoding into a buffer of that size (payload copied by the caller). */
size_t dd_encoded_size(const ProtobufCMessage *m, size_t plen);
void dd_encode_into(const ProtobufCMessage *m, size_t plen, unsigned char *buf, size_t len);
/* Split msg; *payload points into msg. DRAGON_EPROTO with a reason for anything malformed. */
int dd_decode_req(const void *msg, size_t len, DdReq **req, const unsigned char **payload,
		  size_t *plen);
int dd_decode_rep(const void *msg, size_t len, DdRep **rep, const unsigned char **payload,
		  size_t *plen);

/* ---- the manager's request handling, apart from its channels (fuzzed as is) ----------------- */

struct dd_waiter;
struct dd_server {
	struct dd_shard shard;
	unsigned node;
	int stop;
	/* send a reply to the channel described by desc (64 bytes) */
	void (*reply)(void *arg, const unsigned char *desc, const void *msg, size_t len);
	void *reply_arg;
	struct dd_waiter *waiters;
	unsigned nwaiters;
	char name[64]; /* "manager 3 (node 1)" for messages */
	/*
	 * 0 refuses requests that reach beyond the message: files (persist, restore) and values
	 * handed over as allocations of the pool (the fuzzer's setting: its bytes must not name
	 * files or claim pool memory). The manager sets 1.
	 */
	int trusted;
};

/* Handle one request message (any bytes). */
void dd_serve(struct dd_server *s, const void *msg, size_t len);
/* Time out waiters whose deadline passed; returns ms until the next deadline (-1: none). */
long dd_serve_expire(struct dd_server *s);

/* ---- what a manager publishes (under the name "ddict.<id>.<index>") ------------------------ */

#define DD_MINFO_MAGIC 0x44444d31u /* "DDM1" */
struct dd_minfo {
	uint32_t magic, index, node, pid;
	unsigned char chan[DRAGON_DESC_SIZE]; /* its request channel */
	unsigned char hdr[DRAGON_DESC_SIZE];  /* its shard header's allocation */
};

/* The dictionary's descriptor: this header, then `managers` dd_minfo (or none: look them up). */
#define DD_DESC_MAGIC 0x44444431u /* "DDD1" */
struct dd_desc {
	uint32_t magic, managers;
	uint64_t id, budget;
	uint32_t flags, with_info;
};

void dd_manager_name(uint64_t id, unsigned index, char *out, size_t cap);

/* wait_for_key calls manager m holds now (for tests that must put only once a wait began). */
int dd_manager_waiters(dragon_ddict_t *d, unsigned m, uint64_t *n);

/* monotonic milliseconds */
int64_t dd_now_ms(void);

#endif
