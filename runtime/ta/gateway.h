/* runtime/ta/gateway.h: requests a process hands its node's transport agent, and what agents pass on and answer. */
#ifndef DRAGON_TA_GATEWAY_H
#define DRAGON_TA_GATEWAY_H

#include <stdint.h>
#include <string.h>

#include <dragon/channel.h>
#include <dragon/error.h>

/*
 * One message on every hop: a process writes a request into its agent's gateway channel, the
 * agent passes it to the agent of the channel's node (port DG_GW_PORT), that agent carries it out
 * and, when the request wants an answer, sends a DG_GW_REPLY back, which the first agent writes
 * into the process's reply channel. A fixed little-endian header, then the payload (the message
 * of a send, the message received by a recv). The frame layer below authenticates every hop
 * between nodes; these checks are against mistakes and garbage from local processes.
 */
#define DG_GW_MAGIC 0x57474744u /* "DGGW" */
#define DG_GW_PORT 1             /* the frame layer's port for gateway messages */

enum dg_gw_op {
	DG_GW_SEND = 1, /* put the payload into chan */
	DG_GW_RECV,     /* take the oldest message of chan (at most arg bytes), answer with it */
	DG_GW_POLL,     /* answer which of the events in arg hold on chan */
	DG_GW_REPLY,    /* the answer: status, arg (length needed, or revents), payload */
	DG_GW_OP_MAX
};

#define DG_GW_F_DEPOSIT 0x1u /* send: answer once the message is in chan */

/*
 * The agent's flag allocation (ta.info's "flag"), mapped by every process that uses the agent:
 * the agent's "sleeping" word at offset 0, and from DG_GW_LOST_OFF a bitmap of the nodes the
 * fabric lost (bit n of byte n / 8; local services tell the agent, SIGUSR2 and DIR/ta.lost), so
 * that an operation on a lost node's channel fails at once, a buffered send included.
 */
#define DG_GW_LOST_OFF 64
#define DG_GW_LOST_BYTES 2048 /* nodes 0..16383 */
#define DG_GW_FLAG_SIZE (DG_GW_LOST_OFF + DG_GW_LOST_BYTES)

struct dg_gw_hdr {
	uint32_t magic;
	uint16_t op;
	uint16_t flags;
	uint32_t node;       /* to the agent: the channel's node; between agents: the asking node */
	int32_t status;      /* a reply's DRAGON_* code */
	uint64_t req;        /* the asking process's request number, echoed in the reply */
	uint64_t arg;        /* recv: buffer size; poll: events; reply: message length or revents */
	int64_t timeout_us;  /* recv and poll: how long the channel's node waits (-1 forever) */
	unsigned char chan[DRAGON_DESC_SIZE];  /* the remote channel */
	unsigned char reply[DRAGON_DESC_SIZE]; /* the asking process's reply channel */
};

/* Check a gateway message of n bytes; DRAGON_OK or DRAGON_EPROTO. */
static inline int dg_gw_check(const void *buf, size_t n, struct dg_gw_hdr *h)
{
	if (n < sizeof(*h))
		return DRAGON_EPROTO;
	memcpy(h, buf, sizeof(*h));
	if (h->magic != DG_GW_MAGIC || h->op == 0 || h->op >= DG_GW_OP_MAX)
		return DRAGON_EPROTO;
	return DRAGON_OK;
}

#endif
