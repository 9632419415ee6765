/* runtime/core/shm.c: descriptor codec, robust locks, futex-based waits and the local node index. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sodium.h>

#include "core/err.h"
#include "core/shm.h"

/* How long ADAPTIVE spins before it sleeps: a little more than a futex wake-up costs here. */
#define ADAPTIVE_SPIN_NS 30000L

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

void dg_desc_pack(struct dg_desc *d, unsigned char bytes[DRAGON_DESC_SIZE])
{
	d->magic = DG_DESC_MAGIC;
	d->version = DG_DESC_VERSION;
	d->reserved = 0;
	d->pad = 0;
	d->check = fnv1a((const unsigned char *)d, offsetof(struct dg_desc, check));
	memcpy(bytes, d, sizeof(*d));
}

static const char *kind_name(int kind)
{
	switch (kind) {
	case DG_DESC_POOL:
		return "pool";
	case DG_DESC_MEM:
		return "memory";
	case DG_DESC_CHANNEL:
		return "channel";
	}
	return "unknown";
}

int dg_desc_unpack(const unsigned char bytes[DRAGON_DESC_SIZE], int kind, struct dg_desc *d)
{
	if (!bytes)
		return dg_err(DRAGON_EINVAL, "%s descriptor is NULL", kind_name(kind));
	memcpy(d, bytes, sizeof(*d));
	if (d->magic != DG_DESC_MAGIC)
		return dg_err(DRAGON_EBADDESC, "not a Dragon descriptor (bad magic 0x%08x)",
			      d->magic);
	if (d->version != DG_DESC_VERSION)
		return dg_err(DRAGON_EBADDESC, "descriptor version %u, this library reads %u",
			      d->version, DG_DESC_VERSION);
	if (d->check != fnv1a(bytes, offsetof(struct dg_desc, check)))
		return dg_err(DRAGON_EBADDESC, "descriptor is corrupt or truncated (checksum)");
	if (d->kind != kind)
		return dg_err(DRAGON_EBADDESC, "descriptor is of a %s, expected a %s",
			      kind_name(d->kind), kind_name(kind));
	/* A channel's size field is its id; a mem's size must fit its pool. */
	if (!d->pool_id || d->map_size == 0 || d->offset >= d->map_size ||
	    (kind == DG_DESC_MEM && d->size > d->map_size - d->offset) ||
	    (kind == DG_DESC_CHANNEL && !d->size))
		return dg_err(DRAGON_EBADDESC, "%s descriptor has impossible fields",
			      kind_name(kind));
	return DRAGON_OK;
}

DRAGON_API int dragon_desc_format(const void *desc, char out[DRAGON_DESC_STRLEN])
{
	if (!desc || !out)
		return dg_err(DRAGON_EINVAL, "dragon_desc_format: NULL argument");
	sodium_bin2hex(out, DRAGON_DESC_STRLEN, desc, DRAGON_DESC_SIZE);
	return DRAGON_OK;
}

DRAGON_API int dragon_desc_parse(const char *str, void *desc)
{
	const char *end = NULL;
	size_t n, got = 0;

	if (!str || !desc)
		return dg_err(DRAGON_EINVAL, "dragon_desc_parse: NULL argument");
	n = strnlen(str, 2 * DRAGON_DESC_SIZE + 1);
	if (n != 2 * DRAGON_DESC_SIZE)
		return dg_err(DRAGON_EBADDESC, "printable descriptor has %zu characters, need %d",
			      n, 2 * DRAGON_DESC_SIZE);
	if (sodium_hex2bin(desc, DRAGON_DESC_SIZE, str, n, NULL, &got, &end) != 0 ||
	    got != DRAGON_DESC_SIZE || end != str + n)
		return dg_err(DRAGON_EBADDESC, "printable descriptor has a non-hex character at %td",
			      end ? end - str : 0);
	return DRAGON_OK;
}

static _Atomic int64_t local_node = -1;

uint32_t dg_local_node(void)
{
	int64_t v = atomic_load_explicit(&local_node, memory_order_relaxed);

	if (v < 0) {
		const char *s = getenv("DRAGON_NODE_INDEX");
		char *end;
		unsigned long u = 0;

		if (s && *s) {
			errno = 0;
			u = strtoul(s, &end, 10);
			if (errno || *end || u > UINT32_MAX)
				u = 0;
		}
		v = (int64_t)u;
		atomic_store(&local_node, v);
	}
	return (uint32_t)v;
}

void dg_set_local_node(uint32_t node)
{
	atomic_store(&local_node, (int64_t)node);
}

int dg_robust_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	if (rc) {
		errno = rc;
		return dg_err_sys("pthread_mutex_init (robust, shared)");
	}
	return DRAGON_OK;
}

int dg_robust_lock(pthread_mutex_t *m, int *recovered)
{
	int rc = pthread_mutex_lock(m);

	*recovered = 0;
	if (rc == EOWNERDEAD) {
		/* The caller repairs the state it guards before anyone else sees it. */
		*recovered = 1;
		pthread_mutex_consistent(m);
		return DRAGON_OK;
	}
	if (rc) {
		errno = rc;
		return dg_err_sys("lock of a shared object");
	}
	return DRAGON_OK;
}

void dg_deadline_start(struct dg_deadline *d, long timeout_us)
{
	d->forever = timeout_us < 0;
	clock_gettime(CLOCK_MONOTONIC, &d->at);
	if (d->forever)
		return;
	d->at.tv_sec += timeout_us / 1000000;
	d->at.tv_nsec += (timeout_us % 1000000) * 1000;
	if (d->at.tv_nsec >= 1000000000L) {
		d->at.tv_sec++;
		d->at.tv_nsec -= 1000000000L;
	}
}

int dg_deadline_left(const struct dg_deadline *d, struct timespec *left)
{
	struct timespec now;

	if (d->forever) {
		left->tv_sec = INT_MAX;
		left->tv_nsec = 0;
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	left->tv_sec = d->at.tv_sec - now.tv_sec;
	left->tv_nsec = d->at.tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_sec--;
		left->tv_nsec += 1000000000L;
	}
	if (left->tv_sec < 0 || (left->tv_sec == 0 && left->tv_nsec == 0))
		return 0;
	return 1;
}

static long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

static int spin_until(_Atomic uint32_t *seq, uint32_t seen, const struct dg_deadline *dl,
		      long budget_ns)
{
	long start = budget_ns >= 0 ? now_ns() : 0;
	struct timespec left;

	for (unsigned i = 1;; i++) {
		if (atomic_load_explicit(seq, memory_order_acquire) != seen)
			return DRAGON_OK;
		dg_cpu_relax();
		if ((i & 255) == 0) {
			if (!dg_deadline_left(dl, &left))
				return DRAGON_ETIMEDOUT;
			if (budget_ns >= 0 && now_ns() - start > budget_ns)
				return DRAGON_EAGAIN;
		}
	}
}

int dg_wait_seq(_Atomic uint32_t *seq, uint32_t seen, _Atomic uint32_t *waiters,
		dragon_wait_mode_t mode, const struct dg_deadline *dl)
{
	struct timespec left;
	int rc;

	if (mode == DRAGON_WAIT_SPIN)
		return spin_until(seq, seen, dl, -1);
	if (mode != DRAGON_WAIT_IDLE) {
		rc = spin_until(seq, seen, dl, ADAPTIVE_SPIN_NS);
		if (rc != DRAGON_EAGAIN)
			return rc;
	}
	if (!dg_deadline_left(dl, &left))
		return DRAGON_ETIMEDOUT;
	/* Count ourselves before the last look, so a waker either sees us or we see its bump. */
	atomic_fetch_add(waiters, 1);
	if (atomic_load(seq) == seen)
		syscall(SYS_futex, (uint32_t *)seq, FUTEX_WAIT, seen, dl->forever ? NULL : &left,
			NULL, 0);
	atomic_fetch_sub(waiters, 1);
	return DRAGON_OK;
}

void dg_wake_seq(_Atomic uint32_t *seq, _Atomic uint32_t *waiters)
{
	atomic_fetch_add(seq, 1);
	if (atomic_load(waiters))
		syscall(SYS_futex, (uint32_t *)seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
