/* tests/unit/test_pool_attach.c: attaching pools through real local services under stress: forked clients, many threads, detach and reattach, descriptors of another pool or layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include <dragon/dragon.h>
#include "core/err.h"
#include "core/pool_internal.h"
#include "test_ls_fixture.h"
#include "client/client.h"

/* Every forked worker and every wait of this file is bounded: a hang is a failure, not a stall. */
#define DEADLINE_S 120
#define NPOOLS 4

static uint64_t pool_id[NPOOLS];
static ino_t pool_ino[NPOOLS];

static int setup(void **state)
{
	(void)state;
	if (fx_start())
		return -1;
	if (dragon_init() != DRAGON_OK) {
		fprintf(stderr, "setup: dragon_init: %s\n", dragon_errmsg());
		fx_stop();
		return -1;
	}
	/* Pools of local services, each a memfd of its own: a descriptor handed over for one of
	 * them must be that memfd (its inode), whoever else asks at the same time. */
	for (int i = 0; i < NPOOLS; i++) {
		struct stat st;
		int fd;
		if (dg_client_pool_create(NULL, 1 << 20, 1, &pool_id[i], &fd) || fstat(fd, &st)) {
			fprintf(stderr, "setup: pool %d of local services: %s\n", i, dragon_errmsg());
			dragon_finalize();
			fx_stop();
			return -1;
		}
		pool_ino[i] = st.st_ino;
		close(fd);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	dragon_finalize();
	fx_stop();
	return 0;
}

/* Wait for a child with a bound; kill it (and fail) if it overstays. Returns its exit code. */
static int wait_child(pid_t pid, int seconds)
{
	struct timespec end, now, nap = {0, 5 * 1000 * 1000};
	int st;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += seconds;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (r < 0 || now.tv_sec > end.tv_sec) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			print_error("child %d did not finish in %d s (a hang)\n", (int)pid, seconds);
			return 255;
		}
		nanosleep(&nap, NULL);
	}
}

/* n attaches of pool k through local services; returns how many went wrong. */
static int attach_loop(int k, int n)
{
	int bad = 0;

	for (int i = 0; i < n; i++) {
		struct stat st;
		uint64_t size;
		int fd = -1;
		if (dg_client_pool_attach(pool_id[k], &fd, &size) != DRAGON_OK) {
			if (bad++ < 3)
				fprintf(stderr, "pid %d: attach of pool %d: %s\n", (int)getpid(), k,
					dragon_errmsg());
			continue;
		}
		if (fstat(fd, &st) || st.st_ino != pool_ino[k]) {
			if (bad++ < 3)
				fprintf(stderr, "pid %d: asked for pool %d, got another descriptor\n",
					(int)getpid(), k);
		}
		close(fd);
	}
	return bad;
}

/*
 * A process that forks after dragon_init: parent and children ask for different pools at the same
 * time. Sharing the parent's connections, they would read each other's replies (and descriptors)
 * or wait for ever for a reply another process took.
 */
static void forked_clients_get_their_own_descriptors(void **state)
{
	pid_t kids[3];

	(void)state;
	for (int i = 0; i < 3; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			alarm(DEADLINE_S);
			/* the first child joins anew (as Python's dragon package does after a fork);
			 * the others go on with what they inherited */
			if (i == 0 && dragon_init() != DRAGON_OK)
				_exit(2);
			_exit(attach_loop(i + 1, 400) ? 1 : 0);
		}
	}
	alarm(DEADLINE_S); /* a hang here kills the test (SIGALRM): it fails, never stalls */
	assert_int_equal(attach_loop(0, 400), 0);
	alarm(0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wait_child(kids[i], DEADLINE_S), 0);
}

/* A forked child's hello names the child: it is not the parent (and gets no puid of its own here). */
static void a_forked_child_that_joins_anew_is_itself(void **state)
{
	pid_t kid;

	(void)state;
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		alarm(DEADLINE_S);
		if (dragon_init() != DRAGON_OK)
			_exit(2);
		/* one finalize ends the child's membership: its refs started anew */
		if (dragon_finalize() != DRAGON_OK)
			_exit(3);
		_exit(dragon_finalize() == DRAGON_ENOTINIT ? 0 : 4);
	}
	assert_int_equal(wait_child(kid, DEADLINE_S), 0);
}

struct hammer {
	dragon_channel_desc_t desc;
	int iters, failures;
	char why[256];
};

/*
 * Each thread attaches the channel (so the node's pool, the first attach in the process through
 * local services), sends and receives on it, and detaches; threads overlap, so the pool is
 * mapped, shared, unmapped (its descriptor closed) and mapped again many times over, and two
 * threads often map it at once.
 */
static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;

	for (int i = 0; i < h->iters; i++) {
		dragon_channel_t *ch = NULL;
		dragon_wait_t w = {.timeout_us = 30 * 1000000L};
		char buf[8];
		size_t got = 0;
		int rc = dragon_channel_attach(&h->desc, &ch);
		if (rc == DRAGON_OK) {
			rc = dragon_channel_send(ch, "ping", 4, &w);
			if (rc == DRAGON_OK)
				rc = dragon_channel_recv(ch, buf, sizeof(buf), &got, &w);
			dragon_channel_detach(ch);
		}
		if (rc != DRAGON_OK && !h->failures++)
			snprintf(h->why, sizeof(h->why), "%s", dragon_errmsg());
	}
	return NULL;
}

static int hammer_process(const dragon_channel_desc_t *desc, int nthreads, int iters)
{
	pthread_t t[8];
	struct hammer h[8];
	int bad = 0;

	for (int i = 0; i < nthreads; i++) {
		h[i] = (struct hammer){.desc = *desc, .iters = iters};
		pthread_create(&t[i], NULL, hammer_thread, &h[i]);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		if (h[i].failures) {
			fprintf(stderr, "pid %d thread %d: %d failures, first: %s\n", (int)getpid(), i,
				h[i].failures, h[i].why);
			bad++;
		}
	}
	return bad;
}

static void many_processes_and_threads_attach_and_detach_the_node_pool(void **state)
{
	dragon_channel_attr_t attr = {.capacity = 64};
	dragon_channel_t *ch;
	dragon_channel_desc_t desc;
	pid_t kids[4];

	(void)state;
	/* a channel of local services: it lives in the node's pool, which LS holds */
	assert_int_equal(dragon_fchannel_create(NULL, &attr, 0, &ch), DRAGON_OK);
	assert_int_equal(dragon_channel_serialize(ch, &desc), DRAGON_OK);
	/* our own handle is dropped: the pool is mapped and unmapped by the threads below */
	assert_int_equal(dragon_channel_detach(ch), DRAGON_OK);
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			alarm(DEADLINE_S);
			if (i % 2 == 0 && dragon_init() != DRAGON_OK)
				_exit(2);
			_exit(hammer_process(&desc, 4, 60) ? 1 : 0);
		}
	}
	alarm(DEADLINE_S);
	assert_int_equal(hammer_process(&desc, 4, 60), 0);
	alarm(0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(wait_child(kids[i], DEADLINE_S), 0);
	assert_int_equal(dragon_channel_attach(&desc, &ch), DRAGON_OK);
	assert_int_equal(dragon_fchannel_destroy(ch), DRAGON_OK);
}

/* Links of a process's descriptors (/proc/PID/fd), one per line, into buf. */
static void fd_links(pid_t pid, char *buf, size_t cap)
{
	char path[64], link[256];
	struct dirent *e;
	DIR *d;
	size_t used = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	buf[0] = 0;
	if (!(d = opendir(path)))
		return;
	while ((e = readdir(d))) {
		char p2[320];
		ssize_t n;
		if (e->d_name[0] == '.')
			continue;
		snprintf(p2, sizeof(p2), "%s/%s", path, e->d_name);
		n = readlink(p2, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		used += (size_t)snprintf(buf + used, used < cap ? cap - used : 0, "%s\n", link);
	}
	closedir(d);
}

/*
 * What local services start inherits none of their descriptors: not the node's pool (a process
 * holding it without knowing keeps it alive and can be handed a stale number), not the sockets
 * of other clients.
 */
static void started_processes_inherit_no_descriptor_of_local_services(void **state)
{
	dragon_channel_attr_t attr = {.capacity = 4};
	dragon_channel_t *ch;
	char out[128], cmd[256], ls_fds[8192], line[512];
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	dragon_puid_t puid;
	int status = -1, found = 0;
	FILE *f;

	(void)state;
	assert_int_equal(dragon_fchannel_create(NULL, &attr, 0, &ch), DRAGON_OK); /* the node pool */
	snprintf(out, sizeof(out), "%s/fds.txt", fx_dir);
	snprintf(cmd, sizeof(cmd), "for f in /proc/$$/fd/*; do readlink $f; done > %s; exit 0", out);
	assert_int_equal(dragon_process_create(argv, NULL, &puid), DRAGON_OK);
	assert_int_equal(dragon_process_wait(puid, 60000, &status), DRAGON_OK);
	assert_int_equal(status, 0);
	fd_links(fx_ls_pid, ls_fds, sizeof(ls_fds));
	assert_non_null(strstr(ls_fds, "memfd:dragon-pool")); /* LS does hold it */
	f = fopen(out, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		/* ours (the test's own descriptors) may pass through LS; LS's sockets and pools not */
		if (strstr(line, "memfd:dragon-pool") ||
		    (!strncmp(line, "socket:", 7) && strstr(ls_fds, line))) {
			print_error("the started process holds %s of local services\n", line);
			found++;
		}
	}
	fclose(f);
	unlink(out);
	assert_int_equal(found, 0);
	assert_int_equal(dragon_fchannel_destroy(ch), DRAGON_OK);
}

/*
 * A descriptor whose creator's fd number now holds another pool (a reused number): attaching it
 * says which pool the number holds instead, in a process that has neither attached.
 */
static void a_reused_descriptor_number_names_the_pool_it_holds(void **state)
{
	dragon_pool_attr_t pa = {.size = 1 << 20};
	dragon_pool_t *p;
	struct dg_desc d;
	dragon_pool_desc_t desc;
	pid_t kid;

	(void)state;
	assert_int_equal(dragon_pool_create(&pa, &p), DRAGON_OK);
	dg_pool_fill_desc(p, &d);
	d.kind = DG_DESC_POOL;
	d.pool_id ^= 0x5a5a; /* another pool, same pid and fd number */
	dg_desc_pack(&d, desc.bytes);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		dragon_pool_t *q;
		int rc;
		alarm(DEADLINE_S);
		dragon_pool_detach(p); /* the child starts without the pool */
		rc = dragon_pool_attach(&desc, &q);
		if (rc != DRAGON_ESTALE || !strstr(dragon_errmsg(), "not the pool")) {
			fprintf(stderr, "got %d: %s\n", rc, dragon_errmsg());
			_exit(1);
		}
		_exit(0);
	}
	assert_int_equal(wait_child(kid, DEADLINE_S), 0);
	assert_int_equal(dragon_pool_destroy(p), DRAGON_OK);
}

/* A pool of another layout version (another build of Dragon made it) is named as such. */
static void a_pool_of_another_layout_says_so(void **state)
{
	dragon_pool_attr_t pa = {.size = 1 << 20};
	dragon_pool_t *p, *q = NULL;
	uint32_t *version;
	void *hdr;

	(void)state;
	assert_int_equal(dragon_pool_create(&pa, &p), DRAGON_OK);
	hdr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dragon_pool_fd(p), 0);
	assert_true(hdr != MAP_FAILED);
	version = (uint32_t *)((char *)hdr + 8); /* after the 8-byte magic */
	assert_int_equal(*version, dg_pool_layout());
	*version = dg_pool_layout() + 1;
	assert_int_equal(dragon_pool_attach_fd(dragon_pool_fd(p), &q), DRAGON_ENOTSUP);
	assert_null(q);
	assert_non_null(strstr(dragon_errmsg(), "another build of Dragon"));
	*version = dg_pool_layout();
	munmap(hdr, 4096);
	assert_int_equal(dragon_pool_destroy(p), DRAGON_OK);
}

/* A destroyed pool still held elsewhere: attaching its memfd says so (and touches nothing). */
static void a_destroyed_pool_says_so(void **state)
{
	dragon_pool_attr_t pa = {.size = 1 << 20};
	dragon_pool_t *p, *q = NULL;
	int held;

	(void)state;
	assert_int_equal(dragon_pool_create(&pa, &p), DRAGON_OK);
	held = dup(dragon_pool_fd(p));
	assert_true(held >= 0);
	assert_int_equal(dragon_pool_destroy(p), DRAGON_OK);
	assert_int_equal(dragon_pool_attach_fd(held, &q), DRAGON_ESTALE);
	assert_null(q);
	assert_non_null(strstr(dragon_errmsg(), "was destroyed"));
	close(held);
}

/*
 * Local services of another build (a fabric started by another build's launcher or Slurm plugin):
 * dragon_init refuses them, naming both layout versions, before any channel fails to map. The
 * peer is scripted (a real one of another build is not at hand): it answers a hello with a reply
 * of another layout.
 */
static void *scripted_services(void *arg)
{
	int lfd = *(int *)arg, fd;
	Dragon__Msg *req = NULL, m = DRAGON__MSG__INIT;
	Dragon__HelloReply r = DRAGON__HELLO_REPLY__INIT;

	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	if (dg_wire_recv(fd, &req, NULL, 30000) == DRAGON_OK) {
		r.fabric_id = "other-build";
		r.node_count = 1;
		r.pool_layout = dg_pool_layout() + 1;
		m.seq = req->seq;
		m.body_case = DRAGON__MSG__BODY_HELLO_REPLY;
		m.hello_reply = &r;
		dg_wire_send(fd, &m, -1);
		dg_msg_free(req);
	}
	close(fd);
	return NULL;
}

static void services_of_another_layout_are_refused_at_init(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	pthread_t t;
	pid_t kid;
	int lfd;

	(void)state;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/other.sock", fx_dir);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(pthread_create(&t, NULL, scripted_services, &lfd), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		alarm(DEADLINE_S);
		setenv("DRAGON_LS_SOCKET", sa.sun_path, 1);
		int rc = dragon_init();
		if (rc != DRAGON_ENOTSUP || !strstr(dragon_errmsg(), "layout version")) {
			fprintf(stderr, "got %d: %s\n", rc, dragon_errmsg());
			_exit(1);
		}
		_exit(0);
	}
	assert_int_equal(wait_child(kid, DEADLINE_S), 0);
	pthread_join(t, NULL);
	close(lfd);
	unlink(sa.sun_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(forked_clients_get_their_own_descriptors),
		cmocka_unit_test(a_forked_child_that_joins_anew_is_itself),
		cmocka_unit_test(many_processes_and_threads_attach_and_detach_the_node_pool),
		cmocka_unit_test(started_processes_inherit_no_descriptor_of_local_services),
		cmocka_unit_test(a_reused_descriptor_number_names_the_pool_it_holds),
		cmocka_unit_test(a_pool_of_another_layout_says_so),
		cmocka_unit_test(a_destroyed_pool_says_so),
		cmocka_unit_test(services_of_another_layout_are_refused_at_init),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
