/* tests/ta/chtool.c: drives channels across nodes through the public API, for the tests and benchmark B4. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dragon/dragon.h>

static const char usage[] =
	"Usage: chtool serve NAME COUNT NSENDERS     create a channel, register NAME, receive COUNT\n"
	"                                            messages and check each sender's order\n"
	"       chtool send NAME SENDER COUNT SIZE [deposited]\n"
	"       chtool hold NAME SECONDS [MSG...]    create a channel holding MSGs, register NAME\n"
	"       chtool fchan NAME outlive|owned SECONDS [MSG...]  the same, kept by local services\n"
	"       chtool recv NAME COUNT TIMEOUT_MS    receive from NAME's channel (any node), print\n"
	"                                            (CHTOOL_RECV_CAP=N: up to N bytes, checked)\n"
	"       chtool poll NAME TIMEOUT_MS          print which of in/out hold on NAME's channel\n"
	"       chtool echo MINE PEER                answer every message on MINE to PEER until END\n"
	"       chtool ping MINE PEER ITERS SIZE...  round trips per size; checks every byte; prints\n"
	"                                            one-way microseconds (median of ITERS)\n"
	"       chtool stream MINE PEER SIZE SECS    stream to PEER (an echo) for SECS; prints MB/s\n"
	"       chtool a2a PREFIX NODE NNODES SIZE SECS  all-to-all: create PREFIX<NODE>, stream SIZE\n"
	"                                            messages to every other PREFIX<m> for SECS while\n"
	"                                            receiving theirs (order checked); prints bytes\n"
	"                                            received and the wall-clock start and end\n"
	"       chtool poolwatch NAME SECONDS        create a channel (pool of 256 MiB), register NAME,\n"
	"                                            print the pool's free bytes and the channel's\n"
	"                                            message count whenever they change\n"
	"       chtool junk FILE                     write garbage into the gateway named in ta.info FILE\n"
	"env CHTOOL_WAIT=spin: echo, ping and stream busy-poll (DRAGON_WAIT_SPIN) instead of the\n"
	"channel's adaptive wait, so B4 can show both (CHTOOL_WAIT=idle: they sleep at once). CHTOOL_GAP_US=N: send pauses N us between\n"
	"messages (sporadic traffic, for the agents' CPU cost in B4).\n";

#define END "END"

/* NULL (the channel's adaptive wait) unless CHTOOL_WAIT=spin: set by main. */
static const dragon_wait_t *waitp;
static dragon_wait_mode_t chan_wait;

static int fail(const char *what, int rc)
{
	fprintf(stderr, "chtool: %s: %s: %s\n", what, dragon_strerror(rc), dragon_errmsg());
	return 1;
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int make_channel(const char *name, size_t pool_mb, dragon_pool_t **pool, dragon_channel_t **ch)
{
	dragon_pool_attr_t pa = {.size = pool_mb << 20};
	dragon_channel_attr_t ca = {.capacity = 64, .wait = chan_wait};
	dragon_channel_desc_t d;
	int rc;

	if ((rc = dragon_pool_create(&pa, pool)) || (rc = dragon_channel_create(*pool, &ca, ch)) ||
	    (rc = dragon_channel_serialize(*ch, &d)) ||
	    (rc = dragon_name_register(name, DRAGON_NAME_CHANNEL, &d, sizeof(d), 0)))
		return fail("create and register the channel", rc);
	return 0;
}

static int find_channel(const char *name, dragon_channel_t **ch)
{
	dragon_channel_desc_t d;
	size_t len = sizeof(d);
	int rc;

	if ((rc = dragon_name_lookup(name, 10000, NULL, &d, &len)))
		return fail("lookup", rc);
	if ((rc = dragon_channel_attach(&d, ch)))
		return fail("attach", rc);
	return 0;
}

static unsigned char pattern(uint64_t seq, uint32_t sender, size_t i)
{
	return (unsigned char)(seq * 31 + sender * 7 + i);
}

static int serve(const char *name, long count, int nsenders)
{
	dragon_pool_t *pool;
	dragon_channel_t *ch;
	uint64_t *next = calloc((size_t)nsenders, sizeof(*next));
	size_t cap = 1 << 20, len;
	unsigned char *buf = malloc(cap);
	int rc;

	if (!next || !buf || make_channel(name, 256, &pool, &ch))
		return 1;
	printf("ready\n");
	fflush(stdout);
	for (long n = 0; n < count; n++) {
		uint32_t sender;
		uint64_t seq;
		if ((rc = dragon_channel_recv(ch, buf, cap, &len, NULL)))
			return fail("recv", rc);
		if (len < 12) {
			fprintf(stderr, "chtool: message %ld has %zu bytes\n", n, len);
			return 1;
		}
		memcpy(&sender, buf, 4);
		memcpy(&seq, buf + 4, 8);
		if (sender >= (uint32_t)nsenders || seq != next[sender]) {
			fprintf(stderr, "chtool: message %ld: sender %u seq %" PRIu64 ", expected %" PRIu64 "\n",
				n, sender, seq, sender < (uint32_t)nsenders ? next[sender] : 0);
			return 1;
		}
		for (size_t i = 12; i < len; i++)
			if (buf[i] != pattern(seq, sender, i)) {
				fprintf(stderr, "chtool: sender %u seq %" PRIu64 ": byte %zu differs\n",
					sender, seq, i);
				return 1;
			}
		next[sender]++;
	}
	printf("received %ld in order from %d senders\n", count, nsenders);
	return 0;
}

static int sendn(const char *name, uint32_t sender, long count, size_t size, int deposited)
{
	dragon_channel_t *ch;
	dragon_wait_t w = {.timeout_us = -1, .flags = deposited ? DRAGON_WAIT_DEPOSITED : 0};
	unsigned char *buf = malloc(size < 12 ? 12 : size);
	const char *gap = getenv("CHTOOL_GAP_US"); /* sporadic traffic: a pause between sends */
	int rc;

	if (!buf || find_channel(name, &ch))
		return 1;
	if (size < 12)
		size = 12;
	for (long n = 0; n < count; n++) {
		uint64_t seq = (uint64_t)n;
		memcpy(buf, &sender, 4);
		memcpy(buf + 4, &seq, 8);
		for (size_t i = 12; i < size; i++)
			buf[i] = pattern(seq, sender, i);
		if ((rc = dragon_channel_send(ch, buf, size, &w))) {
			fprintf(stderr, "chtool: send %ld of %ld failed\n", n, count);
			return fail("send", rc);
		}
		if (gap && atoi(gap) > 0)
			usleep((useconds_t)atoi(gap));
	}
	return 0;
}

/* Put the messages in, say ready, and keep the channel alive SECONDS. */
static int fill_and_stay(dragon_channel_t *ch, int seconds, char **msgs, int n)
{
	int rc;

	for (int i = 0; i < n; i++)
		if ((rc = dragon_channel_send(ch, msgs[i], strlen(msgs[i]), NULL)))
			return fail("send", rc);
	printf("ready\n");
	fflush(stdout);
	sleep((unsigned)seconds);
	return 0;
}

static int hold(const char *name, int seconds, char **msgs, int n)
{
	dragon_pool_t *pool;
	dragon_channel_t *ch;

	if (make_channel(name, 64, &pool, &ch))
		return 1;
	return fill_and_stay(ch, seconds, msgs, n);
}

/* Watch a channel's pool: a message received in place takes its space before it is in the channel. */
static int poolwatch(const char *name, int seconds)
{
	dragon_pool_t *pool;
	dragon_channel_t *ch;
	dragon_pool_stats_t st;
	uint32_t count = 0, cap = 0;
	size_t last_free = 0;
	long last_count = -1;
	double end = now_us() + seconds * 1e6;

	if (make_channel(name, 256, &pool, &ch))
		return 1;
	dragon_pool_stats(pool, &st);
	printf("ready free=%zu\n", st.free);
	fflush(stdout);
	while (now_us() < end) {
		dragon_pool_stats(pool, &st);
		dragon_channel_count(ch, &count, &cap);
		if (st.free != last_free || (long)count != last_count) {
			printf("free=%zu count=%u\n", st.free, count);
			fflush(stdout);
			last_free = st.free;
			last_count = count;
		}
		usleep(5000);
	}
	return 0;
}

static int recvn(const char *name, long count, long timeout_ms)
{
	dragon_channel_t *ch;
	dragon_wait_t w = {.timeout_us = timeout_ms < 0 ? -1 : timeout_ms * 1000};
	char buf[4096];
	size_t len;
	int rc;

	if (find_channel(name, &ch))
		return 1;
	if (getenv("CHTOOL_RECV_CAP")) {
		/* large messages of `send`: print their size and whether every byte is as sent */
		size_t cap = strtoull(getenv("CHTOOL_RECV_CAP"), NULL, 10);
		unsigned char *big = malloc(cap ? cap : 1);
		for (long n = 0; big && n < count; n++) {
			uint32_t sender = 0;
			uint64_t seq = 0;
			size_t bad = 0;
			if ((rc = dragon_channel_recv(ch, big, cap, &len, &w)))
				return fail("recv", rc);
			if (len >= 12) {
				memcpy(&sender, big, 4);
				memcpy(&seq, big + 4, 8);
			}
			for (size_t i = 12; i < len; i++)
				bad += big[i] != pattern(seq, sender, i);
			printf("got %zu bytes from sender %u seq %" PRIu64 " %s\n", len, sender, seq,
			       len >= 12 && !bad ? "intact" : "corrupt");
			fflush(stdout);
		}
		free(big);
		return big ? 0 : 1;
	}
	for (long n = 0; n < count; n++) {
		if ((rc = dragon_channel_recv(ch, buf, sizeof(buf) - 1, &len, &w)))
			return fail("recv", rc);
		buf[len] = 0;
		printf("%s\n", buf);
		fflush(stdout);
	}
	return 0;
}

static int pollc(const char *name, long timeout_ms)
{
	dragon_channel_t *ch;
	dragon_wait_t w = {.timeout_us = timeout_ms < 0 ? -1 : timeout_ms * 1000};
	unsigned rev = 0;
	int rc;

	if (find_channel(name, &ch))
		return 1;
	rc = dragon_channel_poll(ch, DRAGON_POLLIN | DRAGON_POLLOUT, &rev, &w);
	if (rc && rc != DRAGON_ETIMEDOUT)
		return fail("poll", rc);
	printf("%s%s%s\n", rev & DRAGON_POLLIN ? "in" : "", rev == 3 ? " " : "",
	       rev & DRAGON_POLLOUT ? "out" : rev ? "" : "none");
	return 0;
}

#define BIG ((size_t)64 << 20)

static int echo(const char *mine, const char *peer)
{
	dragon_pool_t *pool;
	dragon_channel_t *in, *out;
	unsigned char *buf = malloc(BIG);
	size_t len;
	int rc;

	if (!buf || make_channel(mine, 512, &pool, &in) || find_channel(peer, &out))
		return 1;
	for (;;) {
		if ((rc = dragon_channel_recv(in, buf, BIG, &len, waitp)))
			return fail("recv", rc);
		if (len == 3 && !memcmp(buf, END, 3))
			return 0;
		if ((rc = dragon_channel_send(out, buf, len, waitp)))
			return fail("send", rc);
	}
}

/* The receiving side of a2a: until every other node's END, each sender's order checked. */
struct a2a_rx {
	dragon_channel_t *ch;
	int nnodes, rc;
	uint64_t bytes;
};

static void *a2a_recv(void *arg)
{
	struct a2a_rx *r = arg;
	uint64_t next[64] = {0};
	unsigned char *buf = malloc(BIG);
	int ends = 0;
	size_t len;

	r->rc = 1;
	while (buf && ends < r->nnodes - 1) {
		uint32_t sender;
		uint64_t seq;
		int rc = dragon_channel_recv(r->ch, buf, BIG, &len, waitp);
		if (rc) {
			fail("a2a recv", rc);
			return NULL;
		}
		if (len == 3 && !memcmp(buf, END, 3)) {
			ends++;
			continue;
		}
		memcpy(&sender, buf, 4);
		memcpy(&seq, buf + 4, 8);
		if (len < 12 || sender >= 64 || seq != next[sender]) {
			fprintf(stderr, "chtool: a2a: message of %zu bytes from %u, seq %" PRIu64 ", expected %" PRIu64 "\n",
				len, sender, seq, sender < 64 ? next[sender] : 0);
			return NULL;
		}
		next[sender]++;
		r->bytes += len;
	}
	free(buf);
	r->rc = buf ? 0 : 1;
	return NULL;
}

static double wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int a2a(const char *prefix, int node, int nnodes, size_t size, double secs)
{
	dragon_pool_t *pool;
	dragon_channel_t *out[64];
	struct a2a_rx r = {.nnodes = nnodes};
	unsigned char *buf = malloc(size < 12 ? 12 : size);
	char name[256];
	pthread_t th;
	double t0, t1;
	uint64_t seq = 0;
	uint32_t me = (uint32_t)node;
	int rc;

	if (nnodes < 2 || nnodes > 64 || node < 0 || node >= nnodes || !buf) {
		fprintf(stderr, "chtool: a2a: node %d of %d nodes (2-64)\n", node, nnodes);
		return 2;
	}
	if (size < 12)
		size = 12;
	snprintf(name, sizeof(name), "%s%d", prefix, node);
	if (make_channel(name, 256, &pool, &r.ch))
		return 1;
	for (int m = 0; m < nnodes; m++) {
		snprintf(name, sizeof(name), "%s%d", prefix, m);
		if (m != node && find_channel(name, &out[m]))
			return 1;
	}
	memcpy(buf, &me, 4);
	for (size_t i = 12; i < size; i++)
		buf[i] = (unsigned char)i;
	if (pthread_create(&th, NULL, a2a_recv, &r))
		return fail("a2a thread", DRAGON_ENOMEM);
	t0 = wall();
	/* one message to each other node in turn: every node's channel hears from all at once */
	while (wall() - t0 < secs) {
		for (int m = 0; m < nnodes; m++) {
			if (m == node)
				continue;
			memcpy(buf + 4, &seq, 8);
			if ((rc = dragon_channel_send(out[m], buf, size, waitp)))
				return fail("a2a send", rc);
		}
		seq++;
	}
	for (int m = 0; m < nnodes; m++)
		if (m != node && (rc = dragon_channel_send(out[m], END, 3, waitp)))
			return fail("a2a send END", rc);
	pthread_join(th, NULL);
	t1 = wall();
	if (r.rc)
		return 1;
	printf("a2a node %d received %" PRIu64 " bytes start %.6f end %.6f\n", node, r.bytes, t0, t1);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int ping(const char *mine, const char *peer, int iters, char **sizes, int nsizes)
{
	dragon_pool_t *pool;
	dragon_channel_t *in, *out;
	unsigned char *buf = malloc(BIG), *got = malloc(BIG);
	double *t = calloc((size_t)iters, sizeof(double));
	int rc;

	if (!buf || !got || !t || make_channel(mine, 512, &pool, &in) || find_channel(peer, &out))
		return 1;
	for (int s = 0; s < nsizes; s++) {
		size_t size = strtoull(sizes[s], NULL, 10), len;
		if (size > BIG || size == 3) {
			fprintf(stderr, "chtool: size %zu not allowed\n", size);
			return 2;
		}
		for (int i = -2; i < iters; i++) { /* two warm-up rounds */
			for (size_t k = 0; k < size; k++)
				buf[k] = pattern((uint64_t)i, (uint32_t)s, k);
			double t0 = now_us();
			if ((rc = dragon_channel_send(out, buf, size, waitp)))
				return fail("send", rc);
			if ((rc = dragon_channel_recv(in, got, BIG, &len, waitp)))
				return fail("recv", rc);
			double dt = now_us() - t0;
			if (len != size || memcmp(buf, got, size)) {
				fprintf(stderr, "chtool: size %zu round %d came back different\n", size, i);
				return 1;
			}
			if (i >= 0)
				t[i] = dt / 2;
		}
		qsort(t, (size_t)iters, sizeof(double), cmp_double);
		printf("size %zu ok one-way %.2f us\n", size, t[iters / 2]);
		fflush(stdout);
	}
	return dragon_channel_send(out, END, 3, NULL) ? fail("send", 1) : 0;
}

/* Stream SIZE-byte messages at an echo for SECONDS; it answers each, we count what returns. */
static int stream(const char *mine, const char *peer, size_t size, double seconds)
{
	dragon_pool_t *pool;
	dragon_channel_t *in, *out;
	unsigned char *buf = calloc(1, size + 16);
	size_t len;
	long sent = 0, back = 0;
	int rc, window = 8;

	if (!buf || make_channel(mine, 512, &pool, &in) || find_channel(peer, &out))
		return 1;
	double t0 = now_us(), end = t0 + seconds * 1e6;
	/* Keep `window` messages in flight; the echo's answers are what we count. */
	while (now_us() < end || back < sent) {
		if (sent - back < window && now_us() < end) {
			if ((rc = dragon_channel_send(out, buf, size, waitp)))
				return fail("send", rc);
			sent++;
			continue;
		}
		if ((rc = dragon_channel_recv(in, buf, size + 16, &len, waitp)))
			return fail("recv", rc);
		back++;
	}
	double dt = (now_us() - t0) / 1e6;
	printf("size %zu round-trip bandwidth %.1f MB/s one-way %.1f MB/s\n", size,
	       2.0 * back * size / dt / 1e6, back * size / dt / 1e6);
	return dragon_channel_send(out, END, 3, NULL) ? fail("send", 1) : 0;
}

/* A channel kept by local services: fill it, print ready, stay SECONDS, exit (owned: it goes too). */
static int fchan(const char *name, int outlive, int seconds, char **msgs, int n)
{
	dragon_channel_t *ch;
	int rc;

	if ((rc = dragon_fchannel_create(name, NULL, outlive ? DRAGON_FCHANNEL_OUTLIVE : 0, &ch)))
		return fail("create", rc);
	return fill_and_stay(ch, seconds, msgs, n);
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 3) {
		fputs(usage, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "junk")) {
		/* Garbage straight into this node's gateway: the agent must drop it and go on. */
		char line[512], desc[256] = "";
		FILE *f = fopen(argv[2], "r");
		dragon_channel_desc_t d;
		dragon_channel_t *gw;
		unsigned char junk[300];
		while (f && fgets(line, sizeof(line), f))
			if (!strncmp(line, "gateway ", 8))
				sscanf(line + 8, "%255s", desc);
		if (f)
			fclose(f);
		if ((rc = dragon_desc_parse(desc, &d)) || (rc = dragon_channel_attach(&d, &gw)))
			return fail("gateway", rc);
		for (int i = 0; i < 50; i++) {
			for (size_t k = 0; k < sizeof(junk); k++)
				junk[k] = (unsigned char)rand();
			if ((rc = dragon_channel_send(gw, junk, 1 + (size_t)i * 6, NULL)))
				return fail("send junk", rc);
		}
		return 0;
	}
	if ((rc = dragon_init()))
		return fail("dragon_init", rc);
	const char *wm = getenv("CHTOOL_WAIT");
	if (wm && !strcmp(wm, "idle")) {
		static const dragon_wait_t idle = {.timeout_us = -1, .mode = DRAGON_WAIT_IDLE};
		waitp = &idle;
		chan_wait = DRAGON_WAIT_IDLE;
	}
	if (wm && !strcmp(wm, "spin")) {
		static const dragon_wait_t spin = {.timeout_us = -1, .mode = DRAGON_WAIT_SPIN};
		waitp = &spin;
		chan_wait = DRAGON_WAIT_SPIN;
	}
	if (!strcmp(argv[1], "serve") && argc == 5)
		return serve(argv[2], atol(argv[3]), atoi(argv[4]));
	if (!strcmp(argv[1], "send") && argc >= 6)
		return sendn(argv[2], (uint32_t)atoi(argv[3]), atol(argv[4]), strtoull(argv[5], NULL, 10),
			     argc > 6 && !strcmp(argv[6], "deposited"));
	if (!strcmp(argv[1], "fchan") && argc >= 5)
		return fchan(argv[2], !strcmp(argv[3], "outlive"), atoi(argv[4]), argv + 5, argc - 5);
	if (!strcmp(argv[1], "hold") && argc >= 4)
		return hold(argv[2], atoi(argv[3]), argv + 4, argc - 4);
	if (!strcmp(argv[1], "poolwatch") && argc == 4)
		return poolwatch(argv[2], atoi(argv[3]));
	if (!strcmp(argv[1], "recv") && argc == 5)
		return recvn(argv[2], atol(argv[3]), atol(argv[4]));
	if (!strcmp(argv[1], "poll") && argc == 4)
		return pollc(argv[2], atol(argv[3]));
	if (!strcmp(argv[1], "echo") && argc == 4)
		return echo(argv[2], argv[3]);
	if (!strcmp(argv[1], "ping") && argc >= 6)
		return ping(argv[2], argv[3], atoi(argv[4]), argv + 5, argc - 5);
	if (!strcmp(argv[1], "a2a") && argc == 7)
		return a2a(argv[2], atoi(argv[3]), atoi(argv[4]), strtoull(argv[5], NULL, 10),
			   atof(argv[6]));
	if (!strcmp(argv[1], "stream") && argc == 6)
		return stream(argv[2], argv[3], strtoull(argv[4], NULL, 10), atof(argv[5]));
	fputs(usage, stderr);
	return 2;
}
