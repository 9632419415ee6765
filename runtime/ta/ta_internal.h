/* runtime/ta/ta_internal.h: the libfabric layer's own state, shared by ta.c (setup), ta_peers.c, ta_send.c and ta_recv.c. */
#ifndef DRAGON_TA_TA_INTERNAL_H
#define DRAGON_TA_TA_INTERNAL_H

#include <stdint.h>
#include <time.h>

#include <rdma/fabric.h>
#include <rdma/fi_errno.h>

#include "core/err.h"
#include "ta/ta.h"

#define TA_ADDR_MAX 128
#define TA_CTRL_SLOTS 16
#define TA_OLD_EPOCHS 4
#define TA_LAST_FRAME 4096
#define TA_REORDER 64 /* frames one peer can have in flight: far above window + control slots */

struct bulk_rx;

struct slot {
	struct fi_context2 ctx; /* first: completions hand back &ctx, which is the slot */
	unsigned char *buf;
	size_t cap;
	int recv; /* a receive buffer (else a send buffer) */
	int busy; /* send: posted and not completed; recv: holding a frame not yet consumed */
	uint32_t node;
	struct dg_frame_hdr hdr;
	struct dg_ta_ref *ref; /* send: the caller's memory this frame was gathered from, or NULL */
	/* A receive of one chunk of a large message (buf holds its header and tag only): */
	struct bulk_rx *bulk;
	uint64_t gen;          /* the message (bulk->gen) it was posted for */
	size_t off, len;       /* where the chunk goes in the message */
	int posted;            /* handed to the provider */
};

/*
 * A large message being received from one peer (at most one at a time: a sender finishes a
 * message to a node before it starts the next). Its chunks are tagged receives posted straight
 * into the memory the caller chose (or into buf of our own), at most nslots at once.
 */
struct bulk_rx {
	uint32_t node;
	int active;         /* chunks still to come */
	int aborting;       /* given up: waiting for posted receives to come back */
	uint64_t gen;       /* counts messages; completions of an older one are ignored */
	uint64_t id;        /* the tag of this message's chunks, less the chunk index */
	uint32_t port;
	unsigned char *head;
	size_t head_len, msg_len, next_off, have, skip;
	unsigned char *dst; /* where bytes [skip, msg_len) go */
	unsigned char *own; /* our own buffer (whole message) when the caller did not place it */
	unsigned char *scratch; /* no memory for the message: its chunks land here and are dropped */
	unsigned shift, scratch_shift; /* chunks of 2^shift bytes */
	int discard;
	void *cookie;
	int64_t since;
	struct slot *slots;
	unsigned nslots, posted;
};

struct peer {
	uint32_t node;
	unsigned char addr[TA_ADDR_MAX];
	size_t addrlen;
	int inserted; /* in the address vector (connections are made on first use) */
	fi_addr_t fa;
	int dead;
	/* our side of the conversation */
	uint64_t tx_seq, tx_data, acked;
	/* their side */
	uint64_t rx_epoch, old_epochs[TA_OLD_EPOCHS];
	struct dg_replay win;
	/*
	 * Completions do not come in send order: a provider may finish a large frame (rendezvous)
	 * after a small one sent behind it (eager). Frames are put back in seq order here: every
	 * frame below rx_next has arrived; bit i of rx_seen says seq rx_next + i has; a DATA frame
	 * waiting for a gap sits in rx_hold[seq % TA_REORDER] (receive slot + 1).
	 */
	uint64_t rx_next, rx_seen;
	struct slot *rx_hold[TA_REORDER];
	uint64_t rx_consumed, ack_sent;
	int ack_pending, pong_pending;
	int64_t last_heard, last_ping;
	/*
	 * Since when data we sent this peer has waited for its acknowledgement (0: all acknowledged).
	 * Credit comes back only in frames from the peer; if those never come (a lost or undelivered
	 * ACK, or our own frame stuck), nothing else would ask again: a peer that owes us an
	 * acknowledgement and stays silent is probed (ta_probe_silent in ta_send.c).
	 */
	int64_t unacked_since, probe_gap;
	/* reassembly of a chunked message */
	unsigned char *rbuf;
	size_t rlen, rhave;
	struct bulk_rx *brx; /* a large message coming zero-copy (allocated on first use) */
	uint64_t tx_bulk_id; /* the large message we are sending it: its first frame's seq */
};

struct dg_ta {
	struct dg_ta_config cfg;
	char provider[64], iface[64], bind[128], peer_file[512];
	uint64_t epoch;
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	struct fid_cq *cq;
	struct fid_ep *ep;
	int wait_fd; /* the CQ's wait object when the provider gives one, else -1 */
	struct slot *tx, *rx, *ctrl;
	unsigned ntx_free;
	struct slot **dq; /* receive slots holding DATA frames, in arrival order */
	unsigned dq_head, dq_len, dq_cap;
	dg_ta_place_fn place;
	dg_ta_unplace_fn unplace;
	void *place_arg;
	unsigned nbulk; /* peers with a large message coming */
	int tagged;     /* the provider has tagged messages: large ones can go zero-copy */
	unsigned bulk_shift; /* log2 of cfg.bulk_chunk */
	/*
	 * Receive slots (and frame lengths) holding checked frames of nodes that are not in the
	 * table while the peer file has not been read yet: early ready lets a node whose services
	 * wrote it talk to one whose services have not. Handled again, in arrival order, once the
	 * file is read; dropped as unknown after peers_by.
	 */
	struct {
		struct slot *slot;
		size_t len;
	} *early;
	unsigned nearly;
	int64_t peers_by, early_look;
	int held_slot;           /* receive slot of the message handed out, or -1 */
	unsigned char *held_buf; /* reassembled message handed out, or NULL */
	struct peer *peers;
	size_t npeers, peers_cap;
	struct timespec peer_mtime;
	int64_t last_traffic;
	unsigned nunacked; /* peers with unacked_since set */
	unsigned test_drop_type, test_drop_n; /* tests only: frames of this type "lost" (dg_ta_test_drop) */
	unsigned test_busy_type, test_busy_n; /* tests only: posts refused with EAGAIN (dg_ta_test_busy) */
	struct dg_ta_stats st;
	unsigned char last[TA_LAST_FRAME];
	size_t last_len;
};

static inline int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int fi_fail(int rc, const char *what)
{
	return dg_err(DRAGON_EPEER, "libfabric %s: %s", what, fi_strerror(-rc));
}

/* ta_peers.c: the peer table (from the peer file), connections on first use, dead peers. */
struct peer *ta_peer_find(dg_ta *ta, uint32_t node);
int ta_peer_file_load(dg_ta *ta);
struct peer *ta_peer_get(dg_ta *ta, uint32_t node);
int ta_peer_use(dg_ta *ta, struct peer *p);
void ta_peer_mark_dead(dg_ta *ta, struct peer *p, const char *why);

/* ta_send.c: frames out. */
int ta_send_ctrl(dg_ta *ta, struct peer *p, uint8_t type);
void ta_probe_silent(dg_ta *ta);
int64_t ta_probe_due(dg_ta *ta);
void ta_acked_all(dg_ta *ta, struct peer *p);

/* ta_recv.c: completions, frames in, progress. */
int ta_post_recv(dg_ta *ta, struct slot *s);
void ta_rx_done(dg_ta *ta, struct slot *s);
void ta_bulk_abort(dg_ta *ta, struct peer *p, const char *why);
void ta_bulk_watch(dg_ta *ta);
int64_t ta_bulk_due(dg_ta *ta);
uint64_t ta_bulk_tag(uint32_t src, uint64_t id, size_t idx);
void ta_bulk_completed(dg_ta *ta, struct slot *s);
int ta_bulk_current(const struct slot *s);
void ta_bulk_start(dg_ta *ta, struct peer *p, struct slot *head);
int ta_bulk_chunk_in(dg_ta *ta, struct peer *p, struct slot *s, struct dg_ta_msg *msg);
void ta_bulk_free(struct bulk_rx *b);
unsigned char *ta_bulk_at(struct bulk_rx *b, size_t off); /* where the chunk at off lands */
void ta_log_drop(dg_ta *ta, uint64_t count, const char *kind);

/* The first frame of a large message carries this many bytes (the rest goes zero-copy) and the
 * log2 of the sender's zero-copy chunk in the high byte of its flags. */
#define TA_BULK_HEAD 4096
#define TA_BULK_SHIFT(flags) ((unsigned)(flags) >> 8)
int ta_progress(dg_ta *ta, int block_ms);
void ta_early_retry(dg_ta *ta, int now);

#endif
