/* runtime/ta/ta_bulk.c: the libfabric layer's large messages: chunks received straight into the memory the receiver picked, no copy. */
#include "ta/ta_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <rdma/fi_tagged.h>

/*
 * Large messages. A message above bulk_min goes as a first frame like any other (its first
 * TA_BULK_HEAD bytes, flagged DG_FRAME_F_BULK, the sender's chunk size in its flags), then as
 * chunks of 2^shift bytes, each one ordinary DATA frame (header, payload, tag; sequence number,
 * credit, MAC as always) but sent as a tagged message gathered from the sender's memory: header
 * and tag from a send buffer, the payload where the message lives (ta_send.c). The receiver,
 * once the first frame is next in order, asks its caller where the message goes
 * (dg_ta_place_fn: the agent picks an allocation in the target channel's pool), then posts a
 * tagged receive per chunk that scatters header and tag into a small buffer of its own and the
 * payload straight to its place; the MAC is checked over the bytes where they landed
 * (dg_frame_open). Chunks that came before their receive was posted wait in the provider
 * (rxm keeps the rendezvous request of a large one, not its data).
 *
 * The tag names the sender, the message (its first frame's sequence number) and the chunk, so a
 * chunk lands only where it belongs; one that does not check out (forged, from another epoch,
 * or cut short) is dropped and its receive posted again. A sender that goes silent with chunks
 * outstanding is probed and declared dead after dead_ms like one we wait on; the message is
 * then given up: its posted receives are cancelled, and once none is left in the provider's
 * hands the memory goes back to the caller (dg_ta_unplace_fn), so no pool space leaks.
 */

uint64_t ta_bulk_tag(uint32_t src, uint64_t id, size_t idx)
{
	return ((uint64_t)(src & 0xffff) << 48) | ((id & 0xffffff) << 24) | ((uint64_t)idx & 0xffffff);
}

int ta_bulk_current(const struct slot *s)
{
	const struct bulk_rx *b = s->bulk;

	return b->active && !b->aborting && s->gen == b->gen;
}

static unsigned bulk_shift(const struct bulk_rx *b)
{
	return b->shift;
}

unsigned char *ta_bulk_at(struct bulk_rx *b, size_t off)
{
	return b->discard ? b->scratch : b->dst + off - b->skip;
}

static void bulk_end(dg_ta *ta, struct bulk_rx *b)
{
	free(b->head);
	b->head = NULL;
	b->own = NULL;
	b->dst = NULL;
	b->cookie = NULL;
	b->active = b->aborting = b->discard = 0;
	ta->nbulk--;
}

/* A message given up: its memory goes back once the provider holds no receive into it. */
static void bulk_finish_abort(dg_ta *ta, struct bulk_rx *b)
{
	if (!b->aborting || b->posted)
		return;
	if (b->own)
		free(b->own);
	else if (!b->discard && ta->unplace)
		ta->unplace(ta->place_arg, b->cookie);
	bulk_end(ta, b);
}

void ta_bulk_completed(dg_ta *ta, struct slot *s)
{
	struct bulk_rx *b = s->bulk;

	if (!s->posted)
		return;
	s->posted = 0;
	b->posted--;
	bulk_finish_abort(ta, b);
}

static int bulk_post(dg_ta *ta, struct bulk_rx *b, struct slot *s, size_t off, size_t len)
{
	struct iovec iov[3] = {{s->buf, DG_FRAME_HDR},
			       {ta_bulk_at(b, off), len},
			       {s->buf + DG_FRAME_HDR, DG_FRAME_MAC}};
	uint64_t tag = ta_bulk_tag(b->node, b->id, (off - b->head_len) >> bulk_shift(b));
	int rc;

	s->gen = b->gen;
	s->off = off;
	s->len = len;
	s->node = b->node;
	s->busy = 0;
	do {
		rc = (int)fi_trecvv(ta->ep, iov, NULL, 3, FI_ADDR_UNSPEC, tag, 0, &s->ctx);
		if (rc == -FI_EAGAIN)
			fi_cq_read(ta->cq, NULL, 0);
	} while (rc == -FI_EAGAIN);
	if (rc)
		return fi_fail(rc, "fi_trecv");
	s->posted = 1;
	b->posted++;
	return DRAGON_OK;
}

/* Post receives for the next chunks into the free chunk buffers (one at a time when discarding:
 * they share one scratch buffer). */
static void bulk_fill(dg_ta *ta, struct bulk_rx *b)
{
	for (unsigned i = 0; i < b->nslots && b->next_off < b->msg_len; i++) {
		struct slot *s = &b->slots[i];
		size_t left = b->msg_len - b->next_off, n = (size_t)1 << bulk_shift(b);

		if (s->posted || s->busy)
			continue;
		if (b->discard) {
			int used = 0;
			for (unsigned j = 0; j < b->nslots; j++)
				used |= b->slots[j].posted || b->slots[j].busy;
			if (used)
				return;
		}
		if (n > left)
			n = left;
		if (bulk_post(ta, b, s, b->next_off, n) != DRAGON_OK) {
			ta_log_drop(ta, ++ta->st.drop_rxerr, "unposted-chunk");
			return; /* the sender goes silent for us; the watch gives the message up */
		}
		b->next_off += n;
	}
}

void ta_rx_done(dg_ta *ta, struct slot *s)
{
	if (!s->bulk) {
		ta_post_recv(ta, s);
		return;
	}
	s->busy = 0;
	if (ta_bulk_current(s) && !s->posted && bulk_post(ta, s->bulk, s, s->off, s->len) != DRAGON_OK)
		ta_log_drop(ta, ++ta->st.drop_rxerr, "unposted-chunk");
}

static struct bulk_rx *bulk_get(dg_ta *ta, struct peer *p)
{
	struct bulk_rx *b = p->brx;

	if (b)
		return b;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->node = p->node;
	b->nslots = ta->cfg.window;
	b->slots = calloc(b->nslots, sizeof(*b->slots));
	if (!b->slots) {
		free(b);
		return NULL;
	}
	for (unsigned i = 0; i < b->nslots; i++) {
		b->slots[i].buf = malloc(DG_FRAME_OVERHEAD);
		if (!b->slots[i].buf) {
			ta_bulk_free(b);
			return NULL;
		}
		b->slots[i].cap = DG_FRAME_OVERHEAD;
		b->slots[i].recv = 1;
		b->slots[i].bulk = b;
		b->slots[i].node = p->node;
	}
	p->brx = b;
	return b;
}

void ta_bulk_free(struct bulk_rx *b)
{
	if (!b)
		return;
	for (unsigned i = 0; b->slots && i < b->nslots; i++)
		free(b->slots[i].buf);
	free(b->slots);
	free(b->head);
	free(b->own);
	free(b->scratch);
	free(b);
}

void ta_bulk_start(dg_ta *ta, struct peer *p, struct slot *hs)
{
	const struct dg_frame_hdr *h = &hs->hdr;
	unsigned shift = TA_BULK_SHIFT(h->flags);
	struct bulk_rx *b;
	unsigned char *dst = NULL;
	size_t skip = 0;
	void *cookie = NULL;

	if (shift < 12 || shift > 30 || !ta->tagged) {
		dg_err(DRAGON_EPROTO, "large message of node %u with chunks of 2^%u bytes", h->src, shift);
		ta_log_drop(ta, ++ta->st.drop_malformed, "malformed");
		return;
	}
	if (!(b = bulk_get(ta, p))) {
		dg_err(DRAGON_ENOMEM, "receive state for node %u", h->src);
		ta_log_drop(ta, ++ta->st.drop_malformed, "undeliverable");
		return;
	}
	/* the last message of a restarted sender may still be handing back its receives */
	for (int i = 0; i < 1000 && b->aborting; i++)
		ta_progress(ta, 0);
	if (b->active) {
		dg_err(DRAGON_EPROTO, "node %u started a large message before its last one ended",
		       h->src);
		ta_log_drop(ta, ++ta->st.drop_malformed, "overlapping");
		return;
	}
	b->gen++;
	b->active = 1;
	ta->nbulk++;
	ta->st.bulk_in++;
	b->id = h->seq;
	b->port = h->port;
	b->msg_len = h->msg_len;
	b->head_len = h->len;
	b->next_off = h->len;
	b->have = 0;
	b->shift = shift;
	b->since = now_ns();
	b->own = NULL;
	b->head = malloc(h->len);
	if (b->head)
		memcpy(b->head, hs->buf + DG_FRAME_HDR, h->len);
	if (b->head && ta->place &&
	    ta->place(ta->place_arg, h->src, h->port, b->head, b->head_len, b->msg_len, &dst, &skip,
		      &cookie) == DRAGON_OK) {
		if (skip > b->head_len) {
			/* a caller's mistake: take the message back into our own memory */
			if (ta->unplace)
				ta->unplace(ta->place_arg, cookie);
			dst = NULL;
		} else {
			b->dst = dst;
			b->skip = skip;
			b->cookie = cookie;
			memcpy(dst, b->head + skip, b->head_len - skip);
			ta->st.bulk_placed++;
		}
	}
	if (!b->dst && b->head && (b->own = malloc(b->msg_len))) {
		memcpy(b->own, b->head, b->head_len);
		b->dst = b->own;
		b->skip = 0;
	}
	if (!b->dst) {
		/* no memory for it: its chunks are still taken (and checked), into one scratch
		 * buffer, so that the sender's sequence and credit go on; the message is dropped */
		if (!b->scratch || b->scratch_shift < shift) {
			free(b->scratch);
			b->scratch = malloc((size_t)1 << shift);
			b->scratch_shift = shift;
		}
		b->discard = 1;
		dg_err(DRAGON_ENOMEM, "no memory for a message of %zu bytes from node %u", b->msg_len,
		       h->src);
		ta_log_drop(ta, ++ta->st.drop_malformed, "unassembled");
		if (!b->scratch) {
			ta_bulk_abort(ta, p, "no memory at all");
			return;
		}
	}
	bulk_fill(ta, b);
}

/* A chunk left the delivery queue: 1 when it completed its message (then msg describes it). */
int ta_bulk_chunk_in(dg_ta *ta, struct peer *p, struct slot *s, struct dg_ta_msg *msg)
{
	struct bulk_rx *b = s->bulk;

	(void)p;
	s->busy = 0;
	if (s->gen != b->gen || !b->active || b->aborting)
		return 0; /* a chunk of a message given up */
	b->have += s->len;
	b->since = now_ns();
	bulk_fill(ta, b);
	if (b->head_len + b->have < b->msg_len)
		return 0;
	if (b->discard) {
		bulk_end(ta, b);
		return 0;
	}
	msg->src = b->node;
	msg->port = b->port;
	msg->len = b->msg_len;
	if (b->own) {
		ta->held_buf = b->own;
		msg->data = b->own;
		msg->placed = NULL;
		msg->head = b->msg_len;
	} else {
		ta->held_buf = b->head;
		msg->data = b->head;
		msg->placed = b->cookie;
		msg->head = b->head_len;
		b->head = NULL;
	}
	bulk_end(ta, b);
	return 1;
}

void ta_bulk_abort(dg_ta *ta, struct peer *p, const char *why)
{
	struct bulk_rx *b = p->brx;

	if (!b || !b->active || b->aborting)
		return;
	fprintf(stderr, "dragon-ta[%u]: gave up a message of %zu bytes from node %u at %zu: %s\n",
		ta->cfg.node, b->msg_len, b->node, b->head_len + b->have, why);
	b->aborting = 1;
	ta->st.bulk_aborted++;
	for (unsigned i = 0; i < b->nslots; i++)
		if (b->slots[i].posted)
			fi_cancel(&ta->ep->fid, &b->slots[i].ctx);
	/* the cancelled receives come back as completions (FI_ECANCELED, ta_recv.c); the memory
	 * goes back with the last of them */
	bulk_finish_abort(ta, b);
}

/*
 * A sender we are receiving a large message from, with receives posted for it, that stays silent
 * is probed after dead_ms / 4 and declared dead after dead_ms: the message is given up.
 * Waiting on ourselves (every chunk received, none consumed yet) is no silence of the sender.
 */
void ta_bulk_watch(dg_ta *ta)
{
	int64_t t = now_ns(), dead = (int64_t)ta->cfg.dead_ms * 1000000;

	for (size_t i = 0; i < ta->npeers && ta->nbulk; i++) {
		struct peer *p = &ta->peers[i];
		struct bulk_rx *b = p->brx;
		int64_t quiet;

		if (!b || !b->active || b->aborting)
			continue;
		if (!b->posted) {
			b->since = t;
			continue;
		}
		quiet = p->last_heard > b->since ? p->last_heard : b->since;
		if (t - quiet > dead) {
			ta_peer_mark_dead(ta, p, "silent in the middle of a message");
		} else if (t - quiet > dead / 4 && t - p->last_ping > dead / 4 &&
			   ta_peer_use(ta, p) == DRAGON_OK) {
			p->last_ping = t;
			ta_send_ctrl(ta, p, DG_FRAME_PING);
		}
	}
}

int64_t ta_bulk_due(dg_ta *ta)
{
	return ta->nbulk ? (int64_t)ta->cfg.dead_ms * 1000000 / 8 : -1;
}
