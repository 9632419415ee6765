/* tests/unit/test_proto_fuzz.c: fuzz target of the message decoder; without libFuzzer, a mutation replay. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dragon/dragon.h>
#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Whatever decodes must be safe to use: every field readable and the message packable again
 * (under ASan, any bad pointer or length shows). Unknown fields are kept by protobuf-c and
 * re-emitted as they came, so the re-packed bytes need not decode again.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Dragon__Msg *m = NULL, *again = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (dg_msg_decode(data, size, &m))
		return 0;
	if (!dg_msg_name(m)[0])
		abort();
	if (dg_msg_encode(m, &buf, &len) == DRAGON_OK) {
		if (m->base.n_unknown_fields == 0 &&
		    dg_msg_decode(buf + DG_HDR_LEN, len - DG_HDR_LEN, &again) == DRAGON_OK) {
			if (again->body_case != m->body_case || again->seq != m->seq)
				abort();
			dg_msg_free(again);
		}
		free(buf);
	}
	dg_msg_free(m);
	return 0;
}

#ifndef DG_LIBFUZZER
/* Valid messages of several kinds, packed without their frame header. */
static size_t seed(int i, uint8_t **out)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Spawn s = DRAGON__SPAWN__INIT;
	Dragon__SpawnArgs a = DRAGON__SPAWN_ARGS__INIT;
	Dragon__NameRegister nr = DRAGON__NAME_REGISTER__INIT;
	Dragon__GroupCreate gc = DRAGON__GROUP_CREATE__INIT;
	Dragon__Output o = DRAGON__OUTPUT__INIT;
	Dragon__Wait w = DRAGON__WAIT__INIT;
	char *argv[] = {"prog", "-x", "value"}, *env[] = {"A=1"};
	uint8_t *buf;
	size_t len;

	a.n_argv = 3;
	a.argv = argv;
	a.n_env = 1;
	a.env = env;
	a.cpu = 3;
	m.seq = (uint64_t)i * 977;
	switch (i % 5) {
	case 0:
		s.args = &a;
		m.body_case = DRAGON__MSG__BODY_SPAWN;
		m.spawn = &s;
		break;
	case 1:
		nr.name = "a.name";
		nr.desc.data = (uint8_t *)"descriptor";
		nr.desc.len = 10;
		m.body_case = DRAGON__MSG__BODY_NAME_REGISTER;
		m.name_register = &nr;
		break;
	case 2:
		gc.args = &a;
		gc.nprocs = 8;
		gc.policy = DRAGON__POLICY__POLICY_BLOCK;
		m.body_case = DRAGON__MSG__BODY_GROUP_CREATE;
		m.group_create = &gc;
		break;
	case 3:
		o.puid = 5;
		o.data.data = (uint8_t *)"a line\n";
		o.data.len = 7;
		o.host = "h";
		m.body_case = DRAGON__MSG__BODY_OUTPUT;
		m.output = &o;
		break;
	default:
		w.puid = 1;
		w.timeout_ms = -1;
		m.body_case = DRAGON__MSG__BODY_WAIT;
		m.wait = &w;
	}
	if (dg_msg_encode(&m, &buf, &len))
		abort();
	memmove(buf, buf + DG_HDR_LEN, len - DG_HDR_LEN);
	*out = buf;
	return len - DG_HDR_LEN;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 20000;
	uint8_t work[512];

	/* `--seeds DIR` writes the seed corpus for libFuzzer. */
	if (argc > 2 && !strcmp(argv[1], "--seeds")) {
		for (int i = 0; i < 5; i++) {
			char path[4096];
			uint8_t *b;
			size_t n = seed(i, &b);
			FILE *f;
			snprintf(path, sizeof(path), "%s/seed%d", argv[2], i);
			if (!(f = fopen(path, "wb")) || fwrite(b, 1, n, f) != n)
				return 1;
			fclose(f);
			free(b);
		}
		return 0;
	}
	srand(1234);
	for (long it = 0; it < iters; it++) {
		uint8_t *b;
		size_t n = seed((int)(it % 5), &b), k;
		if (n > sizeof(work))
			n = sizeof(work);
		memcpy(work, b, n);
		free(b);
		/* A few random mutations: byte flips, truncation, growth with junk. */
		for (int j = rand() % 4; j >= 0; j--) {
			switch (rand() % 3) {
			case 0:
				work[rand() % (int)n] ^= (uint8_t)(1 + rand() % 255);
				break;
			case 1:
				n = (size_t)rand() % (n + 1);
				break;
			default:
				k = (size_t)(rand() % 16);
				for (size_t x = 0; x < k && n < sizeof(work); x++)
					work[n++] = (uint8_t)rand();
			}
			if (n == 0)
				break;
		}
		LLVMFuzzerTestOneInput(work, n);
	}
	printf("replayed %ld mutated messages\n", iters);
	return 0;
}
#endif
