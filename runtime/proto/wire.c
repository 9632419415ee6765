/* runtime/proto/wire.c: framing, validation and blocking socket I/O of protocol messages. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "proto/wire.h"

const char *dg_msg_name(const Dragon__Msg *m)
{
	const ProtobufCFieldDescriptor *f;

	if (!m || m->body_case == DRAGON__MSG__BODY__NOT_SET)
		return "(none)";
	f = protobuf_c_message_descriptor_get_field(&dragon__msg__descriptor, m->body_case);
	return f ? f->name : "(unknown)";
}

int dg_msg_decode(const uint8_t *buf, size_t len, Dragon__Msg **out)
{
	return dg_msg_decode_max(buf, len, DG_MSG_MAX, out);
}

int dg_msg_decode_max(const uint8_t *buf, size_t len, size_t max, Dragon__Msg **out)
{
	Dragon__Msg *m;

	*out = NULL;
	if (len > max)
		return dg_err(DRAGON_EPROTO, "message of %zu bytes exceeds the limit of %zu", len,
			      max);
	m = dragon__msg__unpack(NULL, len, buf);
	if (!m)
		return dg_err(DRAGON_EPROTO, "undecodable message of %zu bytes", len);
	if (m->version != DG_PROTO_VERSION) {
		int v = (int)m->version;
		dragon__msg__free_unpacked(m, NULL);
		return dg_err(DRAGON_EPROTO, "protocol version %d, this build speaks %d", v,
			      DG_PROTO_VERSION);
	}
	/* A body from a newer schema decodes as an unknown field: no body case we know. */
	if (m->body_case == DRAGON__MSG__BODY__NOT_SET ||
	    !protobuf_c_message_descriptor_get_field(&dragon__msg__descriptor, m->body_case)) {
		dragon__msg__free_unpacked(m, NULL);
		return dg_err(DRAGON_EPROTO, "message without a known body");
	}
	*out = m;
	return DRAGON_OK;
}

void dg_msg_free(Dragon__Msg *m)
{
	if (m)
		dragon__msg__free_unpacked(m, NULL);
}

int dg_msg_encode(Dragon__Msg *m, uint8_t **buf, size_t *len)
{
	size_t n;
	uint8_t *b;

	m->version = DG_PROTO_VERSION;
	n = dragon__msg__get_packed_size(m);
	if (n > DG_MSG_MAX)
		return dg_err(DRAGON_ETOOBIG, "message of %zu bytes exceeds the limit of %u", n,
			      DG_MSG_MAX);
	b = malloc(DG_HDR_LEN + n);
	if (!b)
		return dg_err(DRAGON_ENOMEM, "message buffer of %zu bytes", n);
	b[0] = n & 0xff;
	b[1] = (n >> 8) & 0xff;
	b[2] = (n >> 16) & 0xff;
	b[3] = (n >> 24) & 0xff;
	dragon__msg__pack(m, b + DG_HDR_LEN);
	*buf = b;
	*len = DG_HDR_LEN + n;
	return DRAGON_OK;
}

int dg_wire_send(int fd, Dragon__Msg *m, int passfd)
{
	uint8_t *buf = NULL;
	size_t len = 0, off = 0;
	int rv;

	rv = dg_msg_encode(m, &buf, &len);
	if (rv)
		return rv;
	while (off < len) {
		struct iovec iov = {.iov_base = buf + off, .iov_len = len - off};
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		if (off == 0 && passfd >= 0) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.b;
			mh.msg_controllen = sizeof(ctl.b);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &passfd, sizeof(int));
		}
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = {.fd = fd, .events = POLLOUT};
				poll(&p, 1, 100);
				continue;
			}
			rv = errno == EPIPE || errno == ECONNRESET
				     ? dg_err(DRAGON_EPEER, "peer closed the connection")
				     : dg_err_sys("sendmsg");
			goto out;
		}
		off += (size_t)n;
	}
	rv = DRAGON_OK;
out:
	free(buf);
	return rv;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read exactly len bytes, collecting at most one passed descriptor. */
static int read_full(int fd, uint8_t *buf, size_t len, int *gotfd, long long deadline)
{
	size_t off = 0;

	while (off < len) {
		struct iovec iov = {.iov_base = buf + off, .iov_len = len - off};
		union {
			char b[CMSG_SPACE(sizeof(int) * 4)];
			struct cmsghdr align;
		} ctl;
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
			.msg_controllen = sizeof(ctl.b)};
		struct cmsghdr *c;
		ssize_t n;

		if (deadline >= 0) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			long long left = deadline - now_ms();
			int r;

			if (left < 0)
				left = 0;
			r = poll(&p, 1, (int)left);
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0)
				return dg_err(DRAGON_ETIMEDOUT, "no reply from the peer in time");
		}
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == ECONNRESET ? dg_err(DRAGON_EPEER, "peer reset the connection")
						   : dg_err_sys("recvmsg");
		}
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int x;
				memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (*gotfd < 0)
					*gotfd = x;
				else
					close(x);
			}
		}
		if (n == 0)
			return dg_err(DRAGON_EPEER, "peer closed the connection");
		off += (size_t)n;
	}
	return DRAGON_OK;
}

int dg_wire_recv(int fd, Dragon__Msg **m, int *passfd, int timeout_ms)
{
	uint8_t hdr[DG_HDR_LEN], *body = NULL;
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int gotfd = -1, rv;
	uint32_t len;

	*m = NULL;
	rv = read_full(fd, hdr, sizeof(hdr), &gotfd, deadline);
	if (rv)
		goto out;
	len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
	      (uint32_t)hdr[3] << 24;
	if (len > DG_MSG_MAX) {
		rv = dg_err(DRAGON_EPROTO, "frame of %u bytes exceeds the limit of %u", len,
			    DG_MSG_MAX);
		goto out;
	}
	body = malloc(len ? len : 1);
	if (!body) {
		rv = dg_err(DRAGON_ENOMEM, "frame of %u bytes", len);
		goto out;
	}
	rv = read_full(fd, body, len, &gotfd, deadline);
	if (rv)
		goto out;
	rv = dg_msg_decode(body, len, m);
out:
	free(body);
	if (passfd && rv == DRAGON_OK)
		*passfd = gotfd;
	else if (gotfd >= 0)
		close(gotfd);
	if (passfd && rv != DRAGON_OK)
		*passfd = -1;
	return rv;
}
