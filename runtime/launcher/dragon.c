/* runtime/launcher/dragon.c: `dragon PROG [ARGS]` runs PROG in a fresh one-node fabric; `dragon status`. */
#include "config.h"

#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "launcher/rundir.h"
#include "launcher/libexec.h"
#include "ls/ls.h"
#include "proto/wire.h"

/* Exit codes of the launcher itself, as env(1) and timeout(1) use them. */
#define EXIT_DRAGON 125
#define EXIT_NOEXEC 126
#define EXIT_NOTFOUND 127

static const char usage[] =
	"Usage: dragon [OPTIONS] PROG [ARGS...]\n"
	"       dragon status [--json] [--runtime-dir DIR]\n"
	"\n"
	"Run PROG as a process of a Dragon fabric, forward the output of every process it starts,\n"
	"and exit with PROG's status. Which fabric:\n"
	"  - in a job step that has one (srun --dragon; DRAGON_LS_SOCKET is set): that one;\n"
	"  - on a node of a Slurm allocation of several nodes: a fresh one over all its nodes,\n"
	"    started as a job step (srun --overlap --mpi=pmix) and shut down when PROG ends;\n"
	"  - otherwise, or with --local: a fresh one on this machine.\n"
	"A fabric dragon started leaves nothing behind: processes, sockets, runtime directories\n"
	"and pools go with it.\n"
	"\n"
	"Options:\n"
	"  -l, --label            prefix each output line with RANK/HOST: (like srun -l)\n"
	"      --local            always start a fabric on this machine only\n"
	"      --runtime-dir DIR  where fabrics keep their sockets (default $XDG_RUNTIME_DIR/dragon\n"
	"                         or /tmp/dragon-UID)\n"
	"      --json             (status) print JSON\n"
	"  -h, --help             this text\n"
	"  -V, --version          the version\n"
	"\n"
	"Exit status: PROG's status (128+N if it died of signal N); 125 if dragon itself failed,\n"
	"126 if PROG is not executable, 127 if PROG was not found; 128+N if dragon was stopped\n"
	"by signal N (Ctrl-C: 130).\n"
	"Environment: DRAGON_DEBUG=1 logs every request of local services.\n";

static int resolve_prog(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];
	struct stat st;

	if (strchr(prog, '/')) {
		if (stat(prog, &st)) {
			fprintf(stderr, "dragon: %s: %s\n", prog, strerror(errno));
			return errno == ENOENT ? EXIT_NOTFOUND : EXIT_NOEXEC;
		}
		if (!S_ISREG(st.st_mode) || access(prog, X_OK)) {
			fprintf(stderr, "dragon: %s: not an executable file\n", prog);
			return EXIT_NOEXEC;
		}
		return 0;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)n, path, n ? "/" : "", prog);
		if (!stat(buf, &st) && S_ISREG(st.st_mode) && !access(buf, X_OK))
			return 0;
		path += n;
		if (*path == ':')
			path++;
	}
	fprintf(stderr, "dragon: %s: command not found\n", prog);
	return EXIT_NOTFOUND;
}

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void print_output(const Dragon__Output *o, int label)
{
	int fd = o->stream == 2 ? 2 : 1;

	if (label) {
		char pre[320];
		int n = o->rank >= 0 ? snprintf(pre, sizeof(pre), "%d/%s: ", o->rank, o->host)
				     : snprintf(pre, sizeof(pre), "p%llu/%s: ",
						/* the node is in the host name: show its counter */
						(unsigned long long)(o->puid & 0x7fffffffffffull),
						o->host);
		if (n > 0)
			write_all(fd, pre, (size_t)n < sizeof(pre) ? (size_t)n : sizeof(pre) - 1);
	}
	write_all(fd, o->data.data, o->data.len);
}

static int send_msg(int fd, Dragon__Msg *m)
{
	int rc = dg_wire_send(fd, m, -1);

	if (rc && rc != DRAGON_EPEER)
		fprintf(stderr, "dragon: talking to local services: %s\n", dragon_errmsg());
	return rc;
}

static int send_shutdown(int fd, int signo)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Shutdown s = DRAGON__SHUTDOWN__INIT;

	s.signo = signo;
	m.seq = 3;
	m.body_case = DRAGON__MSG__BODY_SHUTDOWN;
	m.shutdown = &s;
	return send_msg(fd, &m);
}

/* Signals become messages: Ctrl-C is an orderly shutdown, a second one is final. */
static int take_signals(sigset_t *old)
{
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, old);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		fprintf(stderr, "dragon: signalfd: %s\n", strerror(errno));
	return sfd;
}

static int send_signal(int fd, uint64_t puid, int signo)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Signal s = DRAGON__SIGNAL__INIT;

	s.puid = puid;
	s.signo = signo;
	m.seq = 4;
	m.body_case = DRAGON__MSG__BODY_SIGNAL;
	m.signal = &s;
	return send_msg(fd, &m);
}

/*
 * Start PROG through the local services on fd and forward the output of the fabric's processes
 * until PROG ends. own: this launcher owns the fabric, so PROG's end or a signal shuts it down
 * (and we wait for the services to close the connection); otherwise a signal goes to PROG only
 * and we return as soon as it ends. Returns PROG's status, or -1 if it never ran.
 */
/*
 * Our stdin goes to PROG's, unless it is a terminal we do not own (a background job would be
 * stopped by SIGTTIN for reading it): then PROG's stdin is /dev/null, as before.
 */
static int forward_stdin(void)
{
	return !isatty(0) || tcgetpgrp(0) == getpgrp();
}

/* Send PROG the next piece of our stdin (seq 5); at end of input, eof. Returns 0 at the end. */
static int send_input(int fd, uint64_t puid)
{
	static unsigned char buf[64 * 1024];
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Input in = DRAGON__INPUT__INIT;
	ssize_t n;

	do
		n = read(0, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 1;
	in.puid = puid;
	if (n > 0) {
		in.data.data = buf;
		in.data.len = (size_t)n;
	} else {
		in.eof = 1;
	}
	m.seq = 5;
	m.body_case = DRAGON__MSG__BODY_INPUT;
	m.input = &in;
	send_msg(fd, &m);
	return n > 0;
}

static int session(int fd, int sfd, char **argv, int label, int own, int *stopsig)
{
	Dragon__Msg m0 = DRAGON__MSG__INIT;
	Dragon__Hello h = DRAGON__HELLO__INIT;
	Dragon__Spawn sp = DRAGON__SPAWN__INIT;
	Dragon__SpawnArgs a = DRAGON__SPAWN_ARGS__INIT;
	uint64_t prog_puid = 0;
	int status = -1, shut_sent = 0, nsig = 0;
	/* stdin: 1 while there is more to read, and whether an Input waits for its ok */
	int in_open = forward_stdin(), in_waiting = 0;
	char cwd[PATH_MAX];
	size_t n = 0;

	while (argv[n])
		n++;
	h.pid = getpid();
	h.sink = 1;
	m0.seq = 1;
	m0.body_case = DRAGON__MSG__BODY_HELLO;
	m0.hello = &h;
	if (send_msg(fd, &m0))
		return -1;
	a.n_argv = n;
	a.argv = argv;
	a.cpu = -1;
	a.output = DRAGON__OUTPUT_MODE__OUTPUT_TO_ME;
	a.stdin_pipe = in_open;
	/* Local services may run elsewhere in the file system's view: start PROG where we are. */
	if (!own && getcwd(cwd, sizeof(cwd)))
		a.cwd = cwd;
	sp.args = &a;
	m0.seq = 2;
	m0.body_case = DRAGON__MSG__BODY_SPAWN;
	m0.spawn = &sp;
	if (send_msg(fd, &m0))
		return -1;
	for (;;) {
		struct pollfd p[3] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN},
				      {.fd = 0, .events = POLLIN}};
		Dragon__Msg *m = NULL;
		int rc, feed = in_open && !in_waiting && prog_puid && status < 0;

		if (poll(p, feed ? 3 : 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				int sig = (int)si.ssi_signo == SIGHUP ? SIGTERM : (int)si.ssi_signo;
				if (!*stopsig)
					*stopsig = (int)si.ssi_signo;
				/* First signal: pass it on, then SIGKILL after a grace; second: now. */
				if (own)
					send_shutdown(fd, shut_sent ? SIGKILL : sig);
				else if (prog_puid)
					send_signal(fd, prog_puid, nsig ? SIGKILL : sig);
				else
					return -1;
				shut_sent = 1;
				nsig++;
			}
		}
		if (feed && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
			in_open = send_input(fd, prog_puid);
			in_waiting = 1;
		}
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		rc = dg_wire_recv(fd, &m, NULL, -1);
		if (rc == DRAGON_EPEER)
			break;
		if (rc) {
			fprintf(stderr, "dragon: from local services: %s\n", dragon_errmsg());
			continue;
		}
		switch (m->body_case) {
		case DRAGON__MSG__BODY_OUTPUT:
			print_output(m->output, label);
			break;
		case DRAGON__MSG__BODY_SPAWN_REPLY:
			prog_puid = m->spawn_reply->puid;
			break;
		case DRAGON__MSG__BODY_PROC_EXIT:
			if (m->proc_exit->puid == prog_puid && status < 0) {
				status = m->proc_exit->status;
				if (!own) {
					dg_msg_free(m);
					return status;
				}
				if (!shut_sent)
					send_shutdown(fd, SIGTERM);
				shut_sent = 1;
			}
			break;
		case DRAGON__MSG__BODY_OK:
			if (m->seq == 5)
				in_waiting = 0; /* local services took it: the next piece may go */
			break;
		case DRAGON__MSG__BODY_ERROR:
			if (m->seq == 5) {
				in_open = 0; /* PROG closed its stdin or ended: stop reading ours */
			} else if (m->seq == 2) {
				fprintf(stderr, "dragon: cannot start %s: %s\n", argv[0],
					m->error->msg);
				status = m->error->rc == DRAGON_ENOTFOUND ? EXIT_NOTFOUND
									  : EXIT_NOEXEC;
				if (!own) {
					dg_msg_free(m);
					return status;
				}
				send_shutdown(fd, SIGTERM);
				shut_sent = 1;
			} else if (m->error->rc) {
				fprintf(stderr, "dragon: local services: %s\n", m->error->msg);
			}
			break;
		default:
			break;
		}
		dg_msg_free(m);
	}
	return status;
}

static int exit_code(int status, int stopsig)
{
	if (stopsig)
		return 128 + stopsig;
	return status >= 0 ? status : EXIT_DRAGON;
}

/* A fresh fabric on this machine: local and global services in a child, PROG its first process. */
static int run_local(const char *basedir, int label, char **argv)
{
	struct dg_rundir rd;
	char fabric_id[17];
	uint8_t rnd[8];
	int sv[2] = {-1, -1}, lfd = -1, sfd = -1, rv = EXIT_DRAGON, status = -1, stopsig = 0;
	sigset_t old;
	pid_t ls_pid = -1;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		fprintf(stderr, "dragon: getrandom: %s\n", strerror(errno));
		return rv;
	}
	for (int i = 0; i < 8; i++)
		snprintf(fabric_id + 2 * i, 3, "%02x", rnd[i]);
	if (dg_rundir_create(basedir, fabric_id, &rd)) {
		fprintf(stderr, "dragon: %s\n", dragon_errmsg());
		return rv;
	}
	if (strlen(rd.sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "dragon: socket path %s is too long for a unix socket\n", rd.sock);
		goto out;
	}
	strcpy(sa.sun_path, rd.sock);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 128)) {
		fprintf(stderr, "dragon: cannot listen on %s: %s\n", rd.sock, strerror(errno));
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		fprintf(stderr, "dragon: socketpair: %s\n", strerror(errno));
		goto out;
	}
	if ((sfd = take_signals(&old)) < 0)
		goto out;
	fflush(NULL);
	ls_pid = fork();
	if (ls_pid < 0) {
		fprintf(stderr, "dragon: fork: %s\n", strerror(errno));
		goto out;
	}
	if (ls_pid == 0) {
		struct ls_opts o = {.dir = rd.dir,
				    .fabric_id = fabric_id,
				    .listen_fd = lfd,
				    .ctl_fd = sv[1],
				    .boot = NULL};
		close(sv[0]);
		close(sfd);
		/* A session of its own: the terminal's Ctrl-C reaches the launcher only. */
		setsid();
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (getppid() == 1)
			_exit(EXIT_DRAGON);
		_exit(ls_run(&o) ? EXIT_DRAGON : 0);
	}
	close(sv[1]);
	sv[1] = -1;
	close(lfd);
	lfd = -1;
	status = session(sv[0], sfd, argv, label, 1, &stopsig);
	close(sv[0]);
	sv[0] = -1;
	for (;;) {
		int st;
		pid_t r = waitpid(ls_pid, &st, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == ls_pid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !stopsig)
			fprintf(stderr, "dragon: local services ended abnormally (%s %d)\n",
				WIFEXITED(st) ? "status" : "signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		break;
	}
	rv = exit_code(status, stopsig);
out:
	if (sfd >= 0)
		close(sfd);
	for (int i = 0; i < 2; i++)
		if (sv[i] >= 0)
			close(sv[i]);
	if (lfd >= 0)
		close(lfd);
	dg_rundir_remove(&rd);
	return rv;
}

/* Connect to a local services socket; -1 (errno set) if it does not accept (yet). */
static int dial_ls(const char *sock)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(sock) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;
		close(fd);
		errno = e;
		fd = -1;
	}
	return fd;
}

/* Inside a job step with a fabric (the Slurm plugin set DRAGON_LS_SOCKET): run PROG in it. */
static int run_join(const char *sock, int label, char **argv)
{
	sigset_t old;
	int fd, sfd, status, stopsig = 0;

	if ((fd = dial_ls(sock)) < 0) {
		fprintf(stderr, "dragon: cannot reach this job's fabric at %s: %s\n", sock,
			strerror(errno));
		return EXIT_DRAGON;
	}
	if ((sfd = take_signals(&old)) < 0) {
		close(fd);
		return EXIT_DRAGON;
	}
	status = session(fd, sfd, argv, label, 0, &stopsig);
	close(fd);
	close(sfd);
	return exit_code(status, stopsig);
}

static int env_int(const char *name)
{
	const char *v = getenv(name);

	return v ? atoi(v) : 0;
}

/* Keep a variable for the fabric step? Not the plugin's, PMIx's or a fabric's own. */
static int scrubbed(const char *e)
{
	static const char *const keep[] = {"DRAGON_DEBUG=",	    "DRAGON_STARTUP_TIMEOUT=",
					   "DRAGON_TA",		    "DRAGON_LIBEXECDIR=",
					   "DRAGON_LS_BIND=",	    NULL};

	for (int i = 0; keep[i]; i++)
		if (!strncmp(e, keep[i], strlen(keep[i])))
			return 0;
	return !strncmp(e, "DRAGON_", 7) || !strncmp(e, "PMIX_", 5) ||
	       !strncmp(e, "SLURM_SPANK_", 12) || !strncmp(e, "_SLURM_SPANK_", 13) ||
	       !strncmp(e, "SPANK_", 6);
}

/*
 * Inside a Slurm allocation without the plugin: start the fabric as a step over every node of the
 * job (one dragon-ls per node, PMIx wire-up), join it on this node, run PROG, and shut it down.
 */
static int run_alloc(const char *basedir, int label, char **argv)
{
	char fabric_id[40], base[PATH_MAX], sock[PATH_MAX + 64], ready[PATH_MAX + 64], ls[PATH_MAX],
		nodes[16];
	uint8_t rnd[4];
	int sfd = -1, fd = -1, status = -1, stopsig = 0, timeout_ms, nn = env_int("SLURM_JOB_NUM_NODES");
	sigset_t old;
	pid_t step;
	size_t ne = 0;
	char **envp;
	extern char **environ;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd) || dg_rundir_base(basedir, base, sizeof(base)) ||
	    dg_libexec_find("dragon-ls", "ls", ls, sizeof(ls))) {
		fprintf(stderr, "dragon: %s\n", dragon_errmsg());
		return EXIT_DRAGON;
	}
	snprintf(fabric_id, sizeof(fabric_id), "job%s-%02x%02x%02x%02x", getenv("SLURM_JOB_ID"), rnd[0],
		 rnd[1], rnd[2], rnd[3]);
	snprintf(sock, sizeof(sock), "%s/%s/%s", base, fabric_id, LS_SOCK_NAME);
	snprintf(nodes, sizeof(nodes), "%d", nn);
	for (char **e = environ; *e; e++)
		ne++;
	if (!(envp = calloc(ne + 2, sizeof(char *)))) {
		fprintf(stderr, "dragon: out of memory\n");
		return EXIT_DRAGON;
	}
	ne = 0;
	for (char **e = environ; *e; e++)
		if (!scrubbed(*e))
			envp[ne++] = *e;
	/* Marks the step so the plugin, if a node has it, leaves it alone. */
	envp[ne++] = "DRAGON_FABRIC_STEP=1";
	if ((sfd = take_signals(&old)) < 0) {
		free(envp);
		return EXIT_DRAGON;
	}
	fflush(NULL);
	step = fork();
	if (step < 0) {
		fprintf(stderr, "dragon: fork: %s\n", strerror(errno));
		free(envp);
		close(sfd);
		return EXIT_DRAGON;
	}
	if (step == 0) {
		/* No --cpu-bind: one task per node is bound to the node's whole grant, which LS
		 * divides itself; and clusters without task/affinity warn about the option. */
		char *sargv[] = {"srun", "--overlap", "--mpi=pmix", "-N", nodes, "--ntasks-per-node=1",
				 "--kill-on-bad-exit=1", "--job-name=dragon-fabric", "--quiet", ls,
				 "--base", base, "--fabric-id", fabric_id, "--boot", "pmix", NULL};
		/* Its own process group: the terminal's Ctrl-C is ours to turn into a shutdown. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvpe("srun", sargv, envp);
		fprintf(stderr, "dragon: cannot run srun: %s\n", strerror(errno));
		_exit(EXIT_NOTFOUND);
	}
	free(envp);
	timeout_ms = (env_int("DRAGON_STARTUP_TIMEOUT") > 0 ? env_int("DRAGON_STARTUP_TIMEOUT") : 30) * 1000;
	snprintf(ready, sizeof(ready), "%s/%s/%s", base, fabric_id, LS_READY_NAME);
	for (int waited = 0; fd < 0; waited += 10) {
		int st;
		/* Ready, not merely listening: the head node says so once every node joined it. */
		if (access(ready, F_OK) == 0 && (fd = dial_ls(sock)) >= 0)
			break;
		if (waitpid(step, &st, WNOHANG) == step) {
			fprintf(stderr, "dragon: the fabric step ended before it was ready (%s %d); see "
					"the messages above\n",
				WIFEXITED(st) ? "status" : "signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			close(sfd);
			return EXIT_DRAGON;
		}
		if (waited >= timeout_ms) {
			fprintf(stderr, "dragon: local services did not appear at %s within %d s "
					"(DRAGON_STARTUP_TIMEOUT)\n",
				sock, timeout_ms / 1000);
			break;
		}
		usleep(10000);
	}
	if (fd >= 0) {
		status = session(fd, sfd, argv, label, 1, &stopsig);
		close(fd);
	}
	/* The services stop when node 0's does; srun then ends. Bounded, then by force. */
	for (int waited = 0;; waited += 10) {
		int st;
		pid_t r = waitpid(step, &st, WNOHANG);
		if (r == step || (r < 0 && errno != EINTR))
			break;
		if (waited == 10000 || waited == 15000)
			kill(step, waited == 10000 ? SIGTERM : SIGKILL);
		usleep(10000);
	}
	close(sfd);
	return exit_code(status, stopsig);
}

static int run(const char *basedir, int label, int local, char **argv)
{
	const char *sock = getenv("DRAGON_LS_SOCKET");
	int rv;

	if ((rv = resolve_prog(argv[0])))
		return rv;
	if (local)
		return run_local(basedir, label, argv);
	if (sock && *sock)
		return run_join(sock, label, argv);
	/* On a node of a Slurm allocation of several nodes (not on the login node of salloc). */
	if (getenv("SLURM_JOB_ID") && getenv("SLURMD_NODENAME") && env_int("SLURM_JOB_NUM_NODES") > 1)
		return run_alloc(basedir, label, argv);
	return run_local(basedir, label, argv);
}

/* ---- dragon status --------------------------------------------------------------------- */

static const char *kind_name(int k)
{
	switch (k) {
	case DRAGON__KIND__KIND_PROCESS:
		return "process";
	case DRAGON__KIND__KIND_GROUP:
		return "group";
	case DRAGON__KIND__KIND_POOL:
		return "pool";
	case DRAGON__KIND__KIND_CHANNEL:
		return "channel";
	case DRAGON__KIND__KIND_USER:
		return "user";
	default:
		return "none";
	}
}

static int ask_status(int fd, int at_node, uint32_t node, Dragon__Msg **out)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Status s = DRAGON__STATUS__INIT;
	int rc;

	*out = NULL;
	m.seq = 1;
	s.at_node = at_node;
	s.node = node;
	m.body_case = DRAGON__MSG__BODY_STATUS;
	m.status = &s;
	rc = dg_wire_send(fd, &m, -1);
	if (!rc)
		rc = dg_wire_recv(fd, out, NULL, 5000);
	if (!rc && (*out)->body_case == DRAGON__MSG__BODY_ERROR) {
		rc = dg_err((*out)->error->rc, "node %u: %s", node, (*out)->error->msg);
		dg_msg_free(*out);
		*out = NULL;
	} else if (!rc && (*out)->body_case != DRAGON__MSG__BODY_STATUS_REPLY) {
		rc = dg_err(DRAGON_EPROTO, "unexpected %s reply", dg_msg_name(*out));
		dg_msg_free(*out);
		*out = NULL;
	}
	return rc;
}

/* Append src's n pointers to a malloc'd array *dst of *dn (the items stay owned by src). */
static int append_ptrs(void ***dst, size_t *dn, void **src, size_t n)
{
	void **a;

	if (!n)
		return 0;
	a = realloc(*dst, (*dn + n) * sizeof(void *));
	if (!a)
		return -1;
	memcpy(a + *dn, src, n * sizeof(void *));
	*dst = a;
	*dn += n;
	return 0;
}

/*
 * The fabric's status through one node's local services: the head node's view (every node,
 * GS's groups and names, its own processes, pools and channels), then each other node's
 * processes, pools and channels, merged into *view. *parts holds the replies that own the items (free them after).
 */
static int query(const char *sock, Dragon__StatusReply *view, Dragon__Msg ***parts, size_t *nparts)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	Dragon__Msg *head = NULL, **all = NULL;
	size_t n = 0;
	int fd, rc;

	if (strlen(sock) >= sizeof(sa.sun_path))
		return dg_err(DRAGON_EINVAL, "socket path too long: %s", sock);
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return dg_err_sys("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = dg_err(DRAGON_EPEER, "cannot reach %s: %s", sock, strerror(errno));
		close(fd);
		return rc;
	}
	if ((rc = ask_status(fd, 0, 0, &head)))
		goto out;
	all = calloc(head->status_reply->n_nodes + 1, sizeof(*all));
	if (!all) {
		rc = dg_err(DRAGON_ENOMEM, "status");
		goto out;
	}
	all[n++] = head;
	*view = *head->status_reply;
	view->procs = NULL;
	view->n_procs = 0;
	view->objects = NULL;
	view->n_objects = 0;
	if (append_ptrs((void ***)&view->procs, &view->n_procs, (void **)head->status_reply->procs,
			head->status_reply->n_procs) ||
	    append_ptrs((void ***)&view->objects, &view->n_objects,
			(void **)head->status_reply->objects, head->status_reply->n_objects)) {
		rc = dg_err(DRAGON_ENOMEM, "status");
		goto out;
	}
	for (size_t i = 0; i < head->status_reply->n_nodes; i++) {
		uint32_t node = head->status_reply->nodes[i]->index;
		Dragon__Msg *m = NULL;
		if (node == 0)
			continue;
		if (ask_status(fd, 1, node, &m)) {
			fprintf(stderr, "dragon status: %s\n", dragon_errmsg());
			continue;
		}
		all[n++] = m;
		if (append_ptrs((void ***)&view->procs, &view->n_procs,
				(void **)m->status_reply->procs, m->status_reply->n_procs) ||
		    append_ptrs((void ***)&view->objects, &view->n_objects,
				(void **)m->status_reply->objects, m->status_reply->n_objects)) {
			rc = dg_err(DRAGON_ENOMEM, "status");
			goto out;
		}
	}
	head = NULL;
	rc = 0;
out:
	close(fd);
	*parts = all;
	*nparts = n;
	dg_msg_free(head && !n ? head : NULL);
	return rc;
}

static void query_free(Dragon__StatusReply *view, Dragon__Msg **parts, size_t n)
{
	free(view->procs);
	free(view->objects);
	for (size_t i = 0; i < n; i++)
		dg_msg_free(parts[i]);
	free(parts);
}

static json_t *status_json(const Dragon__StatusReply *r)
{
	json_t *o = json_object(), *a;

	json_object_set_new(o, "fabric_id", json_string(r->fabric_id));
	a = json_array();
	for (size_t i = 0; i < r->n_nodes; i++)
		json_array_append_new(a, json_pack("{s:i,s:s,s:i,s:i}", "index",
						   (int)r->nodes[i]->index, "host",
						   r->nodes[i]->host, "ls_pid",
						   (int)r->nodes[i]->ls_pid, "cpus",
						   (int)r->nodes[i]->ncpus));
	json_object_set_new(o, "nodes", a);
	a = json_array();
	for (size_t i = 0; i < r->n_procs; i++) {
		const Dragon__ProcInfo *p = r->procs[i];
		json_t *x = json_pack("{s:I,s:i,s:i,s:b,s:s}", "puid", (json_int_t)p->puid, "pid",
				      (int)p->pid, "node", (int)p->node, "running", p->running,
				      "program", p->argv0);
		if (!p->running)
			json_object_set_new(x, "status", json_integer(p->status));
		if (p->gid) {
			json_object_set_new(x, "group", json_integer((json_int_t)p->gid));
			json_object_set_new(x, "rank", json_integer(p->rank));
		}
		json_array_append_new(a, x);
	}
	json_object_set_new(o, "processes", a);
	a = json_array();
	for (size_t i = 0; i < r->n_groups; i++) {
		json_t *m = json_array();
		for (size_t j = 0; j < r->groups[i]->n_puids; j++)
			json_array_append_new(m, json_integer((json_int_t)r->groups[i]->puids[j]));
		json_array_append_new(a, json_pack("{s:I,s:o}", "gid",
						   (json_int_t)r->groups[i]->gid, "members", m));
	}
	json_object_set_new(o, "groups", a);
	{
		/* Queues and the sync objects on them are channels of local services: listed here. */
		json_t *pools = json_array(), *chans = json_array(), *names = json_array();
		for (size_t i = 0; i < r->n_objects; i++) {
			const Dragon__ObjInfo *x = r->objects[i];
			if (x->id && x->kind == DRAGON__KIND__KIND_POOL)
				json_array_append_new(
					pools, json_pack("{s:I,s:s,s:I,s:i}", "id", (json_int_t)x->id,
							 "name", x->name, "size", (json_int_t)x->size,
							 "node", (int)x->node));
			else if (x->id && x->kind == DRAGON__KIND__KIND_CHANNEL)
				json_array_append_new(
					chans, json_pack("{s:I,s:s,s:I,s:i}", "id", (json_int_t)x->id,
							 "name", x->name, "capacity",
							 (json_int_t)x->size, "node", (int)x->node));
			else if (!x->id)
				json_array_append_new(names, json_pack("{s:s,s:s}", "name", x->name,
								       "kind", kind_name(x->kind)));
		}
		json_object_set_new(o, "pools", pools);
		json_object_set_new(o, "channels", chans);
		json_object_set_new(o, "names", names);
	}
	return o;
}

static void status_text(const Dragon__StatusReply *r)
{
	printf("fabric %s\n", r->fabric_id);
	for (size_t i = 0; i < r->n_nodes; i++)
		printf("  node %u: host %s, local services pid %d, %u cpus\n", r->nodes[i]->index,
		       r->nodes[i]->host, r->nodes[i]->ls_pid, r->nodes[i]->ncpus);
	printf("  processes: %zu\n", r->n_procs);
	if (r->n_procs)
		printf("    %-8s %-8s %-4s %-10s %-6s %-5s %s\n", "PUID", "PID", "NODE", "STATE",
		       "GROUP", "RANK", "PROGRAM");
	for (size_t i = 0; i < r->n_procs; i++) {
		const Dragon__ProcInfo *p = r->procs[i];
		char state[16], grp[24] = "-", rank[16] = "-";
		if (p->running)
			snprintf(state, sizeof(state), "running");
		else
			snprintf(state, sizeof(state), "ended(%d)", p->status);
		if (p->gid) {
			snprintf(grp, sizeof(grp), "%llu", (unsigned long long)p->gid);
			snprintf(rank, sizeof(rank), "%d", p->rank);
		}
		printf("    %-8llu %-8d %-4u %-10s %-6s %-5s %s\n", (unsigned long long)p->puid,
		       p->pid, p->node, state, grp, rank, p->argv0);
	}
	printf("  groups: %zu\n", r->n_groups);
	for (size_t i = 0; i < r->n_groups; i++)
		printf("    group %llu: %zu members\n", (unsigned long long)r->groups[i]->gid,
		       r->groups[i]->n_puids);
	for (size_t i = 0; i < r->n_objects; i++) {
		const Dragon__ObjInfo *x = r->objects[i];
		/* A pool's size is bytes, a channel's its capacity in messages. */
		if (x->id)
			printf("  %s %llu: %s%llu %s%s%s\n", kind_name(x->kind),
			       (unsigned long long)x->id,
			       x->kind == DRAGON__KIND__KIND_CHANNEL ? "capacity " : "",
			       (unsigned long long)x->size,
			       x->kind == DRAGON__KIND__KIND_CHANNEL ? "messages" : "bytes",
			       x->name[0] ? ", name " : "", x->name);
		else
			printf("  name '%s' -> %s\n", x->name, kind_name(x->kind));
	}
}

static int status_cmd(const char *basedir, int json)
{
	char base[PATH_MAX], sock[PATH_MAX + 320];
	const char *env = getenv("DRAGON_LS_SOCKET");
	json_t *all = json_array();
	int found = 0, rv = 1;
	DIR *d = NULL;
	struct dirent *e;

	if (env && *env && !basedir) {
		Dragon__StatusReply v = DRAGON__STATUS_REPLY__INIT;
		Dragon__Msg **parts = NULL;
		size_t np = 0;
		if (query(env, &v, &parts, &np)) {
			fprintf(stderr, "dragon status: %s\n", dragon_errmsg());
			query_free(&v, parts, np);
			goto out;
		}
		if (json)
			json_array_append_new(all, status_json(&v));
		else
			status_text(&v);
		query_free(&v, parts, np);
		found = 1;
	} else {
		if (dg_rundir_base(basedir, base, sizeof(base))) {
			fprintf(stderr, "dragon status: %s\n", dragon_errmsg());
			goto out;
		}
		d = opendir(base);
		while (d && (e = readdir(d))) {
			Dragon__StatusReply v = DRAGON__STATUS_REPLY__INIT;
			Dragon__Msg **parts = NULL;
			size_t np = 0;
			if (e->d_name[0] == '.')
				continue;
			snprintf(sock, sizeof(sock), "%s/%s/%s", base, e->d_name, LS_SOCK_NAME);
			if (access(sock, F_OK))
				continue;
			if (query(sock, &v, &parts, &np)) {
				fprintf(stderr, "dragon status: %s\n", dragon_errmsg());
				query_free(&v, parts, np);
				continue;
			}
			if (json)
				json_array_append_new(all, status_json(&v));
			else
				status_text(&v);
			query_free(&v, parts, np);
			found++;
		}
		if (!found && !json) {
			fprintf(stderr, "dragon status: no fabric is running (looked in %s)\n", base);
			goto out;
		}
	}
	rv = 0;
out:
	if (d)
		closedir(d);
	if (json && (found || rv == 0)) {
		char *s = json_dumps(all, JSON_INDENT(2));
		if (s)
			puts(s);
		free(s);
	}
	json_decref(all);
	return rv;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},    {"version", no_argument, NULL, 'V'},
		{"label", no_argument, NULL, 'l'},   {"runtime-dir", required_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},    {"local", no_argument, NULL, 'L'},
		{NULL, 0, NULL, 0}};
	const char *basedir = NULL;
	int label = 0, json = 0, local = 0, c;

	while ((c = getopt_long(argc, argv, "+hVl", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			printf("dragon %s\n", PACKAGE_VERSION);
			return 0;
		case 'l':
			label = 1;
			break;
		case 'r':
			basedir = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'L':
			local = 1;
			break;
		default:
			fputs(usage, stderr);
			return EXIT_DRAGON;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "dragon: no program given\n%s", usage);
		return EXIT_DRAGON;
	}
	if (!strcmp(argv[optind], "status")) {
		optind++;
		while ((c = getopt_long(argc, argv, "+hj", opts, NULL)) != -1) {
			if (c == 'j')
				json = 1;
			else if (c == 'r')
				basedir = optarg;
			else if (c == 'h') {
				fputs(usage, stdout);
				return 0;
			} else {
				return EXIT_DRAGON;
			}
		}
		return status_cmd(basedir, json);
	}
	if (json) {
		fprintf(stderr, "dragon: --json applies to `dragon status`\n");
		return EXIT_DRAGON;
	}
	return run(basedir, label, local, argv + optind);
}
