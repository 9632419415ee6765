/* tests/scale/scaletool.c: one task per node of a --dragon step: an all-to-all of channels (make check-scale) and a timed soak with echoes (make soak). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dragon/dragon.h>

static const char usage[] =
	"Usage: scaletool a2a TAG COUNT SIZE     every task sends COUNT messages of SIZE bytes to every\n"
	"                                        other task's channel; each checks every byte and the\n"
	"                                        order per sender\n"
	"       scaletool soak TAG SECONDS       every task streams mixed sizes (16 B to 64 KiB, every\n"
	"                                        other send deposited) to every other task's channel for\n"
	"                                        SECONDS; each receiver checks and echoes every message to\n"
	"                                        its sender, which checks the echoes; at the end 0 lost,\n"
	"                                        0 duplicated, order kept per sender\n"
	"       scaletool names TAG COUNT        task 0 registers a name; every task looks it up COUNT\n"
	"                                        times (requests GS serves on the head node); prints the\n"
	"                                        mean microseconds per lookup\n"
	"Run as the tasks of one step (SLURM_PROCID, SLURM_NTASKS); TAG makes the names unique.\n";

/* Every message starts with this header; the rest is pattern(sender, seq, i). */
struct hdr {
	uint32_t magic;
	uint32_t sender;
	uint32_t to;   /* the receiver: an echo names the peer it came back from */
	uint32_t kind; /* DATA, or END (seq is then the count sent) */
	uint64_t seq;  /* per (sender, to) */
	uint32_t len;  /* the whole message's length */
	uint32_t pad;
};
#define MAGIC 0x5343414cu
#define DATA 1u
#define END 2u
#define MAX_SIZE (64u << 10)
/* A receive that waits this long means a lost message or a wedged peer: fail loudly. */
#define STALL_US (120l * 1000 * 1000)

static int rank, ntasks;
static const char *tag;

static int fail(const char *what, int rc)
{
	fprintf(stderr, "scaletool[%d]: %s: %s: %s\n", rank, what, dragon_strerror(rc), dragon_errmsg());
	return 1;
}

/* A thread that found a fault ends the process at once (the others may be waiting on it). */
static void *thread_failed(void)
{
	fflush(stdout);
	fflush(stderr);
	_exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned char pattern(uint32_t sender, uint64_t seq, size_t i)
{
	return (unsigned char)(seq * 131 + sender * 7 + i * 13 + (i >> 8));
}

/* The soak's sizes: a fixed mix (most small, some large), the same on both ends. */
static uint32_t soak_size(uint32_t sender, uint64_t seq)
{
	static const uint32_t mix[] = {16, 100, 1000, 4096, 200, 32, 16384, 64, 65536, 512};
	uint32_t s = mix[(seq + sender) % (sizeof(mix) / sizeof(mix[0]))];
	return s < sizeof(struct hdr) ? (uint32_t)sizeof(struct hdr) : s;
}

static void fill(unsigned char *buf, uint32_t sender, uint32_t to, uint64_t seq, uint32_t kind,
		 uint32_t len)
{
	struct hdr h = {.magic = MAGIC, .sender = sender, .to = to, .seq = seq, .kind = kind, .len = len};
	memcpy(buf, &h, sizeof(h));
	for (size_t i = sizeof(h); i < len; i++)
		buf[i] = pattern(sender, seq, i);
}

/* Check one message: header sane, bytes right; *h gets its header. */
static int check(const unsigned char *buf, size_t len, struct hdr *h, const char *where)
{
	if (len < sizeof(*h)) {
		fprintf(stderr, "scaletool[%d]: %s: a message of %zu bytes\n", rank, where, len);
		return 1;
	}
	memcpy(h, buf, sizeof(*h));
	if (h->magic != MAGIC || h->len != len || h->sender >= (uint32_t)ntasks || h->to >= (uint32_t)ntasks ||
	    (h->kind != DATA && h->kind != END)) {
		fprintf(stderr, "scaletool[%d]: %s: bad header (magic %x sender %u kind %u len %u of %zu)\n",
			rank, where, h->magic, h->sender, h->kind, h->len, len);
		return 1;
	}
	for (size_t i = sizeof(*h); i < len; i++)
		if (buf[i] != pattern(h->sender, h->seq, i)) {
			fprintf(stderr, "scaletool[%d]: %s: sender %u seq %" PRIu64 ": byte %zu differs\n",
				rank, where, h->sender, h->seq, i);
			return 1;
		}
	return 0;
}

static int make_channel(const char *what, int r, dragon_channel_t **ch)
{
	dragon_pool_attr_t pa = {.size = 64u << 20};
	dragon_channel_attr_t ca = {.capacity = 64};
	dragon_channel_desc_t d;
	dragon_pool_t *pool;
	char name[200];
	int rc;

	snprintf(name, sizeof(name), "scale.%s.%s.%d", tag, what, r);
	if ((rc = dragon_pool_create(&pa, &pool)) || (rc = dragon_channel_create(pool, &ca, ch)) ||
	    (rc = dragon_channel_serialize(*ch, &d)) ||
	    (rc = dragon_name_register(name, DRAGON_NAME_CHANNEL, &d, sizeof(d), 0)))
		return fail("create and register a channel", rc);
	return 0;
}

static int find_channel(const char *what, int r, dragon_channel_t **ch)
{
	dragon_channel_desc_t d;
	size_t len = sizeof(d);
	char name[200];
	int rc;

	snprintf(name, sizeof(name), "scale.%s.%s.%d", tag, what, r);
	if ((rc = dragon_name_lookup(name, 60000, NULL, &d, &len)))
		return fail(name, rc);
	if ((rc = dragon_channel_attach(&d, ch)))
		return fail("attach", rc);
	return 0;
}

/* ---- a2a */

static dragon_channel_t *a2a_in;
static long a2a_count;

static void *a2a_recv(void *arg)
{
	uint64_t *next = calloc((size_t)ntasks, sizeof(*next));
	unsigned char *buf = malloc(MAX_SIZE);
	dragon_wait_t w = {.timeout_us = STALL_US};
	long want = a2a_count * (ntasks - 1);
	size_t len;
	int rc;

	(void)arg;
	if (!next || !buf)
		return thread_failed();
	for (long n = 0; n < want; n++) {
		struct hdr h;
		if ((rc = dragon_channel_recv(a2a_in, buf, MAX_SIZE, &len, &w))) {
			fprintf(stderr, "scaletool[%d]: received %ld of %ld\n", rank, n, want);
			return fail("recv", rc), thread_failed();
		}
		if (check(buf, len, &h, "a2a"))
			return thread_failed();
		if (h.sender == (uint32_t)rank || h.to != (uint32_t)rank || h.seq != next[h.sender]) {
			fprintf(stderr, "scaletool[%d]: from %u seq %" PRIu64 ", expected %" PRIu64 "\n", rank,
				h.sender, h.seq, h.sender == (uint32_t)rank ? 0 : next[h.sender]);
			return thread_failed();
		}
		next[h.sender]++;
	}
	free(next);
	free(buf);
	return NULL;
}

static int a2a(long count, uint32_t size)
{
	dragon_channel_t **out = calloc((size_t)ntasks, sizeof(*out));
	unsigned char *buf = malloc(size);
	pthread_t th;
	void *res;
	int rc;

	if (!out || !buf || make_channel("a2a", rank, &a2a_in))
		return 1;
	a2a_count = count;
	for (int r = 0; r < ntasks; r++)
		if (r != rank && find_channel("a2a", r, &out[r]))
			return 1;
	if (pthread_create(&th, NULL, a2a_recv, NULL))
		return fail("thread", DRAGON_ESYS);
	/* Round robin over the peers, so every node's channel is written by all at once. */
	for (long n = 0; n < count; n++)
		for (int k = 1; k < ntasks; k++) {
			int r = (rank + k) % ntasks;
			fill(buf, (uint32_t)rank, (uint32_t)r, (uint64_t)n, DATA, size);
			if ((rc = dragon_channel_send(out[r], buf, size, NULL)))
				return fail("send", rc);
		}
	pthread_join(th, &res);
	if (res)
		return 1;
	printf("a2a %d of %d: sent %ld to each of %d peers, received %ld in order, every byte checked\n",
	       rank, ntasks, count, ntasks - 1, count * (ntasks - 1));
	return 0;
}

/* ---- names: the round trip of a request GS serves (relayed to the head node from the others) */

static int names(long count)
{
	char name[200], value[64];
	size_t len;
	double t0;
	int rc;

	snprintf(name, sizeof(name), "scale.%s.name", tag);
	if (rank == 0 && (rc = dragon_name_register(name, DRAGON_NAME_USER, "v", 2, 0)))
		return fail("register", rc);
	len = sizeof(value);
	if ((rc = dragon_name_lookup(name, 60000, NULL, value, &len)))
		return fail("first lookup", rc);
	t0 = now_s();
	for (long n = 0; n < count; n++) {
		len = sizeof(value);
		if ((rc = dragon_name_lookup(name, 0, NULL, value, &len)))
			return fail("lookup", rc);
	}
	printf("names %d of %d: %ld lookups, %.1f us each\n", rank, ntasks, count, (now_s() - t0) * 1e6 / count);
	fflush(stdout);
	/* Task 0 keeps the name until the others are done (their lookups would fail without it). */
	if (rank == 0) {
		char done[200];
		snprintf(done, sizeof(done), "scale.%s.done.", tag);
		for (int r = 1; r < ntasks; r++) {
			char n2[220];
			snprintf(n2, sizeof(n2), "%s%d", done, r);
			len = sizeof(value);
			if ((rc = dragon_name_lookup(n2, 120000, NULL, value, &len)))
				return fail(n2, rc);
		}
	} else {
		char n2[220];
		snprintf(n2, sizeof(n2), "scale.%s.done.%d", tag, rank);
		if ((rc = dragon_name_register(n2, DRAGON_NAME_USER, "d", 2, DRAGON_NAME_OUTLIVE)))
			return fail("register done", rc);
	}
	return 0;
}

/* ---- soak */

static dragon_channel_t *soak_in, *soak_back, **soak_out, **soak_backs;
static uint64_t *sent_to;  /* DATA messages sent to each peer (main thread) */
static volatile int sending_done;
static long echoed, got_data, got_back;

/* Other tasks' DATA: check, echo to the sender's back channel; done at END from every peer. */
static void *soak_recv(void *arg)
{
	uint64_t *next = calloc((size_t)ntasks, sizeof(*next));
	unsigned char *buf = malloc(MAX_SIZE);
	dragon_wait_t w = {.timeout_us = STALL_US};
	int ends = 0, rc;
	size_t len;

	(void)arg;
	if (!next || !buf)
		return thread_failed();
	while (ends < ntasks - 1) {
		struct hdr h;
		if ((rc = dragon_channel_recv(soak_in, buf, MAX_SIZE, &len, &w)))
			return fail("recv (in)", rc), thread_failed();
		if (check(buf, len, &h, "in"))
			return thread_failed();
		if (h.sender == (uint32_t)rank || h.to != (uint32_t)rank) {
			fprintf(stderr, "scaletool[%d]: in: a message from %u for %u\n", rank, h.sender, h.to);
			return thread_failed();
		}
		if (h.kind == END) {
			if (h.seq != next[h.sender]) {
				fprintf(stderr, "scaletool[%d]: sender %u sent %" PRIu64 ", received %" PRIu64
					" (%s)\n", rank, h.sender, h.seq, next[h.sender],
					h.seq > next[h.sender] ? "lost" : "duplicated");
				return thread_failed();
			}
			ends++;
			continue;
		}
		if (h.seq != next[h.sender]) {
			fprintf(stderr, "scaletool[%d]: in: sender %u seq %" PRIu64 ", expected %" PRIu64 " (%s)\n",
				rank, h.sender, h.seq, next[h.sender],
				h.seq > next[h.sender] ? "lost or reordered" : "duplicated or reordered");
			return thread_failed();
		}
		next[h.sender]++;
		got_data++;
		/* The echo: the same bytes back to the sender, every other one deposited. */
		dragon_wait_t ew = {.timeout_us = STALL_US, .flags = (h.seq & 1) ? DRAGON_WAIT_DEPOSITED : 0};
		if ((rc = dragon_channel_send(soak_backs[h.sender], buf, len, &ew)))
			return fail("send (echo)", rc), thread_failed();
		echoed++;
	}
	free(next);
	free(buf);
	return NULL;
}

/* Echoes of our own DATA: in order per peer; done when every peer echoed all we sent it. Waits
 * in steps of a second so that it sees the end of sending; no progress for STALL_US fails. */
static void *soak_echoes(void *arg)
{
	uint64_t *next = calloc((size_t)ntasks, sizeof(*next));
	unsigned char *buf = malloc(MAX_SIZE);
	dragon_wait_t w = {.timeout_us = 1000 * 1000};
	double stalled = now_s();
	size_t len;
	int rc;

	(void)arg;
	if (!next || !buf)
		return thread_failed();
	for (;;) {
		int all = sending_done;
		struct hdr h;
		for (int r = 0; all && r < ntasks; r++)
			if (r != rank && next[r] != __atomic_load_n(&sent_to[r], __ATOMIC_ACQUIRE))
				all = 0;
		if (all)
			break;
		rc = dragon_channel_recv(soak_back, buf, MAX_SIZE, &len, &w);
		if (rc == DRAGON_ETIMEDOUT && now_s() - stalled < STALL_US / 1e6)
			continue;
		if (rc)
			return fail("recv (echo)", rc), thread_failed();
		stalled = now_s();
		/* An echo carries our own header: we are its sender, h.to the peer that echoed it. */
		if (check(buf, len, &h, "echo"))
			return thread_failed();
		if (h.sender != (uint32_t)rank || h.kind != DATA || h.to == (uint32_t)rank ||
		    soak_size(h.to, h.seq) != len) {
			fprintf(stderr, "scaletool[%d]: echo: not one of ours (sender %u to %u kind %u, %zu bytes)\n",
				rank, h.sender, h.to, h.kind, len);
			return thread_failed();
		}
		if (h.seq != next[h.to] || h.seq >= __atomic_load_n(&sent_to[h.to], __ATOMIC_ACQUIRE)) {
			fprintf(stderr, "scaletool[%d]: echo from %u: seq %" PRIu64 ", expected %" PRIu64 " (%s)\n",
				rank, h.to, h.seq, next[h.to],
				h.seq > next[h.to] ? "lost or reordered" : "duplicated or reordered");
			return thread_failed();
		}
		next[h.to]++;
		got_back++;
	}
	free(next);
	free(buf);
	return NULL;
}

static int soak(double seconds)
{
	unsigned char *buf = malloc(MAX_SIZE);
	pthread_t rt, et;
	void *r1, *r2;
	double t0, end, last = 0;
	uint64_t total = 0;
	int rc;

	soak_out = calloc((size_t)ntasks, sizeof(*soak_out));
	soak_backs = calloc((size_t)ntasks, sizeof(*soak_backs));
	sent_to = calloc((size_t)ntasks, sizeof(*sent_to));
	if (!buf || !soak_out || !soak_backs || !sent_to || make_channel("in", rank, &soak_in) ||
	    make_channel("back", rank, &soak_back))
		return 1;
	for (int r = 0; r < ntasks; r++)
		if (r != rank && (find_channel("in", r, &soak_out[r]) || find_channel("back", r, &soak_backs[r])))
			return 1;
	if (pthread_create(&rt, NULL, soak_recv, NULL) || pthread_create(&et, NULL, soak_echoes, NULL))
		return fail("thread", DRAGON_ESYS);
	t0 = now_s();
	end = t0 + seconds;
	while (now_s() < end) {
		for (int k = 1; k < ntasks; k++) {
			int r = (rank + k) % ntasks;
			uint64_t seq = sent_to[r];
			uint32_t size = soak_size((uint32_t)r, seq);
			dragon_wait_t w = {.timeout_us = STALL_US, .flags = (seq & 1) ? DRAGON_WAIT_DEPOSITED : 0};
			fill(buf, (uint32_t)rank, (uint32_t)r, seq, DATA, size);
			/* counted before the send: its echo can be back before the send returns */
			__atomic_store_n(&sent_to[r], seq + 1, __ATOMIC_RELEASE);
			if ((rc = dragon_channel_send(soak_out[r], buf, size, &w)))
				return fail("send", rc);
			total++;
		}
		if (now_s() - last >= 60) {
			last = now_s();
			printf("soak %d: %.0f s: sent %" PRIu64 ", received %ld, echoed %ld, echoes back %ld\n", rank,
			       last - t0, total, got_data, echoed, got_back);
			fflush(stdout);
		}
	}
	for (int r = 0; r < ntasks; r++) {
		dragon_wait_t w = {.timeout_us = STALL_US, .flags = DRAGON_WAIT_DEPOSITED};
		if (r == rank)
			continue;
		fill(buf, (uint32_t)rank, (uint32_t)r, sent_to[r], END, sizeof(struct hdr));
		if ((rc = dragon_channel_send(soak_out[r], buf, sizeof(struct hdr), &w)))
			return fail("send (end)", rc);
	}
	sending_done = 1;
	pthread_join(rt, &r1);
	pthread_join(et, &r2);
	if (r1 || r2)
		return 1;
	printf("soak %d of %d: %.0f s, sent %" PRIu64 " (each peer's in order), received %ld from %d peers "
	       "in order, echoed %ld, all %" PRIu64 " echoes back in order: 0 lost, 0 duplicated\n",
	       rank, ntasks, now_s() - t0, total, got_data, ntasks - 1, echoed, (uint64_t)got_back);
	return (uint64_t)got_back == total ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *p = getenv("SLURM_PROCID"), *n = getenv("SLURM_NTASKS");
	int rc, rv;

	if (argc != 5 && !(argc == 4 && (!strcmp(argv[1], "soak") || !strcmp(argv[1], "names")))) {
		fputs(usage, stderr);
		return 2;
	}
	if (!p || !n || (ntasks = atoi(n)) < 2 || (rank = atoi(p)) < 0 || rank >= ntasks) {
		fprintf(stderr, "scaletool: run it as the tasks of a step of 2 or more (SLURM_PROCID, SLURM_NTASKS)\n");
		return 2;
	}
	tag = argv[2];
	if ((rc = dragon_init()))
		return fail("dragon_init", rc);
	if (!strcmp(argv[1], "a2a")) {
		long count = atol(argv[3]);
		long size = atol(argv[4]);
		if (count < 1 || size < (long)sizeof(struct hdr) || size > (long)MAX_SIZE) {
			fprintf(stderr, "scaletool: a2a COUNT >= 1, SIZE %zu..%u\n", sizeof(struct hdr), MAX_SIZE);
			return 2;
		}
		rv = a2a(count, (uint32_t)size);
	} else if (!strcmp(argv[1], "names")) {
		long count = atol(argv[3]);
		if (count < 1) {
			fprintf(stderr, "scaletool: names COUNT >= 1\n");
			return 2;
		}
		rv = names(count);
	} else if (!strcmp(argv[1], "soak")) {
		double s = atof(argv[3]);
		if (s <= 0) {
			fprintf(stderr, "scaletool: soak SECONDS > 0\n");
			return 2;
		}
		rv = soak(s);
	} else {
		fputs(usage, stderr);
		return 2;
	}
	fflush(stdout);
	dragon_finalize();
	return rv;
}
