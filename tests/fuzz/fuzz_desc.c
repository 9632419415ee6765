/* tests/fuzz/fuzz_desc.c: fuzz target of the descriptor decoder and attach paths; without libFuzzer, a mutation replay. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dragon/dragon.h>
#include "core/shm.h"
#include "seed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef DG_LIBFUZZER
#include "core/channel_remote.h"
/*
 * The libFuzzer build links the data path alone, without the client library that carries
 * operations on other nodes' channels to the transport agent. Here no agent runs, which the
 * client library reports the same way: a descriptor naming another node attaches to nothing.
 */
static int no_agent_attach(const dragon_channel_desc_t *desc, void **state)
{
	(void)desc;
	(void)state;
	return DRAGON_EPEER;
}
const struct dg_channel_remote_ops dg_ta_remote_ops = {.attach = no_agent_attach};
#endif

static dragon_pool_t *pool;
static dragon_channel_t *ch;
static dragon_mem_t mem;

static void setup(void)
{
	dragon_pool_attr_t a = { .size = 1 << 20 };

	if (pool)
		return;
	if (dragon_pool_create(&a, &pool) || dragon_channel_create(pool, NULL, &ch) ||
	    dragon_pool_alloc(pool, 4096, 0, &mem)) {
		fprintf(stderr, "fuzz setup: %s\n", dragon_errmsg());
		abort();
	}
}

/*
 * Input: byte 0 chooses the mode, the rest is descriptor bytes (short input = truncated). In
 * "reseal" mode the checksum is recomputed and the pid forced to ours, so that mutations reach
 * the field checks and the attach paths instead of stopping at the checksum.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char b[DRAGON_DESC_SIZE] = { 0 };
	char str[2 * DRAGON_DESC_SIZE + 2];
	dragon_pool_t *p = NULL;
	dragon_channel_t *c = NULL;
	dragon_mem_t m;

	setup();
	if (size == 0)
		return 0;
	memcpy(b, data + 1, size - 1 < sizeof(b) ? size - 1 : sizeof(b));
	if (data[0] & 1) {
		struct dg_desc d;
		memcpy(&d, b, sizeof(d));
		d.pid = getpid();
		dg_desc_pack(&d, b);
	}
	if (dragon_pool_attach((const dragon_pool_desc_t *)b, &p) == DRAGON_OK)
		dragon_pool_detach(p);
	if (dragon_mem_attach((const dragon_mem_desc_t *)b, &m) == DRAGON_OK) {
		/* An attached allocation must lie inside its pool: touch its ends. */
		if (m.size) {
			volatile unsigned char x = ((unsigned char *)m.ptr)[0];
			x = ((unsigned char *)m.ptr)[m.size - 1];
			(void)x;
		}
		dragon_pool_detach(m.pool);
	}
	if (dragon_channel_attach((const dragon_channel_desc_t *)b, &c) == DRAGON_OK) {
		char buf[16];
		size_t len;
		dragon_channel_try_recv(c, buf, sizeof(buf), &len);
		dragon_channel_detach(c);
	}
	size_t n = size - 1 < sizeof(str) - 1 ? size - 1 : sizeof(str) - 1;
	memcpy(str, data + 1, n);
	str[n] = '\0';
	dragon_desc_parse(str, b);
	return 0;
}

#ifndef DG_LIBFUZZER
/* Replay: real descriptors, then random single- and multi-byte mutations of them. */
int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 100000;
	unsigned seed = 12345;
	unsigned char in[1 + DRAGON_DESC_SIZE];
	dragon_pool_desc_t pd;
	dragon_channel_desc_t cd;
	dragon_mem_desc_t md;

	setup();
	dragon_pool_serialize(pool, &pd);
	dragon_channel_serialize(ch, &cd);
	dragon_mem_serialize(&mem, &md);
	if (argc > 2 && !strcmp(argv[1], "--seeds")) { /* the seed corpus for libFuzzer */
		const unsigned char *seeds[3] = { pd.bytes, cd.bytes, md.bytes };
		for (int i = 0; i < 6; i++) {
			in[0] = (unsigned char)(i & 1);
			memcpy(in + 1, seeds[i / 2], DRAGON_DESC_SIZE);
			if (fuzz_write_seed(argv[2], i, in, sizeof(in)))
				return 1;
		}
		return 0;
	}
	for (long r = 0; r < rounds; r++) {
		const unsigned char *base = r % 3 == 0 ? pd.bytes : r % 3 == 1 ? cd.bytes : md.bytes;
		in[0] = (unsigned char)rand_r(&seed);
		memcpy(in + 1, base, DRAGON_DESC_SIZE);
		int flips = 1 + rand_r(&seed) % 4;
		for (int k = 0; k < flips; k++)
			in[1 + rand_r(&seed) % DRAGON_DESC_SIZE] ^= (unsigned char)(1 + rand_r(&seed) % 255);
		size_t len = rand_r(&seed) % 8 ? sizeof(in) : (size_t)(rand_r(&seed) % sizeof(in));
		LLVMFuzzerTestOneInput(in, len);
	}
	printf("replayed %ld mutated descriptors without a crash\n", rounds);
	return 0;
}
#endif
