/* runtime/ta/serve.c: the transport agent's messages from other nodes: requests on this node's channels (receives and polls that wait), answers to ours. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "core/channel_ring.h"
#include "core/err.h"
#include "ta/agent.h"

/*
 * A large message from another node is received straight into an allocation of the pool of the
 * channel it goes to (a send) or of the asking process's reply channel (an answer), and enqueued
 * without a copy (ta_bulk.c). The layer asks where when its first bytes (the gateway header)
 * arrived; a channel of no pool here, or a pool without room, declines: the message then comes
 * whole into the agent's memory and is copied in as before (and waits there while the channel
 * is full).
 */
struct placed {
	struct chan *c;
	dragon_mem_t mem;
};

int agent_place(void *arg, uint32_t src, uint32_t port, const unsigned char *data, size_t head,
		size_t msg_len, unsigned char **dst, size_t *skip, void **cookie)
{
	struct agent *a = arg;
	struct dg_gw_hdr h;
	struct placed *pl;
	struct chan *c;
	size_t hs;
	int rc;

	if (port != DG_GW_PORT || dg_gw_check(data, head, &h) != DRAGON_OK || h.node != src ||
	    (h.op != DG_GW_SEND && h.op != DG_GW_REPLY))
		return DRAGON_EINVAL; /* checked again, and dropped, when it is whole */
	/* a send's channel gets the payload; a reply channel the whole answer */
	hs = h.op == DG_GW_SEND ? sizeof(h) : 0;
	if ((rc = agent_chan_get(a, h.op == DG_GW_SEND ? h.chan : h.reply, &c)) != DRAGON_OK)
		return rc;
	if (c->ch->rops || !(pl = calloc(1, sizeof(*pl))))
		return DRAGON_EINVAL;
	if ((rc = dragon_pool_alloc(c->ch->pool, msg_len - hs, 0, &pl->mem)) != DRAGON_OK) {
		free(pl);
		return rc;
	}
	pl->c = c;
	c->inflight++;
	*dst = pl->mem.ptr;
	*skip = hs;
	*cookie = pl;
	return DRAGON_OK;
}

void agent_unplace(void *arg, void *cookie)
{
	struct placed *pl = cookie;

	(void)arg;
	pl->c->inflight--;
	dragon_pool_free(&pl->mem);
	free(pl);
}

/* A large message arrived in place: enqueue it. */
static void placed_in(struct agent *a, const struct dg_ta_msg *m)
{
	struct placed *pl = m->placed;
	struct chan *c = pl->c;
	dragon_mem_t mem = pl->mem;
	struct dg_gw_hdr h;
	int rc;

	free(pl);
	c->inflight--;
	dg_gw_check(m->data, m->head, &h); /* checked when it was placed */
	if (h.op == DG_GW_REPLY)
		agent_outstanding_done(a, m->src, &h);
	rc = agent_deposit_mem(a, c, &mem, &h, m->src);
	if (rc == DRAGON_EAGAIN)
		return; /* answered when it goes in */
	if (rc == DRAGON_ECLOSED || rc == DRAGON_ESTALE)
		agent_chan_forget(a, c);
	if (h.op == DG_GW_SEND && (h.flags & DG_GW_F_DEPOSIT))
		agent_reply_remote(a, m->src, &h, rc, 0, NULL, 0);
	else if (rc)
		agent_drop(a, h.op == DG_GW_SEND ? "message for a channel that refused it" : "answer");
}

/* Try a recv or poll for another node; 1 when answered (or failed), 0 to wait. */
static int try_serve(struct agent *a, const struct dg_gw_hdr *h, uint32_t from, int last)
{
	struct chan *c;
	int rc = agent_chan_get(a, h->chan, &c);

	if (rc) {
		agent_reply_remote(a, from, h, rc, 0, NULL, 0);
		return 1;
	}
	if (h->op == DG_GW_POLL) {
		unsigned rev = 0;
		rc = dragon_channel_poll(c->ch, (unsigned)h->arg, &rev, &nowait);
		if (rc == DRAGON_OK || !full(rc) || last) {
			agent_reply_remote(a, from, h, rc, rev, NULL, 0);
			return 1;
		}
		return 0;
	}
	size_t cap = h->arg > (1ull << 30) ? (size_t)1 << 30 : (size_t)h->arg, len = 0;
	if (cap > a->scratch_cap) {
		unsigned char *nb = realloc(a->scratch, cap);
		if (!nb) {
			agent_reply_remote(a, from, h, DRAGON_ENOMEM, 0, NULL, 0);
			return 1;
		}
		a->scratch = nb;
		a->scratch_cap = cap;
	}
	rc = dragon_channel_recv(c->ch, a->scratch, cap, &len, &nowait);
	if (rc == DRAGON_OK) {
		agent_reply_remote(a, from, h, DRAGON_OK, len, a->scratch, len);
		return 1;
	}
	if (rc == DRAGON_ETOOBIG || !full(rc) || last) {
		/* ran out of time: what a local receive would say */
		if (full(rc))
			rc = h->timeout_us == 0 ? DRAGON_EAGAIN : DRAGON_ETIMEDOUT;
		agent_reply_remote(a, from, h, rc, len, NULL, 0);
		if (rc == DRAGON_ECLOSED || rc == DRAGON_ESTALE)
			agent_chan_forget(a, c);
		return 1;
	}
	return 0;
}

void agent_from_node(struct agent *a, const struct dg_ta_msg *m)
{
	struct dg_gw_hdr h;
	struct chan *c;
	int rc;

	if (m->placed) {
		placed_in(a, m);
		return;
	}
	if (m->port != DG_GW_PORT || dg_gw_check(m->data, m->len, &h) != DRAGON_OK ||
	    h.node != m->src) {
		dg_err(DRAGON_EPROTO, "node %u sent %zu bytes to port %u that are no gateway message",
		       m->src, m->len, m->port);
		agent_drop(a, "message");
		return;
	}
	switch (h.op) {
	case DG_GW_SEND:
		if ((rc = agent_chan_get(a, h.chan, &c)) == DRAGON_OK) {
			rc = agent_deposit(a, c, m->data, m->len, sizeof(h), m->src);
			if (rc == DRAGON_EAGAIN)
				return; /* answered when it goes in */
			if (rc == DRAGON_ECLOSED || rc == DRAGON_ESTALE)
				agent_chan_forget(a, c);
		}
		if (h.flags & DG_GW_F_DEPOSIT)
			agent_reply_remote(a, m->src, &h, rc, 0, NULL, 0);
		else if (rc)
			agent_drop(a, "message for a channel that refused it");
		return;
	case DG_GW_RECV:
	case DG_GW_POLL:
		if (!try_serve(a, &h, m->src, h.timeout_us == 0)) {
			struct waiter *w = calloc(1, sizeof(*w));
			if (!w) {
				agent_reply_remote(a, m->src, &h, DRAGON_ENOMEM, 0, NULL, 0);
				return;
			}
			w->h = h;
			w->from = m->src;
			w->deadline = h.timeout_us < 0 ? INT64_MAX
							: dg_ta_now() + h.timeout_us * 1000;
			w->next = a->waiters;
			a->waiters = w;
		}
		return;
	case DG_GW_REPLY:
		agent_outstanding_done(a, m->src, &h);
		if (agent_chan_get(a, h.reply, &c)) {
			agent_drop(a, "answer for a process that is gone");
			return;
		}
		rc = agent_deposit(a, c, m->data, m->len, 0, m->src);
		if (rc && rc != DRAGON_EAGAIN)
			agent_drop(a, "answer");
		return;
	default:
		return;
	}
}

/* Answer the pending recvs and polls that can be answered or ran out of time. */
int agent_serve_waiters(struct agent *a)
{
	int64_t t = dg_ta_now();
	int done = 0;
	struct waiter **pp = &a->waiters, *w;

	while ((w = *pp)) {
		if (try_serve(a, &w->h, w->from, t >= w->deadline)) {
			*pp = w->next;
			free(w);
			done = 1;
		} else {
			pp = &w->next;
		}
	}
	return done;
}

