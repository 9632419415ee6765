/* runtime/launcher/status.c: `dragon status`: every node's view of a fabric, merged, as text or JSON. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <dragon/init.h>

#include "core/err.h"
#include "ddict/status.h"
#include "launcher/launcher.h"
#include "launcher/rundir.h"
#include "ls/ls.h"
#include "proto/wire.h"

static const char *kind_name(int k)
{
	switch (k) {
	case DRAGON__KIND__KIND_PROCESS:
		return "process";
	case DRAGON__KIND__KIND_GROUP:
		return "group";
	case DRAGON__KIND__KIND_POOL:
		return "pool";
	case DRAGON__KIND__KIND_CHANNEL:
		return "channel";
	case DRAGON__KIND__KIND_USER:
		return "user";
	default:
		return "none";
	}
}

static int ask_status(int fd, int at_node, uint32_t node, Dragon__Msg **out)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Status s = DRAGON__STATUS__INIT;
	int rc;

	*out = NULL;
	m.seq = 1;
	s.at_node = at_node;
	s.node = node;
	m.body_case = DRAGON__MSG__BODY_STATUS;
	m.status = &s;
	rc = dg_wire_send(fd, &m, -1);
	if (!rc)
		rc = dg_wire_recv(fd, out, NULL, 5000);
	if (!rc && (*out)->body_case == DRAGON__MSG__BODY_ERROR) {
		rc = dg_err((*out)->error->rc, "node %u: %s", node, (*out)->error->msg);
		dg_msg_free(*out);
		*out = NULL;
	} else if (!rc && (*out)->body_case != DRAGON__MSG__BODY_STATUS_REPLY) {
		rc = dg_err(DRAGON_EPROTO, "unexpected %s reply", dg_msg_name(*out));
		dg_msg_free(*out);
		*out = NULL;
	}
	return rc;
}

/* Append src's n pointers to a malloc'd array *dst of *dn (the items stay owned by src). */
static int append_ptrs(void ***dst, size_t *dn, void **src, size_t n)
{
	void **a;

	if (!n)
		return 0;
	a = realloc(*dst, (*dn + n) * sizeof(void *));
	if (!a)
		return -1;
	memcpy(a + *dn, src, n * sizeof(void *));
	*dst = a;
	*dn += n;
	return 0;
}

/*
 * The fabric's status through one node's local services: the head node's view (every node,
 * GS's groups and names, its own processes, pools and channels), then each other node's
 * processes, pools and channels, merged into *view. *parts holds the replies that own the items (free them after).
 */
static int query(const char *sock, Dragon__StatusReply *view, Dragon__Msg ***parts, size_t *nparts)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	Dragon__Msg *head = NULL, **all = NULL;
	size_t n = 0;
	int fd, rc;

	if (strlen(sock) >= sizeof(sa.sun_path))
		return dg_err(DRAGON_EINVAL, "socket path too long: %s", sock);
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return dg_err_sys("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = dg_err(DRAGON_EPEER, "cannot reach %s: %s", sock, strerror(errno));
		close(fd);
		return rc;
	}
	if ((rc = ask_status(fd, 0, 0, &head)))
		goto out;
	all = calloc(head->status_reply->n_nodes + 1, sizeof(*all));
	if (!all) {
		rc = dg_err(DRAGON_ENOMEM, "status");
		goto out;
	}
	all[n++] = head;
	*view = *head->status_reply;
	view->procs = NULL;
	view->n_procs = 0;
	view->objects = NULL;
	view->n_objects = 0;
	if (append_ptrs((void ***)&view->procs, &view->n_procs, (void **)head->status_reply->procs,
			head->status_reply->n_procs) ||
	    append_ptrs((void ***)&view->objects, &view->n_objects,
			(void **)head->status_reply->objects, head->status_reply->n_objects)) {
		rc = dg_err(DRAGON_ENOMEM, "status");
		goto out;
	}
	for (size_t i = 0; i < head->status_reply->n_nodes; i++) {
		uint32_t node = head->status_reply->nodes[i]->index;
		Dragon__Msg *m = NULL;
		if (node == 0 || head->status_reply->nodes[i]->lost)
			continue;
		if (ask_status(fd, 1, node, &m)) {
			fprintf(stderr, "dragon status: %s\n", dragon_errmsg());
			continue;
		}
		all[n++] = m;
		if (append_ptrs((void ***)&view->procs, &view->n_procs,
				(void **)m->status_reply->procs, m->status_reply->n_procs) ||
		    append_ptrs((void ***)&view->objects, &view->n_objects,
				(void **)m->status_reply->objects, m->status_reply->n_objects)) {
			rc = dg_err(DRAGON_ENOMEM, "status");
			goto out;
		}
	}
	head = NULL;
	rc = 0;
out:
	close(fd);
	*parts = all;
	*nparts = n;
	dg_msg_free(head && !n ? head : NULL);
	return rc;
}

static void query_free(Dragon__StatusReply *view, Dragon__Msg **parts, size_t n)
{
	free(view->procs);
	free(view->objects);
	for (size_t i = 0; i < n; i++)
		dg_msg_free(parts[i]);
	free(parts);
}

static json_t *status_json(const Dragon__StatusReply *r, const struct dd_status *dd, size_t ndd)
{
	json_t *o = json_object(), *a;

	json_object_set_new(o, "fabric_id", json_string(r->fabric_id));
	a = json_array();
	for (size_t i = 0; i < r->n_nodes; i++)
		json_array_append_new(a, json_pack("{s:i,s:s,s:i,s:i,s:s}", "index",
						   (int)r->nodes[i]->index, "host",
						   r->nodes[i]->host, "ls_pid",
						   (int)r->nodes[i]->ls_pid, "cpus",
						   (int)r->nodes[i]->ncpus, "state",
						   r->nodes[i]->lost ? "lost" : "up"));
	json_object_set_new(o, "nodes", a);
	a = json_array();
	for (size_t i = 0; i < r->n_procs; i++) {
		const Dragon__ProcInfo *p = r->procs[i];
		json_t *x = json_pack("{s:I,s:i,s:i,s:b,s:s}", "puid", (json_int_t)p->puid, "pid",
				      (int)p->pid, "node", (int)p->node, "running", p->running,
				      "program", p->argv0);
		if (!p->running)
			json_object_set_new(x, "status", json_integer(p->status));
		if (p->gid) {
			json_object_set_new(x, "group", json_integer((json_int_t)p->gid));
			json_object_set_new(x, "rank", json_integer(p->rank));
		}
		json_array_append_new(a, x);
	}
	json_object_set_new(o, "processes", a);
	a = json_array();
	for (size_t i = 0; i < r->n_groups; i++) {
		json_t *m = json_array();
		for (size_t j = 0; j < r->groups[i]->n_puids; j++)
			json_array_append_new(m, json_integer((json_int_t)r->groups[i]->puids[j]));
		json_array_append_new(a, json_pack("{s:I,s:o}", "gid",
						   (json_int_t)r->groups[i]->gid, "members", m));
	}
	json_object_set_new(o, "groups", a);
	{
		/* Queues and the sync objects on them are channels of local services: listed here. */
		json_t *pools = json_array(), *chans = json_array(), *names = json_array();
		for (size_t i = 0; i < r->n_objects; i++) {
			const Dragon__ObjInfo *x = r->objects[i];
			if (x->id && x->kind == DRAGON__KIND__KIND_POOL)
				json_array_append_new(
					pools, json_pack("{s:I,s:s,s:I,s:i}", "id", (json_int_t)x->id,
							 "name", x->name, "size", (json_int_t)x->size,
							 "node", (int)x->node));
			else if (x->id && x->kind == DRAGON__KIND__KIND_CHANNEL)
				json_array_append_new(
					chans, json_pack("{s:I,s:s,s:I,s:i}", "id", (json_int_t)x->id,
							 "name", x->name, "capacity",
							 (json_int_t)x->size, "node", (int)x->node));
			else if (!x->id)
				json_array_append_new(names, json_pack("{s:s,s:s}", "name", x->name,
								       "kind", kind_name(x->kind)));
		}
		json_object_set_new(o, "pools", pools);
		json_object_set_new(o, "channels", chans);
		json_object_set_new(o, "names", names);
	}
	a = json_array();
	for (size_t i = 0; i < ndd; i++) {
		char id[24];
		json_t *ms = json_array();
		snprintf(id, sizeof(id), "%016llx", (unsigned long long)dd[i].id);
		for (unsigned j = 0; j < dd[i].managers; j++) {
			const struct dd_status_mgr *m = &dd[i].m[j];
			if (m->rc)
				json_array_append_new(ms, json_pack("{s:i,s:s,s:s}", "index", (int)j, "error",
								    dragon_strerror(m->rc), "detail", m->err));
			else
				json_array_append_new(
					ms, json_pack("{s:i,s:i,s:i,s:I,s:I,s:I}", "index", (int)j, "node",
						      (int)m->node, "pid", m->pid, "keys", (json_int_t)m->keys,
						      "bytes", (json_int_t)m->used, "budget",
						      (json_int_t)m->budget));
		}
		json_array_append_new(a, json_pack("{s:s,s:s,s:o}", "id", id, "name", dd[i].name,
						   "managers", ms));
	}
	json_object_set_new(o, "dictionaries", a);
	return o;
}

static void status_text(const Dragon__StatusReply *r, const struct dd_status *dd, size_t ndd)
{
	printf("fabric %s\n", r->fabric_id);
	for (size_t i = 0; i < r->n_nodes; i++)
		printf("  node %u: host %s, local services pid %d, %u cpus%s\n", r->nodes[i]->index,
		       r->nodes[i]->host, r->nodes[i]->ls_pid, r->nodes[i]->ncpus,
		       r->nodes[i]->lost ? ", LOST" : "");
	printf("  processes: %zu\n", r->n_procs);
	if (r->n_procs)
		printf("    %-8s %-8s %-4s %-10s %-6s %-5s %s\n", "PUID", "PID", "NODE", "STATE",
		       "GROUP", "RANK", "PROGRAM");
	for (size_t i = 0; i < r->n_procs; i++) {
		const Dragon__ProcInfo *p = r->procs[i];
		char state[16], grp[24] = "-", rank[16] = "-";
		if (p->running)
			snprintf(state, sizeof(state), "running");
		else
			snprintf(state, sizeof(state), "ended(%d)", p->status);
		if (p->gid) {
			snprintf(grp, sizeof(grp), "%llu", (unsigned long long)p->gid);
			snprintf(rank, sizeof(rank), "%d", p->rank);
		}
		printf("    %-8llu %-8d %-4u %-10s %-6s %-5s %s\n", (unsigned long long)p->puid,
		       p->pid, p->node, state, grp, rank, p->argv0);
	}
	printf("  groups: %zu\n", r->n_groups);
	for (size_t i = 0; i < r->n_groups; i++)
		printf("    group %llu: %zu members\n", (unsigned long long)r->groups[i]->gid,
		       r->groups[i]->n_puids);
	for (size_t i = 0; i < r->n_objects; i++) {
		const Dragon__ObjInfo *x = r->objects[i];
		/* A pool's size is bytes, a channel's its capacity in messages. */
		if (x->id)
			printf("  %s %llu: %s%llu %s%s%s\n", kind_name(x->kind),
			       (unsigned long long)x->id,
			       x->kind == DRAGON__KIND__KIND_CHANNEL ? "capacity " : "",
			       (unsigned long long)x->size,
			       x->kind == DRAGON__KIND__KIND_CHANNEL ? "messages" : "bytes",
			       x->name[0] ? ", name " : "", x->name);
		else
			printf("  name '%s' -> %s\n", x->name, kind_name(x->kind));
	}
	printf("  dictionaries: %zu\n", ndd);
	for (size_t i = 0; i < ndd; i++) {
		printf("    dictionary %016llx%s%s%s: %u managers\n", (unsigned long long)dd[i].id,
		       dd[i].name[0] ? " '" : "", dd[i].name, dd[i].name[0] ? "'" : "", dd[i].managers);
		for (unsigned j = 0; j < dd[i].managers; j++) {
			const struct dd_status_mgr *m = &dd[i].m[j];
			if (m->rc)
				printf("      manager %u: %s: %s\n", j, dragon_strerror(m->rc), m->err);
			else
				printf("      manager %u: node %u, pid %d, %llu keys, %llu bytes of %llu\n", j,
				       m->node, m->pid, (unsigned long long)m->keys,
				       (unsigned long long)m->used, (unsigned long long)m->budget);
		}
	}
}

/*
 * The fabric's dictionaries: found among its names, asked as a member of the fabric (sock: its
 * local services; this process joins for the time of the questions). A failure to join is
 * reported and the rest of the status still printed.
 */
#define DD_STATUS_TIMEOUT_MS 2000
static void dicts_of(const char *sock, const Dragon__StatusReply *v, struct dd_status **dd,
		     size_t *ndd)
{
	const char **names = calloc(v->n_objects + 1, sizeof(*names));
	size_t n = 0;
	int any = 0;

	*dd = NULL;
	*ndd = 0;
	if (!names)
		return;
	for (size_t i = 0; i < v->n_objects; i++)
		if (!v->objects[i]->id && v->objects[i]->kind == DRAGON__KIND__KIND_USER) {
			names[n++] = v->objects[i]->name;
			any |= !strncmp(v->objects[i]->name, "ddict.", 6);
		}
	if (any) {
		char *old = getenv("DRAGON_LS_SOCKET") ? strdup(getenv("DRAGON_LS_SOCKET")) : NULL;
		setenv("DRAGON_LS_SOCKET", sock, 1);
		if (dragon_init() || dd_status_collect(names, n, DD_STATUS_TIMEOUT_MS, dd, ndd))
			fprintf(stderr, "dragon status: dictionaries: %s\n", dragon_errmsg());
		dragon_finalize();
		if (old)
			setenv("DRAGON_LS_SOCKET", old, 1);
		else
			unsetenv("DRAGON_LS_SOCKET");
		free(old);
	}
	free(names);
}

int launcher_status(const char *basedir, int json)
{
	char base[PATH_MAX], sock[PATH_MAX + 320];
	const char *env = getenv("DRAGON_LS_SOCKET");
	json_t *all = json_array();
	int found = 0, rv = 1;
	DIR *d = NULL;
	struct dirent *e;

	if (env && *env && !basedir) {
		Dragon__StatusReply v = DRAGON__STATUS_REPLY__INIT;
		Dragon__Msg **parts = NULL;
		size_t np = 0;
		struct dd_status *dd;
		size_t ndd;
		if (query(env, &v, &parts, &np)) {
			fprintf(stderr, "dragon status: %s\n", dragon_errmsg());
			query_free(&v, parts, np);
			goto out;
		}
		dicts_of(env, &v, &dd, &ndd);
		if (json)
			json_array_append_new(all, status_json(&v, dd, ndd));
		else
			status_text(&v, dd, ndd);
		dd_status_free(dd, ndd);
		query_free(&v, parts, np);
		found = 1;
	} else {
		if (dg_rundir_base(basedir, base, sizeof(base))) {
			fprintf(stderr, "dragon status: %s\n", dragon_errmsg());
			goto out;
		}
		d = opendir(base);
		while (d && (e = readdir(d))) {
			Dragon__StatusReply v = DRAGON__STATUS_REPLY__INIT;
			Dragon__Msg **parts = NULL;
			size_t np = 0;
			if (e->d_name[0] == '.')
				continue;
			snprintf(sock, sizeof(sock), "%s/%s/%s", base, e->d_name, LS_SOCK_NAME);
			if (access(sock, F_OK))
				continue;
			struct dd_status *dd;
			size_t ndd;
			if (query(sock, &v, &parts, &np)) {
				fprintf(stderr, "dragon status: %s\n", dragon_errmsg());
				query_free(&v, parts, np);
				continue;
			}
			dicts_of(sock, &v, &dd, &ndd);
			if (json)
				json_array_append_new(all, status_json(&v, dd, ndd));
			else
				status_text(&v, dd, ndd);
			dd_status_free(dd, ndd);
			query_free(&v, parts, np);
			found++;
		}
		if (!found && !json) {
			fprintf(stderr, "dragon status: no fabric is running (looked in %s)\n", base);
			goto out;
		}
	}
	rv = 0;
out:
	if (d)
		closedir(d);
	if (json && (found || rv == 0)) {
		char *s = json_dumps(all, JSON_INDENT(2));
		if (s)
			puts(s);
		free(s);
	}
	json_decref(all);
	return rv;
}
