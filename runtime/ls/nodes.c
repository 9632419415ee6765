/* runtime/ls/nodes.c: links between nodes: job key, head node's address, join, link messages. */
#include "config.h"

#define _GNU_SOURCE 1
#include <event2/event.h>
#include <event2/listener.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <unistd.h>

#include "core/env.h"
#include "core/err.h"
#include "gs/gs.h"
#include "ls/ls_internal.h"
#include "../../pmix/boot.h"

/*
 * The head node says it is ready only once every node joined it: a program started on it at
 * once may place processes anywhere. A node that does not join in time fails the fabric.
 */
int ls_all_joined(struct ls *ls)
{
	for (uint32_t i = 1; i < ls->node_count; i++)
		if (!ls->nodes || !ls->nodes[i].joined)
			return 0;
	return 1;
}

static void ready_when_joined(struct ls *ls)
{
	if (ls->ready || !ls_all_joined(ls))
		return;
	if (ls->join_timer)
		evtimer_del(ls->join_timer);
	if (ls_write_ready(ls)) {
		ls_log(ls, "%s", dragon_errmsg());
		ls_begin_stop(ls, SIGTERM);
	}
}

void ls_on_join_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ls *ls = arg;
	char missing[512] = "";
	size_t n = 0;

	(void)fd;
	(void)what;
	for (uint32_t i = 1; i < ls->node_count && n + 16 < sizeof(missing); i++)
		if (!ls->nodes[i].joined)
			n += (size_t)snprintf(missing + n, sizeof(missing) - n, "%s%u", n ? ", " : "", i);
	ls_log(ls, "node(s) %s did not join the head node within %d s (DRAGON_STARTUP_TIMEOUT); "
		   "stopping the fabric",
	       missing, ls_startup_timeout_ms() / 1000);
	ls_begin_stop(ls, SIGTERM);
}

static void on_join(struct ls *ls, struct dg_link *l, const Dragon__Join *j)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Error e = DRAGON__ERROR__INIT;
	char why[300] = "";

	if (!ls->nodes || dg_link_node(l) != UINT32_MAX)
		snprintf(why, sizeof(why), "a second Join on one link");
	else if (j->node == 0 || j->node >= ls->node_count)
		snprintf(why, sizeof(why), "node %u is not part of a fabric of %u nodes", j->node,
			 ls->node_count);
	else if (ls->nodes[j->node].link || ls->nodes[j->node].joined)
		snprintf(why, sizeof(why), "node %u has joined already", j->node);
	else if (!j->fabric_id || strcmp(j->fabric_id, ls->o->fabric_id))
		snprintf(why, sizeof(why), "fabric '%s' is not this one ('%s')",
			 j->fabric_id ? j->fabric_id : "", ls->o->fabric_id);
	if (*why) {
		ls_log(ls, "refusing a node: %s", why);
		e.rc = DRAGON_EPERM;
		e.msg = why;
		m.body_case = DRAGON__MSG__BODY_ERROR;
		m.error = &e;
		dg_link_send(l, &m);
		dg_link_flush(l, 100);
		dg_link_fail(l, why);
		return;
	}
	dg_link_set_node(l, j->node);
	ls->nodes[j->node].link = l;
	ls->nodes[j->node].joined = 1;
	snprintf(ls->nodes[j->node].host, sizeof(ls->nodes[j->node].host), "%s",
		 j->host ? j->host : "?");
	ls->nodes[j->node].ls_pid = j->ls_pid;
	ls->nodes[j->node].ncpus = j->ncpus;
	if (ls->debug)
		ls_log(ls, "node %u (%s) joined", j->node, ls->nodes[j->node].host);
	m.body_case = DRAGON__MSG__BODY_OK;
	m.ok = &e;
	dg_link_send(l, &m);
	if (dg_link_watch(l, ls->heartbeat_ms, ls->node_timeout_ms))
		ls_log(ls, "node %u: %s (a cut network will not be noticed)", j->node, dragon_errmsg());
	ready_when_joined(ls);
}

static void link_msg(struct dg_link *l, const Dragon__Msg *m, void *arg)
{
	struct ls *ls = arg;
	uint32_t from = dg_link_node(l);

	if (m->body_case == DRAGON__MSG__BODY_JOIN) {
		on_join(ls, l, m->join);
		return;
	}
	if (from == UINT32_MAX) {
		dg_link_fail(l, "a message before the Join");
		return;
	}
	switch (m->body_case) {
	case DRAGON__MSG__BODY_RELAY:
		/* a request passing through to a third node: that node may now hold something of from's */
		if (ls->nodes && !m->relay->deliver)
			ls_mark_reached(ls, from, m->relay->to_node);
		ls_on_relay(ls, m);
		return;
	case DRAGON__MSG__BODY_SPAWN_AT:
		if (ls->uplink) {
			ls_on_spawn_at(ls, m->spawn_at);
			return;
		}
		break;
	case DRAGON__MSG__BODY_PROC_DONE:
		if (ls->gs) {
			if (ID_NODE(m->proc_done->puid) == from) {
				ls_rproc_done(ls, m->proc_done->puid);
				gs_proc_done(ls->gs, m->proc_done->puid, m->proc_done->status,
					     m->proc_done->signaled);
			}
			return;
		}
		break;
	case DRAGON__MSG__BODY_NODE_LOST:
		if (ls->uplink) {
			ls_node_lost(ls, m->node_lost->node, "the head node reports it");
			return;
		}
		break;
	case DRAGON__MSG__BODY_SHUTDOWN:
		if (ls->uplink) {
			ls_stop_why(ls, "the head node stopped the job's fabric");
			ls_begin_stop(ls, m->shutdown->signo);
			return;
		}
		break;
	case DRAGON__MSG__BODY_GONE:
		if (ls->debug)
			ls_log(ls, "node %u says owner %llx, connection %llx are gone", from,
			       (unsigned long long)m->gone->owner, (unsigned long long)m->gone->conn);
		if (m->gone->conn)
			ls_conn_forget(ls, m->gone->conn);
		if (m->gone->owner)
			ls_owner_gone(ls, m->gone->owner);
		if (ls->nodes)
			ls_announce_gone(ls, m->gone->owner, m->gone->conn, from);
		return;
	default:
		break;
	}
	ls_log(ls, "node %u sent a %s over its link: ignored", from, dg_msg_name(m));
}

static void link_closed(struct dg_link *l, const char *why, void *arg)
{
	struct ls *ls = arg;
	uint32_t node = dg_link_node(l);

	if (l == ls->uplink) {
		ls->uplink = NULL;
		if (!ls->stopping) {
			ls_log(ls, "lost the head node (%s): stopping this node", why);
			ls_stop_why(ls, "this node lost the head node (%s) and left the job's fabric: "
					"either the head node is gone, which ends the fabric, or this node "
					"was cut off from it, and the fabric goes on without this node",
				    why);
			ls->left = 1;
			ls_begin_stop(ls, SIGTERM);
		}
		dg_link_free(l);
		return;
	}
	if (ls->nodes && node < ls->node_count && ls->nodes[node].link == l) {
		if (ls->debug)
			ls_log(ls, "link to node %u: longest silence %lld ms (heartbeat %d ms, "
				   "node timeout %d ms)",
			       node, (long long)dg_link_max_silence_ms(l), ls->heartbeat_ms,
			       ls->node_timeout_ms);
		ls->nodes[node].link = NULL;
		if (!ls->stopping)
			ls_node_lost(ls, node, why);
	} else if (node == UINT32_MAX && !ls->stopping) {
		/* Someone reached the node port without the job key, or spoke garbage. */
		ls_log(ls, "refused a connection on the port for other nodes: %s", why);
	}
	dg_link_free(l);
}

void ls_on_link_accept(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa, int len,
		       void *arg)
{
	struct ls *ls = arg;
	struct dg_link_cb cb = {.msg = link_msg, .closed = link_closed, .arg = ls};

	(void)lst;
	(void)sa;
	(void)len;
	if (!dg_link_accept(ls->base, fd, ls->key, &cb))
		ls_log(ls, "out of memory for a link");
}

/*
 * Before the fence: the head node makes the job key and listens for the other nodes; both go
 * through the bootstrap (PMIx for Slurm: only the fabric step's processes see them). The key
 * is also left in DIR/job.key (0600) for the node's transport agent.
 */
int ls_links_prepare(struct ls *ls, int *tcp_fd)
{
	char addrs[1024];
	int rv;

	*tcp_fd = -1;
	if (ls->node_index == 0)
		randombytes_buf(ls->key, sizeof(ls->key));
	if (ls->node_count < 2)
		return DRAGON_OK;
	if (ls->node_index != 0)
		return DRAGON_OK;
	if ((rv = dg_link_listen(getenv("DRAGON_LS_BIND"), tcp_fd, addrs, sizeof(addrs))))
		return rv;
	if ((rv = dg_boot_put(ls->boot, "ls.addrs", addrs, strlen(addrs) + 1)) ||
	    (rv = dg_boot_put(ls->boot, "job.key", ls->key, sizeof(ls->key))))
		return rv;
	return DRAGON_OK;
}

int ls_startup_timeout_ms(void)
{
	return DG_STARTUP_TIMEOUT_MS(); /* bounded: a huge value overflowed the product */
}

/*
 * How long a node may stay silent before it is lost, and how often a link proves it is alive:
 * DRAGON_NODE_TIMEOUT (seconds, fractions allowed; default LS_NODE_TIMEOUT_MS), a heartbeat every
 * fifth of it, at most every second. Every node of a fabric gets the same value (the fabric
 * step's environment), so the head node and a cut-off node give up on each other together.
 */
int ls_node_timeouts(struct ls *ls)
{
	const char *t = getenv("DRAGON_NODE_TIMEOUT");
	double s = LS_NODE_TIMEOUT_MS / 1000.0;
	char *end = NULL;

	if (t && *t) {
		s = strtod(t, &end);
		if (end == t || *end || !(s >= 0.1 && s <= 3600))
			return dg_err(DRAGON_EINVAL,
				      "DRAGON_NODE_TIMEOUT='%s': want seconds from 0.1 to 3600", t);
	}
	ls->node_timeout_ms = (int)(s * 1000);
	ls->heartbeat_ms = ls->node_timeout_ms / 5 < 1000 ? ls->node_timeout_ms / 5 : 1000;
	if (ls->heartbeat_ms < 20)
		ls->heartbeat_ms = 20;
	return DRAGON_OK;
}

/*
 * Node `node` left the fabric (on the head node: its link closed or went silent; elsewhere: the
 * head node said so). The rest goes on: the head node tells the other nodes, and every node
 * releases what depended on the lost one. A lost node never comes back into this fabric.
 */
void ls_node_lost(struct ls *ls, uint32_t node, const char *why)
{
	if (node == 0 || node >= ls->node_count || node == ls->node_index || !ls->lost ||
	    ls->lost[node] || ls->stopping)
		return;
	ls->lost[node] = 1;
	if (ls->nodes)
		ls_log(ls, "node %u (%s) is lost: %s; the fabric goes on without it", node,
		       ls->nodes[node].host, why);
	else
		ls_log(ls, "node %u is lost (%s); the fabric goes on without it", node, why);
	if (ls->nodes) {
		Dragon__Msg m = DRAGON__MSG__INIT;
		Dragon__NodeLost nl = DRAGON__NODE_LOST__INIT;
		nl.node = node;
		m.body_case = DRAGON__MSG__BODY_NODE_LOST;
		m.node_lost = &nl;
		for (uint32_t i = 1; i < ls->node_count; i++)
			if (i != node && ls->nodes[i].link)
				dg_link_send(ls->nodes[i].link, &m);
	}
	if (ls_ta_tell_lost(ls))
		ls_log(ls, "node %u: %s (its channels fail only once the agent finds it silent)", node,
		       dragon_errmsg());
	ls_route_node_lost(ls, node);
	ls_release_node(ls, node);
}

/* After the fence: the other nodes take the head node's job key. */
int ls_links_key(struct ls *ls)
{
	void *key = NULL;
	size_t klen = 0;
	int rv;

	if (ls->node_count < 2 || ls->node_index == 0)
		return DRAGON_OK;
	if ((rv = dg_boot_get(ls->boot, 0, "job.key", &key, &klen)))
		return rv;
	if (klen != sizeof(ls->key))
		rv = dg_err(DRAGON_EPROTO, "the head node published a malformed job key");
	else
		memcpy(ls->key, key, sizeof(ls->key));
	sodium_memzero(key, klen);
	free(key);
	return rv;
}

/* Then they join the head node at one of the addresses it published. */
int ls_links_join(struct ls *ls)
{
	Dragon__Join j = DRAGON__JOIN__INIT;
	struct dg_link_cb cb = {.msg = link_msg, .closed = link_closed, .arg = ls};
	void *addrs = NULL;
	size_t alen = 0;
	cpu_set_t cs;
	int rv;

	if (ls->node_count < 2 || ls->node_index == 0)
		return DRAGON_OK;
	if ((rv = dg_boot_get(ls->boot, 0, "ls.addrs", &addrs, &alen)))
		goto out;
	if (!alen || ((char *)addrs)[alen - 1]) {
		rv = dg_err(DRAGON_EPROTO, "the head node published a malformed address");
		goto out;
	}
	j.node = ls->node_index;
	j.host = ls->host;
	j.ls_pid = getpid();
	j.ncpus = sched_getaffinity(0, sizeof(cs), &cs) ? 0 : (uint32_t)CPU_COUNT(&cs);
	j.fabric_id = (char *)ls->o->fabric_id;
	rv = dg_link_connect(ls->base, addrs, ls->key, &j, ls_startup_timeout_ms(), &cb,
			     &ls->uplink);
	if (!rv)
		rv = dg_link_watch(ls->uplink, ls->heartbeat_ms, ls->node_timeout_ms);
out:
	free(addrs);
	return rv;
}
