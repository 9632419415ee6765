/* dragon/queue.h: bounded FIFO message queues shared by the processes of a fabric. */
#ifndef DRAGON_QUEUE_H
#define DRAGON_QUEUE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dragon_queue dragon_queue_t;

enum {
	DRAGON_QUEUE_OUTLIVE = 1, /* the queue stays when its creator exits */
};

/*
 * Create a queue of capacity messages (1..65536) of at most msg_max bytes (1..65536). name (may
 * be NULL) registers it so other processes attach by name. Without DRAGON_QUEUE_OUTLIVE the
 * queue is destroyed when the creating process exits.
 */
int dragon_queue_create(const char *name, unsigned capacity, size_t msg_max, int flags,
			dragon_queue_t **q);

/* Attach to a named queue, waiting up to timeout_ms for it to be created (< 0: forever). */
int dragon_queue_attach(const char *name, int timeout_ms, dragon_queue_t **q);

/*
 * Put len bytes. Blocks while the queue is full, up to timeout_ms (< 0: forever; 0: DRAGON_EAGAIN
 * at once); DRAGON_ETIMEDOUT after that; DRAGON_ETOOBIG beyond msg_max; DRAGON_ESTALE if the
 * queue was destroyed.
 */
int dragon_queue_put(dragon_queue_t *q, const void *data, size_t len, int timeout_ms);

/*
 * Get the oldest message into buf (*len bytes of room; set to the message's size). Blocks while
 * empty, like put. A message larger than the buffer is DRAGON_ETOOBIG: it stays in the queue and
 * *len says its size.
 */
int dragon_queue_get(dragon_queue_t *q, void *buf, size_t *len, int timeout_ms);

/* The queue's limits. */
size_t dragon_queue_msg_max(const dragon_queue_t *q);

/* Forget the handle (the queue lives on). */
int dragon_queue_detach(dragon_queue_t *q);

/* Destroy the queue (waiters get DRAGON_ESTALE) and forget the handle. */
int dragon_queue_destroy(dragon_queue_t *q);

#ifdef __cplusplus
}
#endif
#endif
