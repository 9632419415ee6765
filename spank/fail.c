/* spank/fail.c: error messages of the plugin's modules (see fail.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <dragon/error.h>
#include "fail.h"

int dragon_spank_fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		if (code == DRAGON_ESYS) {
			size_t n = strlen(err);
			snprintf(err + n, errlen - n, ": %s", strerror(e));
		}
	}
	return code;
}
