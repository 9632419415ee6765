/* runtime/ta/main.c: dragon-ta, a node's transport agent: options, start (job key, gateway, ta.info), the loop, stop. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/channel_remote.h"
#include "core/env.h"
#include "core/err.h"
#include "core/inherit.h"
#include "core/shm.h"
#include "ta/agent.h"

static const char usage[] =
	"Usage: dragon-ta --node N --dir DIR [--peer-file FILE] [--key-file FILE]\n"
	"                 [--provider NAME] [--iface NAME] [--bind IP[:PORT]]\n"
	"The transport agent of node N of a Dragon fabric (started by dragon-ls). It reads the\n"
	"job key from DIR/job.key, looks its peers up in FILE (lines \"<node> <hex address>\",\n"
	"default DIR/ta.peers) when it first talks to them, and announces itself in DIR/ta.info.\n"
	"Environment: DRAGON_TA_PROVIDER (default tcp;ofi_rxm), DRAGON_TA_IFACE, DRAGON_TA_DEAD_MS,\n"
	"DRAGON_TA_SPIN_US, DRAGON_TA_POOL_MB (gateway pool, default 1024), DRAGON_TA_BUFFER_MB\n"
	"(messages held for full channels and busy peers before it stops taking more, default 256),\n"
	"DRAGON_TA_ZCOPY_KB (messages above this go without copies, default 64, 0: never),\n"
	"DRAGON_TA_BULK_KB (their chunk, default 1024).\n";

#define GW_CAPACITY 1024
#define GW_BLOCK 512

static volatile sig_atomic_t stopping, dump_asked, lost_asked;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

/* SIGUSR1: log the agent's queues and the layer's per-peer state (what a stalled agent waits for). */
static void on_dump(int sig)
{
	(void)sig;
	dump_asked = 1;
}

/* SIGUSR2: local services lost a node (listed in DIR/ta.lost). */
static void on_lost(int sig)
{
	(void)sig;
	lost_asked = 1;
}

static void dump(struct agent *a)
{
	size_t nwait = 0, nout = 0;

	for (struct waiter *w = a->waiters; w; w = w->next)
		nwait++;
	for (struct outstanding *o = a->outst; o; o = o->next)
		nout++;
	agent_log(a, "state: held %zu of %zu bytes (%zu for full channels), %zu messages queued for "
		     "other nodes, %zu full channels, %zu waiting receives, %zu outstanding requests, "
		     "%" PRIu64 " dropped",
		  a->held, a->held_max, a->held_full, a->queued, a->full_chans, nwait, nout, a->dropped);
	for (size_t n = 0; n < a->npeers; n++) {
		size_t k = 0, bytes = 0;
		for (struct out *o = a->peers[n].head; o; o = o->next, k++)
			bytes += o->len;
		if (k)
			agent_log(a, "state: node %zu: %zu messages (%zu bytes) queued, first at %zu of %zu",
				  n, k, bytes, a->peers[n].head->off, a->peers[n].head->len);
	}
	dg_ta_dump(a->ta);
}

void agent_log(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "dragon-ta[%u]: ", a->node);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Drops are logged, the first 100 and then every 1000th, so garbage cannot fill a disk. */
void agent_drop(struct agent *a, const char *what)
{
	a->dropped++;
	if (a->dropped <= 100 || a->dropped % 1000 == 0)
		agent_log(a, "dropped %s (%" PRIu64 " so far): %s", what, a->dropped,
			  dragon_errmsg());
}

/* ---- the loop ------------------------------------------------------------------------ */

/* Nothing to do for a while: sleep until the network or a process needs us. */
static void nap(struct agent *a)
{
	struct pollfd pf[2] = {{.fd = a->bell_fd, .events = POLLIN}, {.fd = dg_ta_wait_fd(a->ta), .events = POLLIN}};
	uint32_t count = 0, cap = 0;
	int timeout = 1000;
	char sink[64];

	/* Work that only time or other processes finish (full channels, receives on empty
	 * ones) is retried every millisecond; waiting for answers, every 100 ms. */
	if (a->waiters || a->full_chans)
		timeout = 1;
	else if (a->queued && !a->peers_known)
		timeout = 10; /* local services ring the bell once ta.peers is written; this is a backstop */
	else if (a->outst)
		timeout = 100;
	atomic_store(a->sleeping, 1);
	if ((dragon_channel_count(a->gw, &count, &cap) == DRAGON_OK && count) ||
	    dg_ta_trywait(a->ta) != DRAGON_OK) {
		atomic_store(a->sleeping, 0);
		return;
	}
	if (pf[1].fd < 0 && timeout > 1)
		timeout = 1;
	{
		/* the layer's own timer: a silent peer that owes us an acknowledgement is probed */
		int t = dg_ta_timeout_ms(a->ta);
		if (t >= 0 && t < timeout)
			timeout = t > 0 ? t : 1;
	}
	poll(pf, pf[1].fd < 0 ? 1 : 2, timeout);
	atomic_store(a->sleeping, 0);
	while (read(a->bell_fd, sink, sizeof(sink)) > 0)
		;
}

/*
 * How long to keep polling after work, measured: the agent keeps a moving average of the gaps
 * between its turns with work and polls for 4 of them (at least SPIN_MIN_NS), so that the next
 * message of a conversation (a ping-pong's answer, a stream's next frame) finds it awake; when
 * work comes further apart than DRAGON_TA_SPIN_US / 4 it naps at once after SPIN_MIN_NS: waking it
 * then costs a message ~60 us here (measured: a ping-pong 37 us one way with the agents polling,
 * 104 us with DRAGON_TA_SPIN_US=0), but polling 20 ms after each of 50 messages a second would
 * keep a core busy. DRAGON_TA_SPIN_US (20000) caps the budget; 0: never poll after work.
 */
#define SPIN_MIN_NS 100000

static void worked(struct agent *a)
{
	int64_t t = dg_ta_now(), gap = t - a->last_work;

	if (gap > 2 * a->spin_ns)
		gap = 2 * a->spin_ns;
	a->gap_ns = a->gap_ns ? (7 * a->gap_ns + gap) / 8 : gap;
	a->budget_ns = 4 * a->gap_ns <= a->spin_ns ? 4 * a->gap_ns : SPIN_MIN_NS;
	if (a->budget_ns < SPIN_MIN_NS)
		a->budget_ns = SPIN_MIN_NS;
	if (a->budget_ns > a->spin_ns)
		a->budget_ns = a->spin_ns;
	a->last_work = t;
}

/* One turn of the loop; may_nap: sleep when idle for a while. */
static void turn(struct agent *a, int may_nap);

static int gateway_empty(struct agent *a)
{
	uint32_t count = 0, cap = 0;

	return dragon_channel_count(a->gw, &count, &cap) != DRAGON_OK || count == 0;
}

/*
 * Asked to stop: what local processes handed over was promised to them ("a send returns once
 * the agent holds the message", in its gateway or its queues), so it goes out first: the agent
 * keeps carrying the gateway's requests and its queues to other nodes (and waits for their
 * acknowledgements) for at most DRAGON_TA_STOP_MS (2000). A dead peer's share fails as usual.
 * Local services wait for this before they kill what is left.
 */
static void drain(struct agent *a)
{
	const char *v = getenv("DRAGON_TA_STOP_MS");
	int64_t ms = v && atoi(v) >= 0 ? atoi(v) : 2000, end = dg_ta_now() + ms * 1000000;

	dg_ta_ack_consumed(a->ta); /* the peers' stops wait for these */
	while ((a->queued || dg_ta_unacked(a->ta) || !gateway_empty(a)) && dg_ta_now() < end)
		turn(a, 0);
	if (a->queued || dg_ta_unacked(a->ta) || !gateway_empty(a))
		agent_log(a, "stopping with %zu messages for other nodes not delivered after %" PRId64
			     " ms",
			  a->queued, ms);
}

static void run(struct agent *a)
{
	a->last_work = dg_ta_now();
	while (!stopping)
		turn(a, 1);
	drain(a);
}

static void turn(struct agent *a, int may_nap)
{
	int work = 0;
	dragon_mem_t mem;
	struct dg_ta_msg m;

	if (dump_asked) {
		dump_asked = 0;
		dump(a);
	}
	if (lost_asked) {
		lost_asked = 0;
		agent_read_lost(a);
	}
	while (a->held < a->held_max && dragon_channel_recv_mem(a->gw, &mem, &nowait) == DRAGON_OK) {
		agent_from_gateway(a, &mem);
		work = 1;
	}
	if (agent_send_queued(a))
		work = 1;
	dg_ta_progress(a->ta, 0);
	/*
	 * Frames are taken unless full local channels hold the budget: messages queued for other
	 * nodes must not stop them, or in an all-to-all every agent, its budget spent on its own
	 * node's sends, stops taking the frames (and returning the credit) the others wait for.
	 */
	while (a->held_full < a->held_max && dg_ta_pending(a->ta) &&
	       dg_ta_recv(a->ta, 0, &m) == DRAGON_OK) {
		agent_from_node(a, &m);
		work = 1;
	}
	dg_ta_release(a->ta);
	if (a->full_chans && agent_retry_deposits(a))
		work = 1;
	if (a->waiters && agent_serve_waiters(a))
		work = 1;
	if (a->outst)
		agent_watch_nodes(a);
	if (agent_send_queued(a))
		work = 1;
	if (a->sent)
		agent_reap_sent(a);
	if (work)
		worked(a);
	else if (may_nap && dg_ta_now() - a->last_work > a->budget_ns) {
		dg_ta_ack_consumed(a->ta);
		nap(a);
	}
	else
		sched_yield(); /* polling, but a node's processes may need this core */
}

/* ---- start and stop ------------------------------------------------------------------ */

static int read_key(const char *path, unsigned char key[DG_FRAME_KEY])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return dg_err_sys("open the job key %s", path);
	if (fstat(fd, &st) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		return dg_err(DRAGON_EPERM, "the job key %s must be yours and closed to others (0600)",
			      path);
	}
	n = read(fd, key, DG_FRAME_KEY);
	close(fd);
	if (n != DG_FRAME_KEY)
		return dg_err(DRAGON_EINVAL, "the job key %s is not %d bytes", path, DG_FRAME_KEY);
	return DRAGON_OK;
}

/*
 * Local services start the agent before the bootstrap has delivered the job key: wait for the key
 * file (written atomically, after the first fence) up to DRAGON_STARTUP_TIMEOUT. No frame is
 * looked at before: they wait in the provider's queue.
 */
static int wait_key(const char *path, unsigned char key[DG_FRAME_KEY])
{
	int ms = DG_STARTUP_TIMEOUT_MS();

	for (int waited = 0;; waited += 5) {
		if (access(path, F_OK) == 0 || waited >= ms || stopping)
			return read_key(path, key);
		if (getppid() == 1)
			return dg_err(DRAGON_EPEER, "local services went away before the job key came");
		usleep(5000);
	}
}

static int write_info(struct agent *a, const char *dir)
{
	unsigned char addr[256];
	char hex[2 * sizeof(addr) + 1], tmp[PATH_MAX + 32], gw[DRAGON_DESC_STRLEN],
		flag[DRAGON_DESC_STRLEN];
	dragon_channel_desc_t cd;
	dragon_mem_desc_t md;
	size_t len = sizeof(addr);
	FILE *f;
	int rv;

	if ((rv = dg_ta_getname(a->ta, addr, &len)) || (rv = dragon_channel_serialize(a->gw, &cd)) ||
	    (rv = dragon_mem_serialize(&a->flag_mem, &md)) ||
	    (rv = dragon_desc_format(&cd, gw)) || (rv = dragon_desc_format(&md, flag)))
		return rv;
	sodium_bin2hex(hex, sizeof(hex), addr, len);
	snprintf(tmp, sizeof(tmp), "%s/.ta.info.%d", dir, (int)getpid());
	if (!(f = fopen(tmp, "wxe")))
		return dg_err_sys("create %s", tmp);
	fprintf(f, "addr %s\ngateway %s\nflag %s\nbell %s\npid %d\nnode %u\n", hex, gw, flag, a->bell,
		(int)getpid(), a->node);
	if (fclose(f)) {
		unlink(tmp);
		return dg_err_sys("write %s", tmp);
	}
	if (rename(tmp, a->info)) {
		unlink(tmp);
		return dg_err_sys("rename to %s", a->info);
	}
	return DRAGON_OK;
}

/*
 * A start that fails leaves its reason in DIR/ta.failed (written whole) for local services, which
 * pass it on to the job's tasks at once instead of letting them wait for a fabric that won't come.
 */
static void write_failed(const char *dir, const char *why)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/ta.failed", dir);
	snprintf(tmp, sizeof(tmp), "%s/.ta.failed.%d", dir, (int)getpid());
	if (!(f = fopen(tmp, "wxe")))
		return;
	fprintf(f, "%s\n", why);
	if (fclose(f) || rename(tmp, path))
		unlink(tmp);
}

static size_t env_mb(const char *name, size_t dflt)
{
	const char *v = getenv(name);
	char *end;
	unsigned long n;

	if (!v || !*v)
		return dflt << 20;
	n = strtoul(v, &end, 10);
	return (*end || n == 0 || n > (1ul << 20)) ? dflt << 20 : (size_t)n << 20;
}

static int setup(struct agent *a, struct dg_ta_config *cfg, const char *dir)
{
	dragon_pool_attr_t pa = {.size = env_mb("DRAGON_TA_POOL_MB", 1024)};
	dragon_channel_attr_t ca = {.capacity = GW_CAPACITY, .block_size = GW_BLOCK,
				    .wait = DRAGON_WAIT_ADAPTIVE};
	int rv;

	if ((rv = dg_ta_open(cfg, &a->ta)) || (rv = dragon_pool_create(&pa, &a->pool)) ||
	    (rv = dragon_channel_create(a->pool, &ca, &a->gw)) ||
	    (rv = dragon_pool_alloc(a->pool, DG_GW_FLAG_SIZE, 64, &a->flag_mem)))
		return rv;
	a->sleeping = a->flag_mem.ptr;
	atomic_store(a->sleeping, 0);
	a->lost = (_Atomic unsigned char *)a->flag_mem.ptr + DG_GW_LOST_OFF;
	memset((void *)a->lost, 0, DG_GW_LOST_BYTES);
	snprintf(a->lost_file, sizeof(a->lost_file), "%s/ta.lost", dir);
	snprintf(a->bell, sizeof(a->bell), "%s/ta.bell", dir);
	unlink(a->bell);
	if (mkfifo(a->bell, 0600))
		return dg_err_sys("mkfifo %s", a->bell);
	/* Read-write, so the FIFO never reports end-of-file when no process has it open. */
	a->bell_fd = open(a->bell, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (a->bell_fd < 0)
		return dg_err_sys("open %s", a->bell);
	return write_info(a, dir);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"node", required_argument, NULL, 'n'},
					     {"dir", required_argument, NULL, 'd'},
					     {"peer-file", required_argument, NULL, 'p'},
					     {"key-file", required_argument, NULL, 'k'},
					     {"provider", required_argument, NULL, 'P'},
					     {"iface", required_argument, NULL, 'i'},
					     {"bind", required_argument, NULL, 'b'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct agent a = {.bell_fd = -1};
	struct dg_ta_config cfg;
	const char *dir = NULL, *peers = NULL, *keyf = NULL;
	char keypath[PATH_MAX], peerpath[PATH_MAX], nodestr[16];
	struct sigaction sa = {.sa_handler = on_stop};
	long node = -1;
	int c, rv;

	/* Local services' sockets (and what they inherited) are not ours: close them first. */
	dg_close_inherited();
	dg_ta_config_init(&cfg);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'n':
			errno = 0;
			node = strtol(optarg, &end, 10);
			if (errno || *end || node < 0 || node > (1 << 14) - 1) {
				fprintf(stderr, "dragon-ta: --node %s: expected 0..16383\n", optarg);
				return 2;
			}
			break;
		case 'd':
			dir = optarg;
			break;
		case 'p':
			peers = optarg;
			break;
		case 'k':
			keyf = optarg;
			break;
		case 'P':
			cfg.provider = optarg;
			break;
		case 'i':
			cfg.iface = optarg;
			break;
		case 'b':
			cfg.bind = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (node < 0 || !dir || optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	a.node = (uint32_t)node;
	/* Our channels (the gateway) carry this node's index in their descriptors. */
	snprintf(nodestr, sizeof(nodestr), "%ld", node);
	setenv("DRAGON_NODE_INDEX", nodestr, 1);
	dg_set_local_node(a.node);
	dg_channel_fed_by_agent();
	snprintf(keypath, sizeof(keypath), "%s/job.key", dir);
	snprintf(peerpath, sizeof(peerpath), "%s/ta.peers", dir);
	snprintf(a.info, sizeof(a.info), "%s/ta.info", dir);
	cfg.node = a.node;
	cfg.peer_file = peers ? peers : peerpath;
	a.held_max = env_mb("DRAGON_TA_BUFFER_MB", 256);
	{
		/* local services wait up to DRAGON_STARTUP_TIMEOUT for this agent, then as long again
		 * in the fence that exchanges the agents' addresses */
		const char *v = getenv("DRAGON_STARTUP_TIMEOUT"), *d = getenv("DRAGON_DEBUG");
		int64_t s = v && atoi(v) > 0 ? atoi(v) : 30;
		a.peers_by = dg_ta_now() + 2 * s * 1000000000LL;
		a.debug = d && *d && strcmp(d, "0");
	}
	a.spin_ns = a.budget_ns = (int64_t)cfg.spin_us * 1000;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_dump;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_lost;
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0 || setup(&a, &cfg, dir) ||
	    wait_key(keyf ? keyf : keypath, cfg.key)) {
		agent_log(&a, "%s", dragon_errmsg());
		write_failed(dir, dragon_errmsg());
		rv = 1;
	} else {
		char where[256];
		dg_ta_set_key(a.ta, cfg.key);
		dg_ta_set_placement(a.ta, agent_place, agent_unplace, &a);
		/* which interface: an agent on an interface that goes away loses its peers silently */
		dg_ta_describe(a.ta, where, sizeof(where));
		agent_log(&a, "endpoint: %s", where);
		run(&a);
		rv = 0;
	}
	sodium_memzero(cfg.key, sizeof(cfg.key));
	unlink(a.info);
	if (a.bell_fd >= 0) {
		close(a.bell_fd);
		unlink(a.bell);
	}
	while (a.chans) {
		struct chan *ch = a.chans;
		a.chans = ch->next;
		agent_chan_free(&a, ch);
	}
	if (a.gw)
		dragon_channel_destroy(a.gw);
	if (a.pool)
		dragon_pool_destroy(a.pool);
	dg_ta_close(a.ta);
	return rv;
}
