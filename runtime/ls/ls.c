/* runtime/ls/ls.c: local services' daemon: start-up, main loop, shutdown, teardown. */
#include "config.h"

#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <hwloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sodium.h>
#include <unistd.h>

#include "core/err.h"
#include "core/shm.h"
#include "gs/gs.h"
#include "ls/ls_internal.h"
#include "../../pmix/boot.h"

/* The last message logged: the reason of a start that fails, for LS_FAILED_NAME. */
static char last_log[1024];

void ls_log(struct ls *ls, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "dragon-ls[%d]: %s\n", (int)getpid(), buf);
	memcpy(last_log, buf, sizeof(buf));
}

/*
 * A fabric step's start that fails says why in DIR/ls.failed, which the job's tasks (the SPANK
 * plugin's task_init) read instead of waiting startup_timeout for an ls.ready that won't come.
 *
 * Before the loop serves, a stop signal (scancel; srun ending the fabric step because another
 * node failed) used to kill dragon-ls on the spot, leaving its files behind (and with --base its
 * directory). Its handler now does what is async-signal-safe with what was prepared here: it kills
 * the transport agent, removes our and the agent's files (the directory too when it is ours), and
 * a fabric step's LS says so in ls.failed. Not inside a launcher, which handles signals itself.
 */
static struct {
	struct ls *ls; /* for the agent's pid, once there is one */
	pid_t pid;     /* ours: a child between fork and exec leaves everything alone */
	int report, remove_dir;
	char dir[PATH_MAX], files[12][PATH_MAX + 32], failed_path[PATH_MAX + 16],
		failed_tmp[PATH_MAX + 32], ended_path[PATH_MAX + 16], ended_tmp[PATH_MAX + 32], why[512];
	size_t nfiles;
} early;

/* Write a report whole (readers poll for it); async-signal-safe. */
static void publish_report(const char *path, const char *tmp, const char *why, size_t len)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return;
	if (write(fd, why, len) != (ssize_t)len || close(fd) || rename(tmp, path))
		unlink(tmp);
}

static void publish_failed(const char *why, size_t len)
{
	publish_report(early.failed_path, early.failed_tmp, why, len);
}

static void on_early_stop(int sig)
{
	pid_t ta = early.ls ? early.ls->ta_pid : 0;

	if (getpid() != early.pid) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	if (ta > 0) {
		char tmp[PATH_MAX + 32], digits[16];
		size_t n = strlen(early.dir), k = 0;
		kill(ta, SIGKILL);
		waitpid(ta, NULL, 0);
		/* the agent's half-written DIR/.ta.info.PID */
		do
			digits[k++] = (char)('0' + ta % 10);
		while ((ta /= 10) && k < sizeof(digits));
		if (n + 10 + k < sizeof(tmp)) {
			memcpy(tmp, early.dir, n);
			memcpy(tmp + n, "/.ta.info.", 10);
			n += 10;
			while (k)
				tmp[n++] = digits[--k];
			tmp[n] = 0;
			unlink(tmp);
		}
	}
	for (size_t i = 0; i < early.nfiles; i++)
		unlink(early.files[i]);
	if (early.report)
		publish_failed(early.why, strlen(early.why));
	if (early.remove_dir)
		rmdir(early.dir);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void early_prepare(struct ls *ls, int report)
{
	static const char *const names[] = {LS_SOCK_NAME, LS_READY_NAME, "job.key", "ta.peers", "ta.info",
					    "ta.bell", "ta.failed"};
	static const char *const written[] = {LS_READY_NAME, "job.key", "ta.peers"};
	struct sigaction sa = {.sa_handler = on_early_stop};
	const char *dir = ls->o->dir;

	early.ls = ls;
	early.pid = getpid();
	early.report = report;
	early.remove_dir = ls->o->remove_dir;
	snprintf(early.dir, sizeof(early.dir), "%s", dir);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		snprintf(early.files[early.nfiles++], sizeof(early.files[0]), "%s/%s", dir, names[i]);
	/* publish.c's temporary files */
	for (size_t i = 0; i < sizeof(written) / sizeof(written[0]); i++)
		snprintf(early.files[early.nfiles++], sizeof(early.files[0]), "%s/.%s.%d", dir, written[i],
			 (int)getpid());
	snprintf(early.failed_path, sizeof(early.failed_path), "%s/" LS_FAILED_NAME, dir);
	snprintf(early.failed_tmp, sizeof(early.failed_tmp), "%s/." LS_FAILED_NAME ".%d", dir, (int)getpid());
	snprintf(early.ended_path, sizeof(early.ended_path), "%s/" LS_ENDED_NAME, dir);
	snprintf(early.ended_tmp, sizeof(early.ended_tmp), "%s/." LS_ENDED_NAME ".%d", dir, (int)getpid());
	if (report) {
		/* a previous fabric's */
		unlink(early.failed_path);
		unlink(early.ended_path);
	}
	snprintf(early.why, sizeof(early.why),
		 "local services were stopped while starting (another node's failed, or the job ended)\n");
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* Once the node is known, the report names it. */
static void early_name(struct ls *ls)
{
	char why[sizeof(early.why)];

	snprintf(why, sizeof(why),
		 "node %u (%s): local services were stopped while starting (another node's failed, "
		 "or the job ended)\n",
		 ls->node_index, ls->host);
	memcpy(early.why, why, sizeof(why));
}

static void failed_write(struct ls *ls)
{
	char why[1200];
	int n = snprintf(why, sizeof(why), "node %u (%s): %s\n", ls->node_index, ls->host,
			 ls->stop_why[0] ? ls->stop_why : last_log);

	publish_failed(why, n > 0 && (size_t)n < sizeof(why) ? (size_t)n : strlen(why));
}

void ls_stop_why(struct ls *ls, const char *fmt, ...)
{
	va_list ap;

	if (ls->stopping || ls->stop_why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(ls->stop_why, sizeof(ls->stop_why), fmt, ap);
	va_end(ap);
}

/*
 * A fabric step's LS that stops tells the tasks of later steps on this node, which would otherwise
 * wait startup_timeout for an ls.ready that will not come: before it was ready, in ls.failed (the
 * start failed); once ready, when this node left a fabric that may go on (ls->left), in
 * ls.ended. An orderly stop (the whole fabric's) leaves nothing behind.
 */
static void report_stop(struct ls *ls)
{
	char why[1200];
	int n;

	if (!ls->report_end)
		return;
	if (!ls->ready) {
		failed_write(ls);
		return;
	}
	if (!ls->left)
		return;
	n = snprintf(why, sizeof(why), "node %u (%s): %s\n", ls->node_index, ls->host,
		     ls->stop_why[0] ? ls->stop_why : last_log);
	publish_report(early.ended_path, early.ended_tmp, why,
		       n > 0 && (size_t)n < sizeof(why) ? (size_t)n : strlen(why));
}

static void kill_all(struct ls *ls, int signo)
{
	for (struct proc *p = ls->procs; p; p = p->next)
		if (!p->exited) {
			kill(-p->pid, signo);
			kill(p->pid, signo);
		}
}

static void kill_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ls *ls = arg;

	ls_log(ls, "processes still running after %d ms: sending SIGKILL", LS_KILL_GRACE_MS);
	kill_all(ls, SIGKILL);
}

void ls_check_stopped(struct ls *ls)
{
	if (!ls->stopping)
		return;
	for (struct proc *p = ls->procs; p; p = p->next)
		if (!p->done)
			return;
	if (ls->stop_seq)
		ls_reply_ok(ls_conn_find(ls, ls->stop_conn), ls->stop_seq);
	for (struct conn *c = ls->conns; c; c = c->next)
		if (!c->closing)
			ls_conn_drain(c);
	event_base_loopbreak(ls->base);
}

void ls_begin_stop(struct ls *ls, int signo)
{
	struct timeval tv = {.tv_sec = LS_KILL_GRACE_MS / 1000,
			     .tv_usec = (LS_KILL_GRACE_MS % 1000) * 1000};

	/* The head node's end is the fabric's: the other nodes stop with it, the same way. */
	for (uint32_t i = 1; ls->nodes && i < ls->node_count; i++)
		if (ls->nodes[i].link) {
			Dragon__Msg m = DRAGON__MSG__INIT;
			Dragon__Shutdown sd = DRAGON__SHUTDOWN__INIT;
			sd.signo = signo;
			m.body_case = DRAGON__MSG__BODY_SHUTDOWN;
			m.shutdown = &sd;
			dg_link_send(ls->nodes[i].link, &m);
		}

	if (ls->stopping) {
		/* A second request: do not wait for the grace period. */
		if (signo == SIGKILL)
			kill_all(ls, SIGKILL);
		return;
	}
	/* Before ls.ready goes: a task polling this node sees one or the other. */
	report_stop(ls);
	ls->stopping = 1;
	ls_remove_files(ls);
	kill_all(ls, signo ? signo : SIGTERM);
	ls->kill_timer = evtimer_new(ls->base, kill_timeout, ls);
	if (ls->kill_timer)
		evtimer_add(ls->kill_timer, &tv);
	ls_check_stopped(ls);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct ls *ls = arg;

	if (ls->ready)
		ls_stop_why(ls, "its local services were stopped by %s (the job ended or was cancelled, "
				"or its fabric step was ended)",
			    sig == SIGINT ? "SIGINT" : "SIGTERM");
	else
		ls_stop_why(ls, "local services were stopped while starting (another node's failed, or "
				"the job ended)");
	ls_begin_stop(ls, SIGTERM);
}

/*
 * LS is a child subreaper: whatever a process started and left behind becomes our child when its
 * parent dies. Before LS exits it kills and reaps every such descendant, so nothing outlives it.
 */
static void kill_descendants(void)
{
	pid_t r;

	/* Descendants nobody started through us (a program's own helpers, such as Python's resource
	 * tracker, which ends when its creator's pipe closes) get a moment to end by themselves:
	 * they finish their work, and the scan below is not needed. */
	for (int ms = 0; ms < LS_ORPHAN_GRACE_MS; ms++) {
		while ((r = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (r < 0 && errno == ECHILD)
			return;
		usleep(1000);
	}
	for (int round = 0; round < 100; round++) {
		DIR *d;
		struct dirent *e;
		int found = 0;

		/* A descendant still running has a chain of parents up to a child of ours: with no
		 * child left (the usual end) there is none, and the scan of every process is saved. */
		while ((r = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (r < 0 && errno == ECHILD)
			return;
		if (!(d = opendir("/proc")))
			return;
		while ((e = readdir(d))) {
			char path[300], buf[512], *rp;
			FILE *f;
			int ppid = 0;
			long pid = strtol(e->d_name, &rp, 10);

			if (*rp || pid <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
			if (!(f = fopen(path, "re")))
				continue;
			if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')))
				sscanf(rp + 2, "%*c %d", &ppid);
			fclose(f);
			if (ppid == getpid()) {
				kill((pid_t)pid, SIGKILL);
				found++;
			}
		}
		closedir(d);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!found)
			return;
		usleep(2000);
	}
}

/*
 * The head node's local services hold a link per node, and every transport agent (started by
 * LS, it inherits the limit) a connection per peer: the usual soft limit of 1024 descriptors
 * stops a fabric of about a thousand nodes. Raise it to what the fabric needs, within the hard
 * limit; say so when the hard limit is too low. Small fabrics keep the limit they were given
 * (their processes inherit it).
 */
static void raise_nofile(struct ls *ls)
{
	rlim_t need = (rlim_t)ls->node_count + LS_FDS_SPARE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
		ls_log(ls, "a fabric of %u nodes needs about %llu descriptors per node; the hard limit "
			   "(RLIMIT_NOFILE) is %llu: raise it (limits.conf, or the job's ulimit -Hn)",
		       ls->node_count, (unsigned long long)need, (unsigned long long)rl.rlim_max);
	rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		ls_log(ls, "cannot raise the descriptor limit to %llu: %s",
		       (unsigned long long)rl.rlim_cur, strerror(errno));
}

/* A socket file nobody listens on (connect is refused): what killed local services leave. */
static int stale_socket(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), stale;

	if (fd < 0)
		return 0;
	stale = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) && errno == ECONNREFUSED;
	close(fd);
	return stale;
}

int ls_run(const struct ls_opts *o)
{
	struct ls ls_s, *ls = &ls_s;
	int rv = 1, lfd = o->listen_fd, own_sock = 0, tcp_fd = -1, serving = 0;
	/* A fabric step's LS (a directory it neither owns nor shares with a launcher) reports a failed start. */
	int report_failed = o->ctl_fd < 0 && !o->remove_dir, own_signals = o->ctl_fd < 0;
	const char *dbg = getenv("DRAGON_DEBUG");

	memset(ls, 0, sizeof(*ls));
	ls->o = o;
	ls->next_conn = 1;
	ls->next_puid = 1;
	ls->next_pool = 1;
	ls->debug = dbg && *dbg && strcmp(dbg, "0");
	if (own_signals)
		early_prepare(ls, report_failed);
	ls->report_end = report_failed && own_signals;
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (gethostname(ls->host, sizeof(ls->host) - 1))
		strcpy(ls->host, "localhost");
	if (dg_boot_open(o->boot, &ls->boot)) {
		ls_log(ls, "bootstrap: %s", dragon_errmsg());
		early.ls = NULL;
		return 1;
	}
	ls->node_index = (uint32_t)ls->boot->rank;
	ls->node_count = (uint32_t)ls->boot->size;
	if (ls_node_timeouts(ls) || !(ls->lost = calloc(ls->node_count, 1))) {
		ls_log(ls, "%s", ls->lost ? dragon_errmsg() : "out of memory");
		dg_boot_close(ls->boot);
		free(ls->lost);
		return 1;
	}
	raise_nofile(ls);
	if (own_signals)
		early_name(ls);
	ls->next_puid = ((uint64_t)ls->node_index << 48) + 1;
	if ((size_t)snprintf(ls->sock_path, sizeof(ls->sock_path), "%s/%s", o->dir,
			     LS_SOCK_NAME) >= sizeof(ls->sock_path)) {
		ls_log(ls, "runtime directory path too long: %s", o->dir);
		goto out;
	}
	if (lfd < 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		if (strlen(ls->sock_path) >= sizeof(sa.sun_path)) {
			ls_log(ls, "socket path too long for a unix socket: %s", ls->sock_path);
			goto out;
		}
		strcpy(sa.sun_path, ls->sock_path);
		int brc;
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		brc = lfd < 0 ? -1 : bind(lfd, (struct sockaddr *)&sa, sizeof(sa));
		if (brc && errno == EADDRINUSE && stale_socket(&sa)) {
			unlink(sa.sun_path); /* left by local services that were killed */
			brc = bind(lfd, (struct sockaddr *)&sa, sizeof(sa));
		}
		if (lfd < 0 || brc || listen(lfd, 128)) {
			ls_log(ls, "cannot listen on %s: %s", ls->sock_path, strerror(errno));
			goto out;
		}
		own_sock = 1;
	}
	/* Descriptors of what this node creates (its channels) carry its index. */
	dg_set_local_node(ls->node_index);
	if (ls->node_count > 1 && !ls_ta_disabled() &&
	    (ls_ta_spawn(ls) || ls_ta_check_named_provider(ls))) {
		ls_log(ls, "transport: %s", dragon_errmsg());
		goto out;
	}
	/* The head node (rank 0) hosts GS; its address and the job key reach the others through
	 * the bootstrap, and every other node joins it over a sealed link. */
	if (ls_links_prepare(ls, &tcp_fd) || dg_boot_fence(ls->boot) || ls_links_key(ls) ||
	    ls_write_key(ls)) {
		ls_log(ls, "bootstrap: %s", dragon_errmsg());
		goto out;
	}
	/* Several nodes: the agents' addresses are exchanged (fence 2) while LS serves. */
	if (ls->ta_pid && ls_ta_exchange_start(ls)) {
		ls_log(ls, "transport: %s", dragon_errmsg());
		goto out;
	}
	if (ls->ta_pid && ls_ta_exchange_wait(ls)) {
		ls_log(ls, "transport: %s", dragon_errmsg());
		goto out;
	}
	if (ls_make_base_env(ls))
		goto out;
	ls->base = event_base_new();
	if (!ls->base) {
		ls_log(ls, "libevent: no event base");
		goto out;
	}
	evutil_make_socket_nonblocking(lfd);
	/* CLOSE_ON_EXEC: accepted connections must not leak into the processes we start. */
	ls->lst = evconnlistener_new(ls->base, ls_on_accept, ls,
				     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, lfd);
	if (!ls->lst) {
		ls_log(ls, "libevent: cannot watch the listening socket");
		goto out;
	}
	lfd = -1;
	if (tcp_fd >= 0) {
		evutil_make_socket_nonblocking(tcp_fd);
		ls->nodes = calloc(ls->node_count, sizeof(*ls->nodes));
		ls->reached = calloc(((size_t)ls->node_count * ls->node_count + 7) / 8, 1);
		/* backlog 0: listening already, with dg_link_listen's backlog (libevent's -1 is 128) */
		ls->tcp = ls->nodes && ls->reached ? evconnlistener_new(ls->base, ls_on_link_accept, ls,
							 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
							 0, tcp_fd)
				    : NULL;
		if (!ls->tcp) {
			ls_log(ls, "cannot watch the listening socket for other nodes");
			goto out;
		}
		tcp_fd = -1;
	}
	if (ls_links_join(ls)) {
		ls_log(ls, "node %u cannot join the head node: %s", ls->node_index, dragon_errmsg());
		goto out;
	}
	ls->sigchld = evsignal_new(ls->base, SIGCHLD, ls_on_sigchld, ls);
	ls->sigterm = evsignal_new(ls->base, SIGTERM, on_stop_signal, ls);
	ls->sigint = evsignal_new(ls->base, SIGINT, on_stop_signal, ls);
	if (!ls->sigchld || !ls->sigterm || !ls->sigint || evsignal_add(ls->sigchld, NULL) ||
	    evsignal_add(ls->sigterm, NULL) || evsignal_add(ls->sigint, NULL)) {
		ls_log(ls, "libevent: cannot watch signals");
		goto out;
	}
	if (ls->node_index == 0) {
		struct gs_host h = {.ctx = ls,
				    .base = ls->base,
				    .node_count = ls->node_count,
				    .spawn = ls_host_spawn,
				    .signal = ls_host_signal,
				    .reply = ls_host_reply};
		ls->gs = gs_new(&h);
		if (!ls->gs) {
			ls_log(ls, "out of memory for global services");
			goto out;
		}
	}
	if (o->ctl_fd >= 0 && !ls_conn_add(ls, o->ctl_fd, 1))
		goto out;
	/* Children were forked before our SIGCHLD watch existed? Reap them now too. */
	ls_on_sigchld(SIGCHLD, 0, ls);
	if (ls->node_index == 0 && !ls_all_joined(ls)) {
		int ms = ls_startup_timeout_ms();
		struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
		ls->join_timer = evtimer_new(ls->base, ls_on_join_timeout, ls);
		if (!ls->join_timer || evtimer_add(ls->join_timer, &tv)) {
			ls_log(ls, "libevent: no timer");
			goto out;
		}
	} else if (ls_write_ready(ls)) {
		ls_log(ls, "%s", dragon_errmsg());
		goto out;
	}
	serving = 1;
	event_base_dispatch(ls->base);
	/* the agent first: it delivers what processes already handed it, then the rest is killed */
	ls_ta_stop(ls);
	kill_descendants();
	rv = 0;
out:
	/* Cleanup must finish: a late SIGTERM (the launcher's death signal can arrive after its
	 * socket closed) would kill LS half way once libevent restores the default handler. */
	{
		sigset_t stop;
		sigemptyset(&stop);
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGINT);
		sigaddset(&stop, SIGHUP);
		sigprocmask(SIG_BLOCK, &stop, NULL);
	}
	if (ls->base) {
		/* Whatever is still alive (a loop error) must not outlive LS. */
		kill_all(ls, SIGKILL);
		while (ls->procs)
			ls_proc_free(ls, ls->procs);
		while (ls->conns) {
			struct conn *c = ls->conns;
			ls->conns = c->next;
			bufferevent_free(c->bev);
			free(c);
		}
		while (ls->waits) {
			struct waitreq *w = ls->waits;
			ls->waits = w->next;
			if (w->timer)
				event_free(w->timer);
			free(w);
		}
		while (ls->pools) {
			struct pool *pl = ls->pools;
			ls->pools = pl->next;
			close(pl->fd);
			free(pl->name);
			free(pl);
		}
		gs_free(ls->gs);
		/* How close the links came to the node timeout: the evidence for choosing it. */
		for (uint32_t i = 0; i < ls->node_count; i++) {
			struct dg_link *l = ls->uplink && i == 0 ? ls->uplink
					    : ls->nodes		 ? ls->nodes[i].link
									 : NULL;
			if (l && (ls->debug || dg_link_max_silence_ms(l) > ls->node_timeout_ms / 2))
				ls_log(ls, "link to node %u: longest silence %lld ms (heartbeat %d ms, "
					   "node timeout %d ms)",
				       i, (long long)dg_link_max_silence_ms(l), ls->heartbeat_ms,
				       ls->node_timeout_ms);
		}
		if (ls->uplink) {
			dg_link_flush(ls->uplink, 200);
			dg_link_free(ls->uplink);
			ls->uplink = NULL;
		}
		for (uint32_t i = 0; ls->nodes && i < ls->node_count; i++)
			if (ls->nodes[i].link) {
				dg_link_flush(ls->nodes[i].link, 200);
				dg_link_free(ls->nodes[i].link);
			}
		free(ls->nodes);
		ls->nodes = NULL;
		while (ls->fwds) {
			struct fwd *f = ls->fwds;
			ls->fwds = f->next;
			free(f);
		}
		while (ls->rprocs) {
			struct rproc *rp = ls->rprocs;
			ls->rprocs = rp->next;
			free(rp);
		}
		free(ls->reached);
		if (ls->tcp)
			evconnlistener_free(ls->tcp);
		if (ls->lst)
			evconnlistener_free(ls->lst);
		if (ls->sigchld)
			event_free(ls->sigchld);
		if (ls->sigterm)
			event_free(ls->sigterm);
		if (ls->sigint)
			event_free(ls->sigint);
		if (ls->kill_timer)
			event_free(ls->kill_timer);
		if (ls->join_timer)
			event_free(ls->join_timer);
		event_base_free(ls->base);
	}
	if (lfd >= 0 && lfd != o->listen_fd)
		close(lfd);
	if (tcp_fd >= 0)
		close(tcp_fd);
	(void)own_sock;
	ls_ta_stop(ls); /* after an early failure (the normal path stopped it already) */
	if (report_failed && !serving)
		failed_write(ls);
	early.ls = NULL;
	ls_remove_files(ls);
	while (ls->chans) {
		struct lchan *lc = ls->chans;
		ls->chans = lc->next;
		dragon_channel_destroy(lc->ch);
		free(lc);
	}
	if (ls->node_pool)
		dragon_pool_destroy(ls->node_pool);
	sodium_memzero(ls->key, sizeof(ls->key));
	/* Embedded in a launcher that may itself be gone (SIGKILL): leave no directory behind. */
	if (o->ctl_fd >= 0 && rmdir(o->dir) == 0) {
		char base[PATH_MAX], *slash;
		snprintf(base, sizeof(base), "%s", o->dir);
		if ((slash = strrchr(base, '/')) && slash != base) {
			*slash = 0;
			if (rmdir(base) && ls->debug)
				ls_log(ls, "rmdir %s: %s", base, strerror(errno));
		}
	} else if (o->ctl_fd >= 0 && ls->debug) {
		ls_log(ls, "rmdir %s: %s", o->dir, strerror(errno));
	}
	if (ls->debug)
		ls_log(ls, "exiting");
	free(ls->base_env);
	if (ls->allowed)
		hwloc_bitmap_free(ls->allowed);
	if (ls->topo)
		hwloc_topology_destroy(ls->topo);
	if (ls_ta_exchange_end(ls) == 0)
		dg_boot_close(ls->boot);
	free(ls->lost);
	return rv;
}
