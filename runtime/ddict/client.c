/* runtime/ddict/client.c: the dictionary's public API: starting managers, finding them, and every operation as requests over channels (or shared memory when frozen). */
#include "config.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/err.h"
#include "ddict/dd.h"

#define DEFAULT_BUDGET (64u << 20)
#define DEFAULT_TIMEOUT_MS 30000
#define ZC_PUT_MIN 4096u            /* from here a put on the manager's node goes through its pool */
#define BATCH_FLUSH (1u << 20)      /* a batch message carries about this much */
#define PROBE_MS 200                /* while waiting, check the manager is alive this often */
#define START_TIMEOUT_MS 60000

struct mgr {
	struct dd_minfo info;
	int known;  /* info is valid */
	dragon_channel_t *ch;
	int view_state; /* 0 not tried, 1 attached, -1 not possible */
	struct dd_shard view;
	/* batch being built */
	unsigned char *vals;
	size_t vlen, vcap;
	ProtobufCBinaryData *keys;
	uint64_t *vlens;
	size_t n, ncap;
};

struct parked {
	uint64_t seq;
	DdRep *rep;
	dragon_mem_t mem;
};

struct dragon_ddict {
	struct dd_desc desc;
	struct mgr *m;
	dragon_channel_t *rch;
	unsigned char rdesc[DRAGON_DESC_SIZE];
	uint64_t seq;
	int pin;
	int timeout_ms;
	unsigned node;
	int creator;
	dragon_gid_t *gids;
	unsigned ngids;
	char *name;
	int in_batch;
	uint64_t *bseq;      /* batch messages sent; those from bdone on are not yet acknowledged */
	unsigned *bmgr;
	size_t nb, nbcap, bdone;
	int brc;             /* the batch's first failure, and its text */
	char bmsg[1024];
	struct parked park[64];
	unsigned nparked;
};

void dd_manager_name(uint64_t id, unsigned index, char *out, size_t cap)
{
	snprintf(out, cap, "ddict.%016llx.%u", (unsigned long long)id, index);
}

/*
 * dg_err with this thread's last detail appended: it is copied first, because dg_err writes the
 * buffer dragon_errmsg() returns.
 */
static int err_on(int rc, const char *what, const char *name, const char *tail)
{
	char m[600];

	snprintf(m, sizeof(m), "%s", dragon_errmsg());
	return dg_err(rc, "%s %s: %s%s", name, what, m, tail);
}

static int mname(const dragon_ddict_t *d, unsigned i, char *out, size_t cap)
{
	return snprintf(out, cap, "manager %u (node %u)", i, d->m[i].known ? d->m[i].info.node : 0);
}

/* ---- handles -------------------------------------------------------------------------------- */

static void free_handle(dragon_ddict_t *d)
{
	if (!d)
		return;
	for (unsigned i = 0; d->m && i < d->desc.managers; i++) {
		struct mgr *m = &d->m[i];
		if (m->ch)
			dragon_channel_detach(m->ch);
		if (m->view_state == 1)
			dragon_pool_detach(m->view.pool);
		for (size_t k = 0; k < m->n; k++)
			free(m->keys[k].data);
		free(m->vals);
		free(m->keys);
		free(m->vlens);
	}
	for (unsigned i = 0; i < d->nparked; i++) {
		dd_rep__free_unpacked(d->park[i].rep, NULL);
		if (d->park[i].mem.pool)
			dragon_pool_free(&d->park[i].mem);
	}
	if (d->rch)
		dragon_fchannel_destroy(d->rch);
	free(d->m);
	free(d->gids);
	free(d->name);
	free(d->bseq);
	free(d->bmgr);
	free(d);
}

/* A handle on the managers in infos (NULL entries: unknown, operations on them fail). */
static int new_handle(const struct dd_desc *hd, dragon_ddict_t **out)
{
	dragon_channel_attr_t ca = { 64, 512, DRAGON_WAIT_ADAPTIVE };
	dragon_ddict_t *d = calloc(1, sizeof(*d));
	const char *t = getenv("DRAGON_DDICT_TIMEOUT_MS");
	int rc;

	if (!d || !(d->m = calloc(hd->managers, sizeof(*d->m)))) {
		free(d);
		return dg_err(DRAGON_ENOMEM, "dictionary handle of %u managers", hd->managers);
	}
	d->desc = *hd;
	d->pin = -1;
	d->timeout_ms = t && *t ? atoi(t) : DEFAULT_TIMEOUT_MS;
	d->node = dragon_node_index();
	/* Our reply channel, on our node: replies are received locally, also as allocations. */
	rc = dragon_fchannel_create(NULL, &ca, 0, &d->rch);
	if (rc) {
		free_handle(d);
		return rc;
	}
	dragon_channel_serialize(d->rch, (dragon_channel_desc_t *)d->rdesc);
	*out = d;
	return DRAGON_OK;
}

static int mgr_channel(dragon_ddict_t *d, unsigned i, dragon_channel_t **ch)
{
	struct mgr *m = &d->m[i];
	char n[64];
	int rc;

	if (!m->known) {
		mname(d, i, n, sizeof(n));
		return dg_err(DRAGON_EPEER, "%s of the dictionary is gone (it was not found)", n);
	}
	if (!m->ch) {
		rc = dragon_channel_attach((const dragon_channel_desc_t *)m->info.chan, &m->ch);
		if (rc) {
			mname(d, i, n, sizeof(n));
			return err_on(rc == DRAGON_ENOMEM || rc == DRAGON_EINVAL ? rc : DRAGON_EPEER,
				      "cannot reach its request channel", n, "");
		}
	}
	*ch = m->ch;
	return DRAGON_OK;
}

/* The manager's shard mapped here, if it lives on this node. */
static struct dd_shard *mgr_view(dragon_ddict_t *d, unsigned i)
{
	struct mgr *m = &d->m[i];

	if (m->view_state == 0) {
		m->view_state = -1;
		if (m->known && m->info.node == d->node &&
		    dd_shard_view((const dragon_mem_desc_t *)m->info.hdr, &m->view) == DRAGON_OK)
			m->view_state = 1;
	}
	return m->view_state == 1 ? &m->view : NULL;
}

/* ---- requests ------------------------------------------------------------------------------- */

static int is_gone(int rc)
{
	return rc == DRAGON_ECLOSED || rc == DRAGON_ESTALE || rc == DRAGON_EPEER;
}

static int send_req(dragon_ddict_t *d, unsigned i, DdReq *q, const void *pl, size_t plen,
		    uint64_t *seq)
{
	dragon_channel_t *ch;
	dragon_wait_t w = { d->timeout_ms < 0 ? -1 : (long)d->timeout_ms * 1000,
			    DRAGON_WAIT_DEFAULT, 0 };
	unsigned char *buf;
	size_t len;
	char n[64];
	int rc;

	rc = mgr_channel(d, i, &ch);
	if (rc)
		return rc;
	q->seq = ++d->seq;
	q->reply.data = d->rdesc;
	q->reply.len = DRAGON_DESC_SIZE;
	/* Our node only if we map the manager's pool: else it must answer inside the message. */
	q->node = mgr_view(d, i) ? d->node : UINT32_MAX;
	len = dd_encoded_size(&q->base, plen);
	buf = malloc(len);
	if (!buf)
		return dg_err(DRAGON_ENOMEM, "request of %zu bytes", len);
	if (plen)
		memcpy(buf, pl, plen);
	dd_encode_into(&q->base, plen, buf, len);
	rc = dragon_channel_send(ch, buf, len, &w);
	free(buf);
	if (rc) {
		mname(d, i, n, sizeof(n));
		if (is_gone(rc))
			return err_on(DRAGON_EPEER, "is gone", n, "");
		return err_on(rc, "does not take requests", n, "");
	}
	*seq = q->seq;
	return DRAGON_OK;
}

static void release(DdRep *rep, dragon_mem_t *mem)
{
	if (rep)
		dd_rep__free_unpacked(rep, NULL);
	if (mem && mem->pool)
		dragon_pool_free(mem);
}

/*
 * Wait for the reply to seq from manager i. While it does not come, check every PROBE_MS that the
 * manager's request channel still exists (local services destroy it when the manager ends; the
 * transport agent reports a lost node): so a dead manager fails the call with DRAGON_EPEER in
 * bounded time. *mem (the received message) holds the payload; free it with release().
 */
static int wait_rep(dragon_ddict_t *d, unsigned i, uint64_t seq, int timeout_ms, DdRep **rep,
		    dragon_mem_t *mem, const unsigned char **pl, size_t *plen)
{
	int64_t deadline = timeout_ms < 0 ? -1 : dd_now_ms() + timeout_ms;
	char n[64];
	int rc;

	for (;;) {
		for (unsigned k = 0; k < d->nparked; k++)
			if (d->park[k].seq == seq) {
				*rep = d->park[k].rep;
				*mem = d->park[k].mem;
				*pl = mem->ptr;
				*plen = (*rep)->vlen;
				d->park[k] = d->park[--d->nparked];
				return DRAGON_OK;
			}
		int64_t now = dd_now_ms();
		long slice = PROBE_MS;
		if (deadline >= 0) {
			if (now >= deadline) {
				mname(d, i, n, sizeof(n));
				return dg_err(DRAGON_ETIMEDOUT, "%s did not answer within %d ms", n,
					      timeout_ms);
			}
			if (deadline - now < slice)
				slice = (long)(deadline - now);
		}
		dragon_wait_t w = { slice * 1000, DRAGON_WAIT_DEFAULT, 0 };
		dragon_mem_t m;
		rc = dragon_channel_recv_mem(d->rch, &m, &w);
		if (rc == DRAGON_ETIMEDOUT || rc == DRAGON_EAGAIN) {
			dragon_channel_t *ch;
			unsigned rev = 0;
			dragon_wait_t z = { 0, DRAGON_WAIT_DEFAULT, 0 };
			if (mgr_channel(d, i, &ch) == DRAGON_OK) {
				rc = dragon_channel_poll(ch, DRAGON_POLLOUT, &rev, &z);
				if (!is_gone(rc))
					continue;
			}
			mname(d, i, n, sizeof(n));
			char why[64];
			snprintf(why, sizeof(why), " (%s, while waiting %d ms for an answer)",
				 dragon_strerror(rc), PROBE_MS);
			return err_on(DRAGON_EPEER, "is gone: its request channel", n, why);
		}
		if (rc)
			return rc;
		DdRep *r;
		const unsigned char *p;
		size_t pn;
		if (dd_decode_rep(m.ptr, m.size, &r, &p, &pn)) {
			dragon_pool_free(&m);
			continue; /* not ours to judge: drop it */
		}
		if (r->seq == seq) {
			*rep = r;
			*mem = m;
			*pl = p;
			*plen = r->vlen;
			return DRAGON_OK;
		}
		if (r->seq > d->seq) { /* not one of ours */
			dd_rep__free_unpacked(r, NULL);
			dragon_pool_free(&m);
			continue;
		}
		/*
		 * Another request's reply (batches and broadcasts have several outstanding): keep it.
		 * When the room is full, the oldest goes: a late reply of a call that timed out.
		 */
		if (d->nparked == sizeof(d->park) / sizeof(d->park[0])) {
			unsigned old = 0;
			for (unsigned k = 1; k < d->nparked; k++)
				if (d->park[k].seq < d->park[old].seq)
					old = k;
			release(d->park[old].rep, &d->park[old].mem);
			d->park[old] = d->park[--d->nparked];
		}
		d->park[d->nparked].seq = r->seq;
		d->park[d->nparked].rep = r;
		d->park[d->nparked].mem = m;
		d->nparked++;
	}
}

/* Reply's error as our error (its text names the manager). */
static int rep_rc(const DdRep *rep)
{
	if (!rep->rc)
		return DRAGON_OK;
	int rc = rep->rc > 0 && rep->rc < DRAGON_ERR_MAX ? rep->rc : DRAGON_EPROTO;
	return dg_err(rc, "%s", rep->msg && *rep->msg ? rep->msg : dragon_strerror(rc));
}

/* One request to manager i and its reply: the caller frees with release(). */
static int call(dragon_ddict_t *d, unsigned i, DdReq *q, const void *pl, size_t plen, int timeout_ms,
		DdRep **rep, dragon_mem_t *mem, const unsigned char **rpl, size_t *rplen)
{
	uint64_t seq;
	int rc = send_req(d, i, q, pl, plen, &seq);

	if (rc)
		return rc;
	memset(mem, 0, sizeof(*mem));
	return wait_rep(d, i, seq, timeout_ms, rep, mem, rpl, rplen);
}

/* A request whose reply carries only a status (and num). */
static int simple(dragon_ddict_t *d, unsigned i, DdReq *q, int64_t *num)
{
	DdRep *rep;
	dragon_mem_t mem;
	const unsigned char *pl;
	size_t plen;
	int rc = call(d, i, q, NULL, 0, d->timeout_ms, &rep, &mem, &pl, &plen);

	if (rc)
		return rc;
	rc = rep_rc(rep);
	if (num)
		*num = rep->num;
	release(rep, &mem);
	return rc;
}

/*
 * The same request to every manager (or the pinned one); the first failure is returned. Sent in
 * windows, so that the answers of a window fit in our reply channel.
 */
#define EVERY_WINDOW 32
static int every(dragon_ddict_t *d, uint32_t op, const char *dir, int64_t *sum)
{
	unsigned lo = d->pin >= 0 ? (unsigned)d->pin : 0;
	unsigned hi = d->pin >= 0 ? (unsigned)d->pin + 1 : d->desc.managers;
	uint64_t seqs[EVERY_WINDOW];
	int first = DRAGON_OK, rc;
	char msg[1024] = "";

	if (sum)
		*sum = 0;
	for (unsigned w = lo; w < hi; w += EVERY_WINDOW) {
		unsigned end = hi - w < EVERY_WINDOW ? hi : w + EVERY_WINDOW;
		/* all of the window sent first: the managers work at once */
		for (unsigned i = w; i < end; i++) {
			DdReq q = DD_REQ__INIT;
			q.op = op;
			if (dir)
				q.dir = (char *)dir;
			seqs[i - w] = 0;
			rc = send_req(d, i, &q, NULL, 0, &seqs[i - w]);
			if (rc && !first) {
				first = rc;
				snprintf(msg, sizeof(msg), "%s", dragon_errmsg());
			}
		}
		for (unsigned i = w; i < end; i++) {
			DdRep *rep;
			dragon_mem_t mem;
			const unsigned char *pl;
			size_t plen;
			if (!seqs[i - w])
				continue;
			rc = wait_rep(d, i, seqs[i - w], d->timeout_ms, &rep, &mem, &pl, &plen);
			if (!rc) {
				rc = rep_rc(rep);
				if (sum)
					*sum += rep->num;
				release(rep, &mem);
			}
			if (rc && !first) {
				first = rc;
				snprintf(msg, sizeof(msg), "%s", dragon_errmsg());
			}
		}
	}
	return first ? dg_err(first, "%s", msg) : DRAGON_OK;
}

static unsigned target(const dragon_ddict_t *d, const void *key, size_t klen)
{
	if (d->pin >= 0)
		return (unsigned)d->pin;
	return (unsigned)(dragon_ddict_hash(key, klen) % d->desc.managers);
}

static int check_key(const dragon_ddict_t *d, const void *key, size_t klen)
{
	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	if (!key && klen)
		return dg_err(DRAGON_EINVAL, "NULL key");
	if (klen > DD_KEY_MAX)
		return dg_err(DRAGON_ETOOBIG, "key of %zu bytes (at most %u)", klen, DD_KEY_MAX);
	return DRAGON_OK;
}

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
static int lookup_manager(dragon_ddict_t *d, unsigned i, int timeout_ms)
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
	rc = new_handle(&hd, &d);
	if (rc)
		return rc;
	if (a.timeout_ms)
		d->timeout_ms = a.timeout_ms;
	d->creator = 1;
	d->gids = calloc(nodes, sizeof(*d->gids));
	if (!d->gids) {
		free_handle(d);
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
			free_handle(d);
			return dg_err(rc, "starting the managers of node %u: %s", n, m);
		}
		d->ngids++;
	}
	/* Wait until every manager published itself; a manager that died stops the wait. */
	int64_t deadline = dd_now_ms() + START_TIMEOUT_MS;
	for (unsigned i = 0; i < hd.managers;) {
		rc = lookup_manager(d, i, PROBE_MS);
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
	free_handle(d);
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
	rc = new_handle(&hd, &d);
	if (rc)
		return rc;
	/* A manager that is gone stays unknown: its keys fail with DRAGON_EPEER, the rest work. */
	for (unsigned i = 0; i < hd.managers; i++)
		lookup_manager(d, i, 0);
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
	rc = new_handle(&hd, &d);
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
	free_handle(d);
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_destroy(dragon_ddict_t *d)
{
	int rc;

	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	d->pin = -1;
	rc = every(d, DD_OP_SHUTDOWN, NULL, NULL);
	if (d->creator) {
		for (unsigned g = 0; g < d->ngids; g++)
			if (dragon_group_wait_all(d->gids[g], 10000, NULL)) {
				dragon_group_signal(d->gids[g], SIGKILL);
				dragon_group_wait_all(d->gids[g], 5000, NULL);
			}
	}
	if (d->name)
		dragon_name_remove(d->name);
	free_handle(d);
	/* A manager already gone is what destroy wants. */
	return rc == DRAGON_EPEER ? DRAGON_OK : rc;
}

/* ---- small accessors ------------------------------------------------------------------------ */

DRAGON_API unsigned dragon_ddict_managers(const dragon_ddict_t *d)
{
	return d ? d->desc.managers : 0;
}

DRAGON_API unsigned dragon_ddict_manager_of(const dragon_ddict_t *d, const void *key, size_t klen)
{
	return d ? target(d, key, klen) : 0;
}

DRAGON_API int dragon_ddict_pin(dragon_ddict_t *d, int m)
{
	if (!d || m < -1 || (m >= 0 && (unsigned)m >= d->desc.managers))
		return dg_err(DRAGON_EINVAL, "pin to manager %d of %u", m, d ? d->desc.managers : 0);
	d->pin = m;
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_set_timeout(dragon_ddict_t *d, int timeout_ms)
{
	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	d->timeout_ms = timeout_ms;
	return DRAGON_OK;
}

/* ---- put and batches ------------------------------------------------------------------------ */

/* Collect acknowledgements of the batch until at most `keep` are outstanding. */
static void batch_collect(dragon_ddict_t *d, size_t keep)
{
	while (d->nb - d->bdone > keep) {
		DdRep *rep;
		dragon_mem_t mem;
		const unsigned char *pl;
		size_t plen, b = d->bdone++;
		int rc = wait_rep(d, d->bmgr[b], d->bseq[b], d->timeout_ms, &rep, &mem, &pl, &plen);
		if (!rc) {
			rc = rep_rc(rep);
			release(rep, &mem);
		}
		if (rc && !d->brc) {
			d->brc = rc;
			snprintf(d->bmsg, sizeof(d->bmsg), "%s", dragon_errmsg());
		}
	}
}

/*
 * Batch messages in flight at once: their acknowledgements must fit in our reply channel (64),
 * or a manager would block answering while we are still sending.
 */
#define BATCH_INFLIGHT 32

static int batch_flush(dragon_ddict_t *d, unsigned i)
{
	struct mgr *m = &d->m[i];
	DdReq q = DD_REQ__INIT;
	uint64_t seq;
	int rc;

	if (!m->n)
		return DRAGON_OK;
	q.op = DD_OP_BATCH;
	q.n_keys = m->n;
	q.keys = m->keys;
	q.n_vlens = m->n;
	q.vlens = m->vlens;
	rc = send_req(d, i, &q, m->vals, m->vlen, &seq);
	for (size_t k = 0; k < m->n; k++)
		free(m->keys[k].data);
	m->n = 0;
	m->vlen = 0;
	if (rc)
		return rc;
	if (d->nb == d->nbcap) {
		size_t nc = d->nbcap ? 2 * d->nbcap : 16;
		uint64_t *ns = realloc(d->bseq, nc * sizeof(*ns));
		if (ns)
			d->bseq = ns;
		unsigned *nm = realloc(d->bmgr, nc * sizeof(*nm));
		if (nm)
			d->bmgr = nm;
		if (!ns || !nm)
			return dg_err(DRAGON_ENOMEM, "batch bookkeeping");
		d->nbcap = nc;
	}
	d->bseq[d->nb] = seq;
	d->bmgr[d->nb] = i;
	d->nb++;
	batch_collect(d, BATCH_INFLIGHT);
	return DRAGON_OK;
}

static int batch_add(dragon_ddict_t *d, unsigned i, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	struct mgr *m = &d->m[i];

	if (m->n == m->ncap) {
		size_t nc = m->ncap ? 2 * m->ncap : 256;
		ProtobufCBinaryData *nk = realloc(m->keys, nc * sizeof(*nk));
		if (nk)
			m->keys = nk;
		uint64_t *nv = realloc(m->vlens, nc * sizeof(*nv));
		if (nv)
			m->vlens = nv;
		if (!nk || !nv)
			return dg_err(DRAGON_ENOMEM, "batch of %zu keys", nc);
		m->ncap = nc;
	}
	if (m->vlen + vlen > m->vcap) {
		size_t nc = m->vcap ? m->vcap : 65536;
		while (nc < m->vlen + vlen)
			nc *= 2;
		unsigned char *nb = realloc(m->vals, nc);
		if (!nb)
			return dg_err(DRAGON_ENOMEM, "batch of %zu bytes", nc);
		m->vals = nb;
		m->vcap = nc;
	}
	m->keys[m->n].data = malloc(klen ? klen : 1);
	if (!m->keys[m->n].data)
		return dg_err(DRAGON_ENOMEM, "batch key");
	memcpy(m->keys[m->n].data, key, klen);
	m->keys[m->n].len = klen;
	m->vlens[m->n] = vlen;
	m->n++;
	if (vlen)
		memcpy(m->vals + m->vlen, val, vlen);
	m->vlen += vlen;
	if (m->vlen + m->n * 16 >= BATCH_FLUSH)
		return batch_flush(d, i);
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_batch_begin(dragon_ddict_t *d)
{
	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	if (d->in_batch)
		return dg_err(DRAGON_EINVAL, "a batch is already open on this handle");
	d->in_batch = 1;
	d->nb = d->bdone = 0;
	d->brc = DRAGON_OK;
	d->bmsg[0] = 0;
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_batch_end(dragon_ddict_t *d)
{
	int rc;

	if (!d || !d->in_batch)
		return dg_err(DRAGON_EINVAL, "no batch is open on this handle");
	for (unsigned i = 0; i < d->desc.managers; i++) {
		rc = batch_flush(d, i);
		if (rc && !d->brc) {
			d->brc = rc;
			snprintf(d->bmsg, sizeof(d->bmsg), "%s", dragon_errmsg());
		}
	}
	batch_collect(d, 0);
	d->nb = d->bdone = 0;
	d->in_batch = 0;
	return d->brc ? dg_err(d->brc, "%s", d->bmsg) : DRAGON_OK;
}

DRAGON_API int dragon_ddict_put(dragon_ddict_t *d, const void *key, size_t klen, const void *val,
				size_t vlen)
{
	DdReq q = DD_REQ__INIT;
	struct dd_shard *v;
	unsigned i;
	int rc;

	if ((rc = check_key(d, key, klen)))
		return rc;
	if (!val && vlen)
		return dg_err(DRAGON_EINVAL, "NULL value");
	i = target(d, key, klen);
	if (d->in_batch)
		return batch_add(d, i, key, klen, val, vlen);
	q.op = DD_OP_PUT;
	q.key.data = (uint8_t *)key;
	q.key.len = klen;
	if (vlen >= ZC_PUT_MIN && (v = mgr_view(d, i)) && !v->h->frozen) {
		/* Same node: write the value once, into the manager's pool, and hand it over. */
		dragon_mem_t m;
		if (dragon_pool_alloc(v->pool, vlen, 0, &m) == DRAGON_OK) {
			int64_t num;
			memcpy(m.ptr, val, vlen);
			q.mem_off = m.offset;
			q.mem_len = vlen;
			rc = simple(d, i, &q, &num);
			/* The manager frees it on failure; after a timeout it is lost, not reused. */
			return rc;
		}
	}
	q.vlen = vlen;
	DdRep *rep;
	dragon_mem_t mem;
	const unsigned char *pl;
	size_t plen;
	rc = call(d, i, &q, val, vlen, d->timeout_ms, &rep, &mem, &pl, &plen);
	if (rc)
		return rc;
	rc = rep_rc(rep);
	release(rep, &mem);
	return rc;
}

/* ---- get, pop ------------------------------------------------------------------------------- */

/*
 * Frozen fast path: read the shard in place. DRAGON_EAGAIN means "ask the manager" (not frozen,
 * not on this node, or the state changed while reading).
 */
static int frozen_get(dragon_ddict_t *d, unsigned i, const void *key, size_t klen, void *buf,
		      size_t cap, size_t *vlen, dragon_mem_t *mem)
{
	struct dd_shard *v = mgr_view(d, i);
	struct dd_entry *e;
	const unsigned char *p;
	uint64_t g;
	int rc;

	if (!v || !__atomic_load_n(&v->h->frozen, __ATOMIC_ACQUIRE))
		return DRAGON_EAGAIN;
	g = __atomic_load_n(&v->h->gen, __ATOMIC_ACQUIRE);
	rc = dd_shard_find(v, dragon_ddict_hash(key, klen), key, klen, &e);
	if (rc == DRAGON_ENOTFOUND) {
		if (__atomic_load_n(&v->h->gen, __ATOMIC_ACQUIRE) != g)
			return DRAGON_EAGAIN;
		char n[64];
		mname(d, i, n, sizeof(n));
		return dg_err(DRAGON_ENOTFOUND, "%s: no such key", n);
	}
	if (rc || !(p = dd_shard_value(v, e)))
		return DRAGON_EAGAIN;
	size_t len = e->vlen;
	if (mem) {
		if (dragon_pool_alloc(v->pool, len ? len : 1, 0, mem))
			return DRAGON_EAGAIN;
		memcpy(mem->ptr, p, len);
	} else if (len <= cap) {
		memcpy(buf, p, len);
	}
	if (__atomic_load_n(&v->h->gen, __ATOMIC_ACQUIRE) != g) {
		if (mem)
			dragon_pool_free(mem);
		return DRAGON_EAGAIN;
	}
	*vlen = len;
	if (!mem && len > cap)
		return dg_err(DRAGON_ETOOBIG, "the value is %zu bytes, the buffer %zu", len, cap);
	return DRAGON_OK;
}

/* A value from a reply: in our received message, or an allocation of the manager's pool. */
static int reply_value(dragon_ddict_t *d, unsigned i, DdRep *rep, dragon_mem_t *rmem,
		       const unsigned char *pl, const unsigned char **val, dragon_mem_t *vmem)
{
	memset(vmem, 0, sizeof(*vmem));
	if (rep->mem_len || rep->mem_off) {
		struct dd_shard *v = mgr_view(d, i);
		if (!v || rep->mem_off > v->size || rep->mem_len > v->size - rep->mem_off)
			return dg_err(DRAGON_EPROTO, "reply names allocation %llu+%llu outside the pool",
				      (unsigned long long)rep->mem_off,
				      (unsigned long long)rep->mem_len);
		vmem->pool = v->pool;
		vmem->offset = rep->mem_off;
		vmem->size = rep->mem_len;
		vmem->ptr = v->base + rep->mem_off;
		*val = vmem->ptr;
		rep->vlen = rep->mem_len;
		return DRAGON_OK;
	}
	(void)rmem;
	*val = pl;
	return DRAGON_OK;
}

static int get_common(dragon_ddict_t *d, uint32_t op, const void *key, size_t klen, void *buf,
		      size_t cap, size_t *vlen, dragon_mem_t *out)
{
	DdReq q = DD_REQ__INIT;
	DdRep *rep;
	dragon_mem_t rmem, vmem;
	const unsigned char *pl, *val = NULL;
	size_t plen;
	unsigned i;
	int rc;

	if ((rc = check_key(d, key, klen)))
		return rc;
	if (!vlen || (!out && !buf && cap))
		return dg_err(DRAGON_EINVAL, "NULL buffer or length");
	i = target(d, key, klen);
	if (op == DD_OP_GET) {
		rc = frozen_get(d, i, key, klen, buf, cap, vlen, out);
		if (rc != DRAGON_EAGAIN)
			return rc;
	}
	q.op = op;
	q.key.data = (uint8_t *)key;
	q.key.len = klen;
	rc = call(d, i, &q, NULL, 0, d->timeout_ms, &rep, &rmem, &pl, &plen);
	if (rc)
		return rc;
	if ((rc = rep_rc(rep)) || (rc = reply_value(d, i, rep, &rmem, pl, &val, &vmem))) {
		release(rep, &rmem);
		return rc;
	}
	*vlen = rep->vlen;
	if (out) {
		if (vmem.pool) {
			*out = vmem;
			dragon_pool_free(&rmem);
		} else {
			/* The value leads the received message: hand the message over. */
			*out = rmem;
		}
		dd_rep__free_unpacked(rep, NULL);
		return DRAGON_OK;
	}
	if (rep->vlen > cap) {
		rc = dg_err(DRAGON_ETOOBIG, "the value is %llu bytes, the buffer %zu%s",
			    (unsigned long long)rep->vlen, cap,
			    op == DD_OP_POP ? " (the key was removed)" : "");
	} else if (rep->vlen) {
		memcpy(buf, val, rep->vlen);
	}
	if (vmem.pool)
		dragon_pool_free(&vmem);
	release(rep, &rmem);
	return rc;
}

DRAGON_API int dragon_ddict_get(dragon_ddict_t *d, const void *key, size_t klen, void *buf,
				size_t cap, size_t *vlen)
{
	return get_common(d, DD_OP_GET, key, klen, buf, cap, vlen, NULL);
}

DRAGON_API int dragon_ddict_get_mem(dragon_ddict_t *d, const void *key, size_t klen,
				    dragon_mem_t *mem, size_t *vlen)
{
	if (!mem)
		return dg_err(DRAGON_EINVAL, "NULL allocation");
	return get_common(d, DD_OP_GET, key, klen, NULL, 0, vlen, mem);
}

DRAGON_API int dragon_ddict_get_view(dragon_ddict_t *d, const void *key, size_t klen,
				     const void **val, size_t *vlen)
{
	struct dd_shard *v;
	struct dd_entry *e;
	const unsigned char *p;
	unsigned i;
	int rc;

	if ((rc = check_key(d, key, klen)))
		return rc;
	if (!val || !vlen)
		return dg_err(DRAGON_EINVAL, "NULL value pointer or length");
	i = target(d, key, klen);
	v = mgr_view(d, i);
	if (!v || !__atomic_load_n(&v->h->frozen, __ATOMIC_ACQUIRE))
		return dg_err(DRAGON_EAGAIN, "a view needs a frozen dictionary and the key's manager "
					     "(%u) on this node",
			      i);
	rc = dd_shard_find(v, dragon_ddict_hash(key, klen), key, klen, &e);
	if (rc == DRAGON_ENOTFOUND)
		return dg_err(rc, "no such key");
	if (rc || !(p = dd_shard_value(v, e)))
		return dg_err(DRAGON_EAGAIN, "the shard changed while it was read");
	*val = p;
	*vlen = e->vlen;
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_pop(dragon_ddict_t *d, const void *key, size_t klen, void *buf,
				size_t cap, size_t *vlen)
{
	return get_common(d, DD_OP_POP, key, klen, buf, cap, vlen, NULL);
}

/* ---- the other single-key operations -------------------------------------------------------- */

static int key_op(dragon_ddict_t *d, uint32_t op, const void *key, size_t klen, int64_t delta,
		  int timeout_ms, int64_t *num)
{
	DdReq q = DD_REQ__INIT;
	int rc;

	if ((rc = check_key(d, key, klen)))
		return rc;
	q.op = op;
	q.key.data = (uint8_t *)key;
	q.key.len = klen;
	q.delta = delta;
	q.timeout_ms = timeout_ms;
	if (op == DD_OP_WAIT) {
		unsigned i = target(d, key, klen);
		DdRep *rep;
		dragon_mem_t mem;
		const unsigned char *pl;
		size_t plen;
		/* The manager times the wait; we allow it a margin to answer. */
		rc = call(d, i, &q, NULL, 0, timeout_ms < 0 ? -1 : timeout_ms + 5000, &rep, &mem,
			  &pl, &plen);
		if (rc)
			return rc;
		rc = rep_rc(rep);
		release(rep, &mem);
		return rc;
	}
	return simple(d, target(d, key, klen), &q, num);
}

DRAGON_API int dragon_ddict_del(dragon_ddict_t *d, const void *key, size_t klen)
{
	return key_op(d, DD_OP_DEL, key, klen, 0, 0, NULL);
}

DRAGON_API int dragon_ddict_contains(dragon_ddict_t *d, const void *key, size_t klen,
				     int *present)
{
	size_t vlen;
	int rc;

	if (!present)
		return dg_err(DRAGON_EINVAL, "NULL result pointer");
	if (d && check_key(d, key, klen) == DRAGON_OK) {
		/* frozen: answered from shared memory like a get (without copying the value) */
		rc = frozen_get(d, target(d, key, klen), key, klen, NULL, 0, &vlen, NULL);
		if (rc == DRAGON_OK || rc == DRAGON_ETOOBIG || rc == DRAGON_ENOTFOUND) {
			*present = rc != DRAGON_ENOTFOUND;
			return DRAGON_OK;
		}
	}
	rc = key_op(d, DD_OP_CONTAINS, key, klen, 0, 0, NULL);
	*present = rc == DRAGON_OK;
	return rc == DRAGON_ENOTFOUND ? DRAGON_OK : rc;
}

DRAGON_API int dragon_ddict_wait_for_key(dragon_ddict_t *d, const void *key, size_t klen,
					 int timeout_ms)
{
	return key_op(d, DD_OP_WAIT, key, klen, 0, timeout_ms < 0 ? -1 : timeout_ms, NULL);
}

DRAGON_API int dragon_ddict_fetch_add(dragon_ddict_t *d, const void *key, size_t klen,
				      int64_t delta, int64_t *old)
{
	int64_t num = 0;
	int rc = key_op(d, DD_OP_FETCH_ADD, key, klen, delta, 0, &num);

	if (!rc && old)
		*old = num;
	return rc;
}

/* ---- whole-dictionary operations ------------------------------------------------------------ */

DRAGON_API int dragon_ddict_len(dragon_ddict_t *d, uint64_t *n)
{
	int64_t sum;
	int rc;

	if (!d || !n)
		return dg_err(DRAGON_EINVAL, "NULL argument");
	rc = every(d, DD_OP_LEN, NULL, &sum);
	if (!rc)
		*n = (uint64_t)sum;
	return rc;
}

DRAGON_API int dragon_ddict_manager_stats(dragon_ddict_t *d, unsigned m, uint64_t *keys,
					  uint64_t *used, uint64_t *budget)
{
	DdReq q = DD_REQ__INIT;
	DdRep *rep;
	dragon_mem_t mem;
	const unsigned char *pl;
	size_t plen;
	int rc;

	if (!d || m >= d->desc.managers)
		return dg_err(DRAGON_EINVAL, "manager %u of %u", m, d ? d->desc.managers : 0);
	q.op = DD_OP_STATS;
	rc = call(d, m, &q, NULL, 0, d->timeout_ms, &rep, &mem, &pl, &plen);
	if (rc)
		return rc;
	if (keys)
		*keys = (uint64_t)rep->num;
	if (used)
		*used = rep->used;
	if (budget)
		*budget = rep->budget;
	release(rep, &mem);
	return DRAGON_OK;
}

int dd_manager_waiters(dragon_ddict_t *d, unsigned m, uint64_t *n)
{
	DdReq q = DD_REQ__INIT;
	DdRep *rep;
	dragon_mem_t mem;
	const unsigned char *pl;
	size_t plen;
	int rc;

	if (!d || m >= d->desc.managers || !n)
		return dg_err(DRAGON_EINVAL, "manager %u", m);
	q.op = DD_OP_STATS;
	rc = call(d, m, &q, NULL, 0, d->timeout_ms, &rep, &mem, &pl, &plen);
	if (rc)
		return rc;
	*n = rep->waiters;
	release(rep, &mem);
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_clear(dragon_ddict_t *d)
{
	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	return every(d, DD_OP_CLEAR, NULL, NULL);
}

DRAGON_API int dragon_ddict_freeze(dragon_ddict_t *d)
{
	int pin, rc;

	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	pin = d->pin;
	d->pin = -1; /* the whole dictionary, pinned or not */
	rc = every(d, DD_OP_FREEZE, NULL, NULL);
	d->pin = pin;
	return rc;
}

DRAGON_API int dragon_ddict_unfreeze(dragon_ddict_t *d)
{
	int pin, rc;

	if (!d)
		return dg_err(DRAGON_EINVAL, "NULL dictionary handle");
	pin = d->pin;
	d->pin = -1;
	rc = every(d, DD_OP_UNFREEZE, NULL, NULL);
	d->pin = pin;
	return rc;
}

static int dir_op(dragon_ddict_t *d, uint32_t op, const char *dir)
{
	int pin, rc;

	if (!d || !dir || !*dir)
		return dg_err(DRAGON_EINVAL, "NULL handle or directory");
	if (strlen(dir) > 3900)
		return dg_err(DRAGON_EINVAL, "directory name of %zu bytes", strlen(dir));
	pin = d->pin;
	d->pin = -1;
	rc = every(d, op, dir, NULL);
	d->pin = pin;
	return rc;
}

DRAGON_API int dragon_ddict_persist(dragon_ddict_t *d, const char *dir)
{
	return dir_op(d, DD_OP_PERSIST, dir);
}

DRAGON_API int dragon_ddict_restore(dragon_ddict_t *d, const char *dir)
{
	return dir_op(d, DD_OP_RESTORE, dir);
}

/* ---- key iteration -------------------------------------------------------------------------- */

struct dragon_ddict_iter {
	dragon_ddict_t *d;
	unsigned m, last;
	uint64_t cursor;
	DdRep *rep;
	size_t pos;
};

DRAGON_API int dragon_ddict_iter_start(dragon_ddict_t *d, int m, dragon_ddict_iter_t **out)
{
	dragon_ddict_iter_t *it;

	if (!d || !out || m < -1 || (m >= 0 && (unsigned)m >= d->desc.managers))
		return dg_err(DRAGON_EINVAL, "iteration over manager %d of %u", m,
			      d ? d->desc.managers : 0);
	it = calloc(1, sizeof(*it));
	if (!it)
		return dg_err(DRAGON_ENOMEM, "iterator");
	it->d = d;
	if (m < 0 && d->pin >= 0)
		m = d->pin;
	it->m = m < 0 ? 0 : (unsigned)m;
	it->last = m < 0 ? d->desc.managers - 1 : (unsigned)m;
	*out = it;
	return DRAGON_OK;
}

DRAGON_API int dragon_ddict_iter_next(dragon_ddict_iter_t *it, void *key, size_t cap,
				      size_t *klen)
{
	int rc;

	if (!it || !klen || (!key && cap))
		return dg_err(DRAGON_EINVAL, "NULL iterator, key or length");
	while (!it->rep || it->pos >= it->rep->n_keys) {
		if (it->rep) {
			dd_rep__free_unpacked(it->rep, NULL);
			it->rep = NULL;
			if (it->cursor == UINT64_MAX) { /* this manager is done */
				if (it->m >= it->last)
					return DRAGON_ENOTFOUND;
				it->m++;
				it->cursor = 0;
			}
		}
		DdReq q = DD_REQ__INIT;
		dragon_mem_t mem;
		const unsigned char *pl;
		size_t plen;
		q.op = DD_OP_KEYS;
		q.cursor = it->cursor;
		rc = call(it->d, it->m, &q, NULL, 0, it->d->timeout_ms, &it->rep, &mem, &pl, &plen);
		if (rc)
			return rc;
		if (mem.pool)
			dragon_pool_free(&mem);
		if ((rc = rep_rc(it->rep))) {
			dd_rep__free_unpacked(it->rep, NULL);
			it->rep = NULL;
			return rc;
		}
		it->cursor = it->rep->cursor;
		it->pos = 0;
	}
	ProtobufCBinaryData *k = &it->rep->keys[it->pos];
	*klen = k->len;
	if (k->len > cap)
		return dg_err(DRAGON_ETOOBIG, "key of %zu bytes, room for %zu", k->len, cap);
	memcpy(key, k->data, k->len);
	it->pos++;
	return DRAGON_OK;
}

DRAGON_API void dragon_ddict_iter_end(dragon_ddict_iter_t *it)
{
	if (!it)
		return;
	if (it->rep)
		dd_rep__free_unpacked(it->rep, NULL);
	free(it);
}
