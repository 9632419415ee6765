/* pmix/boot_file.c: the `file` bootstrap backend: ranks meet in a shared directory (tests and hand-made multi-node fabrics). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "boot.h"

/*
 * Every rank is told its rank, the size and a directory they all see (DRAGON_BOOT_RANK,
 * DRAGON_BOOT_SIZE, DRAGON_BOOT_DIR). A put is a file "<rank>.<key>" written atomically;
 * fence number n is a file "fence<n>.<rank>" each rank writes, then waits for all of them,
 * bounded by DRAGON_STARTUP_TIMEOUT seconds (default 30), naming the ranks that never came.
 * It is what PMIx does for a Slurm step, without Slurm: several local services on one machine
 * (each with its own DRAGON_NODE_INDEX) form a multi-node fabric for tests.
 */
struct file_boot {
	char dir[PATH_MAX];
	unsigned fences;
	int timeout_s;
};

static int env_num(const char *name, int *out)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return dg_err(DRAGON_EINVAL, "the file bootstrap needs %s", name);
	n = strtol(v, &end, 10);
	if (*end || n < 0 || n > 1 << 20)
		return dg_err(DRAGON_EINVAL, "%s=%s is not a number", name, v);
	*out = (int)n;
	return DRAGON_OK;
}

static int file_init(struct dg_boot *b)
{
	struct file_boot *f = calloc(1, sizeof(*f));
	const char *dir = getenv("DRAGON_BOOT_DIR"), *t = getenv("DRAGON_STARTUP_TIMEOUT");
	struct stat st;
	int rv;

	if (!f)
		return dg_err(DRAGON_ENOMEM, "bootstrap");
	if ((rv = env_num("DRAGON_BOOT_RANK", &b->rank)) || (rv = env_num("DRAGON_BOOT_SIZE", &b->size)))
		goto fail;
	if (b->size < 1 || b->rank >= b->size) {
		rv = dg_err(DRAGON_EINVAL, "rank %d does not fit a fabric of %d", b->rank, b->size);
		goto fail;
	}
	if (!dir || !*dir || stat(dir, &st) || !S_ISDIR(st.st_mode) ||
	    strlen(dir) >= sizeof(f->dir) - 32) {
		rv = dg_err(DRAGON_EINVAL, "DRAGON_BOOT_DIR must name an existing directory");
		goto fail;
	}
	strcpy(f->dir, dir);
	f->timeout_s = t && atoi(t) > 0 ? atoi(t) : 30;
	b->priv = f;
	return DRAGON_OK;
fail:
	free(f);
	return rv;
}

static int valid_key(const char *key)
{
	if (!*key || strlen(key) > 64)
		return 0;
	for (const char *p = key; *p; p++)
		if (*p == '/' || (*p == '.' && p == key))
			return 0;
	return 1;
}

static int write_file(const char *path, const void *val, size_t len)
{
	char tmp[PATH_MAX + 8];
	FILE *fp;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fp = fopen(tmp, "we");
	if (!fp)
		return dg_err_sys("bootstrap file %s", tmp);
	if (fchmod(fileno(fp), 0600) || (len && fwrite(val, 1, len, fp) != len) || fclose(fp)) {
		unlink(tmp);
		return dg_err_sys("bootstrap file %s", tmp);
	}
	if (rename(tmp, path))
		return dg_err_sys("bootstrap file %s", path);
	return DRAGON_OK;
}

static int file_put(struct dg_boot *b, const char *key, const void *val, size_t len)
{
	struct file_boot *f = b->priv;
	char path[PATH_MAX + 96];

	if (!valid_key(key))
		return dg_err(DRAGON_EINVAL, "bad bootstrap key '%s'", key);
	snprintf(path, sizeof(path), "%s/%d.%s", f->dir, b->rank, key);
	return write_file(path, val, len);
}

static int file_get(struct dg_boot *b, int rank, const char *key, void **val, size_t *len)
{
	struct file_boot *f = b->priv;
	char path[PATH_MAX + 96];
	struct stat st;
	void *buf;
	FILE *fp;

	*val = NULL;
	*len = 0;
	if (!valid_key(key) || rank < 0 || rank >= b->size)
		return dg_err(DRAGON_EINVAL, "bad bootstrap key '%s' of rank %d", key, rank);
	snprintf(path, sizeof(path), "%s/%d.%s", f->dir, rank, key);
	if (!(fp = fopen(path, "re")))
		return dg_err(DRAGON_ENOTFOUND, "rank %d did not put '%s'", rank, key);
	if (fstat(fileno(fp), &st) || st.st_size > (1 << 20) ||
	    !(buf = malloc((size_t)st.st_size + 1))) {
		fclose(fp);
		return dg_err(DRAGON_EINVAL, "bootstrap value %s is unreadable or too big", path);
	}
	if (fread(buf, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
		fclose(fp);
		free(buf);
		return dg_err_sys("read %s", path);
	}
	fclose(fp);
	*val = buf;
	*len = (size_t)st.st_size;
	return DRAGON_OK;
}

static int file_fence(struct dg_boot *b)
{
	struct file_boot *f = b->priv;
	char path[PATH_MAX + 64], missing[256];
	struct timespec start, now;
	unsigned n = ++f->fences;
	int rv;

	snprintf(path, sizeof(path), "%s/fence%u.%d", f->dir, n, b->rank);
	if ((rv = write_file(path, "", 0)))
		return rv;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		size_t used = 0;
		int absent = 0;

		missing[0] = 0;
		for (int r = 0; r < b->size; r++) {
			snprintf(path, sizeof(path), "%s/fence%u.%d", f->dir, n, r);
			if (access(path, F_OK) == 0)
				continue;
			absent++;
			if (used < sizeof(missing))
				used += (size_t)snprintf(missing + used, sizeof(missing) - used, " %d", r);
		}
		if (!absent)
			return DRAGON_OK;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= f->timeout_s)
			return dg_err(DRAGON_ETIMEDOUT,
				      "bootstrap fence %u: %d of %d ranks did not arrive within %d s:%s", n,
				      absent, b->size, f->timeout_s, missing);
		usleep(2000);
	}
}

static void file_abort(struct dg_boot *b, int status, const char *msg)
{
	fprintf(stderr, "dragon: rank %d aborts the fabric (%d): %s\n", b->rank, status, msg);
}

static void file_finalize(struct dg_boot *b)
{
	free(b->priv);
	b->priv = NULL;
}

const struct dg_boot_ops dg_boot_file_ops = {
	.name = "file",
	.init = file_init,
	.put = file_put,
	.get = file_get,
	.fence = file_fence,
	.abort = file_abort,
	.finalize = file_finalize,
};
