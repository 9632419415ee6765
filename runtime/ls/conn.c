/* runtime/ls/conn.c: client connections: the socket, framing, replies, dispatch of requests. */
#include "config.h"

#define _GNU_SOURCE 1
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/pool_internal.h"
#include "gs/gs.h"
#include "ls/ls_internal.h"

uint64_t ls_owner_of(const struct conn *c)
{
	return c->puid ? c->puid : (1ull << 63) | c->id;
}

struct conn *ls_conn_find(struct ls *ls, uint64_t id)
{
	for (struct conn *c = ls->conns; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

void ls_conn_send(struct conn *c, Dragon__Msg *m)
{
	uint8_t *buf;
	size_t len;

	if (!c || c->closing)
		return;
	if (c->remote) {
		ls_send_to(c->ls, c->id, m);
		return;
	}
	if (c->output && m->body_case == DRAGON__MSG__BODY_OUTPUT && ls_output_full(c))
		return;
	if (dg_msg_encode(m, &buf, &len)) {
		ls_log(c->ls, "cannot encode a %s reply: %s", dg_msg_name(m), dragon_errmsg());
		return;
	}
	bufferevent_write(c->bev, buf, len);
	free(buf);
}

void ls_reply_error(struct conn *c, uint64_t seq, int rc, const char *msg)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Error e = DRAGON__ERROR__INIT;

	e.rc = rc;
	e.msg = (char *)msg;
	m.seq = seq;
	m.body_case = DRAGON__MSG__BODY_ERROR;
	m.error = &e;
	ls_conn_send(c, &m);
}

void ls_reply_ok(struct conn *c, uint64_t seq)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Error e = DRAGON__ERROR__INIT;

	m.seq = seq;
	m.body_case = DRAGON__MSG__BODY_OK;
	m.ok = &e;
	ls_conn_send(c, &m);
}

/* Write a connection's pending output synchronously: before LS exits, and before a reply that
 * carries a descriptor (which cannot queue in a bufferevent). */
void ls_conn_drain(struct conn *c)
{
	dg_bev_flush(c->bev, 1000);
}

/* Messages that only links between nodes carry, and requests served only to a node's own clients
 * (they pass descriptors, or act on the connection itself). */
static int link_only(const Dragon__Msg *m)
{
	switch (m->body_case) {
	case DRAGON__MSG__BODY_JOIN:
	case DRAGON__MSG__BODY_RELAY:
	case DRAGON__MSG__BODY_SPAWN_AT:
	case DRAGON__MSG__BODY_PROC_DONE:
	case DRAGON__MSG__BODY_GONE:
	case DRAGON__MSG__BODY_HEARTBEAT:
	case DRAGON__MSG__BODY_NODE_LOST:
		return 1;
	default:
		return 0;
	}
}

static int node_local_only(const Dragon__Msg *m)
{
	switch (m->body_case) {
	case DRAGON__MSG__BODY_HELLO:
	case DRAGON__MSG__BODY_SHUTDOWN:
	case DRAGON__MSG__BODY_POOL_CREATE:
	case DRAGON__MSG__BODY_POOL_ATTACH:
	case DRAGON__MSG__BODY_POOL_DESTROY:
	case DRAGON__MSG__BODY_CHANNEL_CREATE:
		return 1;
	default:
		return 0;
	}
}

static void handle_req(struct conn *c, const Dragon__Msg *req);

void ls_handle(struct conn *c, const Dragon__Msg *req)
{
	struct ls *ls = c->ls;
	struct conn *outer = ls->handling;
	uint32_t node;

	if (ls->debug)
		ls_log(ls, "conn %llx (pid %d): %s", (unsigned long long)c->id, (int)c->pid,
		       dg_msg_name(req));
	if (link_only(req)) {
		ls_log(ls, "pid %d sent a %s, which only links between nodes carry", (int)c->pid,
		       dg_msg_name(req));
		ls_reply_error(c, req->seq, DRAGON_EPROTO, "not a request local services serve");
		return;
	}
	if (c->remote && node_local_only(req)) {
		ls_reply_error(c, req->seq, DRAGON_ENOTSUP,
			       "this request is served only on its own node");
		return;
	}
	if (ls_check_output_conn(c, req)) {
		ls_reply_error(c, req->seq, DRAGON_EINVAL, dragon_errmsg());
		return;
	}
	node = ls_serving_node(ls, req);
	if (node != ls->node_index) {
		ls_forward_request(c, node, req);
		return;
	}
	/* GS's spawn callback needs the requester, which may be a stand-in for another node's. */
	ls->handling = c;
	handle_req(c, req);
	ls->handling = outer;
}

static void handle_req(struct conn *c, const Dragon__Msg *req)
{
	struct ls *ls = c->ls;
	Dragon__Msg m = DRAGON__MSG__INIT;
	uint64_t seq = req->seq;
	int rc;

	m.seq = seq;
	switch (req->body_case) {
	case DRAGON__MSG__BODY_HELLO: {
		Dragon__HelloReply r = DRAGON__HELLO_REPLY__INIT;
		c->sink = req->hello->sink;
		c->output = req->hello->output;
		r.conn = c->id;
		r.fabric_id = (char *)ls->o->fabric_id;
		r.node_index = ls->node_index;
		r.node_count = ls->node_count;
		r.puid = c->puid;
		r.hostname = ls->host;
		r.runtime_dir = (char *)ls->o->dir;
		/* A client of another build could not map the node's pool: it checks this. */
		r.pool_layout = dg_pool_layout();
		m.body_case = DRAGON__MSG__BODY_HELLO_REPLY;
		m.hello_reply = &r;
		ls_conn_send(c, &m);
		return;
	}
	case DRAGON__MSG__BODY_SPAWN: {
		Dragon__SpawnReply r = DRAGON__SPAWN_REPLY__INIT;
		uint64_t puid = 0;
		pid_t pid;
		rc = ls_spawn(ls, req->spawn->args, c, 0, 0, 0, &puid, &pid);
		if (rc) {
			ls_reply_error(c, seq, rc, dragon_errmsg());
			return;
		}
		r.puid = puid;
		r.pid = pid;
		m.body_case = DRAGON__MSG__BODY_SPAWN_REPLY;
		m.spawn_reply = &r;
		ls_conn_send(c, &m);
		return;
	}
	case DRAGON__MSG__BODY_WAIT: {
		struct proc *p = ls_proc_find(ls, req->wait->puid);
		struct waitreq *w;
		if (!p) {
			ls_reply_error(c, seq, DRAGON_ENOTFOUND,
				       "no such process (or one that ended long ago, or whose creator left)");
			return;
		}
		if (p->done) {
			ls_reply_wait(ls, c->id, seq, p);
			ls_proc_forget_old(ls);
			return;
		}
		if (req->wait->timeout_ms == 0) {
			ls_reply_error(c, seq, DRAGON_ETIMEDOUT, "the process is running");
			return;
		}
		w = calloc(1, sizeof(*w));
		if (!w) {
			ls_reply_error(c, seq, DRAGON_ENOMEM, "wait");
			return;
		}
		w->ls = ls;
		w->conn = c->id;
		w->seq = seq;
		w->puid = p->puid;
		if (req->wait->timeout_ms > 0) {
			struct timeval tv = {.tv_sec = req->wait->timeout_ms / 1000,
					     .tv_usec = (req->wait->timeout_ms % 1000) * 1000};
			w->timer = evtimer_new(ls->base, ls_wait_timeout, w);
			if (w->timer)
				evtimer_add(w->timer, &tv);
		}
		w->next = ls->waits;
		ls->waits = w;
		return;
	}
	case DRAGON__MSG__BODY_INPUT:
		ls_input(c, seq, req->input);
		return;
	case DRAGON__MSG__BODY_SIGNAL:
		if (req->signal->gid) {
			if (ls->gs && gs_handle(ls->gs, c->id, ls_owner_of(c), req))
				return;
			ls_reply_error(c, seq, DRAGON_ENOTSUP, "no global services on this node");
			return;
		}
		rc = ls_signal(ls, req->signal->puid, req->signal->signo);
		if (rc)
			ls_reply_error(c, seq, rc, dragon_errmsg());
		else
			ls_reply_ok(c, seq);
		return;
	case DRAGON__MSG__BODY_LIST:
		ls_reply_procs(c, seq, 0);
		return;
	case DRAGON__MSG__BODY_STATUS:
		ls_reply_procs(c, seq, req->status->at_node || !ls->gs ? 1 : 2);
		return;
	case DRAGON__MSG__BODY_SHUTDOWN:
		if (!ls->stop_seq) {
			ls->stop_conn = c->id;
			ls->stop_seq = seq ? seq : 1;
		}
		ls_stop_why(ls, "a process (pid %d) stopped the job's fabric (Shutdown)", (int)c->pid);
		ls_begin_stop(ls, req->shutdown->signo);
		return;
	case DRAGON__MSG__BODY_POOL_CREATE:
		ls_pool_create(c, seq, req->pool_create);
		return;
	case DRAGON__MSG__BODY_CHANNEL_CREATE:
		ls_channel_create(c, seq, req->channel_create);
		return;
	case DRAGON__MSG__BODY_CHANNEL_DESTROY:
		ls_channel_destroy(c, seq, req->channel_destroy);
		return;
	case DRAGON__MSG__BODY_POOL_ATTACH: {
		struct pool *pl = ls_pool_find(ls, req->pool_attach->pool_id);
		if (!pl)
			ls_reply_error(c, seq, DRAGON_ENOTFOUND, "no such pool on this node");
		else
			ls_send_pool(c, seq, pl);
		return;
	}
	case DRAGON__MSG__BODY_POOL_DESTROY:
		for (struct pool **q = &ls->pools; *q; q = &(*q)->next)
			if ((*q)->id == req->pool_destroy->pool_id) {
				struct pool *pl = *q;
				*q = pl->next;
				if (pl->name && ls->gs)
					gs_name_drop(ls->gs, pl->name);
				close(pl->fd);
				free(pl->name);
				free(pl);
				ls_reply_ok(c, seq);
				return;
			}
		ls_reply_error(c, seq, DRAGON_ENOTFOUND, "no such pool on this node");
		return;
	default:
		if (ls->gs && gs_handle(ls->gs, c->id, ls_owner_of(c), req))
			return;
		ls_log(ls, "pid %d sent a %s, which is not a request", (int)c->pid, dg_msg_name(req));
		ls_reply_error(c, seq, DRAGON_EPROTO, "not a request local services serve");
	}
}

/* A connection of this node or another closed: drop its waits, GS's requests and its output. */
void ls_conn_forget(struct ls *ls, uint64_t id)
{
	for (struct waitreq **q = &ls->waits; *q;) {
		struct waitreq *w = *q;
		if (w->conn == id) {
			*q = w->next;
			if (w->timer)
				event_free(w->timer);
			free(w);
		} else {
			q = &w->next;
		}
	}
	if (ls->gs)
		gs_conn_gone(ls->gs, id);
	ls_fwd_forget_conn(ls, id);
	for (struct proc *p = ls->procs; p; p = p->next) {
		if (p->sink == id)
			p->sink = 0;
		if (p->exit_to == id)
			p->exit_to = 0;
	}
}

static void conn_drop_fds(struct conn *c)
{
	for (int i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	c->nfds = 0;
	c->fds_lost = 0;
}

static void conn_free(struct conn *c)
{
	struct ls *ls = c->ls;

	for (struct conn **q = &ls->conns; *q; q = &(*q)->next)
		if (*q == c) {
			*q = c->next;
			break;
		}
	ls_conn_forget(ls, c->id);
	/* A client the fabric did not start owns what it created only while connected. */
	if (!c->puid)
		ls_owner_gone(ls, ls_owner_of(c));
	ls_announce_gone(ls, c->puid ? 0 : ls_owner_of(c), c->id, UINT32_MAX);
	if (c->ctl && !ls->stopping) {
		ls_log(ls, "the launcher went away: stopping the fabric");
		ls_begin_stop(ls, SIGTERM);
	}
	if (c->rd)
		event_free(c->rd);
	if (c->in)
		evbuffer_free(c->in);
	conn_drop_fds(c);
	bufferevent_free(c->bev);
	free(c);
}

/* Frame and handle what c->in holds. */
static void conn_parse(struct conn *c)
{
	struct evbuffer *in = c->in;

	while (!c->closing) {
		uint8_t hdr[DG_HDR_LEN];
		uint32_t len;
		Dragon__Msg *req;
		unsigned char *body;

		if (evbuffer_copyout(in, hdr, DG_HDR_LEN) < DG_HDR_LEN)
			return;
		len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
		      (uint32_t)hdr[3] << 24;
		if (len > DG_MSG_MAX) {
			/* The stream cannot be resynchronised: answer, then close this one. */
			ls_log(c->ls, "pid %d announced a %u-byte message (limit %u): closing it",
			       (int)c->pid, len, DG_MSG_MAX);
			ls_reply_error(c, 0, DRAGON_EPROTO, "message exceeds the size limit");
			c->closing = 1;
			event_del(c->rd);
			conn_drop_fds(c);
			if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
				conn_free(c);
			return;
		}
		if (evbuffer_get_length(in) < DG_HDR_LEN + (size_t)len)
			return;
		body = evbuffer_pullup(in, DG_HDR_LEN + (ssize_t)len);
		if (dg_msg_decode(body + DG_HDR_LEN, len, &req)) {
			ls_log(c->ls, "dropping a message from pid %d: %s", (int)c->pid,
			       dragon_errmsg());
			ls_reply_error(c, 0, DRAGON_EPROTO, dragon_errmsg());
			evbuffer_drain(in, DG_HDR_LEN + (size_t)len);
			conn_drop_fds(c);
			continue;
		}
		evbuffer_drain(in, DG_HDR_LEN + (size_t)len);
		ls_handle(c, req);
		dg_msg_free(req);
		/* Descriptors belong to the request they came with: a Spawn took them (or failed). */
		conn_drop_fds(c);
	}
}

/* Read what the client sent, keeping descriptors that came with it (SCM_RIGHTS). */
static void conn_recv(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * DG_FDPASS_MAX)];
	} ctl;
	struct evbuffer_iovec v;
	struct msghdr msg = {.msg_iovlen = 1};
	struct iovec iov;
	ssize_t n;

	(void)what;
	if (c->closing)
		return;
	if (evbuffer_reserve_space(c->in, 16384, &v, 1) < 1) {
		conn_free(c);
		return;
	}
	iov.iov_base = v.iov_base;
	iov.iov_len = v.iov_len;
	msg.msg_iov = &iov;
	msg.msg_control = ctl.space;
	msg.msg_controllen = sizeof(ctl.space);
	n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(c);
		return;
	}
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		int cnt = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int got[DG_FDPASS_MAX];
		memcpy(got, CMSG_DATA(h), sizeof(int) * (cnt < DG_FDPASS_MAX ? cnt : DG_FDPASS_MAX));
		for (int i = 0; i < cnt && i < DG_FDPASS_MAX; i++) {
			if (c->nfds < DG_FDPASS_MAX) {
				c->fds[c->nfds++] = got[i];
			} else {
				close(got[i]);
				c->fds_lost = 1;
			}
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		c->fds_lost = 1;
	v.iov_len = (size_t)n;
	evbuffer_commit_space(c->in, &v, 1);
	conn_parse(c);
}

static void conn_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing)
		conn_free(c);
	else if (c->dropped)
		ls_output_drained(c);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(arg);
}

struct conn *ls_conn_add(struct ls *ls, int fd, int ctl)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct conn *c;
	struct proc *p;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl)) {
		ls_log(ls, "SO_PEERCRED: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (cred.uid != geteuid()) {
		ls_log(ls, "refusing a connection from uid %d (pid %d): not the fabric's user",
		       (int)cred.uid, (int)cred.pid);
		close(fd);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return NULL;
	}
	evutil_make_socket_nonblocking(fd);
	/* Not inherited by what LS starts (the launcher's control socket comes without it). */
	evutil_make_socket_closeonexec(fd);
	c->bev = bufferevent_socket_new(ls->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		free(c);
		close(fd);
		return NULL;
	}
	c->ls = ls;
	c->id = GCONN(ls->node_index, ls->next_conn++);
	c->pid = cred.pid;
	c->ctl = ctl;
	if ((p = ls_proc_by_pid(ls, cred.pid)))
		c->puid = p->puid;
	c->in = evbuffer_new();
	c->rd = event_new(ls->base, fd, EV_READ | EV_PERSIST, conn_recv, c);
	if (!c->in || !c->rd || event_add(c->rd, NULL)) {
		if (c->rd)
			event_free(c->rd);
		if (c->in)
			evbuffer_free(c->in);
		bufferevent_free(c->bev);
		free(c);
		return NULL;
	}
	/* The bufferevent only writes (replies): reading is conn_recv's. */
	bufferevent_setcb(c->bev, NULL, conn_write, conn_event, c);
	bufferevent_disable(c->bev, EV_READ);
	c->next = ls->conns;
	ls->conns = c;
	return c;
}

void ls_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		  void *arg)
{
	ls_conn_add(arg, fd, 0);
}
