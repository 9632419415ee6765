/* runtime/core/error.c: return-code names and the per-thread failure detail of libdragon. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

static const char *const names[DRAGON_ERR_MAX] = {
	[DRAGON_OK] = "DRAGON_OK: success",
	[DRAGON_EINVAL] = "DRAGON_EINVAL: invalid argument",
	[DRAGON_ENOMEM] = "DRAGON_ENOMEM: out of memory",
	[DRAGON_ENOSPACE] = "DRAGON_ENOSPACE: no space left in pool or channel",
	[DRAGON_EAGAIN] = "DRAGON_EAGAIN: operation would block",
	[DRAGON_ETIMEDOUT] = "DRAGON_ETIMEDOUT: operation timed out",
	[DRAGON_EBADDESC] = "DRAGON_EBADDESC: malformed or truncated descriptor",
	[DRAGON_ESTALE] = "DRAGON_ESTALE: object no longer exists",
	[DRAGON_EPERM] = "DRAGON_EPERM: permission denied",
	[DRAGON_ETOOBIG] = "DRAGON_ETOOBIG: size too large",
	[DRAGON_ENOTFOUND] = "DRAGON_ENOTFOUND: no such object",
	[DRAGON_EEXIST] = "DRAGON_EEXIST: object already exists",
	[DRAGON_EPROTO] = "DRAGON_EPROTO: protocol error",
	[DRAGON_EPEER] = "DRAGON_EPEER: peer is dead or unreachable",
	[DRAGON_ECLOSED] = "DRAGON_ECLOSED: object closed or destroyed",
	[DRAGON_ENOTSUP] = "DRAGON_ENOTSUP: operation not supported",
	[DRAGON_ENOTINIT] = "DRAGON_ENOTINIT: process has not joined a fabric (call dragon_init)",
	[DRAGON_ESYS] = "DRAGON_ESYS: system call failed",
};

static __thread char detail[1024];

DRAGON_API const char *dragon_strerror(int rc)
{
	if (rc < 0 || rc >= DRAGON_ERR_MAX || !names[rc])
		return "DRAGON_E?: unknown return code";
	return names[rc];
}

DRAGON_API const char *dragon_errmsg(void)
{
	return detail;
}

int dg_err(int rc, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	errno = saved;
	return rc;
}

int dg_err_sys(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(detail))
		snprintf(detail + n, sizeof(detail) - n, ": %s", strerror(saved));
	errno = saved;
	return DRAGON_ESYS;
}
