/* runtime/launcher/rundir.h: the fabric's runtime directory: where it is, safe creation, removal. */
#ifndef DRAGON_RUNDIR_H
#define DRAGON_RUNDIR_H

#include <limits.h>
#include <stddef.h>

struct dg_rundir {
	char base[PATH_MAX];        /* $XDG_RUNTIME_DIR/dragon or /tmp/dragon-UID, or given */
	char dir[PATH_MAX];         /* base/<fabric id> */
	char sock[PATH_MAX + 16];   /* dir/ls.sock */
	int created_base;
};

/* The base directory of fabrics: override if non-NULL, else the default for this user. */
int dg_rundir_base(const char *override, char *out, size_t len);

/*
 * Create base (if missing) and base/<fabric_id>, both 0700, without following symlinks; an
 * existing base must be a real directory owned by this user and closed to others.
 */
int dg_rundir_create(const char *override, const char *fabric_id, struct dg_rundir *rd);

/* Remove the socket, the fabric directory and, when empty, the base. Idempotent. */
void dg_rundir_remove(struct dg_rundir *rd);

#endif
