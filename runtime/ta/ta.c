/* runtime/ta/ta.c: the transport agent's libfabric layer (RDM endpoint, buffers): configuration, open and close. */
#include "ta/ta_internal.h"
#include "core/env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <sodium.h>

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

void dg_ta_config_init(struct dg_ta_config *cfg)
{
	const char *e;

	memset(cfg, 0, sizeof(*cfg));
	cfg->provider = DG_TA_DEFAULT_PROVIDER;
	cfg->max_msg = (size_t)1 << 30;
	if ((e = getenv("DRAGON_TA_PROVIDER")) && *e)
		cfg->provider = e;
	if ((e = getenv("DRAGON_TA_IFACE")) && *e)
		cfg->iface = e;
	if ((e = getenv("DRAGON_TA_BIND")) && *e)
		cfg->bind = e;
	cfg->dead_ms = (int)dg_env_ulong("DRAGON_TA_DEAD_MS", 5000, 1, 3600000);
	cfg->spin_us = (int)dg_env_ulong("DRAGON_TA_SPIN_US", 20000, 0, 60000000);
	/* local services write the peer file within their two waits of a fabric's start */
	cfg->peer_wait_ms = 2 * DG_STARTUP_TIMEOUT_MS();
	/* Chunk and window trade memory for bandwidth: slots x chunk bytes each way per agent. */
	cfg->chunk = (size_t)dg_env_ulong("DRAGON_TA_CHUNK_KB", 256, 4, 16384) << 10;
	cfg->window = (unsigned)dg_env_ulong("DRAGON_TA_WINDOW", 16, 2, 1024);
	cfg->slots = 2 * cfg->window;
	/* Large messages go zero-copy (ta_bulk.c): no buffers of ours, so their chunk costs no
	 * memory; fewer, larger chunks pay fewer rendezvous round trips. */
	cfg->bulk_min = (size_t)dg_env_ulong("DRAGON_TA_ZCOPY_KB", 64, 0, 1048576) << 10;
	cfg->bulk_chunk = (size_t)dg_env_ulong("DRAGON_TA_BULK_KB", 1024, 4, 1048576) << 10;
	cfg->test_stall = (size_t)dg_env_ulong("DRAGON_TA_TEST_STALL_KB", 0, 0, 1048576) << 10;
}

void dg_ta_set_placement(dg_ta *ta, dg_ta_place_fn place, dg_ta_unplace_fn unplace, void *arg)
{
	ta->place = place;
	ta->unplace = unplace;
	ta->place_arg = arg;
}

void dg_ta_set_key(dg_ta *ta, const unsigned char key[DG_FRAME_KEY])
{
	memcpy(ta->cfg.key, key, DG_FRAME_KEY);
}

int64_t dg_ta_now(void)
{
	return now_ns();
}

void dg_ta_get_stats(dg_ta *ta, struct dg_ta_stats *st)
{
	*st = ta->st;
}

int dg_ta_getname(dg_ta *ta, void *buf, size_t *len)
{
	int rc = fi_getname(&ta->ep->fid, buf, len);

	if (rc)
		return dg_err(DRAGON_ETOOBIG, "endpoint name: %s", fi_strerror(-rc));
	return DRAGON_OK;
}

void dg_ta_describe(dg_ta *ta, char *buf, size_t cap)
{
	unsigned char raw[TA_ADDR_MAX];
	char addr[128] = "?";
	size_t rlen = sizeof(raw), alen = sizeof(addr);

	if (fi_getname(&ta->ep->fid, raw, &rlen) == 0)
		fi_av_straddr(ta->av, raw, addr, &alen);
	snprintf(buf, cap, "%s, domain %s, %s", ta->info->fabric_attr->prov_name,
		 ta->info->domain_attr->name, addr);
}

static int alloc_slots(struct slot **out, unsigned n, size_t cap, int recv)
{
	struct slot *s = calloc(n, sizeof(*s));

	if (!s)
		return dg_err(DRAGON_ENOMEM, "%u buffers", n);
	*out = s;
	for (unsigned i = 0; i < n; i++) {
		s[i].buf = malloc(cap);
		if (!s[i].buf)
			return dg_err(DRAGON_ENOMEM, "buffer of %zu bytes", cap);
		s[i].cap = cap;
		s[i].recv = recv;
	}
	return DRAGON_OK;
}

static void free_slots(struct slot *s, unsigned n)
{
	if (!s)
		return;
	for (unsigned i = 0; i < n; i++)
		free(s[i].buf);
	free(s);
}

/* An fd to sleep on lets the agent wait for the network and its local clients at once. */
static int cq_open(dg_ta *ta, struct fi_cq_attr *attr)
{
	int rc;

	ta->wait_fd = -1;
	attr->wait_obj = FI_WAIT_FD;
	rc = fi_cq_open(ta->domain, attr, &ta->cq, NULL);
	if (rc == 0) {
		if (fi_control(&ta->cq->fid, FI_GETWAIT, &ta->wait_fd) != 0)
			ta->wait_fd = -1;
		return 0;
	}
	attr->wait_obj = FI_WAIT_UNSPEC;
	return fi_cq_open(ta->domain, attr, &ta->cq, NULL);
}

/*
 * The providers that offer what the agent needs (RDM messages), for the message of a provider
 * that does not: "tcp;ofi_rxm, udp;ofi_rxd, shm" (each once, in libfabric's order).
 */
static void list_providers(struct fi_info *hints, char *out, size_t cap)
{
	struct fi_info *all = NULL;
	char *want = hints->fabric_attr->prov_name;
	size_t n = 0;

	out[0] = 0;
	hints->fabric_attr->prov_name = NULL;
	if (fi_getinfo(FI_VERSION(1, 14), NULL, NULL, 0, hints, &all) == 0) {
		for (struct fi_info *i = all; i; i = i->next) {
			const char *p = i->fabric_attr->prov_name;
			int seen = 0;
			for (struct fi_info *j = all; j != i && !seen; j = j->next)
				seen = !strcmp(j->fabric_attr->prov_name, p);
			if (!seen && n < cap)
				n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", p);
		}
		fi_freeinfo(all);
	}
	hints->fabric_attr->prov_name = want;
	if (!out[0])
		snprintf(out, cap, "none");
}

int dg_ta_open(const struct dg_ta_config *cfg, dg_ta **out)
{
	struct fi_info *hints = NULL;
	struct fi_av_attr av_attr = {.type = FI_AV_UNSPEC};
	struct fi_cq_attr cq_attr = {.format = FI_CQ_FORMAT_MSG, .wait_obj = FI_WAIT_UNSPEC};
	char node[128] = "", *service = NULL;
	dg_ta *ta;
	int rc, rv = -1;

	if (sodium_init() < 0)
		return dg_err(DRAGON_ENOTSUP, "libsodium failed to initialise");
	if (!cfg->chunk || cfg->chunk > UINT32_MAX || cfg->window < 2 || cfg->slots < 2 ||
	    cfg->dead_ms <= 0)
		return dg_err(DRAGON_EINVAL, "transport config: chunk %zu, window %u, slots %u, dead_ms %d",
			      cfg->chunk, cfg->window, cfg->slots, cfg->dead_ms);
	ta = calloc(1, sizeof(*ta));
	if (!ta)
		return dg_err(DRAGON_ENOMEM, "transport agent");
	ta->cfg = *cfg;
	copy_str(ta->provider, sizeof(ta->provider), cfg->provider ? cfg->provider : DG_TA_DEFAULT_PROVIDER);
	copy_str(ta->iface, sizeof(ta->iface), cfg->iface);
	copy_str(ta->bind, sizeof(ta->bind), cfg->bind);
	copy_str(ta->peer_file, sizeof(ta->peer_file), cfg->peer_file);
	ta->cfg.provider = ta->provider;
	ta->cfg.iface = ta->iface[0] ? ta->iface : NULL;
	ta->cfg.bind = ta->bind[0] ? ta->bind : NULL;
	ta->cfg.peer_file = ta->peer_file[0] ? ta->peer_file : NULL;
	ta->held_slot = -1;
	if (ta->cfg.bulk_min && ta->cfg.bulk_min < 4 * TA_BULK_HEAD)
		ta->cfg.bulk_min = 4 * TA_BULK_HEAD; /* the first frame must leave chunks to send */
	ta->bulk_shift = 12;
	while (ta->bulk_shift < 30 && ((size_t)2 << ta->bulk_shift) <= ta->cfg.bulk_chunk)
		ta->bulk_shift++;
	randombytes_buf(&ta->epoch, sizeof(ta->epoch));
	ta->epoch |= 1; /* 0 means "no epoch seen yet" */

	hints = fi_allocinfo();
	if (!hints) {
		rv = dg_err(DRAGON_ENOMEM, "fi_allocinfo");
		goto out;
	}
	hints->caps = FI_MSG;
	hints->ep_attr->type = FI_EP_RDM;
	hints->tx_attr->msg_order = FI_ORDER_SAS;
	hints->rx_attr->msg_order = FI_ORDER_SAS;
	hints->domain_attr->threading = FI_THREAD_DOMAIN;
	hints->domain_attr->mr_mode = 0; /* our buffers are not registered */
	hints->mode = FI_CONTEXT | FI_CONTEXT2;
	hints->fabric_attr->prov_name = strdup(ta->provider);
	if (ta->cfg.iface)
		hints->domain_attr->name = strdup(ta->cfg.iface);
	if (ta->cfg.bind) {
		char *colon;
		copy_str(node, sizeof(node), ta->cfg.bind);
		if ((colon = strrchr(node, ':'))) {
			*colon = 0;
			service = colon + 1;
		}
	}
	/* Tagged messages carry large messages zero-copy; a provider without them still works. */
	hints->caps = FI_MSG | FI_TAGGED;
	rc = fi_getinfo(FI_VERSION(1, 14), node[0] ? node : NULL, service, node[0] ? FI_SOURCE : 0,
			hints, &ta->info);
	if (rc == 0) {
		ta->tagged = 1;
	} else {
		hints->caps = FI_MSG;
		rc = fi_getinfo(FI_VERSION(1, 14), node[0] ? node : NULL, service,
				node[0] ? FI_SOURCE : 0, hints, &ta->info);
	}
	if (ta->tagged && ta->info->tx_attr->iov_limit < 3)
		ta->tagged = 0;
	if (rc) {
		char have[512];
		list_providers(hints, have, sizeof(have));
		rv = dg_err(DRAGON_ENOTSUP, "no libfabric provider '%s'%s%s for RDM messages (%s); "
					    "providers here: %s (--dragon=transport=NAME, DRAGON_TA_PROVIDER)",
			    ta->provider, ta->cfg.iface ? " on " : "",
			    ta->cfg.iface ? ta->cfg.iface : "", fi_strerror(-rc), have);
		goto out;
	}
	if (ta->info->ep_attr->max_msg_size < ta->cfg.chunk + DG_FRAME_OVERHEAD) {
		rv = dg_err(DRAGON_EINVAL, "chunk %zu exceeds the provider's message size %zu",
			    ta->cfg.chunk, ta->info->ep_attr->max_msg_size);
		goto out;
	}
	if ((rc = fi_fabric(ta->info->fabric_attr, &ta->fabric, NULL)) ||
	    (rc = fi_domain(ta->fabric, ta->info, &ta->domain, NULL))) {
		rv = fi_fail(rc, "fabric/domain");
		goto out;
	}
	cq_attr.size = 2 * cfg->slots + 2 * TA_CTRL_SLOTS + 4 * cfg->window;
	if ((rc = fi_av_open(ta->domain, &av_attr, &ta->av, NULL)) ||
	    (rc = cq_open(ta, &cq_attr)) ||
	    (rc = fi_endpoint(ta->domain, ta->info, &ta->ep, NULL)) ||
	    (rc = fi_ep_bind(ta->ep, &ta->av->fid, 0)) ||
	    (rc = fi_ep_bind(ta->ep, &ta->cq->fid, FI_TRANSMIT | FI_RECV)) ||
	    (rc = fi_enable(ta->ep))) {
		rv = fi_fail(rc, "endpoint setup");
		goto out;
	}
	if ((rv = alloc_slots(&ta->tx, cfg->slots, cfg->chunk + DG_FRAME_OVERHEAD, 0)) ||
	    (rv = alloc_slots(&ta->rx, cfg->slots, cfg->chunk + DG_FRAME_OVERHEAD, 1)) ||
	    (rv = alloc_slots(&ta->ctrl, TA_CTRL_SLOTS, TA_LAST_FRAME, 0)))
		goto out;
	ta->ntx_free = cfg->slots;
	ta->dq_cap = cfg->slots;
	ta->dq = calloc(ta->dq_cap, sizeof(*ta->dq));
	ta->early = calloc(cfg->slots, sizeof(*ta->early));
	if (!ta->dq || !ta->early) {
		rv = dg_err(DRAGON_ENOMEM, "delivery queue");
		goto out;
	}
	for (unsigned i = 0; i < cfg->slots; i++)
		if ((rv = ta_post_recv(ta, &ta->rx[i])) != DRAGON_OK)
			goto out;
	if (ta->cfg.peer_file && (rv = ta_peer_file_load(ta)) != DRAGON_OK && rv != DRAGON_ESYS)
		goto out;
	ta->last_traffic = now_ns();
	ta->peers_by = ta->last_traffic + (int64_t)(cfg->peer_wait_ms > 0 ? cfg->peer_wait_ms : 0) * 1000000;
	*out = ta;
	ta = NULL;
	rv = DRAGON_OK;
out:
	if (hints)
		fi_freeinfo(hints);
	if (ta)
		dg_ta_close(ta);
	return rv;
}

void dg_ta_close(dg_ta *ta)
{
	if (!ta)
		return;
	if (ta->ep)
		fi_close(&ta->ep->fid);
	if (ta->cq)
		fi_close(&ta->cq->fid);
	if (ta->av)
		fi_close(&ta->av->fid);
	if (ta->domain)
		fi_close(&ta->domain->fid);
	if (ta->fabric)
		fi_close(&ta->fabric->fid);
	if (ta->info)
		fi_freeinfo(ta->info);
	free_slots(ta->tx, ta->cfg.slots);
	free_slots(ta->rx, ta->cfg.slots);
	free_slots(ta->ctrl, TA_CTRL_SLOTS);
	for (size_t i = 0; i < ta->npeers; i++) {
		free(ta->peers[i].rbuf);
		ta_bulk_free(ta->peers[i].brx);
	}
	free(ta->peers);
	free(ta->dq);
	free(ta->early);
	free(ta->held_buf);
	sodium_memzero(ta->cfg.key, sizeof(ta->cfg.key));
	free(ta);
}
