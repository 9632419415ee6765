/* spank/local.c: the srun side (S_CTX_LOCAL) of the plugin. */
#include "plugin.h"

int dragon_local_init_post_opt(spank_t sp, struct dragon_spank *st)
{
	(void)sp;
	if (!st->opts.on)
		return 0;
	/* The fabric step will be started from here for the first srun --dragon of a job; for now
	 * the validated settings reach the tasks through slurmstepd. */
	slurm_verbose(DG_LOG "srun: enabled (transport=%s, startup_timeout=%u)", st->opts.transport,
		      st->opts.startup_timeout);
	return 0;
}
