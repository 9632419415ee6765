/* tests/unit/test_link.c: sealed links between nodes' local services: joins, messages, and what they refuse. */
#include "config.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <dragon/error.h>
#include <sodium.h>

#include "ls/link.h"

/* The accepting side: a thread with its own event loop, like the head node. */
struct server {
	struct event_base *base;
	struct event *acc;
	unsigned char key[DG_LINK_KEY];
	int lfd;
	char addrs[256];
	pthread_mutex_t mu;
	int joins, msgs, closes;
	char why[256];
	uint64_t last_seq;
	struct dg_link *links[8];
	int nlinks;
	struct event *tick;
	volatile int stop;
	int watch; /* accepted links are watched (dg_link_watch): heartbeat 100 ms, timeout 2 s */
};

static void srv_msg(struct dg_link *l, const Dragon__Msg *m, void *arg)
{
	struct server *s = arg;
	Dragon__Msg r = DRAGON__MSG__INIT;
	Dragon__Error e = DRAGON__ERROR__INIT;

	pthread_mutex_lock(&s->mu);
	if (m->body_case == DRAGON__MSG__BODY_JOIN) {
		s->joins++;
		dg_link_set_node(l, m->join->node);
		r.body_case = DRAGON__MSG__BODY_OK;
		r.ok = &e;
	} else {
		/* Echo the sequence number back, so the other side sees its message arrived. */
		s->msgs++;
		s->last_seq = m->seq;
		r.seq = m->seq;
		r.body_case = DRAGON__MSG__BODY_OK;
		r.ok = &e;
	}
	pthread_mutex_unlock(&s->mu);
	dg_link_send(l, &r);
}

static void srv_closed(struct dg_link *l, const char *why, void *arg)
{
	struct server *s = arg;

	pthread_mutex_lock(&s->mu);
	s->closes++;
	snprintf(s->why, sizeof(s->why), "%s", why);
	for (int i = 0; i < s->nlinks; i++)
		if (s->links[i] == l)
			s->links[i] = NULL;
	pthread_mutex_unlock(&s->mu);
	dg_link_free(l);
}

static void srv_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct server *s = arg;
	struct dg_link_cb cb = {.msg = srv_msg, .closed = srv_closed, .arg = s};
	int fd = accept(lfd, NULL, NULL);
	struct dg_link *l;

	(void)what;
	if (fd < 0)
		return;
	l = dg_link_accept(s->base, fd, s->key, &cb);
	if (l && s->watch)
		dg_link_watch(l, 100, 2000);
	if (l && s->nlinks < 8)
		s->links[s->nlinks++] = l;
}

/* libevent is not told about threads here: the loop looks at `stop` itself. */
static void srv_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	if (s->stop)
		event_base_loopbreak(s->base);
}

static void *srv_run(void *arg)
{
	struct server *s = arg;

	event_base_dispatch(s->base);
	return NULL;
}

static pthread_t srv_thread;

static int setup(void **state)
{
	struct server *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_int_equal(sodium_init() < 0, 0);
	randombytes_buf(s->key, sizeof(s->key));
	pthread_mutex_init(&s->mu, NULL);
	assert_int_equal(dg_link_listen("127.0.0.1", &s->lfd, s->addrs, sizeof(s->addrs)), DRAGON_OK);
	assert_non_null(strstr(s->addrs, "127.0.0.1:"));
	s->base = event_base_new();
	s->acc = event_new(s->base, s->lfd, EV_READ | EV_PERSIST, srv_accept, s);
	event_add(s->acc, NULL);
	s->tick = event_new(s->base, -1, EV_PERSIST, srv_tick, s);
	{
		struct timeval tv = {0, 5000};
		event_add(s->tick, &tv);
	}
	assert_int_equal(pthread_create(&srv_thread, NULL, srv_run, s), 0);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct server *s = *state;

	s->stop = 1;
	pthread_join(srv_thread, NULL);
	event_free(s->tick);
	for (int i = 0; i < s->nlinks; i++)
		if (s->links[i])
			dg_link_free(s->links[i]);
	event_free(s->acc);
	event_base_free(s->base);
	close(s->lfd);
	free(s);
	return 0;
}

/* The connecting side's callbacks: count what came back. */
struct client {
	int oks, closes, others;
	uint64_t last_seq;
	char why[256];
};

static void cli_msg(struct dg_link *l, const Dragon__Msg *m, void *arg)
{
	struct client *c = arg;

	(void)l;
	if (m->body_case == DRAGON__MSG__BODY_OK) {
		c->oks++;
		c->last_seq = m->seq;
	} else {
		c->others++;
	}
}

static void cli_closed(struct dg_link *l, const char *why, void *arg)
{
	struct client *c = arg;

	(void)l;
	snprintf(c->why, sizeof(c->why), "%s", why);
	c->closes++;
}

static int wait_for(struct server *s, int *counter, int want)
{
	for (int i = 0; i < 400; i++) {
		int v;
		pthread_mutex_lock(&s->mu);
		v = *counter;
		pthread_mutex_unlock(&s->mu);
		if (v >= want)
			return 1;
		usleep(5000);
	}
	return 0;
}

static Dragon__Join make_join(uint32_t node)
{
	Dragon__Join j = DRAGON__JOIN__INIT;

	j.node = node;
	j.host = "test";
	j.fabric_id = "f";
	return j;
}

static void test_join_and_messages(void **state)
{
	struct server *s = *state;
	struct event_base *b = event_base_new();
	struct client c = {0};
	struct dg_link_cb cb = {.msg = cli_msg, .closed = cli_closed, .arg = &c};
	Dragon__Join j = make_join(3);
	struct dg_link *l = NULL;

	assert_int_equal(dg_link_connect(b, s->addrs, s->key, &j, 5000, &cb, &l), DRAGON_OK);
	assert_non_null(l);
	assert_int_equal(s->joins, 1);
	/* In order, each answered. */
	for (uint64_t seq = 1; seq <= 50; seq++) {
		Dragon__Msg m = DRAGON__MSG__INIT;
		Dragon__List li = DRAGON__LIST__INIT;
		m.seq = seq;
		m.body_case = DRAGON__MSG__BODY_LIST;
		m.list = &li;
		assert_int_equal(dg_link_send(l, &m), DRAGON_OK);
	}
	for (int i = 0; i < 400 && c.oks < 50; i++)
		event_base_loop(b, EVLOOP_NONBLOCK), usleep(1000);
	assert_int_equal(c.oks, 50);
	assert_int_equal(c.last_seq, 50);
	assert_int_equal(s->last_seq, 50);
	/* A message above the link's limit is refused by the sender, and the link lives on. */
	{
		Dragon__Msg m = DRAGON__MSG__INIT;
		Dragon__Output o = DRAGON__OUTPUT__INIT;
		uint8_t *big = calloc(1, DG_LINK_MSG_MAX + 1);
		o.data.data = big;
		o.data.len = DG_LINK_MSG_MAX + 1;
		m.body_case = DRAGON__MSG__BODY_OUTPUT;
		m.output = &o;
		assert_int_equal(dg_link_send(l, &m), DRAGON_ETOOBIG);
		free(big);
	}
	/* libevent closes a freed bufferevent's socket from its loop (or when the base goes). */
	dg_link_free(l);
	event_base_free(b);
	assert_true(wait_for(s, &s->closes, 1));
	assert_string_equal(s->why, "the peer closed the link");
}

/*
 * Watched links prove they are alive with heartbeats their owners never see; a peer whose loop
 * stops (a cut network looks the same: nothing arrives) fails the link once the timeout passed.
 */
static void test_heartbeats_and_silence(void **state)
{
	struct server *s = *state;
	struct event_base *b = event_base_new();
	struct client c = {0};
	struct dg_link_cb cb = {.msg = cli_msg, .closed = cli_closed, .arg = &c};
	Dragon__Join j = make_join(1);
	struct dg_link *l = NULL;
	struct timespec t0, t1;
	long elapsed = 0;

	s->watch = 1;
	assert_int_equal(dg_link_connect(b, s->addrs, s->key, &j, 5000, &cb, &l), DRAGON_OK);
	assert_int_equal(dg_link_watch(l, 2000, 2000), DRAGON_EINVAL);
	assert_int_equal(dg_link_watch(l, 100, 2000), DRAGON_OK);
	/* Many heartbeats: both sides heard each other all along. */
	for (int i = 0; i < 100; i++)
		event_base_loop(b, EVLOOP_NONBLOCK), usleep(10000);
	assert_int_equal(c.closes, 0);
	assert_int_equal(c.others, 0);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->msgs, 0);
	assert_int_equal(s->closes, 0);
	pthread_mutex_unlock(&s->mu);
	assert_true(dg_link_max_silence_ms(l) >= 90);
	assert_true(dg_link_max_silence_ms(l) < 2000);
	/* The head node's loop stops: the link fails once the timeout passed, not before (bounded
	 * loosely above: a loaded machine runs this loop late). */
	s->stop = 1;
	pthread_join(srv_thread, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (elapsed < 20000 && !c.closes) {
		event_base_loop(b, EVLOOP_NONBLOCK);
		usleep(10000);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		elapsed = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	}
	assert_int_equal(c.closes, 1);
	assert_non_null(strstr(c.why, "nothing heard for"));
	assert_non_null(strstr(c.why, "node timeout 2000 ms"));
	assert_true(elapsed >= 1800);
	assert_true(elapsed < 20000);
	dg_link_free(l);
	event_base_free(b);
	/* teardown stops the server thread again */
	s->stop = 0;
	s->watch = 0;
	assert_int_equal(pthread_create(&srv_thread, NULL, srv_run, s), 0);
}

static void test_wrong_key_is_refused(void **state)
{
	struct server *s = *state;
	struct event_base *b = event_base_new();
	struct client c = {0};
	struct dg_link_cb cb = {.msg = cli_msg, .closed = cli_closed, .arg = &c};
	unsigned char other[DG_LINK_KEY];
	Dragon__Join j = make_join(1);
	struct dg_link *l = NULL;
	int rc;

	randombytes_buf(other, sizeof(other));
	rc = dg_link_connect(b, s->addrs, other, &j, 5000, &cb, &l);
	assert_int_not_equal(rc, DRAGON_OK);
	assert_null(l);
	assert_true(wait_for(s, &s->closes, 1));
	assert_non_null(strstr(s->why, "failed authentication"));
	assert_int_equal(s->joins, 0);
	event_base_free(b);
}

/* A raw TCP connection to the server's port. */
static int dial(struct server *s)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char ip[64];
	const char *colon = strrchr(s->addrs, ':');
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	snprintf(ip, sizeof(ip), "%.*s", (int)(colon - s->addrs), s->addrs);
	inet_pton(AF_INET, ip, &sa.sin_addr);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void test_garbage_is_refused(void **state)
{
	struct server *s = *state;
	unsigned char junk[512];
	int fd = dial(s);

	randombytes_buf(junk, sizeof(junk));
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	assert_true(wait_for(s, &s->closes, 1));
	assert_non_null(strstr(s->why, "does not speak the link protocol"));
	close(fd);
}

static void test_impossible_frame_is_refused(void **state)
{
	struct server *s = *state;
	unsigned char pre[8 + crypto_secretstream_xchacha20poly1305_HEADERBYTES] = "DGLINK1";
	unsigned char hdr[4] = {0xff, 0xff, 0xff, 0x7f};
	int fd = dial(s);

	randombytes_buf(pre + 8, sizeof(pre) - 8);
	assert_int_equal(write(fd, pre, sizeof(pre)), (ssize_t)sizeof(pre));
	assert_int_equal(write(fd, hdr, sizeof(hdr)), 4);
	assert_true(wait_for(s, &s->closes, 1));
	assert_non_null(strstr(s->why, "impossible size"));
	close(fd);
}

/* A stream under a header and key we do not know cannot open its first frame. */
static void test_forged_stream_is_refused(void **state)
{
	struct server *s = *state;
	struct event_base *b = event_base_new();
	struct client c = {0};
	struct dg_link_cb cb = {.msg = cli_msg, .closed = cli_closed, .arg = &c};
	Dragon__Join j = make_join(2);
	struct dg_link *l = NULL;
	unsigned char pre[8 + crypto_secretstream_xchacha20poly1305_HEADERBYTES + 32];
	unsigned char junkframe[4 + 64 + crypto_secretstream_xchacha20poly1305_ABYTES];
	int fd;

	assert_int_equal(dg_link_connect(b, s->addrs, s->key, &j, 5000, &cb, &l), DRAGON_OK);
	dg_link_free(l);
	event_base_free(b);
	assert_true(wait_for(s, &s->closes, 1));
	/* A forged stream: a fresh header under no key we know and a frame that cannot open. */
	fd = dial(s);
	assert_int_equal(read(fd, pre, sizeof(pre)), (ssize_t)sizeof(pre));
	memcpy(pre, "DGLINK1", 8);
	randombytes_buf(pre + 8, crypto_secretstream_xchacha20poly1305_HEADERBYTES);
	randombytes_buf(junkframe, sizeof(junkframe));
	junkframe[0] = sizeof(junkframe) - 4;
	junkframe[1] = junkframe[2] = junkframe[3] = 0;
	assert_int_equal(write(fd, pre, 8 + crypto_secretstream_xchacha20poly1305_HEADERBYTES),
			 8 + crypto_secretstream_xchacha20poly1305_HEADERBYTES);
	assert_int_equal(write(fd, junkframe, sizeof(junkframe)), (ssize_t)sizeof(junkframe));
	assert_true(wait_for(s, &s->closes, 2));
	assert_non_null(strstr(s->why, "failed authentication"));
	assert_int_equal(s->joins, 1);
	close(fd);
}

/* A recorder between a node and the head node: hands the node the head node's preamble and
 * keeps what the node answers (its stream header and sealed Join). */
struct recorder {
	int lfd;
	unsigned char pre[8 + crypto_secretstream_xchacha20poly1305_HEADERBYTES + 32];
	unsigned char got[4096];
	ssize_t n;
};

static void *record(void *arg)
{
	struct recorder *r = arg;
	int fd = accept(r->lfd, NULL, NULL);
	struct timeval tv = {0, 300000};

	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, r->pre, sizeof(r->pre)) == (ssize_t)sizeof(r->pre))
		for (ssize_t k; (k = read(fd, r->got + r->n, sizeof(r->got) - (size_t)r->n)) > 0;)
			r->n += k;
	close(fd);
	return NULL;
}

/* Replaying what a node said on one connection does not get it in on another: the head node's
 * nonce differs, and the recorded Join seals the old one. */
static void test_replayed_join_is_refused(void **state)
{
	struct server *s = *state;
	struct event_base *b = event_base_new();
	struct client c = {0};
	struct dg_link_cb cb = {.msg = cli_msg, .closed = cli_closed, .arg = &c};
	Dragon__Join j = make_join(2);
	struct dg_link *l = NULL;
	struct recorder r = {0};
	char raddrs[128];
	pthread_t t;
	int a = dial(s), bfd;

	/* Connection A to the head node: the recorder relays its preamble to a node once. */
	assert_int_equal(read(a, r.pre, sizeof(r.pre)), (ssize_t)sizeof(r.pre));
	assert_int_equal(dg_link_listen("127.0.0.1", &r.lfd, raddrs, sizeof(raddrs)), DRAGON_OK);
	assert_int_equal(pthread_create(&t, NULL, record, &r), 0);
	assert_int_not_equal(dg_link_connect(b, raddrs, s->key, &j, 2000, &cb, &l), DRAGON_OK);
	pthread_join(t, NULL);
	close(r.lfd);
	assert_true(r.n > 8 + (ssize_t)crypto_secretstream_xchacha20poly1305_HEADERBYTES);
	/* On A itself the recording would be a valid join (a live relay cannot read anything);
	 * played on a new connection B it is refused and nobody joined. */
	bfd = dial(s);
	assert_int_equal(write(bfd, r.got, (size_t)r.n), r.n);
	assert_true(wait_for(s, &s->closes, 1));
	assert_non_null(strstr(s->why, "not a Join sealing our nonce"));
	assert_int_equal(s->joins, 0);
	close(bfd);
	close(a);
	event_base_free(b);
}

static void test_unreachable_head_times_out(void **state)
{
	struct event_base *b = event_base_new();
	struct client c = {0};
	struct dg_link_cb cb = {.msg = cli_msg, .closed = cli_closed, .arg = &c};
	unsigned char key[DG_LINK_KEY] = {0};
	Dragon__Join j = make_join(1);
	struct dg_link *l = NULL;
	int lfd;
	char addrs[128];

	(void)state;
	/* A port that listens but never answers: the handshake is bounded. */
	assert_int_equal(dg_link_listen("127.0.0.1", &lfd, addrs, sizeof(addrs)), DRAGON_OK);
	assert_int_equal(dg_link_connect(b, addrs, key, &j, 300, &cb, &l), DRAGON_ETIMEDOUT);
	close(lfd);
	/* No address at all, and a malformed one. */
	assert_int_not_equal(dg_link_connect(b, "", key, &j, 300, &cb, &l), DRAGON_OK);
	assert_int_equal(dg_link_connect(b, "nonsense", key, &j, 300, &cb, &l), DRAGON_EINVAL);
	event_base_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_join_and_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeats_and_silence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_impossible_frame_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_stream_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replayed_join_is_refused, setup, teardown),
		cmocka_unit_test(test_unreachable_head_times_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
