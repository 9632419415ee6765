/* tests/stress/chstress.c: multi-process channel stress: order, loss, duplicates, SIGKILL mid-operation, and the kill campaign. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dragon/dragon.h>

#include "core/channel_internal.h"
#include "core/pool_internal.h"

/*
 * Usage:
 *   chstress run P C N     P producers and C consumers exchange N messages per producer
 *   chstress kill K N      K rounds: a producer and a consumer are SIGKILLed at a random moment
 *                          while survivors go on; then a clean run must still complete
 *   chstress campaign K    4 producers + 4 consumers run on; K times one of them, at random, is
 *                          SIGKILLed at a random moment and replaced. Checks exactly-once
 *                          delivery (less one message per killed consumer), that survivors go on
 *                          after each kill, that no slot stays held, and that the pool's free
 *                          space returns to its starting value; prints the counts.
 * Workers are exec'd copies of this program that attach the channel and a shared ledger by
 * their printable descriptors, as unrelated processes of a fabric would.
 * Every message: {producer, seq, len, checksum} + payload of mixed size (inline and pool).
 */
#define MAXP 1200
#define MAXSEQ 1000000
#define STOP 0xffffffffu

struct msg_hdr {
	uint32_t producer;
	uint32_t seq;
	uint32_t len;
	uint32_t sum;
};

struct ledger {
	uint32_t nids, maxseq;           /* producer ids and sequence numbers the bits cover */
	_Atomic int stop;                /* campaign: producers finish */
	_Atomic uint32_t received;       /* messages recorded by consumers */
	_Atomic uint32_t errors;
	_Atomic int64_t kill_ns;         /* campaign: when the last kill was sent ... */
	_Atomic int64_t resumed_ns;      /* ... and the first delivery a consumer recorded after it */
	_Atomic int64_t done[MAXP];      /* last seq whose send returned, per producer */
	_Atomic uint8_t seen[];          /* a bit per (producer, seq) */
};

static size_t ledger_size(uint32_t nids, uint32_t maxseq)
{
	return sizeof(struct ledger) + ((size_t)nids * maxseq + 7) / 8;
}

static _Atomic uint8_t *seen_byte(struct ledger *L, uint32_t p, uint32_t s)
{
	return &L->seen[((size_t)p * L->maxseq + s) >> 3];
}

static uint8_t seen_bit(struct ledger *L, uint32_t p, uint32_t s)
{
	return (uint8_t)(1u << (((size_t)p * L->maxseq + s) & 7));
}

static const char *self;

static uint32_t checksum(const unsigned char *p, size_t n, uint32_t seed)
{
	uint32_t h = seed * 2654435761u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static size_t size_for(uint32_t producer, uint32_t seq)
{
	uint32_t r = (producer * 7919u + seq * 104729u) % 100;

	if (r < 60)
		return sizeof(struct msg_hdr) + r; /* small, inline */
	if (r < 95)
		return 200 + r * 30;    /* medium: some inline, some through the pool */
	return 65536 + r;           /* large, through the pool */
}

static int producer(dragon_channel_t *ch, struct ledger *L, uint32_t id, uint32_t n)
{
	unsigned char *buf = malloc(70000);

	for (uint32_t seq = 0; seq < n && seq < L->maxseq && !atomic_load(&L->stop); seq++) {
		size_t len = size_for(id, seq);
		struct msg_hdr *h = (struct msg_hdr *)buf;
		for (size_t i = sizeof(*h); i < len; i++)
			buf[i] = (unsigned char)(seq + i);
		h->producer = id;
		h->seq = seq;
		h->len = (uint32_t)len;
		h->sum = checksum(buf + sizeof(*h), len - sizeof(*h), seq);
		int rv = dragon_channel_send(ch, buf, len, NULL);
		if (rv) {
			fprintf(stderr, "producer %u: send: %s: %s\n", id, dragon_strerror(rv),
				dragon_errmsg());
			return 1;
		}
		atomic_store(&L->done[id], (int64_t)seq);
	}
	free(buf);
	return 0;
}

static int consumer(dragon_channel_t *ch, struct ledger *L)
{
	unsigned char *buf = malloc(70000);
	int64_t last[MAXP];
	size_t len;

	for (int i = 0; i < MAXP; i++)
		last[i] = -1;
	for (;;) {
		int rv = dragon_channel_recv(ch, buf, 70000, &len, NULL);
		if (rv) {
			fprintf(stderr, "consumer: recv: %s: %s\n", dragon_strerror(rv),
				dragon_errmsg());
			return 1;
		}
		struct msg_hdr *h = (struct msg_hdr *)buf;
		if (len < sizeof(*h)) {
			atomic_fetch_add(&L->errors, 1);
			continue;
		}
		if (h->producer == STOP)
			break;
		if (h->producer >= L->nids || h->seq >= L->maxseq || h->len != len ||
		    h->sum != checksum(buf + sizeof(*h), len - sizeof(*h), h->seq)) {
			fprintf(stderr, "consumer: corrupt message (producer %u seq %u len %zu)\n",
				h->producer, h->seq, len);
			atomic_fetch_add(&L->errors, 1);
			continue;
		}
		if ((int64_t)h->seq <= last[h->producer]) {
			fprintf(stderr, "consumer: producer %u seq %u after %lld: out of order\n",
				h->producer, h->seq, (long long)last[h->producer]);
			atomic_fetch_add(&L->errors, 1);
		}
		last[h->producer] = h->seq;
		uint8_t bit = seen_bit(L, h->producer, h->seq);
		if (atomic_fetch_or(seen_byte(L, h->producer, h->seq), bit) & bit) {
			fprintf(stderr, "consumer: producer %u seq %u received twice\n", h->producer,
				h->seq);
			atomic_fetch_add(&L->errors, 1);
		}
		atomic_fetch_add(&L->received, 1);
		if (atomic_load_explicit(&L->resumed_ns, memory_order_relaxed) == 0) {
			/* stamped by the survivor itself: the parent's own scheduling delay is not in it */
			struct timespec ts;
			int64_t zero = 0;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			atomic_compare_exchange_strong(&L->resumed_ns, &zero,
						       (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
		}
	}
	free(buf);
	return 0;
}

static int worker(int argc, char **argv)
{
	dragon_channel_desc_t cd;
	dragon_mem_desc_t ld;
	dragon_channel_t *ch;
	dragon_mem_t lm;
	int rv;

	if (dragon_desc_parse(getenv("CHSTRESS_CH"), &cd) ||
	    dragon_desc_parse(getenv("CHSTRESS_LEDGER"), &ld)) {
		fprintf(stderr, "worker: bad descriptors: %s\n", dragon_errmsg());
		return 2;
	}
	rv = dragon_channel_attach(&cd, &ch);
	if (!rv)
		rv = dragon_mem_attach(&ld, &lm);
	if (rv) {
		fprintf(stderr, "worker: attach: %s: %s\n", dragon_strerror(rv), dragon_errmsg());
		return 2;
	}
	if (!strcmp(argv[2], "producer"))
		rv = producer(ch, lm.ptr, (uint32_t)atoi(argv[3]), (uint32_t)atoi(argv[4]));
	else
		rv = consumer(ch, lm.ptr);
	dragon_pool_detach(lm.pool);
	dragon_channel_detach(ch);
	return rv;
}

static pid_t spawn(const char *role, uint32_t id, uint32_t n)
{
	char a[16], b[16];
	pid_t pid;

	snprintf(a, sizeof(a), "%u", id);
	snprintf(b, sizeof(b), "%u", n);
	pid = fork();
	if (pid == 0) {
		execl(self, self, "worker", role, a, b, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void stop_consumers(dragon_channel_t *ch, int n)
{
	struct msg_hdr h = { .producer = STOP };

	for (int i = 0; i < n; i++)
		dragon_channel_send(ch, &h, sizeof(h), NULL);
}

static int seen(struct ledger *L, uint32_t p, uint32_t s)
{
	return (atomic_load(seen_byte(L, p, s)) & seen_bit(L, p, s)) != 0;
}

static int run(dragon_channel_t *ch, struct ledger *L, uint32_t base, int np, int nc, uint32_t n)
{
	pid_t prod[64], cons[64];
	int bad = 0;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < nc; i++)
		cons[i] = spawn("consumer", 0, 0);
	for (int i = 0; i < np; i++)
		prod[i] = spawn("producer", base + i, n);
	for (int i = 0; i < np; i++)
		bad |= reap(prod[i]) != 0;
	stop_consumers(ch, nc);
	for (int i = 0; i < nc; i++)
		bad |= reap(cons[i]) != 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (int i = 0; i < np; i++)
		for (uint32_t s = 0; s < n; s++)
			if (!seen(L, base + i, s)) {
				fprintf(stderr, "producer %u seq %u was lost\n", base + i, s);
				bad = 1;
				break;
			}
	double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("run %d+%d: %u messages in %.2f s (%.0f msg/s), %u errors\n", np, nc,
	       (unsigned)(np * n), secs, np * n / secs, atomic_load(&L->errors));
	return bad || atomic_load(&L->errors);
}

static int kill_rounds(dragon_channel_t *ch, struct ledger *L, int rounds, uint32_t n)
{
	int lost_allowed = 0, bad = 0;
	pid_t survivor = spawn("consumer", 0, 0);
	unsigned seed = (unsigned)getpid();

	for (int r = 0; r < rounds && r + 1 < (int)L->nids - 8; r++) {
		pid_t p = spawn("producer", (uint32_t)r + 1, n);
		pid_t c = spawn("consumer", 0, 0);
		usleep(200 + rand_r(&seed) % 3000);
		kill(p, SIGKILL);
		kill(c, SIGKILL);
		reap(p);
		reap(c);
		/* The killed consumer may have taken one message it never recorded. */
		lost_allowed++;
	}
	stop_consumers(ch, 1);
	if (reap(survivor) != 0)
		bad = 1;
	int lost = 0;
	for (int r = 0; r < rounds && r + 1 < (int)L->nids - 8; r++) {
		uint32_t id = (uint32_t)r + 1;
		int64_t done = atomic_load(&L->done[id]);
		for (int64_t s = 0; s <= done; s++)
			if (!seen(L, id, (uint32_t)s))
				lost++;
		/* A send may commit just before its producer died without recording it. */
		for (int64_t s = done + 2; s < L->maxseq && s < done + 64; s++)
			if (seen(L, id, (uint32_t)s)) {
				fprintf(stderr, "producer %u: seq %lld seen beyond done %lld\n", id,
					(long long)s, (long long)done);
				bad = 1;
			}
	}
	printf("kill: %d rounds, %u messages received, %d completed sends unaccounted "
	       "(allowed %d: one per killed consumer), %u errors\n",
	       rounds, atomic_load(&L->received), lost, lost_allowed, atomic_load(&L->errors));
	return bad || lost > lost_allowed || atomic_load(&L->errors);
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * The kill campaign: 4 producers and 4 consumers on one channel; K times a random one of them
 * is killed at a random moment (0-4 ms after the previous kill) and replaced at once. After
 * each kill we time how long until the consumers record another message (the survivors go
 * on), and keep the longest pause of the whole run.
 */
static int campaign(dragon_pool_t *pool, dragon_channel_t *ch, struct ledger *L, int kills,
		    size_t free_at_start)
{
	enum { NP = 4, NC = 4 };
	pid_t who[NP + NC];
	uint32_t ids[NP];
	uint32_t next_id = 0;
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	int killed_p = 0, killed_c = 0, bad = 0, slow = 0;
	double *resume = calloc((size_t)kills, sizeof(double)), longest = 0;

	for (int i = 0; i < NP; i++) {
		ids[i] = next_id++;
		who[i] = spawn("producer", ids[i], L->maxseq);
	}
	for (int i = 0; i < NC; i++)
		who[NP + i] = spawn("consumer", 0, 0);
	double t0 = now_s();
	for (int k = 0; k < kills; k++) {
		/* let it run a random while, watching for the longest pause in deliveries */
		double until = now_s() + (rand_r(&seed) % 4000) / 1e6;
		uint32_t r = atomic_load(&L->received);
		double last = now_s();
		while (now_s() < until) {
			usleep(50);
			uint32_t r2 = atomic_load(&L->received);
			double t = now_s();
			if (r2 != r) {
				r = r2;
				last = t;
			} else if (t - last > longest) {
				longest = t - last;
			}
			/* a producer that reached its last sequence number ends: replace it */
			for (int i = 0; i < NP; i++) {
				int st;
				if (waitpid(who[i], &st, WNOHANG) == who[i]) {
					if (!WIFEXITED(st) || WEXITSTATUS(st)) {
						fprintf(stderr, "producer %u failed (%d)\n", ids[i], st);
						bad = 1;
					}
					ids[i] = next_id++;
					who[i] = spawn("producer", ids[i], L->maxseq);
				}
			}
		}
		int v = rand_r(&seed) % (NP + NC);
		if (v < NP && next_id >= L->nids - 8)
			v = NP + v % NC; /* out of producer ids: kill consumers only */
		double tk = now_s();
		uint32_t before = atomic_load(&L->received);
		atomic_store(&L->kill_ns, (int64_t)(tk * 1e9));
		atomic_store(&L->resumed_ns, 0);
		kill(who[v], SIGKILL);
		reap(who[v]);
		if (v < NP) {
			killed_p++;
			ids[v] = next_id++;
			who[v] = spawn("producer", ids[v], L->maxseq);
		} else {
			killed_c++;
			who[v] = spawn("consumer", 0, 0);
		}
		/* the survivors go on: the next delivery after the kill (10 s means wedged) */
		while (atomic_load(&L->received) == before && now_s() - tk < 10)
			usleep(20);
		int64_t rns = atomic_load(&L->resumed_ns);
		resume[k] = rns ? (rns - atomic_load(&L->kill_ns)) / 1e9 : now_s() - tk;
		if (resume[k] < 0)
			resume[k] = 0;
		if (resume[k] >= 10) {
			fprintf(stderr, "campaign: no delivery for 10 s after kill %d: wedged\n", k);
			bad = 1;
			break;
		}
		if (resume[k] > 0.1) {
			slow++;
			if (getenv("CHSTRESS_VERBOSE"))
				fprintf(stderr, "campaign: kill %d (%s) took %.1f ms to resume\n", k,
					v < NP ? "producer" : "consumer", resume[k] * 1e3);
		}
	}
	double t1 = now_s();
	/* the end: producers finish their current send, then the consumers drain and stop */
	atomic_store(&L->stop, 1);
	for (int i = 0; i < NP; i++)
		bad |= reap(who[i]) != 0;
	stop_consumers(ch, NC);
	for (int i = 0; i < NC; i++)
		bad |= reap(who[NP + i]) != 0;

	/* exactly once: every completed send received, but one per killed consumer */
	long sent = 0, lost = 0, beyond = 0;
	for (uint32_t id = 0; id < next_id; id++) {
		int64_t done = atomic_load(&L->done[id]);
		sent += done + 1;
		for (int64_t q = 0; q <= done; q++)
			if (!seen(L, id, (uint32_t)q))
				lost++;
		/* a send may commit just before its producer died, unrecorded: done + 1 at most */
		for (int64_t q = done + 2; q < L->maxseq && q < done + 256; q++)
			if (seen(L, id, (uint32_t)q))
				beyond++;
	}
	struct dg_channel_audit a;
	dg_channel_audit(ch, &a);
	uint32_t count, capacity;
	dragon_channel_count(ch, &count, &capacity);
	char probe[70000];
	size_t plen;
	int left = dragon_channel_try_recv(ch, probe, sizeof(probe), &plen) == DRAGON_OK;
	uint64_t reclaimed = dg_pool_reclaim_dead(pool);
	dragon_pool_stats_t st;
	dragon_pool_stats(pool, &st);

	qsort(resume, (size_t)kills, sizeof(double), cmp_double);
	int n = kills > 0 ? kills : 1;
	printf("campaign: %d SIGKILLs (%d producers, %d consumers) in %.1f s; %u processes used the "
	       "pool\n",
	       killed_p + killed_c, killed_p, killed_c, t1 - t0, next_id + NC + killed_c);
	printf("campaign: %ld sends returned, %u messages received, %ld completed sends not "
	       "received (allowed %d: one per killed consumer), %ld beyond a producer's last, %u "
	       "duplicates/order/corruption errors\n",
	       sent, atomic_load(&L->received), lost, killed_c, beyond, atomic_load(&L->errors));
	printf("campaign: after a kill the survivors delivered again within: median %.2f ms, p99 "
	       "%.2f ms, max %.2f ms (%d over 100 ms); longest pause in deliveries %.2f ms\n",
	       resume[n / 2] * 1e3, resume[n * 99 / 100 < n ? n * 99 / 100 : n - 1] * 1e3,
	       resume[n - 1] * 1e3, slow, longest * 1e3);
	printf("campaign: slots at the end: %u empty, %u full, %u holes, %u held by live processes, "
	       "%u held by dead ones (repaired by the audit); a message left: %s\n",
	       a.empty, a.full, a.holes, a.held_live, a.repaired, left ? "yes" : "no");
	printf("campaign: pool free %zu bytes at start, %zu at the end (%llu allocations of dead "
	       "processes reclaimed)\n",
	       free_at_start, st.free, (unsigned long long)reclaimed);
	free(resume);
	if (lost > killed_c || beyond || atomic_load(&L->errors) || a.held_live || left ||
	    st.free != free_at_start)
		bad = 1;
	return bad;
}

int main(int argc, char **argv)
{
	dragon_pool_attr_t pa = { .size = 256ull << 20 };
	dragon_channel_attr_t ca = { .capacity = 128, .block_size = 1024 };
	dragon_pool_t *pool;
	dragon_channel_t *ch;
	dragon_channel_desc_t cd;
	dragon_mem_t lm;
	dragon_mem_desc_t ld;
	char s1[DRAGON_DESC_STRLEN], s2[DRAGON_DESC_STRLEN];
	uint32_t nids, maxseq;
	int rv;

	self = argv[0];
	if (argc >= 3 && !strcmp(argv[1], "worker"))
		return worker(argc, argv);
	if (argc == 5 && !strcmp(argv[1], "run")) {
		int np = atoi(argv[2]), nc = atoi(argv[3]);
		long n = atol(argv[4]);
		if (np < 1 || np > 64 || nc < 1 || nc > 64 || n < 1 || n > MAXSEQ) {
			fprintf(stderr, "run: P and C must be 1..64 and N 1..%d\n", MAXSEQ);
			return 2;
		}
		nids = 64;
		maxseq = (uint32_t)n;
	} else if (argc == 4 && !strcmp(argv[1], "kill")) {
		int k = atoi(argv[2]);
		long n = atol(argv[3]);
		if (k < 1 || k >= MAXP - 9 || n < 1 || n > MAXSEQ) {
			fprintf(stderr, "kill: K must be 1..%d and N 1..%d\n", MAXP - 10, MAXSEQ);
			return 2;
		}
		nids = (uint32_t)k + 9;
		maxseq = (uint32_t)n;
	} else if (argc == 3 && !strcmp(argv[1], "campaign")) {
		int k = atoi(argv[2]);
		if (k < 1 || k > 5000) {
			fprintf(stderr, "campaign: K must be 1..5000\n");
			return 2;
		}
		nids = MAXP;
		maxseq = 50000;
	} else {
		fprintf(stderr, "usage: %s run P C N | kill K N | campaign K\n", argv[0]);
		return 2;
	}
	if ((rv = dragon_pool_create(&pa, &pool)) || (rv = dragon_channel_create(pool, &ca, &ch)) ||
	    (rv = dragon_pool_alloc(pool, ledger_size(nids, maxseq), 0, &lm))) {
		fprintf(stderr, "setup: %s: %s\n", dragon_strerror(rv), dragon_errmsg());
		return 1;
	}
	struct ledger *L = lm.ptr;
	memset(L, 0, ledger_size(nids, maxseq));
	L->nids = nids;
	L->maxseq = maxseq;
	for (int i = 0; i < MAXP; i++)
		atomic_store(&L->done[i], -1);
	dragon_channel_serialize(ch, &cd);
	dragon_mem_serialize(&lm, &ld);
	dragon_desc_format(&cd, s1);
	dragon_desc_format(&ld, s2);
	setenv("CHSTRESS_CH", s1, 1);
	setenv("CHSTRESS_LEDGER", s2, 1);
	if (!strcmp(argv[1], "run")) {
		rv = run(ch, L, 0, atoi(argv[2]), atoi(argv[3]), maxseq);
	} else if (!strcmp(argv[1], "kill")) {
		int k = atoi(argv[2]);
		rv = kill_rounds(ch, L, k, maxseq);
		/* The channel and pool still work for everyone: a clean run after the kills. */
		if (!rv)
			rv = run(ch, L, nids - 8, 4, 4, 2000 < maxseq ? 2000 : maxseq);
		dragon_pool_stats_t st;
		dragon_pool_stats(pool, &st);
		uint64_t before = st.allocations;
		uint64_t reclaimed = dg_pool_reclaim_dead(pool);
		dragon_pool_stats(pool, &st);
		printf("pool after kills: %llu live allocations, %llu of them reclaimed from dead "
		       "processes, %llu left (channel and ledger: 2)\n",
		       (unsigned long long)before, (unsigned long long)reclaimed,
		       (unsigned long long)st.allocations);
		if (st.allocations > 2 + 2 * (uint64_t)k)
			rv = 1;
	} else {
		dragon_pool_stats_t st;
		dragon_pool_stats(pool, &st);
		rv = campaign(pool, ch, L, atoi(argv[2]), st.free);
	}
	dragon_channel_destroy(ch);
	dragon_pool_destroy(pool);
	printf("%s\n", rv ? "FAILED" : "ok");
	return rv ? 1 : 0;
}
