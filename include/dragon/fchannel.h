/* dragon/fchannel.h: channels kept by the node's local services, which any process of the fabric reaches by name or descriptor. */
#ifndef DRAGON_FCHANNEL_H
#define DRAGON_FCHANNEL_H

#include <dragon/channel.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
	DRAGON_FCHANNEL_OUTLIVE = 1, /* the channel (and its name) stay when the creator exits */
};

/*
 * Create a channel in this node's pool, kept by local services (needs dragon_init). Processes on
 * any node attach it by its descriptor (dragon_channel_serialize) or, when name is not NULL, by
 * name: it is registered as a DRAGON_NAME_CHANNEL with the same lifetime. attr may be NULL.
 * Without DRAGON_FCHANNEL_OUTLIVE the channel is destroyed when the creating process exits.
 * DRAGON_EEXIST if the name is taken (nothing is created then).
 */
int dragon_fchannel_create(const char *name, const dragon_channel_attr_t *attr, int flags,
			   dragon_channel_t **ch);

/* Attach the channel registered under name, on any node, waiting up to timeout_ms (< 0: forever). */
int dragon_fchannel_attach(const char *name, int timeout_ms, dragon_channel_t **ch);

/*
 * Destroy a channel of local services from a process of its node: operations of every process
 * fail with DRAGON_ECLOSED from then on. The handle is detached. The name, if any, stays until
 * removed (dragon_name_remove) or its owner exits.
 */
int dragon_fchannel_destroy(dragon_channel_t *ch);

#ifdef __cplusplus
}
#endif
#endif
