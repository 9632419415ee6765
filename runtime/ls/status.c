/* runtime/ls/status.c: List and Status replies: this node's processes and objects, the nodes. */
#include "config.h"

#define _GNU_SOURCE 1
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/err.h"
#include "gs/gs.h"
#include "ls/ls_internal.h"

static void fill_proc(Dragon__ProcInfo *x, const struct proc *p, uint32_t node)
{
	dragon__proc_info__init(x);
	x->puid = p->puid;
	x->pid = p->pid;
	x->node = node;
	x->running = !p->done;
	x->status = p->status;
	x->gid = p->gid;
	x->rank = p->gid ? p->rank : -1;
	x->argv0 = p->argv0;
	x->creator = p->creator;
}

/* status 0: a process list; 1: this node's status; 2: the fabric's, from the head node (every
 * node that joined, and GS's groups and names; processes and pools of this node only). */
void ls_reply_procs(struct conn *c, uint64_t seq, int status)
{
	struct ls *ls = c->ls;
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__ListReply lr = DRAGON__LIST_REPLY__INIT;
	Dragon__StatusReply sr = DRAGON__STATUS_REPLY__INIT;
	Dragon__NodeInfo *node = NULL, **nodes = NULL;
	Dragon__ProcInfo *items = NULL, **ptrs = NULL;
	Dragon__ObjInfo *objs = NULL;
	size_t n = 0, k = 0, np = 0;
	cpu_set_t cs;

	for (struct proc *p = ls->procs; p; p = p->next)
		n++;
	for (struct pool *pl = ls->pools; pl; pl = pl->next)
		np++;
	for (struct lchan *lc = ls->chans; lc; lc = lc->next)
		np++;
	items = calloc(n + 1, sizeof(*items));
	ptrs = calloc(n + 1, sizeof(*ptrs));
	objs = calloc(np + 1, sizeof(*objs));
	node = calloc(ls->node_count + 1, sizeof(*node));
	nodes = calloc(ls->node_count + 1, sizeof(*nodes));
	if (!items || !ptrs || !objs || !node || !nodes) {
		ls_reply_error(c, seq, DRAGON_ENOMEM, "process list");
		goto out;
	}
	for (struct proc *p = ls->procs; p; p = p->next, k++) {
		fill_proc(&items[k], p, ls->node_index);
		ptrs[n - 1 - k] = &items[k]; /* oldest first */
	}
	m.seq = seq;
	if (!status) {
		lr.n_procs = n;
		lr.procs = ptrs;
		m.body_case = DRAGON__MSG__BODY_LIST_REPLY;
		m.list_reply = &lr;
		ls_conn_send(c, &m);
		goto out;
	}
	sr.fabric_id = (char *)ls->o->fabric_id;
	dragon__node_info__init(&node[0]);
	node[0].index = ls->node_index;
	node[0].host = ls->host;
	node[0].ls_pid = getpid();
	node[0].ncpus = sched_getaffinity(0, sizeof(cs), &cs) ? 0 : (uint32_t)CPU_COUNT(&cs);
	nodes[0] = &node[0];
	sr.n_nodes = 1;
	for (uint32_t i = 1; status == 2 && ls->nodes && i < ls->node_count; i++) {
		struct node_info *ni = &ls->nodes[i];
		if (!ni->link && !ls->lost[i])
			continue;
		dragon__node_info__init(&node[sr.n_nodes]);
		node[sr.n_nodes].index = i;
		node[sr.n_nodes].host = ni->host;
		node[sr.n_nodes].ls_pid = ni->ls_pid;
		node[sr.n_nodes].ncpus = ni->ncpus;
		node[sr.n_nodes].lost = ls->lost[i];
		nodes[sr.n_nodes] = &node[sr.n_nodes];
		sr.n_nodes++;
	}
	sr.nodes = nodes;
	sr.n_procs = n;
	sr.procs = ptrs;
	sr.objects = calloc(np + 1, sizeof(*sr.objects));
	if (!sr.objects) {
		ls_reply_error(c, seq, DRAGON_ENOMEM, "status");
		goto out;
	}
	k = 0;
	for (struct pool *pl = ls->pools; pl; pl = pl->next, k++) {
		dragon__obj_info__init(&objs[k]);
		objs[k].id = pl->id;
		objs[k].kind = DRAGON__KIND__KIND_POOL;
		objs[k].name = pl->name ? pl->name : (char *)"";
		objs[k].size = pl->size;
		objs[k].creator = pl->owner;
		objs[k].node = ls->node_index;
		sr.objects[k] = &objs[k];
	}
	for (struct lchan *lc = ls->chans; lc; lc = lc->next, k++) {
		dragon__obj_info__init(&objs[k]);
		objs[k].id = lc->id;
		objs[k].kind = DRAGON__KIND__KIND_CHANNEL;
		objs[k].name = (char *)"";
		objs[k].size = lc->capacity;
		objs[k].creator = lc->owner;
		objs[k].node = ls->node_index;
		sr.objects[k] = &objs[k];
	}
	sr.n_objects = k;
	if (status == 2 && ls->gs)
		gs_status(ls->gs, &sr);
	m.body_case = DRAGON__MSG__BODY_STATUS_REPLY;
	m.status_reply = &sr;
	ls_conn_send(c, &m);
	for (size_t i = np; i < sr.n_objects; i++)
		free(sr.objects[i]);
	free(sr.objects);
	gs_status_release(&sr);
out:
	free(items);
	free(ptrs);
	free(objs);
	free(node);
	free(nodes);
}
