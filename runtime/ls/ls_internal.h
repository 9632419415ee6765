/* runtime/ls/ls_internal.h: what the files of LS share: the state, its records, who owns what. */
#ifndef DRAGON_LS_INTERNAL_H
#define DRAGON_LS_INTERNAL_H

/*
 * Local services are one event loop over one struct ls. Each file of runtime/ls/ does one job
 * and keeps its records (named beside each struct below); what other files call is declared
 * here, under the file that defines it, with the prefix ls_. What one file uses alone stays
 * static there. ls.h is the interface to the rest of the runtime.
 */

#include <event2/util.h>
#include <hwloc.h>
#include <limits.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <dragon/channel.h>
#include <dragon/pool.h>

#include "ls/link.h"
#include "ls/ls.h"
#include "core/fdpass.h"
#include "proto/wire.h"

struct bufferevent;
struct dg_boot;
struct event;
struct event_base;
struct evconnlistener;
struct gs;

/* Limits on one request, so a client cannot make LS allocate without bound. */
#define LS_ARGV_MAX 4096
#define LS_LINE_MAX 65536
/* After a process exits, how long LS waits for the last of its output (a child may hold the pipe). */
#define LS_FLUSH_MS 200
/* Ended processes whose status was delivered stay this many (the newest) so that a process can
 * be waited for again and a late signal gets ESTALE; older ones, and those of a creator that
 * left, are forgotten (then DRAGON_ENOTFOUND). Bounds the table of a long-running creator. */
#define LS_KEEP_WAITED 4096
/* Grace between the first signal and SIGKILL when shutting down. */
#define LS_KILL_GRACE_MS 2000
/* At its end: how long descendants nobody started through LS may take to end by themselves. */
#define LS_ORPHAN_GRACE_MS 50
#define LS_POOL_MAX (1ull << 40)
/* A node silent this long is lost (DRAGON_NODE_TIMEOUT overrides; nodes.c). */
#define LS_NODE_TIMEOUT_MS 10000
/* Descriptors a node needs beyond one per node of the fabric (pools, clients, pipes). */
#define LS_FDS_SPARE 256

#define LS_INPUT_HIGH (1u << 20) /* bytes queued for a stdin before its feeder must wait */
/* Bytes queued for an output connection (Hello.output) beyond which its lines are dropped: local
 * services never wait for a reader, nor hold without bound what a slow one has not read. */
#define LS_OUTPUT_QUEUE_MAX (4u << 20)

/*
 * Ids that cross nodes. A connection id is global: bit 62, the node in bits 48..61 and a per-node
 * counter, so a reply can be routed to the node of its connection. A puid carries its node in
 * bits 48..61 too (bit 47 marks puids GS chose for processes it placed on another node). Owner
 * keys are a puid, or bit 63 plus a connection id.
 */
#define GCONN(node, n) ((1ull << 62) | ((uint64_t)(node) << 48) | (n))
#define ID_NODE(id) ((uint32_t)(((id) >> 48) & 0x3fff))
#define IS_GCONN(id) (((id) >> 62) == 1)

/* The state of local services: ls_run (ls.c) sets it up, runs the loop and tears it down. */
struct ls;

/* A client's connection (conn.c), or a stand-in for one of another node (remote). */
struct conn {
	struct conn *next;
	struct ls *ls;
	struct bufferevent *bev;
	uint64_t id;
	pid_t pid;     /* the peer, from SO_PEERCRED */
	uint64_t puid; /* the peer's puid when the fabric started it, else 0 */
	int sink;      /* wants output and exit events of what it starts */
	int ctl;       /* the launcher's connection: LS ends when it closes */
	int output;    /* takes the Output of processes whose SpawnArgs.output_conn names it */
	uint64_t dropped; /* output: lines dropped since its queue was last empty (io.c) */
	int closing;
	int remote;            /* a stand-in for a connection of another node (no socket) */
	uint64_t inherit_sink; /* remote: where output of what it starts goes by default */
	/* Requests are read with recvmsg (not by the bufferevent, which only writes) so that
	 * descriptors sent with a Spawn reach it; those not claimed by that request are closed. */
	struct event *rd;
	struct evbuffer *in;
	int fds[DG_FDPASS_MAX];
	int nfds;
	int fds_lost; /* more descriptors came than fit: the request that wanted them fails */
};

/* A process of this node: spawn.c starts it, proc.c reaps, waits for and frees it, io.c
 * forwards its output and input. */
struct proc {
	struct proc *next;
	struct ls *ls;
	uint64_t puid;
	pid_t pid;
	uint64_t gid;
	int rank;
	uint64_t creator; /* owner key of whoever asked for it */
	uint64_t exit_to; /* connection that asked, if it is a sink: it gets the ProcExit */
	uint64_t sink;    /* connection that gets its output; 0 discards */
	struct bufferevent *out[2];
	struct bufferevent *in; /* its stdin pipe (stdin_pipe), NULL once closed */
	int in_eof;             /* close stdin once what is queued is written */
	uint64_t in_conn, in_seq; /* an Input whose ok waits for the queue to drain, or 0 */
	struct event *flush_timer;
	int exited, done, status, signaled, outlive, waited;
	char *argv0;
};

/* A Wait for a process that has not ended yet (proc.c). */
struct waitreq {
	struct waitreq *next;
	struct ls *ls;
	uint64_t conn, seq, puid;
	struct event *timer;
};

/* A pool of the node: a memfd handed to processes over the socket (objects.c). */
struct pool {
	struct pool *next;
	uint64_t id;
	int fd;
	uint64_t size;
	char *name;
	uint64_t owner;
	int outlive;
};

/* A channel local services keep in the node's pool for a process (ChannelCreate; objects.c). */
struct lchan {
	struct lchan *next;
	dragon_channel_t *ch;
	unsigned char desc[DRAGON_DESC_SIZE];
	uint64_t id;
	uint32_t capacity;
	uint64_t owner;
	int outlive;
};

/* What the head node knows of another node (from its Join; nodes.c). */
struct node_info {
	struct dg_link *link; /* NULL while the node has not joined, or after it left */
	char host[256];
	int ls_pid;
	uint32_t ncpus;
	int joined;
};

/* A request this node passed to another node and whose reply has not come back (route.c): if
 * that node is lost, its asker gets an answer all the same. */
struct fwd {
	struct fwd *next;
	uint64_t conn, seq;
	uint32_t node;
	uint64_t wait_puid; /* a Wait: answered as the process's end (DRAGON_STATUS_NODE_LOST) */
};

/* Head node: a process GS placed on another node, until its ProcDone (route.c). */
struct rproc {
	struct rproc *next;
	uint64_t puid;
	uint64_t exit_to; /* the connection that gets its ProcExit, or 0 */
};

/* The state of local services: ls_run (ls.c) sets it up, runs the loop and tears it down. */
struct ls {
	const struct ls_opts *o;
	struct event_base *base;
	struct evconnlistener *lst;
	struct event *sigchld, *sigterm, *sigint, *kill_timer;
	struct conn *conns;
	struct proc *procs;
	struct waitreq *waits;
	struct pool *pools;
	dragon_pool_t *node_pool; /* the pool of channels local services create (lazily) */
	struct lchan *chans;
	struct gs *gs;
	struct dg_boot *boot;
	char sock_path[PATH_MAX];
	char host[256];
	char **base_env;
	uint64_t next_conn, next_puid, next_pool;
	uint32_t node_index, node_count;
	int stopping, stop_signo;
	uint64_t stop_conn, stop_seq;
	int debug;
	hwloc_topology_t topo;
	hwloc_bitmap_t allowed;
	/* Across nodes: the job key, the head node's listener and links, or this node's uplink. */
	unsigned char key[DG_LINK_KEY];
	struct evconnlistener *tcp;
	struct node_info *nodes; /* head node: one per node of the fabric */
	struct dg_link *uplink;  /* other nodes: the link to the head node */
	uint64_t next_gs_puid;
	struct conn *handling; /* the connection whose request is being handled (GS callbacks) */
	pid_t ta_pid;          /* the node's transport agent, 0 if none */
	void *ta_xchg;         /* agent.c: the exchange of the agents' addresses, while it runs */
	int ready;             /* DIR/ls.ready is written */
	int report_end;        /* a fabric step's LS: its stop is reported in DIR/ls.ended (or ls.failed) */
	int left;              /* this node left the fabric (it lost the head node): say so in DIR/ls.ended */
	char stop_why[512];    /* why it stops (ls_stop_why), for that report */
	struct event *join_timer; /* head node: the other nodes must join before this fires */
	/* Lost nodes (nodes.c): lost[i] once node i left the fabric; every node keeps it. */
	unsigned char *lost;
	int node_timeout_ms, heartbeat_ms;
	struct fwd *fwds;
	struct rproc *rprocs;
	/* Head node: bit k * node_count + j says that something of node k (a relayed request, a
	 * process GS placed for it) reached node j, so that node k's Gones go only where they
	 * matter: told to every node, each connection's end cost the head node a message per node,
	 * N^2 per step of N tasks (docs/scale.md). Allocated with nodes. */
	unsigned char *reached;
};

/* ---- ls.c: the daemon: its log, the shutdown */

void ls_log(struct ls *ls, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ls_check_stopped(struct ls *ls);
void ls_begin_stop(struct ls *ls, int signo);
/* Say why this node stops before ls_begin_stop (the first reason counts; without one the last log
 * line is the reason). */
void ls_stop_why(struct ls *ls, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- conn.c: client connections: owner keys, replies, dispatch, the socket */

uint64_t ls_owner_of(const struct conn *c);
struct conn *ls_conn_find(struct ls *ls, uint64_t id);
void ls_conn_send(struct conn *c, Dragon__Msg *m);
void ls_reply_error(struct conn *c, uint64_t seq, int rc, const char *msg);
void ls_reply_ok(struct conn *c, uint64_t seq);
void ls_conn_drain(struct conn *c);
void ls_handle(struct conn *c, const Dragon__Msg *req);
void ls_conn_forget(struct ls *ls, uint64_t id);
struct conn *ls_conn_add(struct ls *ls, int fd, int ctl);
void ls_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		  void *arg);

/* ---- io.c: output and input forwarding (bufferevent callbacks set by ls_spawn) */

void ls_in_write(struct bufferevent *bev, void *arg);
void ls_in_event(struct bufferevent *bev, short what, void *arg);
void ls_input(struct conn *c, uint64_t seq, const Dragon__Input *in);
void ls_out_read(struct bufferevent *bev, void *arg);
void ls_out_event(struct bufferevent *bev, short what, void *arg);
void ls_flush_timeout(evutil_socket_t fd, short what, void *arg);
int ls_output_full(struct conn *c);
void ls_output_drained(struct conn *c);

/* ---- spawn.c: starting processes */

int ls_make_base_env(struct ls *ls);
uint64_t ls_sink_for(struct ls *ls, const struct conn *from, const Dragon__SpawnArgs *a);
int ls_check_output_conn(struct conn *from, const Dragon__Msg *req);
int ls_spawn(struct ls *ls, const Dragon__SpawnArgs *a, struct conn *from, uint64_t gid, int rank,
	     int size, uint64_t *puid_out, pid_t *pid_out);

/* ---- proc.c: the node's processes: records, reaping, waits, signals, owners gone */

struct proc *ls_proc_find(struct ls *ls, uint64_t puid);
struct proc *ls_proc_by_pid(struct ls *ls, pid_t pid);
void ls_proc_free(struct ls *ls, struct proc *p);
void ls_proc_forget_old(struct ls *ls);
void ls_reply_wait(struct ls *ls, uint64_t conn, uint64_t seq, struct proc *p);
void ls_owner_gone(struct ls *ls, uint64_t owner);
void ls_proc_done(struct proc *p);
void ls_on_sigchld(evutil_socket_t sig, short what, void *arg);
int ls_signal(struct ls *ls, uint64_t puid, int signo);
void ls_wait_timeout(evutil_socket_t fd, short what, void *arg);
void ls_release_node(struct ls *ls, uint32_t node);

/* ---- objects.c: the node's pools and channels */

struct pool *ls_pool_find(struct ls *ls, uint64_t id);
void ls_send_pool(struct conn *c, uint64_t seq, struct pool *pl);
void ls_pool_create(struct conn *c, uint64_t seq, const Dragon__PoolCreate *pc);
void ls_channel_create(struct conn *c, uint64_t seq, const Dragon__ChannelCreate *cc);
void ls_channel_destroy(struct conn *c, uint64_t seq, const Dragon__ChannelDestroy *cd);

/* ---- status.c: List and Status replies */

void ls_reply_procs(struct conn *c, uint64_t seq, int status);

/* ---- route.c: routing between nodes, and the host callbacks of GS */

struct dg_link *ls_link_to(struct ls *ls, uint32_t node);
void ls_mark_reached(struct ls *ls, uint32_t from, uint32_t to);
int ls_relay(struct ls *ls, uint32_t node, Dragon__Relay *r, Dragon__Msg *inner);
void ls_send_to(struct ls *ls, uint64_t conn, Dragon__Msg *m);
void ls_announce_gone(struct ls *ls, uint64_t owner, uint64_t conn, uint32_t except);
uint32_t ls_serving_node(struct ls *ls, const Dragon__Msg *req);
void ls_forward_request(struct conn *c, uint32_t node, const Dragon__Msg *req);
int ls_host_spawn(void *ctx, uint32_t node, const Dragon__SpawnArgs *a, uint64_t conn_id,
		  uint64_t gid, int rank, int size, uint64_t *puid);
int ls_host_signal(void *ctx, uint64_t puid, int signo);
void ls_host_reply(void *ctx, uint64_t conn_id, Dragon__Msg *m);
void ls_on_spawn_at(struct ls *ls, const Dragon__SpawnAt *sa);
void ls_on_relay(struct ls *ls, const Dragon__Msg *outer);
void ls_fwd_forget_conn(struct ls *ls, uint64_t conn);
void ls_rproc_done(struct ls *ls, uint64_t puid);
void ls_route_node_lost(struct ls *ls, uint32_t node);

/* ---- nodes.c: links between nodes and the join */

int ls_all_joined(struct ls *ls);
void ls_on_join_timeout(evutil_socket_t fd, short what, void *arg);
void ls_on_link_accept(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa, int len,
		       void *arg);
int ls_links_prepare(struct ls *ls, int *tcp_fd);
int ls_startup_timeout_ms(void);
int ls_links_key(struct ls *ls);
int ls_links_join(struct ls *ls);
int ls_node_timeouts(struct ls *ls);
void ls_node_lost(struct ls *ls, uint32_t node, const char *why);

/* ---- agent.c: the transport agent */

int ls_ta_spawn(struct ls *ls);
int ls_ta_exchange_start(struct ls *ls);
int ls_ta_exchange_wait(struct ls *ls);
int ls_ta_check_named_provider(struct ls *ls);
int ls_ta_exchange_end(struct ls *ls);
int ls_ta_disabled(void);
void ls_ta_stop(struct ls *ls);

/* ---- publish.c: the rendezvous files of the runtime directory */

void ls_remove_files(struct ls *ls);
int ls_write_key(struct ls *ls);
int ls_write_ready(struct ls *ls);
int ls_ta_write_peers(struct ls *ls);
int ls_ta_tell_lost(struct ls *ls);

#endif
