/* runtime/launcher/run_local.c: a fresh fabric on this machine, its local services a child of the launcher. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "launcher/launcher.h"
#include "launcher/rundir.h"
#include "ls/ls.h"

/* A fresh fabric on this machine: local and global services in a child, PROG its first process. */
int launcher_run_local(const char *basedir, int label, char **argv)
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
	if ((sfd = launcher_take_signals(&old)) < 0)
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
	status = launcher_session(sv[0], sfd, argv, label, 1, &stopsig);
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
	rv = launcher_exit_code(status, stopsig);
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
