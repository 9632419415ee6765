/* spank/remote.c: the slurmstepd side (S_CTX_REMOTE) of the plugin: what happens on each node of a --dragon step. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <slurm/slurm.h>

#include <dragon/error.h>
#include "fabric.h"
#include "ls/ls.h"
#include "plugin.h"
#include "rundir.h"

/* Is this the job's fabric step (started by this plugin or by `dragon` with DRAGON_FABRIC_STEP=1)? */
static bool is_fabric_step(spank_t sp)
{
	char v[8];

	return spank_getenv(sp, DRAGON_FABRIC_STEP_ENV, v, sizeof(v)) == ESPANK_SUCCESS && !strcmp(v, "1");
}

/* Runs as root in slurmstepd before the tasks exist: create the job's runtime directory on this
 * node (every step of the job finds the same one; the epilog removes it). The fabric step gets it
 * too, although its environment carries no --dragon: its local services live in it. */
int dragon_remote_init_post_opt(spank_t sp, struct dragon_spank *st)
{
	uint32_t job = 0, step = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	char err[512];
	int rc;

	st->fabric_step = is_fabric_step(sp);
	if (!st->opts.on && !st->fabric_step)
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
	if (st->fabric_step)
		slurm_verbose(DG_LOG "job %u step %u: the fabric step", job, step);
	else
		slurm_verbose(DG_LOG "job %u step %u: enabled (transport=%s, startup_timeout=%u)", job, step,
			      st->opts.transport, st->opts.startup_timeout);
	return 0;
}

/* The batch script (or salloc's interactive step) starts the job's fabric step and tells the sruns
 * it runs that the fabric exists. The script then joins it like a step's task: `dragon PROG` and
 * dragon_init() in the script use the job's fabric instead of starting another. */
static int start_from_batch(spank_t sp, struct dragon_spank *st, uint32_t job)
{
	char nodes[16] = "", path[4096] = "", libexec[PATH_MAX] = "";
	char ls[PATH_MAX], srun[PATH_MAX], fid[32], err[512];
	struct dragon_fabric_launch l = {.jobid = job, .rundir = st->rundir, .errfd = -1,
					 .startup_timeout = st->opts.startup_timeout,
					 .transport = st->opts.transport,
					 .node_timeout_ms = st->opts.node_timeout_ms};
	char **env = NULL;
	bool started;
	pid_t pid;
	int rc;

	if (spank_getenv(sp, "SLURM_JOB_NUM_NODES", nodes, sizeof(nodes)) != ESPANK_SUCCESS &&
	    spank_getenv(sp, "SLURM_NNODES", nodes, sizeof(nodes)) != ESPANK_SUCCESS) {
		slurm_error(DG_LOG "job %u: SLURM_JOB_NUM_NODES is not in the batch environment", job);
		return -1;
	}
	l.nnodes = (uint32_t)strtoul(nodes, NULL, 10);
	if (!l.nnodes || !st->rundir[0]) {
		slurm_error(DG_LOG "job %u: no node count ('%s') or no runtime directory for the fabric step", job,
			    nodes);
		return -1;
	}
	(void)spank_getenv(sp, "PATH", path, sizeof(path));
	(void)spank_getenv(sp, "DRAGON_LIBEXECDIR", libexec, sizeof(libexec));
	if (spank_get_item(sp, S_JOB_ENV, &env) != ESPANK_SUCCESS || !env) {
		slurm_error(DG_LOG "job %u: cannot read the batch environment", job);
		return -1;
	}
	l.env = env;
	if (dragon_fabric_find_ls(libexec, st->opts.libexec_dir, ls, sizeof(ls), err, sizeof(err)) ||
	    dragon_fabric_find_srun(path, srun, sizeof(srun), err, sizeof(err))) {
		slurm_error(DG_LOG "job %u: cannot start the fabric step: %s", job, err);
		return -1;
	}
	l.ls = ls;
	l.srun = srun;
	/* The lock and the fabric srun's log live in the runtime directory of the batch node: the
	 * epilog removes them with it, so nothing of the job stays on a compute node. */
	rc = dragon_fabric_once(&l, st->rundir, &started, &pid, err, sizeof(err));
	if (rc) {
		slurm_error(DG_LOG "job %u: cannot start the fabric step: %s", job, err);
		return -1;
	}
	slurm_verbose(DG_LOG "job %u: fabric step srun pid %d (%s), log %s/job%u.log", job, (int)pid,
		      started ? "started" : "running", st->rundir, job);
	st->fabric_pid = pid;
	st->fabric_since = dragon_fabric_since_ns(st->rundir, job);
	snprintf(fid, sizeof(fid), "job%u", job);
	/* The script's sruns' tasks learn when the fabric started: a failure it reports after that is its. */
	if (st->fabric_since > 0) {
		char since[32];
		snprintf(since, sizeof(since), "%lld", st->fabric_since);
		(void)spank_setenv(sp, DRAGON_FABRIC_SINCE_ENV, since, 1);
	}
	if (spank_setenv(sp, DRAGON_FABRIC_ENV, fid, 1) != ESPANK_SUCCESS) {
		slurm_error(DG_LOG "job %u: cannot set %s in the batch environment", job, DRAGON_FABRIC_ENV);
		return -1;
	}
	return 0;
}

/* A task of a --dragon step joins the fabric: wait for this node's local services, then give the
 * task what dragon_init() needs. */
static int join(spank_t sp, struct dragon_spank *st, uint32_t job)
{
	struct dragon_fabric_ready r;
	char host[256] = "?", sock[PATH_MAX + 16], v[16], fid[32], tail[400], why[1024], since[32];
	long long since_ns = st->fabric_since;
	spank_err_t rc;

	if (!st->rundir[0]) {
		slurm_error(DG_LOG "job %u: no runtime directory on this node", job);
		return -1;
	}
	/* Set by the srun or the batch step that started the fabric step (absent: wait as before). */
	if (!since_ns && spank_getenv(sp, DRAGON_FABRIC_SINCE_ENV, since, sizeof(since)) == ESPANK_SUCCESS)
		since_ns = strtoll(since, NULL, 10);
	int wr = dragon_fabric_wait_ready(st->rundir, st->opts.startup_timeout * 1000u, st->fabric_pid, since_ns,
					  &r, why, sizeof(why));

	if (wr == DRAGON_ECLOSED) {
		gethostname(host, sizeof(host) - 1);
		slurm_error(DG_LOG "node %s: the job's runtime failed to start: %s", host, why);
		return -1;
	}

	if (wr == DRAGON_ESTALE) {
		gethostname(host, sizeof(host) - 1);
		slurm_error(DG_LOG "node %s is no longer part of the job's fabric: %s; a fabric takes no node "
				   "back: run the job's later --dragon steps without this node (srun -x %s)",
			    host, why, host);
		return -1;
	}
	if (wr == DRAGON_EPEER) {
		gethostname(host, sizeof(host) - 1);
		slurm_error(DG_LOG "node %s: the job's fabric step (srun pid %d) ended before its runtime "
				   "was ready (the job was cancelled, or the fabric failed)",
			    host, (int)st->fabric_pid);
		dragon_fabric_log_tail(st->rundir, job, tail, sizeof(tail));
		if (tail[0])
			slurm_error(DG_LOG "node %s: the fabric step said: %s", host, tail);
		return -1;
	}
	if (wr != DRAGON_OK) {
		gethostname(host, sizeof(host) - 1);
		slurm_error(DG_LOG "node %s: the job's runtime did not start within %u s (no %s/" LS_READY_NAME
				   "); raise startup_timeout (srun --dragon=startup_timeout=SECONDS, or in "
				   "plugstack.conf); the fabric step's messages are in job%u.log, in this "
				   "directory on the batch node or in /tmp/dragon-slurm-%u on the srun host "
				   "(see spank-dragon(8))",
			    host, st->opts.startup_timeout, st->rundir, job, (unsigned)getuid());
		/* On the batch node the fabric srun's log is right here: show its last words. */
		dragon_fabric_log_tail(st->rundir, job, tail, sizeof(tail));
		if (tail[0])
			slurm_error(DG_LOG "node %s: the fabric step said: %s", host, tail);
		return -1;
	}
	snprintf(sock, sizeof(sock), "%s/" LS_SOCK_NAME, st->rundir);
	snprintf(fid, sizeof(fid), "job%u", job);
	rc = spank_setenv(sp, "DRAGON_LS_SOCKET", sock, 1);
	if (rc == ESPANK_SUCCESS)
		rc = spank_setenv(sp, "DRAGON_FABRIC_ID", r.fabric_id, 1);
	snprintf(v, sizeof(v), "%u", r.node_index);
	if (rc == ESPANK_SUCCESS)
		rc = spank_setenv(sp, "DRAGON_NODE_INDEX", v, 1);
	snprintf(v, sizeof(v), "%u", r.node_count);
	if (rc == ESPANK_SUCCESS)
		rc = spank_setenv(sp, "DRAGON_NODE_COUNT", v, 1);
	/* An srun --dragon run by the task belongs to this job's fabric: it starts no other. */
	if (rc == ESPANK_SUCCESS)
		rc = spank_setenv(sp, DRAGON_FABRIC_ENV, fid, 1);
	if (rc != ESPANK_SUCCESS) {
		slurm_error(DG_LOG "cannot set the task's DRAGON_ environment: %s", spank_strerror(rc));
		return -1;
	}
	return 0;
}

/* Runs as the user just before exec; errors here fail the task (Slurm 22.05 drops user_init
 * errors for srun) and never the node. */
int dragon_remote_task_init(spank_t sp, struct dragon_spank *st)
{
	char buf[DRAGON_SPANK_TRANSPORT_MAX + 64];
	uint32_t job = 0, step = 0;
	spank_err_t rc;

	if (st->fabric_step || !st->opts.on)
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
	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS) {
		slurm_error(DG_LOG "cannot read the job's id and step");
		return -1;
	}
	if ((step == SLURM_BATCH_SCRIPT || step == SLURM_INTERACTIVE_STEP) && start_from_batch(sp, st, job))
		return -1;
	return join(sp, st, job);
}
