/* spank/fabric.c: start the job's fabric step once per job and wait for a node's rendezvous (no Slurm calls, so it is unit-tested). */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dragon/error.h>
#include "fail.h"
#include "ls/ls.h"
#include "fabric.h"
#include "options.h"

#ifndef DRAGON_LIBEXECDIR
#define DRAGON_LIBEXECDIR "/usr/libexec/dragon"
#endif

/* How long an srun waits for another one of the job that is starting the fabric step (which
 * holds the lock only while it forks). */
#define LOCK_WAIT_MS 10000

/* Lock files of fabrics that are gone are removed after this long (their logs with them). */
#define STALE_SECONDS 3600


static bool has_prefix(const char *e, const char *p)
{
	return strncmp(e, p, strlen(p)) == 0;
}

bool dragon_fabric_env_keep(const char *e)
{
	/* Settings of the runtime itself that a user may give the fabric (see dragon.1). */
	static const char *const dragon_keep[] = {"DRAGON_DEBUG=",    "DRAGON_STARTUP_TIMEOUT=", "DRAGON_NODE_TIMEOUT=", "DRAGON_TA=",
						  "DRAGON_TA_",	      "DRAGON_LIBEXECDIR=",	 "DRAGON_LS_BIND=",
						  NULL};
	/* The job's, not a step's: srun reads SLURM_NTASKS, SLURM_CPU_BIND, SLURM_EXPORT_ENV, ... as
	 * options, and a step's values would shape the fabric step. */
	static const char *const slurm_keep[] = {
		"SLURM_CONF=",	       "SLURM_JOB_ID=",		"SLURM_JOBID=",	     "SLURM_JOB_NODELIST=",
		"SLURM_JOB_NUM_NODES=", "SLURM_JOB_CPUS_PER_NODE=", "SLURM_CLUSTER_NAME=", "SLURM_JOB_PARTITION=",
		"SLURM_JOB_ACCOUNT=",  "SLURM_JOB_QOS=",		"SLURM_JOB_UID=",    "SLURM_JOB_USER=",
		"SLURM_JOB_GID=",      "SLURM_SUBMIT_DIR=",	"SLURM_SUBMIT_HOST=", NULL};

	if (has_prefix(e, "DRAGON_")) {
		for (int i = 0; dragon_keep[i]; i++)
			if (has_prefix(e, dragon_keep[i]))
				return true;
		return false;
	}
	if (has_prefix(e, "SLURM_")) {
		for (int i = 0; slurm_keep[i]; i++)
			if (has_prefix(e, slurm_keep[i]))
				return true;
		return false;
	}
	return !has_prefix(e, "_SLURM_SPANK_") && !has_prefix(e, "SPANK_") && !has_prefix(e, "PMIX_") &&
	       !has_prefix(e, "PMI_") && !has_prefix(e, "OMPI_");
}

static bool env_has(char *const *env, const char *name)
{
	size_t n = strlen(name);

	for (; env && *env; env++)
		if (!strncmp(*env, name, n) && (*env)[n] == '=')
			return true;
	return false;
}

int dragon_fabric_start(const struct dragon_fabric_launch *l, pid_t *pid, char *err, size_t errlen)
{
	char nodes[16], jobid[16], fid[32], tmo[48], prov[96], ntmo[48];
	char *argv[] = {"srun",	       "--overlap",	  "--mpi=pmix",		    "--jobid",
			jobid,	       "-N",		  nodes,		    "--ntasks-per-node=1",
			"--kill-on-bad-exit=0", "--no-kill", "--job-name=dragon-fabric", "--quiet", (char *)l->ls,
			"--dir",       (char *)l->rundir, "--fabric-id",	    fid,
			"--boot",      "pmix",		  NULL};
	size_t n = 0;
	char **envp;
	int pfd[2], devnull;
	pid_t child, got = -1;
	ssize_t r;

	snprintf(nodes, sizeof(nodes), "%u", l->nnodes);
	snprintf(jobid, sizeof(jobid), "%u", l->jobid);
	snprintf(fid, sizeof(fid), "job%u", l->jobid);
	snprintf(tmo, sizeof(tmo), "DRAGON_STARTUP_TIMEOUT=%u", l->startup_timeout ? l->startup_timeout : 30);
	snprintf(prov, sizeof(prov), "DRAGON_TA_PROVIDER=%s", l->transport ? l->transport : "");
	memcpy(ntmo, "DRAGON_NODE_TIMEOUT=", 21);
	dragon_spank_format_seconds(l->node_timeout_ms, ntmo + 20, sizeof(ntmo) - 20);
	for (char *const *e = l->env; e && *e; e++)
		n++;
	/* Everything is built before fork: the caller (srun) may have threads, so the children only
	 * make async-signal-safe calls. */
	if (!(envp = calloc(n + 5, sizeof(*envp))))
		return dragon_spank_fail(DRAGON_ENOMEM, err, errlen, "out of memory");
	n = 0;
	for (char *const *e = l->env; e && *e; e++)
		if (dragon_fabric_env_keep(*e) && !(l->node_timeout_ms && has_prefix(*e, "DRAGON_NODE_TIMEOUT=")))
			envp[n++] = *e;
	envp[n++] = DRAGON_FABRIC_STEP_ENV "=1";
	/* The job's node_timeout (plugstack.conf, DRAGON_NODE_TIMEOUT, --dragon), already resolved. */
	if (l->node_timeout_ms)
		envp[n++] = ntmo;
	if (!env_has(l->env, "DRAGON_STARTUP_TIMEOUT"))
		envp[n++] = tmo;
	if (l->transport && *l->transport && !env_has(l->env, "DRAGON_TA_PROVIDER"))
		envp[n++] = prov;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0) {
		free(envp);
		return dragon_spank_fail(DRAGON_ESYS, err, errlen, "open /dev/null");
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		close(devnull);
		free(envp);
		return dragon_spank_fail(DRAGON_ESYS, err, errlen, "pipe");
	}
	child = fork();
	if (child < 0) {
		close(pfd[0]);
		close(pfd[1]);
		close(devnull);
		free(envp);
		return dragon_spank_fail(DRAGON_ESYS, err, errlen, "fork");
	}
	if (child == 0) {
		pid_t g;

		/* A session of its own: the user's Ctrl-C on srun, or the end of the batch
		 * script's process group, does not reach the fabric; the intermediate child
		 * exits, so init adopts the srun and nobody has to reap it. */
		setsid();
		g = fork();
		if (g == 0) {
			struct sigaction dfl = {.sa_handler = SIG_DFL};
			sigset_t none;

			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(l->errfd >= 0 ? l->errfd : devnull, 2);
			/* Nothing of srun's or slurmstepd's descriptors goes on. */
			if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
				for (int fd = 3; fd < 4096; fd++)
					close(fd);
			for (int s = 1; s < NSIG; s++)
				if (s != SIGKILL && s != SIGSTOP)
					sigaction(s, &dfl, NULL);
			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);
			execve(l->srun, argv, envp);
			_exit(127);
		}
		if (write(pfd[1], &g, sizeof(g)) != sizeof(g))
			_exit(2);
		_exit(g < 0 ? 1 : 0);
	}
	close(pfd[1]);
	close(devnull);
	free(envp);
	do
		r = read(pfd[0], &got, sizeof(got));
	while (r < 0 && errno == EINTR);
	close(pfd[0]);
	/* srun may reap children itself: ECHILD is fine, the pipe told us what we need. */
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	if (r != sizeof(got) || got <= 0) {
		errno = EAGAIN;
		return dragon_spank_fail(DRAGON_ESYS, err, errlen, "cannot start %s for the fabric step", l->srun);
	}
	*pid = got;
	return DRAGON_OK;
}

/* The start time of a process (clock ticks since boot), 0 if there is no such process: with the
 * pid it names one process, not a later one that reuses the pid. */
static unsigned long long proc_start(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long t = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* The command name may hold spaces and parentheses: fields count from the last ')'. */
	if (!(p = strrchr(buf, ')')))
		return 0;
	/* Field 3 (state) follows ") "; the start time is field 22. A zombie has ended (its
	 * parent, init once the fabric srun was orphaned, may be slow or never reap it). */
	p += 2;
	if (*p == 'Z' || *p == 'X')
		return 0;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (p)
		t = strtoull(p, NULL, 10);
	return t;
}

/* Read "pid start" of a lock file (fd at any offset); false if empty or malformed. */
static bool read_owner(int fd, pid_t *pid, unsigned long long *start)
{
	char buf[64];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	int p;

	if (n <= 0)
		return false;
	buf[n] = 0;
	if (sscanf(buf, "%d %llu", &p, start) != 2 || p <= 0)
		return false;
	*pid = p;
	return true;
}

static bool owner_alive(pid_t pid, unsigned long long start)
{
	return start && proc_start(pid) == start;
}

/* Remove lock files (and logs) of other jobs whose fabric srun is gone and that are old: they
 * would otherwise pile up in the directory. Only under the file's own lock, so a starting srun of
 * that job is never confused (it re-checks the inode it locked). */
static void prune(const char *statedir, uint32_t jobid)
{
	DIR *d = opendir(statedir);
	struct dirent *e;
	time_t now = time(NULL);

	if (!d)
		return;
	while ((e = readdir(d))) {
		unsigned job;
		char tail[8], name[64];
		struct stat st;
		pid_t pid;
		unsigned long long start;
		int fd;

		if (sscanf(e->d_name, "job%u.%7s", &job, tail) != 2 || strcmp(tail, "lock") || job == jobid)
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!flock(fd, LOCK_EX | LOCK_NB) && !fstat(fd, &st) && now - st.st_mtime > STALE_SECONDS &&
		    !(read_owner(fd, &pid, &start) && owner_alive(pid, start))) {
			unlinkat(dirfd(d), e->d_name, 0);
			snprintf(name, sizeof(name), "job%u.log", job);
			unlinkat(dirfd(d), name, 0);
		}
		close(fd);
	}
	closedir(d);
}

int dragon_fabric_once(const struct dragon_fabric_launch *l, const char *statedir, bool *started, pid_t *pid,
		       char *err, size_t errlen)
{
	char path[PATH_MAX], logpath[PATH_MAX], line[64];
	struct stat a, b;
	unsigned long long start;
	pid_t owner;
	int fd = -1, logfd, rv, n;

	*started = false;
	snprintf(path, sizeof(path), "%s/job%u.lock", statedir, l->jobid);
	snprintf(logpath, sizeof(logpath), "%s/job%u.log", statedir, l->jobid);
	/* The lock is held only while a fabric srun is forked, so this wait is short. A file that was
	 * removed (prune) between our open and our lock is not the lock any more: open again. */
	for (int tries = 0;; tries++) {
		fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return dragon_spank_fail(DRAGON_ESYS, err, errlen, "open %s", path);
		/* Bounded all the same: srun must not hang on a lock someone else keeps. */
		for (int waited = 0; (rv = flock(fd, LOCK_EX | LOCK_NB)) != 0 && waited < LOCK_WAIT_MS; waited += 10) {
			if (errno != EWOULDBLOCK && errno != EINTR)
				break;
			usleep(10000);
		}
		if (rv) {
			if (errno == EWOULDBLOCK)
				errno = ETIMEDOUT;
			rv = dragon_spank_fail(DRAGON_ESYS, err, errlen, "lock %s (held by another process for %d s)", path,
				  LOCK_WAIT_MS / 1000);
			close(fd);
			return rv;
		}
		if (!fstat(fd, &a) && !stat(path, &b) && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			break;
		close(fd);
		if (tries == 10) {
			errno = EAGAIN;
			return dragon_spank_fail(DRAGON_ESYS, err, errlen, "lock %s keeps being replaced", path);
		}
	}
	if (read_owner(fd, &owner, &start) && owner_alive(owner, start)) {
		*pid = owner;
		close(fd);
		return DRAGON_OK;
	}
	logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	{
		struct dragon_fabric_launch l2 = *l;

		l2.errfd = logfd;
		rv = dragon_fabric_start(&l2, pid, err, errlen);
	}
	if (logfd >= 0)
		close(logfd);
	if (rv == DRAGON_OK) {
		*started = true;
		n = snprintf(line, sizeof(line), "%d %llu\n", (int)*pid, proc_start(*pid));
		if (ftruncate(fd, 0) || pwrite(fd, line, (size_t)n, 0) != n)
			rv = dragon_spank_fail(DRAGON_ESYS, err, errlen, "write %s", path);
		prune(statedir, l->jobid);
	}
	close(fd);
	return rv;
}

int dragon_fabric_statedir(uid_t uid, const char *xdg_runtime_dir, char *out, size_t len, char *err, size_t errlen)
{
	struct stat st;
	int n = -1;

	/* $XDG_RUNTIME_DIR is per user and per host when it exists; a job's copy of it may name a
	 * directory of the submit host that this host lacks. */
	if (xdg_runtime_dir && xdg_runtime_dir[0] == '/' && !lstat(xdg_runtime_dir, &st) && S_ISDIR(st.st_mode) &&
	    st.st_uid == uid)
		n = snprintf(out, len, "%s/dragon-slurm", xdg_runtime_dir);
	else
		n = snprintf(out, len, "/tmp/dragon-slurm-%u", (unsigned)uid);
	if (n < 0 || (size_t)n >= len)
		return dragon_spank_fail(DRAGON_ETOOBIG, err, errlen, "state directory path is too long");
	if (mkdir(out, 0700) && errno != EEXIST)
		return dragon_spank_fail(DRAGON_ESYS, err, errlen, "mkdir %s", out);
	if (lstat(out, &st))
		return dragon_spank_fail(DRAGON_ESYS, err, errlen, "%s", out);
	if (!S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 077))
		return dragon_spank_fail(DRAGON_EPERM, err, errlen,
			    "%s must be a directory of uid %u closed to others (mode 0700); remove it", out,
			    (unsigned)uid);
	return DRAGON_OK;
}

static bool in_dir(const char *dir, const char *name, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s", dir, name);

	return n > 0 && (size_t)n < len && access(out, X_OK) == 0;
}

int dragon_fabric_find_ls(const char *envdir, const char *confdir, char *out, size_t len, char *err, size_t errlen)
{
	if (envdir && *envdir) {
		if (in_dir(envdir, "dragon-ls", out, len))
			return DRAGON_OK;
		return dragon_spank_fail(DRAGON_ENOTFOUND, err, errlen, "no executable dragon-ls in DRAGON_LIBEXECDIR=%s", envdir);
	}
	if (confdir && *confdir) {
		if (in_dir(confdir, "dragon-ls", out, len))
			return DRAGON_OK;
		return dragon_spank_fail(DRAGON_ENOTFOUND, err, errlen, "no executable dragon-ls in libexec_dir=%s (plugstack.conf)",
			    confdir);
	}
	if (in_dir(DRAGON_LIBEXECDIR, "dragon-ls", out, len))
		return DRAGON_OK;
	return dragon_spank_fail(DRAGON_ENOTFOUND, err, errlen,
		    "no executable dragon-ls in %s (set libexec_dir= in plugstack.conf to where it is installed)",
		    DRAGON_LIBEXECDIR);
}

int dragon_fabric_find_srun(const char *path, char *out, size_t len, char *err, size_t errlen)
{
	const char *p = path && *path ? path : "";

	while (*p) {
		size_t n = strcspn(p, ":");
		char dir[PATH_MAX];

		if (n && n < sizeof(dir) && p[0] == '/') {
			memcpy(dir, p, n);
			dir[n] = 0;
			if (in_dir(dir, "srun", out, len))
				return DRAGON_OK;
		}
		p += n;
		if (*p == ':')
			p++;
	}
	if (in_dir("/usr/bin", "srun", out, len) || in_dir("/usr/local/bin", "srun", out, len))
		return DRAGON_OK;
	return dragon_spank_fail(DRAGON_ENOTFOUND, err, errlen, "srun is not on the job's PATH (%s) nor in /usr/bin", path ? path : "");
}

/* rundir/ls.ready, well formed: DRAGON_OK if its writer lives, DRAGON_ESTALE (and its mtime in
 * *mtime_ns) if it died, DRAGON_ENOTFOUND if there is no such file. */
static int read_ready_file(const char *rundir, struct dragon_fabric_ready *r, long long *mtime_ns)
{
	char path[PATH_MAX], buf[256];
	struct stat st;
	ssize_t n;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/" LS_READY_NAME, rundir) >= sizeof(path))
		return DRAGON_ENOTFOUND;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return DRAGON_ENOTFOUND;
	n = read(fd, buf, sizeof(buf) - 1);
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		n = -1;
	close(fd);
	if (n <= 0)
		return DRAGON_ENOTFOUND;
	buf[n] = 0;
	if (sscanf(buf, "%63s %u %u %d", r->fabric_id, &r->node_index, &r->node_count, &r->pid) != 4 ||
	    r->node_index >= r->node_count || r->pid <= 0)
		return DRAGON_ENOTFOUND;
	/* A file left by local services that died is not a running fabric. */
	if (kill(r->pid, 0) != 0 && errno != EPERM) {
		if (mtime_ns)
			*mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
		return DRAGON_ESTALE;
	}
	return DRAGON_OK;
}

int dragon_fabric_read_ready(const char *rundir, struct dragon_fabric_ready *r)
{
	return read_ready_file(rundir, r, NULL) == DRAGON_OK ? DRAGON_OK : DRAGON_ENOTFOUND;
}

/* Append line (of n bytes) in front of out, separated by '|', if it fits. */
static bool prepend(char *out, size_t len, const char *line, size_t n)
{
	size_t have = strlen(out), sep = have ? 1 : 0;

	if (n + sep + have + 1 > len)
		return false;
	memmove(out + n + sep, out, have + 1);
	memcpy(out, line, n);
	if (sep)
		out[n] = '|';
	return true;
}

void dragon_fabric_log_tail(const char *dir, uint32_t jobid, char *out, size_t len)
{
	char path[PATH_MAX], buf[2048];
	bool whole;
	off_t size;
	ssize_t n;
	int fd;

	if (!len)
		return;
	out[0] = 0;
	snprintf(path, sizeof(path), "%s/job%u.log", dir, jobid);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	n = size > 0 ? pread(fd, buf, sizeof(buf) - 1, size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0)
		     : 0;
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	whole = size <= n;
	/* The runtime's own lines say more than srun's "task N: Exited with exit code 3": take the
	 * last of those that fit, newest last; srun's only when there are no others. */
	for (int pass = 0; pass < 2 && !out[0]; pass++) {
		char *end = buf + n;

		while (end > buf) {
			char *line = end;
			size_t ln;

			while (line > buf && line[-1] != '\n')
				line--;
			ln = (size_t)(end - line);
			while (ln && (line[ln - 1] == '\n' || line[ln - 1] == ' '))
				ln--;
			/* A first line cut by the read window is not shown. */
			if (ln && (whole || line != buf) && (pass == 1 || strncmp(line, "srun: ", 6))) {
				if (!prepend(out, len, line, ln)) {
					/* Too long to show whole: its end, rather than nothing. */
					if (!out[0])
						snprintf(out, len, "%.*s", (int)(len - 1), line + ln - (len - 1));
					break;
				}
			}
			end = line > buf ? line - 1 : buf;
		}
	}
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A report of local services (rundir/name) written at since_ns or later, as one printable line. */
static int read_report(const char *rundir, const char *name, long long since_ns, char *why, size_t len)
{
	char path[PATH_MAX];
	struct stat st;
	ssize_t n;
	int fd;

	if (!len || (size_t)snprintf(path, sizeof(path), "%s/%s", rundir, name) >= sizeof(path))
		return DRAGON_ENOTFOUND;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return DRAGON_ENOTFOUND;
	/* A previous fabric's report (written before this one started) says nothing of this one. */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec < since_ns) {
		close(fd);
		return DRAGON_ENOTFOUND;
	}
	n = read(fd, why, len - 1);
	close(fd);
	if (n <= 0)
		return DRAGON_ENOTFOUND;
	why[n] = 0;
	why[strcspn(why, "\n")] = 0;
	/* Shown in Slurm's log and on the user's terminal: printable characters only. */
	for (char *c = why; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return DRAGON_OK;
}

int dragon_fabric_read_failed(const char *rundir, long long since_ns, char *why, size_t len)
{
	return read_report(rundir, LS_FAILED_NAME, since_ns, why, len);
}

int dragon_fabric_read_left(const char *rundir, long long since_ns, char *why, size_t len)
{
	struct dragon_fabric_ready r;
	long long mtime = 0;

	if (!len || since_ns <= 0)
		return DRAGON_ENOTFOUND;
	if (read_report(rundir, LS_ENDED_NAME, since_ns, why, len) == DRAGON_OK)
		return DRAGON_OK;
	/* Local services killed outright (SIGKILL, the OOM killer) say nothing: their ls.ready
	 * stays, naming a process that is gone. */
	if (read_ready_file(rundir, &r, &mtime) != DRAGON_ESTALE || mtime < since_ns)
		return DRAGON_ENOTFOUND;
	if (r.node_index == 0)
		snprintf(why, len,
			 "node 0 (this node): the head node's local services (pid %d) died; the job's fabric "
			 "ended with them (global services live on the head node)",
			 r.pid);
	else
		snprintf(why, len,
			 "node %u (this node): its local services (pid %d) died; the fabric goes on "
			 "without this node",
			 r.node_index, r.pid);
	return DRAGON_OK;
}

long long dragon_fabric_since_ns(const char *statedir, uint32_t jobid)
{
	char path[PATH_MAX];
	unsigned long long start;
	struct timespec now;
	struct stat st;
	long long since;
	pid_t owner;
	int fd;

	clock_gettime(CLOCK_REALTIME, &now);
	since = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
	if (!statedir || !jobid)
		return since;
	snprintf(path, sizeof(path), "%s/job%u.lock", statedir, jobid);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return since;
	/* A running fabric step: its start, written into the lock file then. */
	if (read_owner(fd, &owner, &start) && owner_alive(owner, start) && !fstat(fd, &st))
		since = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	close(fd);
	return since;
}

int dragon_fabric_wait_ready(const char *rundir, unsigned timeout_ms, pid_t watch, long long since_ns,
			     struct dragon_fabric_ready *r, char *why, size_t whylen)
{
	long long end = now_ms() + timeout_ms;

	/* Polling a missing file costs one failed open: cheap, and no inotify descriptor to leak
	 * into the task. */
	for (;;) {
		if (dragon_fabric_read_ready(rundir, r) == DRAGON_OK)
			return DRAGON_OK;
		if (since_ns > 0 && dragon_fabric_read_failed(rundir, since_ns, why, whylen) == DRAGON_OK)
			return DRAGON_ECLOSED;
		if (since_ns > 0 && dragon_fabric_read_left(rundir, since_ns, why, whylen) == DRAGON_OK)
			return DRAGON_ESTALE;
		if (now_ms() >= end)
			return DRAGON_ETIMEDOUT;
		if (watch > 0 && kill(watch, 0) && errno == ESRCH)
			return DRAGON_EPEER;
		usleep(5000);
	}
}
