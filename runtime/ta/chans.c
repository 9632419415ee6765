/* runtime/ta/chans.c: the transport agent's local channels: attached once and cached, messages held while one is full. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ta/agent.h"

#define CHAN_CACHE_MAX 4096

void agent_chan_free(struct agent *a, struct chan *c)
{
	if (c->head)
		a->full_chans--;
	while (c->head) {
		struct pend *p = c->head;
		c->head = p->next;
		a->held -= p->len;
		a->held_full -= p->len;
		if (p->has_mem)
			dragon_pool_free(&p->mem);
		free(p->buf);
		free(p);
	}
	if (c->ch)
		dragon_channel_detach(c->ch);
	free(c);
}

/* The attached channel of desc, attaching it the first time. */
int agent_chan_get(struct agent *a, const unsigned char *desc, struct chan **out)
{
	struct chan *c, **pp;
	int rc;

	for (pp = &a->chans; (c = *pp); pp = &c->next)
		if (!memcmp(c->desc, desc, DRAGON_DESC_SIZE)) {
			/* most recently used first */
			*pp = c->next;
			c->next = a->chans;
			a->chans = c;
			*out = c;
			return DRAGON_OK;
		}
	if (a->nchans >= CHAN_CACHE_MAX) {
		/* drop the least recently used idle one */
		struct chan **victim = NULL;
		for (pp = &a->chans; *pp; pp = &(*pp)->next)
			if (!(*pp)->head && !(*pp)->inflight)
				victim = pp;
		if (victim) {
			c = *victim;
			*victim = c->next;
			agent_chan_free(a, c);
			a->nchans--;
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return dg_err(DRAGON_ENOMEM, "channel cache");
	memcpy(c->desc, desc, DRAGON_DESC_SIZE);
	if ((rc = dragon_channel_attach((const dragon_channel_desc_t *)desc, &c->ch)) != DRAGON_OK) {
		free(c);
		return rc;
	}
	c->next = a->chans;
	a->chans = c;
	a->nchans++;
	*out = c;
	return DRAGON_OK;
}

/* A channel that failed for good (destroyed, its pool gone): forget it (later, if a large message
 * is being received into its pool). */
void agent_chan_forget(struct agent *a, struct chan *c)
{
	if (c->inflight)
		return;
	for (struct chan **pp = &a->chans; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			agent_chan_free(a, c);
			a->nchans--;
			return;
		}
}

/*
 * Queue p (p->len bytes) behind the channel's earlier held messages: counted in the agent's
 * budget and its full-channel part, which agent_chan_free and the retries count out again.
 */
static int hold(struct agent *a, struct chan *c, struct pend *p, uint32_t from)
{
	p->from = from;
	if (c->tail) {
		c->tail->next = p;
	} else {
		c->head = p;
		a->full_chans++;
	}
	c->tail = p;
	a->held += p->len;
	a->held_full += p->len;
	return DRAGON_EAGAIN; /* queued */
}

/* Put a whole message into a local channel now, or queue it behind the channel's earlier ones. */
int agent_deposit(struct agent *a, struct chan *c, const unsigned char *buf, size_t len,
		  size_t skip, uint32_t from)
{
	struct pend *p;
	int rc;

	if (!c->head) {
		rc = dragon_channel_send(c->ch, buf + skip, len - skip, &nowait);
		if (!full(rc))
			return rc;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->buf = malloc(len))) {
		free(p);
		return dg_err(DRAGON_ENOMEM, "holding %zu bytes for a full channel", len);
	}
	memcpy(p->buf, buf, len);
	p->len = len;
	return hold(a, c, p, from);
}

/*
 * Enqueue a large message received in place (an allocation of the channel's pool) without a copy,
 * or queue it behind the channel's earlier ones. h: its gateway header (a copy is kept for the
 * deposit answer). The allocation is the channel's, or freed, either way.
 */
int agent_deposit_mem(struct agent *a, struct chan *c, dragon_mem_t *mem,
		      const struct dg_gw_hdr *h, uint32_t from)
{
	struct pend *p;
	int rc;

	if (!c->head) {
		rc = dragon_channel_send_mem(c->ch, mem, &nowait);
		if (!full(rc)) {
			if (rc != DRAGON_OK)
				dragon_pool_free(mem);
			return rc;
		}
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->buf = malloc(sizeof(*h)))) {
		free(p);
		dragon_pool_free(mem);
		return dg_err(DRAGON_ENOMEM, "holding a message for a full channel");
	}
	memcpy(p->buf, h, sizeof(*h));
	p->mem = *mem;
	p->has_mem = 1;
	p->len = mem->size;
	return hold(a, c, p, from);
}

/* Move queued messages into channels that have room again; 1 if anything moved. */
int agent_retry_deposits(struct agent *a)
{
	int moved = 0;

	for (struct chan *c = a->chans, *next; c; c = next) {
		next = c->next;
		while (c->head) {
			struct pend *p = c->head;
			struct dg_gw_hdr h;
			size_t skip;
			int rc;

			memcpy(&h, p->buf, sizeof(h));
			skip = h.op == DG_GW_SEND ? sizeof(h) : 0;
			if (p->has_mem)
				rc = dragon_channel_send_mem(c->ch, &p->mem, &nowait);
			else
				rc = dragon_channel_send(c->ch, p->buf + skip, p->len - skip, &nowait);
			if (full(rc))
				break;
			if (p->has_mem && rc != DRAGON_OK)
				dragon_pool_free(&p->mem);
			if (h.op == DG_GW_SEND && (h.flags & DG_GW_F_DEPOSIT))
				agent_reply_remote(a, p->from, &h, rc, 0, NULL, 0);
			else if (rc)
				agent_drop(a, "held message");
			c->head = p->next;
			if (!c->head) {
				c->tail = NULL;
				a->full_chans--;
			}
			a->held -= p->len;
			a->held_full -= p->len;
			free(p->buf);
			free(p);
			moved = 1;
			if (rc == DRAGON_ECLOSED || rc == DRAGON_ESTALE) {
				/* every message behind it fails the same way */
				continue;
			}
		}
	}
	return moved;
}

