/* dragon/sync.h: lock, semaphore, barrier and event for the processes of a fabric, built on queues. */
#ifndef DRAGON_SYNC_H
#define DRAGON_SYNC_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Every object is created under a name (NULL: usable only through this handle) and attached by
 * name from other processes; it is destroyed when its creator exits unless flags has
 * DRAGON_SYNC_OUTLIVE. Timeouts in milliseconds: < 0 forever, 0 try once (DRAGON_EAGAIN).
 */
enum {
	DRAGON_SYNC_OUTLIVE = 1,
};

typedef struct dragon_sem dragon_sem_t;

/* A counting semaphore with `initial` permits and at most `max` (1..65536). */
int dragon_sem_create(const char *name, unsigned initial, unsigned max, int flags,
		      dragon_sem_t **s);
int dragon_sem_attach(const char *name, int timeout_ms, dragon_sem_t **s);
int dragon_sem_acquire(dragon_sem_t *s, int timeout_ms);
/* DRAGON_ENOSPACE if that would exceed max. */
int dragon_sem_release(dragon_sem_t *s);
int dragon_sem_detach(dragon_sem_t *s);
int dragon_sem_destroy(dragon_sem_t *s);

/* A lock is a semaphore with one permit. */
typedef dragon_sem_t dragon_lock_t;
int dragon_lock_create(const char *name, int flags, dragon_lock_t **l);
int dragon_lock_attach(const char *name, int timeout_ms, dragon_lock_t **l);
int dragon_lock_acquire(dragon_lock_t *l, int timeout_ms);
int dragon_lock_release(dragon_lock_t *l);
int dragon_lock_detach(dragon_lock_t *l);
int dragon_lock_destroy(dragon_lock_t *l);

typedef struct dragon_barrier dragon_barrier_t;

/* A reusable barrier for n processes (2..65535). */
int dragon_barrier_create(const char *name, unsigned n, int flags, dragon_barrier_t **b);
int dragon_barrier_attach(const char *name, int timeout_ms, dragon_barrier_t **b);
/* Return when n processes called it (for this round). */
int dragon_barrier_wait(dragon_barrier_t *b, int timeout_ms);
int dragon_barrier_detach(dragon_barrier_t *b);
int dragon_barrier_destroy(dragon_barrier_t *b);

typedef struct dragon_event dragon_event_t;

/* An event: waiters return once it is set, until it is cleared. */
int dragon_event_create(const char *name, int flags, dragon_event_t **e);
int dragon_event_attach(const char *name, int timeout_ms, dragon_event_t **e);
int dragon_event_set(dragon_event_t *e);
int dragon_event_clear(dragon_event_t *e);
int dragon_event_wait(dragon_event_t *e, int timeout_ms);
int dragon_event_detach(dragon_event_t *e);
int dragon_event_destroy(dragon_event_t *e);

#ifdef __cplusplus
}
#endif
#endif
