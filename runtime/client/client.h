/* runtime/client/client.h: the client side of the protocol, shared by the public API files. */
#ifndef DRAGON_CLIENT_H
#define DRAGON_CLIENT_H

#include "proto/wire.h"

/*
 * Send req (seq is assigned) to local services and wait for its reply. An Error reply becomes
 * its return code and detail message; *rep (may be NULL) holds any other reply (dg_msg_free).
 * If fd is non-NULL it receives a descriptor sent with the reply (else -1).
 */
int dg_client_call(Dragon__Msg *req, Dragon__Msg **rep, int *fd);
/* The same, with nsend descriptors sent along with the request (SCM_RIGHTS on its first byte). */
int dg_client_call_fds(Dragon__Msg *req, Dragon__Msg **rep, int *fd, const int *send_fds,
		       int nsend);

/*
 * Pools of this node, owned by local services (memfds). The pool library (core) calls these as
 * its fd provider: create returns a new pool's id and a descriptor of its memory; attach returns
 * a descriptor of an existing pool (any process of the fabric may attach by id).
 */
int dg_client_pool_create(const char *name, uint64_t size, int outlive, uint64_t *id, int *fd);
int dg_client_pool_attach(uint64_t id, int *fd, uint64_t *size);
int dg_client_pool_destroy(uint64_t id);

#endif
