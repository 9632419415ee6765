/* tests/ta/fuzz_frame.c: libFuzzer target for the transport frame decoder (built with --enable-fuzz). */
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "ta/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char key[DG_FRAME_KEY] = {1, 2, 3};
	struct dg_frame_hdr h;
	const unsigned char *p;
	struct dg_replay w = {0};

	if (dg_frame_decode(key, data, size, 1 << 20, &h, &p) == DRAGON_OK)
		dg_replay_accept(&w, h.seq);
	return 0;
}
