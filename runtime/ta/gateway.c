/* runtime/ta/gateway.c: the transport agent's side of local processes: their requests from the gateway channel, answers into their reply channels. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ta/agent.h"

/* Answer a local process directly (its request could not go out, or its node died). */
void agent_reply_local(struct agent *a, const struct dg_gw_hdr *req, int status)
{
	struct dg_gw_hdr h = *req;
	struct chan *c;

	if (agent_chan_get(a, req->reply, &c)) {
		agent_drop(a, "answer to a process that is gone");
		return;
	}
	h.op = DG_GW_REPLY;
	h.status = status;
	h.arg = 0;
	if (agent_deposit(a, c, (const unsigned char *)&h, sizeof(h), 0, a->node) == DRAGON_ENOMEM)
		agent_drop(a, "answer");
}

static int wants_answer(const struct dg_gw_hdr *h)
{
	return h->op == DG_GW_RECV || h->op == DG_GW_POLL ||
	       (h->op == DG_GW_SEND && (h->flags & DG_GW_F_DEPOSIT));
}

static void outstanding_add(struct agent *a, const struct dg_gw_hdr *h, uint32_t node)
{
	struct outstanding *o = calloc(1, sizeof(*o));

	if (!o)
		return; /* it still works; only a dead node would leave the process waiting */
	o->node = node;
	o->req = h->req;
	memcpy(o->reply, h->reply, DRAGON_DESC_SIZE);
	o->since = dg_ta_now();
	o->next = a->outst;
	a->outst = o;
}

void agent_outstanding_done(struct agent *a, uint32_t node, const struct dg_gw_hdr *h)
{
	for (struct outstanding **pp = &a->outst, *o; (o = *pp); pp = &o->next)
		if (o->node == node && o->req == h->req && !memcmp(o->reply, h->reply, DRAGON_DESC_SIZE)) {
			*pp = o->next;
			free(o);
			return;
		}
}

void agent_from_gateway(struct agent *a, dragon_mem_t *mem)
{
	struct dg_gw_hdr h;
	struct out *o;
	uint32_t node;

	if (dg_gw_check(mem->ptr, mem->size, &h) != DRAGON_OK || h.op == DG_GW_REPLY) {
		dg_err(DRAGON_EPROTO, "a local process wrote %zu bytes that are no request", mem->size);
		agent_drop(a, "request");
		dragon_pool_free(mem);
		return;
	}
	node = h.node;
	if (node == a->node || !(o = calloc(1, sizeof(*o)))) {
		if (node == a->node)
			dg_err(DRAGON_EINVAL, "request for this node's own channel");
		else
			dg_err(DRAGON_ENOMEM, "request");
		if (wants_answer(&h))
			agent_reply_local(a, &h, node == a->node ? DRAGON_EINVAL : DRAGON_ENOMEM);
		else
			agent_drop(a, "request");
		dragon_pool_free(mem);
		return;
	}
	/* On the way out the header names the asking node instead of the target. */
	((struct dg_gw_hdr *)mem->ptr)->node = a->node;
	o->mem = *mem;
	o->from_pool = 1;
	o->buf = mem->ptr;
	o->len = mem->size;
	if (agent_queue_out(a, node, o) != DRAGON_OK) {
		if (wants_answer(&h))
			agent_reply_local(a, &h, DRAGON_ENOMEM);
		agent_out_discard(o);
		return;
	}
	if (wants_answer(&h))
		outstanding_add(a, &h, node);
}

