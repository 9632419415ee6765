/* runtime/ta/ta_main.c: dragon-ta, a node's transport agent: carries channel operations to and from other nodes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <dragon/channel.h>
#include <dragon/error.h>
#include <dragon/pool.h>

#include "core/err.h"
#include "core/shm.h"
#include "ta/gateway.h"
#include "ta/ta.h"

/*
 * How it works. Processes of this node write requests into the gateway channel (in the agent's
 * own pool). A request for another node's channel goes, as one message, to that node's agent,
 * which carries it out on its channel and answers when an answer is wanted; the answer comes
 * back into the asking process's reply channel. The agent never waits on anything: a full
 * channel keeps the message in a per-channel queue, a peer without credits keeps it in a
 * per-node queue, a receive on an empty channel waits in a list. Those queues are bounded: past
 * the bound the agent stops taking work, so a slow receiver slows its senders and nothing is
 * dropped. Idle, it sleeps on the network's file descriptor and a doorbell FIFO that processes
 * ring when they see the agent's "sleeping" flag set.
 */

static const char usage[] =
	"Usage: dragon-ta --node N --dir DIR [--peer-file FILE] [--key-file FILE]\n"
	"                 [--provider NAME] [--iface NAME] [--bind IP[:PORT]]\n"
	"The transport agent of node N of a Dragon fabric (started by dragon-ls). It reads the\n"
	"job key from DIR/job.key, looks its peers up in FILE (lines \"<node> <hex address>\",\n"
	"default DIR/ta.peers) when it first talks to them, and announces itself in DIR/ta.info.\n"
	"Environment: DRAGON_TA_PROVIDER (default tcp;ofi_rxm), DRAGON_TA_IFACE, DRAGON_TA_DEAD_MS,\n"
	"DRAGON_TA_SPIN_US, DRAGON_TA_POOL_MB (gateway pool, default 1024), DRAGON_TA_BUFFER_MB\n"
	"(messages held for full channels and busy peers before it stops taking more, default 256).\n";

#define GW_CAPACITY 1024
#define GW_BLOCK 512
#define CHAN_CACHE_MAX 4096

/* A message waiting to go into a local channel that was full. */
struct pend {
	struct pend *next;
	unsigned char *buf; /* the whole gateway message (header + payload), malloc'd */
	size_t len;
	uint32_t from; /* the asking node (for a deposit answer) */
};

/* A local channel this agent puts into or takes from, attached once. */
struct chan {
	struct chan *next;
	unsigned char desc[DRAGON_DESC_SIZE];
	dragon_channel_t *ch;
	struct pend *head, *tail;
	int64_t used;
};

/* A message on its way to another node. */
struct out {
	struct out *next;
	unsigned char *buf;
	size_t len, off;
	dragon_mem_t mem; /* from the gateway channel: freed once sent; else buf is malloc'd */
	int from_pool;
};

struct peerq {
	struct out *head, *tail;
};

/* A recv or poll from another node on a local channel that cannot be answered yet. */
struct waiter {
	struct waiter *next;
	struct dg_gw_hdr h;
	uint32_t from;
	int64_t deadline; /* ns, INT64_MAX: forever */
};

/* A request of a local process sent to another node: answered with DRAGON_EPEER if it dies. */
struct outstanding {
	struct outstanding *next;
	uint32_t node;
	uint64_t req;
	unsigned char reply[DRAGON_DESC_SIZE];
	int64_t since;
};

struct agent {
	uint32_t node;
	dg_ta *ta;
	dragon_pool_t *pool;
	dragon_channel_t *gw;
	dragon_mem_t flag_mem;
	_Atomic uint32_t *sleeping;
	int bell_fd;
	char info[PATH_MAX], bell[PATH_MAX];
	struct chan *chans;
	size_t nchans;
	struct peerq *peers;
	size_t npeers;
	struct waiter *waiters;
	struct outstanding *outst;
	size_t held, held_max; /* bytes in pend and out queues, and their bound */
	size_t full_chans;     /* channels with messages waiting for room: the loop skips them if 0 */
	size_t queued;         /* messages waiting to go to other nodes: likewise */
	unsigned char *scratch;
	size_t scratch_cap;
	int64_t spin_ns, last_work, last_watch;
	uint64_t dropped;
};

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static void logf_(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "dragon-ta[%u]: ", a->node);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Drops are logged, the first 100 and then every 1000th, so garbage cannot fill a disk. */
static void drop(struct agent *a, const char *what)
{
	a->dropped++;
	if (a->dropped <= 100 || a->dropped % 1000 == 0)
		logf_(a, "dropped %s (%" PRIu64 " so far): %s", what, a->dropped, dragon_errmsg());
}

static const dragon_wait_t nowait = {.timeout_us = 0};

/* ---- local channels ------------------------------------------------------------------ */

static void chan_free(struct agent *a, struct chan *c)
{
	if (c->head)
		a->full_chans--;
	while (c->head) {
		struct pend *p = c->head;
		c->head = p->next;
		a->held -= p->len;
		free(p->buf);
		free(p);
	}
	if (c->ch)
		dragon_channel_detach(c->ch);
	free(c);
}

/* The attached channel of desc, attaching it the first time. */
static int chan_get(struct agent *a, const unsigned char *desc, struct chan **out)
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
			if (!(*pp)->head)
				victim = pp;
		if (victim) {
			c = *victim;
			*victim = c->next;
			chan_free(a, c);
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

/* A channel that failed for good (destroyed, its pool gone): forget it. */
static void chan_forget(struct agent *a, struct chan *c)
{
	for (struct chan **pp = &a->chans; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			chan_free(a, c);
			a->nchans--;
			return;
		}
}

static int full(int rc)
{
	return rc == DRAGON_EAGAIN || rc == DRAGON_ETIMEDOUT || rc == DRAGON_ENOSPACE;
}

/* ---- towards other nodes ------------------------------------------------------------- */

static struct peerq *peerq(struct agent *a, uint32_t node)
{
	if (node >= a->npeers) {
		size_t n = node + 1 > 2 * a->npeers ? node + 1 : 2 * a->npeers;
		struct peerq *np = realloc(a->peers, n * sizeof(*np));
		if (!np)
			return NULL;
		memset(np + a->npeers, 0, (n - a->npeers) * sizeof(*np));
		a->peers = np;
		a->npeers = n;
	}
	return &a->peers[node];
}

/* A message that never made it into a queue. */
static void out_discard(struct out *o)
{
	if (o->from_pool)
		dragon_pool_free(&o->mem);
	else
		free(o->buf);
	free(o);
}

/* A message leaving its queue (sent, or its node died). */
static void out_free(struct agent *a, struct out *o)
{
	a->held -= o->len;
	a->queued--;
	out_discard(o);
}

static int queue_out(struct agent *a, uint32_t node, struct out *o)
{
	struct peerq *q = peerq(a, node);

	if (!q)
		return dg_err(DRAGON_ENOMEM, "queue for node %u", node);
	o->next = NULL;
	if (q->tail)
		q->tail->next = o;
	else
		q->head = o;
	q->tail = o;
	a->held += o->len;
	a->queued++;
	return DRAGON_OK;
}

/* Queue a reply to node `to` (the asking node), a copy of h with status, arg and payload. */
static void reply_remote(struct agent *a, uint32_t to, const struct dg_gw_hdr *req, int status,
			 uint64_t arg, const void *payload, size_t plen)
{
	struct out *o = calloc(1, sizeof(*o));
	struct dg_gw_hdr h = *req;

	if (!o || !(o->buf = malloc(sizeof(h) + plen))) {
		free(o);
		dg_err(DRAGON_ENOMEM, "reply to node %u", to);
		drop(a, "reply");
		return;
	}
	h.op = DG_GW_REPLY;
	h.node = a->node; /* from the answering node */
	h.status = status;
	h.arg = arg;
	memcpy(o->buf, &h, sizeof(h));
	if (plen)
		memcpy(o->buf + sizeof(h), payload, plen);
	o->len = sizeof(h) + plen;
	if (queue_out(a, to, o) != DRAGON_OK) {
		out_discard(o);
		drop(a, "reply");
	}
}

/* ---- answers to local processes ------------------------------------------------------ */

/* Put a whole message into a local channel now, or queue it behind the channel's earlier ones. */
static int deposit(struct agent *a, struct chan *c, const unsigned char *buf, size_t len,
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
	p->from = from;
	if (c->tail) {
		c->tail->next = p;
	} else {
		c->head = p;
		a->full_chans++;
	}
	c->tail = p;
	a->held += len;
	return DRAGON_EAGAIN; /* queued */
}

/* Answer a local process directly (its request could not go out, or its node died). */
static void reply_local(struct agent *a, const struct dg_gw_hdr *req, int status)
{
	struct dg_gw_hdr h = *req;
	struct chan *c;

	if (chan_get(a, req->reply, &c)) {
		drop(a, "answer to a process that is gone");
		return;
	}
	h.op = DG_GW_REPLY;
	h.status = status;
	h.arg = 0;
	if (deposit(a, c, (const unsigned char *)&h, sizeof(h), 0, a->node) == DRAGON_ENOMEM)
		drop(a, "answer");
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

static void outstanding_done(struct agent *a, uint32_t node, const struct dg_gw_hdr *h)
{
	for (struct outstanding **pp = &a->outst, *o; (o = *pp); pp = &o->next)
		if (o->node == node && o->req == h->req && !memcmp(o->reply, h->reply, DRAGON_DESC_SIZE)) {
			*pp = o->next;
			free(o);
			return;
		}
}

/* ---- requests of local processes ----------------------------------------------------- */

static void from_gateway(struct agent *a, dragon_mem_t *mem)
{
	struct dg_gw_hdr h;
	struct out *o;
	uint32_t node;

	if (dg_gw_check(mem->ptr, mem->size, &h) != DRAGON_OK || h.op == DG_GW_REPLY) {
		dg_err(DRAGON_EPROTO, "a local process wrote %zu bytes that are no request", mem->size);
		drop(a, "request");
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
			reply_local(a, &h, node == a->node ? DRAGON_EINVAL : DRAGON_ENOMEM);
		else
			drop(a, "request");
		dragon_pool_free(mem);
		return;
	}
	/* On the way out the header names the asking node instead of the target. */
	((struct dg_gw_hdr *)mem->ptr)->node = a->node;
	o->mem = *mem;
	o->from_pool = 1;
	o->buf = mem->ptr;
	o->len = mem->size;
	if (queue_out(a, node, o) != DRAGON_OK) {
		if (wants_answer(&h))
			reply_local(a, &h, DRAGON_ENOMEM);
		out_discard(o);
		return;
	}
	if (wants_answer(&h))
		outstanding_add(a, &h, node);
}

/* ---- requests of other nodes --------------------------------------------------------- */

/* Try a recv or poll for another node; 1 when answered (or failed), 0 to wait. */
static int try_serve(struct agent *a, const struct dg_gw_hdr *h, uint32_t from, int last)
{
	struct chan *c;
	int rc = chan_get(a, h->chan, &c);

	if (rc) {
		reply_remote(a, from, h, rc, 0, NULL, 0);
		return 1;
	}
	if (h->op == DG_GW_POLL) {
		unsigned rev = 0;
		rc = dragon_channel_poll(c->ch, (unsigned)h->arg, &rev, &nowait);
		if (rc == DRAGON_OK || !full(rc) || last) {
			reply_remote(a, from, h, rc, rev, NULL, 0);
			return 1;
		}
		return 0;
	}
	size_t cap = h->arg > (1ull << 30) ? (size_t)1 << 30 : (size_t)h->arg, len = 0;
	if (cap > a->scratch_cap) {
		unsigned char *nb = realloc(a->scratch, cap);
		if (!nb) {
			reply_remote(a, from, h, DRAGON_ENOMEM, 0, NULL, 0);
			return 1;
		}
		a->scratch = nb;
		a->scratch_cap = cap;
	}
	rc = dragon_channel_recv(c->ch, a->scratch, cap, &len, &nowait);
	if (rc == DRAGON_OK) {
		reply_remote(a, from, h, DRAGON_OK, len, a->scratch, len);
		return 1;
	}
	if (rc == DRAGON_ETOOBIG || !full(rc) || last) {
		/* ran out of time: what a local receive would say */
		if (full(rc))
			rc = h->timeout_us == 0 ? DRAGON_EAGAIN : DRAGON_ETIMEDOUT;
		reply_remote(a, from, h, rc, len, NULL, 0);
		if (rc == DRAGON_ECLOSED || rc == DRAGON_ESTALE)
			chan_forget(a, c);
		return 1;
	}
	return 0;
}

static void from_node(struct agent *a, const struct dg_ta_msg *m)
{
	struct dg_gw_hdr h;
	struct chan *c;
	int rc;

	if (m->port != DG_GW_PORT || dg_gw_check(m->data, m->len, &h) != DRAGON_OK ||
	    h.node != m->src) {
		dg_err(DRAGON_EPROTO, "node %u sent %zu bytes to port %u that are no gateway message",
		       m->src, m->len, m->port);
		drop(a, "message");
		return;
	}
	switch (h.op) {
	case DG_GW_SEND:
		if ((rc = chan_get(a, h.chan, &c)) == DRAGON_OK) {
			rc = deposit(a, c, m->data, m->len, sizeof(h), m->src);
			if (rc == DRAGON_EAGAIN)
				return; /* answered when it goes in */
			if (rc == DRAGON_ECLOSED || rc == DRAGON_ESTALE)
				chan_forget(a, c);
		}
		if (h.flags & DG_GW_F_DEPOSIT)
			reply_remote(a, m->src, &h, rc, 0, NULL, 0);
		else if (rc)
			drop(a, "message for a channel that refused it");
		return;
	case DG_GW_RECV:
	case DG_GW_POLL:
		if (!try_serve(a, &h, m->src, h.timeout_us == 0)) {
			struct waiter *w = calloc(1, sizeof(*w));
			if (!w) {
				reply_remote(a, m->src, &h, DRAGON_ENOMEM, 0, NULL, 0);
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
		outstanding_done(a, m->src, &h);
		if (chan_get(a, h.reply, &c)) {
			drop(a, "answer for a process that is gone");
			return;
		}
		rc = deposit(a, c, m->data, m->len, 0, m->src);
		if (rc && rc != DRAGON_EAGAIN)
			drop(a, "answer");
		return;
	default:
		return;
	}
}

/* ---- the loop ------------------------------------------------------------------------ */

/* Move queued messages into channels that have room again; 1 if anything moved. */
static int retry_deposits(struct agent *a)
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
			rc = dragon_channel_send(c->ch, p->buf + skip, p->len - skip, &nowait);
			if (full(rc))
				break;
			if (h.op == DG_GW_SEND && (h.flags & DG_GW_F_DEPOSIT))
				reply_remote(a, p->from, &h, rc, 0, NULL, 0);
			else if (rc)
				drop(a, "held message");
			c->head = p->next;
			if (!c->head) {
				c->tail = NULL;
				a->full_chans--;
			}
			a->held -= p->len;
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

/* Answer the pending recvs and polls that can be answered or ran out of time. */
static int serve_waiters(struct agent *a)
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

/* A node died: fail what was queued for it and what local processes wait for from it. */
static void node_died(struct agent *a, uint32_t node)
{
	struct peerq *q = node < a->npeers ? &a->peers[node] : NULL;

	logf_(a, "node %u is unreachable: %s", node, dragon_errmsg());
	/* Requests that want an answer are answered below, from the outstanding list. */
	while (q && q->head) {
		struct out *o = q->head;
		q->head = o->next;
		dg_err(DRAGON_EPEER, "node %u is unreachable", node);
		drop(a, "message for a dead node");
		out_free(a, o);
	}
	if (q)
		q->tail = NULL;
	for (struct outstanding **pp = &a->outst, *o; (o = *pp);) {
		if (o->node != node) {
			pp = &o->next;
			continue;
		}
		struct dg_gw_hdr h = {.magic = DG_GW_MAGIC, .op = DG_GW_REPLY, .node = node, .req = o->req};
		memcpy(h.reply, o->reply, DRAGON_DESC_SIZE);
		reply_local(a, &h, DRAGON_EPEER);
		*pp = o->next;
		free(o);
	}
	for (struct waiter **pp = &a->waiters, *w; (w = *pp);) {
		if (w->from == node) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

/* Push queued messages out as far as credits allow; 1 if anything went. */
static int send_queued(struct agent *a)
{
	int sent = 0;

	for (uint32_t n = 0; a->queued && n < a->npeers; n++) {
		struct peerq *q = &a->peers[n];
		while (q->head) {
			struct out *o = q->head;
			size_t before = o->off;
			int rc = dg_ta_send_nb(a->ta, n, DG_GW_PORT, o->buf, o->len, &o->off);
			if (o->off != before)
				sent = 1;
			if (rc == DRAGON_EAGAIN)
				break;
			if (rc != DRAGON_OK) {
				node_died(a, n);
				break;
			}
			sent = 1;
			q->head = o->next;
			if (!q->head)
				q->tail = NULL;
			out_free(a, o);
		}
	}
	return sent;
}

/* Every 100 ms: is every node we await an answer from still there? */
static void watch_nodes(struct agent *a)
{
	int64_t t = dg_ta_now();

	if (t - a->last_watch < 100 * 1000000LL)
		return;
	a->last_watch = t;
	for (struct outstanding *o = a->outst; o; o = o->next)
		if (dg_ta_watch(a->ta, o->node, o->since) == DRAGON_EPEER) {
			node_died(a, o->node);
			return; /* the list changed; the rest next round */
		}
}

/* Nothing to do for a while: sleep until the network or a process needs us. */
static void nap(struct agent *a)
{
	struct pollfd pf[2] = {{.fd = a->bell_fd, .events = POLLIN}, {.fd = dg_ta_wait_fd(a->ta), .events = POLLIN}};
	uint32_t count = 0, cap = 0;
	int timeout = 1000;
	char sink[64];

	/* Work that only time or other processes finish (full channels, receives on empty
	 * ones) is retried every millisecond; waiting for answers, every 100 ms. */
	if (a->waiters || a->full_chans)
		timeout = 1;
	else if (a->outst)
		timeout = 100;
	atomic_store(a->sleeping, 1);
	if ((dragon_channel_count(a->gw, &count, &cap) == DRAGON_OK && count) ||
	    dg_ta_trywait(a->ta) != DRAGON_OK) {
		atomic_store(a->sleeping, 0);
		return;
	}
	if (pf[1].fd < 0 && timeout > 1)
		timeout = 1;
	poll(pf, pf[1].fd < 0 ? 1 : 2, timeout);
	atomic_store(a->sleeping, 0);
	while (read(a->bell_fd, sink, sizeof(sink)) > 0)
		;
}

static void run(struct agent *a)
{
	a->last_work = dg_ta_now();
	while (!stopping) {
		int work = 0;
		dragon_mem_t mem;
		struct dg_ta_msg m;

		while (a->held < a->held_max && dragon_channel_recv_mem(a->gw, &mem, &nowait) == DRAGON_OK) {
			from_gateway(a, &mem);
			work = 1;
		}
		if (send_queued(a))
			work = 1;
		dg_ta_progress(a->ta, 0);
		while (a->held < a->held_max && dg_ta_pending(a->ta) &&
		       dg_ta_recv(a->ta, 0, &m) == DRAGON_OK) {
			from_node(a, &m);
			work = 1;
		}
		dg_ta_release(a->ta);
		if (a->full_chans && retry_deposits(a))
			work = 1;
		if (a->waiters && serve_waiters(a))
			work = 1;
		if (a->outst)
			watch_nodes(a);
		if (send_queued(a))
			work = 1;
		if (work)
			a->last_work = dg_ta_now();
		else if (dg_ta_now() - a->last_work > a->spin_ns)
			nap(a);
		else
			sched_yield(); /* polling, but a node's processes may need this core */
	}
}

/* ---- start and stop ------------------------------------------------------------------ */

static int read_key(const char *path, unsigned char key[DG_FRAME_KEY])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return dg_err_sys("open the job key %s", path);
	if (fstat(fd, &st) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		return dg_err(DRAGON_EPERM, "the job key %s must be yours and closed to others (0600)",
			      path);
	}
	n = read(fd, key, DG_FRAME_KEY);
	close(fd);
	if (n != DG_FRAME_KEY)
		return dg_err(DRAGON_EINVAL, "the job key %s is not %d bytes", path, DG_FRAME_KEY);
	return DRAGON_OK;
}

/*
 * Local services start the agent before the bootstrap has delivered the job key: wait for the key
 * file (written atomically, after the first fence) up to DRAGON_STARTUP_TIMEOUT. No frame is
 * looked at before: they wait in the provider's queue.
 */
static int wait_key(const char *path, unsigned char key[DG_FRAME_KEY])
{
	const char *v = getenv("DRAGON_STARTUP_TIMEOUT");
	int ms = (v && atoi(v) > 0 ? atoi(v) : 30) * 1000;

	for (int waited = 0;; waited += 5) {
		if (access(path, F_OK) == 0 || waited >= ms || stopping)
			return read_key(path, key);
		if (getppid() == 1)
			return dg_err(DRAGON_EPEER, "local services went away before the job key came");
		usleep(5000);
	}
}

static int write_info(struct agent *a, const char *dir)
{
	unsigned char addr[256];
	char hex[2 * sizeof(addr) + 1], tmp[PATH_MAX + 32], gw[DRAGON_DESC_STRLEN],
		flag[DRAGON_DESC_STRLEN];
	dragon_channel_desc_t cd;
	dragon_mem_desc_t md;
	size_t len = sizeof(addr);
	FILE *f;
	int rv;

	if ((rv = dg_ta_getname(a->ta, addr, &len)) || (rv = dragon_channel_serialize(a->gw, &cd)) ||
	    (rv = dragon_mem_serialize(&a->flag_mem, &md)) ||
	    (rv = dragon_desc_format(&cd, gw)) || (rv = dragon_desc_format(&md, flag)))
		return rv;
	sodium_bin2hex(hex, sizeof(hex), addr, len);
	snprintf(tmp, sizeof(tmp), "%s/.ta.info.%d", dir, (int)getpid());
	if (!(f = fopen(tmp, "wxe")))
		return dg_err_sys("create %s", tmp);
	fprintf(f, "addr %s\ngateway %s\nflag %s\nbell %s\npid %d\nnode %u\n", hex, gw, flag, a->bell,
		(int)getpid(), a->node);
	if (fclose(f)) {
		unlink(tmp);
		return dg_err_sys("write %s", tmp);
	}
	if (rename(tmp, a->info)) {
		unlink(tmp);
		return dg_err_sys("rename to %s", a->info);
	}
	return DRAGON_OK;
}

static size_t env_mb(const char *name, size_t dflt)
{
	const char *v = getenv(name);
	char *end;
	unsigned long n;

	if (!v || !*v)
		return dflt << 20;
	n = strtoul(v, &end, 10);
	return (*end || n == 0 || n > (1ul << 20)) ? dflt << 20 : (size_t)n << 20;
}

static int setup(struct agent *a, struct dg_ta_config *cfg, const char *dir)
{
	dragon_pool_attr_t pa = {.size = env_mb("DRAGON_TA_POOL_MB", 1024)};
	dragon_channel_attr_t ca = {.capacity = GW_CAPACITY, .block_size = GW_BLOCK,
				    .wait = DRAGON_WAIT_ADAPTIVE};
	int rv;

	if ((rv = dg_ta_open(cfg, &a->ta)) || (rv = dragon_pool_create(&pa, &a->pool)) ||
	    (rv = dragon_channel_create(a->pool, &ca, &a->gw)) ||
	    (rv = dragon_pool_alloc(a->pool, 64, 64, &a->flag_mem)))
		return rv;
	a->sleeping = a->flag_mem.ptr;
	atomic_store(a->sleeping, 0);
	snprintf(a->bell, sizeof(a->bell), "%s/ta.bell", dir);
	unlink(a->bell);
	if (mkfifo(a->bell, 0600))
		return dg_err_sys("mkfifo %s", a->bell);
	/* Read-write, so the FIFO never reports end-of-file when no process has it open. */
	a->bell_fd = open(a->bell, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (a->bell_fd < 0)
		return dg_err_sys("open %s", a->bell);
	return write_info(a, dir);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"node", required_argument, NULL, 'n'},
					     {"dir", required_argument, NULL, 'd'},
					     {"peer-file", required_argument, NULL, 'p'},
					     {"key-file", required_argument, NULL, 'k'},
					     {"provider", required_argument, NULL, 'P'},
					     {"iface", required_argument, NULL, 'i'},
					     {"bind", required_argument, NULL, 'b'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct agent a = {.bell_fd = -1};
	struct dg_ta_config cfg;
	const char *dir = NULL, *peers = NULL, *keyf = NULL;
	char keypath[PATH_MAX], peerpath[PATH_MAX], nodestr[16];
	struct sigaction sa = {.sa_handler = on_stop};
	long node = -1;
	int c, rv;

	dg_ta_config_init(&cfg);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'n':
			errno = 0;
			node = strtol(optarg, &end, 10);
			if (errno || *end || node < 0 || node > (1 << 14) - 1) {
				fprintf(stderr, "dragon-ta: --node %s: expected 0..16383\n", optarg);
				return 2;
			}
			break;
		case 'd':
			dir = optarg;
			break;
		case 'p':
			peers = optarg;
			break;
		case 'k':
			keyf = optarg;
			break;
		case 'P':
			cfg.provider = optarg;
			break;
		case 'i':
			cfg.iface = optarg;
			break;
		case 'b':
			cfg.bind = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (node < 0 || !dir || optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	a.node = (uint32_t)node;
	/* Our channels (the gateway) carry this node's index in their descriptors. */
	snprintf(nodestr, sizeof(nodestr), "%ld", node);
	setenv("DRAGON_NODE_INDEX", nodestr, 1);
	dg_set_local_node(a.node);
	snprintf(keypath, sizeof(keypath), "%s/job.key", dir);
	snprintf(peerpath, sizeof(peerpath), "%s/ta.peers", dir);
	snprintf(a.info, sizeof(a.info), "%s/ta.info", dir);
	cfg.node = a.node;
	cfg.peer_file = peers ? peers : peerpath;
	a.held_max = env_mb("DRAGON_TA_BUFFER_MB", 256);
	a.spin_ns = (int64_t)cfg.spin_us * 1000;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0 || setup(&a, &cfg, dir) ||
	    wait_key(keyf ? keyf : keypath, cfg.key)) {
		logf_(&a, "%s", dragon_errmsg());
		rv = 1;
	} else {
		dg_ta_set_key(a.ta, cfg.key);
		run(&a);
		rv = 0;
	}
	sodium_memzero(cfg.key, sizeof(cfg.key));
	unlink(a.info);
	if (a.bell_fd >= 0) {
		close(a.bell_fd);
		unlink(a.bell);
	}
	while (a.chans) {
		struct chan *ch = a.chans;
		a.chans = ch->next;
		chan_free(&a, ch);
	}
	if (a.gw)
		dragon_channel_destroy(a.gw);
	if (a.pool)
		dragon_pool_destroy(a.pool);
	dg_ta_close(a.ta);
	return rv;
}
