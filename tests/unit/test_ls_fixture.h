/* tests/unit/test_ls_fixture.h: start real local services in a child for the LS and GS unit tests. */
#ifndef DRAGON_TEST_LS_FIXTURE_H
#define DRAGON_TEST_LS_FIXTURE_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ls/ls.h"
#include "proto/wire.h"

static pid_t fx_ls_pid = -1;
static char fx_dir[64], fx_sock[128];

static void fx_stop(void);

static int fx_start(void)
{
	struct ls_opts o = {.dir = fx_dir, .fabric_id = "unit", .listen_fd = -1, .ctl_fd = -1};

	strcpy(fx_dir, "/tmp/dragon-unit.XXXXXX");
	if (!mkdtemp(fx_dir))
		return -1;
	snprintf(fx_sock, sizeof(fx_sock), "%s/%s", fx_dir, LS_SOCK_NAME);
	fx_ls_pid = fork();
	if (fx_ls_pid == 0) {
		/* If the test dies, its local services stop and clean up too. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		_exit(ls_run(&o));
	}
	/* Up to 30 s (a loaded CI machine), but at once if local services ended instead. */
	for (int i = 0; i < 3000 && access(fx_sock, F_OK); i++) {
		int st;
		if (fx_ls_pid < 0 || waitpid(fx_ls_pid, &st, WNOHANG) == fx_ls_pid) {
			fprintf(stderr, "fixture: local services %s before %s appeared\n",
				fx_ls_pid < 0 ? "could not be forked" : "ended", fx_sock);
			fx_ls_pid = -1;
			fx_stop();
			return -1;
		}
		usleep(10000);
	}
	setenv("DRAGON_LS_SOCKET", fx_sock, 1);
	if (access(fx_sock, F_OK)) {
		fprintf(stderr, "fixture: %s did not appear within 30 s\n", fx_sock);
		fx_stop();
		return -1;
	}
	return 0;
}

static void fx_stop(void)
{
	int st;

	if (fx_ls_pid > 0) {
		kill(fx_ls_pid, SIGTERM);
		waitpid(fx_ls_pid, &st, 0);
	}
	unlink(fx_sock);
	/* what local services stopped while starting leave (a setup that gave up on them) */
	char failed[160];
	snprintf(failed, sizeof(failed), "%s/ls.failed", fx_dir);
	unlink(failed);
	rmdir(fx_dir);
}

static inline int fx_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, fx_sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	return fd;
}

/* Send a raw frame: the header announces len, body is the given bytes (may be shorter). */
static inline void fx_send_raw(int fd, uint32_t len, const void *body, size_t n)
{
	uint8_t hdr[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, (len >> 24) & 0xff};

	/* LS may close a connection it refuses: no SIGPIPE, the test reads the outcome. */
	if (send(fd, hdr, 4, MSG_NOSIGNAL) != 4 || (n && send(fd, body, n, MSG_NOSIGNAL) != (ssize_t)n))
		fprintf(stderr, "short write (the peer closed)\n");
}

/* Receive one reply; returns its error rc (0 for a non-error reply), or -1 if none came. */
static inline int fx_reply_rc(int fd, Dragon__Msg__BodyCase *body)
{
	Dragon__Msg *m = NULL;
	int rc;

	if (dg_wire_recv(fd, &m, NULL, 3000))
		return -1;
	if (body)
		*body = m->body_case;
	rc = m->body_case == DRAGON__MSG__BODY_ERROR ? m->error->rc : 0;
	dg_msg_free(m);
	return rc;
}

/* The connection still works: a hello gets a hello reply. */
static inline int fx_hello_ok(int fd)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Hello h = DRAGON__HELLO__INIT;
	Dragon__Msg__BodyCase b = 0;

	m.seq = 77;
	m.body_case = DRAGON__MSG__BODY_HELLO;
	m.hello = &h;
	if (dg_wire_send(fd, &m, -1))
		return 0;
	return fx_reply_rc(fd, &b) == 0 && b == DRAGON__MSG__BODY_HELLO_REPLY;
}

#endif
