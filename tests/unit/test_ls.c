/* tests/unit/test_ls.c: local services against bad frames and requests, and the process API. */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dragon/dragon.h>
#include "core/err.h"
#include "test_ls_fixture.h"
#include "client/client.h"
#include "core/fdpass.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* A descriptor local services hold without close-on-exec (as a library's may be): the processes
 * they start must not get it (descriptors_stay_with_local_services). */
#define FX_LEAK_FD 60

static int setup(void **state)
{
	int fd = open("/dev/null", O_RDONLY);

	(void)state;
	if (fd < 0 || dup2(fd, FX_LEAK_FD) != FX_LEAK_FD)
		return -1;
	close(fd);
	if (fx_start())
		return -1;
	return dragon_init() == DRAGON_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	dragon_finalize();
	fx_stop();
	return 0;
}

static void garbage_gets_an_error_and_the_connection_lives(void **state)
{
	int fd = fx_connect();
	const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff};

	(void)state;
	assert_true(fd >= 0);
	fx_send_raw(fd, sizeof(junk), junk, sizeof(junk));
	assert_int_equal(fx_reply_rc(fd, NULL), DRAGON_EPROTO);
	assert_true(fx_hello_ok(fd));
	close(fd);
}

static void wrong_version_no_body_unknown_body_are_refused(void **state)
{
	int fd = fx_connect();
	/* version 9 with a hello body (field 4, empty) */
	const uint8_t v9[] = {0x08, 0x09, 0x22, 0x00};
	/* version 1 and nothing else */
	const uint8_t nobody[] = {0x08, 0x01};
	/* version 1 and field 99 (varint) from some future schema */
	const uint8_t future[] = {0x08, 0x01, 0x98, 0x06, 0x01};
	/* zero-length message */

	(void)state;
	fx_send_raw(fd, sizeof(v9), v9, sizeof(v9));
	assert_int_equal(fx_reply_rc(fd, NULL), DRAGON_EPROTO);
	fx_send_raw(fd, sizeof(nobody), nobody, sizeof(nobody));
	assert_int_equal(fx_reply_rc(fd, NULL), DRAGON_EPROTO);
	fx_send_raw(fd, sizeof(future), future, sizeof(future));
	assert_int_equal(fx_reply_rc(fd, NULL), DRAGON_EPROTO);
	fx_send_raw(fd, 0, NULL, 0);
	assert_int_equal(fx_reply_rc(fd, NULL), DRAGON_EPROTO);
	assert_true(fx_hello_ok(fd));
	close(fd);
}

static void a_reply_sent_as_a_request_is_refused(void **state)
{
	int fd = fx_connect();
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__HelloReply r = DRAGON__HELLO_REPLY__INIT;

	(void)state;
	m.seq = 5;
	m.body_case = DRAGON__MSG__BODY_HELLO_REPLY;
	m.hello_reply = &r;
	assert_int_equal(dg_wire_send(fd, &m, -1), DRAGON_OK);
	assert_int_equal(fx_reply_rc(fd, NULL), DRAGON_EPROTO);
	assert_true(fx_hello_ok(fd));
	close(fd);
}

static void oversized_frame_closes_only_that_connection(void **state)
{
	int bad = fx_connect(), good = fx_connect();
	Dragon__Msg *m = NULL;

	(void)state;
	fx_send_raw(bad, 0x7fffffff, "xx", 2);
	assert_int_equal(fx_reply_rc(bad, NULL), DRAGON_EPROTO);
	assert_int_equal(dg_wire_recv(bad, &m, NULL, 3000), DRAGON_EPEER);
	assert_true(fx_hello_ok(good));
	close(bad);
	close(good);
}

static void truncated_frame_then_hangup_does_not_disturb_others(void **state)
{
	int bad = fx_connect(), good = fx_connect();

	(void)state;
	fx_send_raw(bad, 100, "\x08\x01", 2);
	close(bad);
	assert_true(fx_hello_ok(good));
	close(good);
}

static void random_frames_never_kill_local_services(void **state)
{
	int fd = fx_connect(), sent = 0;
	uint8_t buf[64];

	(void)state;
	srand(42);
	for (int i = 0; i < 300; i++) {
		size_t n = (size_t)(rand() % (int)sizeof(buf));
		Dragon__Msg *m = NULL;
		for (size_t j = 0; j < n; j++)
			buf[j] = (uint8_t)rand();
		if (n > 1) {
			buf[0] = 0x08; /* most get past the version check */
			buf[1] = 0x01;
		}
		/* Only frames the decoder refuses: a valid random request (a shutdown) would
		 * be obeyed, which is right but not this test. */
		if (dg_msg_decode(buf, n, &m) == DRAGON_OK) {
			dg_msg_free(m);
			continue;
		}
		fx_send_raw(fd, (uint32_t)n, buf, n);
		sent++;
	}
	/* Each refused frame gets one error reply, and the connection still serves. */
	for (int i = 0; i < sent; i++)
		assert_int_equal(fx_reply_rc(fd, NULL), DRAGON_EPROTO);
	assert_true(sent > 200);
	assert_true(fx_hello_ok(fd));
	close(fd);
}

static void bad_spawn_requests_get_errors(void **state)
{
	dragon_puid_t puid;
	const char *empty[] = {NULL};
	const char *missing[] = {"/nonexistent/prog", NULL};
	const char *missing2[] = {"no-such-program-anywhere", NULL};
	const char *ok[] = {"true", NULL};
	const char *badenv[] = {"NOEQUALS", NULL};
	dragon_process_opts_t o = DRAGON_PROCESS_OPTS_INIT;

	(void)state;
	assert_int_equal(dragon_process_create(empty, NULL, &puid), DRAGON_EINVAL);
	assert_int_equal(dragon_process_create(missing, NULL, &puid), DRAGON_ENOTFOUND);
	assert_int_equal(dragon_process_create(missing2, NULL, &puid), DRAGON_ENOTFOUND);
	assert_non_null(strstr(dragon_errmsg(), "no-such-program-anywhere"));
	o.env = badenv;
	assert_int_equal(dragon_process_create(ok, &o, &puid), DRAGON_EINVAL);
	o.env = NULL;
	o.cwd = "/nonexistent-dir";
	assert_int_equal(dragon_process_create(ok, &o, &puid), DRAGON_ENOTFOUND);
	assert_non_null(strstr(dragon_errmsg(), "/nonexistent-dir"));
}

static void processes_start_end_and_report_status(void **state)
{
	dragon_puid_t a, b, c;
	const char *t[] = {"true", NULL};
	const char *seven[] = {"sh", "-c", "exit 7", NULL};
	const char *sleeper[] = {"sleep", "10", NULL};
	int st = -1;

	(void)state;
	assert_int_equal(dragon_process_create(t, NULL, &a), DRAGON_OK);
	assert_int_equal(dragon_process_wait(a, 5000, &st), DRAGON_OK);
	assert_int_equal(st, 0);
	/* An ended process can be waited for again, and a late signal says it ended. */
	st = -1;
	assert_int_equal(dragon_process_wait(a, 0, &st), DRAGON_OK);
	assert_int_equal(st, 0);
	assert_int_equal(dragon_process_signal(a, SIGTERM), DRAGON_ESTALE);
	assert_int_equal(dragon_process_wait(987654321, 0, &st), DRAGON_ENOTFOUND);
	assert_int_equal(dragon_process_create(seven, NULL, &b), DRAGON_OK);
	assert_int_equal(dragon_process_wait(b, 5000, &st), DRAGON_OK);
	assert_int_equal(st, 7);
	assert_int_equal(dragon_process_create(sleeper, NULL, &c), DRAGON_OK);
	assert_int_equal(dragon_process_wait(c, 0, &st), DRAGON_ETIMEDOUT);
	assert_int_equal(dragon_process_wait(c, 50, &st), DRAGON_ETIMEDOUT);
	assert_int_equal(dragon_process_signal(c, 1000), DRAGON_EINVAL);
	assert_int_equal(dragon_process_signal(c, SIGTERM), DRAGON_OK);
	assert_int_equal(dragon_process_wait(c, 5000, &st), DRAGON_OK);
	assert_int_equal(st, 128 + SIGTERM);
	assert_int_equal(dragon_process_signal(c, SIGTERM), DRAGON_ESTALE);
	assert_int_equal(dragon_process_signal(0, SIGTERM), DRAGON_EINVAL);
}

static void list_shows_running_processes(void **state)
{
	dragon_puid_t c;
	const char *sleeper[] = {"sleep", "10", NULL};
	dragon_process_info_t *l = NULL;
	size_t n = 0;
	int found = 0, st;

	(void)state;
	assert_int_equal(dragon_process_create(sleeper, NULL, &c), DRAGON_OK);
	assert_int_equal(dragon_process_list(&l, &n), DRAGON_OK);
	for (size_t i = 0; i < n; i++)
		if (l[i].puid == c) {
			found = 1;
			assert_true(l[i].running);
			assert_string_equal(l[i].program, "sleep");
			assert_true(l[i].pid > 0);
			assert_int_equal(l[i].rank, -1);
		}
	free(l);
	assert_true(found);
	assert_int_equal(dragon_process_signal(c, SIGKILL), DRAGON_OK);
	assert_int_equal(dragon_process_wait(c, 5000, &st), DRAGON_OK);
	assert_int_equal(st, 128 + SIGKILL);
}

static void cpu_binding_stays_inside_the_allowed_set(void **state)
{
	dragon_puid_t p;
	const char *show[] = {"sh", "-c", "test $(nproc) -eq 1", NULL};
	dragon_process_opts_t o = DRAGON_PROCESS_OPTS_INIT;
	int st = -1;

	(void)state;
	o.cpu = 1000; /* taken modulo the allowed set, never beyond it */
	assert_int_equal(dragon_process_create(show, &o, &p), DRAGON_OK);
	assert_int_equal(dragon_process_wait(p, 5000, &st), DRAGON_OK);
	assert_int_equal(st, 0);
}

static void a_client_that_leaves_takes_its_processes_along(void **state)
{
	int fd = fx_connect();
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__Spawn s = DRAGON__SPAWN__INIT;
	Dragon__SpawnArgs a = DRAGON__SPAWN_ARGS__INIT;
	char *argv[] = {"sleep", "30", NULL};
	pid_t pid;

	(void)state;
	a.n_argv = 2;
	a.argv = argv;
	a.cpu = -1;
	s.args = &a;
	m.seq = 1;
	m.body_case = DRAGON__MSG__BODY_SPAWN;
	m.spawn = &s;
	assert_int_equal(dg_wire_send(fd, &m, -1), DRAGON_OK);
	assert_int_equal(dg_wire_recv(fd, &rep, NULL, 3000), DRAGON_OK);
	assert_int_equal(rep->body_case, DRAGON__MSG__BODY_SPAWN_REPLY);
	pid = rep->spawn_reply->pid;
	dg_msg_free(rep);
	assert_int_equal(kill(pid, 0), 0);
	close(fd);
	for (int i = 0; i < 300 && kill(pid, 0) == 0; i++)
		usleep(10000);
	assert_int_not_equal(kill(pid, 0), 0);
}

static void pools_are_memfds_handed_over_the_socket(void **state)
{
	uint64_t id = 0, size = 0;
	int fd = -1, fd2 = -1;
	char *a, *b;
	struct stat st;

	(void)state;
	assert_int_equal(dg_client_pool_create("unit.pool", 0, 0, &id, &fd), DRAGON_EINVAL);
	assert_int_equal(dg_client_pool_create("unit.pool", 1ull << 50, 0, &id, &fd), DRAGON_EINVAL);
	assert_int_equal(dg_client_pool_create("unit.pool", 1 << 20, 0, &id, &fd), DRAGON_OK);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 1 << 20);
	/* Attaching by id (as any process of the fabric may) gives another descriptor of the same memory. */
	assert_int_equal(dg_client_pool_attach(id, &fd2, &size), DRAGON_OK);
	assert_int_equal(size, 1 << 20);
	a = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	b = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
	assert_true(a != MAP_FAILED && b != MAP_FAILED);
	strcpy(a + 4096, "shared");
	assert_string_equal(b + 4096, "shared");
	/* Sealed: no client can shrink it under the others. */
	assert_int_not_equal(ftruncate(fd2, 4096), 0);
	munmap(a, 1 << 20);
	munmap(b, 1 << 20);
	close(fd);
	close(fd2);
	assert_int_equal(dg_client_pool_attach(id + 1000, &fd2, &size), DRAGON_ENOTFOUND);
	assert_int_equal(dg_client_pool_destroy(id), DRAGON_OK);
	assert_int_equal(dg_client_pool_attach(id, &fd2, &size), DRAGON_ENOTFOUND);
	assert_int_equal(dg_client_pool_destroy(id), DRAGON_ENOTFOUND);
}

static void channels_of_local_services_are_made_checked_and_destroyed(void **state)
{
	dragon_channel_attr_t big = {.capacity = (1u << 20) + 1};
	dragon_channel_attr_t small = {.capacity = 4};
	dragon_channel_t *ch = NULL, *other = NULL;
	dragon_channel_desc_t desc;
	char buf[16];
	size_t len;

	(void)state;
	assert_int_equal(dragon_fchannel_create(NULL, &big, 0, &ch), DRAGON_EINVAL);
	assert_int_equal(dragon_fchannel_create("unit.chan", &small, 0, &ch), DRAGON_OK);
	/* A name is taken once: the second create fails and leaves nothing behind. */
	assert_int_equal(dragon_fchannel_create("unit.chan", &small, 0, &other), DRAGON_EEXIST);
	assert_int_equal(dragon_channel_send(ch, "hi", 2, NULL), DRAGON_OK);
	assert_int_equal(dragon_fchannel_attach("unit.chan", 0, &other), DRAGON_OK);
	assert_int_equal(dragon_channel_recv(other, buf, sizeof(buf), &len, NULL), DRAGON_OK);
	assert_int_equal(len, 2);
	assert_int_equal(dragon_channel_serialize(ch, &desc), DRAGON_OK);
	assert_int_equal(dragon_fchannel_destroy(ch), DRAGON_OK);
	assert_int_equal(dragon_channel_send(other, "x", 1, NULL), DRAGON_ECLOSED);
	assert_int_equal(dragon_channel_attach(&desc, &ch), DRAGON_ESTALE);
	dragon_channel_detach(other);
	/* A channel of the process's own pool is not local services' to destroy. */
	{
		dragon_pool_t *pool;
		assert_int_equal(dragon_pool_create(NULL, &pool), DRAGON_OK);
		assert_int_equal(dragon_channel_create(pool, NULL, &ch), DRAGON_OK);
		assert_int_equal(dragon_fchannel_destroy(ch), DRAGON_ENOTFOUND);
		dragon_channel_destroy(ch);
		dragon_pool_destroy(pool);
	}
	assert_int_equal(dragon_name_remove("unit.chan"), DRAGON_OK);
}

/* Read what a pipe gets until its end of file (every writer closed), with a bound. */
static int read_to_eof(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t n;
		if (poll(&pf, 1, 5000) != 1)
			return -1; /* a writer is still open somewhere */
		n = read(fd, buf + got, cap - 1 - got);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = 0;
	return (int)got;
}

static void descriptors_stay_with_local_services(void **state)
{
	int st = -1;
	dragon_puid_t puid;
	dragon_process_opts_t o = DRAGON_PROCESS_OPTS_INIT;
	const char *probe[] = {"/bin/sh", "-c", "test ! -e /proc/self/fd/60", NULL};

	(void)state;
	/* local services inherited it from this test (forked before exec-less ls_run) */
	assert_int_equal(fcntl(FX_LEAK_FD, F_GETFD) & FD_CLOEXEC, 0);
	assert_int_equal(dragon_process_create(probe, &o, &puid), DRAGON_OK);
	assert_int_equal(dragon_process_wait(puid, 5000, &st), DRAGON_OK);
	assert_int_equal(st, 0);
}

static void descriptors_reach_a_new_process_at_their_numbers(void **state)
{
	int a[2], b[2], st = -1, fds[2];
	char buf[64];
	dragon_puid_t puid;
	dragon_process_opts_t o = DRAGON_PROCESS_OPTS_INIT;
	const char *writer[] = {"bash", "-c", "echo forty >&40; echo forty-one >&41", NULL};

	(void)state;
	assert_int_equal(pipe2(a, O_CLOEXEC), 0);
	assert_int_equal(pipe2(b, O_CLOEXEC), 0);
	/* ours are close-on-exec; the process gets them open anyway */
	assert_int_equal(dup3(a[1], 40, O_CLOEXEC), 40);
	assert_int_equal(dup3(b[1], 41, O_CLOEXEC), 41);
	close(a[1]);
	close(b[1]);
	fds[0] = 40;
	fds[1] = 41;
	o.fds = fds;
	o.nfds = 2;
	assert_int_equal(dragon_process_create(writer, &o, &puid), DRAGON_OK);
	close(40);
	close(41);
	/* End of file proves local services closed their copies too. */
	assert_int_equal(read_to_eof(a[0], buf, sizeof(buf)), 6);
	assert_string_equal(buf, "forty\n");
	assert_int_equal(read_to_eof(b[0], buf, sizeof(buf)), 10);
	assert_string_equal(buf, "forty-one\n");
	close(a[0]);
	assert_int_equal(dragon_process_wait(puid, 5000, &st), DRAGON_OK);
	assert_int_equal(st, 0);

	/* A start that fails (missing program) leaves no copy behind either. */
	{
		const char *missing[] = {"/nonexistent/prog", NULL};
		assert_int_equal(pipe2(a, O_CLOEXEC), 0);
		fds[0] = a[1];
		o.nfds = 1;
		assert_int_equal(dragon_process_create(missing, &o, &puid), DRAGON_ENOTFOUND);
		close(a[1]);
		assert_int_equal(read_to_eof(a[0], buf, sizeof(buf)), 0);
		close(a[0]);
	}
	close(b[0]);
}

static void bad_descriptor_requests_get_errors(void **state)
{
	int p[2], fds[DG_FDPASS_MAX + 1];
	dragon_puid_t puid;
	dragon_gid_t gid;
	dragon_process_opts_t o = DRAGON_PROCESS_OPTS_INIT;
	const char *t[] = {"true", NULL};

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	o.fds = fds;
	fds[0] = 2;
	o.nfds = 1;
	assert_int_equal(dragon_process_create(t, &o, &puid), DRAGON_EINVAL);
	assert_non_null(strstr(dragon_errmsg(), "stdin/stdout/stderr"));
	fds[0] = 1000; /* not open */
	assert_int_equal(dragon_process_create(t, &o, &puid), DRAGON_EINVAL);
	assert_non_null(strstr(dragon_errmsg(), "not open"));
	fds[0] = fds[1] = p[1];
	o.nfds = 2;
	assert_int_equal(dragon_process_create(t, &o, &puid), DRAGON_EINVAL);
	assert_non_null(strstr(dragon_errmsg(), "twice"));
	o.nfds = DG_FDPASS_MAX + 1;
	assert_int_equal(dragon_process_create(t, &o, &puid), DRAGON_EINVAL);
	o.nfds = 1;
	o.fds = NULL;
	assert_int_equal(dragon_process_create(t, &o, &puid), DRAGON_EINVAL);
	/* A group's members may go to other nodes: no descriptors for them. */
	o.fds = fds;
	assert_int_equal(dragon_group_create(t, 1, DRAGON_POLICY_NODE, 0, &o, NULL, &gid),
			 DRAGON_EINVAL);
	assert_non_null(strstr(dragon_errmsg(), "this node"));

	/* A raw Spawn that names descriptors it did not send: refused, the connection lives. */
	{
		Dragon__Msg m = DRAGON__MSG__INIT;
		Dragon__Spawn s = DRAGON__SPAWN__INIT;
		Dragon__SpawnArgs a = DRAGON__SPAWN_ARGS__INIT;
		char *argv[] = {"true"};
		int32_t want[] = {5};
		int fd = fx_connect();

		assert_true(fd >= 0);
		a.n_argv = 1;
		a.argv = argv;
		a.cpu = -1;
		a.n_fds = 1;
		a.fds = want;
		s.args = &a;
		m.seq = 3;
		m.body_case = DRAGON__MSG__BODY_SPAWN;
		m.spawn = &s;
		assert_int_equal(dg_wire_send(fd, &m, -1), DRAGON_OK);
		assert_int_equal(fx_reply_rc(fd, NULL), DRAGON_EINVAL);
		/* Descriptors sent with a request that does not take them are closed. */
		a.n_fds = 0;
		assert_int_equal(dg_wire_send(fd, &m, p[1]), DRAGON_OK);
		assert_int_equal(fx_reply_rc(fd, NULL), 0);
		assert_true(fx_hello_ok(fd));
		close(fd);
	}
	close(p[1]);
	{
		char buf[8];
		assert_int_equal(read_to_eof(p[0], buf, sizeof(buf)), 0);
	}
	close(p[0]);
}


/* ---- output to its creator (DRAGON_OUTPUT_TO_ME) ------------------------------------------ */

/* Raw: a Hello on fd (output set or not); the connection id from the reply, 0 if none came. */
static uint64_t raw_hello(int fd, int output)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *r = NULL;
	Dragon__Hello h = DRAGON__HELLO__INIT;
	uint64_t id = 0;

	h.pid = getpid();
	h.output = output;
	m.seq = 1;
	m.body_case = DRAGON__MSG__BODY_HELLO;
	m.hello = &h;
	if (dg_wire_send(fd, &m, -1) || dg_wire_recv(fd, &r, NULL, 5000))
		return 0;
	if (r->body_case == DRAGON__MSG__BODY_HELLO_REPLY)
		id = r->hello_reply->conn;
	dg_msg_free(r);
	return id;
}

/* Raw: spawn argv with output mode `mode` into output_conn; its rc, *puid on success. */
static int raw_spawn(int fd, const char *const *argv, int mode, uint64_t output_conn,
		     uint64_t *puid)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *r = NULL;
	Dragon__Spawn s = DRAGON__SPAWN__INIT;
	Dragon__SpawnArgs a = DRAGON__SPAWN_ARGS__INIT;
	int rc;

	while (argv[a.n_argv])
		a.n_argv++;
	a.argv = (char **)argv;
	a.cpu = -1;
	a.outlive = 1;
	a.output = (Dragon__OutputMode)mode;
	a.output_conn = output_conn;
	s.args = &a;
	m.seq = 2;
	m.body_case = DRAGON__MSG__BODY_SPAWN;
	m.spawn = &s;
	if (dg_wire_send(fd, &m, -1) || dg_wire_recv(fd, &r, NULL, 5000))
		return -1;
	rc = r->body_case == DRAGON__MSG__BODY_ERROR ? r->error->rc : 0;
	if (!rc && r->body_case == DRAGON__MSG__BODY_SPAWN_REPLY)
		*puid = r->spawn_reply->puid;
	dg_msg_free(r);
	return rc;
}

static void output_to_me_arrives_by_lines_on_the_output_connection(void **state)
{
	const char *argv[] = {"sh", "-c", "echo out1; echo err1 >&2; echo out2; printf partial",
			      NULL};
	dragon_process_opts_t o = DRAGON_PROCESS_OPTS_INIT;
	dragon_output_t line;
	dragon_puid_t puid;
	char out[64] = "", err[64] = "";
	int st = -1;

	(void)state;
	o.output = DRAGON_OUTPUT_TO_ME;
	assert_int_equal(dragon_process_create(argv, &o, &puid), DRAGON_OK);
	assert_int_equal(dragon_process_wait(puid, 5000, &st), DRAGON_OK);
	assert_int_equal(st, 0);
	/* Four records, each a whole line (the last one without its newline), by stream. */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(dragon_output_recv(&line, 5000), DRAGON_OK);
		assert_int_equal(line.puid, puid);
		assert_int_equal(line.rank, -1);
		assert_true(line.host[0]);
		assert_true(line.stream == 1 || line.stream == 2);
		strncat(line.stream == 1 ? out : err, line.data, line.len);
		strcat(line.stream == 1 ? out : err, "|");
		free(line.data);
	}
	assert_string_equal(out, "out1\n|out2\n|partial|");
	assert_string_equal(err, "err1\n|");
	assert_int_equal(dragon_output_recv(&line, 0), DRAGON_ETIMEDOUT);
	/* Output modes are checked. */
	o.output = 5;
	assert_int_equal(dragon_process_create(argv, &o, &puid), DRAGON_EINVAL);
}

static struct {
	pthread_mutex_t lock;
	int lines, end;
} rd = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *reader(void *arg)
{
	dragon_output_t line;
	int rc;

	(void)arg;
	while ((rc = dragon_output_recv(&line, 10000)) == DRAGON_OK) {
		pthread_mutex_lock(&rd.lock);
		rd.lines++;
		pthread_mutex_unlock(&rd.lock);
		free(line.data);
	}
	pthread_mutex_lock(&rd.lock);
	rd.end = rc;
	pthread_mutex_unlock(&rd.lock);
	return NULL;
}

static void flush_returns_once_the_reader_has_every_line(void **state)
{
	const char *argv[] = {"sh", "-c", "i=0; while [ $i -lt 500 ]; do echo line $i; i=$((i+1)); "
					  "done", NULL};
	dragon_process_opts_t o = DRAGON_PROCESS_OPTS_INIT;
	dragon_puid_t puid;
	pthread_t t;
	int st = -1;

	(void)state;
	o.output = DRAGON_OUTPUT_TO_ME;
	assert_int_equal(dragon_process_create(argv, &o, &puid), DRAGON_OK);
	assert_int_equal(dragon_process_wait(puid, 10000, &st), DRAGON_OK);
	/* Nobody reads yet: a flush cannot complete. */
	assert_int_equal(dragon_output_flush(50), DRAGON_ETIMEDOUT);
	assert_int_equal(pthread_create(&t, NULL, reader, NULL), 0);
	assert_int_equal(dragon_output_flush(10000), DRAGON_OK);
	pthread_mutex_lock(&rd.lock);
	assert_int_equal(rd.lines, 500);
	pthread_mutex_unlock(&rd.lock);
	/* A second reader is refused while the first waits. */
	{
		dragon_output_t line;
		int rc;
		for (int i = 0; i < 500 && (rc = dragon_output_recv(&line, 0)) != DRAGON_EINVAL; i++) {
			if (rc == DRAGON_OK)
				free(line.data);
			usleep(1000); /* until the reader is back in its wait */
		}
		assert_int_equal(dragon_output_recv(&line, 0), DRAGON_EINVAL);
	}
	/* dragon_finalize ends the reader's wait; join again for the tests after this one. */
	assert_int_equal(dragon_finalize(), DRAGON_OK);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(rd.end, DRAGON_EPEER);
	assert_int_equal(dragon_init(), DRAGON_OK);
}

static void bad_output_connections_get_errors(void **state)
{
	const char *argv[] = {"true", NULL};
	int a = fx_connect(), b = fx_connect();
	uint64_t plain, puid = 0;

	(void)state;
	assert_true(a >= 0 && b >= 0);
	plain = raw_hello(b, 0);
	assert_true(plain != 0);
	/* Not an output connection; none at all; an output_conn with another mode. */
	assert_int_equal(raw_spawn(a, argv, DRAGON__OUTPUT_MODE__OUTPUT_TO_ME, plain, &puid),
			 DRAGON_EINVAL);
	assert_int_equal(raw_spawn(a, argv, DRAGON__OUTPUT_MODE__OUTPUT_TO_ME, 12345, &puid),
			 DRAGON_EINVAL);
	assert_int_equal(raw_hello(b, 1), plain);
	assert_int_equal(raw_spawn(a, argv, DRAGON__OUTPUT_MODE__OUTPUT_INHERIT, plain, &puid),
			 DRAGON_EINVAL);
	assert_int_equal(raw_spawn(a, argv, DRAGON__OUTPUT_MODE__OUTPUT_TO_ME, plain, &puid),
			 DRAGON_OK);
	assert_true(fx_hello_ok(a));
	close(a);
	close(b);
}

/* Wait for puid on a connection of its own (its creator's may be gone). */
static int raw_wait(dragon_puid_t puid)
{
	int st = -1, rc = dragon_process_wait(puid, 20000, &st);

	return rc ? -1 : st;
}

static void a_reader_that_falls_behind_loses_lines_and_is_told(void **state)
{
	/* 32 MiB of 64-byte lines, far beyond what local services queue for a reader (4 MiB). */
	const char *argv[] = {"sh", "-c", "yes 012345678901234567890123456789012345678901234567890123"
					  "45678 | head -n 524288", NULL};
	int oc = fx_connect(), rq = fx_connect();
	uint64_t id, puid = 0;
	size_t lines = 0;
	int note = 0;

	(void)state;
	assert_true(oc >= 0 && rq >= 0);
	id = raw_hello(oc, 1);
	assert_true(id != 0);
	assert_int_equal(raw_spawn(rq, argv, DRAGON__OUTPUT_MODE__OUTPUT_TO_ME, id, &puid),
			 DRAGON_OK);
	/* Nobody reads: local services go on (the process ends, they answer). */
	assert_int_equal(raw_wait(puid), 0);
	assert_true(fx_hello_ok(rq));
	/* Then read it all: fewer lines than were printed, and a note of local services last. */
	for (;;) {
		Dragon__Msg *m = NULL;
		if (dg_wire_recv(oc, &m, NULL, 10000))
			break;
		assert_int_equal(m->body_case, DRAGON__MSG__BODY_OUTPUT);
		if (m->output->puid == 0) {
			assert_int_equal(m->output->stream, 2);
			assert_non_null(memmem(m->output->data.data, m->output->data.len,
					       "lines of output were dropped", 28));
			note = 1;
			dg_msg_free(m);
			break;
		}
		assert_int_equal(m->output->data.len, 60);
		lines++;
		dg_msg_free(m);
	}
	assert_true(note);
	assert_true(lines > 1000 && lines < 524288);
	close(oc);
	close(rq);
}

static void output_of_a_creator_that_left_is_discarded(void **state)
{
	const char *argv[] = {"sh", "-c", "sleep 0.3; i=0; while [ $i -lt 2000 ]; do "
					  "echo late $i; i=$((i+1)); done", NULL};
	int oc = fx_connect(), rq = fx_connect();
	uint64_t id, puid = 0;

	(void)state;
	assert_true(oc >= 0 && rq >= 0);
	id = raw_hello(oc, 1);
	assert_int_equal(raw_spawn(rq, argv, DRAGON__OUTPUT_MODE__OUTPUT_TO_ME, id, &puid),
			 DRAGON_OK);
	close(oc);
	close(rq);
	/* It outlives its creator; what it prints goes nowhere; local services carry on. */
	assert_int_equal(raw_wait(puid), 0);
	{
		int c = fx_connect();
		assert_true(c >= 0 && fx_hello_ok(c));
		close(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(garbage_gets_an_error_and_the_connection_lives),
		cmocka_unit_test(wrong_version_no_body_unknown_body_are_refused),
		cmocka_unit_test(a_reply_sent_as_a_request_is_refused),
		cmocka_unit_test(oversized_frame_closes_only_that_connection),
		cmocka_unit_test(truncated_frame_then_hangup_does_not_disturb_others),
		cmocka_unit_test(random_frames_never_kill_local_services),
		cmocka_unit_test(bad_spawn_requests_get_errors),
		cmocka_unit_test(descriptors_reach_a_new_process_at_their_numbers),
		cmocka_unit_test(descriptors_stay_with_local_services),
		cmocka_unit_test(bad_descriptor_requests_get_errors),
		cmocka_unit_test(processes_start_end_and_report_status),
		cmocka_unit_test(list_shows_running_processes),
		cmocka_unit_test(cpu_binding_stays_inside_the_allowed_set),
		cmocka_unit_test(a_client_that_leaves_takes_its_processes_along),
		cmocka_unit_test(pools_are_memfds_handed_over_the_socket),
		cmocka_unit_test(channels_of_local_services_are_made_checked_and_destroyed),
		cmocka_unit_test(output_to_me_arrives_by_lines_on_the_output_connection),
		cmocka_unit_test(flush_returns_once_the_reader_has_every_line),
		cmocka_unit_test(bad_output_connections_get_errors),
		cmocka_unit_test(a_reader_that_falls_behind_loses_lines_and_is_told),
		cmocka_unit_test(output_of_a_creator_that_left_is_discarded),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
