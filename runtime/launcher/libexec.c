/* runtime/launcher/libexec.c: finding Dragon's helper programs (dragon-ls, dragon-ta) installed or in the build tree. */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "launcher/libexec.h"

static int try_path(char *out, size_t cap, const char *dir, const char *mid, const char *name)
{
	return (size_t)snprintf(out, cap, "%s%s/%s", dir, mid, name) < cap && !access(out, X_OK);
}

int dg_libexec_find(const char *name, const char *subdir, char *out, size_t cap)
{
	const char *env = getenv("DRAGON_LIBEXECDIR");
	char self[PATH_MAX], mid[64], *slash;
	ssize_t n;

	if (env && *env) {
		if (try_path(out, cap, env, "", name))
			return DRAGON_OK;
		return dg_err(DRAGON_ENOTFOUND, "no %s in DRAGON_LIBEXECDIR=%s", name, env);
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		if ((slash = strrchr(self, '/'))) {
			*slash = 0;
			snprintf(mid, sizeof(mid), "/../%s", subdir);
			if (try_path(out, cap, self, "", name) || try_path(out, cap, self, mid, name))
				return DRAGON_OK;
		}
	}
	if (try_path(out, cap, DRAGON_LIBEXECDIR, "", name))
		return DRAGON_OK;
	return dg_err(DRAGON_ENOTFOUND,
		      "no %s in %s (DRAGON_LIBEXECDIR names the directory of Dragon's helpers)", name,
		      DRAGON_LIBEXECDIR);
}
