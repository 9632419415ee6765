/* runtime/ls/link.h: sealed message links between the local services of two nodes (TCP + libsodium secretstream). */
#ifndef DRAGON_LS_LINK_H
#define DRAGON_LS_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"

struct event_base;
struct dg_link;

/* Bytes of the job key. */
#define DG_LINK_KEY 32
/* Largest packed Msg on a link: a client's message inside a Relay. */
#define DG_LINK_MSG_MAX (DG_MSG_MAX + 4096)
/* The head node's listen backlog for the other nodes' links (they all connect at start-up). */
#define DG_LINK_BACKLOG 4096

struct dg_link_cb {
	/* One authenticated message; on the accepting side the first one is always a Join whose
	 * nonce the link checked. m is freed after the call. */
	void (*msg)(struct dg_link *l, const Dragon__Msg *m, void *arg);
	/* The link failed or the peer closed it (why says which); free it with dg_link_free. */
	void (*closed)(struct dg_link *l, const char *why, void *arg);
	void *arg;
};

/*
 * Listen on TCP for links from other nodes. bind is "ip[:port]" or NULL (every interface, a port
 * of the kernel's choice). addrs receives the addresses to publish, "ip:port" separated by spaces,
 * loopback last.
 */
int dg_link_listen(const char *bind, int *fd, char *addrs, size_t cap);

/* Wrap an accepted connection: the link sends its nonce and waits for a sealed Join. */
struct dg_link *dg_link_accept(struct event_base *base, int fd, const unsigned char key[DG_LINK_KEY],
			       const struct dg_link_cb *cb);

/*
 * Connect to the first of addrs ("ip:port" list) that answers, prove the key with a sealed Join
 * (its nonce is filled in here) and wait for the head node's answer, all within timeout_ms.
 * An error reply becomes the return code with the head node's message.
 */
int dg_link_connect(struct event_base *base, const char *addrs, const unsigned char key[DG_LINK_KEY],
		    Dragon__Join *join, int timeout_ms, const struct dg_link_cb *cb,
		    struct dg_link **out);

/* Queue one message (version filled in). Fails the link if the peer stopped reading. */
int dg_link_send(struct dg_link *l, Dragon__Msg *m);

/* Mark the link failed; its closed callback runs when the current callback returns. */
void dg_link_fail(struct dg_link *l, const char *why);

/* The node on the other side (set by the owner once known; UINT32_MAX before). */
uint32_t dg_link_node(const struct dg_link *l);
void dg_link_set_node(struct dg_link *l, uint32_t node);

/*
 * Watch the peer: send a Heartbeat every interval_ms (the peer's link consumes it) and fail the
 * link ("nothing heard for N ms") when nothing at all came from the peer for timeout_ms. A cut
 * network closes no TCP connection; this is what notices it.
 */
int dg_link_watch(struct dg_link *l, int interval_ms, int timeout_ms);

/* The longest silence of the peer seen so far, in ms (0 before the watch): for the log. */
int64_t dg_link_max_silence_ms(const struct dg_link *l);

/* Write what is queued, bounded by timeout_ms (before an orderly exit). */
void dg_link_flush(struct dg_link *l, int timeout_ms);

/* The same for any socket bufferevent: its pending output, written synchronously. */
struct bufferevent;
void dg_bev_flush(struct bufferevent *bev, int timeout_ms);
void dg_link_free(struct dg_link *l);

#endif
