/* runtime/client/remote.c: a process's operations on another node's channel, carried by its node's transport agent. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dragon/channel.h>
#include <dragon/error.h>
#include <dragon/pool.h>

#include "core/channel_remote.h"
#include "core/err.h"
#include "core/shm.h"
#include "ta/gateway.h"

/*
 * A request is one message into the agent's gateway channel; the answer, when one is wanted,
 * comes back into a reply channel of the asking thread (in the agent's pool, so the agent can
 * always write it). Each thread has its own reply channel and at most one request waiting, so
 * answers need no sorting; an answer to an older request (never expected) is skipped by number.
 */

#define INLINE_MAX 4096 /* requests up to this size are built on the stack */

static struct {
	pthread_mutex_t lock;
	pid_t pid; /* the process that attached (a forked child attaches anew) */
	int rc;    /* result of attaching */
	char why[256];
	dragon_channel_t *gw;
	dragon_mem_t flag;
	_Atomic uint32_t *sleeping;
	int bell_fd;
	pid_t agent;
	uint32_t agent_node;
	_Atomic uint64_t next_req;
	pthread_key_t reply_key;
	int key_made;
} tc = {.lock = PTHREAD_MUTEX_INITIALIZER, .bell_fd = -1};

struct rstate {
	dragon_channel_desc_t desc;
	uint32_t node;
};

struct reply {
	dragon_channel_t *ch;
	dragon_channel_desc_t desc;
	pid_t pid;
};

/* Where this node's agent describes itself. */
static int info_path(char *out, size_t cap)
{
	const char *v;

	if ((v = getenv("DRAGON_TA_INFO")) && *v) {
		snprintf(out, cap, "%s", v);
		return DRAGON_OK;
	}
	if ((v = getenv("DRAGON_RUNTIME_DIR")) && *v) {
		snprintf(out, cap, "%s/ta.info", v);
		return DRAGON_OK;
	}
	if ((v = getenv("DRAGON_LS_SOCKET")) && *v) {
		const char *slash = strrchr(v, '/');
		if (slash) {
			snprintf(out, cap, "%.*s/ta.info", (int)(slash - v), v);
			return DRAGON_OK;
		}
	}
	return dg_err(DRAGON_EPEER, "no transport agent on this node: the process is not in a "
				    "fabric of several nodes (DRAGON_TA_INFO is not set)");
}

/* The lines of ta.info this process uses; *pending when local services say the agent is coming. */
static int read_info(const char *path, char *gw, char *flag, char *bell, size_t cap, long *pid,
		     int *pending)
{
	char line[512];
	FILE *f;

	*pending = 0;
	*pid = 0;
	gw[0] = flag[0] = bell[0] = 0;
	if (!(f = fopen(path, "re")))
		return dg_err(DRAGON_EPEER, "no transport agent on this node: cannot read %s: %s (a "
					    "fabric started with DRAGON_TA=off has none)",
			      path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "gateway ", 8))
			snprintf(gw, cap, "%s", line + 8);
		else if (!strncmp(line, "flag ", 5))
			snprintf(flag, cap, "%s", line + 5);
		else if (!strncmp(line, "bell ", 5))
			snprintf(bell, PATH_MAX, "%s", line + 5);
		else if (!strncmp(line, "pid ", 4))
			*pid = strtol(line + 4, NULL, 10);
		else if (!strncmp(line, "pending ", 8))
			*pending = 1;
	}
	fclose(f);
	return DRAGON_OK;
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/*
 * Local services start serving before their node's agent is up (loading libfabric takes a good
 * part of a second): until it announces itself, ta.info says "pending". The first operation on
 * another node's channel waits for it, at most DRAGON_STARTUP_TIMEOUT seconds (30), and says so
 * under DRAGON_DEBUG.
 */
static int wait_agent(const char *path, char *gw, char *flag, char *bell, size_t cap, long *pid)
{
	const char *v = getenv("DRAGON_STARTUP_TIMEOUT"), *dbg = getenv("DRAGON_DEBUG");
	double start = now_ms(), limit = (v && atoi(v) > 0 ? atoi(v) : 30) * 1e3;
	int debug = dbg && *dbg && strcmp(dbg, "0"), pending, rv, logged = 0;

	for (;;) {
		if ((rv = read_info(path, gw, flag, bell, cap, pid, &pending)))
			return rv;
		if (!pending)
			break;
		if (*pid > 0 && kill((pid_t)*pid, 0) && errno == ESRCH)
			return dg_err(DRAGON_EPEER, "the transport agent of this node (pid %ld) is gone: "
						    "it ended before it was up (local services' log says why)",
				      *pid);
		if (now_ms() - start > limit)
			return dg_err(DRAGON_ETIMEDOUT, "the transport agent of this node (pid %ld) was "
							"not up within %.0f s (DRAGON_STARTUP_TIMEOUT)",
				      *pid, limit / 1e3);
		if (debug && !logged++)
			fprintf(stderr, "dragon[%d]: waiting for this node's transport agent (pid %ld) "
					"to start\n",
				(int)getpid(), *pid);
		usleep(1000);
	}
	if (debug && logged)
		fprintf(stderr, "dragon[%d]: this node's transport agent is up after %.0f ms\n",
			(int)getpid(), now_ms() - start);
	return DRAGON_OK;
}

static int attach_agent(void)
{
	char path[PATH_MAX], gw[512], flag[512], bell[PATH_MAX];
	dragon_channel_desc_t gd;
	dragon_mem_desc_t md;
	long pid = 0;
	int rv;

	if ((rv = info_path(path, sizeof(path))) ||
	    (rv = wait_agent(path, gw, flag, bell, sizeof(gw), &pid)))
		return rv;
	if (!gw[0] || !flag[0] || !bell[0] || pid <= 0)
		return dg_err(DRAGON_EPROTO, "%s lacks the gateway, flag, bell or pid line", path);
	if ((rv = dragon_desc_parse(gw, &gd)) || (rv = dragon_desc_parse(flag, &md)))
		return rv;
	{
		struct dg_desc d;
		if ((rv = dg_desc_unpack(gd.bytes, DG_DESC_CHANNEL, &d)))
			return rv;
		tc.agent_node = d.node;
	}
	if (tc.agent_node != dg_local_node())
		return dg_err(DRAGON_EINVAL, "this process believes it is on node %u but the transport "
					     "agent of %s serves node %u (DRAGON_NODE_INDEX)",
			      dg_local_node(), path, tc.agent_node);
	if ((rv = dragon_channel_attach(&gd, &tc.gw)) || (rv = dragon_mem_attach(&md, &tc.flag)))
		return rv == DRAGON_ESTALE ? dg_err(DRAGON_EPEER, "the transport agent of this node "
								  "(pid %ld, %s) is gone",
						    pid, path)
					   : rv;
	tc.sleeping = tc.flag.ptr;
	tc.agent = (pid_t)pid;
	tc.bell_fd = open(bell, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (tc.bell_fd < 0)
		return dg_err_sys("open the transport agent's doorbell %s", bell);
	return DRAGON_OK;
}

static void reply_free(void *p)
{
	struct reply *r = p;

	if (r->pid == getpid())
		dragon_channel_destroy(r->ch);
	free(r);
}

/* The agent, attached once per process. */
/* Set once this process attached its agent; a forked child starts over (atfork below). */
static _Atomic int attached;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forked_child(void)
{
	atomic_store(&attached, 0);
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, forked_child);
}

static int agent(void)
{
	int rv;

	/* The hot path of every remote operation: no lock, no system call. */
	if (atomic_load_explicit(&attached, memory_order_acquire))
		return DRAGON_OK;
	pthread_once(&atfork_once, register_atfork);
	pthread_mutex_lock(&tc.lock);
	if (tc.pid != getpid()) {
		/* first use, or a forked child: the parent's handles stay the parent's */
		tc.pid = getpid();
		tc.gw = NULL;
		if (tc.bell_fd >= 0)
			close(tc.bell_fd);
		tc.bell_fd = -1;
		if (!tc.key_made && pthread_key_create(&tc.reply_key, reply_free) == 0)
			tc.key_made = 1;
		tc.rc = tc.key_made ? attach_agent() : dg_err(DRAGON_ENOMEM, "thread key");
		snprintf(tc.why, sizeof(tc.why), "%s", tc.rc ? dragon_errmsg() : "");
	}
	rv = tc.rc;
	if (rv)
		dg_err(rv, "%s", tc.why);
	else
		atomic_store_explicit(&attached, 1, memory_order_release);
	pthread_mutex_unlock(&tc.lock);
	return rv;
}

/* This thread's reply channel. */
static int reply_channel(struct reply **out)
{
	struct reply *r = pthread_getspecific(tc.reply_key);
	dragon_channel_attr_t ca = {.capacity = 8, .block_size = 256, .wait = DRAGON_WAIT_ADAPTIVE};
	int rv;

	if (r && r->pid == getpid()) {
		*out = r;
		return DRAGON_OK;
	}
	if (!(r = calloc(1, sizeof(*r))))
		return dg_err(DRAGON_ENOMEM, "reply channel");
	if ((rv = dragon_channel_create(tc.flag.pool, &ca, &r->ch)) ||
	    (rv = dragon_channel_serialize(r->ch, &r->desc))) {
		if (r->ch)
			dragon_channel_destroy(r->ch);
		free(r);
		return rv;
	}
	r->pid = getpid();
	pthread_setspecific(tc.reply_key, r);
	*out = r;
	return DRAGON_OK;
}

/* After a request went in: wake the agent if it sleeps (the fence pairs with the agent's
 * "set sleeping, then look at the gateway"). */
static void ring(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(tc.sleeping)) {
		ssize_t n = write(tc.bell_fd, "!", 1);
		(void)n; /* a full FIFO already wakes it */
	}
}

static int agent_gone(void)
{
	return kill(tc.agent, 0) && errno == ESRCH
		       ? dg_err(DRAGON_EPEER, "the transport agent of this node (pid %d) is gone",
				(int)tc.agent)
		       : DRAGON_OK;
}

/*
 * Put a request into the gateway. Waiting forever on a full gateway would hang with a dead
 * agent: wait in one-second slices and look at the agent between them.
 */
static int gw_put(const void *buf, dragon_mem_t *mem, size_t len, const dragon_wait_t *w)
{
	dragon_wait_t slice = {.timeout_us = 1000000, .mode = w ? w->mode : DRAGON_WAIT_DEFAULT};
	int forever = !w || w->timeout_us < 0, rv;

	for (;;) {
		const dragon_wait_t *use = forever ? &slice : w;
		rv = mem ? dragon_channel_send_mem(tc.gw, mem, use)
			 : dragon_channel_send(tc.gw, buf, len, use);
		if (rv != DRAGON_ETIMEDOUT || !forever)
			return rv;
		if ((rv = agent_gone()))
			return rv;
	}
}

/* Hand the agent header h followed by len bytes of buf. */
static int request(struct dg_gw_hdr *h, const void *buf, size_t len, const dragon_wait_t *w)
{
	size_t total = sizeof(*h) + len;
	int rv;

	h->magic = DG_GW_MAGIC;
	if (total <= INLINE_MAX) {
		unsigned char tmp[INLINE_MAX];
		memcpy(tmp, h, sizeof(*h));
		if (len)
			memcpy(tmp + sizeof(*h), buf, len);
		rv = gw_put(tmp, NULL, total, w);
	} else {
		dragon_mem_t mem;
		/* Built in the agent's pool and handed over without another copy. */
		long t = w ? w->timeout_us : -1;
		/* The agent frees the pool as it sends; if it died, nothing would: look between waits. */
		while ((rv = dragon_pool_alloc_wait(tc.flag.pool, total, 0, t < 0 ? 1000000 : t,
						    &mem)) == DRAGON_ETIMEDOUT &&
		       t < 0 && !agent_gone())
			;
		if (rv == DRAGON_ETIMEDOUT && t < 0)
			rv = DRAGON_EPEER;
		if (rv == DRAGON_EPEER)
			return rv;
		if (rv)
			return rv == DRAGON_ETIMEDOUT || rv == DRAGON_ENOSPACE
				       ? dg_err(rv, "the transport agent's pool has no room for %zu "
						    "bytes (DRAGON_TA_POOL_MB)",
						total)
				       : rv;
		memcpy(mem.ptr, h, sizeof(*h));
		memcpy((unsigned char *)mem.ptr + sizeof(*h), buf, len);
		rv = gw_put(NULL, &mem, total, w);
		if (rv)
			dragon_pool_free(&mem);
	}
	if (rv == DRAGON_OK)
		ring();
	return rv;
}

/* Wait for the answer to request req; copy its payload (at most cap bytes) into buf. */
static int answer(struct reply *r, uint64_t req, uint32_t node, dragon_wait_mode_t mode, void *buf,
		  size_t cap, uint64_t *arg)
{
	const dragon_wait_t slice = {.timeout_us = 1000000, .mode = mode};

	for (;;) {
		dragon_mem_t mem;
		struct dg_gw_hdr h;
		int rv = dragon_channel_recv_mem(r->ch, &mem, &slice);

		if (rv == DRAGON_ETIMEDOUT) {
			if ((rv = agent_gone()))
				return rv;
			continue;
		}
		if (rv)
			return rv;
		if (dg_gw_check(mem.ptr, mem.size, &h) || h.op != DG_GW_REPLY || h.req != req) {
			dragon_pool_free(&mem);
			continue; /* not the answer to this request */
		}
		*arg = h.arg;
		rv = h.status;
		if (rv == DRAGON_OK && buf) {
			size_t n = mem.size - sizeof(h);
			if (n != h.arg || n > cap)
				rv = dg_err(DRAGON_EPROTO, "answer of %zu bytes for a buffer of %zu", n,
					    cap);
			else if (n)
				memcpy(buf, (unsigned char *)mem.ptr + sizeof(h), n);
		}
		dragon_pool_free(&mem);
		if (rv > DRAGON_OK && rv < DRAGON_ERR_MAX)
			return dg_err(rv, "the channel on node %u", node);
		if (rv)
			return dg_err(DRAGON_EPROTO, "node %u answered with code %d", node, rv);
		return DRAGON_OK;
	}
}

static int r_attach(const dragon_channel_desc_t *desc, void **state)
{
	struct rstate *s;
	int rv;

	if ((rv = agent()))
		return rv;
	if (!(s = calloc(1, sizeof(*s))))
		return dg_err(DRAGON_ENOMEM, "remote channel");
	{
		struct dg_desc d;
		if ((rv = dg_desc_unpack(desc->bytes, DG_DESC_CHANNEL, &d))) {
			free(s);
			return rv;
		}
		s->node = d.node;
	}
	s->desc = *desc;
	*state = s;
	return DRAGON_OK;
}

static int r_detach(void *state)
{
	free(state);
	return DRAGON_OK;
}

static dragon_wait_mode_t mode_of(const dragon_wait_t *w)
{
	return w && w->mode != DRAGON_WAIT_DEFAULT ? w->mode : DRAGON_WAIT_ADAPTIVE;
}

/*
 * One request to the channel's node (h's op and argument set by the caller) and, when it wants
 * one, its answer: payload into buf (at most cap bytes), the answer's argument in *arg.
 */
static int ask(const struct rstate *s, struct dg_gw_hdr *h, const void *payload, size_t plen,
	       const dragon_wait_t *w, int want_answer, void *buf, size_t cap, uint64_t *arg)
{
	struct reply *r = NULL;
	int rv;

	if ((rv = agent()))
		return rv;
	/* A node the fabric lost (the agent marks it in its flag allocation): fail at once. */
	if (tc.flag.size >= DG_GW_FLAG_SIZE && s->node < DG_GW_LOST_BYTES * 8u &&
	    (atomic_load((_Atomic unsigned char *)tc.flag.ptr + DG_GW_LOST_OFF + s->node / 8) &
	     (1u << (s->node % 8))))
		return dg_err(DRAGON_EPEER, "the channel's node %u left the fabric (lost)", s->node);
	h->node = s->node;
	memcpy(h->chan, s->desc.bytes, DRAGON_DESC_SIZE);
	if (want_answer) {
		if ((rv = reply_channel(&r)))
			return rv;
		h->req = atomic_fetch_add(&tc.next_req, 1) + 1;
		memcpy(h->reply, r->desc.bytes, DRAGON_DESC_SIZE);
	}
	/* A send's payload may wait for room in the gateway as the caller allows; the rest is
	 * small and waits for the answer instead. */
	if ((rv = request(h, payload, plen, h->op == DG_GW_SEND ? w : NULL)) || !r)
		return rv;
	return answer(r, h->req, s->node, mode_of(w), buf, cap, arg);
}

static int r_send(void *state, const void *buf, size_t len, const dragon_wait_t *w)
{
	struct dg_gw_hdr h = {.op = DG_GW_SEND};
	/* DRAGON_WAIT_TAKEN means deposited on another node (channel.h) */
	int deposit = w && (w->flags & (DRAGON_WAIT_DEPOSITED | DRAGON_WAIT_TAKEN));
	uint64_t arg;

	if (deposit)
		h.flags = DG_GW_F_DEPOSIT;
	return ask(state, &h, buf, len, w, deposit, NULL, 0, &arg);
}

static int r_recv(void *state, void *buf, size_t cap, size_t *len, const dragon_wait_t *w)
{
	struct dg_gw_hdr h = {.op = DG_GW_RECV, .arg = cap, .timeout_us = w ? w->timeout_us : -1};
	uint64_t arg = 0;
	int rv = ask(state, &h, NULL, 0, w, 1, buf, cap, &arg);

	if (rv == DRAGON_OK || rv == DRAGON_ETOOBIG)
		*len = (size_t)arg;
	return rv;
}

static int r_poll(void *state, unsigned events, unsigned *revents, const dragon_wait_t *w)
{
	struct dg_gw_hdr h = {.op = DG_GW_POLL, .arg = events, .timeout_us = w ? w->timeout_us : -1};
	uint64_t arg = 0;
	int rv = ask(state, &h, NULL, 0, w, 1, NULL, 0, &arg);

	*revents = (unsigned)arg;
	return rv;
}

const struct dg_channel_remote_ops dg_ta_remote_ops = {
	.attach = r_attach,
	.detach = r_detach,
	.send = r_send,
	.recv = r_recv,
	.poll = r_poll,
};
