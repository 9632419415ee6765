/* pmix/boot.h: the bootstrap interface through which local services learn their node and peers. */
#ifndef DRAGON_PMIX_BOOT_H
#define DRAGON_PMIX_BOOT_H

#include <stddef.h>

/*
 * One instance per local services process, modelled on flux's upmi: init tells the node's rank
 * and the node count; put publishes a key for this rank; fence makes every rank's puts visible;
 * get reads a key another rank put; abort ends the whole fabric; finalize releases the backend.
 * Backends: "single" (one node, no resource manager) and "pmix" (pmix/boot_pmix.c).
 */
struct dg_boot;

struct dg_boot_ops {
	const char *name;
	int (*init)(struct dg_boot *b);
	int (*put)(struct dg_boot *b, const char *key, const void *val, size_t len);
	int (*get)(struct dg_boot *b, int rank, const char *key, void **val, size_t *len);
	int (*fence)(struct dg_boot *b);
	void (*abort)(struct dg_boot *b, int status, const char *msg);
	void (*finalize)(struct dg_boot *b);
};

struct dg_boot {
	const struct dg_boot_ops *ops;
	int rank;
	int size;
	void *priv;
};

/* The PMIx backend (pmix/boot_pmix.c): one rank per node of a step started with srun --mpi=pmix. */
extern const struct dg_boot_ops dg_boot_pmix_ops;
/* The file backend (pmix/boot_file.c): ranks meet in DRAGON_BOOT_DIR (tests without Slurm). */
extern const struct dg_boot_ops dg_boot_file_ops;

/* Open the named backend (NULL or "single": one node; "pmix"; "file") and run its init. */
int dg_boot_open(const char *backend, struct dg_boot **out);
int dg_boot_put(struct dg_boot *b, const char *key, const void *val, size_t len);
/* *val is malloc'd and owned by the caller. DRAGON_ENOTFOUND if rank never put key. */
int dg_boot_get(struct dg_boot *b, int rank, const char *key, void **val, size_t *len);
int dg_boot_fence(struct dg_boot *b);
void dg_boot_abort(struct dg_boot *b, int status, const char *msg);
void dg_boot_close(struct dg_boot *b);

#endif
