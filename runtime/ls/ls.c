/* runtime/ls/ls.c: local services' daemon: start-up, main loop, shutdown, teardown. */
#include "config.h"

#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <hwloc.h>
#include <hwloc/glibc-sched.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sodium.h>
#include <unistd.h>

#include <dragon/channel.h>
#include <dragon/pool.h>

#include "core/err.h"
#include "gs/gs.h"
#include "core/shm.h"
#include "launcher/libexec.h"
#include "ls/link.h"
#include "ls/ls.h"
#include "ls/ls_internal.h"
#include "proto/wire.h"
#include "../../pmix/boot.h"

void ls_log(struct ls *ls, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "dragon-ls[%d]: %s\n", (int)getpid(), buf);
}

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

static void kill_all(struct ls *ls, int signo)
{
	for (struct proc *p = ls->procs; p; p = p->next)
		if (!p->exited) {
			kill(-p->pid, signo);
			kill(p->pid, signo);
		}
}

static void kill_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ls *ls = arg;

	ls_log(ls, "processes still running after %d ms: sending SIGKILL", LS_KILL_GRACE_MS);
	kill_all(ls, SIGKILL);
}

void ls_check_stopped(struct ls *ls)
{
	if (!ls->stopping)
		return;
	for (struct proc *p = ls->procs; p; p = p->next)
		if (!p->done)
			return;
	if (ls->stop_seq)
		ls_reply_ok(ls_conn_find(ls, ls->stop_conn), ls->stop_seq);
	for (struct conn *c = ls->conns; c; c = c->next)
		if (!c->closing)
			ls_conn_drain(c);
	event_base_loopbreak(ls->base);
}

void ls_begin_stop(struct ls *ls, int signo)
{
	struct timeval tv = {.tv_sec = LS_KILL_GRACE_MS / 1000,
			     .tv_usec = (LS_KILL_GRACE_MS % 1000) * 1000};

	/* The head node's end is the fabric's: the other nodes stop with it, the same way. */
	for (uint32_t i = 1; ls->nodes && i < ls->node_count; i++)
		if (ls->nodes[i].link) {
			Dragon__Msg m = DRAGON__MSG__INIT;
			Dragon__Shutdown sd = DRAGON__SHUTDOWN__INIT;
			sd.signo = signo;
			m.body_case = DRAGON__MSG__BODY_SHUTDOWN;
			m.shutdown = &sd;
			dg_link_send(ls->nodes[i].link, &m);
		}

	if (ls->stopping) {
		/* A second request: do not wait for the grace period. */
		if (signo == SIGKILL)
			kill_all(ls, SIGKILL);
		return;
	}
	ls->stopping = 1;
	ls_remove_files(ls);
	kill_all(ls, signo ? signo : SIGTERM);
	ls->kill_timer = evtimer_new(ls->base, kill_timeout, ls);
	if (ls->kill_timer)
		evtimer_add(ls->kill_timer, &tv);
	ls_check_stopped(ls);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	ls_begin_stop(arg, SIGTERM);
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
		r.fabric_id = (char *)ls->o->fabric_id;
		r.node_index = ls->node_index;
		r.node_count = ls->node_count;
		r.puid = c->puid;
		r.hostname = ls->host;
		r.runtime_dir = (char *)ls->o->dir;
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
				       "no such process (or already waited for)");
			return;
		}
		if (p->done) {
			ls_reply_wait(ls, c->id, seq, p);
			ls_proc_free(ls, p);
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
	for (struct proc *p = ls->procs; p; p = p->next) {
		if (p->sink == id)
			p->sink = 0;
		if (p->exit_to == id)
			p->exit_to = 0;
	}
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
	bufferevent_free(c->bev);
	free(c);
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

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
			bufferevent_disable(bev, EV_READ);
			if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
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
			continue;
		}
		evbuffer_drain(in, DG_HDR_LEN + (size_t)len);
		ls_handle(c, req);
		dg_msg_free(req);
	}
}

static void conn_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing)
		conn_free(c);
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
	bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
	bufferevent_enable(c->bev, EV_READ);
	c->next = ls->conns;
	ls->conns = c;
	return c;
}

void ls_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		  void *arg)
{
	ls_conn_add(arg, fd, 0);
}

/*
 * LS is a child subreaper: whatever a process started and left behind becomes our child when its
 * parent dies. Before LS exits it kills and reaps every such descendant, so nothing outlives it.
 */
static void kill_descendants(void)
{
	for (int round = 0; round < 100; round++) {
		DIR *d = opendir("/proc");
		struct dirent *e;
		int found = 0;

		if (!d)
			return;
		while ((e = readdir(d))) {
			char path[300], buf[512], *rp;
			FILE *f;
			int ppid = 0;
			long pid = strtol(e->d_name, &rp, 10);

			if (*rp || pid <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
			if (!(f = fopen(path, "re")))
				continue;
			if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')))
				sscanf(rp + 2, "%*c %d", &ppid);
			fclose(f);
			if (ppid == getpid()) {
				kill((pid_t)pid, SIGKILL);
				found++;
			}
		}
		closedir(d);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!found)
			return;
		usleep(2000);
	}
}

int ls_run(const struct ls_opts *o)
{
	struct ls ls_s, *ls = &ls_s;
	int rv = 1, lfd = o->listen_fd, own_sock = 0, tcp_fd = -1;
	const char *dbg = getenv("DRAGON_DEBUG");

	memset(ls, 0, sizeof(*ls));
	ls->o = o;
	ls->next_conn = 1;
	ls->next_puid = 1;
	ls->next_pool = 1;
	ls->debug = dbg && *dbg && strcmp(dbg, "0");
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (gethostname(ls->host, sizeof(ls->host) - 1))
		strcpy(ls->host, "localhost");
	if (dg_boot_open(o->boot, &ls->boot)) {
		ls_log(ls, "bootstrap: %s", dragon_errmsg());
		return 1;
	}
	ls->node_index = (uint32_t)ls->boot->rank;
	ls->node_count = (uint32_t)ls->boot->size;
	ls->next_puid = ((uint64_t)ls->node_index << 48) + 1;
	if ((size_t)snprintf(ls->sock_path, sizeof(ls->sock_path), "%s/%s", o->dir,
			     LS_SOCK_NAME) >= sizeof(ls->sock_path)) {
		ls_log(ls, "runtime directory path too long: %s", o->dir);
		goto out;
	}
	if (lfd < 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		if (strlen(ls->sock_path) >= sizeof(sa.sun_path)) {
			ls_log(ls, "socket path too long for a unix socket: %s", ls->sock_path);
			goto out;
		}
		strcpy(sa.sun_path, ls->sock_path);
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 128)) {
			ls_log(ls, "cannot listen on %s: %s", ls->sock_path, strerror(errno));
			goto out;
		}
		own_sock = 1;
	}
	/* Descriptors of what this node creates (its channels) carry its index. */
	dg_set_local_node(ls->node_index);
	if (ls->node_count > 1 && !ls_ta_disabled() && ls_ta_spawn(ls)) {
		ls_log(ls, "transport: %s", dragon_errmsg());
		goto out;
	}
	/* The head node (rank 0) hosts GS; its address and the job key reach the others through
	 * the bootstrap, and every other node joins it over a sealed link. */
	if (ls_links_prepare(ls, &tcp_fd) || dg_boot_fence(ls->boot) || ls_links_key(ls) ||
	    ls_write_key(ls)) {
		ls_log(ls, "bootstrap: %s", dragon_errmsg());
		goto out;
	}
	/* Several nodes: start the transport agent, exchange the agents' addresses (fence 2). */
	if (ls->node_count > 1 && !ls_ta_disabled()) {
		char addr[600];
		if (ls_ta_ready(ls, addr, sizeof(addr)) ||
		    dg_boot_put(ls->boot, "ta.addr", addr, strlen(addr) + 1) ||
		    dg_boot_fence(ls->boot) || ls_ta_write_peers(ls)) {
			ls_log(ls, "transport: %s", dragon_errmsg());
			goto out;
		}
	}
	if (ls_make_base_env(ls))
		goto out;
	ls->base = event_base_new();
	if (!ls->base) {
		ls_log(ls, "libevent: no event base");
		goto out;
	}
	evutil_make_socket_nonblocking(lfd);
	ls->lst = evconnlistener_new(ls->base, ls_on_accept, ls, LEV_OPT_CLOSE_ON_FREE, -1, lfd);
	if (!ls->lst) {
		ls_log(ls, "libevent: cannot watch the listening socket");
		goto out;
	}
	lfd = -1;
	if (tcp_fd >= 0) {
		evutil_make_socket_nonblocking(tcp_fd);
		ls->nodes = calloc(ls->node_count, sizeof(*ls->nodes));
		ls->tcp = ls->nodes ? evconnlistener_new(ls->base, ls_on_link_accept, ls,
							 LEV_OPT_CLOSE_ON_FREE, -1, tcp_fd)
				    : NULL;
		if (!ls->tcp) {
			ls_log(ls, "cannot watch the listening socket for other nodes");
			goto out;
		}
		tcp_fd = -1;
	}
	if (ls_links_join(ls)) {
		ls_log(ls, "node %u cannot join the head node: %s", ls->node_index, dragon_errmsg());
		goto out;
	}
	ls->sigchld = evsignal_new(ls->base, SIGCHLD, ls_on_sigchld, ls);
	ls->sigterm = evsignal_new(ls->base, SIGTERM, on_stop_signal, ls);
	ls->sigint = evsignal_new(ls->base, SIGINT, on_stop_signal, ls);
	if (!ls->sigchld || !ls->sigterm || !ls->sigint || evsignal_add(ls->sigchld, NULL) ||
	    evsignal_add(ls->sigterm, NULL) || evsignal_add(ls->sigint, NULL)) {
		ls_log(ls, "libevent: cannot watch signals");
		goto out;
	}
	if (ls->node_index == 0) {
		struct gs_host h = {.ctx = ls,
				    .base = ls->base,
				    .node_count = ls->node_count,
				    .spawn = ls_host_spawn,
				    .signal = ls_host_signal,
				    .reply = ls_host_reply};
		ls->gs = gs_new(&h);
		if (!ls->gs) {
			ls_log(ls, "out of memory for global services");
			goto out;
		}
	}
	if (o->ctl_fd >= 0 && !ls_conn_add(ls, o->ctl_fd, 1))
		goto out;
	/* Children were forked before our SIGCHLD watch existed? Reap them now too. */
	ls_on_sigchld(SIGCHLD, 0, ls);
	if (ls->node_index == 0 && !ls_all_joined(ls)) {
		int ms = ls_startup_timeout_ms();
		struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
		ls->join_timer = evtimer_new(ls->base, ls_on_join_timeout, ls);
		if (!ls->join_timer || evtimer_add(ls->join_timer, &tv)) {
			ls_log(ls, "libevent: no timer");
			goto out;
		}
	} else if (ls_write_ready(ls)) {
		ls_log(ls, "%s", dragon_errmsg());
		goto out;
	}
	event_base_dispatch(ls->base);
	kill_descendants();
	rv = 0;
out:
	/* Cleanup must finish: a late SIGTERM (the launcher's death signal can arrive after its
	 * socket closed) would kill LS half way once libevent restores the default handler. */
	{
		sigset_t stop;
		sigemptyset(&stop);
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGINT);
		sigaddset(&stop, SIGHUP);
		sigprocmask(SIG_BLOCK, &stop, NULL);
	}
	if (ls->base) {
		/* Whatever is still alive (a loop error) must not outlive LS. */
		kill_all(ls, SIGKILL);
		while (ls->procs)
			ls_proc_free(ls, ls->procs);
		while (ls->conns) {
			struct conn *c = ls->conns;
			ls->conns = c->next;
			bufferevent_free(c->bev);
			free(c);
		}
		while (ls->waits) {
			struct waitreq *w = ls->waits;
			ls->waits = w->next;
			if (w->timer)
				event_free(w->timer);
			free(w);
		}
		while (ls->pools) {
			struct pool *pl = ls->pools;
			ls->pools = pl->next;
			close(pl->fd);
			free(pl->name);
			free(pl);
		}
		gs_free(ls->gs);
		if (ls->uplink) {
			dg_link_flush(ls->uplink, 200);
			dg_link_free(ls->uplink);
			ls->uplink = NULL;
		}
		for (uint32_t i = 0; ls->nodes && i < ls->node_count; i++)
			if (ls->nodes[i].link) {
				dg_link_flush(ls->nodes[i].link, 200);
				dg_link_free(ls->nodes[i].link);
			}
		free(ls->nodes);
		ls->nodes = NULL;
		if (ls->tcp)
			evconnlistener_free(ls->tcp);
		if (ls->lst)
			evconnlistener_free(ls->lst);
		if (ls->sigchld)
			event_free(ls->sigchld);
		if (ls->sigterm)
			event_free(ls->sigterm);
		if (ls->sigint)
			event_free(ls->sigint);
		if (ls->kill_timer)
			event_free(ls->kill_timer);
		if (ls->join_timer)
			event_free(ls->join_timer);
		event_base_free(ls->base);
	}
	if (lfd >= 0 && lfd != o->listen_fd)
		close(lfd);
	if (tcp_fd >= 0)
		close(tcp_fd);
	(void)own_sock;
	if (ls->ta_pid) {
		kill(ls->ta_pid, SIGTERM);
		waitpid(ls->ta_pid, NULL, 0);
	}
	ls_remove_files(ls);
	while (ls->chans) {
		struct lchan *lc = ls->chans;
		ls->chans = lc->next;
		dragon_channel_destroy(lc->ch);
		free(lc);
	}
	if (ls->node_pool)
		dragon_pool_destroy(ls->node_pool);
	sodium_memzero(ls->key, sizeof(ls->key));
	/* Embedded in a launcher that may itself be gone (SIGKILL): leave no directory behind. */
	if (o->ctl_fd >= 0 && rmdir(o->dir) == 0) {
		char base[PATH_MAX], *slash;
		snprintf(base, sizeof(base), "%s", o->dir);
		if ((slash = strrchr(base, '/')) && slash != base) {
			*slash = 0;
			if (rmdir(base) && ls->debug)
				ls_log(ls, "rmdir %s: %s", base, strerror(errno));
		}
	} else if (o->ctl_fd >= 0 && ls->debug) {
		ls_log(ls, "rmdir %s: %s", o->dir, strerror(errno));
	}
	if (ls->debug)
		ls_log(ls, "exiting");
	free(ls->base_env);
	if (ls->allowed)
		hwloc_bitmap_free(ls->allowed);
	if (ls->topo)
		hwloc_topology_destroy(ls->topo);
	dg_boot_close(ls->boot);
	return rv;
}
