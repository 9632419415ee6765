/* runtime/ta/ta_peers.c: the libfabric layer's peers: the peer table and its file, connections on first use, liveness and dead peers. */
#include "ta/ta_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rdma/fi_domain.h>
#include <sodium.h>

struct peer *ta_peer_find(dg_ta *ta, uint32_t node)
{
	for (size_t i = 0; i < ta->npeers; i++)
		if (ta->peers[i].node == node)
			return &ta->peers[i];
	return NULL;
}

int dg_ta_add_peer(dg_ta *ta, uint32_t node, const void *addr, size_t len)
{
	struct peer *p;

	if (len == 0 || len > TA_ADDR_MAX)
		return dg_err(DRAGON_EINVAL, "endpoint address of node %u is %zu bytes (1..%d)", node,
			      len, TA_ADDR_MAX);
	p = ta_peer_find(ta, node);
	if (p && p->addrlen == len && memcmp(p->addr, addr, len) == 0)
		return DRAGON_OK;
	if (!p) {
		if (ta->npeers == ta->peers_cap) {
			size_t cap = ta->peers_cap ? 2 * ta->peers_cap : 8;
			struct peer *np = realloc(ta->peers, cap * sizeof(*np));
			if (!np)
				return dg_err(DRAGON_ENOMEM, "peer table of %zu entries", cap);
			ta->peers = np;
			ta->peers_cap = cap;
		}
		p = &ta->peers[ta->npeers++];
		memset(p, 0, sizeof(*p));
		p->node = node;
	} else if (p->inserted) {
		/* the node's agent moved: forget the old address */
		fi_av_remove(ta->av, &p->fa, 1, 0);
		p->inserted = 0;
	}
	memcpy(p->addr, addr, len);
	p->addrlen = len;
	p->dead = 0;
	return DRAGON_OK;
}

/* Read the static peer table if it changed since the last read. Lines: "<node> <hex address>". */
int ta_peer_file_load(dg_ta *ta)
{
	struct stat sb;
	FILE *f = NULL;
	char line[2 * TA_ADDR_MAX + 64];
	int rv = -1;

	if (!ta->peer_file[0])
		return DRAGON_OK;
	if (stat(ta->peer_file, &sb) != 0)
		return dg_err_sys("stat peer table %s", ta->peer_file);
	if (sb.st_mtim.tv_sec == ta->peer_mtime.tv_sec && sb.st_mtim.tv_nsec == ta->peer_mtime.tv_nsec)
		return DRAGON_OK;
	f = fopen(ta->peer_file, "r");
	if (!f)
		return dg_err_sys("open peer table %s", ta->peer_file);
	for (int lineno = 1; fgets(line, sizeof(line), f); lineno++) {
		unsigned long node;
		char *p = line, *end;
		unsigned char addr[TA_ADDR_MAX];
		size_t n = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == 0)
			continue;
		errno = 0;
		node = strtoul(p, &end, 10);
		if (errno || end == p || node > UINT32_MAX || (*end != ' ' && *end != '\t')) {
			rv = dg_err(DRAGON_EINVAL, "%s:%d: expected '<node> <hex address>'",
				    ta->peer_file, lineno);
			goto out;
		}
		p = end;
		while (*p == ' ' || *p == '\t')
			p++;
		{
			const char *hex_end = p;
			size_t got = 0;

			/* Stops at the first non-hex character; fails if the address is too long. */
			if (sodium_hex2bin(addr, TA_ADDR_MAX, p, strlen(p), NULL, &got, &hex_end) == 0)
				n = got;
			p = line + (hex_end - line);
		}
		if (n == 0 || (*p != '\n' && *p != 0 && *p != ' ')) {
			rv = dg_err(DRAGON_EINVAL, "%s:%d: bad hex endpoint address", ta->peer_file,
				    lineno);
			goto out;
		}
		if ((rv = dg_ta_add_peer(ta, (uint32_t)node, addr, n)) != DRAGON_OK)
			goto out;
	}
	ta->peer_mtime = sb.st_mtim;
	rv = DRAGON_OK;
out:
	fclose(f);
	return rv;
}

/* The peer for node, from the table (reloaded when the node is unknown). NULL if none. */
struct peer *ta_peer_get(dg_ta *ta, uint32_t node)
{
	struct peer *p = ta_peer_find(ta, node);

	if (!p && ta_peer_file_load(ta) == DRAGON_OK)
		p = ta_peer_find(ta, node);
	return p;
}

/* Connections are lazy: a peer enters the address vector, and rxm connects, on first use. */
int ta_peer_use(dg_ta *ta, struct peer *p)
{
	int rc;

	if (p->inserted)
		return DRAGON_OK;
	rc = fi_av_insert(ta->av, p->addr, 1, &p->fa, 0, NULL);
	if (rc != 1)
		return dg_err(DRAGON_EPEER, "address of node %u rejected by the provider (%d)", p->node,
			      rc);
	p->inserted = 1;
	return DRAGON_OK;
}

void ta_peer_mark_dead(dg_ta *ta, struct peer *p, const char *why)
{
	if (p->dead)
		return;
	p->dead = 1;
	fprintf(stderr, "dragon-ta[%u]: node %u is dead: %s\n", ta->cfg.node, p->node, why);
	ta_acked_all(ta, p);
	ta_bulk_abort(ta, p, "its node is dead");
	for (unsigned i = 0; i < TA_REORDER; i++)
		if (p->rx_hold[i]) {
			ta_rx_done(ta, p->rx_hold[i]);
			p->rx_hold[i] = NULL;
		}
	p->rx_seen = 0;
	free(p->rbuf);
	p->rbuf = NULL;
	p->rlen = p->rhave = 0;
}

int dg_ta_watch(dg_ta *ta, uint32_t node, int64_t since_ns)
{
	struct peer *p = ta_peer_get(ta, node);
	int64_t t = now_ns(), dead = (int64_t)ta->cfg.dead_ms * 1000000, heard;

	if (!p)
		return dg_err(DRAGON_ENOTFOUND, "node %u is not in the peer table", node);
	if (p->dead)
		return dg_err(DRAGON_EPEER, "node %u's transport agent is dead", node);
	heard = p->last_heard > since_ns ? p->last_heard : since_ns;
	if (t - heard > dead) {
		ta_peer_mark_dead(ta, p, "silent while we waited for it");
		return dg_err(DRAGON_EPEER, "node %u's transport agent silent for %d ms", node,
			      ta->cfg.dead_ms);
	}
	if (t - heard > dead / 4 && t - p->last_ping > dead / 4 &&
	    ta_peer_use(ta, p) == DRAGON_OK) {
		p->last_ping = t;
		ta_send_ctrl(ta, p, DG_FRAME_PING);
	}
	return DRAGON_OK;
}

int dg_ta_peers_known(dg_ta *ta)
{
	if (!ta->peer_file[0] || ta->peer_mtime.tv_sec || ta->peer_mtime.tv_nsec)
		return 1;
	if (ta_peer_file_load(ta) != DRAGON_OK || (!ta->peer_mtime.tv_sec && !ta->peer_mtime.tv_nsec))
		return 0;
	ta_early_retry(ta, 1); /* frames that came before the file */
	return 1;
}

int dg_ta_peer_state(dg_ta *ta, uint32_t node)
{
	struct peer *p = ta_peer_get(ta, node);

	if (!p)
		return dg_err(DRAGON_ENOTFOUND, "node %u is not in the peer table", node);
	return p->dead ? dg_err(DRAGON_EPEER, "node %u's transport agent is dead", node) : DRAGON_OK;
}


void dg_ta_dump(dg_ta *ta)
{
	unsigned busy_rx = 0, busy_ctrl = 0;

	for (unsigned i = 0; i < ta->cfg.slots; i++)
		busy_rx += ta->rx[i].busy != 0;
	for (unsigned i = 0; i < TA_CTRL_SLOTS; i++)
		busy_ctrl += ta->ctrl[i].busy != 0;
	fprintf(stderr,
		"dragon-ta[%u]: state: frames in %" PRIu64 " out %" PRIu64 " dropped malformed %" PRIu64
		" mac %" PRIu64 " replay %" PRIu64 " unknown %" PRIu64 " failed-receive %" PRIu64 ", probes %" PRIu64 "; send buffers free %u/%u,"
		" control buffers busy %u/%u, receive buffers held %u, queued for recv %u, waiting for the peer file %u; large messages in %" PRIu64 " placed %" PRIu64 " given up %" PRIu64 " coming %u\n",
		ta->cfg.node, ta->st.frames_in, ta->st.frames_out, ta->st.drop_malformed,
		ta->st.drop_mac, ta->st.drop_replay, ta->st.drop_unknown, ta->st.drop_rxerr, ta->st.probes, ta->ntx_free, ta->cfg.slots,
		busy_ctrl, TA_CTRL_SLOTS, busy_rx, ta->dq_len, ta->nearly, ta->st.bulk_in, ta->st.bulk_placed,
		ta->st.bulk_aborted, ta->nbulk);
	for (size_t i = 0; i < ta->npeers; i++) {
		struct peer *p = &ta->peers[i];
		fprintf(stderr,
			"dragon-ta[%u]: peer %u: dead %d tx_seq %" PRIu64 " tx_data %" PRIu64
			" acked %" PRIu64 " | rx_next %" PRIu64 " rx_seen %#" PRIx64 " rx_consumed %" PRIu64
			" ack_sent %" PRIu64 " ack_pending %d pong_pending %d win.top %" PRIu64
			" heard %" PRId64 " ms ago, unacked for %" PRId64 " ms\n",
			ta->cfg.node, p->node, p->dead, p->tx_seq, p->tx_data, p->acked, p->rx_next,
			p->rx_seen, p->rx_consumed, p->ack_sent, p->ack_pending, p->pong_pending,
			p->win.top, p->last_heard ? (now_ns() - p->last_heard) / 1000000 : -1,
			p->unacked_since ? (now_ns() - p->unacked_since) / 1000000 : 0);
	}
}
