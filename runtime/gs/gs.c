/* runtime/gs/gs.c: global services: names to descriptors, process groups and their placement. */
#include "config.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "gs/gs.h"

/* Bounds that keep one client from exhausting the registry with a single request. */
#define GS_NAME_MAX 255
#define GS_DESC_MAX 4096
#define GS_GROUP_MAX 4096

struct name_ent {
	struct name_ent *next;
	char *name;
	Dragon__Kind kind;
	uint8_t *desc;
	size_t len;
	uint64_t owner;
	int outlive;
};

struct group {
	struct group *next;
	uint64_t gid;
	uint32_t n;
	uint64_t *puids;
	int *status;
	uint8_t *ended;    /* 1: ended, 2: ended and returned by a wait-any */
	uint32_t nended;
	uint64_t owner;
	int outlive;
	char *name;
};

enum { W_LOOKUP, W_GROUP };

struct waiter {
	struct waiter *next;
	struct gs *g;
	int type;
	uint64_t conn, seq;
	char *name;
	uint64_t gid;
	int any;
	struct event *timer;
};

struct gs {
	struct gs_host h;
	struct name_ent *names;
	struct group *groups;
	struct waiter *waiters;
	uint64_t next_gid;
	unsigned char *lost; /* lost[i]: node i left the fabric (gs_node_lost); NULL: none did */
};

/* Puids, connection ids and owner keys carry their node in bits 48..61 (runtime/ls). */
static uint32_t node_of(uint64_t id)
{
	return (uint32_t)((id >> 48) & 0x3fff);
}

struct gs *gs_new(const struct gs_host *h)
{
	struct gs *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->h = *h;
	g->next_gid = 1;
	return g;
}

static void name_free(struct name_ent *e)
{
	free(e->name);
	free(e->desc);
	free(e);
}

static void group_free(struct group *gr)
{
	free(gr->puids);
	free(gr->status);
	free(gr->ended);
	free(gr->name);
	free(gr);
}

static void waiter_free(struct waiter *w)
{
	if (w->timer)
		event_free(w->timer);
	free(w->name);
	free(w);
}

static void unlink_waiter(struct gs *g, struct waiter *w)
{
	for (struct waiter **p = &g->waiters; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			return;
		}
}

void gs_free(struct gs *g)
{
	if (!g)
		return;
	free(g->lost);
	while (g->names) {
		struct name_ent *e = g->names;
		g->names = e->next;
		name_free(e);
	}
	while (g->groups) {
		struct group *gr = g->groups;
		g->groups = gr->next;
		group_free(gr);
	}
	while (g->waiters) {
		struct waiter *w = g->waiters;
		g->waiters = w->next;
		waiter_free(w);
	}
	free(g);
}

static void send_error(struct gs *g, uint64_t conn, uint64_t seq, int rc, const char *msg)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Error e = DRAGON__ERROR__INIT;

	e.rc = rc;
	e.msg = (char *)msg;
	m.seq = seq;
	m.body_case = DRAGON__MSG__BODY_ERROR;
	m.error = &e;
	g->h.reply(g->h.ctx, conn, &m);
}

static void send_ok(struct gs *g, uint64_t conn, uint64_t seq)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Error e = DRAGON__ERROR__INIT;

	m.seq = seq;
	m.body_case = DRAGON__MSG__BODY_OK;
	m.ok = &e;
	g->h.reply(g->h.ctx, conn, &m);
}

static struct name_ent *name_find(struct gs *g, const char *name)
{
	for (struct name_ent *e = g->names; e; e = e->next)
		if (!strcmp(e->name, name))
			return e;
	return NULL;
}

static struct group *group_find(struct gs *g, uint64_t gid)
{
	for (struct group *gr = g->groups; gr; gr = gr->next)
		if (gr->gid == gid)
			return gr;
	return NULL;
}

static void reply_name(struct gs *g, uint64_t conn, uint64_t seq, const struct name_ent *e)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__NameReply r = DRAGON__NAME_REPLY__INIT;

	r.kind = e->kind;
	r.desc.data = e->desc;
	r.desc.len = e->len;
	m.seq = seq;
	m.body_case = DRAGON__MSG__BODY_NAME_REPLY;
	m.name_reply = &r;
	g->h.reply(g->h.ctx, conn, &m);
}

/* Answer a group wait if its condition holds; returns 1 when answered. */
static int try_group_wait(struct gs *g, uint64_t conn, uint64_t seq, struct group *gr, int any)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__GroupWaitReply r = DRAGON__GROUP_WAIT_REPLY__INIT;
	Dragon__WaitReply *items = NULL, **ptrs = NULL;
	uint32_t k = 0, fresh = 0;

	for (uint32_t i = 0; i < gr->n; i++)
		fresh += gr->ended[i] == 1;
	if (any ? fresh == 0 : gr->nended < gr->n)
		return 0;
	items = calloc(gr->n, sizeof(*items));
	ptrs = calloc(gr->n, sizeof(*ptrs));
	if (!items || !ptrs) {
		free(items);
		free(ptrs);
		send_error(g, conn, seq, DRAGON_ENOMEM, "group wait reply");
		return 1;
	}
	for (uint32_t i = 0; i < gr->n; i++) {
		if (!gr->ended[i] || (any && gr->ended[i] != 1))
			continue;
		dragon__wait_reply__init(&items[k]);
		items[k].puid = gr->puids[i];
		items[k].status = gr->status[i] & 0xffff;
		items[k].signaled = gr->status[i] >> 16;
		ptrs[k] = &items[k];
		k++;
		/* A wait-any reports one member: the others stay fresh for the next wait-any. */
		if (any) {
			gr->ended[i] = 2;
			break;
		}
	}
	r.n_members = k;
	r.members = ptrs;
	m.seq = seq;
	m.body_case = DRAGON__MSG__BODY_GROUP_WAIT_REPLY;
	m.group_wait_reply = &r;
	g->h.reply(g->h.ctx, conn, &m);
	free(items);
	free(ptrs);
	return 1;
}

static void waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct waiter *w = arg;
	struct gs *g = w->g;

	unlink_waiter(g, w);
	send_error(g, w->conn, w->seq, DRAGON_ETIMEDOUT,
		   w->type == W_LOOKUP ? "the name did not appear in time"
				       : "the group did not end in time");
	waiter_free(w);
}

/* Wait for a name to appear or a group to end; the reply comes later (or the timeout's error). */
static int park(struct gs *g, int type, uint64_t conn, uint64_t seq, const char *name,
		uint64_t gid, int any, int64_t timeout_ms)
{
	struct waiter *w = calloc(1, sizeof(*w)), **tail;

	if (!w || (name && !(w->name = strdup(name)))) {
		free(w);
		send_error(g, conn, seq, DRAGON_ENOMEM, "waiter");
		return 1;
	}
	w->g = g;
	w->type = type;
	w->conn = conn;
	w->seq = seq;
	w->gid = gid;
	w->any = any;
	if (timeout_ms >= 0) {
		struct timeval tv = {.tv_sec = timeout_ms / 1000,
				     .tv_usec = (timeout_ms % 1000) * 1000};
		w->timer = evtimer_new(g->h.base, waiter_timeout, w);
		if (!w->timer) {
			waiter_free(w);
			send_error(g, conn, seq, DRAGON_ENOMEM, "waiter timer");
			return 1;
		}
		evtimer_add(w->timer, &tv);
	}
	/* Oldest first: waiters on one name or group are answered in arrival order. */
	for (tail = &g->waiters; *tail; tail = &(*tail)->next)
		;
	*tail = w;
	return 1;
}

int gs_name_put(struct gs *g, const char *name, Dragon__Kind kind, const void *desc, size_t len,
		uint64_t owner, int outlive)
{
	struct name_ent *e;

	if (!name || !*name || strlen(name) > GS_NAME_MAX)
		return dg_err(DRAGON_EINVAL, "a name is 1 to %d bytes", GS_NAME_MAX);
	if (len > GS_DESC_MAX)
		return dg_err(DRAGON_ETOOBIG, "descriptor of %zu bytes, limit %d", len, GS_DESC_MAX);
	if (name_find(g, name))
		return dg_err(DRAGON_EEXIST, "the name '%s' is taken", name);
	e = calloc(1, sizeof(*e));
	if (!e || !(e->name = strdup(name)) || !(e->desc = malloc(len ? len : 1))) {
		if (e)
			free(e->name);
		free(e);
		return dg_err(DRAGON_ENOMEM, "name entry");
	}
	memcpy(e->desc, desc, len);
	e->len = len;
	e->kind = kind;
	e->owner = owner;
	e->outlive = outlive;
	e->next = g->names;
	g->names = e;
	/* Wake lookups that were waiting for this name. */
	for (struct waiter **p = &g->waiters; *p;) {
		struct waiter *w = *p;
		if (w->type == W_LOOKUP && !strcmp(w->name, name)) {
			*p = w->next;
			reply_name(g, w->conn, w->seq, e);
			waiter_free(w);
		} else {
			p = &w->next;
		}
	}
	return DRAGON_OK;
}

void gs_name_drop(struct gs *g, const char *name)
{
	for (struct name_ent **p = &g->names; *p; p = &(*p)->next)
		if (!strcmp((*p)->name, name)) {
			struct name_ent *e = *p;
			*p = e->next;
			name_free(e);
			return;
		}
}

/* The k-th node that is not lost. */
static uint32_t live_node(struct gs *g, uint32_t k)
{
	for (uint32_t i = 0; g->lost && i < g->h.node_count; i++)
		if (!g->lost[i] && k-- == 0)
			return i;
	return k;
}

static int group_create(struct gs *g, uint64_t conn, uint64_t owner, uint64_t seq,
			const Dragon__GroupCreate *c)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__GroupReply r = DRAGON__GROUP_REPLY__INIT;
	struct group *gr = NULL;
	uint32_t nodes = g->h.node_count ? g->h.node_count : 1, per, live;
	int rc;

	if (!c->args || c->args->n_argv == 0 || !c->args->argv[0][0]) {
		send_error(g, conn, seq, DRAGON_EINVAL, "a group needs a program (argv[0])");
		return 1;
	}
	if (c->nprocs == 0 || c->nprocs > GS_GROUP_MAX) {
		send_error(g, conn, seq, DRAGON_EINVAL, "a group has 1 to 4096 processes");
		return 1;
	}
	if (c->policy == DRAGON__POLICY__POLICY_NODE && c->node >= nodes) {
		char msg[96];
		snprintf(msg, sizeof(msg), "node %u does not exist (the fabric has %u)", c->node,
			 nodes);
		send_error(g, conn, seq, DRAGON_EINVAL, msg);
		return 1;
	}
	if (c->name && *c->name && name_find(g, c->name)) {
		send_error(g, conn, seq, DRAGON_EEXIST, "the group's name is taken");
		return 1;
	}
	gr = calloc(1, sizeof(*gr));
	if (!gr || !(gr->puids = calloc(c->nprocs, sizeof(uint64_t))) ||
	    !(gr->status = calloc(c->nprocs, sizeof(int))) ||
	    !(gr->ended = calloc(c->nprocs, 1))) {
		if (gr)
			group_free(gr);
		send_error(g, conn, seq, DRAGON_ENOMEM, "group");
		return 1;
	}
	gr->gid = g->next_gid++;
	gr->n = c->nprocs;
	gr->owner = owner;
	gr->outlive = c->args->outlive;
	/* Round robin and block spread over the nodes that are left. */
	{
		uint32_t k = 0;
		for (uint32_t i = 0; i < nodes; i++)
			if (!g->lost || !g->lost[i])
				k++;
		live = k ? k : 1;
	}
	per = (c->nprocs + live - 1) / live;
	for (uint32_t i = 0; i < c->nprocs; i++) {
		uint32_t node = c->policy == DRAGON__POLICY__POLICY_NODE ? c->node
				: c->policy == DRAGON__POLICY__POLICY_BLOCK ? live_node(g, i / per)
									: live_node(g, i % live);
		rc = g->h.spawn(g->h.ctx, node, c->args, conn, gr->gid, (int)i, (int)c->nprocs,
				&gr->puids[i]);
		if (rc) {
			char msg[600];
			snprintf(msg, sizeof(msg), "starting rank %u: %s", i, dragon_errmsg());
			for (uint32_t j = 0; j < i; j++)
				g->h.signal(g->h.ctx, gr->puids[j], 9);
			group_free(gr);
			send_error(g, conn, seq, rc, msg);
			return 1;
		}
	}
	gr->next = g->groups;
	g->groups = gr;
	if (c->name && *c->name) {
		uint8_t desc[8];
		for (int i = 0; i < 8; i++)
			desc[i] = (uint8_t)(gr->gid >> (8 * i));
		gr->name = strdup(c->name);
		gs_name_put(g, c->name, DRAGON__KIND__KIND_GROUP, desc, 8, owner, gr->outlive);
	}
	r.gid = gr->gid;
	r.n_puids = gr->n;
	r.puids = gr->puids;
	m.seq = seq;
	m.body_case = DRAGON__MSG__BODY_GROUP_REPLY;
	m.group_reply = &r;
	g->h.reply(g->h.ctx, conn, &m);
	return 1;
}

int gs_handle(struct gs *g, uint64_t conn, uint64_t owner, const Dragon__Msg *req)
{
	uint64_t seq = req->seq;
	int rc;

	switch (req->body_case) {
	case DRAGON__MSG__BODY_NAME_REGISTER: {
		const Dragon__NameRegister *n = req->name_register;
		rc = gs_name_put(g, n->name, n->kind, n->desc.data, n->desc.len, owner, n->outlive);
		if (rc)
			send_error(g, conn, seq, rc, dragon_errmsg());
		else
			send_ok(g, conn, seq);
		return 1;
	}
	case DRAGON__MSG__BODY_NAME_LOOKUP: {
		const Dragon__NameLookup *n = req->name_lookup;
		struct name_ent *e;
		if (!n->name[0] || strlen(n->name) > GS_NAME_MAX) {
			send_error(g, conn, seq, DRAGON_EINVAL, "a name is 1 to 255 bytes");
			return 1;
		}
		e = name_find(g, n->name);
		if (e) {
			reply_name(g, conn, seq, e);
			return 1;
		}
		if (n->timeout_ms == 0) {
			send_error(g, conn, seq, DRAGON_ENOTFOUND, "no object has that name");
			return 1;
		}
		return park(g, W_LOOKUP, conn, seq, n->name, 0, 0, n->timeout_ms);
	}
	case DRAGON__MSG__BODY_NAME_REMOVE:
		if (!name_find(g, req->name_remove->name)) {
			send_error(g, conn, seq, DRAGON_ENOTFOUND, "no object has that name");
			return 1;
		}
		gs_name_drop(g, req->name_remove->name);
		send_ok(g, conn, seq);
		return 1;
	case DRAGON__MSG__BODY_GROUP_CREATE:
		return group_create(g, conn, owner, seq, req->group_create);
	case DRAGON__MSG__BODY_GROUP_WAIT: {
		const Dragon__GroupWait *w = req->group_wait;
		struct group *gr = group_find(g, w->gid);
		if (!gr) {
			send_error(g, conn, seq, DRAGON_ENOTFOUND, "no such group");
			return 1;
		}
		if (w->any && gr->nended == gr->n) {
			int fresh = 0;
			for (uint32_t i = 0; i < gr->n; i++)
				fresh += gr->ended[i] == 1;
			if (!fresh) {
				send_error(g, conn, seq, DRAGON_ENOTFOUND,
					   "every member's end was already returned");
				return 1;
			}
		}
		if (try_group_wait(g, conn, seq, gr, w->any))
			return 1;
		if (w->timeout_ms == 0) {
			send_error(g, conn, seq, DRAGON_ETIMEDOUT, "the group has not ended");
			return 1;
		}
		return park(g, W_GROUP, conn, seq, NULL, w->gid, w->any, w->timeout_ms);
	}
	case DRAGON__MSG__BODY_SIGNAL:
		if (req->signal->gid == 0)
			return 0;
		{
			struct group *gr = group_find(g, req->signal->gid);
			if (!gr) {
				send_error(g, conn, seq, DRAGON_ENOTFOUND, "no such group");
				return 1;
			}
			for (uint32_t i = 0; i < gr->n; i++)
				if (!gr->ended[i])
					g->h.signal(g->h.ctx, gr->puids[i], req->signal->signo);
			send_ok(g, conn, seq);
			return 1;
		}
	default:
		return 0;
	}
}

void gs_proc_done(struct gs *g, uint64_t puid, int status, int signaled)
{
	for (struct group *gr = g->groups; gr; gr = gr->next) {
		for (uint32_t i = 0; i < gr->n; i++) {
			if (gr->puids[i] != puid || gr->ended[i])
				continue;
			gr->ended[i] = 1;
			gr->status[i] = (status & 0xffff) | (signaled ? 1 << 16 : 0);
			gr->nended++;
			for (struct waiter **p = &g->waiters; *p;) {
				struct waiter *w = *p;
				if (w->type == W_GROUP && w->gid == gr->gid &&
				    try_group_wait(g, w->conn, w->seq, gr, w->any)) {
					*p = w->next;
					waiter_free(w);
				} else {
					p = &w->next;
				}
			}
			return;
		}
	}
}

void gs_owner_gone(struct gs *g, uint64_t owner)
{
	for (struct name_ent **p = &g->names; *p;) {
		struct name_ent *e = *p;
		if (e->owner == owner && !e->outlive) {
			*p = e->next;
			name_free(e);
		} else {
			p = &e->next;
		}
	}
	for (struct group **p = &g->groups; *p;) {
		struct group *gr = *p;
		if (gr->owner == owner && !gr->outlive) {
			*p = gr->next;
			if (gr->name)
				gs_name_drop(g, gr->name);
			/* Waiters on a released group learn it is gone. */
			for (struct waiter **q = &g->waiters; *q;) {
				struct waiter *w = *q;
				if (w->type == W_GROUP && w->gid == gr->gid) {
					*q = w->next;
					send_error(g, w->conn, w->seq, DRAGON_ESTALE,
						   "the group was released");
					waiter_free(w);
				} else {
					q = &w->next;
				}
			}
			group_free(gr);
		} else {
			p = &gr->next;
		}
	}
}

void gs_node_lost(struct gs *g, uint32_t node, int status)
{
	uint64_t owner;

	if (node >= g->h.node_count)
		return;
	if (!g->lost && !(g->lost = calloc(g->h.node_count, 1)))
		return;
	g->lost[node] = 1;
	/* Waits of that node's connections have nobody to answer. */
	for (struct waiter **p = &g->waiters; *p;) {
		struct waiter *w = *p;
		if (node_of(w->conn) == node) {
			*p = w->next;
			waiter_free(w);
		} else {
			p = &w->next;
		}
	}
	/* Members there end now, so the other waits return (gs_proc_done frees no group). */
	for (struct group *gr = g->groups; gr; gr = gr->next)
		for (uint32_t i = 0; i < gr->n; i++)
			if (!gr->ended[i] && node_of(gr->puids[i]) == node)
				gs_proc_done(g, gr->puids[i], status, 0);
	/* What that node's owners held goes, one owner at a time (each call changes the lists). */
	do {
		owner = 0;
		for (struct name_ent *e = g->names; e && !owner; e = e->next)
			if (!e->outlive && e->owner && node_of(e->owner) == node)
				owner = e->owner;
		for (struct group *gr = g->groups; gr && !owner; gr = gr->next)
			if (!gr->outlive && gr->owner && node_of(gr->owner) == node)
				owner = gr->owner;
		if (owner)
			gs_owner_gone(g, owner);
	} while (owner);
}

void gs_conn_gone(struct gs *g, uint64_t conn)
{
	for (struct waiter **p = &g->waiters; *p;) {
		struct waiter *w = *p;
		if (w->conn == conn) {
			*p = w->next;
			waiter_free(w);
		} else {
			p = &w->next;
		}
	}
}

int gs_status(struct gs *g, Dragon__StatusReply *r)
{
	size_t ng = 0, nn = 0, k;

	for (struct group *gr = g->groups; gr; gr = gr->next)
		ng++;
	for (struct name_ent *e = g->names; e; e = e->next)
		nn++;
	r->groups = calloc(ng ? ng : 1, sizeof(*r->groups));
	if (!r->groups)
		return dg_err(DRAGON_ENOMEM, "status");
	k = 0;
	for (struct group *gr = g->groups; gr; gr = gr->next) {
		Dragon__GroupReply *x = malloc(sizeof(*x));
		if (!x)
			break;
		dragon__group_reply__init(x);
		x->gid = gr->gid;
		x->n_puids = gr->n;
		x->puids = gr->puids;
		r->groups[k++] = x;
	}
	r->n_groups = k;
	{
		Dragon__ObjInfo **o = realloc(r->objects, (r->n_objects + nn + 1) * sizeof(*o));
		if (!o)
			return dg_err(DRAGON_ENOMEM, "status");
		r->objects = o;
	}
	for (struct name_ent *e = g->names; e; e = e->next) {
		Dragon__ObjInfo *x = malloc(sizeof(*x));
		if (!x)
			break;
		dragon__obj_info__init(x);
		x->kind = e->kind;
		x->name = e->name;
		x->size = e->len;
		x->creator = e->owner;
		r->objects[r->n_objects++] = x;
	}
	return DRAGON_OK;
}

void gs_status_release(Dragon__StatusReply *r)
{
	for (size_t i = 0; i < r->n_groups; i++)
		free(r->groups[i]);
	free(r->groups);
	r->groups = NULL;
	r->n_groups = 0;
}
