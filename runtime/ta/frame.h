/* runtime/ta/frame.h: wire frames between transport agents: layout, keyed MAC, replay window. */
#ifndef DRAGON_TA_FRAME_H
#define DRAGON_TA_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/error.h>

#define DG_FRAME_MAGIC 0x41544744u /* "DGTA" little-endian */
#define DG_FRAME_VERSION 1
#define DG_FRAME_HDR 64             /* bytes before the payload */
#define DG_FRAME_MAC 16             /* Poly1305 tag after the payload */
#define DG_FRAME_KEY 32             /* the job key */
#define DG_FRAME_OVERHEAD (DG_FRAME_HDR + DG_FRAME_MAC)

enum dg_frame_type {
	DG_FRAME_DATA = 1, /* a chunk of a message for a port (channel) on the receiving node */
	DG_FRAME_ACK,      /* carries only `ack`: data frames consumed so far */
	DG_FRAME_PING,     /* liveness probe while the sender waits on this peer */
	DG_FRAME_PONG,     /* answer to a PING */
	DG_FRAME_TYPE_MAX
};

/* Flags of a DATA frame. */
#define DG_FRAME_F_ACKNOW 0x1u /* the sender waits for deposit: acknowledge as soon as consumed */
/* A chunk of a large message that travels zero-copy: the first frame (offset 0) goes like any
 * other; the later ones are tagged sends gathered from the sender's memory and scattered into
 * the memory the receiver chose for the message (ta_recv.c, "Large messages"). Same frames, same
 * MAC; only where their bytes sit at either end differs. */
#define DG_FRAME_F_BULK 0x2u

struct dg_frame_hdr {
	uint8_t type;
	uint16_t flags;
	uint32_t src;     /* sending node */
	uint32_t dst;     /* receiving node */
	uint64_t epoch;   /* random per agent start: (src, epoch, seq) never repeats under one key */
	uint64_t seq;     /* per (src -> dst) frame counter, from 1 */
	uint64_t ack;     /* DATA frames from dst that src has consumed (credit return) */
	uint32_t port;    /* target channel on dst */
	uint32_t len;     /* payload bytes in this frame */
	uint64_t msg_len; /* bytes of the whole message */
	uint64_t offset;  /* where this chunk goes in the message */
};

/*
 * Write header, payload and MAC into out (room for len + DG_FRAME_OVERHEAD bytes). The payload may
 * already sit at out + DG_FRAME_HDR (then pass payload == out + DG_FRAME_HDR: no copy).
 */
int dg_frame_encode(const unsigned char key[DG_FRAME_KEY], const struct dg_frame_hdr *h,
		    const void *payload, unsigned char *out, size_t *out_len);

/*
 * The same frame in three places: header and tag written into hdr and tag, the MAC computed over
 * hdr and the h->len payload bytes where they are (sent as one gathered message).
 */
void dg_frame_seal(const unsigned char key[DG_FRAME_KEY], const struct dg_frame_hdr *h,
		   const void *payload, unsigned char hdr[DG_FRAME_HDR], unsigned char tag[DG_FRAME_MAC]);

/* Check a frame received in three places (header, plen payload bytes, tag); as dg_frame_decode. */
int dg_frame_open(const unsigned char key[DG_FRAME_KEY], const unsigned char hdr[DG_FRAME_HDR],
		  const unsigned char *payload, size_t plen, const unsigned char tag[DG_FRAME_MAC],
		  size_t max_msg, struct dg_frame_hdr *h);

/*
 * Check a received frame of n bytes: structure first (never reads past n), then the MAC. On success
 * fills h and points *payload into buf. Returns DRAGON_OK, DRAGON_EPROTO (malformed) or
 * DRAGON_EPERM (bad MAC), with the reason in dragon_errmsg().
 */
int dg_frame_decode(const unsigned char key[DG_FRAME_KEY], const unsigned char *buf, size_t n,
		    size_t max_msg, struct dg_frame_hdr *h, const unsigned char **payload);

/* Sliding window of recently accepted sequence numbers of one sender epoch. */
#define DG_REPLAY_WINDOW 64
struct dg_replay {
	uint64_t top;  /* highest accepted seq, 0 before the first */
	uint64_t bits; /* bit i set: seq top - i accepted */
};

/* DRAGON_OK if seq is fresh (and records it), DRAGON_EPERM if replayed or older than the window. */
int dg_replay_accept(struct dg_replay *w, uint64_t seq);

#endif
