/* runtime/gs/gs.h: global services: the fabric's registry of names and process groups. */
#ifndef DRAGON_GS_H
#define DRAGON_GS_H

#include <stdint.h>

#include "proto/wire.h"

struct event_base;
struct gs;

/*
 * What GS needs from the services that host it. On one node GS lives inside the head node's
 * local services and these are direct calls; across nodes they become messages to each LS.
 * Connections are named by a 64-bit id that outlives the connection (a reply to a closed one is
 * dropped), owners by a 64-bit key (a puid, or a connection key for clients the fabric did not start).
 */
struct gs_host {
	void *ctx;
	struct event_base *base;
	uint32_t node_count;
	int (*spawn)(void *ctx, uint32_t node, const Dragon__SpawnArgs *a, uint64_t conn_id,
		     uint64_t gid, int rank, int size, uint64_t *puid);
	int (*signal)(void *ctx, uint64_t puid, int signo);
	void (*reply)(void *ctx, uint64_t conn_id, Dragon__Msg *m);
};

struct gs *gs_new(const struct gs_host *h);
void gs_free(struct gs *g);

/*
 * Handle one request addressed to GS. Returns 1 when it was a GS request (its reply was sent
 * now or will be sent later), 0 when it is not GS's to handle.
 */
int gs_handle(struct gs *g, uint64_t conn_id, uint64_t owner, const Dragon__Msg *req);

/* A process ended (its output flushed): wake group waiters. */
void gs_proc_done(struct gs *g, uint64_t puid, int status, int signaled);
/* An owner died or disconnected: release what it created without `outlive`. */
void gs_owner_gone(struct gs *g, uint64_t owner);
/*
 * A node left the fabric: its group members end with `status` (group waits return), what its
 * owners created without `outlive` is released, its connections' waits are dropped, and groups
 * created later leave it out.
 */
void gs_node_lost(struct gs *g, uint32_t node, int status);
/* A connection closed: forget its pending requests. */
void gs_conn_gone(struct gs *g, uint64_t conn_id);

/* Append GS's groups and names to a status reply; gs_status_release frees what it added. */
int gs_status(struct gs *g, Dragon__StatusReply *r);
void gs_status_release(Dragon__StatusReply *r);

/* Register an object under a name on behalf of LS (pools and channels LS created). */
int gs_name_put(struct gs *g, const char *name, Dragon__Kind kind, const void *desc, size_t len,
		uint64_t owner, int outlive);

/* Drop a name (when LS destroys the object it names). */
void gs_name_drop(struct gs *g, const char *name);

#endif
