/* runtime/proto/wire.h: framing, validation and blocking I/O of protocol messages (dragon.proto). */
#ifndef DRAGON_PROTO_WIRE_H
#define DRAGON_PROTO_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/dragon.pb-c.h"

/* Bumped on any incompatible change of dragon.proto; peers of another version get EPROTO. */
#define DG_PROTO_VERSION 1
/* Largest packed Msg accepted; a frame announcing more is refused before it is read. */
#define DG_MSG_MAX (1u << 20)
/* Frame header: a little-endian uint32 length of the packed Msg that follows. */
#define DG_HDR_LEN 4

/*
 * Unpack and validate one packed Msg of len bytes: decodable, the current version, a body that
 * this build knows. On success *out is owned by the caller (dg_msg_free). On failure returns
 * DRAGON_EPROTO with a detail message; *out is NULL.
 */
int dg_msg_decode(const uint8_t *buf, size_t len, Dragon__Msg **out);
/* The same with another size limit (links between nodes carry a request inside a Relay). */
int dg_msg_decode_max(const uint8_t *buf, size_t len, size_t max, Dragon__Msg **out);
void dg_msg_free(Dragon__Msg *m);

/* Pack m (version is filled in) behind a frame header into a malloc'd buffer. */
int dg_msg_encode(Dragon__Msg *m, uint8_t **buf, size_t *len);

/* Blocking send of one message on a stream socket; if passfd >= 0 it travels as SCM_RIGHTS. */
int dg_wire_send(int fd, Dragon__Msg *m, int passfd);

/*
 * Blocking receive of one message; timeout_ms < 0 waits forever. A descriptor sent alongside
 * is stored in *passfd (else -1) when passfd is non-NULL, closed otherwise.
 * DRAGON_EPEER on EOF, DRAGON_ETIMEDOUT, DRAGON_EPROTO on a bad frame.
 */
int dg_wire_recv(int fd, Dragon__Msg **m, int *passfd, int timeout_ms);

/* Name of a message body for logs ("spawn", "name_lookup", ...). */
const char *dg_msg_name(const Dragon__Msg *m);

#endif
