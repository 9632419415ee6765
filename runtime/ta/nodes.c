/* runtime/ta/nodes.c: the transport agent towards other nodes: per-node send queues, replies to them, nodes that die. */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ta/agent.h"

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
void agent_out_discard(struct out *o)
{
	if (o->from_pool)
		dragon_pool_free(&o->mem);
	else
		free(o->buf);
	free(o);
}

/* A message leaving its queue (sent, or its node died); one sent from its own memory is kept
 * (and counted as held) until the provider no longer reads it. */
static void out_free(struct agent *a, struct out *o)
{
	a->queued--;
	if (o->ref.pending) {
		o->next = a->sent;
		a->sent = o;
		return;
	}
	a->held -= o->len;
	agent_out_discard(o);
}

void agent_reap_sent(struct agent *a)
{
	for (struct out **pp = &a->sent, *o; (o = *pp);) {
		if (o->ref.pending) {
			pp = &o->next;
			continue;
		}
		*pp = o->next;
		a->held -= o->len;
		agent_out_discard(o);
	}
}

int agent_queue_out(struct agent *a, uint32_t node, struct out *o)
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
void agent_reply_remote(struct agent *a, uint32_t to, const struct dg_gw_hdr *req, int status,
			uint64_t arg, const void *payload, size_t plen)
{
	struct out *o = calloc(1, sizeof(*o));
	struct dg_gw_hdr h = *req;

	if (!o || !(o->buf = malloc(sizeof(h) + plen))) {
		free(o);
		dg_err(DRAGON_ENOMEM, "reply to node %u", to);
		agent_drop(a, "reply");
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
	if (agent_queue_out(a, to, o) != DRAGON_OK) {
		agent_out_discard(o);
		agent_drop(a, "reply");
	}
}

/* A node died: fail what was queued for it and what local processes wait for from it. */
static void node_died(struct agent *a, uint32_t node)
{
	struct peerq *q = node < a->npeers ? &a->peers[node] : NULL;

	agent_log(a, "node %u is unreachable: %s", node, dragon_errmsg());
	/* Requests that want an answer are answered below, from the outstanding list. */
	while (q && q->head) {
		struct out *o = q->head;
		q->head = o->next;
		dg_err(DRAGON_EPEER, "node %u is unreachable", node);
		agent_drop(a, "message for a dead node");
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
		agent_reply_local(a, &h, DRAGON_EPEER);
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

/*
 * The agent starts serving its node's processes before the agents have exchanged their addresses
 * (local services do it in the background, then write ta.peers): until then what goes to other
 * nodes waits in their queues, bounded by peers_by. 1 while that is the case.
 */
int agent_awaiting_peers(struct agent *a)
{
	if (a->peers_known)
		return 0;
	if (dg_ta_peers_known(a->ta)) {
		a->peers_known = 1;
		if (a->held_for_peers && a->debug)
			agent_log(a, "the agents' addresses are known: %zu held messages go out",
				  a->queued);
		return 0;
	}
	return dg_ta_now() < a->peers_by;
}

/*
 * Local services lost nodes (DIR/ta.lost: one node index a line, written whole): the agent drops
 * what it queued for them, fails what waits on them, and marks them in the bitmap processes read,
 * so that nothing new goes to them. What such a node's agent still sends is taken as before: a
 * node whose services stop in order lets its agent deliver what it held.
 */
void agent_read_lost(struct agent *a)
{
	FILE *f = fopen(a->lost_file, "re");
	unsigned long node;
	char line[32];

	if (!f) {
		agent_log(a, "SIGUSR2 without a readable %s: ignored", a->lost_file);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char *end;
		node = strtoul(line, &end, 10);
		if (end == line || node == a->node || node >= DG_GW_LOST_BYTES * 8ul)
			continue;
		if (atomic_load(&a->lost[node / 8]) & (1u << (node % 8)))
			continue;
		atomic_fetch_or(&a->lost[node / 8], (unsigned char)(1u << (node % 8)));
		dg_err(DRAGON_EPEER, "the fabric lost node %lu", node);
		node_died(a, (uint32_t)node);
	}
	fclose(f);
}

/* Push queued messages out as far as credits allow; 1 if anything went. */
int agent_send_queued(struct agent *a)
{
	int sent = 0;

	if (a->queued && !a->peers_known)
		agent_awaiting_peers(a);
	for (uint32_t n = 0; a->queued && n < a->npeers; n++) {
		struct peerq *q = &a->peers[n];
		while (q->head) {
			struct out *o = q->head;
			size_t before = o->off;
			int known = a->peers_known;
			int rc = dg_ta_send_nb(a->ta, n, DG_GW_PORT, o->buf, o->len, &o->off, &o->ref);
			if (o->off != before)
				sent = 1;
			if (rc == DRAGON_EAGAIN)
				break;
			if (rc == DRAGON_ENOTFOUND) {
				/* one look at ta.peers (it stats the file) for both questions */
				int waiting = agent_awaiting_peers(a);
				/* ta.peers may have appeared between the send and this look: the node
				 * is known now, so the send goes again rather than taking it for dead. */
				if (!waiting && !known && a->peers_known)
					continue;
				if (waiting) {
					if (!a->held_for_peers++ && a->debug)
						agent_log(a, "holding messages for node %u until local "
							     "services wrote the agents' addresses (ta.peers)",
							  n);
					break;
				}
			}
			if (rc == DRAGON_ENOTFOUND && !a->peers_known)
				dg_err(DRAGON_EPEER, "no address of node %u's transport agent: local "
						     "services did not write ta.peers in time (see their log)",
				       n);
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
void agent_watch_nodes(struct agent *a)
{
	int64_t t = dg_ta_now();

	if (t - a->last_watch < 100 * 1000000LL)
		return;
	a->last_watch = t;
	if (!a->peers_known && (agent_awaiting_peers(a) || !a->peers_known)) {
		/* not sent yet: silence of a node we cannot talk to is no sign of its death */
		for (struct outstanding *o = a->outst; o; o = o->next)
			o->since = t;
		return;
	}
	for (struct outstanding *o = a->outst; o; o = o->next)
		if (dg_ta_watch(a->ta, o->node, o->since) == DRAGON_EPEER) {
			node_died(a, o->node);
			return; /* the list changed; the rest next round */
		}
}

