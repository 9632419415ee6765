/* runtime/ta/ta_send.c: the libfabric layer's send path: frames out, credits, chunking, waiting on a peer. */
#include "ta/ta_internal.h"

#include <string.h>

#include <sys/uio.h>

#include <rdma/fi_endpoint.h>
#include <rdma/fi_tagged.h>

/*
 * Post a frame. A control frame (sent from inside progress) never waits: EAGAIN leaves it pending.
 * A data frame drives progress while the provider pushes back, for at most dead_ms: rxm keeps
 * answering EAGAIN while it fails to connect to a dead node.
 */
/*
 * A chunk of a large message (payload non-NULL) goes as a tagged message gathered from three
 * places: its header and tag in the send buffer, its payload where the caller's message is
 * (ta_bulk.c); ref counts the frames the provider still reads from that memory.
 */
static int post_send(dg_ta *ta, struct slot *s, struct peer *p, size_t len, int may_wait,
		     const void *payload, uint64_t tag, struct dg_ta_ref *ref)
{
	int64_t start = now_ns();
	int rc;

	s->busy = 1;
	s->node = p->node;
	s->ref = NULL;
	if (!payload && (s->hdr.type == DG_FRAME_DATA || s->hdr.type == DG_FRAME_PING)) {
		ta->last_len = len < TA_LAST_FRAME ? len : 0;
		if (ta->last_len)
			memcpy(ta->last, s->buf, len);
	}
	for (;;) {
		if (payload) {
			struct iovec iov[3] = {{s->buf, DG_FRAME_HDR},
					       {(void *)payload, s->hdr.len},
					       {s->buf + DG_FRAME_HDR, DG_FRAME_MAC}};
			rc = (int)fi_tsendv(ta->ep, iov, NULL, 3, p->fa, tag, &s->ctx);
		} else {
			rc = (int)fi_send(ta->ep, s->buf, len, NULL, p->fa, &s->ctx);
		}
		if (rc != -FI_EAGAIN || !may_wait || p->dead)
			break;
		if (now_ns() - start > (int64_t)ta->cfg.dead_ms * 1000000)
			break;
		ta_progress(ta, 0);
	}
	if (rc == -FI_EAGAIN && !may_wait) {
		s->busy = 0;
		return DRAGON_EAGAIN;
	}
	if (rc || p->dead) {
		s->busy = 0;
		ta_peer_mark_dead(ta, p, rc ? fi_strerror(-rc) : "failed while sending");
		return dg_err(DRAGON_EPEER, "send to node %u: %s", p->node,
			      rc == -FI_EAGAIN ? "no progress (node unreachable)"
			      : rc ? fi_strerror(-rc) : "node died");
	}
	if (ref) {
		s->ref = ref;
		ref->pending++;
	}
	ta->st.frames_out++;
	ta->last_traffic = now_ns();
	return DRAGON_OK;
}

static void fill_hdr(dg_ta *ta, struct peer *p, struct dg_frame_hdr *h, uint8_t type)
{
	memset(h, 0, sizeof(*h));
	h->type = type;
	h->src = ta->cfg.node;
	h->dst = p->node;
	h->epoch = ta->epoch;
	h->seq = ++p->tx_seq;
	h->ack = p->rx_consumed;
	p->ack_sent = p->rx_consumed;
	p->ack_pending = 0;
}

/* Control frames use their own few buffers so that answering never waits on data credits. */
int ta_send_ctrl(dg_ta *ta, struct peer *p, uint8_t type)
{
	struct slot *s = NULL;
	uint64_t ack_sent = p->ack_sent;
	int ack_pending = p->ack_pending, rc;
	size_t len;

	for (unsigned i = 0; i < TA_CTRL_SLOTS; i++)
		if (!ta->ctrl[i].busy) {
			s = &ta->ctrl[i];
			break;
		}
	if (!s)
		return DRAGON_EAGAIN; /* retried from the progress loop */

	if (p->dead || ta_peer_use(ta, p) != DRAGON_OK)
		return DRAGON_EPEER;
	fill_hdr(ta, p, &s->hdr, type);
	if (ta->test_drop_n && ta->test_drop_type == type) {
		/* tests: a frame that never reaches the peer (its number taken back, so that only
		 * what it carried is missing, not the order of what follows) */
		ta->test_drop_n--;
		p->tx_seq--;
		return DRAGON_OK;
	}
	dg_frame_encode(ta->cfg.key, &s->hdr, NULL, s->buf, &len);
	if (ta->test_busy_n && ta->test_busy_type == type) {
		ta->test_busy_n--; /* tests: the provider pushes back */
		s->busy = 0;
		rc = DRAGON_EAGAIN;
	} else {
		rc = post_send(ta, s, p, len, 0, NULL, 0, NULL);
	}
	if (rc == DRAGON_EAGAIN) {
		/*
		 * Not posted: take the frame back. Its sequence number would otherwise be a hole the
		 * receiver's reorder window never passes (every later frame of ours held there for
		 * good), and the ack it carried would count as sent: a credit never returned.
		 */
		p->tx_seq--;
		p->ack_sent = ack_sent;
		p->ack_pending = ack_pending;
	}
	return rc;
}

void dg_ta_test_drop(dg_ta *ta, uint8_t type, unsigned n)
{
	ta->test_drop_type = type;
	ta->test_drop_n = n;
}

void dg_ta_test_busy(dg_ta *ta, uint8_t type, unsigned n)
{
	ta->test_busy_type = type;
	ta->test_busy_n = n;
}

/*
 * Credit. A peer that consumed our data says so in the ack of its next frame or in an ACK frame,
 * sent once. If that frame is lost, or the provider does not hand it over (seen with tcp;ofi_rxm
 * under load: the receiver had consumed and acknowledged everything, the sender sat without
 * credit, both agents asleep, for good; likewise data frames that had left the sender and never
 * reached the receiver), nothing would ever ask again. So a peer that owes us an acknowledgement
 * and stays silent is probed: a PING, answered by a PONG that carries the current ack (and gives
 * the provider traffic to move). The first probe goes after PROBE_MIN_MS of silence, then ever
 * more seldom while the peer stays silent (a receiver that is merely slow, all its buffers full,
 * is not pestered), at most every dead_ms/4; an answer starts over at PROBE_MIN_MS. Silence alone
 * does not make such a peer dead (a slow receiver slows its senders, nothing is dropped): a dead
 * one fails the probe's send, or an operation that waits on it gives up after dead_ms.
 */
#define PROBE_MIN_MS 20

static int64_t probe_max(dg_ta *ta)
{
	int64_t max = (int64_t)ta->cfg.dead_ms * 1000000 / 4;

	return max > PROBE_MIN_MS * 1000000LL ? max : PROBE_MIN_MS * 1000000LL;
}

static void await_ack(dg_ta *ta, struct peer *p)
{
	if (p->unacked_since)
		return;
	p->unacked_since = now_ns();
	p->probe_gap = PROBE_MIN_MS * 1000000LL;
	ta->nunacked++;
}

void ta_acked_all(dg_ta *ta, struct peer *p)
{
	if (!p->unacked_since)
		return;
	p->unacked_since = 0;
	ta->nunacked--;
}

void ta_probe_silent(dg_ta *ta)
{
	int64_t t;

	if (!ta->nunacked)
		return;
	t = now_ns();
	for (size_t i = 0; i < ta->npeers; i++) {
		struct peer *p = &ta->peers[i];
		int64_t quiet;

		if (!p->unacked_since)
			continue;
		if (p->dead || p->acked >= p->tx_data) {
			ta_acked_all(ta, p);
			continue;
		}
		quiet = p->last_heard > p->unacked_since ? p->last_heard : p->unacked_since;
		if (p->last_ping > quiet)
			quiet = p->last_ping;
		if (t - quiet < p->probe_gap)
			continue;
		/* heard nothing since the last probe: wait longer before the next */
		if (p->last_ping > p->last_heard && p->last_ping > p->unacked_since)
			p->probe_gap = 2 * p->probe_gap < probe_max(ta) ? 2 * p->probe_gap : probe_max(ta);
		else
			p->probe_gap = PROBE_MIN_MS * 1000000LL;
		p->last_ping = t;
		if (ta_send_ctrl(ta, p, DG_FRAME_PING) == DRAGON_OK)
			ta->st.probes++;
	}
}

/* Nanoseconds until the next probe is due, or -1 when no peer owes us an acknowledgement. */
int64_t ta_probe_due(dg_ta *ta)
{
	int64_t t, due = -1;

	if (!ta->nunacked)
		return -1;
	t = now_ns();
	for (size_t i = 0; i < ta->npeers; i++) {
		struct peer *p = &ta->peers[i];
		int64_t quiet, left;

		if (!p->unacked_since)
			continue;
		quiet = p->last_heard > p->unacked_since ? p->last_heard : p->unacked_since;
		if (p->last_ping > quiet)
			quiet = p->last_ping;
		left = quiet + p->probe_gap - t;
		if (left < 0)
			left = 0;
		if (due < 0 || left < due)
			due = left;
	}
	return due;
}

/*
 * Wait on a peer until cond(); a silent peer is pinged after a quarter of dead_ms and declared
 * dead after dead_ms, so no operation on a dead node hangs.
 */
static int wait_peer(dg_ta *ta, struct peer *p, int (*cond)(dg_ta *, struct peer *))
{
	int64_t start = now_ns(), dead = (int64_t)ta->cfg.dead_ms * 1000000;

	while (!cond(ta, p)) {
		int64_t t = now_ns(), heard = p->last_heard > start ? p->last_heard : start;
		if (p->dead)
			return dg_err(DRAGON_EPEER, "node %u's transport agent is dead", p->node);
		if (t - heard > dead) {
			ta_peer_mark_dead(ta, p, "silent while we waited");
			return dg_err(DRAGON_EPEER, "node %u's transport agent silent for %d ms",
				      p->node, ta->cfg.dead_ms);
		}
		if (t - heard > dead / 4 && t - p->last_ping > dead / 4) {
			p->last_ping = t;
			ta_send_ctrl(ta, p, DG_FRAME_PING);
		}
		ta_progress(ta, ta->cfg.dead_ms / 8 > 0 ? ta->cfg.dead_ms / 8 : 1);
	}
	return DRAGON_OK;
}

static int can_send(dg_ta *ta, struct peer *p)
{
	return ta->ntx_free > 0 && p->tx_data - p->acked < ta->cfg.window;
}

static int all_acked(dg_ta *ta, struct peer *p)
{
	return p->acked >= p->tx_data;
}

/* The checks every send makes; the peer, ready to talk to, in *out. */
static int send_peer(dg_ta *ta, uint32_t node, size_t len, struct peer **out)
{
	struct peer *p = ta_peer_get(ta, node);

	if (!p)
		return dg_err(DRAGON_ENOTFOUND, "node %u is not in the peer table", node);
	if (len > ta->cfg.max_msg)
		return dg_err(DRAGON_ETOOBIG, "message of %zu bytes exceeds the limit %zu", len,
			      ta->cfg.max_msg);
	if (p->dead)
		return dg_err(DRAGON_EPEER, "node %u's transport agent is dead", node);
	*out = p;
	return ta_peer_use(ta, p);
}

/*
 * Post the chunks of a message from *off on while credits last: DRAGON_OK when all are posted,
 * DRAGON_EAGAIN (with *off advanced) when credits ran out. A zero-byte message is one empty
 * frame: the loop runs once with *off == len == 0. acknow asks the peer to acknowledge the
 * last chunk as soon as it is consumed.
 */
static int post_chunks(dg_ta *ta, struct peer *p, uint32_t port, const void *buf, size_t len,
		       size_t *off, int acknow, struct dg_ta_ref *ref)
{
	/* zero-copy when the caller keeps buf for us (ref) and the message is large */
	int bulk = ref && ta->tagged && ta->cfg.bulk_min && len > ta->cfg.bulk_min;
	size_t step = bulk ? (size_t)1 << ta->bulk_shift : ta->cfg.chunk;
	int rc;

	do {
		size_t n = len - *off < step ? len - *off : step, flen;
		struct slot *s = NULL;

		if (bulk && *off == 0)
			n = TA_BULK_HEAD;
		if (bulk && ta->cfg.test_stall && *off >= ta->cfg.test_stall)
			return DRAGON_EAGAIN; /* tests: a sender stuck mid-message */
		if (!can_send(ta, p)) {
			ta_progress(ta, 0);
			if (!can_send(ta, p))
				return p->dead ? dg_err(DRAGON_EPEER, "node %u's transport agent is dead",
							p->node)
					       : DRAGON_EAGAIN;
		}
		for (unsigned i = 0; i < ta->cfg.slots && !s; i++)
			if (!ta->tx[i].busy)
				s = &ta->tx[i];
		if (!s)
			return dg_err(DRAGON_EPROTO, "send buffer count out of step (%u free)", ta->ntx_free);
		ta->ntx_free--;
		fill_hdr(ta, p, &s->hdr, DG_FRAME_DATA);
		s->hdr.port = port;
		s->hdr.len = (uint32_t)n;
		s->hdr.msg_len = len;
		s->hdr.offset = *off;
		if (acknow && *off + n == len)
			s->hdr.flags |= DG_FRAME_F_ACKNOW;
		if (bulk)
			s->hdr.flags |= DG_FRAME_F_BULK | (uint16_t)(ta->bulk_shift << 8);
		p->tx_data++;
		if (bulk && *off > 0) {
			const unsigned char *at = (const unsigned char *)buf + *off;
			dg_frame_seal(ta->cfg.key, &s->hdr, at, s->buf, s->buf + DG_FRAME_HDR);
			rc = post_send(ta, s, p, DG_FRAME_OVERHEAD + n, 1, at,
				       ta_bulk_tag(ta->cfg.node, p->tx_bulk_id,
						   (*off - TA_BULK_HEAD) >> ta->bulk_shift),
				       ref);
		} else {
			if (bulk)
				p->tx_bulk_id = s->hdr.seq;
			dg_frame_encode(ta->cfg.key, &s->hdr, (const unsigned char *)buf + *off,
					s->buf, &flen);
			rc = post_send(ta, s, p, flen, 1, NULL, 0, NULL);
		}
		if (rc != DRAGON_OK) {
			ta->ntx_free++;
			return rc;
		}
		await_ack(ta, p); /* probed if the peer stays silent while it owes the ack */
		*off += n;
	} while (*off < len);
	return DRAGON_OK;
}

/* The provider is done with the caller's memory of a zero-copy send (or gave up on the peer). */
static int send_done(dg_ta *ta, struct dg_ta_ref *ref, struct peer *p)
{
	int64_t start = now_ns(), dead = (int64_t)ta->cfg.dead_ms * 1000000;

	while (ref->pending && !p->dead && now_ns() - start < dead)
		ta_progress(ta, 1);
	return ref->pending ? dg_err(DRAGON_EPEER, "node %u did not take a message in %d ms",
				     p->node, ta->cfg.dead_ms)
			    : DRAGON_OK;
}

int dg_ta_send(dg_ta *ta, uint32_t node, uint32_t port, const void *buf, size_t len,
	       enum dg_ta_mode mode)
{
	struct peer *p = NULL;
	struct dg_ta_ref ref = {0};
	size_t off = 0;
	int rc;

	if ((rc = send_peer(ta, node, len, &p)) != DRAGON_OK)
		return rc;
	/* Buffered: copied (the caller may reuse buf at once, and the next message goes while
	 * this one is on the wire). Deposited waits for the peer anyway: sent from buf itself. */
	while ((rc = post_chunks(ta, p, port, buf, len, &off, mode == DG_TA_DEPOSITED,
				 mode == DG_TA_DEPOSITED ? &ref : NULL)) == DRAGON_EAGAIN)
		if ((rc = wait_peer(ta, p, can_send)) != DRAGON_OK)
			break;
	if (rc == DRAGON_OK && mode == DG_TA_DEPOSITED)
		rc = wait_peer(ta, p, all_acked);
	/* buf is the caller's again only once the provider no longer reads it */
	if (ref.pending && send_done(ta, &ref, p) != DRAGON_OK && rc == DRAGON_OK)
		rc = DRAGON_EPEER;
	return rc;
}

int dg_ta_send_nb(dg_ta *ta, uint32_t node, uint32_t port, const void *buf, size_t len,
		  size_t *off, struct dg_ta_ref *ref)
{
	struct peer *p = NULL;
	int rc = send_peer(ta, node, len, &p);

	return rc != DRAGON_OK ? rc : post_chunks(ta, p, port, buf, len, off, 0, ref);
}

int dg_ta_send_raw(dg_ta *ta, uint32_t node, const void *buf, size_t len)
{
	struct peer *p = ta_peer_get(ta, node);
	struct slot *s = &ta->ctrl[0];
	int rc;

	if (!p)
		return dg_err(DRAGON_ENOTFOUND, "node %u is not in the peer table", node);
	if (len > s->cap)
		return dg_err(DRAGON_ETOOBIG, "raw frame of %zu bytes", len);
	while (s->busy)
		ta_progress(ta, 0);
	if ((rc = ta_peer_use(ta, p)) != DRAGON_OK)
		return rc;
	memcpy(s->buf, buf, len);
	s->hdr.type = 0;
	return post_send(ta, s, p, len, 1, NULL, 0, NULL);
}

int dg_ta_last_frame(dg_ta *ta, unsigned char *buf, size_t *len)
{
	if (!ta->last_len || *len < ta->last_len)
		return dg_err(DRAGON_ENOTFOUND, "no small frame sent yet");
	memcpy(buf, ta->last, ta->last_len);
	*len = ta->last_len;
	return DRAGON_OK;
}

