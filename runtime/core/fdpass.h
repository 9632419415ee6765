/* runtime/core/fdpass.h: send and receive file descriptors (pool memfds) with a message over a unix socket. */
#ifndef DRAGON_RUNTIME_FDPASS_H
#define DRAGON_RUNTIME_FDPASS_H

#include <stddef.h>

#define DG_FDPASS_MAX 16

/* Send len bytes (at least 1) and nfds descriptors in one message. */
int dg_fdpass_send(int sock, const void *buf, size_t len, const int *fds, int nfds);

/*
 * Receive one message: up to cap bytes into buf (*len gets the count) and up to maxfds
 * descriptors (*nfds gets the count; they are close-on-exec). Descriptors beyond maxfds, or a
 * truncated control message, are closed and reported as DRAGON_EPROTO: nothing leaks.
 * DRAGON_EPEER if the peer closed the socket.
 */
int dg_fdpass_recv(int sock, void *buf, size_t cap, size_t *len, int *fds, int maxfds, int *nfds);

#endif
