/* runtime/ta/ta.c: transport agent over libfabric RDM: peers, credits, chunking, MAC, liveness. */
#include "ta/ta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <sodium.h>

#include "core/err.h"

#define TA_ADDR_MAX 128
#define TA_CTRL_SLOTS 16
#define TA_OLD_EPOCHS 4
#define TA_LAST_FRAME 4096
#define TA_REORDER 64 /* frames one peer can have in flight: far above window + control slots */

struct slot {
	struct fi_context2 ctx; /* first: completions hand back &ctx, which is the slot */
	unsigned char *buf;
	size_t cap;
	int recv; /* a receive buffer (else a send buffer) */
	int busy; /* send: posted and not completed; recv: holding a frame not yet consumed */
	uint32_t node;
	struct dg_frame_hdr hdr;
};

struct peer {
	uint32_t node;
	unsigned char addr[TA_ADDR_MAX];
	size_t addrlen;
	int inserted; /* in the address vector (connections are made on first use) */
	fi_addr_t fa;
	int dead;
	/* our side of the conversation */
	uint64_t tx_seq, tx_data, acked;
	/* their side */
	uint64_t rx_epoch, old_epochs[TA_OLD_EPOCHS];
	struct dg_replay win;
	/*
	 * Completions do not come in send order: a provider may finish a large frame (rendezvous)
	 * after a small one sent behind it (eager). Frames are put back in seq order here: every
	 * frame below rx_next has arrived; bit i of rx_seen says seq rx_next + i has; a DATA frame
	 * waiting for a gap sits in rx_hold[seq % TA_REORDER] (receive slot + 1).
	 */
	uint64_t rx_next, rx_seen;
	unsigned rx_hold[TA_REORDER];
	uint64_t rx_consumed, ack_sent;
	int ack_pending, pong_pending;
	int64_t last_heard, last_ping;
	/* reassembly of a chunked message */
	unsigned char *rbuf;
	size_t rlen, rhave;
};

struct dg_ta {
	struct dg_ta_config cfg;
	char provider[64], iface[64], bind[128], peer_file[512];
	uint64_t epoch;
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	struct fid_cq *cq;
	struct fid_ep *ep;
	int wait_fd; /* the CQ's wait object when the provider gives one, else -1 */
	struct slot *tx, *rx, *ctrl;
	unsigned ntx_free;
	unsigned *dq; /* receive slots holding DATA frames, in arrival order */
	unsigned dq_head, dq_len;
	int held_slot;           /* receive slot of the message handed out, or -1 */
	unsigned char *held_buf; /* reassembled message handed out, or NULL */
	struct peer *peers;
	size_t npeers, peers_cap;
	struct timespec peer_mtime;
	int64_t last_traffic;
	struct dg_ta_stats st;
	unsigned char last[TA_LAST_FRAME];
	size_t last_len;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int fi_fail(int rc, const char *what)
{
	return dg_err(DRAGON_EPEER, "libfabric %s: %s", what, fi_strerror(-rc));
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

void dg_ta_config_init(struct dg_ta_config *cfg)
{
	const char *e;

	memset(cfg, 0, sizeof(*cfg));
	cfg->provider = "tcp;ofi_rxm";
	cfg->chunk = 256 * 1024;
	cfg->window = 16;
	cfg->slots = 32;
	cfg->max_msg = (size_t)1 << 30;
	cfg->dead_ms = 5000;
	cfg->spin_us = 20000;
	if ((e = getenv("DRAGON_TA_PROVIDER")) && *e)
		cfg->provider = e;
	if ((e = getenv("DRAGON_TA_IFACE")) && *e)
		cfg->iface = e;
	if ((e = getenv("DRAGON_TA_BIND")) && *e)
		cfg->bind = e;
	if ((e = getenv("DRAGON_TA_DEAD_MS")) && atoi(e) > 0)
		cfg->dead_ms = atoi(e);
	if ((e = getenv("DRAGON_TA_SPIN_US")) && atoi(e) >= 0)
		cfg->spin_us = atoi(e);
	/* Chunk and window trade memory for bandwidth: slots x chunk bytes each way per agent. */
	if ((e = getenv("DRAGON_TA_CHUNK_KB")) && atoi(e) >= 4 && atoi(e) <= 16384)
		cfg->chunk = (size_t)atoi(e) << 10;
	if ((e = getenv("DRAGON_TA_WINDOW")) && atoi(e) >= 2 && atoi(e) <= 1024) {
		cfg->window = (unsigned)atoi(e);
		cfg->slots = 2 * cfg->window;
	}
}

/* Log a dropped frame; the first 100 of a kind and then every 1000th, so a flood cannot fill disks. */
static void log_drop(dg_ta *ta, uint64_t count, const char *kind)
{
	if (count <= 100 || count % 1000 == 0)
		fprintf(stderr, "dragon-ta[%u]: dropped %s frame (%" PRIu64 " so far): %s\n",
			ta->cfg.node, kind, count, dragon_errmsg());
}

static struct peer *peer_find(dg_ta *ta, uint32_t node)
{
	for (size_t i = 0; i < ta->npeers; i++)
		if (ta->peers[i].node == node)
			return &ta->peers[i];
	return NULL;
}

int dg_ta_add_peer(dg_ta *ta, uint32_t node, const void *addr, size_t len)
{
	struct peer *p;

	if (len == 0 || len > TA_ADDR_MAX)
		return dg_err(DRAGON_EINVAL, "endpoint address of node %u is %zu bytes (1..%d)", node,
			      len, TA_ADDR_MAX);
	p = peer_find(ta, node);
	if (p && p->addrlen == len && memcmp(p->addr, addr, len) == 0)
		return DRAGON_OK;
	if (!p) {
		if (ta->npeers == ta->peers_cap) {
			size_t cap = ta->peers_cap ? 2 * ta->peers_cap : 8;
			struct peer *np = realloc(ta->peers, cap * sizeof(*np));
			if (!np)
				return dg_err(DRAGON_ENOMEM, "peer table of %zu entries", cap);
			ta->peers = np;
			ta->peers_cap = cap;
		}
		p = &ta->peers[ta->npeers++];
		memset(p, 0, sizeof(*p));
		p->node = node;
	} else if (p->inserted) {
		/* the node's agent moved: forget the old address */
		fi_av_remove(ta->av, &p->fa, 1, 0);
		p->inserted = 0;
	}
	memcpy(p->addr, addr, len);
	p->addrlen = len;
	p->dead = 0;
	return DRAGON_OK;
}

/* Read the static peer table if it changed since the last read. Lines: "<node> <hex address>". */
static int peer_file_load(dg_ta *ta)
{
	struct stat sb;
	FILE *f = NULL;
	char line[2 * TA_ADDR_MAX + 64];
	int rv = -1;

	if (!ta->peer_file[0])
		return DRAGON_OK;
	if (stat(ta->peer_file, &sb) != 0)
		return dg_err_sys("stat peer table %s", ta->peer_file);
	if (sb.st_mtim.tv_sec == ta->peer_mtime.tv_sec && sb.st_mtim.tv_nsec == ta->peer_mtime.tv_nsec)
		return DRAGON_OK;
	f = fopen(ta->peer_file, "r");
	if (!f)
		return dg_err_sys("open peer table %s", ta->peer_file);
	for (int lineno = 1; fgets(line, sizeof(line), f); lineno++) {
		unsigned long node;
		char *p = line, *end;
		unsigned char addr[TA_ADDR_MAX];
		size_t n = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == 0)
			continue;
		errno = 0;
		node = strtoul(p, &end, 10);
		if (errno || end == p || node > UINT32_MAX || (*end != ' ' && *end != '\t')) {
			rv = dg_err(DRAGON_EINVAL, "%s:%d: expected '<node> <hex address>'",
				    ta->peer_file, lineno);
			goto out;
		}
		p = end;
		while (*p == ' ' || *p == '\t')
			p++;
		{
			const char *hex_end = p;
			size_t got = 0;

			/* Stops at the first non-hex character; fails if the address is too long. */
			if (sodium_hex2bin(addr, TA_ADDR_MAX, p, strlen(p), NULL, &got, &hex_end) == 0)
				n = got;
			p = line + (hex_end - line);
		}
		if (n == 0 || (*p != '\n' && *p != 0 && *p != ' ')) {
			rv = dg_err(DRAGON_EINVAL, "%s:%d: bad hex endpoint address", ta->peer_file,
				    lineno);
			goto out;
		}
		if ((rv = dg_ta_add_peer(ta, (uint32_t)node, addr, n)) != DRAGON_OK)
			goto out;
	}
	ta->peer_mtime = sb.st_mtim;
	rv = DRAGON_OK;
out:
	fclose(f);
	return rv;
}

/* The peer for node, from the table (reloaded when the node is unknown). NULL if none. */
static struct peer *peer_get(dg_ta *ta, uint32_t node)
{
	struct peer *p = peer_find(ta, node);

	if (!p && peer_file_load(ta) == DRAGON_OK)
		p = peer_find(ta, node);
	return p;
}

/* Connections are lazy: a peer enters the address vector, and rxm connects, on first use. */
static int peer_use(dg_ta *ta, struct peer *p)
{
	int rc;

	if (p->inserted)
		return DRAGON_OK;
	rc = fi_av_insert(ta->av, p->addr, 1, &p->fa, 0, NULL);
	if (rc != 1)
		return dg_err(DRAGON_EPEER, "address of node %u rejected by the provider (%d)", p->node,
			      rc);
	p->inserted = 1;
	return DRAGON_OK;
}

static int post_recv(dg_ta *ta, struct slot *s);

static void peer_mark_dead(dg_ta *ta, struct peer *p, const char *why)
{
	if (p->dead)
		return;
	p->dead = 1;
	fprintf(stderr, "dragon-ta[%u]: node %u is dead: %s\n", ta->cfg.node, p->node, why);
	for (unsigned i = 0; i < TA_REORDER; i++)
		if (p->rx_hold[i]) {
			post_recv(ta, &ta->rx[p->rx_hold[i] - 1]);
			p->rx_hold[i] = 0;
		}
	p->rx_seen = 0;
	free(p->rbuf);
	p->rbuf = NULL;
	p->rlen = p->rhave = 0;
}

static int post_recv(dg_ta *ta, struct slot *s)
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

static int progress(dg_ta *ta, int block_ms);

/*
 * Post a frame. A control frame (sent from inside progress) never waits: EAGAIN leaves it pending.
 * A data frame drives progress while the provider pushes back, for at most dead_ms: rxm keeps
 * answering EAGAIN while it fails to connect to a dead node.
 */
static int post_send(dg_ta *ta, struct slot *s, struct peer *p, size_t len, int may_wait)
{
	int64_t start = now_ns();
	int rc;

	s->busy = 1;
	s->node = p->node;
	if (s->hdr.type == DG_FRAME_DATA || s->hdr.type == DG_FRAME_PING) {
		ta->last_len = len < TA_LAST_FRAME ? len : 0;
		if (ta->last_len)
			memcpy(ta->last, s->buf, len);
	}
	for (;;) {
		rc = (int)fi_send(ta->ep, s->buf, len, NULL, p->fa, &s->ctx);
		if (rc != -FI_EAGAIN || !may_wait || p->dead)
			break;
		if (now_ns() - start > (int64_t)ta->cfg.dead_ms * 1000000)
			break;
		progress(ta, 0);
	}
	if (rc == -FI_EAGAIN && !may_wait) {
		s->busy = 0;
		return DRAGON_EAGAIN;
	}
	if (rc || p->dead) {
		s->busy = 0;
		peer_mark_dead(ta, p, rc ? fi_strerror(-rc) : "failed while sending");
		return dg_err(DRAGON_EPEER, "send to node %u: %s", p->node,
			      rc == -FI_EAGAIN ? "no progress (node unreachable)"
			      : rc ? fi_strerror(-rc) : "node died");
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
static int send_ctrl(dg_ta *ta, struct peer *p, uint8_t type)
{
	struct slot *s = NULL;
	size_t len;

	for (unsigned i = 0; i < TA_CTRL_SLOTS; i++)
		if (!ta->ctrl[i].busy) {
			s = &ta->ctrl[i];
			break;
		}
	if (!s)
		return DRAGON_EAGAIN; /* retried from the progress loop */
	if (p->dead || peer_use(ta, p) != DRAGON_OK)
		return DRAGON_EPEER;
	fill_hdr(ta, p, &s->hdr, type);
	dg_frame_encode(ta->cfg.key, &s->hdr, NULL, s->buf, &len);
	return post_send(ta, s, p, len, 0);
}

static void handle_frame(dg_ta *ta, struct slot *s, size_t n)
{
	struct dg_frame_hdr h;
	const unsigned char *payload;
	struct peer *p;
	int rc;

	ta->st.frames_in++;
	ta->last_traffic = now_ns();
	rc = dg_frame_decode(ta->cfg.key, s->buf, n, ta->cfg.max_msg, &h, &payload);
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
	p = peer_get(ta, h.src);
	if (!p && ta->peer_file[0]) {
		/* A fabric writes the table right after its agents exchanged addresses, and a fast
		 * node may talk before a slow one has written it: give the file a moment. */
		struct stat sb;
		for (int i = 0; i < 200 && !p && stat(ta->peer_file, &sb) != 0; i++) {
			struct timespec ts = {0, 10 * 1000000};
			nanosleep(&ts, NULL);
			p = peer_get(ta, h.src);
		}
	}
	if (!p) {
		dg_err(DRAGON_ENOTFOUND, "node %u is not in the peer table", h.src);
		log_drop(ta, ++ta->st.drop_unknown, "unknown-peer");
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
			free(p->rbuf);
			p->rbuf = NULL;
			p->rlen = p->rhave = 0;
		}
		p->rx_epoch = h.epoch;
		memset(&p->win, 0, sizeof(p->win));
		for (unsigned i = 0; i < TA_REORDER; i++)
			if (p->rx_hold[i]) {
				post_recv(ta, &ta->rx[p->rx_hold[i] - 1]);
				p->rx_hold[i] = 0;
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
	if (h.seq < p->rx_next) {
		/* only right after we met a sender mid-epoch: deliver as it comes */
		if (h.type == DG_FRAME_PING)
			p->pong_pending = 1;
		if (h.type != DG_FRAME_DATA)
			goto repost;
		s->hdr = h;
		s->node = h.src;
		s->busy = 1;
		ta->dq[(ta->dq_head + ta->dq_len++) % ta->cfg.slots] = (unsigned)(s - ta->rx);
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
		p->rx_hold[h.seq % TA_REORDER] = (unsigned)(s - ta->rx) + 1;
	}
	p->rx_seen |= (uint64_t)1 << (h.seq - p->rx_next);
	/* Deliver every DATA frame whose predecessors have all arrived, in seq order. */
	while (p->rx_seen & 1) {
		unsigned *hold = &p->rx_hold[p->rx_next % TA_REORDER];
		if (*hold) {
			ta->dq[(ta->dq_head + ta->dq_len++) % ta->cfg.slots] = *hold - 1;
			*hold = 0;
		}
		p->rx_seen >>= 1;
		p->rx_next++;
	}
	if (h.type == DG_FRAME_DATA)
		return;
repost:
	post_recv(ta, s);
}

static void flush_pending(dg_ta *ta)
{
	for (size_t i = 0; i < ta->npeers; i++) {
		struct peer *p = &ta->peers[i];
		if (p->dead)
			continue;
		if (p->pong_pending && send_ctrl(ta, p, DG_FRAME_PONG) != DRAGON_EAGAIN)
			p->pong_pending = 0;
		if (p->ack_pending && send_ctrl(ta, p, DG_FRAME_ACK) != DRAGON_EAGAIN)
			p->ack_pending = 0;
	}
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
	if (s->recv) {
		if (e.err != FI_ECANCELED)
			post_recv(ta, s);
		return;
	}
	s->busy = 0;
	if (s >= ta->tx && s < ta->tx + ta->cfg.slots)
		ta->ntx_free++;
	struct peer *p = peer_find(ta, s->node);
	if (p)
		peer_mark_dead(ta, p, fi_cq_strerror(ta->cq, e.prov_errno, e.err_data, NULL, 0));
}

static int handle_cq(dg_ta *ta, struct fi_cq_msg_entry *ent, ssize_t n)
{
	for (ssize_t i = 0; i < n; i++) {
		struct slot *s = ent[i].op_context;
		if (s->recv) {
			handle_frame(ta, s, ent[i].len);
		} else {
			s->busy = 0;
			if (s >= ta->tx && s < ta->tx + ta->cfg.slots)
				ta->ntx_free++;
		}
	}
	return (int)n;
}

/* One round of progress; sleeps up to block_ms when nothing happened for spin_us. */
static int progress(dg_ta *ta, int block_ms)
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
	return done;
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
			peer_mark_dead(ta, p, "silent while we waited");
			return dg_err(DRAGON_EPEER, "node %u's transport agent silent for %d ms",
				      p->node, ta->cfg.dead_ms);
		}
		if (t - heard > dead / 4 && t - p->last_ping > dead / 4) {
			p->last_ping = t;
			send_ctrl(ta, p, DG_FRAME_PING);
		}
		progress(ta, ta->cfg.dead_ms / 8 > 0 ? ta->cfg.dead_ms / 8 : 1);
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
	struct peer *p = peer_get(ta, node);

	if (!p)
		return dg_err(DRAGON_ENOTFOUND, "node %u is not in the peer table", node);
	if (len > ta->cfg.max_msg)
		return dg_err(DRAGON_ETOOBIG, "message of %zu bytes exceeds the limit %zu", len,
			      ta->cfg.max_msg);
	if (p->dead)
		return dg_err(DRAGON_EPEER, "node %u's transport agent is dead", node);
	*out = p;
	return peer_use(ta, p);
}

/*
 * Post the chunks of a message from *off on while credits last: DRAGON_OK when all are posted,
 * DRAGON_EAGAIN (with *off advanced) when credits ran out. A zero-byte message is one empty
 * frame: the loop runs once with *off == len == 0. acknow asks the peer to acknowledge the
 * last chunk as soon as it is consumed.
 */
static int post_chunks(dg_ta *ta, struct peer *p, uint32_t port, const void *buf, size_t len,
		       size_t *off, int acknow)
{
	int rc;

	do {
		size_t n = len - *off < ta->cfg.chunk ? len - *off : ta->cfg.chunk, flen;
		struct slot *s = NULL;

		if (!can_send(ta, p)) {
			progress(ta, 0);
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
		p->tx_data++;
		dg_frame_encode(ta->cfg.key, &s->hdr, (const unsigned char *)buf + *off, s->buf, &flen);
		if ((rc = post_send(ta, s, p, flen, 1)) != DRAGON_OK) {
			ta->ntx_free++;
			return rc;
		}
		*off += n;
	} while (*off < len);
	return DRAGON_OK;
}

int dg_ta_send(dg_ta *ta, uint32_t node, uint32_t port, const void *buf, size_t len,
	       enum dg_ta_mode mode)
{
	struct peer *p = NULL;
	size_t off = 0;
	int rc;

	if ((rc = send_peer(ta, node, len, &p)) != DRAGON_OK)
		return rc;
	while ((rc = post_chunks(ta, p, port, buf, len, &off, mode == DG_TA_DEPOSITED)) ==
	       DRAGON_EAGAIN)
		if ((rc = wait_peer(ta, p, can_send)) != DRAGON_OK)
			return rc;
	if (rc != DRAGON_OK)
		return rc;
	if (mode == DG_TA_DEPOSITED)
		return wait_peer(ta, p, all_acked);
	return DRAGON_OK;
}

int dg_ta_send_nb(dg_ta *ta, uint32_t node, uint32_t port, const void *buf, size_t len,
		  size_t *off)
{
	struct peer *p = NULL;
	int rc = send_peer(ta, node, len, &p);

	return rc != DRAGON_OK ? rc : post_chunks(ta, p, port, buf, len, off, 0);
}

int dg_ta_watch(dg_ta *ta, uint32_t node, int64_t since_ns)
{
	struct peer *p = peer_get(ta, node);
	int64_t t = now_ns(), dead = (int64_t)ta->cfg.dead_ms * 1000000, heard;

	if (!p)
		return dg_err(DRAGON_ENOTFOUND, "node %u is not in the peer table", node);
	if (p->dead)
		return dg_err(DRAGON_EPEER, "node %u's transport agent is dead", node);
	heard = p->last_heard > since_ns ? p->last_heard : since_ns;
	if (t - heard > dead) {
		peer_mark_dead(ta, p, "silent while we waited for it");
		return dg_err(DRAGON_EPEER, "node %u's transport agent silent for %d ms", node,
			      ta->cfg.dead_ms);
	}
	if (t - heard > dead / 4 && t - p->last_ping > dead / 4 && peer_use(ta, p) == DRAGON_OK) {
		p->last_ping = t;
		send_ctrl(ta, p, DG_FRAME_PING);
	}
	return DRAGON_OK;
}

void dg_ta_set_key(dg_ta *ta, const unsigned char key[DG_FRAME_KEY])
{
	memcpy(ta->cfg.key, key, DG_FRAME_KEY);
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
	flush_pending(ta);
	return fi_trywait(ta->fabric, &f, 1) == FI_SUCCESS ? DRAGON_OK : DRAGON_EAGAIN;
}

int dg_ta_pending(dg_ta *ta)
{
	return ta->dq_len > 0;
}

int64_t dg_ta_now(void)
{
	return now_ns();
}

void dg_ta_release(dg_ta *ta)
{
	if (ta->held_slot >= 0) {
		post_recv(ta, &ta->rx[ta->held_slot]);
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
			unsigned i = ta->dq[ta->dq_head];
			struct slot *s = &ta->rx[i];
			const struct dg_frame_hdr *h = &s->hdr;
			struct peer *p = peer_find(ta, h->src);

			ta->dq_head = (ta->dq_head + 1) % ta->cfg.slots;
			ta->dq_len--;
			consumed(ta, p, h);
			if (h->offset == 0 && h->len == h->msg_len) {
				ta->held_slot = (int)i;
				msg->src = h->src;
				msg->port = h->port;
				msg->data = s->buf + DG_FRAME_HDR;
				msg->len = h->len;
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
				post_recv(ta, s);
				continue;
			}
			memcpy(p->rbuf + p->rhave, s->buf + DG_FRAME_HDR, h->len);
			p->rhave += h->len;
			post_recv(ta, s);
			if (p->rhave == p->rlen) {
				ta->held_buf = p->rbuf;
				p->rbuf = NULL;
				msg->src = h->src;
				msg->port = h->port;
				msg->data = ta->held_buf;
				msg->len = p->rlen;
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
		progress(ta, left > 100 ? 100 : (int)left + 1);
	}
}

int dg_ta_progress(dg_ta *ta, int timeout_ms)
{
	int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;

	do {
		int64_t left = (deadline - now_ns()) / 1000000;
		progress(ta, left > 100 ? 100 : (int)left);
	} while (now_ns() < deadline && !ta->dq_len);
	return DRAGON_OK;
}

int dg_ta_peer_state(dg_ta *ta, uint32_t node)
{
	struct peer *p = peer_get(ta, node);

	if (!p)
		return dg_err(DRAGON_ENOTFOUND, "node %u is not in the peer table", node);
	return p->dead ? dg_err(DRAGON_EPEER, "node %u's transport agent is dead", node) : DRAGON_OK;
}

void dg_ta_get_stats(dg_ta *ta, struct dg_ta_stats *st)
{
	*st = ta->st;
}

int dg_ta_getname(dg_ta *ta, void *buf, size_t *len)
{
	int rc = fi_getname(&ta->ep->fid, buf, len);

	if (rc)
		return dg_err(DRAGON_ETOOBIG, "endpoint name: %s", fi_strerror(-rc));
	return DRAGON_OK;
}

int dg_ta_send_raw(dg_ta *ta, uint32_t node, const void *buf, size_t len)
{
	struct peer *p = peer_get(ta, node);
	struct slot *s = &ta->ctrl[0];
	int rc;

	if (!p)
		return dg_err(DRAGON_ENOTFOUND, "node %u is not in the peer table", node);
	if (len > s->cap)
		return dg_err(DRAGON_ETOOBIG, "raw frame of %zu bytes", len);
	while (s->busy)
		progress(ta, 0);
	if ((rc = peer_use(ta, p)) != DRAGON_OK)
		return rc;
	memcpy(s->buf, buf, len);
	s->hdr.type = 0;
	return post_send(ta, s, p, len, 1);
}

int dg_ta_last_frame(dg_ta *ta, unsigned char *buf, size_t *len)
{
	if (!ta->last_len || *len < ta->last_len)
		return dg_err(DRAGON_ENOTFOUND, "no small frame sent yet");
	memcpy(buf, ta->last, ta->last_len);
	*len = ta->last_len;
	return DRAGON_OK;
}

static int alloc_slots(struct slot **out, unsigned n, size_t cap, int recv)
{
	struct slot *s = calloc(n, sizeof(*s));

	if (!s)
		return dg_err(DRAGON_ENOMEM, "%u buffers", n);
	*out = s;
	for (unsigned i = 0; i < n; i++) {
		s[i].buf = malloc(cap);
		if (!s[i].buf)
			return dg_err(DRAGON_ENOMEM, "buffer of %zu bytes", cap);
		s[i].cap = cap;
		s[i].recv = recv;
	}
	return DRAGON_OK;
}

static void free_slots(struct slot *s, unsigned n)
{
	if (!s)
		return;
	for (unsigned i = 0; i < n; i++)
		free(s[i].buf);
	free(s);
}

/* An fd to sleep on lets the agent wait for the network and its local clients at once. */
static int cq_open(dg_ta *ta, struct fi_cq_attr *attr)
{
	int rc;

	ta->wait_fd = -1;
	attr->wait_obj = FI_WAIT_FD;
	rc = fi_cq_open(ta->domain, attr, &ta->cq, NULL);
	if (rc == 0) {
		if (fi_control(&ta->cq->fid, FI_GETWAIT, &ta->wait_fd) != 0)
			ta->wait_fd = -1;
		return 0;
	}
	attr->wait_obj = FI_WAIT_UNSPEC;
	return fi_cq_open(ta->domain, attr, &ta->cq, NULL);
}

int dg_ta_open(const struct dg_ta_config *cfg, dg_ta **out)
{
	struct fi_info *hints = NULL;
	struct fi_av_attr av_attr = {.type = FI_AV_UNSPEC};
	struct fi_cq_attr cq_attr = {.format = FI_CQ_FORMAT_MSG, .wait_obj = FI_WAIT_UNSPEC};
	char node[128] = "", *service = NULL;
	dg_ta *ta;
	int rc, rv = -1;

	if (sodium_init() < 0)
		return dg_err(DRAGON_ENOTSUP, "libsodium failed to initialise");
	if (!cfg->chunk || cfg->chunk > UINT32_MAX || cfg->window < 2 || cfg->slots < 2 ||
	    cfg->dead_ms <= 0)
		return dg_err(DRAGON_EINVAL, "transport config: chunk %zu, window %u, slots %u, dead_ms %d",
			      cfg->chunk, cfg->window, cfg->slots, cfg->dead_ms);
	ta = calloc(1, sizeof(*ta));
	if (!ta)
		return dg_err(DRAGON_ENOMEM, "transport agent");
	ta->cfg = *cfg;
	copy_str(ta->provider, sizeof(ta->provider), cfg->provider ? cfg->provider : "tcp;ofi_rxm");
	copy_str(ta->iface, sizeof(ta->iface), cfg->iface);
	copy_str(ta->bind, sizeof(ta->bind), cfg->bind);
	copy_str(ta->peer_file, sizeof(ta->peer_file), cfg->peer_file);
	ta->cfg.provider = ta->provider;
	ta->cfg.iface = ta->iface[0] ? ta->iface : NULL;
	ta->cfg.bind = ta->bind[0] ? ta->bind : NULL;
	ta->cfg.peer_file = ta->peer_file[0] ? ta->peer_file : NULL;
	ta->held_slot = -1;
	randombytes_buf(&ta->epoch, sizeof(ta->epoch));
	ta->epoch |= 1; /* 0 means "no epoch seen yet" */

	hints = fi_allocinfo();
	if (!hints) {
		rv = dg_err(DRAGON_ENOMEM, "fi_allocinfo");
		goto out;
	}
	hints->caps = FI_MSG;
	hints->ep_attr->type = FI_EP_RDM;
	hints->tx_attr->msg_order = FI_ORDER_SAS;
	hints->rx_attr->msg_order = FI_ORDER_SAS;
	hints->domain_attr->threading = FI_THREAD_DOMAIN;
	hints->domain_attr->mr_mode = 0; /* our buffers are not registered */
	hints->mode = FI_CONTEXT | FI_CONTEXT2;
	hints->fabric_attr->prov_name = strdup(ta->provider);
	if (ta->cfg.iface)
		hints->domain_attr->name = strdup(ta->cfg.iface);
	if (ta->cfg.bind) {
		char *colon;
		copy_str(node, sizeof(node), ta->cfg.bind);
		if ((colon = strrchr(node, ':'))) {
			*colon = 0;
			service = colon + 1;
		}
	}
	rc = fi_getinfo(FI_VERSION(1, 14), node[0] ? node : NULL, service, node[0] ? FI_SOURCE : 0,
			hints, &ta->info);
	if (rc) {
		rv = dg_err(DRAGON_ENOTSUP, "no libfabric provider '%s'%s%s for RDM messages: %s",
			    ta->provider, ta->cfg.iface ? " on " : "",
			    ta->cfg.iface ? ta->cfg.iface : "", fi_strerror(-rc));
		goto out;
	}
	if (ta->info->ep_attr->max_msg_size < ta->cfg.chunk + DG_FRAME_OVERHEAD) {
		rv = dg_err(DRAGON_EINVAL, "chunk %zu exceeds the provider's message size %zu",
			    ta->cfg.chunk, ta->info->ep_attr->max_msg_size);
		goto out;
	}
	if ((rc = fi_fabric(ta->info->fabric_attr, &ta->fabric, NULL)) ||
	    (rc = fi_domain(ta->fabric, ta->info, &ta->domain, NULL))) {
		rv = fi_fail(rc, "fabric/domain");
		goto out;
	}
	cq_attr.size = 2 * cfg->slots + 2 * TA_CTRL_SLOTS;
	if ((rc = fi_av_open(ta->domain, &av_attr, &ta->av, NULL)) ||
	    (rc = cq_open(ta, &cq_attr)) ||
	    (rc = fi_endpoint(ta->domain, ta->info, &ta->ep, NULL)) ||
	    (rc = fi_ep_bind(ta->ep, &ta->av->fid, 0)) ||
	    (rc = fi_ep_bind(ta->ep, &ta->cq->fid, FI_TRANSMIT | FI_RECV)) ||
	    (rc = fi_enable(ta->ep))) {
		rv = fi_fail(rc, "endpoint setup");
		goto out;
	}
	if ((rv = alloc_slots(&ta->tx, cfg->slots, cfg->chunk + DG_FRAME_OVERHEAD, 0)) ||
	    (rv = alloc_slots(&ta->rx, cfg->slots, cfg->chunk + DG_FRAME_OVERHEAD, 1)) ||
	    (rv = alloc_slots(&ta->ctrl, TA_CTRL_SLOTS, TA_LAST_FRAME, 0)))
		goto out;
	ta->ntx_free = cfg->slots;
	ta->dq = calloc(cfg->slots, sizeof(*ta->dq));
	if (!ta->dq) {
		rv = dg_err(DRAGON_ENOMEM, "delivery queue");
		goto out;
	}
	for (unsigned i = 0; i < cfg->slots; i++)
		if ((rv = post_recv(ta, &ta->rx[i])) != DRAGON_OK)
			goto out;
	if (ta->cfg.peer_file && (rv = peer_file_load(ta)) != DRAGON_OK && rv != DRAGON_ESYS)
		goto out;
	ta->last_traffic = now_ns();
	*out = ta;
	ta = NULL;
	rv = DRAGON_OK;
out:
	if (hints)
		fi_freeinfo(hints);
	if (ta)
		dg_ta_close(ta);
	return rv;
}

void dg_ta_close(dg_ta *ta)
{
	if (!ta)
		return;
	if (ta->ep)
		fi_close(&ta->ep->fid);
	if (ta->cq)
		fi_close(&ta->cq->fid);
	if (ta->av)
		fi_close(&ta->av->fid);
	if (ta->domain)
		fi_close(&ta->domain->fid);
	if (ta->fabric)
		fi_close(&ta->fabric->fid);
	if (ta->info)
		fi_freeinfo(ta->info);
	free_slots(ta->tx, ta->cfg.slots);
	free_slots(ta->rx, ta->cfg.slots);
	free_slots(ta->ctrl, TA_CTRL_SLOTS);
	for (size_t i = 0; i < ta->npeers; i++)
		free(ta->peers[i].rbuf);
	free(ta->peers);
	free(ta->dq);
	free(ta->held_buf);
	sodium_memzero(ta->cfg.key, sizeof(ta->cfg.key));
	free(ta);
}
