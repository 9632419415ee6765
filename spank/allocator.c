/* spank/allocator.c: the sbatch/salloc side (S_CTX_ALLOCATOR) of the plugin. */
#include "plugin.h"

int dragon_allocator_init_post_opt(spank_t sp, struct dragon_spank *st)
{
	(void)sp;
	if (!st->opts.on)
		return 0;
	/* Validated before submission; Slurm carries the option into the job's environment, so the
	 * batch step and every srun inside the script see --dragon too. */
	slurm_verbose(DG_LOG "allocator: enabled (transport=%s, startup_timeout=%u)", st->opts.transport,
		      st->opts.startup_timeout);
	return 0;
}
