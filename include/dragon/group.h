/* dragon/group.h: process groups: N processes started together with a placement policy. */
#ifndef DRAGON_GROUP_H
#define DRAGON_GROUP_H

#include <dragon/process.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t dragon_gid_t;

/* Where the members go. */
enum dragon_policy {
	DRAGON_POLICY_ROUND_ROBIN = 0, /* rank r on node r mod nodes */
	DRAGON_POLICY_BLOCK = 1,       /* consecutive ranks fill one node, then the next */
	DRAGON_POLICY_NODE = 2,        /* every member on the given node */
};

/*
 * Start n copies of argv as one group. Each member finds its rank and the group's size with
 * dragon_group_rank() / dragon_group_size() (or DRAGON_GROUP_RANK / DRAGON_GROUP_SIZE).
 * name (may be NULL) registers the group under a name (dragon_name_lookup gives its gid).
 * If a member cannot start, none is left running and the error names the rank.
 */
int dragon_group_create(const char *const argv[], unsigned n, enum dragon_policy policy,
			unsigned node, const dragon_process_opts_t *opts, const char *name,
			dragon_gid_t *gid);

/*
 * Wait until every member ended; *worst (may be NULL) is the largest member status.
 * timeout_ms < 0 waits forever.
 */
int dragon_group_wait_all(dragon_gid_t gid, int timeout_ms, int *worst);

/*
 * Wait until some member ended that no earlier wait_any returned; gives one of them.
 * DRAGON_ENOTFOUND when every member's end was already returned.
 */
int dragon_group_wait_any(dragon_gid_t gid, int timeout_ms, dragon_puid_t *puid, int *status);

/* Send signo to every running member. */
int dragon_group_signal(dragon_gid_t gid, int signo);

/* This process's rank in its group and the group's size; -1 / 0 if not in a group. */
int dragon_group_rank(void);
int dragon_group_size(void);

#ifdef __cplusplus
}
#endif
#endif
