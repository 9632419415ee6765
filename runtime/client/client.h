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

#endif
