/* tests/ta/test_frame.c: unit tests of transport frames: MAC, structure checks, replay window, decoder fuzzing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "ta/frame.h"

static unsigned char key[DG_FRAME_KEY];

static size_t make(unsigned char *buf, const char *payload, uint64_t seq)
{
	struct dg_frame_hdr h = {.type = DG_FRAME_DATA, .src = 1, .dst = 2, .epoch = 9, .seq = seq,
				 .ack = 5, .port = 7, .len = (uint32_t)strlen(payload),
				 .msg_len = 100, .offset = ((uint64_t)1 << 33) - 100};
	size_t n;
	h.msg_len = h.offset + h.len;
	assert_int_equal(dg_frame_encode(key, &h, payload, buf, &n), DRAGON_OK);
	assert_int_equal(n, DG_FRAME_OVERHEAD + strlen(payload));
	return n;
}

static void test_roundtrip(void **state)
{
	unsigned char buf[256];
	struct dg_frame_hdr h;
	const unsigned char *p;
	size_t n = make(buf, "hello", 3);

	(void)state;
	assert_int_equal(dg_frame_decode(key, buf, n, SIZE_MAX, &h, &p), DRAGON_OK);
	assert_int_equal(h.type, DG_FRAME_DATA);
	assert_int_equal(h.src, 1);
	assert_int_equal(h.dst, 2);
	assert_int_equal(h.seq, 3);
	assert_int_equal(h.ack, 5);
	assert_int_equal(h.port, 7);
	assert_int_equal(h.offset, ((uint64_t)1 << 33) - 100);
	assert_memory_equal(p, "hello", 5);
}

static void test_bad_mac(void **state)
{
	unsigned char buf[256], other[DG_FRAME_KEY];
	struct dg_frame_hdr h;
	const unsigned char *p;
	size_t n = make(buf, "hello", 3);

	(void)state;
	/* any flipped bit of header, payload or tag fails */
	for (size_t i = 0; i < n; i++) {
		buf[i] ^= 0x10;
		assert_int_not_equal(dg_frame_decode(key, buf, n, SIZE_MAX, &h, &p), DRAGON_OK);
		buf[i] ^= 0x10;
	}
	memcpy(other, key, sizeof(other));
	other[5] ^= 1;
	assert_int_equal(dg_frame_decode(other, buf, n, SIZE_MAX, &h, &p), DRAGON_EPERM);
}

static void test_malformed(void **state)
{
	unsigned char buf[256];
	struct dg_frame_hdr h;
	const unsigned char *p;
	size_t n = make(buf, "hello", 3);

	(void)state;
	for (size_t k = 0; k < n; k++)
		assert_int_equal(dg_frame_decode(key, buf, k, SIZE_MAX, &h, &p),
				 DRAGON_EPROTO);
	/* a message larger than the receiver's limit is refused before the MAC */
	assert_int_equal(dg_frame_decode(key, buf, n, 1000, &h, &p), DRAGON_EPROTO);
}

static void test_replay_window(void **state)
{
	struct dg_replay w = {0};

	(void)state;
	assert_int_equal(dg_replay_accept(&w, 1), DRAGON_OK);
	assert_int_equal(dg_replay_accept(&w, 1), DRAGON_EPERM);
	assert_int_equal(dg_replay_accept(&w, 5), DRAGON_OK);
	assert_int_equal(dg_replay_accept(&w, 3), DRAGON_OK); /* late but inside the window */
	assert_int_equal(dg_replay_accept(&w, 3), DRAGON_EPERM);
	assert_int_equal(dg_replay_accept(&w, 200), DRAGON_OK);
	assert_int_equal(dg_replay_accept(&w, 200 - DG_REPLAY_WINDOW), DRAGON_EPERM);
	assert_int_equal(dg_replay_accept(&w, 200 - DG_REPLAY_WINDOW + 1), DRAGON_OK);
	assert_int_equal(dg_replay_accept(&w, 199), DRAGON_OK);
	assert_int_equal(dg_replay_accept(&w, 199), DRAGON_EPERM);
}

/* The CI share of fuzzing: random and mutated frames must be refused without crashing. */
static void test_fuzz_check(void **state)
{
	unsigned char good[256], buf[512];
	struct dg_frame_hdr h;
	const unsigned char *p;
	size_t n = make(good, "payload of a frame", 4);
	long iters = getenv("CI") ? 20000 : 200000;

	(void)state;
	for (long i = 0; i < iters; i++) {
		size_t len = n;
		memcpy(buf, good, n);
		unsigned r = randombytes_uniform(4);
		if (r == 0) {
			len = randombytes_uniform(sizeof(buf));
			randombytes_buf(buf, len);
		} else {
			for (unsigned k = 0; k <= randombytes_uniform(4); k++)
				buf[randombytes_uniform((uint32_t)n)] ^= (unsigned char)(1 + randombytes_uniform(255));
			if (r == 2)
				len = randombytes_uniform(sizeof(buf));
		}
		int rc = dg_frame_decode(key, buf, len, SIZE_MAX, &h, &p);
		if (len == n && memcmp(buf, good, n) == 0)
			assert_int_equal(rc, DRAGON_OK);
		else
			assert_int_not_equal(rc, DRAGON_OK);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),    cmocka_unit_test(test_bad_mac),
		cmocka_unit_test(test_malformed),    cmocka_unit_test(test_replay_window),
		cmocka_unit_test(test_fuzz_check),
	};
	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key, sizeof(key));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
