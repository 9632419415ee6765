/* runtime/ta/ta.h: the transport agent's libfabric layer: authenticated, flow-controlled messages between nodes. */
#ifndef DRAGON_TA_TA_H
#define DRAGON_TA_TA_H

#include <stddef.h>
#include <stdint.h>

#include "ta/frame.h"

/* The libfabric provider when none is named (--dragon=transport=, DRAGON_TA_PROVIDER). */
#define DG_TA_DEFAULT_PROVIDER "tcp;ofi_rxm"

typedef struct dg_ta dg_ta;

struct dg_ta_config {
	const char *provider;  /* libfabric provider, default "tcp;ofi_rxm" (env DRAGON_TA_PROVIDER) */
	const char *iface;     /* libfabric domain (network interface for tcp), NULL: any (DRAGON_TA_IFACE) */
	const char *bind;      /* "ip[:port]" to bind, NULL: provider's choice (DRAGON_TA_BIND) */
	const char *peer_file; /* static peer table: lines "<node> <hex endpoint address>" */
	uint32_t node;         /* this node's id */
	unsigned char key[DG_FRAME_KEY]; /* the job key */
	size_t chunk;          /* payload bytes per frame; larger messages are chunked (default 256 KiB) */
	unsigned window;       /* DATA frames in flight per peer: the credit (default 16) */
	unsigned slots;        /* send and receive buffers each (default 32) */
	size_t max_msg;        /* largest message accepted (default 1 GiB) */
	int dead_ms;           /* a peer silent this long while we wait on it is dead (default 5000) */
	int spin_us;           /* poll this long after the last traffic before sleeping (default 20000) */
	int peer_wait_ms;      /* frames of nodes not in a peer file not read yet wait for it this long
				* after dg_ta_open (default twice DRAGON_STARTUP_TIMEOUT) */
	size_t bulk_min;       /* messages above this travel zero-copy (default 64 KiB, 0: never) */
	size_t bulk_chunk;     /* payload bytes per zero-copy frame (default 1 MiB) */
	size_t test_stall;     /* tests only: a large message stops going out at this offset
				* (DRAGON_TA_TEST_STALL_KB; a sender stuck mid-message) */
};

/* How long dg_ta_send() waits. */
enum dg_ta_mode {
	DG_TA_BUFFERED = 0,  /* return once the message is copied into the agent's buffers */
	DG_TA_DEPOSITED = 1, /* return once the remote agent has consumed (deposited) it; a large
			      * message goes zero-copy from buf (as dg_ta_send_nb with a ref) */
};

struct dg_ta_msg {
	uint32_t src;              /* sending node */
	uint32_t port;             /* target port (channel) on this node */
	const unsigned char *data; /* owned by the agent until the next dg_ta_recv() or dg_ta_release() */
	size_t len;
	/* A large message placed where dg_ta_place_fn said (then data holds only its first `head`
	 * bytes, the rest is at the placement, which now belongs to the caller), else NULL. */
	void *placed;
	size_t head;
};

/*
 * Large messages (above bulk_min) are received straight into memory the caller picks when
 * their first bytes arrive (data, head of them, of a message of msg_len bytes for port): set
 * *dst and *skip (bytes [skip, msg_len) of the message go to dst, those before head copied
 * there at once; skip <= head) and *cookie, and return DRAGON_OK; anything else and the layer receives it into memory of its own (the
 * message then comes whole, as a small one does). A placement given up (its sender died or
 * restarted mid-message) is handed back to unplace once the provider no longer writes into it.
 */
typedef int (*dg_ta_place_fn)(void *arg, uint32_t src, uint32_t port, const unsigned char *data,
			      size_t head, size_t msg_len, unsigned char **dst, size_t *skip,
			      void **cookie);
typedef void (*dg_ta_unplace_fn)(void *arg, void *cookie);
void dg_ta_set_placement(dg_ta *ta, dg_ta_place_fn place, dg_ta_unplace_fn unplace, void *arg);

/*
 * A large message is sent from the caller's memory, not copied: the memory must stay untouched
 * while ref->pending (frames posted from it and not yet completed by the provider) is nonzero.
 */
struct dg_ta_ref {
	unsigned pending;
};

struct dg_ta_stats {
	uint64_t frames_in, frames_out;
	uint64_t drop_malformed, drop_mac, drop_replay, drop_unknown; /* frames dropped and logged */
	uint64_t wakeups; /* times the agent went to sleep and woke */
	uint64_t probes;  /* PINGs sent because a peer owing us an acknowledgement stayed silent */
	uint64_t drop_rxerr; /* receives completed with an error (logged) */
	uint64_t bulk_in, bulk_placed, bulk_aborted; /* large messages received, placed by the caller, given up */
};

/* Fill defaults, then the DRAGON_TA_* environment overrides. */
void dg_ta_config_init(struct dg_ta_config *cfg);

/* Open the endpoint. Peers are looked up in cfg->peer_file lazily, when first talked to. */
int dg_ta_open(const struct dg_ta_config *cfg, dg_ta **out);
void dg_ta_close(dg_ta *ta);

/* Set the job key (when it was not known at dg_ta_open): frames are checked with it from now on. */
void dg_ta_set_key(dg_ta *ta, const unsigned char key[DG_FRAME_KEY]);

/* This agent's endpoint address (opaque bytes for the bootstrap); *len in: room, out: size. */
int dg_ta_getname(dg_ta *ta, void *buf, size_t *len);

/* Provider, domain (the network interface for tcp) and source address, for the log. */
void dg_ta_describe(dg_ta *ta, char *buf, size_t cap);

/* Add or replace a peer's endpoint address (the bootstrap's alternative to the peer file). */
int dg_ta_add_peer(dg_ta *ta, uint32_t node, const void *addr, size_t len);

/* Send len bytes to port on node, in order after this agent's earlier sends to that node. */
int dg_ta_send(dg_ta *ta, uint32_t node, uint32_t port, const void *buf, size_t len,
	       enum dg_ta_mode mode);

/* Wait up to timeout_ms (-1: forever, 0: poll) for the next message from any peer. */
int dg_ta_recv(dg_ta *ta, int timeout_ms, struct dg_ta_msg *msg);

/* Give back the buffer of the last message early (dg_ta_recv does it too). */
void dg_ta_release(dg_ta *ta);

/* Drive progress for up to timeout_ms without consuming messages (an idle agent sleeps here). */
int dg_ta_progress(dg_ta *ta, int timeout_ms);

/*
 * The agent's side of dg_ta_send, never waiting: post the chunks of the message from *off on as
 * far as credits allow. DRAGON_OK once all are posted, DRAGON_EAGAIN with *off advanced when
 * credits ran out (call again with the same message after progress), or an error (DRAGON_EPEER
 * for a dead node). A caller may interleave calls for different nodes, but must finish one
 * message to a node before it starts the next to that node.
 */
int dg_ta_send_nb(dg_ta *ta, uint32_t node, uint32_t port, const void *buf, size_t len,
		  size_t *off, struct dg_ta_ref *ref);

/*
 * We wait on node for something (a reply) since since_ns (CLOCK_MONOTONIC): probe it while it
 * is silent and declare it dead after dead_ms of silence. Never waits. DRAGON_OK or DRAGON_EPEER.
 */
int dg_ta_watch(dg_ta *ta, uint32_t node, int64_t since_ns);

/*
 * Sleeping: a file descriptor that becomes readable when the agent has completions to handle, or
 * -1 if the provider has none (then nap briefly instead). Call dg_ta_trywait() right before
 * sleeping on it: DRAGON_OK means it is safe to sleep, DRAGON_EAGAIN means work is waiting.
 */
int dg_ta_wait_fd(dg_ta *ta);
int dg_ta_trywait(dg_ta *ta);

/* Sleep at most this many milliseconds (the layer has a timer, e.g. a probe of a peer that left
 * us without credit), or -1: no timer. */
int dg_ta_timeout_ms(dg_ta *ta);

/* Nonzero while data sent to some live peer waits for its acknowledgement. */
int dg_ta_unacked(dg_ta *ta);

/* Nonzero when received messages are waiting for dg_ta_recv. */
int dg_ta_pending(dg_ta *ta);

/*
 * Acknowledge now what was consumed from every peer and not acknowledged yet. Acks otherwise go
 * every half window (or when a deposited send asks): an agent about to sleep calls this, so a
 * peer's sent frames do not stay unacknowledged through a quiet spell (its stop waited the whole
 * DRAGON_TA_STOP_MS for them: 2 s on every fabric's end).
 */
void dg_ta_ack_consumed(dg_ta *ta);

/* CLOCK_MONOTONIC in nanoseconds (the clock of dg_ta_watch). */
int64_t dg_ta_now(void);

/* DRAGON_OK, or DRAGON_EPEER if the node was found dead. */
int dg_ta_peer_state(dg_ta *ta, uint32_t node);

/* Nonzero once the peer file has been read (or when there is none): a node not in the table is
 * then unknown, not merely not announced yet. Reads the file if it appeared or changed. */
int dg_ta_peers_known(dg_ta *ta);

void dg_ta_get_stats(dg_ta *ta, struct dg_ta_stats *st);

/* Write the layer's counters and every peer's sequence, credit and reorder state to stderr, one
 * line each (the agent does it on SIGUSR1: what a stalled agent waits for). */
void dg_ta_dump(dg_ta *ta);

/* Tests only: post raw bytes to a peer as if they were a frame (forged and replayed frames). */
int dg_ta_send_raw(dg_ta *ta, uint32_t node, const void *buf, size_t len);

/* Tests only: the next n control frames of type (DG_FRAME_ACK, ...) are lost: counted as sent,
 * never posted (a frame the provider never delivers). */
void dg_ta_test_drop(dg_ta *ta, uint8_t type, unsigned n);

/* Tests only: the next n posts of control frames of type are refused as if the provider pushed
 * back (-FI_EAGAIN). */
void dg_ta_test_busy(dg_ta *ta, uint8_t type, unsigned n);

/* Tests only: a copy of the last frame this agent sent (to replay it). */
int dg_ta_last_frame(dg_ta *ta, unsigned char *buf, size_t *len);

#endif
