/* runtime/ta/ta_recv.c: the libfabric layer's receive path: completions, frame checks, reordering, reassembly, progress. */
#include "ta/ta_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>

/* Log a dropped frame; the first 100 of a kind and then every 1000th, so a flood cannot fill disks. */
#define log_drop ta_log_drop
void ta_log_drop(dg_ta *ta, uint64_t count, const char *kind)
{
	if (count <= 100 || count % 1000 == 0)
		fprintf(stderr, "dragon-ta[%u]: dropped %s frame (%" PRIu64 " so far): %s\n",
			ta->cfg.node, kind, count, dragon_errmsg());
}

int ta_post_recv(dg_ta *ta, struct slot *s)
{
	int rc;

	s->busy = 0;
	do {
		rc = (int)fi_recv(ta->ep, s->buf, s->cap, NULL, FI_ADDR_UNSPEC, &s->ctx);
		if (rc == -FI_EAGAIN)
			fi_cq_read(ta->cq, NULL, 0);
	} while (rc == -FI_EAGAIN);
	if (rc)
		return fi_fail(rc, "fi_recv");
	return DRAGON_OK;
}

/* A peer file is named and has not been read yet (it appears once the agents know each other). */
static int peer_file_unread(dg_ta *ta)
{
	return ta->peer_file[0] && !ta->peer_mtime.tv_sec && !ta->peer_mtime.tv_nsec;
}

/* The queue of DATA frames for dg_ta_recv (grows: chunks of large messages join the receive buffers). */
static void dq_push(dg_ta *ta, struct slot *s)
{
	if (ta->dq_len == ta->dq_cap) {
		unsigned cap = 2 * ta->dq_cap;
		struct slot **nq = malloc(cap * sizeof(*nq));
		if (!nq) {
			/* cannot happen before the machine is out of memory; the frame is lost */
			dg_err(DRAGON_ENOMEM, "delivery queue of %u", cap);
			log_drop(ta, ++ta->st.drop_malformed, "undeliverable");
			return;
		}
		for (unsigned i = 0; i < ta->dq_len; i++)
			nq[i] = ta->dq[(ta->dq_head + i) % ta->dq_cap];
		free(ta->dq);
		ta->dq = nq;
		ta->dq_head = 0;
		ta->dq_cap = cap;
	}
	ta->dq[(ta->dq_head + ta->dq_len++) % ta->dq_cap] = s;
}

/* A chunk of a large message arrived in three places: check it is the chunk that was asked for. */
static int bulk_decode(dg_ta *ta, struct slot *s, size_t n, struct dg_frame_hdr *h)
{
	struct bulk_rx *b = s->bulk;
	int rc;

	if (n != DG_FRAME_OVERHEAD + s->len)
		return dg_err(DRAGON_EPROTO, "chunk of %zu bytes where %zu were expected", n,
			      DG_FRAME_OVERHEAD + s->len);
	rc = dg_frame_open(ta->cfg.key, s->buf, ta_bulk_at(b, s->off), s->len,
			   s->buf + DG_FRAME_HDR, ta->cfg.max_msg, h);
	if (rc != DRAGON_OK)
		return rc;
	if (h->type != DG_FRAME_DATA || !(h->flags & DG_FRAME_F_BULK) || h->src != b->node ||
	    h->offset != s->off || h->msg_len != b->msg_len || h->port != b->port)
		return dg_err(DRAGON_EPROTO, "chunk from node %u is not [%zu, +%zu) of its message",
			      h->src, s->off, s->len);
	return DRAGON_OK;
}

static void handle_frame(dg_ta *ta, struct slot *s, size_t n)
{
	struct dg_frame_hdr h;
	const unsigned char *payload;
	struct peer *p;
	int rc;

	ta->st.frames_in++;
	ta->last_traffic = now_ns();
	rc = s->bulk ? bulk_decode(ta, s, n, &h)
		     : dg_frame_decode(ta->cfg.key, s->buf, n, ta->cfg.max_msg, &h, &payload);
	if (rc == DRAGON_EPROTO) {
		log_drop(ta, ++ta->st.drop_malformed, "malformed");
		goto repost;
	}
	if (rc != DRAGON_OK) {
		log_drop(ta, ++ta->st.drop_mac, "unauthenticated");
		goto repost;
	}
	if (h.dst != ta->cfg.node) {
		dg_err(DRAGON_EPROTO, "frame for node %u reached node %u", h.dst, ta->cfg.node);
		log_drop(ta, ++ta->st.drop_malformed, "misrouted");
		goto repost;
	}
	p = ta_peer_get(ta, h.src);
	if (!p && peer_file_unread(ta) && now_ns() < ta->peers_by) {
		/* Its services wrote the agents' addresses before ours did (they say ready before
		 * the exchange): the frame keeps its slot until the file is read (ta_early_retry).
		 * Taken for garbage, it was lost, and every later frame of that node then waited
		 * for it in the reorder window. */
		s->busy = 1;
		ta->early[ta->nearly].slot = s;
		ta->early[ta->nearly++].len = n;
		ta->st.frames_in--; /* counted when it is handled */
		return;
	}
	if (!p) {
		dg_err(DRAGON_ENOTFOUND, "node %u is not in the peer table", h.src);
		log_drop(ta, ++ta->st.drop_unknown, "unknown-peer");
		goto repost;
	}
	if (s->bulk && h.epoch != p->rx_epoch) {
		dg_err(DRAGON_EPROTO, "chunk of node %u's epoch %" PRIx64 " in a message of another",
		       h.src, h.epoch);
		log_drop(ta, ++ta->st.drop_malformed, "misplaced");
		goto repost;
	}
	if (h.epoch != p->rx_epoch) {
		for (int i = 0; i < TA_OLD_EPOCHS; i++)
			if (p->old_epochs[i] == h.epoch) {
				dg_err(DRAGON_EPERM, "frame of node %u's retired epoch %" PRIx64, h.src,
				       h.epoch);
				log_drop(ta, ++ta->st.drop_replay, "replayed");
				goto repost;
			}
		if (p->rx_epoch) {
			/* the peer's agent restarted: its counters start over, and so do ours to it */
			memmove(p->old_epochs + 1, p->old_epochs,
				(TA_OLD_EPOCHS - 1) * sizeof(p->old_epochs[0]));
			p->old_epochs[0] = p->rx_epoch;
			fprintf(stderr, "dragon-ta[%u]: node %u restarted (epoch %" PRIx64 ")\n",
				ta->cfg.node, h.src, h.epoch);
			p->tx_data = p->acked = 0;
			ta_acked_all(ta, p);
			ta_bulk_abort(ta, p, "its agent restarted");
			free(p->rbuf);
			p->rbuf = NULL;
			p->rlen = p->rhave = 0;
		}
		p->rx_epoch = h.epoch;
		memset(&p->win, 0, sizeof(p->win));
		for (unsigned i = 0; i < TA_REORDER; i++)
			if (p->rx_hold[i]) {
				ta_rx_done(ta, p->rx_hold[i]);
				p->rx_hold[i] = NULL;
			}
		/* A sender that started this epoch with us counts from 1. One that talked before we
		 * (re)started is further on: we cannot know what it sent before its first frame we
		 * see, so order starts there (frames below it, not replays, are delivered at once). */
		p->rx_next = h.seq <= TA_REORDER ? 1 : h.seq;
		p->rx_seen = 0;
		p->rx_consumed = p->ack_sent = 0;
		p->dead = 0;
	}
	if (dg_replay_accept(&p->win, h.seq) != DRAGON_OK) {
		log_drop(ta, ++ta->st.drop_replay, "replayed");
		goto repost;
	}
	p->last_heard = ta->last_traffic;
	if (h.ack > p->acked && h.ack <= p->tx_data)
		p->acked = h.ack;
	if (p->unacked_since && p->acked >= p->tx_data)
		ta_acked_all(ta, p);
	if (h.seq < p->rx_next) {
		/* only right after we met a sender mid-epoch: deliver as it comes */
		if (h.type == DG_FRAME_PING)
			p->pong_pending = 1;
		if (h.type != DG_FRAME_DATA)
			goto repost;
		s->hdr = h;
		s->node = h.src;
		s->busy = 1;
		dq_push(ta, s);
		return;
	}
	if (h.seq - p->rx_next >= TA_REORDER) {
		dg_err(DRAGON_EPROTO, "frame %" PRIu64 " of node %u outside the reorder window at %" PRIu64,
		       h.seq, h.src, p->rx_next);
		log_drop(ta, ++ta->st.drop_malformed, "unordered");
		goto repost;
	}
	if (h.type == DG_FRAME_PING)
		p->pong_pending = 1;
	if (h.type == DG_FRAME_DATA) {
		s->hdr = h;
		s->node = h.src;
		s->busy = 1;
		p->rx_hold[h.seq % TA_REORDER] = s;
	}
	p->rx_seen |= (uint64_t)1 << (h.seq - p->rx_next);
	/* Deliver every DATA frame whose predecessors have all arrived, in seq order. */
	while (p->rx_seen & 1) {
		struct slot **hold = &p->rx_hold[p->rx_next % TA_REORDER];
		if (*hold) {
			dq_push(ta, *hold);
			*hold = NULL;
		}
		p->rx_seen >>= 1;
		p->rx_next++;
	}
	if (h.type == DG_FRAME_DATA)
		return;
repost:
	ta_rx_done(ta, s);
}

/*
 * Frames held for the peer file: handled, in arrival order, once it is read (now: the agent just
 * read it), or dropped as unknown once peers_by passed. Looks at the file at most once a
 * millisecond. None is held again: the file is read, or the wait is over.
 */
void ta_early_retry(dg_ta *ta, int now)
{
	unsigned n = ta->nearly;
	int64_t t;

	if (!n)
		return;
	t = now_ns();
	if (!now && t - ta->early_look < 1000000)
		return;
	ta->early_look = t;
	if (peer_file_unread(ta))
		ta_peer_file_load(ta);
	if (peer_file_unread(ta) && t < ta->peers_by)
		return;
	ta->nearly = 0;
	for (unsigned i = 0; i < n; i++) {
		struct slot *s = ta->early[i].slot;
		s->busy = 0;
		handle_frame(ta, s, ta->early[i].len);
	}
}

/* Post the control frames that are due; the number still waiting (no buffer, provider busy). */
static unsigned flush_pending(dg_ta *ta)
{
	unsigned left = 0;

	for (size_t i = 0; i < ta->npeers; i++) {
		struct peer *p = &ta->peers[i];
		if (p->dead)
			continue;
		if (p->pong_pending && ta_send_ctrl(ta, p, DG_FRAME_PONG) != DRAGON_EAGAIN)
			p->pong_pending = 0;
		if (p->ack_pending && ta_send_ctrl(ta, p, DG_FRAME_ACK) != DRAGON_EAGAIN)
			p->ack_pending = 0;
		left += (p->pong_pending != 0) + (p->ack_pending != 0);
	}
	return left;
}

static void handle_error(dg_ta *ta)
{
	struct fi_cq_err_entry e;
	struct slot *s;

	memset(&e, 0, sizeof(e));
	if (fi_cq_readerr(ta->cq, &e, 0) != 1)
		return;
	s = e.op_context;
	if (!s)
		return;
	if (s->bulk) {
		ta_bulk_completed(ta, s);
		if (e.err == FI_ECANCELED || !ta_bulk_current(s))
			return;
		/* e.g. a message longer than the chunk asked for (forged, or a sender out of step):
		 * the right one may still come */
		dg_err(DRAGON_EPROTO, "chunk receive failed: %s",
		       fi_cq_strerror(ta->cq, e.prov_errno, e.err_data, NULL, 0));
		log_drop(ta, ++ta->st.drop_rxerr, "failed-receive");
		ta_rx_done(ta, s);
		return;
	}
	if (s->recv) {
		if (e.err != FI_ECANCELED) {
			/* a frame that never arrived: logged, it is the first clue to a stalled peer */
			dg_err(DRAGON_EPROTO, "receive failed: %s",
			       fi_cq_strerror(ta->cq, e.prov_errno, e.err_data, NULL, 0));
			log_drop(ta, ++ta->st.drop_rxerr, "failed-receive");
			ta_post_recv(ta, s);
		}
		return;
	}
	s->busy = 0;
	if (s >= ta->tx && s < ta->tx + ta->cfg.slots)
		ta->ntx_free++;
	if (s->ref) {
		s->ref->pending--;
		s->ref = NULL;
	}
	struct peer *p = ta_peer_find(ta, s->node);
	if (p)
		ta_peer_mark_dead(ta, p, fi_cq_strerror(ta->cq, e.prov_errno, e.err_data, NULL, 0));
}

static int handle_cq(dg_ta *ta, struct fi_cq_msg_entry *ent, ssize_t n)
{
	for (ssize_t i = 0; i < n; i++) {
		struct slot *s = ent[i].op_context;
		if (s->bulk) {
			ta_bulk_completed(ta, s);
			if (ta_bulk_current(s))
				handle_frame(ta, s, ent[i].len);
		} else if (s->recv) {
			handle_frame(ta, s, ent[i].len);
		} else {
			s->busy = 0;
			if (s >= ta->tx && s < ta->tx + ta->cfg.slots)
				ta->ntx_free++;
			if (s->ref) {
				s->ref->pending--;
				s->ref = NULL;
			}
		}
	}
	return (int)n;
}

/* One round of progress; sleeps up to block_ms when nothing happened for spin_us. */
int ta_progress(dg_ta *ta, int block_ms)
{
	struct fi_cq_msg_entry ent[16];
	ssize_t n;
	int done = 0;

	n = fi_cq_read(ta->cq, ent, 16);
	if (n > 0)
		done = handle_cq(ta, ent, n);
	else if (n == -FI_EAVAIL)
		handle_error(ta);
	else if (block_ms > 0 && now_ns() - ta->last_traffic > (int64_t)ta->cfg.spin_us * 1000) {
		ta->st.wakeups++;
		n = fi_cq_sread(ta->cq, ent, 16, NULL, block_ms);
		if (n > 0)
			done = handle_cq(ta, ent, n);
		else if (n == -FI_EAVAIL)
			handle_error(ta);
	}
	flush_pending(ta);
	ta_probe_silent(ta);
	ta_early_retry(ta, 0);
	if (ta->nbulk)
		ta_bulk_watch(ta);
	return done;
}

int dg_ta_wait_fd(dg_ta *ta)
{
	return ta->wait_fd;
}

int dg_ta_trywait(dg_ta *ta)
{
	struct fid *f = &ta->cq->fid;

	if (ta->dq_len)
		return DRAGON_EAGAIN;
	/* A credit or an answer that could not go out yet must not wait for the next wake-up: the
	 * peer may wait for nothing else. */
	if (flush_pending(ta))
		return DRAGON_EAGAIN;
	ta_probe_silent(ta);
	return fi_trywait(ta->fabric, &f, 1) == FI_SUCCESS ? DRAGON_OK : DRAGON_EAGAIN;
}

int dg_ta_timeout_ms(dg_ta *ta)
{
	int64_t ns = ta_probe_due(ta), bulk = ta_bulk_due(ta);
	int ms;

	if (bulk >= 0 && (ns < 0 || bulk < ns))
		ns = bulk;
	ms = ns < 0 ? -1 : (int)((ns + 999999) / 1000000);
	/* frames held for the peer file: local services ring the agent's bell once they wrote
	 * it; this is a backstop */
	if (ta->nearly && (ms < 0 || ms > 10))
		ms = 10;
	return ms;
}

int dg_ta_unacked(dg_ta *ta)
{
	return ta->nunacked > 0;
}

void dg_ta_ack_consumed(dg_ta *ta)
{
	for (size_t i = 0; i < ta->npeers; i++) {
		struct peer *p = &ta->peers[i];
		if (!p->dead && p->rx_consumed != p->ack_sent)
			p->ack_pending = 1;
	}
	flush_pending(ta);
}

int dg_ta_pending(dg_ta *ta)
{
	return ta->dq_len > 0;
}

void dg_ta_release(dg_ta *ta)
{
	if (ta->held_slot >= 0) {
		ta_rx_done(ta, &ta->rx[ta->held_slot]);
		ta->held_slot = -1;
	}
	free(ta->held_buf);
	ta->held_buf = NULL;
}

/* A DATA frame left the queue: count it and return credit when due. */
static void consumed(dg_ta *ta, struct peer *p, const struct dg_frame_hdr *h)
{
	p->rx_consumed++;
	if ((h->flags & DG_FRAME_F_ACKNOW) || p->rx_consumed - p->ack_sent >= ta->cfg.window / 2)
		p->ack_pending = 1;
}

int dg_ta_recv(dg_ta *ta, int timeout_ms, struct dg_ta_msg *msg)
{
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ns() + (int64_t)timeout_ms * 1000000;

	dg_ta_release(ta);
	for (;;) {
		while (ta->dq_len) {
			struct slot *s = ta->dq[ta->dq_head];
			const struct dg_frame_hdr *h = &s->hdr;
			struct peer *p = ta_peer_find(ta, h->src);

			ta->dq_head = (ta->dq_head + 1) % ta->dq_cap;
			ta->dq_len--;
			consumed(ta, p, h);
			if (s->bulk) {
				if (ta_bulk_chunk_in(ta, p, s, msg)) {
					flush_pending(ta);
					return DRAGON_OK;
				}
				continue;
			}
			if ((h->flags & DG_FRAME_F_BULK) && h->offset == 0 && h->len < h->msg_len) {
				ta_bulk_start(ta, p, s);
				ta_post_recv(ta, s);
				continue;
			}
			if (h->offset == 0 && h->len == h->msg_len) {
				ta->held_slot = (int)(s - ta->rx);
				msg->src = h->src;
				msg->port = h->port;
				msg->data = s->buf + DG_FRAME_HDR;
				msg->len = msg->head = h->len;
				msg->placed = NULL;
				flush_pending(ta);
				return DRAGON_OK;
			}
			if (h->offset == 0) {
				free(p->rbuf);
				p->rhave = 0;
				p->rlen = h->msg_len;
				p->rbuf = malloc(h->msg_len);
				if (!p->rbuf) {
					dg_err(DRAGON_ENOMEM, "reassembly of %" PRIu64 " bytes",
					       h->msg_len);
					log_drop(ta, ++ta->st.drop_malformed, "unassembled");
				}
			}
			if (!p->rbuf || h->offset != p->rhave || h->msg_len != p->rlen) {
				dg_err(DRAGON_EPROTO, "chunk at %" PRIu64 " of node %u out of order",
				       h->offset, h->src);
				log_drop(ta, ++ta->st.drop_malformed, "out-of-order");
				free(p->rbuf);
				p->rbuf = NULL;
				ta_rx_done(ta, s);
				continue;
			}
			memcpy(p->rbuf + p->rhave, s->buf + DG_FRAME_HDR, h->len);
			p->rhave += h->len;
			ta_post_recv(ta, s);
			if (p->rhave == p->rlen) {
				ta->held_buf = p->rbuf;
				p->rbuf = NULL;
				msg->src = h->src;
				msg->port = h->port;
				msg->data = ta->held_buf;
				msg->len = msg->head = p->rlen;
				msg->placed = NULL;
				flush_pending(ta);
				return DRAGON_OK;
			}
		}
		flush_pending(ta);
		int64_t t = now_ns();
		if (t >= deadline)
			return timeout_ms == 0 ? dg_err(DRAGON_EAGAIN, "no message")
					       : dg_err(DRAGON_ETIMEDOUT, "no message in %d ms",
							timeout_ms);
		int64_t left = (deadline - t) / 1000000;
		ta_progress(ta, left > 100 ? 100 : (int)left + 1);
	}
}

int dg_ta_progress(dg_ta *ta, int timeout_ms)
{
	int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;

	do {
		int64_t left = (deadline - now_ns()) / 1000000;
		ta_progress(ta, left > 100 ? 100 : (int)left);
	} while (now_ns() < deadline && !ta->dq_len);
	return DRAGON_OK;
}

