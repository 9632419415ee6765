/* runtime/launcher/session.c: the launcher's session with local services: PROG's start, its output, our signals and stdin, its end. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/err.h"
#include "launcher/launcher.h"
#include "proto/wire.h"

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
int launcher_take_signals(sigset_t *old)
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

/*
 * Start PROG through the local services on fd and forward the output of the fabric's processes
 * until PROG ends. own: this launcher owns the fabric, so PROG's end or a signal shuts it down
 * (and we wait for the services to close the connection); otherwise a signal goes to PROG only
 * and we return as soon as it ends. Returns PROG's status, or -1 if it never ran.
 */
int launcher_session(int fd, int sfd, char **argv, int label, int own, int *stopsig)
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
	while (launcher_extra_env[a.n_env])
		a.n_env++;
	a.env = (char **)launcher_extra_env;
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

int launcher_exit_code(int status, int stopsig)
{
	if (stopsig)
		return 128 + stopsig;
	return status >= 0 ? status : EXIT_DRAGON;
}

/* Connect to a local services socket; -1 (errno set) if it does not accept (yet). */
int launcher_dial_ls(const char *sock)
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
