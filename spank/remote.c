/* spank/remote.c: the slurmstepd side (S_CTX_REMOTE) of the plugin: what happens on each node of a --dragon step. */
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include <dragon/error.h>
#include "plugin.h"
#include "rundir.h"

/* Runs as root in slurmstepd before the tasks exist: create the job's runtime directory on this
 * node (every step of the job finds the same one; the epilog removes it). */
int dragon_remote_init_post_opt(spank_t sp, struct dragon_spank *st)
{
	uint32_t job = 0, step = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	char err[512];
	int rc;

	if (!st->opts.on)
		return 0;
	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &gid) != ESPANK_SUCCESS) {
		slurm_error(DG_LOG "cannot read the job's id, step and user");
		return -1;
	}
	if (geteuid() != 0) {
		slurm_error(DG_LOG "job %u: slurmstepd is not root (euid %u): cannot create the runtime directory",
			    job, (unsigned)geteuid());
		return -1;
	}
	rc = dragon_rundir_create(st->opts.runtime_dir, uid, gid, job, st->rundir, sizeof(st->rundir), err,
				  sizeof(err));
	if (rc != DRAGON_OK) {
		st->rundir[0] = '\0';
		slurm_error(DG_LOG "job %u: runtime directory: %s", job, err);
		return -1;
	}
	slurm_verbose(DG_LOG "job %u step %u: enabled (transport=%s, startup_timeout=%u)", job, step,
		      st->opts.transport, st->opts.startup_timeout);
	return 0;
}

/* Runs as the user just before exec; errors here fail the task (Slurm 22.05 drops user_init
 * errors for srun). */
int dragon_remote_task_init(spank_t sp, struct dragon_spank *st)
{
	char buf[DRAGON_SPANK_TRANSPORT_MAX + 64];
	spank_err_t rc;

	if (!st->opts.on)
		return 0;
	if (dragon_spank_opts_format(&st->opts, buf, sizeof(buf)) != DRAGON_OK) {
		slurm_error(DG_LOG "settings do not fit the environment buffer");
		return -1;
	}
	rc = spank_setenv(sp, DRAGON_SPANK_ENV_OPTIONS, buf, 1);
	if (rc == ESPANK_SUCCESS && st->rundir[0])
		rc = spank_setenv(sp, DRAGON_SPANK_ENV_RUNDIR, st->rundir, 1);
	if (rc != ESPANK_SUCCESS) {
		slurm_error(DG_LOG "cannot set the task's DRAGON_ environment: %s", spank_strerror(rc));
		return -1;
	}
	return 0;
}
