/* runtime/ls/link.c: sealed message links between the local services of two nodes (TCP + libsodium secretstream). */
#include "config.h"

#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "ls/link.h"

/*
 * A link is a TCP stream. Each side first sends a preamble in clear: 8 bytes of magic and the
 * header of its secretstream (the accepting side adds a fresh 32-byte nonce). Every message
 * after that is a frame: a little-endian uint32 length and one secretstream chunk sealing a
 * packed Msg. Secretstream gives confidentiality, integrity, order and replay protection within
 * the stream; the nonce, which the connecting side must seal inside its Join, stops a recorded
 * stream from being replayed on a new connection. The key is derived from the job key, so links
 * and the transport agents never use the same key.
 */
#define LINK_MAGIC "DGLINK1"
#define LINK_MAGIC_LEN 8
#define LINK_NONCE 32
#define LINK_HDR crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define LINK_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
/* A peer that leaves this much unread is stuck: fail its link rather than grow without bound. */
#define LINK_OUT_MAX (256u << 20)

struct dg_link {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *defer;
	struct dg_link_cb cb;
	crypto_secretstream_xchacha20poly1305_state tx, rx;
	unsigned char key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
	unsigned char nonce[LINK_NONCE];
	int accepting, have_rx, joined, failed, in_cb, reported;
	uint32_t node;
	char why[256];
	/* The watch (dg_link_watch): a heartbeat every interval, failed after timeout of silence. */
	struct event *hb;
	int hb_timeout_ms;
	int64_t last_rx_ms, max_silence_ms;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Something came from the peer now: it is alive. */
static void heard(struct dg_link *l)
{
	int64_t t = mono_ms();

	if (l->last_rx_ms && t - l->last_rx_ms > l->max_silence_ms)
		l->max_silence_ms = t - l->last_rx_ms;
	l->last_rx_ms = t;
}

static void derive_key(unsigned char out[crypto_secretstream_xchacha20poly1305_KEYBYTES],
		       const unsigned char key[DG_LINK_KEY])
{
	crypto_kdf_derive_from_key(out, crypto_secretstream_xchacha20poly1305_KEYBYTES, 1, "dglink01",
				   key);
}

uint32_t dg_link_node(const struct dg_link *l)
{
	return l->node;
}

void dg_link_set_node(struct dg_link *l, uint32_t node)
{
	l->node = node;
}

static void report(struct dg_link *l)
{
	if (l->reported)
		return;
	l->reported = 1;
	l->cb.closed(l, l->why, l->cb.arg);
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	report(arg);
}

void dg_link_fail(struct dg_link *l, const char *why)
{
	struct timeval now = {0, 0};

	if (l->failed)
		return;
	l->failed = 1;
	snprintf(l->why, sizeof(l->why), "%s", why);
	bufferevent_disable(l->bev, EV_READ);
	if (l->hb)
		evtimer_del(l->hb);
	/* Inside a callback the read loop reports it on the way out; otherwise report soon,
	 * never from inside the caller's stack (it may hold pointers into what closed frees). */
	if (!l->in_cb && !l->defer) {
		l->defer = evtimer_new(l->base, on_defer, l);
		if (l->defer)
			evtimer_add(l->defer, &now);
	}
}

/* Seal one packed message into out (room for 4 + n + LINK_ABYTES). */
static size_t seal(struct dg_link *l, const uint8_t *pt, size_t n, uint8_t *out)
{
	unsigned long long clen = 0;

	crypto_secretstream_xchacha20poly1305_push(&l->tx, out + 4, &clen, pt, n, NULL, 0,
						   crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
	out[0] = clen & 0xff;
	out[1] = (clen >> 8) & 0xff;
	out[2] = (clen >> 16) & 0xff;
	out[3] = (clen >> 24) & 0xff;
	return 4 + (size_t)clen;
}

/* Pack m and seal it into a malloc'd frame. */
static int frame(struct dg_link *l, Dragon__Msg *m, uint8_t **out, size_t *outlen)
{
	size_t n;
	uint8_t *pt, *f;

	m->version = DG_PROTO_VERSION;
	n = dragon__msg__get_packed_size(m);
	if (n > DG_LINK_MSG_MAX)
		return dg_err(DRAGON_ETOOBIG, "a %s of %zu bytes exceeds the link limit of %u",
			      dg_msg_name(m), n, (unsigned)DG_LINK_MSG_MAX);
	pt = malloc(n ? n : 1);
	f = malloc(4 + n + LINK_ABYTES);
	if (!pt || !f) {
		free(pt);
		free(f);
		return dg_err(DRAGON_ENOMEM, "link frame of %zu bytes", n);
	}
	dragon__msg__pack(m, pt);
	*outlen = seal(l, pt, n, f);
	*out = f;
	free(pt);
	return DRAGON_OK;
}

int dg_link_send(struct dg_link *l, Dragon__Msg *m)
{
	uint8_t *f;
	size_t n;
	int rv;

	if (l->failed)
		return dg_err(DRAGON_EPEER, "the link to node %u is down: %s", l->node, l->why);
	if ((rv = frame(l, m, &f, &n)))
		return rv;
	bufferevent_write(l->bev, f, n);
	free(f);
	if (evbuffer_get_length(bufferevent_get_output(l->bev)) > LINK_OUT_MAX) {
		dg_link_fail(l, "the peer stopped reading (more than 256 MiB queued)");
		return dg_err(DRAGON_EPEER, "the link to node %u is stuck", l->node);
	}
	return DRAGON_OK;
}

/* Open one frame; DRAGON_EPERM when it does not authenticate. */
static int unseal(struct dg_link *l, const uint8_t *c, size_t clen, Dragon__Msg **m)
{
	unsigned char tag = 0;
	unsigned long long n = 0;
	uint8_t *pt = malloc(clen - LINK_ABYTES + 1);
	int rv;

	if (!pt)
		return dg_err(DRAGON_ENOMEM, "link frame of %zu bytes", clen);
	if (crypto_secretstream_xchacha20poly1305_pull(&l->rx, pt, &n, &tag, c, clen, NULL, 0) ||
	    tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
		free(pt);
		return dg_err(DRAGON_EPERM,
			      "a frame failed authentication (a different job key, or tampering)");
	}
	rv = dg_msg_decode_max(pt, (size_t)n, DG_LINK_MSG_MAX, m);
	free(pt);
	return rv;
}

static void process(struct dg_link *l)
{
	struct evbuffer *in = bufferevent_get_input(l->bev);

	if (!l->have_rx) {
		unsigned char pre[LINK_MAGIC_LEN + LINK_HDR];
		if (evbuffer_copyout(in, pre, sizeof(pre)) < (ssize_t)sizeof(pre))
			return;
		if (memcmp(pre, LINK_MAGIC, LINK_MAGIC_LEN)) {
			dg_link_fail(l, "the peer does not speak the link protocol");
			return;
		}
		if (crypto_secretstream_xchacha20poly1305_init_pull(&l->rx, pre + LINK_MAGIC_LEN,
								    l->key)) {
			dg_link_fail(l, "bad stream header");
			return;
		}
		evbuffer_drain(in, sizeof(pre));
		l->have_rx = 1;
	}
	while (!l->failed) {
		uint8_t hdr[4];
		uint32_t len;
		Dragon__Msg *m;
		int rv;

		if (evbuffer_copyout(in, hdr, 4) < 4)
			return;
		len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
		      (uint32_t)hdr[3] << 24;
		if (len < LINK_ABYTES || len > DG_LINK_MSG_MAX + LINK_ABYTES) {
			dg_link_fail(l, "a frame of impossible size");
			return;
		}
		if (evbuffer_get_length(in) < 4 + (size_t)len)
			return;
		rv = unseal(l, evbuffer_pullup(in, 4 + (ssize_t)len) + 4, len, &m);
		evbuffer_drain(in, 4 + (size_t)len);
		if (rv) {
			/* A stream cannot skip a chunk: the rest would not authenticate either. */
			dg_link_fail(l, dragon_errmsg());
			return;
		}
		heard(l);
		if (m->body_case == DRAGON__MSG__BODY_HEARTBEAT && l->joined) {
			/* Proof of life only: the owner never sees it. */
			dg_msg_free(m);
			continue;
		}
		if (l->accepting && !l->joined) {
			if (m->body_case != DRAGON__MSG__BODY_JOIN || m->join->nonce.len != LINK_NONCE ||
			    sodium_memcmp(m->join->nonce.data, l->nonce, LINK_NONCE)) {
				dg_msg_free(m);
				dg_link_fail(l, "the first message was not a Join sealing our nonce");
				return;
			}
			l->joined = 1;
		}
		l->cb.msg(l, m, l->cb.arg);
		dg_msg_free(m);
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct dg_link *l = arg;

	(void)bev;
	l->in_cb++;
	process(l);
	l->in_cb--;
	if (l->failed && !l->in_cb)
		report(l);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct dg_link *l = arg;

	(void)bev;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (!l->failed) {
		l->failed = 1;
		snprintf(l->why, sizeof(l->why), "%s",
			 (what & BEV_EVENT_EOF) ? "the peer closed the link"
						: "the link's connection failed");
		if (l->hb)
			evtimer_del(l->hb);
	}
	if (!l->in_cb)
		report(l);
}

static struct dg_link *link_new(struct event_base *base, int fd, const unsigned char key[DG_LINK_KEY],
				const struct dg_link_cb *cb)
{
	struct dg_link *l = calloc(1, sizeof(*l));
	int one = 1;

	if (!l)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	evutil_make_socket_nonblocking(fd);
	l->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!l->bev) {
		free(l);
		return NULL;
	}
	l->base = base;
	l->cb = *cb;
	l->node = UINT32_MAX;
	derive_key(l->key, key);
	bufferevent_setcb(l->bev, on_read, NULL, on_event, l);
	return l;
}

struct dg_link *dg_link_accept(struct event_base *base, int fd, const unsigned char key[DG_LINK_KEY],
			       const struct dg_link_cb *cb)
{
	unsigned char pre[LINK_MAGIC_LEN + LINK_HDR + LINK_NONCE];
	struct dg_link *l = link_new(base, fd, key, cb);

	if (!l) {
		close(fd);
		return NULL;
	}
	l->accepting = 1;
	memcpy(pre, LINK_MAGIC, LINK_MAGIC_LEN);
	crypto_secretstream_xchacha20poly1305_init_push(&l->tx, pre + LINK_MAGIC_LEN, l->key);
	randombytes_buf(l->nonce, LINK_NONCE);
	memcpy(pre + LINK_MAGIC_LEN + LINK_HDR, l->nonce, LINK_NONCE);
	bufferevent_write(l->bev, pre, sizeof(pre));
	bufferevent_enable(l->bev, EV_READ);
	return l;
}

/* ---- the connecting side: a blocking handshake with a deadline --------------------------- */

static long ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 0;
}

static int io_full(int fd, void *buf, size_t n, int writing, const struct timespec *deadline)
{
	unsigned char *p = buf;

	while (n > 0) {
		struct pollfd pf = {.fd = fd, .events = writing ? POLLOUT : POLLIN};
		ssize_t k;
		int pr = poll(&pf, 1, (int)ms_left(deadline));

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			return dg_err(DRAGON_ETIMEDOUT, "the head node did not answer in time");
		if (pr < 0)
			return dg_err_sys("poll");
		k = writing ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k < 0)
			return dg_err_sys("uplink");
		if (k == 0)
			return dg_err(DRAGON_EPEER,
				      "the head node closed the uplink (a different job key?)");
		p += k;
		n -= (size_t)k;
	}
	return DRAGON_OK;
}

/* Connect to one "ip:port" within the deadline; -1 with the reason recorded and in *rc. */
static int dial(const char *hostport, const struct timespec *deadline, int *rc)
{
	char ip[64];
	const char *colon = strrchr(hostport, ':');
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd, err = 0;
	socklen_t el = sizeof(err);
	long port;

	if (!colon || (size_t)(colon - hostport) >= sizeof(ip) ||
	    (port = strtol(colon + 1, NULL, 10)) <= 0 || port > 65535) {
		*rc = dg_err(DRAGON_EINVAL, "bad address '%s'", hostport);
		return -1;
	}
	memcpy(ip, hostport, (size_t)(colon - hostport));
	ip[colon - hostport] = 0;
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		*rc = dg_err(DRAGON_EINVAL, "bad address '%s'", hostport);
		return -1;
	}
	sa.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*rc = dg_err_sys("socket");
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		*rc = dg_err_sys("connect to %s", hostport);
		close(fd);
		return -1;
	}
	{
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		long left = ms_left(deadline);
		/* Do not let one dead address eat the whole budget. */
		if (poll(&pf, 1, (int)(left > 2000 ? 2000 : left)) <= 0) {
			*rc = dg_err(DRAGON_ETIMEDOUT, "connect to %s timed out", hostport);
			close(fd);
			return -1;
		}
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
		errno = err;
		*rc = dg_err_sys("connect to %s", hostport);
		close(fd);
		return -1;
	}
	return fd;
}

int dg_link_connect(struct event_base *base, const char *addrs, const unsigned char key[DG_LINK_KEY],
		    Dragon__Join *join, int timeout_ms, const struct dg_link_cb *cb,
		    struct dg_link **out)
{
	struct timespec deadline;
	unsigned char pre[LINK_MAGIC_LEN + LINK_HDR + LINK_NONCE], mine[LINK_MAGIC_LEN + LINK_HDR];
	char *list = strdup(addrs ? addrs : ""), *save = NULL, *tok;
	struct dg_link probe, *l = NULL;
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	uint8_t *f = NULL, hdr[4], *c = NULL;
	size_t flen;
	uint32_t clen;
	int fd = -1, rv = -1;

	*out = NULL;
	if (!list)
		return dg_err(DRAGON_ENOMEM, "address list");
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	rv = dg_err(DRAGON_EPEER, "no address to reach the head node");
	for (tok = strtok_r(list, " ", &save); tok && fd < 0; tok = strtok_r(NULL, " ", &save))
		fd = dial(tok, &deadline, &rv);
	if (fd < 0)
		goto out;
	memset(&probe, 0, sizeof(probe));
	derive_key(probe.key, key);
	if ((rv = io_full(fd, pre, sizeof(pre), 0, &deadline)))
		goto out;
	if (memcmp(pre, LINK_MAGIC, LINK_MAGIC_LEN) ||
	    crypto_secretstream_xchacha20poly1305_init_pull(&probe.rx, pre + LINK_MAGIC_LEN,
							    probe.key)) {
		rv = dg_err(DRAGON_EPROTO, "the head node's address does not speak the link protocol");
		goto out;
	}
	memcpy(mine, LINK_MAGIC, LINK_MAGIC_LEN);
	crypto_secretstream_xchacha20poly1305_init_push(&probe.tx, mine + LINK_MAGIC_LEN, probe.key);
	join->nonce.data = pre + LINK_MAGIC_LEN + LINK_HDR;
	join->nonce.len = LINK_NONCE;
	m.body_case = DRAGON__MSG__BODY_JOIN;
	m.join = join;
	if ((rv = frame(&probe, &m, &f, &flen)))
		goto out;
	if ((rv = io_full(fd, mine, sizeof(mine), 1, &deadline)) ||
	    (rv = io_full(fd, f, flen, 1, &deadline)) || (rv = io_full(fd, hdr, 4, 0, &deadline)))
		goto out;
	clen = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
	       (uint32_t)hdr[3] << 24;
	if (clen < LINK_ABYTES || clen > DG_LINK_MSG_MAX + LINK_ABYTES) {
		rv = dg_err(DRAGON_EPROTO, "the head node sent a frame of impossible size");
		goto out;
	}
	if (!(c = malloc(clen))) {
		rv = dg_err(DRAGON_ENOMEM, "link frame");
		goto out;
	}
	if ((rv = io_full(fd, c, clen, 0, &deadline)) || (rv = unseal(&probe, c, clen, &rep)))
		goto out;
	if (rep->body_case == DRAGON__MSG__BODY_ERROR) {
		rv = dg_err(rep->error->rc ? rep->error->rc : DRAGON_EPEER, "the head node refused: %s",
			    rep->error->msg ? rep->error->msg : "");
		goto out;
	}
	if (rep->body_case != DRAGON__MSG__BODY_OK) {
		rv = dg_err(DRAGON_EPROTO, "the head node answered a Join with a %s", dg_msg_name(rep));
		goto out;
	}
	if (!(l = link_new(base, fd, key, cb))) {
		rv = dg_err(DRAGON_ENOMEM, "link");
		goto out;
	}
	fd = -1;
	l->tx = probe.tx;
	l->rx = probe.rx;
	l->have_rx = 1;
	l->joined = 1;
	l->node = 0;
	bufferevent_enable(l->bev, EV_READ);
	*out = l;
	rv = DRAGON_OK;
out:
	join->nonce.data = NULL;
	join->nonce.len = 0;
	sodium_memzero(&probe, sizeof(probe));
	if (fd >= 0)
		close(fd);
	dg_msg_free(rep);
	free(c);
	free(f);
	free(list);
	return rv;
}

int dg_link_listen(const char *bind_to, int *fdp, char *addrs, size_t cap)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
	socklen_t sl = sizeof(sa);
	struct ifaddrs *ifs = NULL;
	size_t used = 0;
	int fd, one = 1;
	char ip[64] = "";

	*fdp = -1;
	if (bind_to && *bind_to) {
		const char *colon = strchr(bind_to, ':');
		size_t n = colon ? (size_t)(colon - bind_to) : strlen(bind_to);
		if (n >= sizeof(ip))
			return dg_err(DRAGON_EINVAL, "bad bind address '%s'", bind_to);
		memcpy(ip, bind_to, n);
		ip[n] = 0;
		if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
			return dg_err(DRAGON_EINVAL, "bad bind address '%s' (want ip[:port])", bind_to);
		if (colon)
			sa.sin_port = htons((uint16_t)atoi(colon + 1));
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return dg_err_sys("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Every other node connects at once at start-up: a backlog of 128 drops the connections
	 * past it on a large fabric, and each dropped one waits a second to try again (the
	 * kernel caps the backlog at net.core.somaxconn). */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, DG_LINK_BACKLOG) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		int rv = dg_err_sys("listen on %s", bind_to && *bind_to ? bind_to : "TCP");
		close(fd);
		return rv;
	}
	addrs[0] = 0;
	if (*ip) {
		snprintf(addrs, cap, "%s:%u", ip, ntohs(sa.sin_port));
	} else if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
			char a[INET_ADDRSTRLEN];
			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
			    !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
				continue;
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof(a));
			used += (size_t)snprintf(addrs + used, used < cap ? cap - used : 0, "%s:%u ", a,
						 ntohs(sa.sin_port));
		}
		freeifaddrs(ifs);
	}
	if (!*ip && used < cap)
		snprintf(addrs + used, cap - used, "127.0.0.1:%u", ntohs(sa.sin_port));
	*fdp = fd;
	return DRAGON_OK;
}

void dg_bev_flush(struct bufferevent *bev, int timeout_ms)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	int fd = bufferevent_getfd(bev);
	struct timespec deadline;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	/* A socket bufferevent freezes the start of its output; we are the writer here. */
	evbuffer_unfreeze(out, 1);
	while (evbuffer_get_length(out) > 0) {
		size_t len = evbuffer_get_contiguous_space(out);
		ssize_t n = send(fd, evbuffer_pullup(out, (ssize_t)len), len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			long left = ms_left(&deadline);
			if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
				break;
			continue;
		}
		if (n <= 0)
			break;
		evbuffer_drain(out, (size_t)n);
	}
	evbuffer_freeze(out, 1);
}

void dg_link_flush(struct dg_link *l, int timeout_ms)
{
	dg_bev_flush(l->bev, timeout_ms);
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct dg_link *l = arg;
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Heartbeat h = DRAGON__HEARTBEAT__INIT;
	int pending = 0;
	int64_t silent;

	(void)fd;
	(void)what;
	if (l->failed)
		return;
	/* Bytes the peer sent that this process has not read yet (its own loop was late, e.g. on
	 * a loaded machine) are proof of life too: only the peer's silence fails the link. */
	if (evbuffer_get_length(bufferevent_get_input(l->bev)) ||
	    (ioctl(bufferevent_getfd(l->bev), FIONREAD, &pending) == 0 && pending > 0))
		heard(l);
	silent = mono_ms() - l->last_rx_ms;
	if (silent > l->hb_timeout_ms) {
		char why[128];
		snprintf(why, sizeof(why), "nothing heard for %lld ms (node timeout %d ms)",
			 (long long)silent, l->hb_timeout_ms);
		dg_link_fail(l, why);
		return;
	}
	m.body_case = DRAGON__MSG__BODY_HEARTBEAT;
	m.heartbeat = &h;
	dg_link_send(l, &m);
}

int dg_link_watch(struct dg_link *l, int interval_ms, int timeout_ms)
{
	struct timeval tv = {.tv_sec = interval_ms / 1000, .tv_usec = (interval_ms % 1000) * 1000};

	if (interval_ms <= 0 || timeout_ms <= interval_ms)
		return dg_err(DRAGON_EINVAL, "heartbeat every %d ms with a timeout of %d ms", interval_ms,
			      timeout_ms);
	if (!l->hb && !(l->hb = event_new(l->base, -1, EV_PERSIST, on_heartbeat, l)))
		return dg_err(DRAGON_ENOMEM, "heartbeat timer");
	l->hb_timeout_ms = timeout_ms;
	l->last_rx_ms = mono_ms();
	if (evtimer_add(l->hb, &tv))
		return dg_err(DRAGON_ENOMEM, "heartbeat timer");
	return DRAGON_OK;
}

int64_t dg_link_max_silence_ms(const struct dg_link *l)
{
	return l->max_silence_ms;
}

void dg_link_free(struct dg_link *l)
{
	if (!l)
		return;
	if (l->hb)
		event_free(l->hb);
	if (l->defer)
		event_free(l->defer);
	bufferevent_free(l->bev);
	sodium_memzero(l, sizeof(*l));
	free(l);
}
