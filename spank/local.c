/* spank/local.c: the srun side (S_CTX_LOCAL) of the plugin: the first srun --dragon of a job starts its fabric step. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dragon/error.h>
#include "fabric.h"
#include "plugin.h"

int dragon_local_init_post_opt(spank_t sp, struct dragon_spank *st)
{
	(void)sp;
	if (!st->opts.on)
		return 0;
	slurm_verbose(DG_LOG "srun: enabled (transport=%s, startup_timeout=%u)", st->opts.transport,
		      st->opts.startup_timeout);
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
					 .transport = st->opts.transport};
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
