/* runtime/ls/route.c: routing across nodes: replies, requests, relays, GS's remote actions. */
#include "config.h"

#define _GNU_SOURCE 1
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dragon/process.h>

#include "core/err.h"
#include "core/shm.h"
#include "ls/ls_internal.h"

/* The link toward a node: the head node has one per node, every other node only its uplink. */
struct dg_link *ls_link_to(struct ls *ls, uint32_t node)
{
	if (node == ls->node_index)
		return NULL;
	if (ls->nodes)
		return node < ls->node_count ? ls->nodes[node].link : NULL;
	return ls->uplink;
}

/* Head node: something of node `from` reached node `to` (see struct ls's reached). */
void ls_mark_reached(struct ls *ls, uint32_t from, uint32_t to)
{
	size_t n = ls->node_count, bit;

	if (!ls->reached || from >= n || to >= n || from == to)
		return;
	bit = from * n + to;
	ls->reached[bit / 8] |= (unsigned char)(1u << (bit % 8));
}

/* Whether a Gone of node from must be told to node to: yes unless the table says no. */
static int reached(const struct ls *ls, uint32_t from, uint32_t to)
{
	size_t n = ls->node_count, bit = (size_t)from * n + to;

	if (!ls->reached || from >= n || to >= n)
		return 1;
	return (ls->reached[bit / 8] >> (bit % 8)) & 1;
}

/* Send inner, wrapped in r, toward node (through the head node if this is not it). */
int ls_relay(struct ls *ls, uint32_t node, Dragon__Relay *r, Dragon__Msg *inner)
{
	struct dg_link *l = ls_link_to(ls, node);
	Dragon__Msg m = DRAGON__MSG__INIT;
	uint8_t *buf;
	size_t len;
	int rv;

	if (!l)
		return dg_err(DRAGON_EPEER, "node %u is not connected to node %u", node,
			      ls->node_index);
	if ((rv = dg_msg_encode(inner, &buf, &len)))
		return rv;
	r->to_node = node;
	if (!r->deliver)
		ls_mark_reached(ls, ID_NODE(r->conn), node);
	r->msg.data = buf + DG_HDR_LEN;
	r->msg.len = len - DG_HDR_LEN;
	m.body_case = DRAGON__MSG__BODY_RELAY;
	m.relay = r;
	rv = dg_link_send(l, &m);
	free(buf);
	return rv;
}

/* Send a message to a connection of any node (0: nobody). */
void ls_send_to(struct ls *ls, uint64_t conn, Dragon__Msg *m)
{
	Dragon__Relay r = DRAGON__RELAY__INIT;
	uint32_t node = ID_NODE(conn);

	if (!conn)
		return;
	if (!IS_GCONN(conn) || node == ls->node_index) {
		struct conn *c = ls_conn_find(ls, conn);
		if (c && !c->remote)
			ls_conn_send(c, m);
		return;
	}
	r.conn = conn;
	r.deliver = 1;
	if (ls_relay(ls, node, &r, m) && ls->debug)
		ls_log(ls, "dropping a %s for node %u: %s", dg_msg_name(m), node, dragon_errmsg());
}

/*
 * Tell the other nodes that an owner died or a connection closed, so they release what it held
 * there (processes it started, names, waits). The head node passes it on to the nodes that
 * something of the node it came from (except; itself when UINT32_MAX) reached: everything an
 * owner or connection holds on another node got there through the head node, as a relayed
 * request or a process GS placed, and was marked (ls_mark_reached). Other nodes tell only the
 * head node, and only of their own.
 */
void ls_announce_gone(struct ls *ls, uint64_t owner, uint64_t conn, uint32_t except)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Gone g = DRAGON__GONE__INIT;

	if (ls->node_count < 2 || (!owner && !conn))
		return;
	g.owner = owner;
	g.conn = conn;
	m.body_case = DRAGON__MSG__BODY_GONE;
	m.gone = &g;
	if (ls->nodes) {
		uint32_t from = except == UINT32_MAX ? ls->node_index : except;
		for (uint32_t i = 1; i < ls->node_count; i++)
			if (i != except && ls->nodes[i].link && reached(ls, from, i))
				dg_link_send(ls->nodes[i].link, &m);
	} else if (ls->uplink && except == UINT32_MAX) {
		dg_link_send(ls->uplink, &m);
	}
}

/* Which node serves a request: GS's go to the head node, a process's to the node it runs on. */
uint32_t ls_serving_node(struct ls *ls, const Dragon__Msg *req)
{
	switch (req->body_case) {
	case DRAGON__MSG__BODY_WAIT:
		return ID_NODE(req->wait->puid);
	case DRAGON__MSG__BODY_INPUT:
		return ID_NODE(req->input->puid);
	case DRAGON__MSG__BODY_SIGNAL:
		return req->signal->gid ? 0 : ID_NODE(req->signal->puid);
	case DRAGON__MSG__BODY_STATUS:
		return req->status->at_node ? req->status->node : 0;
	case DRAGON__MSG__BODY_CHANNEL_DESTROY: {
		/* served where the channel lives: its descriptor names the node */
		struct dg_desc d;
		if (req->channel_destroy->desc.len == DRAGON_DESC_SIZE &&
		    dg_desc_unpack(req->channel_destroy->desc.data, DG_DESC_CHANNEL, &d) == DRAGON_OK)
			return d.node;
		return ls->node_index;
	}
	case DRAGON__MSG__BODY_NAME_REGISTER:
	case DRAGON__MSG__BODY_NAME_LOOKUP:
	case DRAGON__MSG__BODY_NAME_REMOVE:
	case DRAGON__MSG__BODY_GROUP_CREATE:
	case DRAGON__MSG__BODY_GROUP_WAIT:
		return 0;
	default:
		return ls->node_index;
	}
}

/* The answer to a request for a lost node: a Wait learns its process's end, the rest EPEER. */
static void answer_lost(struct ls *ls, uint64_t conn, uint64_t seq, uint32_t node,
			uint64_t wait_puid)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__WaitReply wr = DRAGON__WAIT_REPLY__INIT;
	Dragon__Error e = DRAGON__ERROR__INIT;
	char why[96];

	m.seq = seq;
	if (wait_puid) {
		wr.puid = wait_puid;
		wr.status = DRAGON_STATUS_NODE_LOST;
		m.body_case = DRAGON__MSG__BODY_WAIT_REPLY;
		m.wait_reply = &wr;
	} else {
		snprintf(why, sizeof(why), "node %u left the fabric (lost)", node);
		e.rc = DRAGON_EPEER;
		e.msg = why;
		m.body_case = DRAGON__MSG__BODY_ERROR;
		m.error = &e;
	}
	ls_send_to(ls, conn, &m);
}

/* Pass a request to the node that serves it; its reply comes back to c through the links. */
void ls_forward_request(struct conn *c, uint32_t node, const Dragon__Msg *req)
{
	struct ls *ls = c->ls;
	Dragon__Relay r = DRAGON__RELAY__INIT;
	uint64_t wait_puid = req->body_case == DRAGON__MSG__BODY_WAIT ? req->wait->puid : 0;
	struct fwd *f;

	if (node >= ls->node_count) {
		ls_reply_error(c, req->seq, DRAGON_ENOTFOUND,
			       req->body_case == DRAGON__MSG__BODY_STATUS
				   ? "no such node in this fabric"
				   : "no such process");
		return;
	}
	if (ls->lost && ls->lost[node]) {
		answer_lost(ls, c->id, req->seq, node, wait_puid);
		return;
	}
	r.conn = c->id;
	r.owner = ls_owner_of(c);
	r.puid = c->puid;
	r.sink = c->sink;
	r.inherit_sink = ls_sink_for(ls, c, NULL);
	if (ls_relay(ls, node, &r, (Dragon__Msg *)req)) {
		ls_reply_error(c, req->seq, DRAGON_EPEER, dragon_errmsg());
		return;
	}
	/* Remember it until its reply passes (ls_on_relay), so a lost node still gets it answered. */
	if (req->seq && !c->remote && (f = calloc(1, sizeof(*f)))) {
		f->conn = c->id;
		f->seq = req->seq;
		f->node = node;
		f->wait_puid = wait_puid;
		f->next = ls->fwds;
		ls->fwds = f;
	}
}

/* One varint at *p (at most 10 bytes before end); 0 if it does not fit. */
static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 1;
	}
	return 0;
}

/*
 * The seq of a packed Msg without unpacking it (output lines pass here by the thousand): the
 * packer writes fields in number order, version (1) then seq (2), and leaves out a seq of 0.
 * Anything else is unpacked.
 */
static int reply_seq(const uint8_t *msg, size_t len, uint64_t *seq)
{
	const uint8_t *p = msg, *end = msg + len;
	Dragon__Msg *m = NULL;
	uint64_t v;

	if (p < end && *p == 0x08 && (p++, varint(&p, end, &v))) {
		*seq = 0;
		if (p < end && *p == 0x10 && (p++, !varint(&p, end, seq)))
			return 0;
		return 1;
	}
	if (dg_msg_decode(msg, len, &m))
		return 0;
	*seq = m->seq;
	dg_msg_free(m);
	return 1;
}

/* A reply for conn passes: the request it answers is no longer outstanding. */
static void fwd_answered(struct ls *ls, uint64_t conn, const uint8_t *msg, size_t len)
{
	struct fwd **q;
	uint64_t seq;

	for (q = &ls->fwds; *q && (*q)->conn != conn; q = &(*q)->next)
		;
	if (!*q || !reply_seq(msg, len, &seq) || !seq)
		return;
	for (; *q; q = &(*q)->next)
		if ((*q)->conn == conn && (*q)->seq == seq) {
			struct fwd *f = *q;
			*q = f->next;
			free(f);
			break;
		}
}

/* A connection closed: nobody waits for the answers to what it asked. */
void ls_fwd_forget_conn(struct ls *ls, uint64_t conn)
{
	for (struct fwd **q = &ls->fwds; *q;) {
		struct fwd *f = *q;
		if (f->conn == conn) {
			*q = f->next;
			free(f);
		} else {
			q = &f->next;
		}
	}
}

/* Head node: a process GS placed on another node reported its end. */
void ls_rproc_done(struct ls *ls, uint64_t puid)
{
	for (struct rproc **q = &ls->rprocs; *q; q = &(*q)->next)
		if ((*q)->puid == puid) {
			struct rproc *rp = *q;
			*q = rp->next;
			free(rp);
			return;
		}
}

/*
 * Node `node` is lost: answer what this node's clients asked of it, and (head node) report the
 * processes GS placed there as ended with DRAGON_STATUS_NODE_LOST to whoever takes their exits.
 */
void ls_route_node_lost(struct ls *ls, uint32_t node)
{
	for (struct fwd **q = &ls->fwds; *q;) {
		struct fwd *f = *q;
		if (f->node == node) {
			*q = f->next;
			answer_lost(ls, f->conn, f->seq, node, f->wait_puid);
			free(f);
		} else {
			q = &f->next;
		}
	}
	for (struct rproc **q = &ls->rprocs; *q;) {
		struct rproc *rp = *q;
		if (ID_NODE(rp->puid) == node) {
			Dragon__Msg m = DRAGON__MSG__INIT;
			Dragon__ProcExit x = DRAGON__PROC_EXIT__INIT;
			*q = rp->next;
			x.puid = rp->puid;
			x.status = DRAGON_STATUS_NODE_LOST;
			m.body_case = DRAGON__MSG__BODY_PROC_EXIT;
			m.proc_exit = &x;
			ls_send_to(ls, rp->exit_to, &m);
			free(rp);
		} else {
			q = &rp->next;
		}
	}
}

int ls_host_spawn(void *ctx, uint32_t node, const Dragon__SpawnArgs *a, uint64_t conn_id,
		  uint64_t gid, int rank, int size, uint64_t *puid)
{
	struct ls *ls = ctx;
	struct conn *c = ls->handling && ls->handling->id == conn_id ? ls->handling
								     : ls_conn_find(ls, conn_id);
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__SpawnAt sa = DRAGON__SPAWN_AT__INIT;
	struct dg_link *l;
	int rv;

	if (!c)
		return dg_err(DRAGON_EPEER, "the requesting client is gone");
	*puid = 0;
	if (node == ls->node_index)
		return ls_spawn(ls, a, c, gid, rank, size, puid, NULL);
	if (!(l = ls_link_to(ls, node)))
		return dg_err(DRAGON_EPEER, "node %u has not joined the fabric, or has left it",
			      node);
	/* The node reports a failed start as an exit (status 127) with the reason on stderr. */
	sa.args = (Dragon__SpawnArgs *)a;
	sa.puid = ((uint64_t)node << 48) | (1ull << 47) | ++ls->next_gs_puid;
	sa.conn = c->id;
	sa.owner = ls_owner_of(c);
	sa.gid = gid;
	sa.rank = rank;
	sa.size = size;
	sa.sink = ls_sink_for(ls, c, a);
	sa.exit_events = c->sink;
	/* What node holds for them now: the requester's, its owner's and its output's Gones go there. */
	ls_mark_reached(ls, ID_NODE(sa.conn), node);
	ls_mark_reached(ls, ID_NODE(sa.owner), node);
	if (sa.sink)
		ls_mark_reached(ls, ID_NODE(sa.sink), node);
	m.body_case = DRAGON__MSG__BODY_SPAWN_AT;
	m.spawn_at = &sa;
	if ((rv = dg_link_send(l, &m)))
		return rv;
	*puid = sa.puid;
	{
		struct rproc *rp = c->sink ? calloc(1, sizeof(*rp)) : NULL;
		if (!c->sink)
			return DRAGON_OK;
		if (!rp)
			return dg_err(DRAGON_ENOMEM, "record of a process on node %u", node);
		rp->puid = sa.puid;
		rp->exit_to = c->sink ? c->id : 0;
		rp->next = ls->rprocs;
		ls->rprocs = rp;
	}
	return DRAGON_OK;
}

int ls_host_signal(void *ctx, uint64_t puid, int signo)
{
	struct ls *ls = ctx;
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Signal sg = DRAGON__SIGNAL__INIT;
	Dragon__Relay r = DRAGON__RELAY__INIT;

	if (ID_NODE(puid) == ls->node_index)
		return ls_signal(ls, puid, signo);
	sg.puid = puid;
	sg.signo = signo;
	m.body_case = DRAGON__MSG__BODY_SIGNAL;
	m.signal = &sg;
	return ls_relay(ls, ID_NODE(puid), &r, &m);
}

void ls_host_reply(void *ctx, uint64_t conn_id, Dragon__Msg *m)
{
	ls_send_to(ctx, conn_id, m);
}

/* A node's process for a group GS placed here. A failed start reads as exit status 127. */
void ls_on_spawn_at(struct ls *ls, const Dragon__SpawnAt *sa)
{
	struct conn px = {.ls = ls, .id = sa->conn, .remote = 1, .sink = sa->exit_events,
			  .inherit_sink = sa->sink};
	uint64_t puid = sa->puid;
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Output o = DRAGON__OUTPUT__INIT;
	Dragon__ProcExit x = DRAGON__PROC_EXIT__INIT;
	Dragon__ProcDone d = DRAGON__PROC_DONE__INIT;
	char line[1200];
	int rc;

	px.puid = (sa->owner >> 63) ? 0 : sa->owner;
	if (ID_NODE(puid) != ls->node_index || !(puid & (1ull << 47)) || ls_proc_find(ls, puid))
		rc = dg_err(DRAGON_EPROTO, "puid %llx does not belong to node %u",
			    (unsigned long long)puid, ls->node_index);
	else if (!(rc = ls_spawn(ls, sa->args, &px, sa->gid, sa->rank, sa->size, &puid, NULL)))
		return;
	ls_log(ls, "starting a process of group %llu: %s", (unsigned long long)sa->gid,
	       dragon_errmsg());
	snprintf(line, sizeof(line), "dragon: on %s (node %u): %s\n", ls->host, ls->node_index,
		 dragon_errmsg());
	o.puid = sa->puid;
	o.stream = 2;
	o.data.data = (uint8_t *)line;
	o.data.len = strlen(line);
	o.rank = sa->rank;
	o.host = ls->host;
	m.body_case = DRAGON__MSG__BODY_OUTPUT;
	m.output = &o;
	ls_send_to(ls, ls_sink_for(ls, &px, sa->args), &m);
	x.puid = sa->puid;
	x.status = 127;
	m.body_case = DRAGON__MSG__BODY_PROC_EXIT;
	m.proc_exit = &x;
	if (sa->exit_events)
		ls_send_to(ls, sa->conn, &m);
	d.puid = sa->puid;
	d.status = 127;
	m.body_case = DRAGON__MSG__BODY_PROC_DONE;
	m.proc_done = &d;
	if (ls->uplink)
		dg_link_send(ls->uplink, &m);
}

/* A request or a reply from another node; the head node passes on what is for a third one. */
void ls_on_relay(struct ls *ls, const Dragon__Msg *outer)
{
	const Dragon__Relay *r = outer->relay;
	Dragon__Msg *req = NULL;

	if (r->to_node != ls->node_index) {
		struct dg_link *l = ls->nodes ? ls_link_to(ls, r->to_node) : NULL;
		if (l && !dg_link_send(l, (Dragon__Msg *)outer))
			return;
		if (!r->deliver && r->conn && !dg_msg_decode(r->msg.data, r->msg.len, &req)) {
			struct conn px = {.ls = ls, .id = r->conn, .remote = 1};
			if (ls->lost && r->to_node < ls->node_count && ls->lost[r->to_node])
				answer_lost(ls, r->conn, req->seq, r->to_node,
					    req->body_case == DRAGON__MSG__BODY_WAIT ? req->wait->puid
										     : 0);
			else
				ls_reply_error(&px, req->seq, DRAGON_EPEER,
					       "that node is not part of the fabric now");
		}
		dg_msg_free(req);
		return;
	}
	if (r->deliver) {
		struct conn *c = ls_conn_find(ls, r->conn);
		uint8_t hdr[DG_HDR_LEN] = {r->msg.len & 0xff, (r->msg.len >> 8) & 0xff,
					   (r->msg.len >> 16) & 0xff, (r->msg.len >> 24) & 0xff};
		if (ls->fwds)
			fwd_answered(ls, r->conn, r->msg.data, r->msg.len);
		/* Already packed by the node that answered: pass it on as it is. */
		/* What is delivered to an output connection is only ever Output (ls_sink_for). */
		if (c && !c->closing && !c->remote && r->msg.len <= DG_MSG_MAX &&
		    !(c->output && ls_output_full(c))) {
			bufferevent_write(c->bev, hdr, sizeof(hdr));
			bufferevent_write(c->bev, r->msg.data, r->msg.len);
		}
		return;
	}
	if (dg_msg_decode(r->msg.data, r->msg.len, &req)) {
		ls_log(ls, "dropping a relayed request: %s", dragon_errmsg());
		return;
	}
	{
		struct conn px = {.ls = ls, .id = r->conn, .remote = 1, .puid = r->puid,
				  .sink = r->sink, .inherit_sink = r->inherit_sink};
		ls_handle(&px, req);
	}
	dg_msg_free(req);
}
