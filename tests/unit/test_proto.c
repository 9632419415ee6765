/* tests/unit/test_proto.c: the wire format: round trips, and refusal of bad, short and big frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <dragon/dragon.h>
#include "core/err.h"
#include "proto/wire.h"

static void spawn_round_trips(void **state)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *out = NULL;
	Dragon__Spawn s = DRAGON__SPAWN__INIT;
	Dragon__SpawnArgs a = DRAGON__SPAWN_ARGS__INIT;
	char *argv[] = {"prog", "arg one", ""};
	uint8_t *buf;
	size_t len;

	(void)state;
	a.n_argv = 3;
	a.argv = argv;
	a.cpu = -1;
	a.outlive = 1;
	s.args = &a;
	m.seq = 123456789012345ull;
	m.body_case = DRAGON__MSG__BODY_SPAWN;
	m.spawn = &s;
	assert_int_equal(dg_msg_encode(&m, &buf, &len), DRAGON_OK);
	assert_int_equal(buf[0] | buf[1] << 8 | buf[2] << 16 | buf[3] << 24, len - DG_HDR_LEN);
	assert_int_equal(dg_msg_decode(buf + DG_HDR_LEN, len - DG_HDR_LEN, &out), DRAGON_OK);
	assert_int_equal(out->version, DG_PROTO_VERSION);
	assert_int_equal(out->seq, 123456789012345ull);
	assert_int_equal(out->body_case, DRAGON__MSG__BODY_SPAWN);
	assert_int_equal(out->spawn->args->n_argv, 3);
	assert_string_equal(out->spawn->args->argv[1], "arg one");
	assert_int_equal(out->spawn->args->cpu, -1);
	assert_string_equal(dg_msg_name(out), "spawn");
	dg_msg_free(out);
	/* Every strict prefix is refused or decodes to something else; never a crash. */
	for (size_t n = 0; n < len - DG_HDR_LEN; n++) {
		if (dg_msg_decode(buf + DG_HDR_LEN, n, &out) == DRAGON_OK) {
			assert_true(out->body_case != DRAGON__MSG__BODY_SPAWN || !out->spawn->args ||
				    out->spawn->args->n_argv < 3);
			dg_msg_free(out);
		}
	}
	free(buf);
}

static void bad_messages_are_refused_with_a_reason(void **state)
{
	const uint8_t v2[] = {0x08, 0x02, 0x22, 0x00};
	const uint8_t nobody[] = {0x08, 0x01, 0x10, 0x05};
	const uint8_t future[] = {0x08, 0x01, 0x98, 0x06, 0x01};
	const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
	const uint8_t badlen[] = {0x08, 0x01, 0x32, 0x7f, 0x00}; /* spawn claims 127 bytes */
	Dragon__Msg *out = (Dragon__Msg *)1;

	(void)state;
	assert_int_equal(dg_msg_decode(v2, sizeof(v2), &out), DRAGON_EPROTO);
	assert_null(out);
	assert_non_null(strstr(dragon_errmsg(), "version 2"));
	assert_int_equal(dg_msg_decode(nobody, sizeof(nobody), &out), DRAGON_EPROTO);
	assert_non_null(strstr(dragon_errmsg(), "body"));
	assert_int_equal(dg_msg_decode(future, sizeof(future), &out), DRAGON_EPROTO);
	assert_int_equal(dg_msg_decode(junk, sizeof(junk), &out), DRAGON_EPROTO);
	assert_non_null(strstr(dragon_errmsg(), "undecodable"));
	assert_int_equal(dg_msg_decode(badlen, sizeof(badlen), &out), DRAGON_EPROTO);
	assert_int_equal(dg_msg_decode(junk, DG_MSG_MAX + 1, &out), DRAGON_EPROTO);
	assert_non_null(strstr(dragon_errmsg(), "limit"));
	assert_int_equal(dg_msg_decode(NULL, 0, &out), DRAGON_EPROTO);
}

static void oversized_messages_are_not_sent(void **state)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__NameRegister r = DRAGON__NAME_REGISTER__INIT;
	uint8_t *big = calloc(1, DG_MSG_MAX + 10), *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(big);
	r.name = "x";
	r.desc.data = big;
	r.desc.len = DG_MSG_MAX + 10;
	m.body_case = DRAGON__MSG__BODY_NAME_REGISTER;
	m.name_register = &r;
	assert_int_equal(dg_msg_encode(&m, &buf, &len), DRAGON_ETOOBIG);
	assert_null(buf);
	free(big);
}

static void socket_send_receive_with_a_descriptor(void **state)
{
	int sv[2], got = -1;
	Dragon__Msg m = DRAGON__MSG__INIT, *out = NULL;
	Dragon__PoolReply r = DRAGON__POOL_REPLY__INIT;
	uint8_t hdr[4] = {0xff, 0xff, 0xff, 0x7f};

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	r.pool_id = 9;
	r.size = 4096;
	m.seq = 3;
	m.body_case = DRAGON__MSG__BODY_POOL_REPLY;
	m.pool_reply = &r;
	assert_int_equal(dg_wire_send(sv[0], &m, 1), DRAGON_OK);
	assert_int_equal(dg_wire_recv(sv[1], &out, &got, 1000), DRAGON_OK);
	assert_true(got >= 0);
	assert_int_equal(out->pool_reply->pool_id, 9);
	close(got);
	dg_msg_free(out);
	/* Nothing sent: a timeout, not a hang. */
	assert_int_equal(dg_wire_recv(sv[1], &out, NULL, 50), DRAGON_ETIMEDOUT);
	/* An announced length beyond the limit is refused before reading it. */
	assert_int_equal(write(sv[0], hdr, 4), 4);
	assert_int_equal(dg_wire_recv(sv[1], &out, NULL, 1000), DRAGON_EPROTO);
	/* Truncated frame, then the peer leaves. */
	hdr[3] = 0;
	hdr[0] = 10;
	hdr[1] = hdr[2] = 0;
	assert_int_equal(write(sv[0], hdr, 4), 4);
	close(sv[0]);
	assert_int_equal(dg_wire_recv(sv[1], &out, NULL, 1000), DRAGON_EPEER);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(spawn_round_trips),
		cmocka_unit_test(bad_messages_are_refused_with_a_reason),
		cmocka_unit_test(oversized_messages_are_not_sent),
		cmocka_unit_test(socket_send_receive_with_a_descriptor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
