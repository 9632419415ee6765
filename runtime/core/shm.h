/* runtime/core/shm.h: what pools and channels share: descriptors, robust locks, futex waits, node index. */
#ifndef DRAGON_RUNTIME_SHM_H
#define DRAGON_RUNTIME_SHM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <dragon/channel.h>

/* Descriptor kinds; every descriptor is DRAGON_DESC_SIZE bytes with this layout. */
enum { DG_DESC_POOL = 1, DG_DESC_MEM = 2, DG_DESC_CHANNEL = 3 };

struct dg_desc {
	uint32_t magic;     /* DG_DESC_MAGIC */
	uint8_t kind;       /* DG_DESC_* */
	uint8_t version;    /* DG_DESC_VERSION */
	uint16_t reserved;
	uint32_t uid;       /* owner of the pool */
	uint32_t node;      /* node index the object lives on */
	uint64_t pool_id;   /* random, never 0 */
	int32_t pid;        /* a process holding the pool's memfd ... */
	int32_t fd;         /* ... and its descriptor number there */
	uint64_t map_size;  /* bytes of the memfd */
	uint64_t offset;    /* mem: allocation; channel: channel header */
	uint64_t size;      /* mem: bytes; channel: channel id */
	uint32_t pad;
	uint32_t check;     /* FNV-1a of the bytes before it: catches garbage and truncation */
};
_Static_assert(sizeof(struct dg_desc) == DRAGON_DESC_SIZE, "descriptor layout");

#define DG_DESC_MAGIC 0x31444744u /* "DGD1" */
#define DG_DESC_VERSION 1

/* Write d (with its check) into bytes. */
void dg_desc_pack(struct dg_desc *d, unsigned char bytes[DRAGON_DESC_SIZE]);
/* Read and validate bytes of the expected kind into d: DRAGON_EBADDESC with a reason. */
int dg_desc_unpack(const unsigned char bytes[DRAGON_DESC_SIZE], int kind, struct dg_desc *d);

/* This process's node index in the fabric (DRAGON_NODE_INDEX, default 0). */
uint32_t dg_local_node(void);
void dg_set_local_node(uint32_t node);

/* Lock a robust process-shared mutex; *recovered set if its previous owner died holding it. */
int dg_robust_lock(pthread_mutex_t *m, int *recovered);
int dg_robust_init(pthread_mutex_t *m);

/* Deadlines on CLOCK_MONOTONIC; timeout_us < 0 means none. */
struct dg_deadline {
	int forever;
	struct timespec at;
};
void dg_deadline_start(struct dg_deadline *d, long timeout_us);
/* Remaining time; 0 when past. */
int dg_deadline_left(const struct dg_deadline *d, struct timespec *left);

/*
 * Wait while *seq == seen, in mode (SPIN, IDLE or ADAPTIVE), until the deadline. Sleepers count
 * themselves in *waiters so that wakers only pay for a futex syscall when someone sleeps.
 * Returns DRAGON_OK when seq moved (or spuriously), DRAGON_ETIMEDOUT at the deadline.
 */
int dg_wait_seq(_Atomic uint32_t *seq, uint32_t seen, _Atomic uint32_t *waiters,
		dragon_wait_mode_t mode, const struct dg_deadline *dl);
/* Bump seq and wake its sleepers, if any. */
void dg_wake_seq(_Atomic uint32_t *seq, _Atomic uint32_t *waiters);

static inline void dg_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

#endif
