/* runtime/core/err.h: internal helpers to fail with a code and a detail message (see dragon/error.h). */
#ifndef DRAGON_RUNTIME_ERR_H
#define DRAGON_RUNTIME_ERR_H

#include <dragon/error.h>

#define DRAGON_API __attribute__((visibility("default")))

/* Record a detail message for this thread and return rc, so callers write `return dg_err(...)`. */
int dg_err(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like dg_err with DRAGON_ESYS, appending strerror(errno); errno is preserved. */
int dg_err_sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
