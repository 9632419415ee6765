/* runtime/ls/spawn.c: starting a process: environment, program lookup, CPU binding, vfork. */
#include "config.h"

#define _GNU_SOURCE 1
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <hwloc.h>
#include <hwloc/glibc-sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "ls/ls_internal.h"

extern char **environ;

/* The environment every process starts with: LS's own, without the fabric variables it sets. */
int ls_make_base_env(struct ls *ls)
{
	size_t n = 0, k = 0;

	for (char **e = environ; *e; e++)
		n++;
	ls->base_env = calloc(n + 1, sizeof(char *));
	if (!ls->base_env)
		return dg_err(DRAGON_ENOMEM, "environment");
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "DRAGON_", 7))
			ls->base_env[k++] = *e;
	return DRAGON_OK;
}

static int env_has(char **env, size_t n, const char *entry)
{
	size_t len = strcspn(entry, "=");

	for (size_t i = 0; i < n; i++)
		if (!strncmp(env[i], entry, len) && env[i][len] == '=')
			return 1;
	return 0;
}

/* Resolve argv0 the way execvp would, so a missing program is an error of the request. */
static int resolve(const char *argv0, const char *path, char *out, size_t outlen)
{
	if (strchr(argv0, '/')) {
		if (access(argv0, X_OK))
			return dg_err(errno == ENOENT ? DRAGON_ENOTFOUND : DRAGON_EPERM,
				      "%s: %s", argv0, strerror(errno));
		snprintf(out, outlen, "%s", argv0);
		return DRAGON_OK;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		struct stat st;
		if (n == 0)
			snprintf(out, outlen, "%s", argv0);
		else
			snprintf(out, outlen, "%.*s/%s", (int)n, path, argv0);
		if (!stat(out, &st) && S_ISREG(st.st_mode) && !access(out, X_OK))
			return DRAGON_OK;
		path += n;
		if (*path == ':')
			path++;
	}
	return dg_err(DRAGON_ENOTFOUND, "%s: program not found in PATH", argv0);
}

static int cpu_for(struct ls *ls, int idx, cpu_set_t *set)
{
	int n, k = 0, i;

	if (!ls->topo) {
		/* Loaded on first use: the topology costs milliseconds that a fabric without
		 * binding should not pay at start. */
		if (hwloc_topology_init(&ls->topo) || hwloc_topology_load(ls->topo))
			return dg_err(DRAGON_ESYS, "hwloc cannot load the topology");
		ls->allowed = hwloc_bitmap_alloc();
		if (!ls->allowed ||
		    hwloc_get_cpubind(ls->topo, ls->allowed, HWLOC_CPUBIND_PROCESS))
			return dg_err(DRAGON_ESYS, "hwloc cannot read the cpuset LS was given");
		hwloc_bitmap_and(ls->allowed, ls->allowed,
				 hwloc_topology_get_allowed_cpuset(ls->topo));
	}
	n = hwloc_bitmap_weight(ls->allowed);
	if (n <= 0)
		return dg_err(DRAGON_ESYS, "the cpuset LS was given is empty");
	idx %= n;
	hwloc_bitmap_foreach_begin(i, ls->allowed)
	{
		if (k++ == idx) {
			hwloc_bitmap_t one = hwloc_bitmap_alloc();
			hwloc_bitmap_only(one, (unsigned)i);
			hwloc_cpuset_to_glibc_sched_affinity(ls->topo, one, set, sizeof(*set));
			hwloc_bitmap_free(one);
			break;
		}
	}
	hwloc_bitmap_foreach_end();
	return DRAGON_OK;
}

struct spawn_ctx {
	const char *path;
	char **argv, **envp;
	const char *cwd;
	int fd_out, fd_err, devnull;
	const int *fds_in;    /* descriptors received with the request (ours, close-on-exec) */
	const int32_t *fds_at; /* the numbers the process gets them at (3 and above) */
	int nfds, fds_above;  /* fds_above: a number above every fds_at */
	cpu_set_t *cpus;
	volatile int err;
};

/* Runs in the vfork child: only async-signal-safe calls, results through c->err. */
static void __attribute__((noreturn, noinline)) child_main(struct spawn_ctx *c)
{
	sigset_t none;
	int up[DG_FDPASS_MAX]; /* this frame is the child's own; *c is shared with LS */

	setpgid(0, 0);
	/* If LS dies without cleaning up, the kernel kills what it started. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (dup2(c->devnull, 0) < 0 || dup2(c->fd_out, 1) < 0 || dup2(c->fd_err, 2) < 0)
		goto fail;
	/* Nothing of ours beyond 0-2 reaches the program: a descriptor a library opened without
	 * close-on-exec (PMIx's connection to slurmstepd) would otherwise be in every process this
	 * node starts, and in some but not others depending on when it was opened. Where the kernel
	 * lacks close_range (before 5.11) such a leak stays, as before. */
	(void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	/* The creator's descriptors: first all out of the way of the target numbers (the copies are
	 * close-on-exec), then each to its number, which dup2 leaves open across exec. */
	for (int i = 0; i < c->nfds; i++)
		if ((up[i] = fcntl(c->fds_in[i], F_DUPFD_CLOEXEC, c->fds_above)) < 0)
			goto fail;
	for (int i = 0; i < c->nfds; i++)
		if (dup2(up[i], c->fds_at[i]) < 0)
			goto fail;
	if (c->cpus && sched_setaffinity(0, sizeof(*c->cpus), c->cpus))
		goto fail;
	if (c->cwd && *c->cwd && chdir(c->cwd))
		goto fail;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(c->path, c->argv, c->envp);
fail:
	c->err = errno ? errno : EINVAL;
	_exit(127);
}

static pid_t start_child(struct spawn_ctx *c)
{
	pid_t pid = vfork();

	if (pid == 0)
		child_main(c);
	return pid;
}

/* Where the output of what `from` starts goes: to itself if it asked or takes output, else where
 * its own output goes (its parent's sink, or what the node it came from said). */
uint64_t ls_sink_for(struct ls *ls, const struct conn *from, const Dragon__SpawnArgs *a)
{
	struct proc *parent;

	if (a && a->output == DRAGON__OUTPUT_MODE__OUTPUT_DISCARD)
		return 0;
	/* Checked where the request entered the fabric (ls_check_output_conn). */
	if (a && a->output == DRAGON__OUTPUT_MODE__OUTPUT_TO_ME && a->output_conn)
		return a->output_conn;
	if ((a && a->output == DRAGON__OUTPUT_MODE__OUTPUT_TO_ME) || from->sink)
		return from->id;
	if (from->remote)
		return from->inherit_sink;
	if (from->puid && (parent = ls_proc_find(ls, from->puid)))
		return parent->sink;
	return 0;
}

/* A Spawn or GroupCreate from a client of this node that names an output connection: it must be
 * an output connection (Hello.output) of the same process. Requests relayed from other nodes
 * were checked on theirs. */
int ls_check_output_conn(struct conn *from, const Dragon__Msg *req)
{
	const Dragon__SpawnArgs *a = NULL;
	struct conn *oc;

	if (req->body_case == DRAGON__MSG__BODY_SPAWN && req->spawn)
		a = req->spawn->args;
	else if (req->body_case == DRAGON__MSG__BODY_GROUP_CREATE && req->group_create)
		a = req->group_create->args;
	if (from->remote || !a || !a->output_conn)
		return DRAGON_OK;
	if (a->output != DRAGON__OUTPUT_MODE__OUTPUT_TO_ME)
		return dg_err(DRAGON_EINVAL, "output_conn is set but the output mode is not "
					     "OUTPUT_TO_ME");
	oc = ls_conn_find(from->ls, a->output_conn);
	if (!oc || oc->remote || !oc->output || oc->closing || oc->pid != from->pid)
		return dg_err(DRAGON_EINVAL, "output_conn %llx is no output connection of this "
					     "process (open one with a Hello with output set and "
					     "pass its HelloReply.conn)",
			      (unsigned long long)a->output_conn);
	return DRAGON_OK;
}

/* The descriptors a Spawn hands over: they came with it, from a client of this node. */
static int check_fds(const Dragon__SpawnArgs *a, const struct conn *from, uint64_t gid,
		     struct spawn_ctx *sc)
{
	int above = 3;

	if (a->n_fds == 0)
		return DRAGON_OK;
	if (from->remote || gid)
		return dg_err(DRAGON_EINVAL, "descriptors can only be handed to a single process "
					     "started on its creator's node (not from another node, "
					     "nor to a group)");
	if (a->n_fds > DG_FDPASS_MAX || from->fds_lost)
		return dg_err(DRAGON_EINVAL, "at most %d descriptors can be handed to a process",
			      DG_FDPASS_MAX);
	if ((size_t)from->nfds != a->n_fds)
		return dg_err(DRAGON_EINVAL, "the request names %zu descriptors but %d came with it "
					     "(send them with its first byte, SCM_RIGHTS)",
			      a->n_fds, from->nfds);
	for (size_t i = 0; i < a->n_fds; i++) {
		if (a->fds[i] < 3)
			return dg_err(DRAGON_EINVAL, "descriptor number %d: 0-2 are the process's "
						     "stdin/stdout/stderr", a->fds[i]);
		for (size_t j = 0; j < i; j++)
			if (a->fds[j] == a->fds[i])
				return dg_err(DRAGON_EINVAL, "descriptor number %d is named twice",
					      a->fds[i]);
		if (a->fds[i] >= above)
			above = a->fds[i] + 1;
	}
	sc->fds_in = from->fds;
	sc->fds_at = a->fds;
	sc->nfds = (int)a->n_fds;
	sc->fds_above = above;
	return DRAGON_OK;
}

/* Start a process for `from`. *puid_out: in, a puid GS chose, or 0 for a new one of this node. */
int ls_spawn(struct ls *ls, const Dragon__SpawnArgs *a, struct conn *from, uint64_t gid, int rank,
	     int size, uint64_t *puid_out, pid_t *pid_out)
{
	char path[PATH_MAX], **envp = NULL, **argv = NULL, *fab[12] = {0};
	int po[2] = {-1, -1}, pe[2] = {-1, -1}, pi[2] = {-1, -1}, devnull = -1, nf = 0, rv = -1;
	size_t ne = 0, nbase = 0;
	struct spawn_ctx sc = {0};
	cpu_set_t cpus;
	struct proc *p = NULL;
	const char *pathvar = NULL;
	uint64_t puid;
	sigset_t all, old;
	pid_t pid;

	if (!a || a->n_argv == 0 || !a->argv[0][0])
		return dg_err(DRAGON_EINVAL, "no program to start (empty argv)");
	if (a->n_argv > LS_ARGV_MAX || a->n_env > LS_ARGV_MAX)
		return dg_err(DRAGON_ETOOBIG, "more than %d arguments or environment entries",
			      LS_ARGV_MAX);
	for (size_t i = 0; i < a->n_env; i++) {
		if (!strchr(a->env[i], '=') || a->env[i][0] == '=')
			return dg_err(DRAGON_EINVAL, "environment entry %zu is not NAME=VALUE", i);
		if (!strncmp(a->env[i], "PATH=", 5))
			pathvar = a->env[i] + 5;
	}
	if ((rv = check_fds(a, from, gid, &sc)))
		return rv;
	rv = -1;
	if (ls->stopping)
		return dg_err(DRAGON_ECLOSED, "local services are shutting down");
	if (!pathvar)
		pathvar = getenv("PATH");
	if ((rv = resolve(a->argv[0], pathvar, path, sizeof(path))))
		return rv;
	rv = -1;
	if (a->cpu >= 0) {
		if ((rv = cpu_for(ls, a->cpu, &cpus)))
			return rv;
		rv = -1;
		sc.cpus = &cpus;
	}
	/* GS chooses the puid of a process it places on another node. */
	puid = *puid_out ? *puid_out : ls->next_puid++;
	for (char **e = ls->base_env; *e; e++)
		nbase++;
	envp = calloc(nbase + a->n_env + 13, sizeof(char *));
	argv = calloc(a->n_argv + 1, sizeof(char *));
	if (!envp || !argv) {
		rv = dg_err(DRAGON_ENOMEM, "spawn");
		goto out;
	}
	if (asprintf(&fab[nf++], "DRAGON_PUID=%llu", (unsigned long long)puid) < 0 ||
	    asprintf(&fab[nf++], "DRAGON_RUNTIME_DIR=%s", ls->o->dir) < 0 ||
	    asprintf(&fab[nf++], "DRAGON_LS_SOCKET=%s", ls->sock_path) < 0 ||
	    asprintf(&fab[nf++], "DRAGON_FABRIC_ID=%s", ls->o->fabric_id) < 0 ||
	    asprintf(&fab[nf++], "DRAGON_NODE_INDEX=%u", ls->node_index) < 0 ||
	    asprintf(&fab[nf++], "DRAGON_NODE_COUNT=%u", ls->node_count) < 0 ||
	    (ls->ta_pid && asprintf(&fab[nf++], "DRAGON_TA_INFO=%s/ta.info", ls->o->dir) < 0) ||
	    (gid && (asprintf(&fab[nf++], "DRAGON_GROUP_ID=%llu", (unsigned long long)gid) < 0 ||
		     asprintf(&fab[nf++], "DRAGON_GROUP_RANK=%d", rank) < 0 ||
		     asprintf(&fab[nf++], "DRAGON_GROUP_SIZE=%d", size) < 0))) {
		rv = dg_err(DRAGON_ENOMEM, "spawn environment");
		goto out;
	}
	for (int i = 0; i < nf; i++)
		envp[ne++] = fab[i];
	for (size_t i = 0; i < a->n_env; i++)
		if (strncmp(a->env[i], "DRAGON_", 7) && !env_has(envp, ne, a->env[i]))
			envp[ne++] = a->env[i];
	for (char **e = ls->base_env; *e; e++)
		if (!env_has(envp, ne, *e))
			envp[ne++] = *e;
	for (size_t i = 0; i < a->n_argv; i++)
		argv[i] = a->argv[i];
	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC) ||
	    (a->stdin_pipe ? pipe2(pi, O_CLOEXEC)
			   : (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)) {
		rv = dg_err_sys("pipes for the input and output of %s", a->argv[0]);
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->argv0 = strdup(a->argv[0]))) {
		rv = dg_err(DRAGON_ENOMEM, "process record");
		goto out;
	}
	sc.path = path;
	sc.argv = argv;
	sc.envp = envp;
	sc.cwd = a->cwd;
	sc.fd_out = po[1];
	sc.fd_err = pe[1];
	sc.devnull = a->stdin_pipe ? pi[0] : devnull;
	/* No handler may run in the vfork child, which shares our memory. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = start_child(&sc);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		rv = dg_err_sys("vfork for %s", a->argv[0]);
		goto out;
	}
	if (sc.err) {
		int st;
		waitpid(pid, &st, 0);
		errno = sc.err;
		if (a->cwd && *a->cwd)
			rv = dg_err(sc.err == ENOENT ? DRAGON_ENOTFOUND : DRAGON_ESYS,
				    "starting %s in %s: %s", a->argv[0], a->cwd, strerror(sc.err));
		else
			rv = dg_err(sc.err == ENOENT ? DRAGON_ENOTFOUND : DRAGON_ESYS,
				    "starting %s: %s", a->argv[0], strerror(sc.err));
		goto out;
	}
	p->ls = ls;
	p->puid = puid;
	p->pid = pid;
	p->gid = gid;
	p->rank = rank;
	p->outlive = a->outlive;
	p->creator = ls_owner_of(from);
	p->exit_to = from->sink ? from->id : 0;
	p->sink = ls_sink_for(ls, from, a);
	for (int i = 0; i < 2; i++) {
		int fd = i ? pe[0] : po[0];
		evutil_make_socket_nonblocking(fd);
		p->out[i] = bufferevent_socket_new(ls->base, fd, BEV_OPT_CLOSE_ON_FREE);
		if (!p->out[i]) {
			close(fd);
			continue;
		}
		bufferevent_setcb(p->out[i], ls_out_read, NULL, ls_out_event, p);
		bufferevent_enable(p->out[i], EV_READ);
	}
	po[0] = pe[0] = -1;
	if (a->stdin_pipe) {
		evutil_make_socket_nonblocking(pi[1]);
		p->in = bufferevent_socket_new(ls->base, pi[1], BEV_OPT_CLOSE_ON_FREE);
		if (p->in) {
			pi[1] = -1;
			bufferevent_setcb(p->in, NULL, ls_in_write, ls_in_event, p);
			bufferevent_setwatermark(p->in, EV_WRITE, LS_INPUT_HIGH / 4, 0);
			bufferevent_enable(p->in, EV_WRITE);
		}
	}
	p->next = ls->procs;
	ls->procs = p;
	p = NULL;
	*puid_out = puid;
	if (pid_out)
		*pid_out = pid;
	rv = DRAGON_OK;
out:
	for (int i = 0; i < nf; i++)
		free(fab[i]);
	free(envp);
	free(argv);
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
		if (pi[i] >= 0)
			close(pi[i]);
	}
	if (devnull >= 0)
		close(devnull);
	if (p) {
		free(p->argv0);
		free(p);
	}
	return rv;
}
