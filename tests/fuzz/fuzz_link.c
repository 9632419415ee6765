/* tests/fuzz/fuzz_link.c: libFuzzer target of the links between local services: what a node's link port reads before and after the Join. */
#include <errno.h>
#include <event2/event.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dragon/error.h>
#include "ls/link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The link protocol as a peer speaks it (runtime/ls/link.c says why it is so). */
#define MAGIC "DGLINK1"
#define MAGIC_LEN 8
#define HDR crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define NONCE 32

static struct event_base *base;
static unsigned char job_key[DG_LINK_KEY] = {7, 7, 7};
static int msgs, closed;

static void on_msg(struct dg_link *l, const Dragon__Msg *m, void *arg)
{
	(void)l;
	(void)arg;
	/* a message handed on is a whole one: its kind has a name */
	if (!m || !dg_msg_name(m)[0])
		abort();
	msgs++;
}

static void on_closed(struct dg_link *l, const char *why, void *arg)
{
	(void)l;
	(void)arg;
	if (!why || !why[0])
		abort();
	closed = 1;
}

static const struct dg_link_cb cb = {.msg = on_msg, .closed = on_closed};

/*
 * Send as the peer, without ever blocking: a link that failed stops reading, and a socket whose
 * buffer small writes filled would then block us for good. When the socket is full the link gets
 * to read (the event loop runs); once it has closed, the rest is dropped.
 */
static void put(int fd, const void *p, size_t n)
{
	const unsigned char *c = p;
	int idle = 0;

	while (n && !closed) {
		ssize_t w = send(fd, c, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			c += w;
			n -= (size_t)w;
			idle = 0;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN && idle++ < 10000) {
			event_base_loop(base, EVLOOP_NONBLOCK);
		} else {
			return; /* the link closed its end, or stopped reading without saying so */
		}
	}
}

/* Seal one chunk as the peer's next frame: 4-byte length, then the chunk. */
static void put_sealed(int fd, crypto_secretstream_xchacha20poly1305_state *st, const uint8_t *pt, size_t n)
{
	unsigned char *f = malloc(4 + n + ABYTES);
	unsigned long long clen = 0;

	if (!f)
		abort();
	crypto_secretstream_xchacha20poly1305_push(st, f + 4, &clen, pt, n, NULL, 0,
						   crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
	f[0] = clen & 0xff;
	f[1] = (clen >> 8) & 0xff;
	f[2] = (clen >> 16) & 0xff;
	f[3] = (clen >> 24) & 0xff;
	put(fd, f, 4 + (size_t)clen);
	free(f);
}

/* Let the link read what is there: the event loop until it closed, bounded. */
static void settle(void)
{
	for (int i = 0; i < 200 && !closed; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

/*
 * Input: byte 0 chooses the mode, the rest is what the connecting side sends.
 *   0: raw bytes from the first byte on (a stranger on the link port);
 *   1: a good preamble (magic and stream header), then raw bytes as frames (lengths, forgeries);
 *   2: a good preamble and a sealed Join with the link's nonce, then chunks (2-byte length and
 *      bytes) each sealed as a message: they pass authentication and reach the message decoder.
 * Whatever comes, the link hands on only whole messages and closes with a reason.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char key[crypto_secretstream_xchacha20poly1305_KEYBYTES], pre[MAGIC_LEN + HDR + NONCE];
	crypto_secretstream_xchacha20poly1305_state tx;
	struct dg_link *l;
	int sv[2], mode;
	size_t got = 0;

	if (!base && (sodium_init() < 0 || !(base = event_base_new())))
		abort();
	if (size == 0)
		return 0;
	mode = data[0] % 3;
	data++;
	size--;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	msgs = closed = 0;
	l = dg_link_accept(base, sv[0], job_key, &cb);
	if (!l)
		abort();
	/* the link's preamble: magic, its stream header and the nonce a Join must seal */
	while (got < sizeof(pre)) {
		ssize_t r;
		event_base_loop(base, EVLOOP_NONBLOCK);
		r = recv(sv[1], pre + got, sizeof(pre) - got, MSG_DONTWAIT);
		if (r > 0)
			got += (size_t)r;
		else if (r == 0 || (errno != EAGAIN && errno != EINTR))
			abort();
	}
	if (mode == 0) {
		put(sv[1], data, size);
	} else {
		unsigned char mine[MAGIC_LEN + HDR];
		crypto_kdf_derive_from_key(key, sizeof(key), 1, "dglink01", job_key);
		memcpy(mine, MAGIC, MAGIC_LEN);
		crypto_secretstream_xchacha20poly1305_init_push(&tx, mine + MAGIC_LEN, key);
		put(sv[1], mine, sizeof(mine));
		if (mode == 1) {
			put(sv[1], data, size);
		} else {
			Dragon__Msg m = DRAGON__MSG__INIT;
			Dragon__Join j = DRAGON__JOIN__INIT;
			uint8_t packed[256];
			size_t n;

			j.node = 1;
			j.nonce.data = pre + MAGIC_LEN + HDR;
			j.nonce.len = NONCE;
			m.version = DG_PROTO_VERSION;
			m.body_case = DRAGON__MSG__BODY_JOIN;
			m.join = &j;
			n = dragon__msg__pack(&m, packed);
			put_sealed(sv[1], &tx, packed, n);
			while (size >= 2) {
				size_t len = (size_t)data[0] | (size_t)data[1] << 8;
				data += 2;
				size -= 2;
				if (len > size)
					len = size;
				put_sealed(sv[1], &tx, data, len);
				data += len;
				size -= len;
			}
		}
	}
	shutdown(sv[1], SHUT_WR);
	settle();
	/* Mode 2's Join always authenticates: it is handed on first. */
	if (!closed || (mode == 2 && msgs == 0))
		abort();
	dg_link_free(l);
	close(sv[1]);
	return 0;
}
