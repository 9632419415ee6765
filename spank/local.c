/* spank/local.c: the srun side (S_CTX_LOCAL) of the plugin: the first srun --dragon of a job starts its fabric step. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dragon/error.h>
#include "fabric.h"
#include "plugin.h"

/*
 * Tell the step's tasks since when a failure their node's local services report is this fabric's
 * (an older report is a previous fabric's and is ignored): they then fail at once with it instead
 * of waiting startup_timeout. Set here, before the step's environment is built (user_init is too
 * late for it); a fabric the job already has (batch script, or a --dragon task) passed its own on.
 */
static void set_since(void)
{
	const char *job = getenv("SLURM_JOB_ID"), *have = getenv(DRAGON_FABRIC_ENV);
	char statedir[PATH_MAX], err[256], want[32], v[32];
	uint32_t id = job ? (uint32_t)strtoul(job, NULL, 10) : 0;
	long long since;

	snprintf(want, sizeof(want), "job%u", id);
	if (id && have && !strcmp(have, want) && getenv(DRAGON_FABRIC_SINCE_ENV))
		return;
	if (!id || dragon_fabric_statedir(getuid(), getenv("XDG_RUNTIME_DIR"), statedir, sizeof(statedir),
					  err, sizeof(err)))
		since = dragon_fabric_since_ns(NULL, 0);
	else
		since = dragon_fabric_since_ns(statedir, id);
	snprintf(v, sizeof(v), "%lld", since);
	/* spank_setenv is for remote context only: srun's own environment is the step's. */
	if (setenv(DRAGON_FABRIC_SINCE_ENV, v, 1))
		slurm_verbose(DG_LOG "srun: cannot set %s", DRAGON_FABRIC_SINCE_ENV);
}

int dragon_local_init_post_opt(spank_t sp, struct dragon_spank *st)
{
	(void)sp;
	if (!st->opts.on)
		return 0;
	slurm_verbose(DG_LOG "srun: enabled (transport=%s, startup_timeout=%u)", st->opts.transport,
		      st->opts.startup_timeout);
	set_since();
	return 0;
}

/* The job's node count: the allocation's (salloc and sbatch export it), else this step's, which
 * covers the whole allocation when srun made it. */
static uint32_t job_nodes(spank_t sp, uint32_t job)
{
	const char *id = getenv("SLURM_JOB_ID"), *n = getenv("SLURM_JOB_NUM_NODES");
	uint32_t nn = 0;

	if (id && n && strtoul(id, NULL, 10) == job && strtoul(n, NULL, 10) > 0)
		return (uint32_t)strtoul(n, NULL, 10);
	if (spank_get_item(sp, S_JOB_NNODES, &nn) != ESPANK_SUCCESS)
		return 0;
	return nn;
}

/* Runs in srun as the user once the step exists, before its tasks start. Starts the fabric step
 * unless the job has one: the batch script or a --dragon task says so in DRAGON_FABRIC, and on this
 * host a lock file records the fabric srun of the job. It returns at once; the step's tasks wait
 * for their node's local services in task_init. */
int dragon_local_user_init(spank_t sp, struct dragon_spank *st)
{
	char want[32], rundir[PATH_MAX], srun[PATH_MAX], ls[PATH_MAX], statedir[PATH_MAX], err[512];
	const char *have = getenv(DRAGON_FABRIC_ENV);
	struct dragon_fabric_launch l = {.errfd = -1, .startup_timeout = st->opts.startup_timeout,
					 .transport = st->opts.transport,
					 .node_timeout_ms = st->opts.node_timeout_ms};
	extern char **environ;
	uint32_t job = 0;
	bool started;
	ssize_t n;
	pid_t pid;
	int len;

	/* The fabric srun itself, also with default=on. */
	if (getenv(DRAGON_FABRIC_STEP_ENV))
		return 0;
	if (!st->opts.on)
		return 0;
	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS) {
		slurm_error(DG_LOG "srun: cannot read the job id");
		return -1;
	}
	snprintf(want, sizeof(want), "job%u", job);
	if (have && !strcmp(have, want))
		return 0;
	l.jobid = job;
	l.nnodes = job_nodes(sp, job);
	len = snprintf(rundir, sizeof(rundir), "%s/%u/%u", st->opts.runtime_dir, (unsigned)getuid(), job);
	if (len < 0 || (size_t)len >= sizeof(rundir) || !l.nnodes) {
		slurm_error(DG_LOG "job %u: cannot tell the runtime directory or the node count", job);
		return -1;
	}
	l.rundir = rundir;
	/* The fabric step is started by the same srun program as this one. */
	n = readlink("/proc/self/exe", srun, sizeof(srun) - 1);
	if (n <= 0) {
		slurm_error(DG_LOG "job %u: cannot find the srun program: /proc/self/exe unreadable", job);
		return -1;
	}
	srun[n] = 0;
	l.srun = srun;
	if (dragon_fabric_find_ls(getenv("DRAGON_LIBEXECDIR"), st->opts.libexec_dir, ls, sizeof(ls), err,
				  sizeof(err)) ||
	    dragon_fabric_statedir(getuid(), getenv("XDG_RUNTIME_DIR"), statedir, sizeof(statedir), err,
				   sizeof(err))) {
		slurm_error(DG_LOG "job %u: cannot start the fabric step: %s", job, err);
		return -1;
	}
	l.ls = ls;
	l.env = environ;
	if (dragon_fabric_once(&l, statedir, &started, &pid, err, sizeof(err)) != DRAGON_OK) {
		slurm_error(DG_LOG "job %u: cannot start the fabric step: %s", job, err);
		return -1;
	}
	slurm_verbose(DG_LOG "job %u: fabric step srun pid %d (%s), log %s/job%u.log", job, (int)pid,
		      started ? "started" : "running", statedir, job);
	return 0;
}
