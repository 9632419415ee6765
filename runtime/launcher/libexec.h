/* runtime/launcher/libexec.h: finding Dragon's helper programs (dragon-ls, dragon-ta) installed or in the build tree. */
#ifndef DRAGON_RUNTIME_LIBEXEC_H
#define DRAGON_RUNTIME_LIBEXEC_H

#include <stddef.h>

/*
 * Path of helper program `name` (e.g. "dragon-ta"): in $DRAGON_LIBEXECDIR if set; else beside
 * the running program (an installed helper calling another), in the build tree's
 * runtime/<subdir> (tests), or in the configured libexecdir. DRAGON_ENOTFOUND, with the path
 * tried last in out, when none is executable.
 */
int dg_libexec_find(const char *name, const char *subdir, char *out, size_t cap);

#endif
