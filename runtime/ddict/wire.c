/* runtime/ddict/wire.c: the dictionary's messages: a payload of value bytes, then a protobuf header, then the header's length. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "ddict/dd.h"

/*
 * The header goes last so that the value can lead the message: a reply received as a pool
 * allocation then has the value at the allocation's start, and a sender writes the value once.
 */
size_t dd_encoded_size(const ProtobufCMessage *m, size_t plen)
{
	return plen + protobuf_c_message_get_packed_size(m) + 4;
}

void dd_encode_into(const ProtobufCMessage *m, size_t plen, unsigned char *buf, size_t len)
{
	size_t hl = len - plen - 4;

	protobuf_c_message_pack(m, buf + plen);
	for (int i = 0; i < 4; i++)
		buf[len - 4 + i] = (unsigned char)(hl >> (8 * i));
}

int dd_encode(const ProtobufCMessage *m, const void *payload, size_t plen, unsigned char **out,
	      size_t *len)
{
	size_t n = dd_encoded_size(m, plen);
	unsigned char *b = malloc(n);

	if (!b)
		return dg_err(DRAGON_ENOMEM, "dictionary message of %zu bytes", n);
	if (plen)
		memcpy(b, payload, plen);
	dd_encode_into(m, plen, b, n);
	*out = b;
	*len = n;
	return DRAGON_OK;
}

static int split(const void *msg, size_t len, const ProtobufCMessageDescriptor *d,
		 ProtobufCMessage **m, const unsigned char **payload, size_t *plen)
{
	const unsigned char *b = msg;
	uint32_t hl = 0;

	if (!msg || len < 4)
		return dg_err(DRAGON_EPROTO, "dictionary message of %zu bytes (at least 4)", len);
	if (len > DD_MSG_MAX)
		return dg_err(DRAGON_EPROTO, "dictionary message of %zu bytes (at most %u)", len,
			      DD_MSG_MAX);
	for (int i = 3; i >= 0; i--)
		hl = hl << 8 | b[len - 4 + (size_t)i];
	if (hl > len - 4)
		return dg_err(DRAGON_EPROTO, "header of %u bytes in a message of %zu", hl, len);
	*m = protobuf_c_message_unpack(d, NULL, hl, b + len - 4 - hl);
	if (!*m)
		return dg_err(DRAGON_EPROTO, "undecodable dictionary header (%u bytes)", hl);
	*payload = b;
	*plen = len - 4 - hl;
	return DRAGON_OK;
}

int dd_decode_req(const void *msg, size_t len, DdReq **req, const unsigned char **payload,
		  size_t *plen)
{
	ProtobufCMessage *m;
	int rc = split(msg, len, &dd_req__descriptor, &m, payload, plen);

	if (rc)
		return rc;
	*req = (DdReq *)m;
	if ((*req)->op == 0 || (*req)->op >= DD_OP_MAX) {
		rc = dg_err(DRAGON_EPROTO, "unknown dictionary operation %u", (*req)->op);
		dd_req__free_unpacked(*req, NULL);
		*req = NULL;
	}
	return rc;
}

int dd_decode_rep(const void *msg, size_t len, DdRep **rep, const unsigned char **payload,
		  size_t *plen)
{
	ProtobufCMessage *m;
	int rc = split(msg, len, &dd_rep__descriptor, &m, payload, plen);

	if (rc)
		return rc;
	*rep = (DdRep *)m;
	if ((*rep)->vlen > *plen) {
		dd_rep__free_unpacked(*rep, NULL);
		*rep = NULL;
		return dg_err(DRAGON_EPROTO, "reply announces %llu value bytes, carries %zu",
			      (unsigned long long)(*rep ? (*rep)->vlen : 0), *plen);
	}
	return DRAGON_OK;
}

int64_t dd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
