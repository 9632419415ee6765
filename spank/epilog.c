/* spank/epilog.c: slurmd's job epilog (S_CTX_JOB_SCRIPT, root): remove what is left of the job's runtime directory. */
#include <stdint.h>
#include <sys/types.h>

#include <dragon/error.h>
#include "plugin.h"
#include "rundir.h"

/* Idempotent, and never fails the epilog over what a user left behind: a failing epilog drains
 * the node, which would punish every other user for one user's files. */
int dragon_epilog(spank_t sp, struct dragon_spank *st)
{
	uint32_t job = 0;
	uid_t uid = 0;
	char err[512];

	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS) {
		slurm_error(DG_LOG "epilog: cannot read the job id and user; runtime directory left");
		return 0;
	}
	if (dragon_rundir_remove(st->opts.runtime_dir, uid, job, err, sizeof(err)) != DRAGON_OK)
		slurm_error(DG_LOG "epilog: job %u: %s", job, err);
	return 0;
}
