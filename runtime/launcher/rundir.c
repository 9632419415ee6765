/* runtime/launcher/rundir.c: locate, create (0700, no symlinks followed) and remove runtime directories. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "launcher/rundir.h"
#include "ls/ls.h"

int dg_rundir_base(const char *override, char *out, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (override && *override)
		n = snprintf(out, len, "%s", override);
	else if (xdg && *xdg && xdg[0] == '/')
		n = snprintf(out, len, "%s/dragon", xdg);
	else
		n = snprintf(out, len, "/tmp/dragon-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= len)
		return dg_err(DRAGON_EINVAL, "runtime directory path is too long");
	return DRAGON_OK;
}

/* mkdir 0700, or accept an existing directory only if it is ours, real and private. */
static int private_dir(const char *path, int *created)
{
	struct stat st;
	int fd;

	*created = 0;
	if (mkdir(path, 0700) == 0) {
		*created = 1;
	} else if (errno != EEXIST) {
		return dg_err(DRAGON_ESYS, "runtime directory %s cannot be created: %s%s", path,
			      strerror(errno),
			      errno == EACCES || errno == EROFS
				      ? " (choose a writable one with --runtime-dir)"
				      : "");
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return dg_err(DRAGON_EPERM, "runtime directory %s is not a directory (or a symlink): %s",
			      path, strerror(errno));
	if (fstat(fd, &st)) {
		close(fd);
		return dg_err_sys("fstat %s", path);
	}
	close(fd);
	if (st.st_uid != geteuid())
		return dg_err(DRAGON_EPERM, "runtime directory %s belongs to uid %u, not to you", path,
			      (unsigned)st.st_uid);
	if (st.st_mode & 077)
		return dg_err(DRAGON_EPERM, "runtime directory %s is open to other users (mode %03o)",
			      path, (unsigned)(st.st_mode & 0777));
	if (access(path, W_OK | X_OK))
		return dg_err(DRAGON_EPERM, "runtime directory %s is not writable", path);
	return DRAGON_OK;
}

int dg_rundir_create(const char *override, const char *fabric_id, struct dg_rundir *rd)
{
	int created, rc;

	memset(rd, 0, sizeof(*rd));
	if ((rc = dg_rundir_base(override, rd->base, sizeof(rd->base))))
		return rc;
	if ((size_t)snprintf(rd->dir, sizeof(rd->dir), "%s/%s", rd->base, fabric_id) >=
	    sizeof(rd->dir))
		return dg_err(DRAGON_EINVAL, "runtime directory path is too long");
	snprintf(rd->sock, sizeof(rd->sock), "%s/%s", rd->dir, LS_SOCK_NAME);
	/* Another fabric's end removes the shared base once it is empty (dg_rundir_remove): it can
	 * go between our making (or finding) it and making our directory in it. Make it again. */
	for (int tries = 0;; tries++) {
		int made_base;

		if ((rc = private_dir(rd->base, &made_base)))
			return rc;
		rd->created_base |= made_base;
		rc = private_dir(rd->dir, &created);
		if (rc == DRAGON_OK || tries == 8 || access(rd->base, F_OK) == 0)
			break;
	}
	if (rc)
		return rc;
	if (!created)
		return dg_err(DRAGON_EEXIST, "runtime directory %s already exists", rd->dir);
	return DRAGON_OK;
}

void dg_rundir_remove(struct dg_rundir *rd)
{
	if (rd->sock[0])
		unlink(rd->sock);
	if (rd->dir[0])
		rmdir(rd->dir);
	/* The base is shared by this user's fabrics: it goes only when the last one is gone. */
	if (rd->base[0])
		rmdir(rd->base);
}
