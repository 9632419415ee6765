/* spank/rundir.h: the per-job runtime directory BASE/<uid>/<jobid>, created and removed without following symlinks. */
#ifndef DRAGON_SPANK_RUNDIR_H
#define DRAGON_SPANK_RUNDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Create base (0755, if missing; the administrator's path), base/<uid> and base/<uid>/<jobid>
 * (both 0700, owned by uid:gid), or accept them when they already exist as real directories owned
 * by uid. Nothing below base is followed if it is a symlink. Writes the job directory's path into
 * path. Returns DRAGON_OK, or DRAGON_EPERM / DRAGON_ESYS / DRAGON_ETOOBIG with a message in err. */
int dragon_rundir_create(const char *base, uid_t uid, gid_t gid, uint32_t jobid, char *path, size_t pathlen,
			 char *err, size_t errlen);

/* Remove base/<uid>/<jobid> and everything below it, following no symlink; an absent directory is
 * not an error (idempotent). Returns DRAGON_OK or DRAGON_ESYS with a message in err. */
int dragon_rundir_remove(const char *base, uid_t uid, uint32_t jobid, char *err, size_t errlen);

#endif
