/* runtime/ddict/client.c: the dictionary client's request path: handles, requests to managers and their answers, which manager holds a key. */
#include "config.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/err.h"
#include "ddict/client.h"

void dd_manager_name(uint64_t id, unsigned index, char *out, size_t cap)
{
	snprintf(out, cap, "ddict.%016llx.%u", (unsigned long long)id, index);
}

/*
 * dg_err with this thread's last detail appended: it is copied first, because dg_err writes the
 * buffer dragon_errmsg() returns.
 */
static int err_on(int rc, const char *what, const char *name, const char *tail)
{
	char m[600];

	snprintf(m, sizeof(m), "%s", dragon_errmsg());
	return dg_err(rc, "%s %s: %s%s", name, what, m, tail);
}

int dd_mname(const dragon_ddict_t *d, unsigned i, char *out, size_t cap)
{
	return snprintf(out, cap, "manager %u (node %u)", i, d->m[i].known ? d->m[i].info.node : 0);
}

/* ---- handles -------------------------------------------------------------------------------- */

void dd_free_handle(dragon_ddict_t *d)
{
	if (!d)
		return;
	for (unsigned i = 0; d->m && i < d->desc.managers; i++) {
		struct mgr *m = &d->m[i];
		if (m->ch)
			dragon_channel_detach(m->ch);
		if (m->view_state == 1)
			dragon_pool_detach(m->view.pool);
		for (size_t k = 0; k < m->n; k++)
			free(m->keys[k].data);
		free(m->vals);
		free(m->keys);
		free(m->vlens);
	}
	for (unsigned i = 0; i < d->nparked; i++) {
		dd_rep__free_unpacked(d->park[i].rep, NULL);
		if (d->park[i].mem.pool)
			dragon_pool_free(&d->park[i].mem);
	}
	if (d->rch)
		dragon_fchannel_destroy(d->rch);
	free(d->m);
	free(d->gids);
	free(d->name);
	free(d->bseq);
	free(d->bmgr);
	free(d);
}

/* A handle on the managers in infos (NULL entries: unknown, operations on them fail). */
int dd_new_handle(const struct dd_desc *hd, dragon_ddict_t **out)
{
	dragon_channel_attr_t ca = { 64, 512, DRAGON_WAIT_ADAPTIVE };
	dragon_ddict_t *d = calloc(1, sizeof(*d));
	const char *t = getenv("DRAGON_DDICT_TIMEOUT_MS");
	int rc;

	if (!d || !(d->m = calloc(hd->managers, sizeof(*d->m)))) {
		free(d);
		return dg_err(DRAGON_ENOMEM, "dictionary handle of %u managers", hd->managers);
	}
	d->desc = *hd;
	d->pin = -1;
	d->timeout_ms = t && *t ? atoi(t) : DEFAULT_TIMEOUT_MS;
	d->node = dragon_node_index();
	/* Our reply channel, on our node: replies are received locally, also as allocations. */
	rc = dragon_fchannel_create(NULL, &ca, 0, &d->rch);
	if (rc) {
		dd_free_handle(d);
		return rc;
	}
	dragon_channel_serialize(d->rch, (dragon_channel_desc_t *)d->rdesc);
	*out = d;
	return DRAGON_OK;
}

static int mgr_channel(dragon_ddict_t *d, unsigned i, dragon_channel_t **ch)
{
	struct mgr *m = &d->m[i];
	char n[64];
	int rc;

	if (!m->known) {
		dd_mname(d, i, n, sizeof(n));
		return dg_err(DRAGON_EPEER, "%s of the dictionary is gone (it was not found)", n);
	}
	if (!m->ch) {
		rc = dragon_channel_attach((const dragon_channel_desc_t *)m->info.chan, &m->ch);
		if (rc) {
			dd_mname(d, i, n, sizeof(n));
			return err_on(rc == DRAGON_ENOMEM || rc == DRAGON_EINVAL ? rc : DRAGON_EPEER,
				      "cannot reach its request channel", n, "");
		}
	}
	*ch = m->ch;
	return DRAGON_OK;
}

/* The manager's shard mapped here, if it lives on this node. */
struct dd_shard *dd_mgr_view(dragon_ddict_t *d, unsigned i)
{
	struct mgr *m = &d->m[i];

	if (m->view_state == 0) {
		m->view_state = -1;
		if (m->known && m->info.node == d->node &&
		    dd_shard_view((const dragon_mem_desc_t *)m->info.hdr, &m->view) == DRAGON_OK)
			m->view_state = 1;
	}
	return m->view_state == 1 ? &m->view : NULL;
}

/* ---- requests ------------------------------------------------------------------------------- */

static int is_gone(int rc)
{
	return rc == DRAGON_ECLOSED || rc == DRAGON_ESTALE || rc == DRAGON_EPEER;
}

int dd_send_req(dragon_ddict_t *d, unsigned i, DdReq *q, const void *pl, size_t plen,
		    uint64_t *seq)
{
	dragon_channel_t *ch;
	dragon_wait_t w = { d->timeout_ms < 0 ? -1 : (long)d->timeout_ms * 1000,
			    DRAGON_WAIT_DEFAULT, 0 };
	unsigned char *buf;
	size_t len;
	char n[64];
	int rc;

	rc = mgr_channel(d, i, &ch);
	if (rc)
		return rc;
	q->seq = ++d->seq;
	q->reply.data = d->rdesc;
	q->reply.len = DRAGON_DESC_SIZE;
	/* Our node only if we map the manager's pool: else it must answer inside the message. */
	q->node = dd_mgr_view(d, i) ? d->node : UINT32_MAX;
	len = dd_encoded_size(&q->base, plen);
	buf = malloc(len);
	if (!buf)
		return dg_err(DRAGON_ENOMEM, "request of %zu bytes", len);
	if (plen)
		memcpy(buf, pl, plen);
	dd_encode_into(&q->base, plen, buf, len);
	rc = dragon_channel_send(ch, buf, len, &w);
	free(buf);
	if (rc) {
		dd_mname(d, i, n, sizeof(n));
		if (is_gone(rc))
			return err_on(DRAGON_EPEER, "is gone", n, "");
		return err_on(rc, "does not take requests", n, "");
	}
	*seq = q->seq;
	return DRAGON_OK;
}

void dd_release(DdRep *rep, dragon_mem_t *mem)
{
	if (rep)
		dd_rep__free_unpacked(rep, NULL);
	if (mem && mem->pool)
		dragon_pool_free(mem);
}

/*
 * Wait for the reply to seq from manager i. While it does not come, check every PROBE_MS that the
 * manager's request channel still exists (local services destroy it when the manager ends; the
 * transport agent reports a lost node): so a dead manager fails the call with DRAGON_EPEER in
 * bounded time. *mem (the received message) holds the payload; free it with dd_release().
 */
int dd_wait_rep(dragon_ddict_t *d, unsigned i, uint64_t seq, int timeout_ms, DdRep **rep,
		    dragon_mem_t *mem, const unsigned char **pl, size_t *plen)
{
	int64_t deadline = timeout_ms < 0 ? -1 : dd_now_ms() + timeout_ms;
	char n[64];
	int rc;

	for (;;) {
		for (unsigned k = 0; k < d->nparked; k++)
			if (d->park[k].seq == seq) {
				*rep = d->park[k].rep;
				*mem = d->park[k].mem;
				*pl = mem->ptr;
				*plen = (*rep)->vlen;
				d->park[k] = d->park[--d->nparked];
				return DRAGON_OK;
			}
		int64_t now = dd_now_ms();
		long slice = PROBE_MS;
		if (deadline >= 0) {
			if (now >= deadline) {
				dd_mname(d, i, n, sizeof(n));
				return dg_err(DRAGON_ETIMEDOUT, "%s did not answer within %d ms", n,
					      timeout_ms);
			}
			if (deadline - now < slice)
				slice = (long)(deadline - now);
		}
		dragon_wait_t w = { slice * 1000, DRAGON_WAIT_DEFAULT, 0 };
		dragon_mem_t m;
		rc = dragon_channel_recv_mem(d->rch, &m, &w);
		if (rc == DRAGON_ETIMEDOUT || rc == DRAGON_EAGAIN) {
			dragon_channel_t *ch;
			unsigned rev = 0;
			dragon_wait_t z = { 0, DRAGON_WAIT_DEFAULT, 0 };
			if (mgr_channel(d, i, &ch) == DRAGON_OK) {
				rc = dragon_channel_poll(ch, DRAGON_POLLOUT, &rev, &z);
				if (!is_gone(rc))
					continue;
			}
			dd_mname(d, i, n, sizeof(n));
			char why[64];
			snprintf(why, sizeof(why), " (%s, while waiting %d ms for an answer)",
				 dragon_strerror(rc), PROBE_MS);
			return err_on(DRAGON_EPEER, "is gone: its request channel", n, why);
		}
		if (rc)
			return rc;
		DdRep *r;
		const unsigned char *p;
		size_t pn;
		if (dd_decode_rep(m.ptr, m.size, &r, &p, &pn)) {
			dragon_pool_free(&m);
			continue; /* not ours to judge: drop it */
		}
		if (r->seq == seq) {
			*rep = r;
			*mem = m;
			*pl = p;
			*plen = r->vlen;
			return DRAGON_OK;
		}
		if (r->seq > d->seq) { /* not one of ours */
			dd_rep__free_unpacked(r, NULL);
			dragon_pool_free(&m);
			continue;
		}
		/*
		 * Another request's reply (batches and broadcasts have several outstanding): keep it.
		 * When the room is full, the oldest goes: a late reply of a call that timed out.
		 */
		if (d->nparked == sizeof(d->park) / sizeof(d->park[0])) {
			unsigned old = 0;
			for (unsigned k = 1; k < d->nparked; k++)
				if (d->park[k].seq < d->park[old].seq)
					old = k;
			dd_release(d->park[old].rep, &d->park[old].mem);
			d->park[old] = d->park[--d->nparked];
		}
		d->park[d->nparked].seq = r->seq;
		d->park[d->nparked].rep = r;
		d->park[d->nparked].mem = m;
		d->nparked++;
	}
}

/* Reply's error as our error (its text names the manager). */
int dd_rep_rc(const DdRep *rep)
{
	if (!rep->rc)
		return DRAGON_OK;
	int rc = rep->rc > 0 && rep->rc < DRAGON_ERR_MAX ? rep->rc : DRAGON_EPROTO;
	return dg_err(rc, "%s", rep->msg && *rep->msg ? rep->msg : dragon_strerror(rc));
}

/* One request to manager i and its reply: the caller frees with dd_release(). */
int dd_call(dragon_ddict_t *d, unsigned i, DdReq *q, const void *pl, size_t plen, int timeout_ms,
		DdRep **rep, dragon_mem_t *mem, const unsigned char **rpl, size_t *rplen)
{
	uint64_t seq;
	int rc = dd_send_req(d, i, q, pl, plen, &seq);

	if (rc)
		return rc;
	memset(mem, 0, sizeof(*mem));
	return dd_wait_rep(d, i, seq, timeout_ms, rep, mem, rpl, rplen);
}

/* A request whose reply carries only a status (and num). */
int dd_simple(dragon_ddict_t *d, unsigned i, DdReq *q, int64_t *num)
{
	DdRep *rep;
	dragon_mem_t mem;
	const unsigned char *pl;
	size_t plen;
	int rc = dd_call(d, i, q, NULL, 0, d->timeout_ms, &rep, &mem, &pl, &plen);

	if (rc)
		return rc;
	rc = dd_rep_rc(rep);
	if (num)
		*num = rep->num;
	dd_release(rep, &mem);
	return rc;
}

/*
 * The same request to every manager (or the pinned one); the first failure is returned. Sent in
 * windows, so that the answers of a window fit in our reply channel.
 */
#define EVERY_WINDOW 32
int dd_every(dragon_ddict_t *d, uint32_t op, const char *dir, int64_t *sum)
{
	unsigned lo = d->pin >= 0 ? (unsigned)d->pin : 0;
	unsigned hi = d->pin >= 0 ? (unsigned)d->pin + 1 : d->desc.managers;
	uint64_t seqs[EVERY_WINDOW];
	int first = DRAGON_OK, rc;
	char msg[1024] = "";

	if (sum)
		*sum = 0;
	for (unsigned w = lo; w < hi; w += EVERY_WINDOW) {
		unsigned end = hi - w < EVERY_WINDOW ? hi : w + EVERY_WINDOW;
		/* all of the window sent first: the managers work at once */
		for (unsigned i = w; i < end; i++) {
			DdReq q = DD_REQ__INIT;
			q.op = op;
			if (dir)
				q.dir = (char *)dir;
			seqs[i - w] = 0;
			rc = dd_send_req(d, i, &q, NULL, 0, &seqs[i - w]);
			if (rc && !first) {
				first = rc;
				snprintf(msg, sizeof(msg), "%s", dragon_errmsg());
			}
		}
		for (unsigned i = w; i < end; i++) {
			DdRep *rep;
			dragon_mem_t mem;
			const unsigned char *pl;
			size_t plen;
			if (!seqs[i - w])
				continue;
			rc = dd_wait_rep(d, i, seqs[i - w], d->timeout_ms, &rep, &mem, &pl, &plen);
			if (!rc) {
				rc = dd_rep_rc(rep);
				if (sum)
					*sum += rep->num;
				dd_release(rep, &mem);
			}
			if (rc && !first) {
				first = rc;
				snprintf(msg, sizeof(msg), "%s", dragon_errmsg());
			}
		}
	}
	return first ? dg_err(first, "%s", msg) : DRAGON_OK;
}

unsigned dd_target(const dragon_ddict_t *d, const void *key, size_t klen)
{
	if (d->pin >= 0)
		return (unsigned)d->pin;
	return (unsigned)(dragon_ddict_hash(key, klen) % d->desc.managers);
}

int dd_check_key(const dragon_ddict_t *d, const void *key, size_t klen)
{
	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	if (!key && klen)
		return dg_err(DRAGON_EINVAL, "NULL key");
	if (klen > DD_KEY_MAX)
		return dg_err(DRAGON_ETOOBIG, "key of %zu bytes (at most %u)", klen, DD_KEY_MAX);
	return DRAGON_OK;
}

/* ---- small accessors ------------------------------------------------------------------------ */

DRAGON_API unsigned dragon_ddict_managers(const dragon_ddict_t *d)
{
	return d ? d->desc.managers : 0;
}

DRAGON_API unsigned dragon_ddict_manager_of(const dragon_ddict_t *d, const void *key, size_t klen)
{
	return d ? dd_target(d, key, klen) : 0;
}

DRAGON_API int dragon_ddict_pin(dragon_ddict_t *d, int m)
{
	if (!d || m < -1 || (m >= 0 && (unsigned)m >= d->desc.managers))
		return dg_err(DRAGON_EINVAL, "pin to manager %d of %u", m, d ? d->desc.managers : 0);
	d->pin = m;
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_set_timeout(dragon_ddict_t *d, int timeout_ms)
{
	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	d->timeout_ms = timeout_ms;
	return DRAGON_OK;
}
