/* runtime/ta/agent.h: the transport agent's state and what its files share: main.c (start, loop, stop), gateway.c, nodes.c, serve.c, chans.c. */
#ifndef DRAGON_TA_AGENT_H
#define DRAGON_TA_AGENT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <dragon/channel.h>
#include <dragon/error.h>
#include <dragon/pool.h>

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
 *
 * Who does what: gateway.c takes the requests of local processes and answers them; nodes.c queues
 * what goes to other nodes and fails what waited on a node that died; serve.c carries out what
 * other nodes ask of this node's channels and passes their answers on; chans.c puts messages into
 * local channels, holding them while a channel is full; main.c starts the agent, runs its loop
 * and stops it.
 */

/* A message waiting to go into a local channel that was full. */
struct pend {
	struct pend *next;
	unsigned char *buf; /* the whole gateway message (header + payload), malloc'd; with mem: its header */
	size_t len;
	uint32_t from; /* the asking node (for a deposit answer) */
	dragon_mem_t mem; /* a large message received in place: the allocation to enqueue */
	int has_mem;
};

/* A local channel this agent puts into or takes from, attached once. */
struct chan {
	struct chan *next;
	unsigned char desc[DRAGON_DESC_SIZE];
	dragon_channel_t *ch;
	struct pend *head, *tail;
	int64_t used;
	unsigned inflight; /* large messages being received into its pool: not evicted meanwhile */
};

/* A message on its way to another node. */
struct out {
	struct out *next;
	unsigned char *buf;
	size_t len, off;
	dragon_mem_t mem; /* from the gateway channel: freed once sent; else buf is malloc'd */
	int from_pool;
	struct dg_ta_ref ref; /* a large one is sent from buf itself: kept until the provider is done */
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
	_Atomic unsigned char *lost; /* bit n: node n is lost (gateway.h: in flag_mem, for clients) */
	int bell_fd;
	char info[PATH_MAX], bell[PATH_MAX], lost_file[PATH_MAX];
	struct chan *chans;
	size_t nchans;
	struct peerq *peers;
	size_t npeers;
	struct waiter *waiters;
	struct outstanding *outst;
	size_t held, held_max; /* bytes in pend and out queues, and their bound */
	size_t held_full;      /* of which in pend queues (full local channels): see turn() */
	size_t full_chans;     /* channels with messages waiting for room: the loop skips them if 0 */
	size_t queued;         /* messages waiting to go to other nodes: likewise */
	struct out *sent;      /* sent from their own memory, which the provider still reads */
	unsigned char *scratch;
	size_t scratch_cap;
	int64_t spin_ns, last_work, last_watch;
	int64_t gap_ns, budget_ns; /* main.c: average gap between turns with work; polling budget */
	uint64_t dropped;
	/* Until local services wrote ta.peers (the agents' addresses, exchanged after this agent
	 * started), messages for other nodes wait in their queues, at most until this time. */
	int64_t peers_by;
	int peers_known, held_for_peers, debug;
};

static const dragon_wait_t nowait = {.timeout_us = 0};

static inline int full(int rc)
{
	return rc == DRAGON_EAGAIN || rc == DRAGON_ETIMEDOUT || rc == DRAGON_ENOSPACE;
}

/* nodes.c: 1 while messages for other nodes wait for the agents' addresses (ta.peers). */
int agent_awaiting_peers(struct agent *a);

/* main.c: logging. */
void agent_log(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void agent_drop(struct agent *a, const char *what);

/* chans.c: the local channels the agent puts into and takes from; messages held for full ones. */
void agent_chan_free(struct agent *a, struct chan *c);
int agent_chan_get(struct agent *a, const unsigned char *desc, struct chan **out);
void agent_chan_forget(struct agent *a, struct chan *c);
int agent_deposit(struct agent *a, struct chan *c, const unsigned char *buf, size_t len,
		  size_t skip, uint32_t from);
int agent_retry_deposits(struct agent *a);
int agent_deposit_mem(struct agent *a, struct chan *c, dragon_mem_t *mem,
		      const struct dg_gw_hdr *h, uint32_t from);

/* gateway.c: requests of local processes (from the gateway channel) and answers to them. */
void agent_from_gateway(struct agent *a, dragon_mem_t *mem);
void agent_reply_local(struct agent *a, const struct dg_gw_hdr *req, int status);
void agent_outstanding_done(struct agent *a, uint32_t node, const struct dg_gw_hdr *h);

/* nodes.c: messages on their way to other nodes, and nodes that die. */
void agent_out_discard(struct out *o);
int agent_queue_out(struct agent *a, uint32_t node, struct out *o);
void agent_reply_remote(struct agent *a, uint32_t to, const struct dg_gw_hdr *req, int status,
			uint64_t arg, const void *payload, size_t plen);
int agent_send_queued(struct agent *a);
void agent_watch_nodes(struct agent *a);
void agent_reap_sent(struct agent *a);
void agent_read_lost(struct agent *a);

/* serve.c: messages from other nodes: their requests on this node's channels, answers to ours. */
void agent_from_node(struct agent *a, const struct dg_ta_msg *m);
int agent_place(void *arg, uint32_t src, uint32_t port, const unsigned char *data, size_t head,
		size_t msg_len, unsigned char **dst, size_t *skip, void **cookie);
void agent_unplace(void *arg, void *cookie);
int agent_serve_waiters(struct agent *a);

#endif
