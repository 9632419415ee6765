/* tests/ta/ta_peer.c: a transport agent driven from the command line, for the namespace tests and B4. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ta/ta.h"

#define PORT_DATA 1
#define PORT_STATS 2 /* ask the echo side for its drop counters */
#define PORT_DONE 3  /* end of a stream: the sink answers with what it saw */

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int die(const char *what, int rc)
{
	fprintf(stderr, "ta_peer: %s: %s: %s\n", what, dragon_strerror(rc), dragon_errmsg());
	return 1;
}

static void fill(unsigned char *b, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seed * 131 + i * 7);
}

static int check(const unsigned char *b, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != (unsigned char)(seed * 131 + i * 7))
			return -1;
	return 0;
}

/* Echo every DATA message back; answer STATS; a sink checks each sender's order (index in the first 8 bytes). */
#define MAX_SRC 1024
static uint64_t expect[MAX_SRC], bad[MAX_SRC];

static int serve(dg_ta *ta, int echo)
{
	struct dg_ta_msg m;
	char reply[256];

	while (!stop) {
		int rc = dg_ta_recv(ta, 200, &m);
		if (rc == DRAGON_ETIMEDOUT)
			continue;
		if (rc)
			return die("recv", rc);
		uint32_t s = m.src % MAX_SRC;
		if (m.port == PORT_STATS) {
			struct dg_ta_stats st;
			dg_ta_get_stats(ta, &st);
			int n = snprintf(reply, sizeof(reply),
					 "malformed=%" PRIu64 " mac=%" PRIu64 " replay=%" PRIu64
					 " unknown=%" PRIu64,
					 st.drop_malformed, st.drop_mac, st.drop_replay, st.drop_unknown);
			dg_ta_send(ta, m.src, PORT_STATS, reply, (size_t)n + 1, DG_TA_BUFFERED);
		} else if (m.port == PORT_DONE) {
			int n = snprintf(reply, sizeof(reply), "got=%" PRIu64 " bad=%" PRIu64, expect[s],
					 bad[s]);
			expect[s] = bad[s] = 0;
			dg_ta_send(ta, m.src, PORT_DONE, reply, (size_t)n + 1, DG_TA_BUFFERED);
		} else if (echo) {
			rc = dg_ta_send(ta, m.src, m.port, m.data, m.len, DG_TA_BUFFERED);
			if (rc && rc != DRAGON_EPEER)
				return die("echo", rc);
		} else {
			uint64_t idx = UINT64_MAX;
			if (m.len >= 8)
				memcpy(&idx, m.data, 8);
			if (idx != expect[s])
				bad[s]++;
			expect[s]++;
		}
	}
	return 0;
}

static int ask(dg_ta *ta, uint32_t to, uint32_t port, char *out, size_t cap)
{
	struct dg_ta_msg m;
	int rc = dg_ta_send(ta, to, port, "?", 2, DG_TA_BUFFERED);
	if (rc)
		return rc;
	do {
		if ((rc = dg_ta_recv(ta, 10000, &m)))
			return rc;
	} while (m.port != port);
	snprintf(out, cap, "%.*s", (int)m.len, (const char *)m.data);
	return 0;
}

static int pingpong(dg_ta *ta, uint32_t to, size_t min, size_t max, long iters, int csv)
{
	unsigned char *buf = malloc(max ? max : 1);
	struct dg_ta_msg m;

	if (!buf)
		return 1;
	for (size_t sz = min;; sz = sz ? sz * 2 : 1) {
		if (sz > max)
			sz = max;
		long n = sz >= (1 << 20) ? (iters / 16 > 2 ? iters / 16 : 2) : iters;
		double t0 = 0;
		for (long i = -(n / 10 + 1); i < n; i++) { /* negative i: warm-up */
			if (i == 0)
				t0 = now_s();
			fill(buf, sz, (uint64_t)i + sz);
			int rc = dg_ta_send(ta, to, PORT_DATA, buf, sz, DG_TA_BUFFERED);
			if (rc)
				return die("send", rc);
			if ((rc = dg_ta_recv(ta, 30000, &m)))
				return die("recv", rc);
			if (m.len != sz || check(m.data, sz, (uint64_t)i + sz)) {
				fprintf(stderr, "ta_peer: echo of %zu bytes came back as %zu wrong bytes\n",
					sz, m.len);
				return 1;
			}
		}
		double us = (now_s() - t0) / n / 2 * 1e6;
		if (csv)
			printf("%zu,%.2f\n", sz, us);
		else
			printf("pingpong %zu bytes: %.2f us one-way (%ld round trips, verified)\n", sz, us, n);
		fflush(stdout);
		if (sz == max)
			break;
	}
	free(buf);
	return 0;
}

static int stream(dg_ta *ta, uint32_t to, long count, size_t size, int deposited)
{
	unsigned char *buf = calloc(1, size < 8 ? 8 : size);
	char reply[256];
	double t0 = now_s();
	int rc;

	for (long i = 0; i < count; i++) {
		uint64_t idx = (uint64_t)i;
		memcpy(buf, &idx, 8);
		rc = dg_ta_send(ta, to, PORT_DATA, buf, size < 8 ? 8 : size,
				deposited || i == count - 1 ? DG_TA_DEPOSITED : DG_TA_BUFFERED);
		if (rc) {
			fprintf(stderr, "ta_peer: stream stopped after %ld of %ld messages\n", i, count);
			return die("send", rc);
		}
	}
	double dt = now_s() - t0;
	if ((rc = ask(ta, to, PORT_DONE, reply, sizeof(reply))))
		return die("done", rc);
	printf("stream %ld x %zu bytes: %.1f MB/s, %.0f msg/s; sink %s\n", count, size,
	       count * (double)size / dt / 1e6, count / dt, reply);
	free(buf);
	return 0;
}

/* Forged, replayed, malformed and unknown-peer frames; the agent must drop them and keep serving. */
static int forge(dg_ta *ta, const unsigned char *key, uint32_t self, uint32_t to)
{
	unsigned char f[4096];
	size_t n = sizeof(f);
	char reply[256];
	struct dg_frame_hdr h = {.type = DG_FRAME_DATA, .src = self, .dst = to, .epoch = 77,
				 .seq = 1, .port = PORT_DATA, .len = 4, .msg_len = 4};
	unsigned char badkey[DG_FRAME_KEY];
	int rc;

	if ((rc = ask(ta, to, PORT_STATS, reply, sizeof(reply))))
		return die("stats", rc);
	if ((rc = dg_ta_last_frame(ta, f, &n)))
		return die("last frame", rc);
	/* 1. replay of a frame the agent already accepted */
	if ((rc = dg_ta_send_raw(ta, to, f, n)))
		return die("raw", rc);
	/* 2. forged: right structure, MAC under another key */
	memcpy(badkey, key, sizeof(badkey));
	badkey[0] ^= 1;
	dg_frame_encode(badkey, &h, "evil", f, &n);
	if ((rc = dg_ta_send_raw(ta, to, f, n)))
		return die("raw", rc);
	/* 3. tampered: valid frame with one payload bit flipped */
	h.seq = 1000;
	dg_frame_encode(key, &h, "evil", f, &n);
	f[DG_FRAME_HDR] ^= 1;
	if ((rc = dg_ta_send_raw(ta, to, f, n)))
		return die("raw", rc);
	/* 4. malformed: garbage */
	randombytes_buf(f, 100);
	if ((rc = dg_ta_send_raw(ta, to, f, 100)))
		return die("raw", rc);
	/* 5. a node the peer table does not know, with a valid MAC */
	h.src = 4242;
	h.seq = 1;
	dg_frame_encode(key, &h, "evil", f, &n);
	if ((rc = dg_ta_send_raw(ta, to, f, n)))
		return die("raw", rc);
	if ((rc = ask(ta, to, PORT_STATS, reply, sizeof(reply))))
		return die("stats after forgeries", rc);
	printf("forge: agent still serving; %s\n", reply);
	return 0;
}

static int hex_key(const char *s, unsigned char *key)
{
	size_t n;
	if (sodium_hex2bin(key, DG_FRAME_KEY, s, strlen(s), NULL, &n, NULL) || n != DG_FRAME_KEY)
		return -1;
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ta_peer --node N --key HEX --peers FILE [--bind IP:PORT] [--addr-out FILE]\n"
		"               [--chunk BYTES] [--window N] [--dead-ms MS] [--wait-peers N]\n"
		"               echo | sink | pingpong TO MIN MAX ITERS [csv] |\n"
		"               stream TO COUNT SIZE [deposited] | forge TO\n");
}

int main(int argc, char **argv)
{
	struct dg_ta_config cfg;
	const char *addr_out = NULL, *keyhex = getenv("DRAGON_TA_KEY");
	dg_ta *ta = NULL;
	int c, rc, rv = 1, wait_peers = 0;
	static const struct option opts[] = {
		{"node", 1, 0, 'n'}, {"key", 1, 0, 'k'}, {"peers", 1, 0, 'p'}, {"bind", 1, 0, 'b'},
		{"addr-out", 1, 0, 'a'}, {"chunk", 1, 0, 'c'}, {"window", 1, 0, 'w'},
		{"dead-ms", 1, 0, 'd'}, {"wait-peers", 1, 0, 'W'}, {0, 0, 0, 0}};

	dg_ta_config_init(&cfg);
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'n': cfg.node = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'k': keyhex = optarg; break;
		case 'p': cfg.peer_file = optarg; break;
		case 'b': cfg.bind = optarg; break;
		case 'a': addr_out = optarg; break;
		case 'c': cfg.chunk = strtoul(optarg, NULL, 0); break;
		case 'w': cfg.window = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'd': cfg.dead_ms = atoi(optarg); break;
		case 'W': wait_peers = atoi(optarg); break;
		default: usage(); return 2;
		}
	}
	if (optind >= argc || !keyhex || hex_key(keyhex, cfg.key)) {
		usage();
		return 2;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	if ((rc = dg_ta_open(&cfg, &ta)))
		return die("open", rc);
	if (addr_out) {
		unsigned char a[256];
		char hex[513], tmp[4096];
		size_t n = sizeof(a);
		FILE *f;
		if ((rc = dg_ta_getname(ta, a, &n)))
			return die("getname", rc);
		sodium_bin2hex(hex, sizeof(hex), a, n);
		snprintf(tmp, sizeof(tmp), "%s.tmp", addr_out);
		if (!(f = fopen(tmp, "w")) || fprintf(f, "%u %s\n", cfg.node, hex) < 0 || fclose(f) ||
		    rename(tmp, addr_out)) {
			perror(addr_out);
			return 1;
		}
	}
	/* the bootstrap: every agent's address is in the peer table before any traffic */
	for (int i = 0; wait_peers > 0; i++) {
		FILE *f = cfg.peer_file ? fopen(cfg.peer_file, "r") : NULL;
		int lines = 0;
		char l[1024];
		while (f && fgets(l, sizeof(l), f))
			lines++;
		if (f)
			fclose(f);
		if (lines >= wait_peers)
			break;
		if (i > 2000) {
			fprintf(stderr, "ta_peer: peer table %s incomplete after 20 s\n", cfg.peer_file);
			return 1;
		}
		usleep(10000);
	}
	const char *mode = argv[optind];
	int left = argc - optind - 1;
	char **a = argv + optind + 1;
	if (!strcmp(mode, "echo") || !strcmp(mode, "sink")) {
		rv = serve(ta, !strcmp(mode, "echo"));
		struct dg_ta_stats st;
		dg_ta_get_stats(ta, &st);
		fprintf(stderr, "ta_peer[%u]: in %" PRIu64 " out %" PRIu64 " wakeups %" PRIu64 "\n",
			cfg.node, st.frames_in, st.frames_out, st.wakeups);
	} else if (!strcmp(mode, "pingpong") && left >= 4) {
		rv = pingpong(ta, (uint32_t)atoi(a[0]), strtoul(a[1], NULL, 0), strtoul(a[2], NULL, 0),
			      atol(a[3]), left > 4 && !strcmp(a[4], "csv"));
	} else if (!strcmp(mode, "stream") && left >= 3) {
		rv = stream(ta, (uint32_t)atoi(a[0]), atol(a[1]), strtoul(a[2], NULL, 0),
			    left > 3 && !strcmp(a[3], "deposited"));
	} else if (!strcmp(mode, "forge") && left >= 1) {
		/* one real exchange first so that there is an accepted frame to replay */
		char r[256];
		if ((rc = ask(ta, (uint32_t)atoi(a[0]), PORT_STATS, r, sizeof(r))))
			return die("stats", rc);
		rv = forge(ta, cfg.key, cfg.node, (uint32_t)atoi(a[0]));
	} else {
		usage();
		rv = 2;
	}
	dg_ta_close(ta);
	return rv;
}
