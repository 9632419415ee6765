/* runtime/ddict/status.c: the fabric's dictionaries for `dragon status`: found through their managers' names, each manager asked for its keys and bytes. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ddict/client.h"
#include "ddict/status.h"

/* ddict.<16 hex digits>.<index>: the id and index of a manager's name. */
static int manager_name(const char *name, uint64_t *id, unsigned *index)
{
	char tail;
	unsigned long long v;
	unsigned i;

	if (strncmp(name, "ddict.", 6) || strlen(name) < 6 + 16 + 2 || name[6 + 16] != '.')
		return 0;
	if (sscanf(name + 6, "%16llx.%u%c", &v, &i, &tail) != 2)
		return 0;
	*id = v;
	*index = i;
	return 1;
}

static struct dd_status *find(struct dd_status *s, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].id == id)
			return &s[i];
	return NULL;
}

/* Ask each manager of s for its numbers through a handle of our own. */
static void ask(struct dd_status *s, int timeout_ms)
{
	struct dd_desc hd = { .magic = DD_DESC_MAGIC, .managers = s->managers, .id = s->id };
	dragon_ddict_t *d = NULL;
	int rc = dd_new_handle(&hd, &d);

	for (unsigned i = 0; i < s->managers; i++) {
		struct dd_status_mgr *m = &s->m[i];
		m->index = i;
		if (!rc)
			rc = dd_lookup_manager(d, i, 0);
		if (rc == DRAGON_ENOTFOUND && d)
			rc = dg_err(rc, "its name ddict.%016llx.%u is gone (the manager ended)",
				    (unsigned long long)s->id, i);
		if (!rc) {
			m->node = d->m[i].info.node;
			m->pid = (int)d->m[i].info.pid;
			dragon_ddict_set_timeout(d, timeout_ms);
			rc = dragon_ddict_manager_stats(d, i, &m->keys, &m->used, &m->budget);
		}
		m->rc = rc;
		if (rc)
			snprintf(m->err, sizeof(m->err), "%s", dragon_errmsg());
		if (d)
			rc = 0; /* the next manager gets its own try */
	}
	if (d)
		dragon_ddict_detach(d);
}

int dd_status_collect(const char *const *names, size_t n, int timeout_ms, struct dd_status **out,
		      size_t *nout)
{
	struct dd_status *s = NULL;
	size_t ns = 0;

	*out = NULL;
	*nout = 0;
	/* The dictionaries, and how many managers each has (every manager has its name). */
	for (size_t i = 0; i < n; i++) {
		uint64_t id;
		unsigned index;
		struct dd_status *x;
		if (!manager_name(names[i], &id, &index))
			continue;
		if (!(x = find(s, ns, id))) {
			struct dd_status *bigger = realloc(s, (ns + 1) * sizeof(*s));
			if (!bigger) {
				dd_status_free(s, ns);
				return dg_err(DRAGON_ENOMEM, "dictionary status");
			}
			s = bigger;
			x = &s[ns++];
			memset(x, 0, sizeof(*x));
			x->id = id;
		}
		if (index + 1 > x->managers)
			x->managers = index + 1;
	}
	/* Their names: a name whose value is a dictionary's descriptor. */
	for (size_t i = 0; i < n && ns; i++) {
		struct dd_desc hd;
		size_t len = sizeof(hd);
		uint64_t id;
		unsigned index;
		struct dd_status *x;
		if (manager_name(names[i], &id, &index) ||
		    dragon_name_lookup(names[i], 0, NULL, &hd, &len) || len != sizeof(hd) ||
		    hd.magic != DD_DESC_MAGIC || !(x = find(s, ns, hd.id)))
			continue;
		snprintf(x->name, sizeof(x->name), "%s", names[i]);
		if (hd.managers > x->managers && hd.managers <= 65536)
			x->managers = hd.managers; /* a manager that is gone took its name along */
	}
	for (size_t i = 0; i < ns; i++) {
		if (!(s[i].m = calloc(s[i].managers, sizeof(*s[i].m)))) {
			dd_status_free(s, ns);
			return dg_err(DRAGON_ENOMEM, "dictionary status");
		}
		ask(&s[i], timeout_ms);
	}
	*out = s;
	*nout = ns;
	return DRAGON_OK;
}

void dd_status_free(struct dd_status *s, size_t n)
{
	for (size_t i = 0; i < n && s; i++)
		free(s[i].m);
	free(s);
}
