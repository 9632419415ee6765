/* spank/fabric.h: the job's fabric step (one dragon-ls per node): starting it once per job, and waiting for a node's rendezvous. */
#ifndef DRAGON_SPANK_FABRIC_H
#define DRAGON_SPANK_FABRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Set to "job<jobid>" where the job's fabric is already started (the batch script, a --dragon
 * step's tasks): an srun --dragon run from there starts no other. */
#define DRAGON_FABRIC_ENV "DRAGON_FABRIC"
/* Set to "1" in the fabric step's own environment: the plugin leaves that step alone. */
#define DRAGON_FABRIC_STEP_ENV "DRAGON_FABRIC_STEP"

/* What the fabric srun runs and where. */
struct dragon_fabric_launch {
	uint32_t jobid;
	uint32_t nnodes;      /* every node of the job */
	const char *srun;     /* path of srun */
	const char *ls;       /* path of dragon-ls */
	const char *rundir;   /* runtime_dir/<uid>/<jobid>, the same path on every node */
	char *const *env;     /* the environment it is made from (scrubbed here) */
	int errfd;            /* the fabric srun's stderr, or -1 for /dev/null */
	unsigned startup_timeout; /* seconds; DRAGON_STARTUP_TIMEOUT of dragon-ls unless env has one */
	const char *transport;    /* DRAGON_TA_PROVIDER of the transport agent unless env has one */
	unsigned node_timeout_ms; /* DRAGON_NODE_TIMEOUT of dragon-ls (replacing env's); 0: env's, if any */
};

/* Does environment entry e ("NAME=value") go on to the fabric step? Not the SPANK options (the
 * fabric step must not be a --dragon step), not PMIx's or a fabric's own variables, and of Slurm's
 * only the job-wide ones (a step's SLURM_NTASKS or SLURM_CPU_BIND would shape the fabric step). */
bool dragon_fabric_env_keep(const char *e);

/* Start the fabric srun detached: its own session, reparented to init, stdin from /dev/null, no
 * inherited descriptor but stderr. It ends with the allocation. *pid is the srun's pid. Returns
 * DRAGON_OK, or DRAGON_ESYS / DRAGON_ENOMEM with a message in err. */
int dragon_fabric_start(const struct dragon_fabric_launch *l, pid_t *pid, char *err, size_t errlen);

/* Start the fabric unless this host already did for the job: under an flock of
 * statedir/job<id>.lock, which records the fabric srun (pid and start time); a living one means the
 * fabric exists. *started tells which. Several sruns of one job may call this at once. */
int dragon_fabric_once(const struct dragon_fabric_launch *l, const char *statedir, bool *started, pid_t *pid,
		       char *err, size_t errlen);

/* The per-user directory on an srun host for the locks and logs above: $XDG_RUNTIME_DIR/dragon-slurm,
 * or /tmp/dragon-slurm-<uid>; created 0700, and refused unless it is a real directory of uid's
 * closed to others. */
int dragon_fabric_statedir(uid_t uid, const char *xdg_runtime_dir, char *out, size_t len, char *err, size_t errlen);

/* dragon-ls in envdir (DRAGON_LIBEXECDIR of the job, if set), else in confdir (plugstack.conf
 * libexec_dir, if set), else in the installed libexec directory. */
int dragon_fabric_find_ls(const char *envdir, const char *confdir, char *out, size_t len, char *err, size_t errlen);

/* srun along path (a PATH value, may be NULL), else in /usr/bin, /usr/local/bin. */
int dragon_fabric_find_srun(const char *path, char *out, size_t len, char *err, size_t errlen);

/* A node's rendezvous, rundir/ls.ready: "fabric_id node_index node_count pid". */
struct dragon_fabric_ready {
	char fabric_id[64];
	unsigned node_index, node_count;
	int pid;
};

/* Read rundir/ls.ready: DRAGON_OK when it is there, well formed, and its writer alive;
 * DRAGON_ENOTFOUND otherwise. */
int dragon_fabric_read_ready(const char *rundir, struct dragon_fabric_ready *r);

/* The last lines of dir/job<jobid>.log (the fabric srun's messages), newlines shown as "|", in
 * out; "" when there is no such file. */
void dragon_fabric_log_tail(const char *dir, uint32_t jobid, char *out, size_t len);

/* Read rundir/ls.failed (local services' reason for a start that failed) into why, one printable
 * line: DRAGON_OK when it is there and was written at since_ns (CLOCK_REALTIME) or later,
 * DRAGON_ENOTFOUND otherwise. */
int dragon_fabric_read_failed(const char *rundir, long long since_ns, char *why, size_t len);

/* Did this node leave the job's fabric since since_ns (CLOCK_REALTIME; <= 0: unknown, never)?
 * DRAGON_OK and the reason in why (one printable line) if its local services wrote
 * rundir/ls.ended then, or died leaving an ls.ready written then; DRAGON_ENOTFOUND otherwise. */
int dragon_fabric_read_left(const char *rundir, long long since_ns, char *why, size_t len);

/* Since when a failure that local services report concerns the fabric a step is about to use, in
 * CLOCK_REALTIME nanoseconds: the start of the job's running fabric step (the mtime of
 * statedir/job<jobid>.lock, written then, while its srun lives), else now (a fabric step started
 * from now on). statedir may be NULL (no job yet). */
long long dragon_fabric_since_ns(const char *statedir, uint32_t jobid);

/* The job environment's variable carrying dragon_fabric_started_ns to the steps' tasks. */
#define DRAGON_FABRIC_SINCE_ENV "DRAGON_FABRIC_SINCE"

/* Wait up to timeout_ms for dragon_fabric_read_ready to succeed; DRAGON_ETIMEDOUT if it does not.
 * With watch > 0 (the fabric step's srun, on the node that started it), DRAGON_EPEER as soon as
 * that process is gone: a fabric step that ended will not get ready. With since_ns > 0,
 * DRAGON_ECLOSED (and the reason in why) as soon as dragon_fabric_read_failed finds a failure, and
 * DRAGON_ESTALE (and the reason) as soon as dragon_fabric_read_left finds this node gone from the
 * fabric: a fabric takes no node back. */
int dragon_fabric_wait_ready(const char *rundir, unsigned timeout_ms, pid_t watch, long long since_ns,
			     struct dragon_fabric_ready *r, char *why, size_t whylen);

#endif
