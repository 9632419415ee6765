/* tests/bench/chcost.c: per-message instruction probe for callgrind: one process sends and receives on one channel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dragon/channel.h>
#include <dragon/error.h>
#include <dragon/pool.h>

/*
 * Usage: chcost one|window|batch|alloc N
 *   one     N times: send one 8-byte message, receive it (the ping-pong path without the peer)
 *   window  N/32 times: send 32 messages of 8 bytes, receive 32 (the streaming path)
 *   batch   N/32 times: send_many 32 messages of 8 bytes, recv_many 32
 *   alloc   N times: allocate and free 64 bytes of a pool
 * Run under `valgrind --tool=callgrind` and divide the inclusive cost of the public calls by N:
 * instruction counts do not depend on the machine's load, unlike wall-clock figures.
 */
int main(int argc, char **argv)
{
	dragon_pool_t *pool;
	dragon_channel_t *ch;
	const dragon_channel_attr_t ca = { .capacity = 64 };
	const dragon_wait_t w = { .timeout_us = -1, .mode = DRAGON_WAIT_ADAPTIVE };
	char buf[64] = "12345678";
	size_t len;
	long n;
	int rc;

	if (argc != 3)
		return fprintf(stderr, "usage: chcost one|window|batch|alloc N\n"), 2;
	n = atol(argv[2]);
	if ((rc = dragon_pool_create(NULL, &pool)) || (rc = dragon_channel_create(pool, &ca, &ch)))
		return fprintf(stderr, "chcost: %s\n", dragon_errmsg()), 1;
	if (!strcmp(argv[1], "one")) {
		for (long i = 0; i < n; i++)
			if (dragon_channel_send(ch, buf, 8, &w) || dragon_channel_recv(ch, buf, 64, &len, &w))
				return fprintf(stderr, "chcost: %s\n", dragon_errmsg()), 1;
	} else if (!strcmp(argv[1], "window")) {
		for (long i = 0; i < n / 32; i++) {
			for (int k = 0; k < 32; k++)
				if (dragon_channel_send(ch, buf, 8, &w))
					return fprintf(stderr, "chcost: %s\n", dragon_errmsg()), 1;
			for (int k = 0; k < 32; k++)
				if (dragon_channel_recv(ch, buf, 64, &len, &w))
					return fprintf(stderr, "chcost: %s\n", dragon_errmsg()), 1;
		}
	} else if (!strcmp(argv[1], "batch")) {
		const void *sb[32];
		void *rb[32];
		size_t sl[32], caps[32], rl[32], k;
		char r[32][64];
		for (int j = 0; j < 32; j++) {
			sb[j] = buf;
			sl[j] = 8;
			rb[j] = r[j];
			caps[j] = 64;
		}
		for (long i = 0; i < n / 32; i++)
			if (dragon_channel_send_many(ch, sb, sl, 32, &k, &w) ||
			    dragon_channel_recv_many(ch, rb, caps, rl, 32, &k, &w) || k != 32)
				return fprintf(stderr, "chcost: %s\n", dragon_errmsg()), 1;
	} else if (!strcmp(argv[1], "alloc")) {
		dragon_mem_t m;
		for (long i = 0; i < n; i++)
			if (dragon_pool_alloc(pool, 64, 0, &m) || dragon_pool_free(&m))
				return fprintf(stderr, "chcost: %s\n", dragon_errmsg()), 1;
	} else {
		return fprintf(stderr, "chcost: unknown mode %s\n", argv[1]), 2;
	}
	dragon_channel_destroy(ch);
	dragon_pool_destroy(pool);
	return 0;
}
