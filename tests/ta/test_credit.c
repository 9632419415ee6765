/* tests/ta/test_credit.c: streams between two real endpoints (tcp;ofi_rxm on 127.0.0.1) must not stall when control frames are lost or refused: credit comes back, no sequence hole. */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/err.h"
#include "ta/ta.h"

/*
 * Found while chasing stalls of tests/ta/channels.bats under load (a million buffered sends from
 * node 1 to node 0): the receiving agent had consumed every frame and sent its ACKs, the last ones
 * never arrived (there, the agents' TCP connection had been black-holed by a bridge that went
 * away), and the sender, without credit, waited with nothing in the protocol asking again.
 *
 * Case "ack-lost": every ACK frame of the receiver is lost (dg_ta_test_drop). Before the fix the
 * sender stops after `window` (16) messages; with it, the silent peer is probed (PING, answered
 * by a PONG that carries the ack) and the stream goes on.
 *
 * Case "ack-refused": the provider refuses (EAGAIN) the receiver's first three ACK posts
 * (dg_ta_test_busy); then the receiver answers with a stream of its own. Before the fix a refused
 * frame kept its sequence number (a hole the other side's reorder window never passes: every
 * later frame of that node held for good) and its ack counted as sent (a credit never returned).
 *
 * Each node runs in a thread of its own, as an agent in its own process would; every message is
 * checked (sender, order, bytes).
 */

#define COUNT 200
#define SIZE 40
#define DEADLINE_S 20

struct node {
	dg_ta *ta;
	uint32_t id, port;
	long quota, expect; /* messages to send to the other node, and to receive from it */
	int answer;         /* send only once everything expected came (so ACK frames must carry the acks) */
	long sent, got;
	int bad;
};

static _Atomic int finished; /* nodes that sent and received all theirs */
static int64_t deadline;

static void *run_node(void *arg)
{
	struct node *n = arg;
	unsigned char msg[SIZE];
	size_t off = 0;
	int done = 0;

	/* Buffered sends as the agent makes them (never waiting, credit permitting), receiving in
	 * between; once done, keep answering the other node until it is done too. */
	while (atomic_load(&finished) < 2 && dg_ta_now() < deadline && !n->bad) {
		struct dg_ta_msg m;
		int rc, sending = n->sent < n->quota && (!n->answer || n->got == n->expect);

		if (sending) {
			memset(msg, (int)((n->sent + n->id) & 0xff), sizeof(msg));
			memcpy(msg, &n->sent, sizeof(n->sent));
			rc = dg_ta_send_nb(n->ta, 1 - n->id, n->port, msg, sizeof(msg), &off, NULL);
			if (rc == DRAGON_OK) {
				n->sent++;
				off = 0;
			} else if (rc != DRAGON_EAGAIN) {
				fprintf(stderr, "FAIL: node %u: send %ld: %s\n", n->id, n->sent,
					dragon_errmsg());
				n->bad = 1;
				break;
			}
		}
		rc = dg_ta_recv(n->ta, sending ? 0 : 5, &m);
		if (rc == DRAGON_OK) {
			long seq = -1;
			if (m.len >= sizeof(seq))
				memcpy(&seq, m.data, sizeof(seq));
			if (m.len != SIZE || m.src != 1 - n->id || m.port != 1 - n->id + 7 ||
			    seq != n->got ||
			    m.data[SIZE - 1] != (unsigned char)((n->got + 1 - n->id) & 0xff)) {
				fprintf(stderr, "FAIL: node %u: message %ld: %zu bytes from %u port %u "
						"carrying %ld\n",
					n->id, n->got, m.len, m.src, m.port, seq);
				n->bad = 1;
				break;
			}
			n->got++;
		}
		if (!done && n->sent == n->quota && n->got == n->expect) {
			done = 1;
			atomic_fetch_add(&finished, 1);
		}
	}
	return NULL;
}

static int open_node(uint32_t id, const unsigned char *key, dg_ta **out)
{
	struct dg_ta_config cfg;

	dg_ta_config_init(&cfg);
	cfg.node = id;
	cfg.bind = "127.0.0.1";
	cfg.peer_file = NULL;
	cfg.dead_ms = 60000; /* never silent this long: no "dead peer" way out of a stall */
	cfg.spin_us = 0;
	memcpy(cfg.key, key, DG_FRAME_KEY);
	return dg_ta_open(&cfg, out);
}

static int introduce(dg_ta *a, dg_ta *b, uint32_t bnode)
{
	unsigned char addr[256];
	size_t len = sizeof(addr);
	int rc = dg_ta_getname(b, addr, &len);

	return rc ? rc : dg_ta_add_peer(a, bnode, addr, len);
}

/* Stream quota0 messages from node 0 to node 1 and quota1 back, with fault() applied to node 1. */
static int run_case(const char *name, long quota0, long quota1, void (*fault)(dg_ta *))
{
	unsigned char key[DG_FRAME_KEY];
	struct node n[2] = {{.id = 0, .port = 7, .quota = quota0, .expect = quota1},
			    {.id = 1, .port = 8, .quota = quota1, .expect = quota0, .answer = 1}};
	pthread_t th[2];
	struct dg_ta_stats st[2];
	int rc, ok;
	int64_t t0 = dg_ta_now();

	randombytes_buf(key, sizeof(key));
	if ((rc = open_node(0, key, &n[0].ta)) || (rc = open_node(1, key, &n[1].ta))) {
		/* no tcp;ofi_rxm here (or no loopback): nothing to test */
		fprintf(stderr, "SKIP: %s\n", dragon_errmsg());
		return 77;
	}
	if (introduce(n[0].ta, n[1].ta, 1) || introduce(n[1].ta, n[0].ta, 0)) {
		fprintf(stderr, "FAIL: peers: %s\n", dragon_errmsg());
		return 1;
	}
	fault(n[1].ta);
	atomic_store(&finished, 0);
	deadline = dg_ta_now() + (int64_t)DEADLINE_S * 1000000000;
	for (int i = 0; i < 2; i++)
		if (pthread_create(&th[i], NULL, run_node, &n[i])) {
			fprintf(stderr, "FAIL: thread\n");
			return 1;
		}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++)
		dg_ta_get_stats(n[i].ta, &st[i]);
	ok = !n[0].bad && !n[1].bad && n[0].got == quota1 && n[1].got == quota0;
	printf("%s %s (%.2f s): node 0 sent %ld received %ld, node 1 sent %ld received %ld; probes %" PRIu64
	       " and %" PRIu64 ", frames dropped as unordered/replayed %" PRIu64 " and %" PRIu64 "\n",
	       ok ? "ok" : "FAIL", name, (dg_ta_now() - t0) / 1e9, n[0].sent, n[0].got, n[1].sent, n[1].got, st[0].probes,
	       st[1].probes, st[0].drop_malformed + st[0].drop_replay,
	       st[1].drop_malformed + st[1].drop_replay);
	if (!ok)
		fprintf(stderr, "FAIL: %s: the streams stalled for %d s (window 16)\n", name,
			DEADLINE_S);
	dg_ta_close(n[0].ta);
	dg_ta_close(n[1].ta);
	return ok ? 0 : 1;
}

static void no_fault(dg_ta *ta)
{
	(void)ta;
}

static void lose_acks(dg_ta *ta)
{
	dg_ta_test_drop(ta, DG_FRAME_ACK, UINT_MAX);
}

static void refuse_acks(dg_ta *ta)
{
	dg_ta_test_busy(ta, DG_FRAME_ACK, 3);
}

int main(void)
{
	int rc;

	if (sodium_init() < 0)
		return 99;
	if ((rc = run_case("clean", COUNT, COUNT, no_fault)))
		return rc;
	/* node 1 sends nothing back: no frame of its own carries its ack either */
	if ((rc = run_case("ack-lost", COUNT, 0, lose_acks)))
		return rc;
	return run_case("ack-refused", COUNT, COUNT, refuse_acks);
}
