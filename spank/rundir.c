/* spank/rundir.c: create and remove the per-job runtime directory as root, safely below a user-owned directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dragon/error.h>
#include "fail.h"
#include "rundir.h"


/* mkdir -p for the administrator's base path (trusted: symlinks in it are the site's choice). */
static int make_base(const char *base, char *err, size_t errlen)
{
	char buf[4096];
	size_t n = strlen(base);

	if (base[0] != '/' || n >= sizeof(buf))
		return dragon_spank_fail(DRAGON_EINVAL, err, errlen, "runtime_dir '%s' is not an absolute path", base);
	memcpy(buf, base, n + 1);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0755) != 0 && errno != EEXIST)
				return dragon_spank_fail(DRAGON_ESYS, err, errlen, "mkdir %s", buf);
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return DRAGON_OK;
}

/* Open (creating if needed) the directory name inside dirfd without following a symlink, and make
 * sure it is a directory owned by uid with mode 0700. Returns an fd or -1 with err set. */
static int open_owned_dir(int dirfd, const char *shown, const char *name, uid_t uid, gid_t gid, int *code,
			  char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (mkdirat(dirfd, name, 0700) == 0) {
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			goto sys;
		if (fchown(fd, uid, gid) != 0 || fchmod(fd, 0700) != 0) {
			close(fd);
			goto sys;
		}
		return fd;
	}
	if (errno != EEXIST)
		goto sys;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR) {
			*code = dragon_spank_fail(DRAGON_EPERM, err, errlen, "%s/%s exists and is not a directory (or is a symlink)",
				     shown, name);
			return -1;
		}
		goto sys;
	}
	if (fstat(fd, &st) != 0) {
		close(fd);
		goto sys;
	}
	if (st.st_uid != uid || (st.st_mode & 0077)) {
		close(fd);
		*code = dragon_spank_fail(DRAGON_EPERM, err, errlen, "%s/%s is owned by uid %u with mode %03o, need uid %u and 0700",
			     shown, name, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777), (unsigned)uid);
		return -1;
	}
	return fd;
sys:
	*code = dragon_spank_fail(DRAGON_ESYS, err, errlen, "%s/%s", shown, name);
	return -1;
}

int dragon_rundir_create(const char *base, uid_t uid, gid_t gid, uint32_t jobid, char *path, size_t pathlen,
			 char *err, size_t errlen)
{
	int rv = DRAGON_ESYS, basefd = -1, ufd = -1, jfd = -1;
	char uname[16], jname[16], ushown[4096];
	int n;

	if ((rv = make_base(base, err, errlen)) != DRAGON_OK)
		goto out;
	basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (basefd < 0) {
		rv = dragon_spank_fail(DRAGON_ESYS, err, errlen, "open %s", base);
		goto out;
	}
	snprintf(uname, sizeof(uname), "%u", (unsigned)uid);
	snprintf(jname, sizeof(jname), "%u", (unsigned)jobid);
	if ((ufd = open_owned_dir(basefd, base, uname, uid, gid, &rv, err, errlen)) < 0)
		goto out;
	snprintf(ushown, sizeof(ushown), "%s/%s", base, uname);
	if ((jfd = open_owned_dir(ufd, ushown, jname, uid, gid, &rv, err, errlen)) < 0)
		goto out;
	n = snprintf(path, pathlen, "%s/%s/%s", base, uname, jname);
	if (n < 0 || (size_t)n >= pathlen) {
		rv = dragon_spank_fail(DRAGON_ETOOBIG, err, errlen, "runtime directory path is longer than %zu bytes", pathlen);
		goto out;
	}
	rv = DRAGON_OK;
out:
	if (jfd >= 0)
		close(jfd);
	if (ufd >= 0)
		close(ufd);
	if (basefd >= 0)
		close(basefd);
	return rv;
}

/* Remove everything inside the directory fd (consumed), depth first, never following a symlink. */
static int empty_dir(int fd, int depth, char *err, size_t errlen)
{
	int rv = DRAGON_OK;
	DIR *d;
	struct dirent *e;

	if (depth > 64) {
		close(fd);
		errno = ELOOP;
		return dragon_spank_fail(DRAGON_ESYS, err, errlen, "runtime directory nests deeper than 64 levels");
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return dragon_spank_fail(DRAGON_ESYS, err, errlen, "fdopendir");
	}
	while ((e = readdir(d)) != NULL) {
		int sub;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			if (errno == ENOENT)
				continue;
			rv = dragon_spank_fail(DRAGON_ESYS, err, errlen, "unlink %s", e->d_name);
			break;
		}
		sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			rv = dragon_spank_fail(DRAGON_ESYS, err, errlen, "open %s", e->d_name);
			break;
		}
		if ((rv = empty_dir(sub, depth + 1, err, errlen)) != DRAGON_OK)
			break;
		if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
			rv = dragon_spank_fail(DRAGON_ESYS, err, errlen, "rmdir %s", e->d_name);
			break;
		}
	}
	closedir(d);
	return rv;
}

int dragon_rundir_remove(const char *base, uid_t uid, uint32_t jobid, char *err, size_t errlen)
{
	int rv = DRAGON_ESYS, basefd = -1, ufd = -1, jfd;
	char uname[16], jname[16];

	snprintf(uname, sizeof(uname), "%u", (unsigned)uid);
	snprintf(jname, sizeof(jname), "%u", (unsigned)jobid);
	basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (basefd < 0) {
		rv = errno == ENOENT ? DRAGON_OK : dragon_spank_fail(DRAGON_ESYS, err, errlen, "open %s", base);
		goto out;
	}
	ufd = openat(basefd, uname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ufd < 0) {
		rv = errno == ENOENT ? DRAGON_OK : dragon_spank_fail(DRAGON_ESYS, err, errlen, "open %s/%s", base, uname);
		goto out;
	}
	jfd = openat(ufd, jname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (jfd < 0) {
		if (errno == ENOENT)
			rv = DRAGON_OK;
		else if (errno == ELOOP || errno == ENOTDIR)
			/* Not ours to follow: remove the name itself. */
			rv = unlinkat(ufd, jname, 0) == 0 ? DRAGON_OK
							   : dragon_spank_fail(DRAGON_ESYS, err, errlen, "unlink %s/%s/%s", base,
								  uname, jname);
		else
			rv = dragon_spank_fail(DRAGON_ESYS, err, errlen, "open %s/%s/%s", base, uname, jname);
		goto out;
	}
	if ((rv = empty_dir(jfd, 0, err, errlen)) != DRAGON_OK)
		goto out;
	if (unlinkat(ufd, jname, AT_REMOVEDIR) != 0 && errno != ENOENT) {
		rv = dragon_spank_fail(DRAGON_ESYS, err, errlen, "rmdir %s/%s/%s", base, uname, jname);
		goto out;
	}
	/* The <uid> directory stays: another job of the user may be creating its directory in it. */
	rv = DRAGON_OK;
out:
	if (ufd >= 0)
		close(ufd);
	if (basefd >= 0)
		close(basefd);
	return rv;
}
