/* dragon/name.h: names under which unrelated processes of a fabric find objects. */
#ifndef DRAGON_NAME_H
#define DRAGON_NAME_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
	DRAGON_NAME_OUTLIVE = 1, /* the name stays when the registering process exits */
};

/* What a name stands for. */
enum dragon_name_kind {
	DRAGON_NAME_PROCESS = 1,
	DRAGON_NAME_GROUP = 2,
	DRAGON_NAME_POOL = 3,
	DRAGON_NAME_CHANNEL = 4,
	DRAGON_NAME_USER = 5, /* an application's own descriptor */
};

/*
 * Register desc (len bytes, at most 4096; a serialized descriptor) under name (1 to 255 bytes)
 * in the fabric's registry. DRAGON_EEXIST if taken. Unless DRAGON_NAME_OUTLIVE is in flags the
 * name goes away when this process exits.
 */
int dragon_name_register(const char *name, enum dragon_name_kind kind, const void *desc,
			 size_t len, int flags);

/*
 * Find name; waits up to timeout_ms for it to appear (0: do not wait, < 0: forever). Copies at
 * most *len bytes into desc and sets *len to the descriptor's size (DRAGON_ETOOBIG if larger
 * than the buffer). kind may be NULL.
 */
int dragon_name_lookup(const char *name, int timeout_ms, enum dragon_name_kind *kind, void *desc,
		       size_t *len);

/* Remove a name. */
int dragon_name_remove(const char *name);

#ifdef __cplusplus
}
#endif
#endif
