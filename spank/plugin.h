/* spank/plugin.h: state shared by the SPANK dispatch file and the per-context modules of spank_dragon.so. */
#ifndef DRAGON_SPANK_PLUGIN_H
#define DRAGON_SPANK_PLUGIN_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>
#include <slurm/spank.h>

#include "options.h"

/* Every log line of the plugin starts with this. */
#define DG_LOG "dragon: "

/* Environment variables a task of a --dragon step receives: the effective settings, and the job's
 * runtime directory on this node (runtime_dir/<uid>/<jobid>). */
#define DRAGON_SPANK_ENV_OPTIONS "DRAGON_SPANK_OPTIONS"
#define DRAGON_SPANK_ENV_RUNDIR "DRAGON_RUNTIME_DIR"

struct dragon_spank {
	struct dragon_spank_opts opts; /* plugstack.conf settings, then --dragon applied */
	bool option_seen;             /* the --dragon callback ran (it may run twice) */
	char *option_value;           /* its last value, NULL when given without one */
	char rundir[PATH_MAX];        /* slurmstepd: the job's runtime directory, once created */
	pid_t fabric_pid;             /* batch step: the fabric step's srun, started from here */
	long long fabric_since;       /* batch step: when that srun was started (CLOCK_REALTIME ns) */
	bool fabric_step;             /* slurmstepd: this step is the job's fabric step (left alone) */
};

/* The one instance: Slurm loads the plugin once per process and calls it from one thread. */
extern struct dragon_spank dragon_spank_state;

/* srun (S_CTX_LOCAL). */
int dragon_local_init_post_opt(spank_t sp, struct dragon_spank *st);
int dragon_local_user_init(spank_t sp, struct dragon_spank *st);
/* sbatch/salloc (S_CTX_ALLOCATOR). */
int dragon_allocator_init_post_opt(spank_t sp, struct dragon_spank *st);
/* slurmstepd (S_CTX_REMOTE). */
int dragon_remote_init_post_opt(spank_t sp, struct dragon_spank *st);
int dragon_remote_task_init(spank_t sp, struct dragon_spank *st);
/* slurmd's job epilog (S_CTX_JOB_SCRIPT). */
int dragon_epilog(spank_t sp, struct dragon_spank *st);

#endif
