/* tests/ta/fuzz_frame.c: fuzz target of the transport frame codec and replay window; without libFuzzer, a mutation replay. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ta/frame.h"
#include "../fuzz/seed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[DG_FRAME_KEY] = {1, 2, 3};
#define MAX_MSG (1u << 20)

/*
 * Input: byte 0 chooses the mode, the rest is a frame (mode 0) or header fields and payload
 * (mode 1). Mode 0 feeds the bytes to the decoder as they came off the wire. Mode 1 seals them
 * with the key first, so that mutations get past the MAC and reach the checks behind it; a frame
 * we encoded must decode to the same header and payload, else the codec is wrong and we abort.
 * Every accepted sequence number also goes through one replay window.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dg_replay w;
	static unsigned char out[4096 + DG_FRAME_OVERHEAD];
	struct dg_frame_hdr h, back;
	const unsigned char *p;
	size_t n;

	if (size == 0 || sodium_init() < 0)
		return 0;
	if (!(data[0] & 1)) {
		if (dg_frame_decode(key, data + 1, size - 1, MAX_MSG, &h, &p) == DRAGON_OK)
			dg_replay_accept(&w, h.seq);
		return 0;
	}
	memset(&h, 0, sizeof(h));
	memcpy(&h, data + 1, size - 1 < sizeof(h) ? size - 1 : sizeof(h));
	size_t rest = size - 1 > sizeof(h) ? size - 1 - sizeof(h) : 0;
	if (rest > 4096)
		rest = 4096;
	h.len = (uint32_t)rest;
	if (dg_frame_encode(key, &h, data + 1 + sizeof(h), out, &n) != DRAGON_OK)
		return 0;
	if (dg_frame_decode(key, out, n, MAX_MSG, &back, &p) != DRAGON_OK)
		return 0; /* a header the decoder refuses (e.g. offset past msg_len): fine if refused */
	if (back.type != h.type || back.flags != h.flags || back.src != h.src || back.dst != h.dst ||
	    back.epoch != h.epoch || back.seq != h.seq || back.ack != h.ack || back.port != h.port ||
	    back.len != h.len || back.msg_len != h.msg_len || back.offset != h.offset ||
	    memcmp(p, data + 1 + sizeof(h), rest)) {
		fprintf(stderr, "fuzz_frame: a sealed frame decoded differently\n");
		abort();
	}
	dg_replay_accept(&w, back.seq);
	return 0;
}

#ifndef DG_LIBFUZZER
/* Seeds: valid frames of each mode. Replay: random byte mutations of them. */
int main(int argc, char **argv)
{
	static unsigned char seeds[4][1 + 256 + DG_FRAME_OVERHEAD];
	size_t lens[4];
	long rounds = argc > 1 ? atol(argv[1]) : 100000;
	unsigned seed = 4242;

	if (sodium_init() < 0)
		return 1;
	for (int i = 0; i < 4; i++) {
		struct dg_frame_hdr h = {.type = (uint8_t)(1 + i), .src = 1, .dst = 0, .epoch = 9,
					 .seq = (uint64_t)i + 1, .port = 3, .len = (uint32_t)(16 * i),
					 .msg_len = (uint64_t)(16 * i)};
		unsigned char payload[64] = "payload of a seed frame";
		seeds[i][0] = (unsigned char)(i & 1);
		if (i & 1) { /* header fields then payload, sealed by the target */
			memcpy(seeds[i] + 1, &h, sizeof(h));
			memcpy(seeds[i] + 1 + sizeof(h), payload, h.len);
			lens[i] = 1 + sizeof(h) + h.len;
		} else if (dg_frame_encode(key, &h, payload, seeds[i] + 1, &lens[i]) == DRAGON_OK) {
			lens[i] += 1;
		} else {
			fprintf(stderr, "fuzz_frame: cannot encode a seed frame\n");
			return 1;
		}
	}
	if (argc > 2 && !strcmp(argv[1], "--seeds")) { /* the seed corpus for libFuzzer */
		for (int i = 0; i < 4; i++)
			if (fuzz_write_seed(argv[2], i, seeds[i], lens[i]))
				return 1;
		return 0;
	}
	for (long r = 0; r < rounds; r++) {
		unsigned char in[sizeof(seeds[0])];
		int i = (int)(r % 4);
		memcpy(in, seeds[i], lens[i]);
		int flips = 1 + rand_r(&seed) % 4;
		for (int k = 0; k < flips; k++)
			in[1 + rand_r(&seed) % (lens[i] - 1)] ^= (unsigned char)(1 + rand_r(&seed) % 255);
		size_t len = rand_r(&seed) % 8 ? lens[i] : (size_t)(rand_r(&seed) % lens[i]);
		LLVMFuzzerTestOneInput(in, len);
	}
	printf("replayed %ld mutated frames without a crash\n", rounds);
	return 0;
}
#endif
