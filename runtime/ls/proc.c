/* runtime/ls/proc.c: the node's processes: reaping, waits, signals, what an owner leaves. */
#include "config.h"

#define _GNU_SOURCE 1
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dragon/process.h>

#include "core/err.h"
#include "gs/gs.h"
#include "ls/ls_internal.h"

struct proc *ls_proc_find(struct ls *ls, uint64_t puid)
{
	for (struct proc *p = ls->procs; p; p = p->next)
		if (p->puid == puid)
			return p;
	return NULL;
}

struct proc *ls_proc_by_pid(struct ls *ls, pid_t pid)
{
	for (struct proc *p = ls->procs; p; p = p->next)
		if (p->pid == pid && !p->exited)
			return p;
	return NULL;
}

void ls_proc_free(struct ls *ls, struct proc *p)
{
	for (struct proc **q = &ls->procs; *q; q = &(*q)->next)
		if (*q == p) {
			*q = p->next;
			break;
		}
	for (int i = 0; i < 2; i++)
		if (p->out[i])
			bufferevent_free(p->out[i]);
	if (p->in)
		bufferevent_free(p->in);
	if (p->flush_timer)
		event_free(p->flush_timer);
	free(p->argv0);
	free(p);
}

/* Forget the ended, waited-for processes beyond the newest LS_KEEP_WAITED (the list is newest first). */
void ls_proc_forget_old(struct ls *ls)
{
	unsigned kept = 0;

	for (struct proc *p = ls->procs, *n; p; p = n) {
		n = p->next;
		if (p->done && p->waited && ++kept > LS_KEEP_WAITED)
			ls_proc_free(ls, p);
	}
}

void ls_reply_wait(struct ls *ls, uint64_t conn, uint64_t seq, struct proc *p)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__WaitReply r = DRAGON__WAIT_REPLY__INIT;

	r.puid = p->puid;
	r.status = p->status;
	r.signaled = p->signaled;
	m.seq = seq;
	m.body_case = DRAGON__MSG__BODY_WAIT_REPLY;
	m.wait_reply = &r;
	ls_send_to(ls, conn, &m);
	p->waited = 1;
}

/* Release what an owner (a process or a client connection) created without `outlive`. */
void ls_owner_gone(struct ls *ls, uint64_t owner)
{
	for (struct proc *p = ls->procs, *n; p; p = n) {
		n = p->next;
		if (p->creator != owner)
			continue;
		if (!p->done) {
			if (!p->outlive) {
				kill(-p->pid, SIGTERM);
				kill(p->pid, SIGTERM);
			}
		} else {
			ls_proc_free(ls, p);
		}
	}
	for (struct pool **q = &ls->pools; *q;) {
		struct pool *pl = *q;
		if (pl->owner == owner && !pl->outlive) {
			*q = pl->next;
			close(pl->fd);
			free(pl->name);
			free(pl);
		} else {
			q = &pl->next;
		}
	}
	for (struct lchan **q = &ls->chans; *q;) {
		struct lchan *lc = *q;
		if (lc->owner == owner && !lc->outlive) {
			*q = lc->next;
			dragon_channel_destroy(lc->ch);
			free(lc);
		} else {
			q = &lc->next;
		}
	}
	if (ls->gs)
		gs_owner_gone(ls->gs, owner);
}

/*
 * Node `node` left the fabric: what its processes and clients owned here is released as if each
 * had ended (ls_owner_gone), their waits are dropped and output for them is discarded. GS
 * (head node) marks that node's group members ended with DRAGON_STATUS_NODE_LOST.
 */
void ls_release_node(struct ls *ls, uint32_t node)
{
	uint64_t *owners = NULL;
	size_t n = 0, cap = 0;

	for (struct waitreq **q = &ls->waits; *q;) {
		struct waitreq *w = *q;
		if (ID_NODE(w->conn) == node) {
			*q = w->next;
			if (w->timer)
				event_free(w->timer);
			free(w);
		} else {
			q = &w->next;
		}
	}
	/* Every owner key of that node that holds something here, each once. */
	for (int pass = 0; pass < 3; pass++) {
		struct proc *p = pass == 0 ? ls->procs : NULL;
		struct pool *pl = pass == 1 ? ls->pools : NULL;
		struct lchan *lc = pass == 2 ? ls->chans : NULL;
		for (;;) {
			uint64_t o;
			size_t i;
			if (p) {
				if (ID_NODE(p->sink) == node && IS_GCONN(p->sink))
					p->sink = 0;
				if (ID_NODE(p->exit_to) == node && IS_GCONN(p->exit_to))
					p->exit_to = 0;
				o = p->creator;
				p = p->next;
			} else if (pl) {
				o = pl->owner;
				pl = pl->next;
			} else if (lc) {
				o = lc->owner;
				lc = lc->next;
			} else {
				break;
			}
			if (!o || ID_NODE(o) != node)
				continue;
			for (i = 0; i < n && owners[i] != o; i++)
				;
			if (i < n)
				continue;
			if (n == cap) {
				uint64_t *no = realloc(owners, (cap ? 2 * cap : 16) * sizeof(*no));
				if (!no)
					break;
				owners = no;
				cap = cap ? 2 * cap : 16;
			}
			owners[n++] = o;
		}
	}
	for (size_t i = 0; i < n; i++)
		ls_owner_gone(ls, owners[i]);
	free(owners);
	if (ls->gs)
		gs_node_lost(ls->gs, node, DRAGON_STATUS_NODE_LOST);
}

void ls_proc_done(struct proc *p)
{
	struct ls *ls = p->ls;

	if (p->done)
		return;
	p->done = 1;
	if (p->flush_timer) {
		event_free(p->flush_timer);
		p->flush_timer = NULL;
	}
	if (p->exit_to) {
		Dragon__Msg m = DRAGON__MSG__INIT;
		Dragon__ProcExit x = DRAGON__PROC_EXIT__INIT;
		x.puid = p->puid;
		x.status = p->status;
		x.signaled = p->signaled;
		m.body_case = DRAGON__MSG__BODY_PROC_EXIT;
		m.proc_exit = &x;
		ls_send_to(ls, p->exit_to, &m);
	}
	for (struct waitreq **q = &ls->waits; *q;) {
		struct waitreq *w = *q;
		if (w->puid == p->puid) {
			*q = w->next;
			ls_reply_wait(ls, w->conn, w->seq, p);
			if (w->timer)
				event_free(w->timer);
			free(w);
		} else {
			q = &w->next;
		}
	}
	if (ls->gs) {
		gs_proc_done(ls->gs, p->puid, p->status, p->signaled);
	} else if (p->gid && ls->uplink) {
		/* GS waits for the members of its groups. */
		Dragon__Msg m = DRAGON__MSG__INIT;
		Dragon__ProcDone d = DRAGON__PROC_DONE__INIT;
		d.puid = p->puid;
		d.status = p->status;
		d.signaled = p->signaled;
		m.body_case = DRAGON__MSG__BODY_PROC_DONE;
		m.proc_done = &d;
		dg_link_send(ls->uplink, &m);
	}
	ls_owner_gone(ls, p->puid);
	ls_announce_gone(ls, p->puid, 0, UINT32_MAX);
	if (p->waited)
		ls_proc_forget_old(ls);
	ls_check_stopped(ls);
}

void ls_on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct ls *ls = arg;
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		struct proc *p = ls_proc_by_pid(ls, pid);
		if (pid == ls->ta_pid) {
			ls->ta_pid = 0;
			if (!ls->stopping)
				ls_log(ls, "the transport agent (pid %d) ended (status %d): channels of "
					   "other nodes are unreachable from this node",
				       (int)pid, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		}
		if (!p)
			continue;
		p->exited = 1;
		p->signaled = WIFSIGNALED(st);
		p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (ls->debug)
			ls_log(ls, "puid %llu pid %d ended: %d", (unsigned long long)p->puid, (int)pid,
			       p->status);
		if (!p->out[0] && !p->out[1]) {
			ls_proc_done(p);
		} else {
			struct timeval tv = {.tv_sec = 0, .tv_usec = LS_FLUSH_MS * 1000};
			p->flush_timer = evtimer_new(ls->base, ls_flush_timeout, p);
			if (p->flush_timer)
				evtimer_add(p->flush_timer, &tv);
		}
	}
}

int ls_signal(struct ls *ls, uint64_t puid, int signo)
{
	struct proc *p = ls_proc_find(ls, puid);

	if (signo < 0 || signo >= NSIG)
		return dg_err(DRAGON_EINVAL, "signal %d does not exist", signo);
	if (!p)
		return dg_err(DRAGON_ENOTFOUND, "no process %llu", (unsigned long long)puid);
	if (p->exited)
		return dg_err(DRAGON_ESTALE, "process %llu has ended", (unsigned long long)puid);
	if (kill(p->pid, signo))
		return dg_err_sys("kill %d", (int)p->pid);
	return DRAGON_OK;
}

void ls_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct waitreq *w = arg;
	struct ls *ls = w->ls;

	for (struct waitreq **q = &ls->waits; *q; q = &(*q)->next)
		if (*q == w) {
			*q = w->next;
			break;
		}
	ls_reply_error(ls_conn_find(ls, w->conn), w->seq, DRAGON_ETIMEDOUT,
		       "the process did not end in time");
	event_free(w->timer);
	free(w);
}
