/* dragon/init.h: joining and leaving a fabric, and what a member knows about itself. */
#ifndef DRAGON_INIT_H
#define DRAGON_INIT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Join the fabric this process runs in: connect to the node's local services, found through
 * the DRAGON_* environment the fabric gives every process it starts (DRAGON_LS_SOCKET, or
 * DRAGON_RUNTIME_DIR). A process started any other way joins too if it has that environment.
 * DRAGON_ENOTINIT if there is no fabric to join, DRAGON_EPEER if local services do not answer.
 * Calls nest: each dragon_init needs a dragon_finalize. Thread-safe after it returns.
 */
int dragon_init(void);

/* Leave the fabric. Objects created without `outlive` are released when the process exits. */
int dragon_finalize(void);

/* This process's id in the fabric (0 if the fabric did not start it). */
uint64_t dragon_puid(void);

/* Index of this node in the fabric and the number of nodes. */
unsigned dragon_node_index(void);
unsigned dragon_node_count(void);

/* The fabric's id (a short hex string); "" before dragon_init. */
const char *dragon_fabric_id(void);

#ifdef __cplusplus
}
#endif
#endif
