/* runtime/ta/serve.c: the transport agent's messages from other nodes: requests on this node's channels (receives and polls that wait), answers to ours. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "core/err.h"
#include "ta/agent.h"

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

