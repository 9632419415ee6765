/* tests/ddict/fuzz_req.c: fuzz target of a dictionary manager's request handling (decoder, field checks, shard); without libFuzzer, a mutation replay. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddict/dd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dd_server srv;
static dragon_pool_t *pool;
static unsigned long answers;

/* Every answer must itself decode: a manager never sends what a client cannot read. */
static void check_reply(void *arg, const unsigned char *desc, const void *msg, size_t len)
{
	const unsigned char *pl;
	size_t plen;
	DdRep *r;

	(void)arg;
	(void)desc;
	if (dd_decode_rep(msg, len, &r, &pl, &plen)) {
		fprintf(stderr, "fuzz_req: the manager sent an undecodable reply: %s\n",
			dragon_errmsg());
		abort();
	}
	dd_rep__free_unpacked(r, NULL);
	answers++;
}

static void setup(void)
{
	dragon_pool_attr_t a = { 16u << 20, 0 };

	if (pool)
		return;
	if (dragon_pool_create(&a, &pool) || dd_shard_create(pool, 4u << 20, 0, 2, &srv.shard)) {
		fprintf(stderr, "fuzz setup: %s\n", dragon_errmsg());
		abort();
	}
	srv.reply = check_reply;
	srv.node = 0;
	srv.trusted = 0; /* no files, no pool handovers from fuzzed bytes */
	snprintf(srv.name, sizeof(srv.name), "fuzzed manager");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	dd_serve(&srv, data, size);
	dd_serve_expire(&srv);
	/* keep the shard from filling up with what earlier inputs stored */
	if (srv.shard.h->count > 5000)
		dd_shard_clear(&srv.shard);
	srv.stop = 0;
	return 0;
}

#ifndef DG_LIBFUZZER
static unsigned char desc[DRAGON_DESC_SIZE];

/* One valid request of each operation. */
static size_t seed_msg(unsigned op, unsigned char **out)
{
	DdReq q = DD_REQ__INIT;
	ProtobufCBinaryData keys[2] = { { 1, (uint8_t *)"a" }, { 2, (uint8_t *)"bb" } };
	uint64_t vlens[2] = { 3, 4 };
	const char *pl = "";
	size_t plen = 0, len;

	q.op = op;
	q.seq = op;
	q.reply.data = desc;
	q.reply.len = sizeof(desc);
	q.key.data = (uint8_t *)"key";
	q.key.len = 3;
	q.timeout_ms = op % 2 ? 0 : 5;
	q.delta = 3;
	if (op == DD_OP_PUT) {
		pl = "value";
		plen = 5;
		q.vlen = 5;
	} else if (op == DD_OP_BATCH) {
		q.n_keys = 2;
		q.keys = keys;
		q.n_vlens = 2;
		q.vlens = vlens;
		pl = "xyz1234";
		plen = 7;
	}
	if (dd_encode(&q.base, pl, plen, out, &len))
		abort();
	return len;
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 100000;
	unsigned seed = 4242;
	unsigned char *seeds[DD_OP_MAX];
	size_t lens[DD_OP_MAX];

	setup();
	memset(desc, 0xab, sizeof(desc));
	for (unsigned op = 1; op < DD_OP_MAX; op++)
		lens[op] = seed_msg(op, &seeds[op]);
	if (argc > 2 && !strcmp(argv[1], "--seeds")) {
		for (unsigned op = 1; op < DD_OP_MAX; op++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/op%u", argv[2], op);
			FILE *f = fopen(path, "wb");
			if (!f || fwrite(seeds[op], 1, lens[op], f) != lens[op])
				return 1;
			fclose(f);
		}
		return 0;
	}
	/* the seeds themselves are served and answered */
	for (unsigned op = 1; op < DD_OP_MAX; op++)
		if (op != DD_OP_SHUTDOWN)
			LLVMFuzzerTestOneInput(seeds[op], lens[op]);
	if (answers < DD_OP_MAX - 3) {
		fprintf(stderr, "fuzz_req: only %lu answers to %d valid requests\n", answers,
			DD_OP_MAX - 2);
		return 1;
	}
	unsigned char buf[512];
	for (long r = 0; r < rounds; r++) {
		unsigned op = 1 + (unsigned)rand_r(&seed) % (DD_OP_MAX - 1);
		size_t len = lens[op] < sizeof(buf) ? lens[op] : sizeof(buf);
		memcpy(buf, seeds[op], len);
		int flips = 1 + rand_r(&seed) % 6;
		for (int k = 0; k < flips; k++)
			buf[(size_t)rand_r(&seed) % len] ^= (unsigned char)(1 + rand_r(&seed) % 255);
		if (rand_r(&seed) % 8 == 0)
			len = (size_t)rand_r(&seed) % (len + 1);
		LLVMFuzzerTestOneInput(buf, len);
	}
	printf("replayed %ld mutated requests without a crash (%lu answers)\n", rounds, answers);
	for (unsigned op = 1; op < DD_OP_MAX; op++)
		free(seeds[op]);
	return 0;
}
#endif
