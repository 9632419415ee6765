/* runtime/ls/ls.h: local services: the per-node daemon that starts processes and serves clients. */
#ifndef DRAGON_LS_H
#define DRAGON_LS_H

#include <stdint.h>

/* Socket file of local services inside the fabric's runtime directory. */
#define LS_SOCK_NAME "ls.sock"

/*
 * Written (atomically) once local services serve clients, removed when they stop: one line
 * "fabric_id node_index node_count pid". Whoever waits for a node's runtime (the SPANK plugin's
 * task_init) waits for this file rather than for the socket, which exists before the bootstrap ends.
 */
#define LS_READY_NAME "ls.ready"

/*
 * Written (atomically) when a fabric step's local services fail to start, and left in place (the
 * next start removes it; the job's epilog removes the directory): one line "node N (host): why".
 * The tasks waiting for LS_READY_NAME fail at once with it.
 */
#define LS_FAILED_NAME "ls.failed"

/*
 * Written (atomically) when a fabric step's local services that were ready leave the fabric
 * (this node lost the head node: the head node is gone, or this node was cut off), and left in
 * place like LS_FAILED_NAME: one line "node N (host): why". A later step's tasks on this node
 * fail at once with it: a fabric takes no node back.
 */
#define LS_ENDED_NAME "ls.ended"

struct ls_opts {
	const char *dir;       /* the fabric's runtime directory (exists, 0700) */
	const char *fabric_id; /* the fabric's id (directory name) */
	int listen_fd;         /* a listening unix socket, or -1 to bind dir/ls.sock here */
	int ctl_fd;            /* the launcher's connection (a socketpair end), or -1 */
	const char *boot;      /* bootstrap backend name, NULL: single */
	int remove_dir;        /* dir is this LS's own (dragon-ls --base): removed once it stops */
};

/*
 * Run local services (and, on node 0, global services) until told to shut down, or until the
 * launcher's connection closes. Every process it started is terminated before it returns; the
 * socket is removed. Returns a process exit code.
 */
int ls_run(const struct ls_opts *o);

#endif
