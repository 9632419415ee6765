/* runtime/ddict/serve.c: what a manager does with one request: decode, check every field, apply it to the shard, answer. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ddict/dd.h"

/* Values at least this large are answered to a client of the manager's node through the pool. */
#define MEM_REPLY_MIN 1024u
#define KEYS_CHUNK (64u * 1024)
#define MAX_WAITERS 4096u

struct dd_waiter {
	unsigned char reply[DRAGON_DESC_SIZE];
	uint64_t seq, hash;
	int64_t deadline; /* -1: none */
	size_t klen;
	unsigned char *key;
};

static void send_rep(struct dd_server *s, const unsigned char *desc, DdRep *rep,
		     const void *payload, size_t plen)
{
	unsigned char *buf;
	size_t len;

	rep->vlen = plen;
	if (dd_encode(&rep->base, payload, plen, &buf, &len))
		return; /* out of memory: the asker times out */
	s->reply(s->reply_arg, desc, buf, len);
	free(buf);
}

static void answer(struct dd_server *s, const unsigned char *desc, uint64_t seq, int rc,
		   const char *msg)
{
	DdRep rep = DD_REP__INIT;

	rep.seq = seq;
	rep.rc = rc;
	if (rc && msg)
		rep.msg = (char *)msg;
	send_rep(s, desc, &rep, NULL, 0);
}

/* An error answer whose text is the thread's last detail, prefixed with the manager's name. */
static void fail(struct dd_server *s, const unsigned char *desc, uint64_t seq, int rc)
{
	char m[600];

	snprintf(m, sizeof(m), "%s: %s", s->name, dragon_errmsg());
	answer(s, desc, seq, rc, m);
}

static int frozen_refuse(struct dd_server *s, const unsigned char *desc, uint64_t seq)
{
	if (!s->shard.h->frozen)
		return 0;
	dg_err(DRAGON_EPERM, "the dictionary is frozen (read-only): unfreeze it to write");
	fail(s, desc, seq, DRAGON_EPERM);
	return 1;
}

/* Answer the waiters of a key that now exists. */
static void wake_waiters(struct dd_server *s, uint64_t hash, const void *key, size_t klen)
{
	for (unsigned i = 0; i < s->nwaiters;) {
		struct dd_waiter *w = &s->waiters[i];
		if (w->hash == hash && w->klen == klen && (!klen || !memcmp(w->key, key, klen))) {
			answer(s, w->reply, w->seq, DRAGON_OK, NULL);
			free(w->key);
			s->waiters[i] = s->waiters[--s->nwaiters];
			continue;
		}
		i++;
	}
}

long dd_serve_expire(struct dd_server *s)
{
	int64_t now = dd_now_ms();
	long next = -1;

	for (unsigned i = 0; i < s->nwaiters;) {
		struct dd_waiter *w = &s->waiters[i];
		if (w->deadline >= 0 && w->deadline <= now) {
			char m[160];
			snprintf(m, sizeof(m), "%s: the key did not appear in time", s->name);
			answer(s, w->reply, w->seq, DRAGON_ETIMEDOUT, m);
			free(w->key);
			s->waiters[i] = s->waiters[--s->nwaiters];
			continue;
		}
		if (w->deadline >= 0 && (next < 0 || w->deadline - now < next))
			next = (long)(w->deadline - now);
		i++;
	}
	return next;
}

/* Reply with a value: through the pool for a large value and an asker on this node. */
static void reply_value(struct dd_server *s, const DdReq *q, const struct dd_entry *e)
{
	const unsigned char *v = dd_shard_value(&s->shard, e);
	DdRep rep = DD_REP__INIT;
	dragon_mem_t m;

	rep.seq = q->seq;
	if (q->node == s->node && e->vlen >= MEM_REPLY_MIN &&
	    dragon_pool_alloc(s->shard.pool, e->vlen, 0, &m) == DRAGON_OK) {
		memcpy(m.ptr, v, e->vlen);
		rep.mem_off = m.offset;
		rep.mem_len = e->vlen;
		send_rep(s, q->reply.data, &rep, NULL, 0);
		/* The asker frees it; if the asker is gone, it stays until the pool goes. */
		return;
	}
	send_rep(s, q->reply.data, &rep, v, e->vlen);
}

struct keys_acc {
	ProtobufCBinaryData *k;
	size_t n, cap, bytes;
};

static int add_key(void *arg, const struct dd_entry *e)
{
	struct keys_acc *a = arg;

	if (a->n == a->cap) {
		size_t nc = a->cap ? 2 * a->cap : 64;
		ProtobufCBinaryData *nk = realloc(a->k, nc * sizeof(*nk));
		if (!nk)
			return 1;
		a->k = nk;
		a->cap = nc;
	}
	a->k[a->n].data = (uint8_t *)e->key;
	a->k[a->n].len = e->klen;
	a->n++;
	a->bytes += e->klen + 8;
	return a->bytes >= KEYS_CHUNK;
}

static int put_one(struct dd_server *s, const void *key, size_t klen, const void *val,
		   size_t vlen, dragon_mem_t *vmem)
{
	uint64_t h = dragon_ddict_hash(key, klen);
	int rc = dd_shard_put(&s->shard, h, key, klen, val, vlen, vmem);

	if (!rc && s->nwaiters)
		wake_waiters(s, h, key, klen);
	return rc;
}

static void do_put(struct dd_server *s, const DdReq *q, const unsigned char *pl, size_t plen)
{
	if (q->mem_len || q->mem_off) {
		/*
		 * Zero-copy: the value is an allocation of our pool that the asker filled. Only its
		 * bounds can be checked here (the pool has no call saying whether an offset is a live
		 * allocation), so a process of the node naming a wrong one harms the shard as much
		 * as writing into the pool would; hence untrusted servers refuse it.
		 */
		if (!s->trusted) {
			dg_err(DRAGON_ENOTSUP, "put by allocation is not accepted here");
			fail(s, q->reply.data, q->seq, DRAGON_ENOTSUP);
			return;
		}
		uint64_t size = s->shard.size;
		dragon_mem_t m;
		if (plen || q->mem_off % 64 || q->mem_off >= size || q->mem_len > size - q->mem_off ||
		    !q->mem_len) {
			dg_err(DRAGON_EINVAL, "put: allocation %llu+%llu is not in the manager's pool",
			       (unsigned long long)q->mem_off, (unsigned long long)q->mem_len);
			fail(s, q->reply.data, q->seq, DRAGON_EINVAL);
			return;
		}
		m.pool = s->shard.pool;
		m.offset = q->mem_off;
		m.size = q->mem_len;
		m.ptr = s->shard.base + q->mem_off;
		int rc = put_one(s, q->key.data, q->key.len, NULL, q->mem_len, &m);
		if (rc) {
			int keep = rc;
			char msg[600];
			snprintf(msg, sizeof(msg), "%s", dragon_errmsg());
			dragon_pool_free(&m);
			dg_err(keep, "%s", msg);
			fail(s, q->reply.data, q->seq, keep);
			return;
		}
		answer(s, q->reply.data, q->seq, DRAGON_OK, NULL);
		return;
	}
	if (q->vlen != plen) {
		dg_err(DRAGON_EPROTO, "put announces %llu value bytes, carries %zu",
		       (unsigned long long)q->vlen, plen);
		fail(s, q->reply.data, q->seq, DRAGON_EPROTO);
		return;
	}
	int rc = put_one(s, q->key.data, q->key.len, pl, plen, NULL);
	if (rc)
		fail(s, q->reply.data, q->seq, rc);
	else
		answer(s, q->reply.data, q->seq, DRAGON_OK, NULL);
}

static void do_batch(struct dd_server *s, const DdReq *q, const unsigned char *pl, size_t plen)
{
	size_t pos = 0;
	DdRep rep = DD_REP__INIT;

	if (q->n_keys != q->n_vlens) {
		dg_err(DRAGON_EPROTO, "batch of %zu keys and %zu lengths", q->n_keys, q->n_vlens);
		fail(s, q->reply.data, q->seq, DRAGON_EPROTO);
		return;
	}
	for (size_t i = 0; i < q->n_keys; i++) {
		if (q->vlens[i] > plen - pos) {
			dg_err(DRAGON_EPROTO, "batch: value %zu runs past the payload", i);
			fail(s, q->reply.data, q->seq, DRAGON_EPROTO);
			return;
		}
		pos += q->vlens[i];
	}
	if (pos != plen) {
		dg_err(DRAGON_EPROTO, "batch: values take %zu of %zu payload bytes", pos, plen);
		fail(s, q->reply.data, q->seq, DRAGON_EPROTO);
		return;
	}
	pos = 0;
	for (size_t i = 0; i < q->n_keys; i++) {
		int rc = put_one(s, q->keys[i].data, q->keys[i].len, pl + pos, q->vlens[i], NULL);
		if (rc) {
			char m[700];
			snprintf(m, sizeof(m), "%s: batch item %zu of %zu: %s", s->name, i, q->n_keys,
				 dragon_errmsg());
			rep.seq = q->seq;
			rep.rc = rc;
			rep.msg = m;
			rep.num = (int64_t)i;
			send_rep(s, q->reply.data, &rep, NULL, 0);
			return;
		}
		pos += q->vlens[i];
	}
	rep.seq = q->seq;
	rep.num = (int64_t)q->n_keys;
	send_rep(s, q->reply.data, &rep, NULL, 0);
}

static void do_keys(struct dd_server *s, const DdReq *q)
{
	struct keys_acc a = { 0 };
	DdRep rep = DD_REP__INIT;
	uint64_t cur = q->cursor;

	rep.seq = q->seq;
	if (cur != UINT64_MAX)
		dd_shard_keys(&s->shard, &cur, add_key, &a);
	rep.cursor = cur;
	rep.n_keys = a.n;
	rep.keys = a.k;
	send_rep(s, q->reply.data, &rep, NULL, 0);
	free(a.k);
}

static void do_fetch_add(struct dd_server *s, const DdReq *q)
{
	uint64_t h = dragon_ddict_hash(q->key.data, q->key.len);
	struct dd_entry *e;
	int64_t old = 0;
	unsigned char v[8];
	DdRep rep = DD_REP__INIT;

	if (dd_shard_find(&s->shard, h, q->key.data, q->key.len, &e) == DRAGON_OK) {
		const unsigned char *p = dd_shard_value(&s->shard, e);
		if (e->vlen != 8 || !p) {
			dg_err(DRAGON_EINVAL, "fetch_add: the value is %llu bytes, a counter is 8",
			       (unsigned long long)e->vlen);
			fail(s, q->reply.data, q->seq, DRAGON_EINVAL);
			return;
		}
		uint64_t u = 0;
		for (int i = 7; i >= 0; i--)
			u = u << 8 | p[i];
		old = (int64_t)u;
		/* In place: the entry keeps its size, nothing to reallocate. */
		uint64_t nv = u + (uint64_t)q->delta;
		unsigned char *w = s->shard.base + e->val_off;
		for (int i = 0; i < 8; i++)
			w[i] = (unsigned char)(nv >> (8 * i));
	} else {
		uint64_t nv = (uint64_t)q->delta;
		for (int i = 0; i < 8; i++)
			v[i] = (unsigned char)(nv >> (8 * i));
		int rc = put_one(s, q->key.data, q->key.len, v, 8, NULL);
		if (rc) {
			fail(s, q->reply.data, q->seq, rc);
			return;
		}
	}
	rep.seq = q->seq;
	rep.num = old;
	send_rep(s, q->reply.data, &rep, NULL, 0);
}

static void do_wait(struct dd_server *s, const DdReq *q)
{
	uint64_t h = dragon_ddict_hash(q->key.data, q->key.len);
	struct dd_entry *e;
	struct dd_waiter *w;

	if (dd_shard_find(&s->shard, h, q->key.data, q->key.len, &e) == DRAGON_OK) {
		answer(s, q->reply.data, q->seq, DRAGON_OK, NULL);
		return;
	}
	if (q->timeout_ms == 0) {
		answer(s, q->reply.data, q->seq, DRAGON_ETIMEDOUT, "the key is not there");
		return;
	}
	if (s->nwaiters >= MAX_WAITERS) {
		dg_err(DRAGON_ENOSPACE, "%u waiters already", s->nwaiters);
		fail(s, q->reply.data, q->seq, DRAGON_ENOSPACE);
		return;
	}
	w = realloc(s->waiters, (s->nwaiters + 1) * sizeof(*w));
	if (!w)
		return;
	s->waiters = w;
	w = &s->waiters[s->nwaiters];
	w->key = malloc(q->key.len ? q->key.len : 1);
	if (!w->key)
		return;
	if (q->key.len) /* an empty key comes as NULL */
		memcpy(w->key, q->key.data, q->key.len);
	memcpy(w->reply, q->reply.data, DRAGON_DESC_SIZE);
	w->klen = q->key.len;
	w->hash = h;
	w->seq = q->seq;
	w->deadline = q->timeout_ms < 0 ? -1 : dd_now_ms() + q->timeout_ms;
	s->nwaiters++;
}

/* Dropped requests are logged, the first 100 and then every 1000th: garbage must not flood. */
static int log_drop(void)
{
	static unsigned long drops;

	drops++;
	return drops <= 100 || drops % 1000 == 0;
}

void dd_serve(struct dd_server *s, const void *msg, size_t len)
{
	const unsigned char *pl;
	size_t plen;
	DdReq *q;
	struct dd_entry *e;
	uint64_t h;
	int rc;

	if (dd_decode_req(msg, len, &q, &pl, &plen)) {
		/* Nowhere to answer: the reply channel is in the part that did not decode. */
		if (log_drop())
			fprintf(stderr, "dragon-ddict %s: dropped a request: %s\n", s->name,
				dragon_errmsg());
		return;
	}
	if (q->reply.len != DRAGON_DESC_SIZE) {
		if (log_drop())
			fprintf(stderr, "dragon-ddict %s: dropped a request with a %zu-byte reply "
					"descriptor\n",
				s->name, q->reply.len);
		goto out;
	}
	if (q->key.len > DD_KEY_MAX) {
		dg_err(DRAGON_ETOOBIG, "key of %zu bytes (at most %u)", q->key.len, DD_KEY_MAX);
		fail(s, q->reply.data, q->seq, DRAGON_ETOOBIG);
		goto out;
	}
	h = dragon_ddict_hash(q->key.data, q->key.len);
	switch (q->op) {
	case DD_OP_PUT:
		if (!frozen_refuse(s, q->reply.data, q->seq))
			do_put(s, q, pl, plen);
		break;
	case DD_OP_GET:
	case DD_OP_POP:
	case DD_OP_CONTAINS:
		if (q->op == DD_OP_POP && frozen_refuse(s, q->reply.data, q->seq))
			break;
		rc = dd_shard_find(&s->shard, h, q->key.data, q->key.len, &e);
		if (rc) {
			dg_err(rc, "no such key");
			fail(s, q->reply.data, q->seq, rc);
			break;
		}
		if (q->op == DD_OP_CONTAINS)
			answer(s, q->reply.data, q->seq, DRAGON_OK, NULL);
		else
			reply_value(s, q, e);
		if (q->op == DD_OP_POP)
			dd_shard_del(&s->shard, h, q->key.data, q->key.len);
		break;
	case DD_OP_DEL:
		if (frozen_refuse(s, q->reply.data, q->seq))
			break;
		rc = dd_shard_del(&s->shard, h, q->key.data, q->key.len);
		if (rc)
			dg_err(rc, "no such key");
		rc ? fail(s, q->reply.data, q->seq, rc) : answer(s, q->reply.data, q->seq, 0, NULL);
		break;
	case DD_OP_LEN:
	case DD_OP_STATS: {
		DdRep rep = DD_REP__INIT;
		rep.seq = q->seq;
		rep.num = (int64_t)s->shard.h->count;
		rep.used = s->shard.h->used;
		rep.budget = s->shard.h->budget;
		rep.waiters = s->nwaiters;
		send_rep(s, q->reply.data, &rep, NULL, 0);
		break;
	}
	case DD_OP_CLEAR:
		if (frozen_refuse(s, q->reply.data, q->seq))
			break;
		dd_shard_clear(&s->shard);
		answer(s, q->reply.data, q->seq, DRAGON_OK, NULL);
		break;
	case DD_OP_KEYS:
		do_keys(s, q);
		break;
	case DD_OP_BATCH:
		if (!frozen_refuse(s, q->reply.data, q->seq))
			do_batch(s, q, pl, plen);
		break;
	case DD_OP_WAIT:
		do_wait(s, q);
		break;
	case DD_OP_FETCH_ADD:
		if (!frozen_refuse(s, q->reply.data, q->seq))
			do_fetch_add(s, q);
		break;
	case DD_OP_FREEZE:
	case DD_OP_UNFREEZE:
		/* gen changes first: a reader that began under the old state sees it changed. */
		__atomic_add_fetch(&s->shard.h->gen, 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(&s->shard.h->frozen, q->op == DD_OP_FREEZE, __ATOMIC_SEQ_CST);
		answer(s, q->reply.data, q->seq, DRAGON_OK, NULL);
		break;
	case DD_OP_PERSIST:
	case DD_OP_RESTORE: {
		char path[4096];
		if (!q->dir || !*q->dir || strlen(q->dir) > 3900) {
			dg_err(DRAGON_EINVAL, "persist/restore needs a directory (at most 3900 bytes)");
			fail(s, q->reply.data, q->seq, DRAGON_EINVAL);
			break;
		}
		if (!s->trusted) {
			dg_err(DRAGON_ENOTSUP, "persist and restore are not accepted here");
			fail(s, q->reply.data, q->seq, DRAGON_ENOTSUP);
			break;
		}
		if (q->op == DD_OP_RESTORE && frozen_refuse(s, q->reply.data, q->seq))
			break;
		dd_shard_path(q->dir, s->shard.h->index, s->shard.h->nmanagers, path, sizeof(path));
		rc = q->op == DD_OP_PERSIST ? dd_shard_save(&s->shard, path)
					    : dd_shard_load(&s->shard, path);
		rc ? fail(s, q->reply.data, q->seq, rc) : answer(s, q->reply.data, q->seq, 0, NULL);
		break;
	}
	case DD_OP_SHUTDOWN:
		s->stop = 1;
		answer(s, q->reply.data, q->seq, DRAGON_OK, NULL);
		break;
	}
out:
	dd_req__free_unpacked(q, NULL);
}
