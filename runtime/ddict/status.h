/* runtime/ddict/status.h: the fabric's dictionaries as `dragon status` shows them: each one's managers with their keys and bytes. */
#ifndef DRAGON_RUNTIME_DDICT_STATUS_H
#define DRAGON_RUNTIME_DDICT_STATUS_H

#include <stddef.h>
#include <stdint.h>

struct dd_status_mgr {
	unsigned index, node;
	int pid;
	int rc; /* DRAGON_OK, or why the manager did not answer (err: its text) */
	char err[160];
	uint64_t keys, used, budget;
};

struct dd_status {
	uint64_t id;
	char name[208]; /* "" for a dictionary without a name */
	unsigned managers;
	struct dd_status_mgr *m;
};

/*
 * The dictionaries among the fabric's names (names[0..n-1], as `dragon status` lists them: managers
 * register ddict.<id>.<index>, a named dictionary its name too), each manager asked for its
 * numbers with a bound of timeout_ms. Needs dragon_init. *out is an array of *nout (free it with
 * dd_status_free); a dictionary whose managers do not answer is listed with their errors.
 */
int dd_status_collect(const char *const *names, size_t n, int timeout_ms, struct dd_status **out,
		      size_t *nout);
void dd_status_free(struct dd_status *s, size_t n);

#endif
