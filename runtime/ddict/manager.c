/* runtime/ddict/manager.c: dragon-ddict-manager, one dictionary manager: its shard in a pool of its node, requests from its channel. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ddict/dd.h"

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Reply channels this manager sent to, kept attached (a client sends many requests). */
#define CACHE 256
struct rcache {
	unsigned char desc[CACHE][DRAGON_DESC_SIZE];
	dragon_channel_t *ch[CACHE];
	unsigned next;
};

static void reply(void *arg, const unsigned char *desc, const void *msg, size_t len)
{
	struct rcache *c = arg;
	dragon_wait_t w = { 2000000, DRAGON_WAIT_DEFAULT, 0 };
	unsigned i;
	int rc;

	for (i = 0; i < CACHE; i++)
		if (c->ch[i] && !memcmp(c->desc[i], desc, DRAGON_DESC_SIZE))
			break;
	if (i == CACHE) {
		i = c->next++ % CACHE;
		if (c->ch[i])
			dragon_channel_detach(c->ch[i]);
		c->ch[i] = NULL;
		if (dragon_channel_attach((const dragon_channel_desc_t *)desc, &c->ch[i])) {
			fprintf(stderr, "dragon-ddict: cannot reach a client's reply channel: %s\n",
				dragon_errmsg());
			return;
		}
		memcpy(c->desc[i], desc, DRAGON_DESC_SIZE);
	}
	/* Bounded: a client that died with a full reply channel must not stop the manager. */
	rc = dragon_channel_send(c->ch[i], msg, len, &w);
	if (rc) {
		fprintf(stderr, "dragon-ddict: reply of %zu bytes not delivered: %s\n", len,
			dragon_errmsg());
		dragon_channel_detach(c->ch[i]);
		c->ch[i] = NULL;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: dragon-ddict-manager --id HEX --managers N --budget BYTES --base INDEX\n"
			"(started by dragon_ddict_create as a group; its rank is its index)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "id", 1, NULL, 'i' },
					      { "managers", 1, NULL, 'm' },
					      { "budget", 1, NULL, 'b' },
					      { "base", 1, NULL, 'B' },
					      { NULL, 0, NULL, 0 } };
	uint64_t id = 0, budget = 0;
	unsigned n = 0, base = 0, index;
	int c, rc;
	struct dd_server s;
	static struct rcache cache;
	dragon_pool_t *pool;
	dragon_channel_t *req;
	dragon_pool_attr_t pa = { 0 };
	dragon_channel_attr_t ca = { 256, 512, DRAGON_WAIT_ADAPTIVE };
	struct dd_minfo info;
	char name[96];

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'i')
			id = strtoull(optarg, NULL, 16);
		else if (c == 'm')
			n = (unsigned)strtoul(optarg, NULL, 10);
		else if (c == 'b')
			budget = strtoull(optarg, NULL, 10);
		else if (c == 'B')
			base = (unsigned)strtoul(optarg, NULL, 10);
		else
			usage();
	}
	if (!id || !n || !budget || dragon_group_rank() < 0)
		usage();
	/* one group per node: the node's first index, plus the rank in the group */
	index = base + (unsigned)dragon_group_rank();
	if (index >= n)
		usage();
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	if ((rc = dragon_init())) {
		fprintf(stderr, "dragon-ddict manager %u: dragon_init: %s\n", index, dragon_errmsg());
		return 1;
	}
	memset(&s, 0, sizeof(s));
	s.node = dragon_node_index();
	snprintf(s.name, sizeof(s.name), "manager %u (node %u)", index, s.node);
	/* Room for the budget, the table (8 bytes per key of at least 64), and values in transit. */
	pa.size = budget + budget / 4 + (8u << 20);
	if ((rc = dragon_pool_create(&pa, &pool)) ||
	    (rc = dd_shard_create(pool, budget, index, n, &s.shard)) ||
	    (rc = dragon_fchannel_create(NULL, &ca, 0, &req))) {
		fprintf(stderr, "dragon-ddict %s: %s\n", s.name, dragon_errmsg());
		return 1;
	}
	s.trusted = 1;
	s.reply = reply;
	s.reply_arg = &cache;
	memset(&info, 0, sizeof(info));
	info.magic = DD_MINFO_MAGIC;
	info.index = index;
	info.node = s.node;
	info.pid = (uint32_t)getpid();
	dragon_channel_serialize(req, (dragon_channel_desc_t *)info.chan);
	dragon_mem_serialize(&s.shard.hdr_mem, (dragon_mem_desc_t *)info.hdr);
	dd_manager_name(id, index, name, sizeof(name));
	/* Registered last: whoever finds it finds a manager that serves. */
	if ((rc = dragon_name_register(name, DRAGON_NAME_USER, &info, sizeof(info), 0))) {
		fprintf(stderr, "dragon-ddict %s: register %s: %s\n", s.name, name, dragon_errmsg());
		return 1;
	}
	/*
	 * Poll while busy, sleep when idle (like the transport agent): for spin_us after a request
	 * the manager polls its channel, yielding the core between looks (spinning without yielding
	 * starved the clients and agents it waits for when they outnumber the cores), so that a client whose next request comes a little later
	 * (it was copying a large value) does not pay a futex wake-up of the manager (20-45 us on a
	 * VM); then it sleeps in slices that also time out waiters.
	 */
	const char *sp = getenv("DRAGON_DDICT_SPIN_US");
	long spin_us = sp && *sp ? atol(sp) : 2000;
	int64_t last = 0;
	while (!s.stop && !stopping) {
		long next = dd_serve_expire(&s);
		long slice = next >= 0 && next < 100 ? next : 100;
		int64_t idle_us = (dd_now_ms() - last) * 1000;
		dragon_wait_t w = { slice * 1000, DRAGON_WAIT_DEFAULT, 0 };
		dragon_mem_t m;

		if (idle_us < spin_us) {
			/* a look, then the core to whoever else runs (clients, transport agents) */
			w.timeout_us = 0;
			rc = dragon_channel_recv_mem(req, &m, &w);
			if (rc == DRAGON_EAGAIN || rc == DRAGON_ETIMEDOUT) {
				sched_yield();
				continue;
			}
		} else {
			rc = dragon_channel_recv_mem(req, &m, &w);
		}
		if (rc == DRAGON_ETIMEDOUT || rc == DRAGON_EAGAIN)
			continue;
		last = dd_now_ms();
		if (rc) {
			fprintf(stderr, "dragon-ddict %s: request channel: %s\n", s.name, dragon_errmsg());
			break;
		}
		dd_serve(&s, m.ptr, m.size);
		dragon_pool_free(&m);
	}
	dragon_name_remove(name);
	dragon_fchannel_destroy(req);
	dragon_pool_destroy(pool);
	dragon_finalize();
	return 0;
}
