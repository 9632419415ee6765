/* dragon/channel.h: ordered multi-producer multi-consumer message queues living in a pool. */
#ifndef DRAGON_CHANNEL_H
#define DRAGON_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dragon_channel dragon_channel_t;

typedef struct dragon_channel_desc {
	unsigned char bytes[DRAGON_DESC_SIZE];
} dragon_channel_desc_t;

/*
 * How a blocked operation waits: SPIN burns the CPU for the lowest latency; IDLE sleeps on a
 * futex at once; ADAPTIVE (the default) spins briefly, then sleeps. Waking a sleeping process
 * costs ~20 us here against ~0.1 us for a spinning one, hence spinning first; but a receiver
 * whose last message came from another node (through the transport agent) sleeps at once.
 */
typedef enum dragon_wait_mode {
	DRAGON_WAIT_DEFAULT = 0, /* per call: the channel's mode; per channel: ADAPTIVE */
	DRAGON_WAIT_ADAPTIVE,
	DRAGON_WAIT_SPIN,
	DRAGON_WAIT_IDLE,
} dragon_wait_mode_t;

typedef struct dragon_channel_attr {
	uint32_t capacity;          /* messages it holds; 0 = 64 */
	uint32_t block_size;        /* bytes a message carries inline; 0 = 256. Larger ones
				       travel as pool allocations. */
	dragon_wait_mode_t wait;    /* the channel's default wait mode */
} dragon_channel_attr_t;

/*
 * A send to a channel on another node returns once this node's transport agent holds the message
 * (ordered after the sender's earlier ones; flow control slows the sender when the receiver
 * falls behind). With this flag it returns only once the message is in the remote channel, and
 * reports that channel's error (full past the timeout, destroyed) if it could not go in.
 */
#define DRAGON_WAIT_DEPOSITED 0x1u
/*
 * With this flag a send returns only once a receiver has taken the message, as a write larger
 * than an OS pipe's buffer returns only once the reader has read it: a producer can get no
 * further ahead of its consumer than that message. A message not taken within the timeout is
 * withdrawn (no receiver gets it) and the send fails with DRAGON_ETIMEDOUT (DRAGON_EAGAIN if
 * w waits 0); a channel destroyed meanwhile fails it with DRAGON_ECLOSED. To a channel on another
 * node it means DRAGON_WAIT_DEPOSITED: the send returns once the message is in that channel.
 */
#define DRAGON_WAIT_TAKEN 0x2u

/* How long and how a call may wait: NULL means forever in the channel's mode. */
typedef struct dragon_wait {
	long timeout_us;         /* -1 forever, 0 do not wait */
	dragon_wait_mode_t mode; /* DRAGON_WAIT_DEFAULT: the channel's */
	unsigned flags;          /* DRAGON_WAIT_DEPOSITED, DRAGON_WAIT_TAKEN */
} dragon_wait_t;

/* Create a channel in pool; attr may be NULL. */
int dragon_channel_create(dragon_pool_t *pool, const dragon_channel_attr_t *attr,
			  dragon_channel_t **ch);
int dragon_channel_attach(const dragon_channel_desc_t *desc, dragon_channel_t **ch);
int dragon_channel_detach(dragon_channel_t *ch);
/* Destroy: blocked and later operations of every process fail with DRAGON_ECLOSED. */
int dragon_channel_destroy(dragon_channel_t *ch);
int dragon_channel_serialize(const dragon_channel_t *ch, dragon_channel_desc_t *desc);

/* Copy len bytes in. DRAGON_ETIMEDOUT when the channel stayed full (DRAGON_EAGAIN if w waits 0). */
int dragon_channel_send(dragon_channel_t *ch, const void *buf, size_t len, const dragon_wait_t *w);
/*
 * Copy the oldest message into buf (capacity cap) and store its length in *len. A message larger
 * than cap fails with DRAGON_ETOOBIG, stays in the channel, and *len tells the size needed.
 */
int dragon_channel_recv(dragon_channel_t *ch, void *buf, size_t cap, size_t *len,
			const dragon_wait_t *w);
int dragon_channel_try_send(dragon_channel_t *ch, const void *buf, size_t len);
int dragon_channel_try_recv(dragon_channel_t *ch, void *buf, size_t cap, size_t *len);

/*
 * Zero-copy: send an allocation of the channel's pool; ownership passes to the receiver (on
 * success the sender must no longer touch or free it). recv_mem returns any message as an
 * allocation the caller owns and frees with dragon_pool_free.
 */
int dragon_channel_send_mem(dragon_channel_t *ch, dragon_mem_t *mem, const dragon_wait_t *w);
int dragon_channel_recv_mem(dragon_channel_t *ch, dragon_mem_t *mem, const dragon_wait_t *w);

/*
 * Batches: the same semantics as n calls, with one wake-up check for all of them (a receiver
 * or sender is woken at most once per batch, or before this call has to wait itself).
 *
 * send_many sends bufs[0..n) in order (messages of other senders may come between them),
 * each waiting as w says; *sent (may be NULL) counts those sent when it returns, also on error.
 *
 * recv_many waits as w says for the first message, then takes up to n - 1 more that are already
 * there, without waiting. bufs[i] has capacity caps[i]; lens[i] gets the length. *received
 * counts them; DRAGON_OK once at least one came (a message too large for its buffer then stays
 * queued for the next call); the errors of dragon_channel_recv when none did.
 */
int dragon_channel_send_many(dragon_channel_t *ch, const void *const *bufs, const size_t *lens,
			     size_t n, size_t *sent, const dragon_wait_t *w);
int dragon_channel_recv_many(dragon_channel_t *ch, void *const *bufs, const size_t *caps,
			     size_t *lens, size_t n, size_t *received, const dragon_wait_t *w);

/* Copy the oldest message without removing it; DRAGON_EAGAIN if there is none. */
int dragon_channel_peek(dragon_channel_t *ch, void *buf, size_t cap, size_t *len);

#define DRAGON_POLLIN 1u  /* a message can be received */
#define DRAGON_POLLOUT 2u /* a message can be sent */

/* Wait until one of events holds; *revents gets what holds. */
int dragon_channel_poll(dragon_channel_t *ch, unsigned events, unsigned *revents,
			const dragon_wait_t *w);
/* Wait on many channels at once: revents[i] for chs[i]; DRAGON_ETIMEDOUT if none became ready. */
int dragon_channel_poll_many(dragon_channel_t *const *chs, const unsigned *events,
			     unsigned *revents, size_t n, const dragon_wait_t *w);

/* Messages in the channel now and its capacity. */
int dragon_channel_count(const dragon_channel_t *ch, uint32_t *count, uint32_t *capacity);

#ifdef __cplusplus
}
#endif
#endif
