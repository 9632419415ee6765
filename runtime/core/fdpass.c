/* runtime/core/fdpass.c: SCM_RIGHTS descriptor passing, used to hand pool memfds to clients. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fdpass.h"

int dg_fdpass_send(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * DG_FDPASS_MAX)];
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (!buf || len == 0 || nfds < 0 || nfds > DG_FDPASS_MAX || (nfds && !fds))
		return dg_err(DRAGON_EINVAL, "fd passing: need 1+ bytes and 0..%d descriptors",
			      DG_FDPASS_MAX);
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.space;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE || errno == ECONNRESET
			       ? dg_err(DRAGON_EPEER, "fd passing: peer closed the socket")
			       : dg_err_sys("fd passing: sendmsg");
	if ((size_t)n != len)
		return dg_err(DRAGON_EPROTO, "fd passing: short send (%zd of %zu bytes)", n, len);
	return DRAGON_OK;
}

int dg_fdpass_recv(int sock, void *buf, size_t cap, size_t *len, int *fds, int maxfds, int *nfds)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * DG_FDPASS_MAX)];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl.space, .msg_controllen = sizeof(ctl.space) };
	int got = 0, extra = 0, rv = DRAGON_OK;
	ssize_t n;

	*nfds = 0;
	*len = 0;
	if (!buf || cap == 0 || maxfds < 0 || (maxfds && !fds))
		return dg_err(DRAGON_EINVAL, "fd passing: need a buffer and a descriptor array");
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return dg_err_sys("fd passing: recvmsg");
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int *in = (int *)CMSG_DATA(c);
		for (int i = 0; i < cnt; i++) {
			if (got < maxfds)
				fds[got++] = in[i];
			else {
				close(in[i]);
				extra++;
			}
		}
	}
	if (n == 0 && got == 0)
		return dg_err(DRAGON_EPEER, "fd passing: peer closed the socket");
	if (extra || (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
		for (int i = 0; i < got; i++)
			close(fds[i]);
		got = 0;
		rv = dg_err(DRAGON_EPROTO, "fd passing: message or descriptors truncated "
					   "(%d extra descriptors closed)", extra);
	}
	*nfds = got;
	*len = (size_t)n;
	return rv;
}
