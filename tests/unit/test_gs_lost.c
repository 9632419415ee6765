/* tests/unit/test_gs_lost.c: global services when a node is lost: its members end, its owners' names and groups go, its waits are dropped, new groups avoid it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>

#include <dragon/dragon.h>
#include "gs/gs.h"

/*
 * GS hosted by a stand-in: spawns succeed at once with a puid that carries the node (bits 48..61,
 * as local services make them), and replies are kept for the test to read.
 */
struct host {
	uint32_t spawned_on[64];
	unsigned nspawned;
	uint64_t next;
	Dragon__Msg *replies[64];
	uint64_t reply_conn[64];
	unsigned nreplies;
};

#define NODE_ID(node, n) (((uint64_t)(node) << 48) | (n))
#define CONN(node, n) ((1ull << 62) | NODE_ID(node, n))
#define OWNER_OF_CONN(c) ((1ull << 63) | (c))

static int h_spawn(void *ctx, uint32_t node, const Dragon__SpawnArgs *a, uint64_t conn, uint64_t gid,
		   int rank, int size, uint64_t *puid)
{
	struct host *h = ctx;

	(void)a, (void)conn, (void)gid, (void)rank, (void)size;
	h->spawned_on[h->nspawned++ % 64] = node;
	*puid = NODE_ID(node, ++h->next);
	return DRAGON_OK;
}

static int h_signal(void *ctx, uint64_t puid, int signo)
{
	(void)ctx, (void)puid, (void)signo;
	return DRAGON_OK;
}

/* Keep a copy (the message is the caller's). */
static void h_reply(void *ctx, uint64_t conn, Dragon__Msg *m)
{
	struct host *h = ctx;
	size_t n = dragon__msg__get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);

	dragon__msg__pack(m, buf);
	h->reply_conn[h->nreplies] = conn;
	h->replies[h->nreplies++] = dragon__msg__unpack(NULL, n, buf);
	free(buf);
}

struct fx {
	struct event_base *base;
	struct host h;
	struct gs *g;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct gs_host gh = {.node_count = 3, .spawn = h_spawn, .signal = h_signal, .reply = h_reply};

	f->base = event_base_new();
	gh.ctx = &f->h;
	gh.base = f->base;
	f->g = gs_new(&gh);
	*state = f;
	return f->g ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	gs_free(f->g);
	for (unsigned i = 0; i < f->h.nreplies; i++)
		dragon__msg__free_unpacked(f->h.replies[i], NULL);
	event_base_free(f->base);
	free(f);
	return 0;
}

static Dragon__Msg *last(struct fx *f)
{
	assert_true(f->h.nreplies > 0);
	return f->h.replies[f->h.nreplies - 1];
}

/* A group of n `true` round robin, created by conn; returns its gid. */
static uint64_t group(struct fx *f, uint64_t conn, unsigned n, const char *name)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__GroupCreate c = DRAGON__GROUP_CREATE__INIT;
	Dragon__SpawnArgs a = DRAGON__SPAWN_ARGS__INIT;
	char *argv[] = {"true"};

	a.n_argv = 1;
	a.argv = argv;
	c.args = &a;
	c.nprocs = n;
	c.name = (char *)name;
	m.seq = 7;
	m.body_case = DRAGON__MSG__BODY_GROUP_CREATE;
	m.group_create = &c;
	assert_int_equal(gs_handle(f->g, conn, OWNER_OF_CONN(conn), &m), 1);
	assert_int_equal(last(f)->body_case, DRAGON__MSG__BODY_GROUP_REPLY);
	return last(f)->group_reply->gid;
}

static void wait_group(struct fx *f, uint64_t conn, uint64_t gid, uint64_t seq)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__GroupWait w = DRAGON__GROUP_WAIT__INIT;

	w.gid = gid;
	w.timeout_ms = -1;
	m.seq = seq;
	m.body_case = DRAGON__MSG__BODY_GROUP_WAIT;
	m.group_wait = &w;
	assert_int_equal(gs_handle(f->g, conn, OWNER_OF_CONN(conn), &m), 1);
}

static int lookup(struct fx *f, uint64_t conn, const char *name)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__NameLookup l = DRAGON__NAME_LOOKUP__INIT;

	l.name = (char *)name;
	m.seq = 9;
	m.body_case = DRAGON__MSG__BODY_NAME_LOOKUP;
	m.name_lookup = &l;
	assert_int_equal(gs_handle(f->g, conn, OWNER_OF_CONN(conn), &m), 1);
	return last(f)->body_case == DRAGON__MSG__BODY_ERROR ? last(f)->error->rc : 0;
}

static void a_lost_node_ends_members_releases_owners_and_is_left_out(void **state)
{
	struct fx *f = *state;
	uint64_t here = CONN(0, 1), there = CONN(2, 1), gid, theirs;
	unsigned before;

	/* One group of ours across the three nodes, one of the node to be lost (named), a name of
	 * each, and a wait of each side on our group. */
	gid = group(f, here, 3, NULL);
	assert_int_equal(f->h.spawned_on[0], 0);
	assert_int_equal(f->h.spawned_on[2], 2);
	theirs = group(f, there, 3, "theirs");
	assert_int_equal(gs_name_put(f->g, "mine", DRAGON__KIND__KIND_USER, "x", 1, OWNER_OF_CONN(here), 0),
			 DRAGON_OK);
	assert_int_equal(gs_name_put(f->g, "gone", DRAGON__KIND__KIND_USER, "x", 1, OWNER_OF_CONN(there), 0),
			 DRAGON_OK);
	assert_int_equal(gs_name_put(f->g, "kept", DRAGON__KIND__KIND_USER, "x", 1, OWNER_OF_CONN(there), 1),
			 DRAGON_OK);
	before = f->h.nreplies;
	wait_group(f, there, gid, 40);
	wait_group(f, here, gid, 41);
	assert_int_equal(f->h.nreplies, before);
	/* Our members on nodes 0 and 1 end; the wait still waits for the one on node 2. */
	gs_proc_done(f->g, NODE_ID(0, 1), 0, 0);
	gs_proc_done(f->g, NODE_ID(1, 2), 3, 0);
	assert_int_equal(f->h.nreplies, before);

	gs_node_lost(f->g, 2, DRAGON_STATUS_NODE_LOST);
	/* Our wait returned (once: the lost node's wait was dropped), worst 256 from node 2. */
	assert_int_equal(f->h.nreplies, before + 1);
	assert_int_equal(last(f)->seq, 41);
	assert_int_equal(f->h.reply_conn[f->h.nreplies - 1], here);
	assert_int_equal(last(f)->body_case, DRAGON__MSG__BODY_GROUP_WAIT_REPLY);
	assert_int_equal(last(f)->group_wait_reply->n_members, 3);
	assert_int_equal(last(f)->group_wait_reply->members[2]->status, DRAGON_STATUS_NODE_LOST);
	assert_int_equal(last(f)->group_wait_reply->members[1]->status, 3);
	/* What the lost node's owner held is gone, unless it was to outlive it; ours stays. */
	assert_int_equal(lookup(f, here, "gone"), DRAGON_ENOTFOUND);
	assert_int_equal(lookup(f, here, "theirs"), DRAGON_ENOTFOUND);
	assert_int_equal(lookup(f, here, "kept"), 0);
	assert_int_equal(lookup(f, here, "mine"), 0);
	(void)theirs;
	/* A new group of four spreads over nodes 0 and 1 only. */
	f->h.nspawned = 0;
	group(f, here, 4, NULL);
	assert_int_equal(f->h.nspawned, 4);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(f->h.spawned_on[i], i % 2);
	/* Losing it again, or a node that does not exist, changes nothing. */
	before = f->h.nreplies;
	gs_node_lost(f->g, 2, DRAGON_STATUS_NODE_LOST);
	gs_node_lost(f->g, 7, DRAGON_STATUS_NODE_LOST);
	assert_int_equal(f->h.nreplies, before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_lost_node_ends_members_releases_owners_and_is_left_out, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
