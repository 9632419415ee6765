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

/* A large message's chunk is sealed with its payload elsewhere (gathered on the wire) and checked
 * where it landed (scattered): the same frame, byte for byte, under the same MAC. */
static void test_scattered(void **state)
{
	size_t sizes[] = {0, 1, 100, 4096, 1 << 20};

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t len = sizes[k], n;
		unsigned char *whole = malloc(len + DG_FRAME_OVERHEAD), *payload = malloc(len + 1);
		unsigned char hdr[DG_FRAME_HDR], tag[DG_FRAME_MAC];
		struct dg_frame_hdr h = {.type = DG_FRAME_DATA, .flags = DG_FRAME_F_BULK, .src = 3,
					 .dst = 4, .epoch = 11, .seq = 12 + k, .port = 1,
					 .len = (uint32_t)len, .msg_len = len + 4096, .offset = 4096},
				    got;
		assert_non_null(whole);
		assert_non_null(payload);
		randombytes_buf(payload, len + 1);
		dg_frame_seal(key, &h, payload, hdr, tag);
		assert_int_equal(dg_frame_encode(key, &h, payload, whole, &n), DRAGON_OK);
		assert_int_equal(n, len + DG_FRAME_OVERHEAD);
		assert_memory_equal(whole, hdr, DG_FRAME_HDR);
		assert_memory_equal(whole + DG_FRAME_HDR + len, tag, DG_FRAME_MAC);
		assert_int_equal(dg_frame_open(key, hdr, payload, len, tag, SIZE_MAX, &got), DRAGON_OK);
		{
			/* the tag is libsodium's Poly1305 whichever implementation computed it (large
			 * payloads go through OpenSSL's): one-time key BLAKE2b(job key; src..seq) */
			unsigned char otk[crypto_onetimeauth_KEYBYTES], want[DG_FRAME_MAC];
			crypto_generichash(otk, sizeof(otk), hdr + 8, 24, key, DG_FRAME_KEY);
			crypto_onetimeauth(want, whole, DG_FRAME_HDR + len, otk);
			assert_memory_equal(want, tag, DG_FRAME_MAC);
		}
		assert_int_equal(got.offset, 4096);
		assert_int_equal(got.flags, DG_FRAME_F_BULK);
		/* a flipped bit where the payload landed, a payload cut short, another tag: refused */
		if (len) {
			payload[len / 2] ^= 4;
			assert_int_equal(dg_frame_open(key, hdr, payload, len, tag, SIZE_MAX, &got),
					 DRAGON_EPERM);
			payload[len / 2] ^= 4;
			assert_int_equal(dg_frame_open(key, hdr, payload, len - 1, tag, SIZE_MAX, &got),
					 DRAGON_EPROTO);
		}
		tag[0] ^= 1;
		assert_int_equal(dg_frame_open(key, hdr, payload, len, tag, SIZE_MAX, &got), DRAGON_EPERM);
		free(whole);
		free(payload);
	}
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
		cmocka_unit_test(test_fuzz_check),   cmocka_unit_test(test_scattered),
	};
	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key, sizeof(key));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
