/* runtime/core/channel_internal.h: channel internals for tests: a census of slot states that repairs what dead owners hold. */
#ifndef DRAGON_RUNTIME_CHANNEL_INTERNAL_H
#define DRAGON_RUNTIME_CHANNEL_INTERNAL_H

#include <stdint.h>

#include <dragon/channel.h>

struct dg_channel_audit {
	uint32_t empty;      /* free for a sender */
	uint32_t full;       /* a published message */
	uint32_t holes;      /* a dead sender's slot, skipped by the next receiver */
	uint32_t held_live;  /* CLAIMED or TAKING by a process that is alive */
	uint32_t repaired;   /* CLAIMED or TAKING by a dead process: repaired by this audit */
};

/* Look at every slot; repair those a dead process holds (as a waiter on them would). */
int dg_channel_audit(dragon_channel_t *ch, struct dg_channel_audit *a);

/*
 * For tests of crash repair only: claim the next send slot (and write half a message, and die
 * before advancing tail), or take the oldest message, and _exit(0) there, as a process
 * SIGKILLed at that moment would.
 */
void dg_channel_test_die_claiming(dragon_channel_t *ch) __attribute__((noreturn));
void dg_channel_test_die_taking(dragon_channel_t *ch) __attribute__((noreturn));

#endif
