/* dragon/process.h: starting, waiting for, signalling and listing processes of the fabric. */
#ifndef DRAGON_PROCESS_H
#define DRAGON_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A process's id in the fabric: unique for the fabric's life, never reused. */
typedef uint64_t dragon_puid_t;

/* Where a started process's stdout and stderr go. */
enum {
	DRAGON_OUTPUT_INHERIT = 0, /* where the creator's own output goes (the launcher) */
	DRAGON_OUTPUT_TO_ME = 1,   /* to this process, by lines, on any node: dragon_output_recv */
	DRAGON_OUTPUT_DISCARD = 2,
};

/* Options of a new process; DRAGON_PROCESS_OPTS_INIT gives the defaults. */
typedef struct dragon_process_opts {
	const char *cwd;           /* working directory; NULL: that of local services */
	const char *const *env;    /* NULL-terminated NAME=VALUE entries added; NULL: none */
	int cpu;                   /* -1: no binding; n: the n-th cpu of the node's allowed set */
	int outlive;               /* 1: keep running when the creator exits */
	int output;                /* DRAGON_OUTPUT_* */
	/* Descriptors of the creator the process gets at the same numbers (not close-on-exec):
	 * dragon_process_create only (the process starts on this node), 3 and above, at most 16. */
	const int *fds;
	int nfds;
} dragon_process_opts_t;

#define DRAGON_PROCESS_OPTS_INIT {NULL, NULL, -1, 0, DRAGON_OUTPUT_INHERIT, NULL, 0}

/*
 * Start argv[0] (searched in PATH) with argv on this node. opts may be NULL. The process gets
 * the fabric's environment, so it can dragon_init(). Unless opts->outlive, it is sent SIGTERM
 * when its creator exits. DRAGON_ENOTFOUND if the program does not exist. opts->fds are handed
 * to local services with the request (DRAGON_EINVAL: a number below 3, a repeated or closed one,
 * more than 16).
 */
int dragon_process_create(const char *const argv[], const dragon_process_opts_t *opts,
			  dragon_puid_t *puid);

/*
 * The status of a process whose node left the fabric (its local services died, or its node was
 * silent past the node timeout): its real end is unknown. Beyond every exit code (0..255) and
 * every 128 + N, so it cannot be mistaken for one.
 */
#define DRAGON_STATUS_NODE_LOST 256

/*
 * A line of output of a process started with DRAGON_OUTPUT_TO_ME (or of what it starts): a whole
 * line with its newline, or the last piece of a stream without one, or a 64 KiB piece of a longer
 * line.
 */
typedef struct dragon_output {
	dragon_puid_t puid; /* 0: a line of local services (lines dropped, see below) */
	int stream;         /* 1: stdout, 2: stderr */
	int rank;           /* its rank in its group, -1 if in none */
	char host[64];      /* the node it runs on */
	char *data;         /* len bytes (not NUL-terminated), malloc'd: free it */
	size_t len;
} dragon_output_t;

/*
 * The next line of output for this process (one thread reads at a time). timeout_ms < 0 waits
 * forever, 0 polls (DRAGON_ETIMEDOUT when there is none). Local services of this node queue at
 * most 4 MiB for a reader that falls behind; they drop lines beyond that and, once it caught up,
 * say how many in a line of their own on stream 2. dragon_finalize ends a wait (DRAGON_EPEER);
 * what arrives after the process exits is discarded.
 */
int dragon_output_recv(dragon_output_t *out, int timeout_ms);

/*
 * Return once every line local services of this node held for this process when it was called has
 * been returned by dragon_output_recv (in another thread): called after a process ended (its wait
 * returned), its output is all read. DRAGON_ETIMEDOUT if the reader did not get there in time.
 */
int dragon_output_flush(int timeout_ms);

/*
 * Wait for a process to end: *status is its exit code, or 128 + N if signal N killed it, or
 * DRAGON_STATUS_NODE_LOST if its node was lost.
 * timeout_ms < 0 waits forever, 0 polls (DRAGON_ETIMEDOUT while it runs). An ended process can
 * be waited for again (same status) until its creator exits or 4096 newer waited-for processes
 * of its node ended; then DRAGON_ENOTFOUND.
 */
int dragon_process_wait(dragon_puid_t puid, int timeout_ms, int *status);

/* Send signal signo to a running process. DRAGON_ESTALE if it has ended. */
int dragon_process_signal(dragon_puid_t puid, int signo);

typedef struct dragon_process_info {
	dragon_puid_t puid;
	int pid;
	unsigned node;
	int running;
	int status;    /* when !running */
	uint64_t gid;  /* 0 if in no group */
	int rank;      /* -1 if in no group */
	char program[64];
} dragon_process_info_t;

/* The processes of this node: *list is malloc'd (free it), *n entries, oldest first. */
int dragon_process_list(dragon_process_info_t **list, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
