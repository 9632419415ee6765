/* runtime/ddict/lifecycle.c: creating a dictionary (its managers on every node), attaching by name or descriptor, detaching and destroying. */
#include "config.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/err.h"
#include "ddict/client.h"

/* ---- create, attach, destroy ---------------------------------------------------------------- */

static int find_manager_program(char *out, size_t cap)
{
	const char *env = getenv("DRAGON_DDICT_MANAGER");
	static const char *const rel[] = { "", "/../runtime/ddict", "/../../runtime/ddict",
					   "/../../../runtime/ddict", "/../libexec" };
	char self[PATH_MAX], *slash;
	ssize_t n;

	if (env && *env) {
		snprintf(out, cap, "%s", env);
		return access(out, X_OK) ? dg_err(DRAGON_ENOTFOUND,
						  "DRAGON_DDICT_MANAGER=%s is not executable", env)
					 : DRAGON_OK;
	}
	env = getenv("DRAGON_LIBEXECDIR");
	if (env && *env && (size_t)snprintf(out, cap, "%s/dragon-ddict-manager", env) < cap &&
	    !access(out, X_OK))
		return DRAGON_OK;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		if ((slash = strrchr(self, '/'))) {
			*slash = 0;
			if (strlen(self) > 6 && !strcmp(self + strlen(self) - 6, "/.libs"))
				self[strlen(self) - 6] = 0; /* a libtool-built program */
			for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++)
				if ((size_t)snprintf(out, cap, "%s%s/dragon-ddict-manager", self,
						     rel[i]) < cap &&
				    !access(out, X_OK))
					return DRAGON_OK;
		}
	}
#ifdef DRAGON_LIBEXECDIR
	if ((size_t)snprintf(out, cap, "%s/dragon-ddict-manager", DRAGON_LIBEXECDIR) < cap &&
	    !access(out, X_OK))
		return DRAGON_OK;
#endif
	return dg_err(DRAGON_ENOTFOUND, "dragon-ddict-manager not found (set DRAGON_DDICT_MANAGER "
					"to its path, or DRAGON_LIBEXECDIR to its directory)");
}

/* Look manager i up, waiting up to timeout_ms. */
int dd_lookup_manager(dragon_ddict_t *d, unsigned i, int timeout_ms)
{
	char name[96];
	size_t len = sizeof(struct dd_minfo);
	struct dd_minfo info;
	int rc;

	dd_manager_name(d->desc.id, i, name, sizeof(name));
	rc = dragon_name_lookup(name, timeout_ms, NULL, &info, &len);
	if (rc)
		return rc;
	if (len != sizeof(info) || info.magic != DD_MINFO_MAGIC || info.index != i)
		return dg_err(DRAGON_EBADDESC, "%s does not describe a dictionary manager", name);
	d->m[i].info = info;
	d->m[i].known = 1;
	return DRAGON_OK;
}

static void kill_groups(dragon_ddict_t *d)
{
	for (unsigned g = 0; g < d->ngids; g++) {
		dragon_group_signal(d->gids[g], SIGKILL);
		dragon_group_wait_all(d->gids[g], 5000, NULL);
	}
}

DRAGON_API int dragon_ddict_create(const char *name, const dragon_ddict_attr_t *attr,
				   dragon_ddict_t **out)
{
	dragon_ddict_attr_t a = { 0 };
	struct dd_desc hd = { 0 };
	dragon_ddict_t *d = NULL;
	char prog[PATH_MAX], idh[32], nm[16], bud[32];
	unsigned nodes, k;
	int rc;

	if (!out)
		return dg_err(DRAGON_EINVAL, "dragon_ddict_create: NULL handle pointer");
	if (attr)
		a = *attr;
	if (name && (!*name || strlen(name) > 200))
		return dg_err(DRAGON_EINVAL, "dictionary name of %zu bytes (1..200)", strlen(name));
	nodes = dragon_node_count();
	if (!nodes)
		return dg_err(DRAGON_ENOTINIT, "dragon_ddict_create: call dragon_init first");
	if (a.nodes > nodes)
		return dg_err(DRAGON_EINVAL, "%u nodes asked, the fabric has %u", a.nodes, nodes);
	if (a.nodes)
		nodes = a.nodes;
	k = a.managers_per_node ? a.managers_per_node : 1;
	if (k > 256 || (uint64_t)k * nodes > 65536)
		return dg_err(DRAGON_EINVAL, "%u managers per node on %u nodes (at most 65536 in all)",
			      k, nodes);
	if (!a.budget)
		a.budget = DEFAULT_BUDGET;
	if (a.budget < 4096 || a.budget > (1ull << 44))
		return dg_err(DRAGON_EINVAL, "budget of %zu bytes per manager (4 KiB .. 16 TiB)",
			      a.budget);
	rc = find_manager_program(prog, sizeof(prog));
	if (rc)
		return rc;
	hd.magic = DD_DESC_MAGIC;
	hd.managers = k * nodes;
	hd.budget = a.budget;
	hd.flags = (uint32_t)a.flags;
	do {
		if (getrandom(&hd.id, sizeof(hd.id), 0) != sizeof(hd.id))
			return dg_err_sys("getrandom");
	} while (!hd.id);
	rc = dd_new_handle(&hd, &d);
	if (rc)
		return rc;
	if (a.timeout_ms)
		d->timeout_ms = a.timeout_ms;
	d->creator = 1;
	d->gids = calloc(nodes, sizeof(*d->gids));
	if (!d->gids) {
		dd_free_handle(d);
		return dg_err(DRAGON_ENOMEM, "group ids");
	}
	snprintf(idh, sizeof(idh), "%016llx", (unsigned long long)hd.id);
	snprintf(nm, sizeof(nm), "%u", hd.managers);
	snprintf(bud, sizeof(bud), "%zu", a.budget);
	/* One group per node: manager index = node * k + rank in its node's group. */
	for (unsigned n = 0; n < nodes; n++) {
		char base[16];
		snprintf(base, sizeof(base), "%u", n * k);
		const char *argv[] = { prog, "--id", idh, "--managers", nm, "--budget", bud,
				       "--base", base, NULL };
		dragon_process_opts_t po = DRAGON_PROCESS_OPTS_INIT;
		po.outlive = (a.flags & DRAGON_DDICT_OUTLIVE) != 0;
		rc = dragon_group_create(argv, k, DRAGON_POLICY_NODE, n, &po, NULL, &d->gids[n]);
		if (rc) {
			char m[512];
			snprintf(m, sizeof(m), "%s", dragon_errmsg());
			kill_groups(d);
			dd_free_handle(d);
			return dg_err(rc, "starting the managers of node %u: %s", n, m);
		}
		d->ngids++;
	}
	/* Wait until every manager published itself; a manager that died stops the wait. */
	int64_t deadline = dd_now_ms() + START_TIMEOUT_MS;
	for (unsigned i = 0; i < hd.managers;) {
		rc = dd_lookup_manager(d, i, PROBE_MS);
		if (rc == DRAGON_OK) {
			i++;
			continue;
		}
		if (rc != DRAGON_ETIMEDOUT && rc != DRAGON_ENOTFOUND)
			break;
		dragon_puid_t puid;
		int st;
		for (unsigned g = 0; g < d->ngids; g++)
			if (dragon_group_wait_any(d->gids[g], 0, &puid, &st) == DRAGON_OK) {
				rc = dg_err(DRAGON_EPEER,
					    "a manager on node %u exited with status %d before serving "
					    "(its output says why)",
					    g, st);
				goto failed;
			}
		if (dd_now_ms() > deadline) {
			rc = dg_err(DRAGON_ETIMEDOUT, "manager %u did not start within %d ms", i,
				    START_TIMEOUT_MS);
			goto failed;
		}
	}
	if (rc)
		goto failed;
	if (name) {
		int flags = (a.flags & DRAGON_DDICT_OUTLIVE) ? DRAGON_NAME_OUTLIVE : 0;
		rc = dragon_name_register(name, DRAGON_NAME_USER, &hd, sizeof(hd), flags);
		if (rc)
			goto failed;
		d->name = strdup(name);
	}
	*out = d;
	return DRAGON_OK;
failed: {
	char m[600];
	snprintf(m, sizeof(m), "%s", dragon_errmsg());
	kill_groups(d);
	dd_free_handle(d);
	return dg_err(rc, "%s", m);
}
}

DRAGON_API int dragon_ddict_attach(const char *name, int timeout_ms, dragon_ddict_t **out)
{
	struct dd_desc hd;
	size_t len = sizeof(hd);
	dragon_ddict_t *d;
	int rc;

	if (!name || !out)
		return dg_err(DRAGON_EINVAL, "dragon_ddict_attach: NULL name or handle pointer");
	rc = dragon_name_lookup(name, timeout_ms, NULL, &hd, &len);
	if (rc)
		return rc;
	if (len != sizeof(hd) || hd.magic != DD_DESC_MAGIC || !hd.managers || hd.managers > 65536)
		return dg_err(DRAGON_EBADDESC, "the name %s does not stand for a dictionary", name);
	rc = dd_new_handle(&hd, &d);
	if (rc)
		return rc;
	/* A manager that is gone stays unknown: its keys fail with DRAGON_EPEER, the rest work. */
	for (unsigned i = 0; i < hd.managers; i++)
		dd_lookup_manager(d, i, 0);
	d->name = strdup(name); /* destroy removes it */
	*out = d;
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_serialize(const dragon_ddict_t *d, void **desc, size_t *len)
{
	size_t n;
	unsigned char *b;
	struct dd_desc hd;

	if (!d || !desc || !len)
		return dg_err(DRAGON_EINVAL, "dragon_ddict_serialize: NULL argument");
	n = sizeof(hd) + (size_t)d->desc.managers * sizeof(struct dd_minfo);
	b = malloc(n);
	if (!b)
		return dg_err(DRAGON_ENOMEM, "descriptor of %zu bytes", n);
	hd = d->desc;
	hd.with_info = 1;
	memcpy(b, &hd, sizeof(hd));
	for (unsigned i = 0; i < d->desc.managers; i++) {
		struct dd_minfo mi = d->m[i].info; /* zeros for an unknown manager */
		memcpy(b + sizeof(hd) + i * sizeof(mi), &mi, sizeof(mi));
	}
	*desc = b;
	*len = n;
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_attach_desc(const void *desc, size_t len, dragon_ddict_t **out)
{
	struct dd_desc hd;
	dragon_ddict_t *d;
	int rc;

	if (!desc || !out || len < sizeof(hd))
		return dg_err(DRAGON_EBADDESC, "dictionary descriptor of %zu bytes", len);
	memcpy(&hd, desc, sizeof(hd));
	if (hd.magic != DD_DESC_MAGIC || !hd.with_info || !hd.managers || hd.managers > 65536 ||
	    len != sizeof(hd) + (size_t)hd.managers * sizeof(struct dd_minfo))
		return dg_err(DRAGON_EBADDESC, "not a serialized dictionary descriptor (%zu bytes)",
			      len);
	hd.with_info = 0;
	rc = dd_new_handle(&hd, &d);
	if (rc)
		return rc;
	for (unsigned i = 0; i < hd.managers; i++) {
		struct dd_minfo mi;
		memcpy(&mi, (const unsigned char *)desc + sizeof(hd) + i * sizeof(mi), sizeof(mi));
		if (mi.magic == DD_MINFO_MAGIC && mi.index == i) {
			d->m[i].info = mi;
			d->m[i].known = 1;
		}
	}
	*out = d;
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_detach(dragon_ddict_t *d)
{
	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	if (d->creator && d->name && !(d->desc.flags & DRAGON_DDICT_OUTLIVE))
		dragon_name_remove(d->name);
	dd_free_handle(d);
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_destroy(dragon_ddict_t *d)
{
	int rc;

	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	d->pin = -1;
	rc = dd_every(d, DD_OP_SHUTDOWN, NULL, NULL);
	if (d->creator) {
		for (unsigned g = 0; g < d->ngids; g++)
			if (dragon_group_wait_all(d->gids[g], 10000, NULL)) {
				dragon_group_signal(d->gids[g], SIGKILL);
				dragon_group_wait_all(d->gids[g], 5000, NULL);
			}
	}
	if (d->name)
		dragon_name_remove(d->name);
	dd_free_handle(d);
	/* A manager already gone is what destroy wants. */
	return rc == DRAGON_EPEER ? DRAGON_OK : rc;
}
