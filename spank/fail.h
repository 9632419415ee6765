/* spank/fail.h: one way for the plugin's modules to return an error code with its message. */
#ifndef DRAGON_SPANK_FAIL_H
#define DRAGON_SPANK_FAIL_H

#include <stddef.h>

/* Format the message into err (errlen bytes; err may be NULL); DRAGON_ESYS appends strerror(errno)
 * as it was on entry. Returns code. */
__attribute__((format(printf, 4, 5))) int dragon_spank_fail(int code, char *err, size_t errlen,
							    const char *fmt, ...);

#endif
