/* runtime/ls/agent.c: the node's transport agent dragon-ta: its start, its endpoint address and its stop. */
#include "config.h"

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/env.h"
#include "core/err.h"
#include "launcher/libexec.h"
#include "ls/ls_internal.h"
#include "ta/ta.h"
#include "../../pmix/boot.h"

/* Read the value of "key value" line `key` of a small file; DRAGON_ENOTFOUND if absent. */
static int read_keyed(const char *path, const char *key, char *out, size_t cap)
{
	char line[1024];
	size_t kl = strlen(key);
	FILE *f = fopen(path, "re");
	int rv = DRAGON_ENOTFOUND;

	if (!f)
		return DRAGON_ENOTFOUND;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, key, kl) && line[kl] == ' ' && strlen(line + kl + 1) < cap) {
			strcpy(out, line + kl + 1);
			rv = DRAGON_OK;
			break;
		}
	}
	fclose(f);
	return rv;
}

/*
 * A fabric of several nodes gets one transport agent per node, a child of LS (so it ends with
 * LS), reading the job key from DIR/job.key and its peers from DIR/ta.peers, which LS writes
 * after the second fence. The agent announces itself in DIR/ta.info: its endpoint address goes
 * through the bootstrap; processes find its gateway channel there (DRAGON_TA_INFO).
 */
/*
 * Until the agent announces itself, DIR/ta.info says that it is coming ("pending", its pid and
 * node): a process that wants another node's channel before then waits for it (runtime/client/
 * remote.c) instead of failing. Linked into place, so an agent that was faster keeps its own.
 */
static void write_pending(struct ls *ls, pid_t pid)
{
	char info[PATH_MAX + 16], tmp[PATH_MAX + 32];
	FILE *f;

	snprintf(info, sizeof(info), "%s/ta.info", ls->o->dir);
	snprintf(tmp, sizeof(tmp), "%s/.ta.pending.%d", ls->o->dir, (int)getpid());
	if (!(f = fopen(tmp, "wxe")))
		return; /* processes then fail at once, naming the missing file, as without an agent */
	fprintf(f, "pending 1\npid %d\nnode %u\n", (int)pid, ls->node_index);
	if (fclose(f) == 0 && link(tmp, info) && errno != EEXIST && ls->debug)
		ls_log(ls, "link %s: %s", info, strerror(errno));
	unlink(tmp);
}

/*
 * Started before the bootstrap's first fence and off the start-up path: loading libfabric (and
 * the provider libraries Debian's links: PSM calibrates a timer, the verbs provider scans
 * /proc/kallsyms) takes 0.3-0.5 s here, which neither the fence nor ls.ready waits for. The agent
 * waits for DIR/job.key, written after the first fence, before it handles any frame; its address
 * goes to the other nodes in the background (ls_ta_exchange_start).
 */
int ls_ta_spawn(struct ls *ls)
{
	char prog[PATH_MAX], info[PATH_MAX + 16], peers[PATH_MAX + 16], node[16];
	pid_t pid;

	snprintf(info, sizeof(info), "%s/ta.info", ls->o->dir);
	snprintf(peers, sizeof(peers), "%s/ta.peers", ls->o->dir);
	snprintf(node, sizeof(node), "%u", ls->node_index);
	/* a table left by an earlier fabric in this directory must not be taken for this one's */
	unlink(info);
	unlink(peers);
	snprintf(info, sizeof(info), "%s/ta.failed", ls->o->dir);
	unlink(info); /* a previous fabric's */
	if (dg_libexec_find("dragon-ta", "ta", prog, sizeof(prog))) {
		char why[512];
		/* dg_err formats into the buffer dragon_errmsg() returns: copy it first. */
		snprintf(why, sizeof(why), "%s", dragon_errmsg());
		return dg_err(DRAGON_ENOTFOUND, "%s; DRAGON_TA=off runs a fabric without channels "
					      "across nodes",
			      why);
	}
	pid = fork();
	if (pid < 0)
		return dg_err_sys("fork for the transport agent");
	if (pid == 0) {
		char *argv[] = {prog, "--node", node, "--dir", (char *)ls->o->dir, "--peer-file", peers,
				NULL};
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* PSM (linked by some libfabric builds) otherwise takes over SIGSEGV, SIGTERM and
		 * others at load and writes backtrace files into the working directory. */
		setenv("IPATH_NO_BACKTRACE", "1", 0);
		setenv("HFI_NO_BACKTRACE", "1", 0);
		execv(prog, argv);
		_exit(127);
	}
	ls->ta_pid = pid;
	write_pending(ls, pid);
	return DRAGON_OK;
}

/*
 * The agent announced its endpoint address in DIR/ta.info. On the exchange thread (reap 0) the
 * main loop reaps the agent (and clears ta_pid) if it exits, as ls_ta_stop does when LS stops;
 * before the main loop runs (reap 1) we reap it here, since an exited agent stays a zombie that
 * kill(pid, 0) still finds.
 */
static int ta_ready(struct ls *ls, char *addr, size_t cap, int reap)
{
	char info[PATH_MAX + 16];
	int ms = ls_startup_timeout_ms();

	snprintf(info, sizeof(info), "%s/ta.info", ls->o->dir);
	for (int waited = 0; waited < ms; waited += 2) {
		pid_t pid = __atomic_load_n(&ls->ta_pid, __ATOMIC_ACQUIRE);
		if (read_keyed(info, "addr", addr, cap) == DRAGON_OK)
			return DRAGON_OK;
		if (reap && pid && waitpid(pid, NULL, WNOHANG) == pid) {
			__atomic_store_n(&ls->ta_pid, 0, __ATOMIC_RELEASE);
			pid = 0;
		}
		if (!pid || (kill(pid, 0) && errno == ESRCH)) {
			char why[700] = "", failed[PATH_MAX + 16];
			FILE *f;
			/* its own reason (ta.failed, one line), so the job's tasks see it too */
			snprintf(failed, sizeof(failed), "%s/ta.failed", ls->o->dir);
			if ((f = fopen(failed, "re"))) {
				if (!fgets(why, sizeof(why), f))
					why[0] = 0;
				why[strcspn(why, "\n")] = 0;
				fclose(f);
				unlink(failed);
			}
			return dg_err(DRAGON_EPEER, "the transport agent dragon-ta exited before it was "
						    "ready: %s",
				      why[0] ? why : "its messages are above");
		}
		usleep(2000);
	}
	return dg_err(DRAGON_ETIMEDOUT, "the transport agent did not write %s within %d s", info,
		      ms / 1000);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The exchange of the agents' addresses, on a thread of its own while LS serves. */
struct xchg {
	pthread_t thread;
	struct ls *ls;
	struct timespec start;
	int done; /* atomic: the thread finished */
};

static void *exchange(void *arg)
{
	struct xchg *x = arg;
	struct ls *ls = x->ls;
	char addr[600], bell[PATH_MAX + 16];
	double up;
	int fd;

	if (ta_ready(ls, addr, sizeof(addr), 0)) {
		ls_log(ls, "transport: %s; channels of other nodes are unreachable from this node",
		       dragon_errmsg());
		/* The other nodes still learn, from the fence, that this one has no agent ("-"),
		 * so that their processes fail at once on its channels instead of waiting. */
		snprintf(addr, sizeof(addr), "-");
	}
	up = ms_since(&x->start);
	if (dg_boot_put(ls->boot, "ta.addr", addr, strlen(addr) + 1) || dg_boot_fence(ls->boot) ||
	    ls_ta_write_peers(ls)) {
		ls_log(ls, "transport: the agents' addresses: %s; channels of other nodes are "
			   "unreachable from this node",
		       dragon_errmsg());
		goto out;
	}
	/* The agent may hold messages for nodes it did not know yet: it reads ta.peers now. */
	snprintf(bell, sizeof(bell), "%s/ta.bell", ls->o->dir);
	if ((fd = open(bell, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) >= 0) {
		ssize_t n = write(fd, "!", 1);
		(void)n;
		close(fd);
	}
	if (ls->debug)
		ls_log(ls, "transport: agent up after %.0f ms, every node's agent known after %.0f ms",
		       up, ms_since(&x->start));
out:
	__atomic_store_n(&x->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Exchange the agents' addresses (put, second fence, DIR/ta.peers) on a thread, so that LS serves
 * and says ready without waiting for its agent. The bootstrap is not used by anything else after
 * the first fence. A process's first operation on another node's channel waits for its agent
 * (ta.info), and the agent holds what it gets for nodes it does not know until ta.peers comes.
 */
int ls_ta_exchange_start(struct ls *ls)
{
	struct xchg *x = calloc(1, sizeof(*x));
	int rc;

	if (!x)
		return dg_err(DRAGON_ENOMEM, "transport address exchange");
	x->ls = ls;
	clock_gettime(CLOCK_MONOTONIC, &x->start);
	if ((rc = pthread_create(&x->thread, NULL, exchange, x))) {
		free(x);
		errno = rc;
		return dg_err_sys("start the transport address exchange");
	}
	ls->ta_xchg = x;
	return DRAGON_OK;
}

/*
 * Local services say ready without waiting for the exchange (the agent off the start-up path):
 * a process's first operation on another node's channel waits for the agents, and an agent holds
 * what it sends to, and gets from, nodes it does not know yet until ta.peers comes
 * (docs/transport.md, Early ready). DRAGON_TA_EARLY_READY=0 makes them say ready only once the
 * exchange has ended, so that every process starts with the agents' addresses known.
 */
int ls_ta_exchange_wait(struct ls *ls)
{
	struct xchg *x = ls->ta_xchg;
	long ms = 2L * ls_startup_timeout_ms() + 1000;

	if (!x || dg_env_ulong("DRAGON_TA_EARLY_READY", 1, 0, 1))
		return DRAGON_OK;
	for (long waited = 0; waited < ms && !__atomic_load_n(&x->done, __ATOMIC_ACQUIRE); waited += 2)
		usleep(2000);
	if (!__atomic_load_n(&x->done, __ATOMIC_ACQUIRE))
		return dg_err(DRAGON_ETIMEDOUT, "the exchange of the agents' addresses did not end "
						"within %ld ms", ms);
	return DRAGON_OK;
}

/*
 * Wait (at most 2 s: the agent is stopped already, so only a fence another node never joins keeps
 * it) for the exchange to end. 0 when it ended, and the bootstrap may be closed; -1 when it is
 * still in the bootstrap, which then stays open (the process is about to exit).
 */
int ls_ta_exchange_end(struct ls *ls)
{
	struct xchg *x = ls->ta_xchg;

	if (!x)
		return 0;
	for (int waited = 0; waited < 2000 && !__atomic_load_n(&x->done, __ATOMIC_ACQUIRE); waited += 2)
		usleep(2000);
	if (!__atomic_load_n(&x->done, __ATOMIC_ACQUIRE)) {
		ls_log(ls, "transport: the address exchange is still waiting in the bootstrap; leaving it");
		return -1;
	}
	pthread_join(x->thread, NULL);
	free(x);
	ls->ta_xchg = NULL;
	return 0;
}

/*
 * A provider the job named itself (--dragon=transport=, DRAGON_TA_PROVIDER other than the
 * default) may not exist on this node, and only loading libfabric tells: wait for the agent
 * before saying ready, so that a wrong name fails the fabric's start at once with the agent's
 * reason (ls.failed, which the job's tasks print) instead of a fabric whose channels across
 * nodes fail later. Such a job pays the agent's start-up in its first step; the default
 * provider keeps the agent off the start-up path.
 */
int ls_ta_check_named_provider(struct ls *ls)
{
	const char *p = getenv("DRAGON_TA_PROVIDER");
	char addr[600];

	if (!ls->ta_pid || !p || !*p || !strcmp(p, DG_TA_DEFAULT_PROVIDER))
		return DRAGON_OK;
	return ta_ready(ls, addr, sizeof(addr), 1);
}

/* DRAGON_TA=off: a fabric without channels across nodes (the rest works as usual). */
int ls_ta_disabled(void)
{
	const char *v = getenv("DRAGON_TA");

	return v && (!strcmp(v, "off") || !strcmp(v, "0"));
}

/*
 * Stop the agent before anything else is killed: SIGTERM lets it deliver what local processes
 * already handed it (it drains for at most DRAGON_TA_STOP_MS, 2 s); SIGKILL only if it does not
 * exit within a second more. Killed first (as every other child used to be), buffered sends that
 * had returned to their callers were lost.
 */
void ls_ta_stop(struct ls *ls)
{
	pid_t pid = ls->ta_pid;
	int st;

	if (!pid)
		return;
	__atomic_store_n(&ls->ta_pid, 0, __ATOMIC_RELEASE);
	kill(pid, SIGTERM);
	for (int waited = 0; waited < 3000; waited += 5) {
		if (waitpid(pid, &st, WNOHANG) != 0)
			return; /* exited (and reaped), or not our child any more */
		usleep(5000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}
