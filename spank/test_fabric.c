/* spank/test_fabric.c: unit tests of the fabric step's start-once lock, environment scrub and rendezvous wait (a fake srun). */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dragon/error.h>
#include "fabric.h"

static char dir[PATH_MAX];

static int make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s", "/tmp/test_fabric.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static void env_keeps_the_jobs_and_drops_the_steps(void **state)
{
	const char *keep[] = {"PATH=/bin", "HOME=/h", "SLURM_CONF=/etc/slurm.conf", "SLURM_JOB_ID=5",
			      "SLURM_JOB_NUM_NODES=3", "DRAGON_TA=off", "DRAGON_TA_PROVIDER=tcp", "DRAGON_DEBUG=1",
			      "DRAGON_LIBEXECDIR=/x", "DRAGON_STARTUP_TIMEOUT=9"};
	const char *drop[] = {"SLURM_NTASKS=6", "SLURM_STEP_ID=0", "SLURM_CPU_BIND=none", "SLURM_EXPORT_ENV=NONE",
			      "SLURM_SPANK__SLURM_SPANK_OPTION_dragon_dragon=(null)",
			      "_SLURM_SPANK_OPTION_dragon_dragon=", "SPANK_X=1", "PMIX_RANK=0",
			      "DRAGON_LS_SOCKET=/r/ls.sock", "DRAGON_FABRIC=job5", "DRAGON_FABRIC_STEP=1",
			      "DRAGON_SPANK_OPTIONS=x", "DRAGON_RUNTIME_DIR=/r"};

	(void)state;
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		assert_true(dragon_fabric_env_keep(keep[i]));
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		assert_false(dragon_fabric_env_keep(drop[i]));
}

static void ready_file_is_read_only_when_whole_and_alive(void **state)
{
	struct dragon_fabric_ready r;
	char path[PATH_MAX + 16], line[64];
	pid_t dead;

	(void)state;
	snprintf(path, sizeof(path), "%s/ls.ready", dir);
	unlink(path);
	assert_int_equal(dragon_fabric_read_ready(dir, &r), DRAGON_ENOTFOUND);
	snprintf(line, sizeof(line), "job5 1 3 %d\n", (int)getpid());
	write_file(path, line, 0600);
	assert_int_equal(dragon_fabric_read_ready(dir, &r), DRAGON_OK);
	assert_string_equal(r.fabric_id, "job5");
	assert_int_equal(r.node_index, 1);
	assert_int_equal(r.node_count, 3);
	write_file(path, "job5 3 3 1\n", 0600);
	assert_int_equal(dragon_fabric_read_ready(dir, &r), DRAGON_ENOTFOUND);
	write_file(path, "job5 1\n", 0600);
	assert_int_equal(dragon_fabric_read_ready(dir, &r), DRAGON_ENOTFOUND);
	/* Left behind by local services that died. */
	dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	snprintf(line, sizeof(line), "job5 0 3 %d\n", (int)dead);
	write_file(path, line, 0600);
	assert_int_equal(dragon_fabric_read_ready(dir, &r), DRAGON_ENOTFOUND);
	unlink(path);
}

static void wait_ready_is_bounded(void **state)
{
	struct dragon_fabric_ready r;
	struct timespec a, b;
	long ms;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(dragon_fabric_wait_ready(dir, 100, 0, 0, &r, NULL, 0), DRAGON_ETIMEDOUT);
	/* A fabric step that is gone ends the wait at once. */
	{
		pid_t gone = fork();
		if (gone == 0)
			_exit(0);
		waitpid(gone, NULL, 0);
		assert_int_equal(dragon_fabric_wait_ready(dir, 10000, gone, 0, &r, NULL, 0), DRAGON_EPEER);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms >= 100 && ms < 2000);
}

/* A start that failed (ls.failed) ends the wait at once with its reason; an older one is not ours. */
static void failure_report_ends_the_wait(void **state)
{
	char path[PATH_MAX + 16], why[256];
	struct dragon_fabric_ready r;
	struct timespec a, b;
	long long before, after;
	long ms;

	(void)state;
	snprintf(path, sizeof(path), "%s/ls.failed", dir);
	clock_gettime(CLOCK_REALTIME, &a);
	before = (long long)a.tv_sec * 1000000000LL + a.tv_nsec - 1000000000LL;
	write_file(path, "node 1 (n2): no provider \x1b[31m'X'\nsecond line\n", 0600);
	assert_int_equal(dragon_fabric_read_failed(dir, before, why, sizeof(why)), DRAGON_OK);
	/* one line, control characters shown as '?' (it goes to the user's terminal) */
	assert_string_equal(why, "node 1 (n2): no provider ?[31m'X'");
	after = before + 3600 * 1000000000LL;
	assert_int_equal(dragon_fabric_read_failed(dir, after, why, sizeof(why)), DRAGON_ENOTFOUND);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(dragon_fabric_wait_ready(dir, 10000, 0, before, &r, why, sizeof(why)), DRAGON_ECLOSED);
	assert_non_null(strstr(why, "no provider"));
	/* without a start time (a fabric started otherwise) the report is not looked at */
	assert_int_equal(dragon_fabric_wait_ready(dir, 100, 0, 0, &r, why, sizeof(why)), DRAGON_ETIMEDOUT);
	assert_int_equal(dragon_fabric_wait_ready(dir, 100, 0, after, &r, why, sizeof(why)), DRAGON_ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms < 2000);
	unlink(path);
}

static void statedir_is_private(void **state)
{
	char out[PATH_MAX], err[512] = "", want[PATH_MAX + 16];
	struct stat st;

	(void)state;
	assert_int_equal(dragon_fabric_statedir(getuid(), dir, out, sizeof(out), err, sizeof(err)), DRAGON_OK);
	snprintf(want, sizeof(want), "%s/dragon-slurm", dir);
	assert_string_equal(out, want);
	assert_int_equal(stat(out, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	chmod(out, 0755);
	assert_int_equal(dragon_fabric_statedir(getuid(), dir, out, sizeof(out), err, sizeof(err)), DRAGON_EPERM);
	assert_non_null(strstr(err, "closed to others"));
	chmod(out, 0700);
}

/*
 * A fake srun records its arguments and environment, then lives until killed. Each record is
 * written whole under a temporary name and renamed, and "done" appears last (after its stderr
 * line), so a reader that sees a file sees all of it, however slowly the script runs.
 */
static void fake_srun(char *srun, size_t len)
{
	char text[PATH_MAX * 4 + 256];

	snprintf(srun, len, "%s/srun", dir);
	snprintf(text, sizeof(text),
		 "#!/bin/sh\nd=%s\necho \"$@\" >$d/args.tmp && mv $d/args.tmp $d/args\n"
		 "env >$d/env.tmp && mv $d/env.tmp $d/env\necho started >&2\n: >$d/done\nexec sleep 30\n",
		 dir);
	write_file(srun, text, 0755);
}

/* Whether the fake srun's record `name` holds needle, once the fake srun has written all of them. */
static bool file_has(const char *name, const char *needle)
{
	char path[PATH_MAX + 16], buf[65536];
	size_t n;
	FILE *f;

	/* A condition, not a delay: the fake srun's last step, bounded generously for a loaded machine. */
	snprintf(path, sizeof(path), "%s/done", dir);
	for (int i = 0; i < 6000 && access(path, F_OK); i++)
		usleep(10000);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "r")))
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

static void once_starts_one_fabric_per_job(void **state)
{
	char srun[PATH_MAX + 16], err[512] = "";
	char *env[] = {"PATH=/usr/bin:/bin", "SLURM_NTASKS=6", "SLURM_CONF=/etc/x.conf", "DRAGON_FABRIC=job9",
		       "SLURM_SPANK__SLURM_SPANK_OPTION_dragon_dragon=(null)", "DRAGON_NODE_TIMEOUT=30", NULL};
	struct dragon_fabric_launch l = {.jobid = 42, .nnodes = 3, .ls = "/opt/dragon/dragon-ls", .rundir = "/r/0/42",
					 .env = env, .errfd = -1, .startup_timeout = 7, .transport = "tcp;ofi_rxm",
					 .node_timeout_ms = 2500};
	bool started = false;
	pid_t pid = 0, again = 0, third = 0;

	(void)state;
	/* The fabric srun is reparented to us (not init), so the test can reap it. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	fake_srun(srun, sizeof(srun));
	l.srun = srun;
	assert_int_equal(dragon_fabric_once(&l, dir, &started, &pid, err, sizeof(err)), DRAGON_OK);
	assert_true(started);
	assert_true(pid > 0);
	assert_true(file_has("args", "--overlap --mpi=pmix --jobid 42 -N 3 --ntasks-per-node=1 "
				      "--kill-on-bad-exit=0 --no-kill --job-name=dragon-fabric --quiet /opt/dragon/dragon-ls "
				      "--dir /r/0/42 --fabric-id job42 --boot pmix"));
	assert_true(file_has("env", "DRAGON_FABRIC_STEP=1\n"));
	assert_true(file_has("env", "DRAGON_STARTUP_TIMEOUT=7\n"));
	assert_true(file_has("env", "DRAGON_TA_PROVIDER=tcp;ofi_rxm\n"));
	/* The resolved node_timeout replaces the environment's (it already took that into account). */
	assert_true(file_has("env", "DRAGON_NODE_TIMEOUT=2.5\n"));
	assert_false(file_has("env", "DRAGON_NODE_TIMEOUT=30"));
	assert_true(file_has("env", "SLURM_CONF=/etc/x.conf\n"));
	assert_false(file_has("env", "SLURM_NTASKS"));
	assert_false(file_has("env", "SPANK"));
	assert_false(file_has("env", "DRAGON_FABRIC="));
	/* Its stderr goes to the job's log beside the lock. */
	assert_true(file_has("job42.log", "started"));
	/* A second srun of the job finds it running. */
	assert_int_equal(dragon_fabric_once(&l, dir, &started, &again, err, sizeof(err)), DRAGON_OK);
	assert_false(started);
	assert_int_equal(again, pid);
	/* Once it is gone, the next srun starts another. */
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(dragon_fabric_once(&l, dir, &started, &third, err, sizeof(err)), DRAGON_OK);
	assert_true(started);
	assert_true(third != pid);
	kill(third, SIGKILL);
	waitpid(third, NULL, 0);
}

static void log_tail_is_the_last_whole_lines(void **state)
{
	char path[PATH_MAX + 16], out[64], big[2048];

	(void)state;
	dragon_fabric_log_tail(dir, 77, out, sizeof(out));
	assert_string_equal(out, "");
	snprintf(path, sizeof(path), "%s/job77.log", dir);
	write_file(path, "dragon-ls: one\nsrun: task 0: Exited\ndragon-ls: two\nsrun: task 1: Exited\n\n", 0600);
	dragon_fabric_log_tail(dir, 77, out, sizeof(out));
	assert_string_equal(out, "dragon-ls: one|dragon-ls: two");
	/* srun's lines when there is nothing else. */
	write_file(path, "srun: error: a\nsrun: error: b\n", 0600);
	dragon_fabric_log_tail(dir, 77, out, sizeof(out));
	assert_string_equal(out, "srun: error: a|srun: error: b");
	/* The newest lines that fit; a line too long for the buffer shows its end. */
	write_file(path, "dragon-ls: 0123456789 0123456789 0123456789\ndragon-ls: 0123456789 0123456789 0123456789 x\n", 0600);
	dragon_fabric_log_tail(dir, 77, out, sizeof(out));
	assert_string_equal(out, "dragon-ls: 0123456789 0123456789 0123456789 x");
	dragon_fabric_log_tail(dir, 77, out, 11);
	assert_string_equal(out, "23456789 x");
	memset(big, 'x', sizeof(big));
	memcpy(big + sizeof(big) - 12, "\nlast line\n", 12);
	big[sizeof(big) - 1] = 0;
	write_file(path, big, 0600);
	dragon_fabric_log_tail(dir, 77, out, sizeof(out));
	assert_string_equal(out, "last line");
	unlink(path);
}

static void missing_programs_are_named(void **state)
{
	char out[PATH_MAX], err[512] = "";

	(void)state;
	assert_int_equal(dragon_fabric_find_ls("/nonexistent", "/opt", out, sizeof(out), err, sizeof(err)),
			 DRAGON_ENOTFOUND);
	assert_non_null(strstr(err, "DRAGON_LIBEXECDIR=/nonexistent"));
	assert_int_equal(dragon_fabric_find_ls(NULL, "/nonexistent", out, sizeof(out), err, sizeof(err)),
			 DRAGON_ENOTFOUND);
	assert_non_null(strstr(err, "libexec_dir=/nonexistent"));
	assert_int_equal(dragon_fabric_find_srun("/nonexistent:relative", out, sizeof(out), err, sizeof(err)) ==
				 DRAGON_OK,
			 access("/usr/bin/srun", X_OK) == 0 || access("/usr/local/bin/srun", X_OK) == 0);
}

/* A node that left the fabric (ls.ended, or an ls.ready whose writer died) ends the wait at once
 * with the reason; an older report or file, or no start time, is not looked at. */
static void left_node_ends_the_wait(void **state)
{
	char ended[PATH_MAX + 16], ready[PATH_MAX + 16], why[512], line[64];
	struct dragon_fabric_ready r;
	struct timespec a, b;
	long long before, after;
	pid_t dead;
	long ms;

	(void)state;
	snprintf(ended, sizeof(ended), "%s/ls.ended", dir);
	snprintf(ready, sizeof(ready), "%s/ls.ready", dir);
	clock_gettime(CLOCK_REALTIME, &a);
	before = (long long)a.tv_sec * 1000000000LL + a.tv_nsec - 1000000000LL;
	after = before + 3600 * 1000000000LL;
	write_file(ended, "node 2 (n3): this node lost the head node (the peer closed the link)\x07\n", 0600);
	assert_int_equal(dragon_fabric_read_left(dir, before, why, sizeof(why)), DRAGON_OK);
	assert_string_equal(why, "node 2 (n3): this node lost the head node (the peer closed the link)?");
	assert_int_equal(dragon_fabric_read_left(dir, after, why, sizeof(why)), DRAGON_ENOTFOUND);
	assert_int_equal(dragon_fabric_read_left(dir, 0, why, sizeof(why)), DRAGON_ENOTFOUND);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(dragon_fabric_wait_ready(dir, 10000, 0, before, &r, why, sizeof(why)), DRAGON_ESTALE);
	assert_non_null(strstr(why, "lost the head node"));
	assert_int_equal(dragon_fabric_wait_ready(dir, 100, 0, after, &r, why, sizeof(why)), DRAGON_ETIMEDOUT);
	unlink(ended);
	/* Local services killed outright: their ls.ready names a process that is gone. */
	dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	snprintf(line, sizeof(line), "job5 2 3 %d\n", (int)dead);
	write_file(ready, line, 0600);
	assert_int_equal(dragon_fabric_read_left(dir, before, why, sizeof(why)), DRAGON_OK);
	assert_non_null(strstr(why, "node 2 (this node): its local services"));
	assert_non_null(strstr(why, "died"));
	assert_int_equal(dragon_fabric_read_left(dir, after, why, sizeof(why)), DRAGON_ENOTFOUND);
	snprintf(line, sizeof(line), "job5 0 3 %d\n", (int)dead);
	write_file(ready, line, 0600);
	assert_int_equal(dragon_fabric_wait_ready(dir, 10000, 0, before, &r, why, sizeof(why)), DRAGON_ESTALE);
	assert_non_null(strstr(why, "head node"));
	/* Alive: ready, not left. */
	snprintf(line, sizeof(line), "job5 2 3 %d\n", (int)getpid());
	write_file(ready, line, 0600);
	assert_int_equal(dragon_fabric_read_left(dir, before, why, sizeof(why)), DRAGON_ENOTFOUND);
	assert_int_equal(dragon_fabric_wait_ready(dir, 10000, 0, before, &r, why, sizeof(why)), DRAGON_OK);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms < 2000);
	unlink(ready);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(env_keeps_the_jobs_and_drops_the_steps),
		cmocka_unit_test(ready_file_is_read_only_when_whole_and_alive),
		cmocka_unit_test(wait_ready_is_bounded),
		cmocka_unit_test(failure_report_ends_the_wait),
		cmocka_unit_test(left_node_ends_the_wait),
		cmocka_unit_test(statedir_is_private),
		cmocka_unit_test(once_starts_one_fabric_per_job),
		cmocka_unit_test(log_tail_is_the_last_whole_lines),
		cmocka_unit_test(missing_programs_are_named),
	};
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
