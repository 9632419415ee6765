/* runtime/core/channel_remote.h: the hook through which operations on another node's channel reach a transport. */
#ifndef DRAGON_RUNTIME_CHANNEL_REMOTE_H
#define DRAGON_RUNTIME_CHANNEL_REMOTE_H

#include <dragon/channel.h>

/*
 * A channel descriptor names the node the channel lives on. When that is not dg_local_node(),
 * dragon_channel_attach asks these operations (set by the transport agent's client code) for a
 * state, and every operation of the handle goes to them. Zero-copy sends of a remote channel
 * are carried as copies (the caller's allocation is freed after it is sent); recv_mem and peek
 * of a remote channel fail with DRAGON_ENOTSUP. Without an agent on this node, attaching a
 * remote channel fails with DRAGON_EPEER.
 */
struct dg_channel_remote_ops {
	int (*attach)(const dragon_channel_desc_t *desc, void **state);
	int (*detach)(void *state);
	int (*send)(void *state, const void *buf, size_t len, const dragon_wait_t *w);
	int (*recv)(void *state, void *buf, size_t cap, size_t *len, const dragon_wait_t *w);
	int (*poll)(void *state, unsigned events, unsigned *revents, const dragon_wait_t *w);
};

/*
 * Called once by a transport agent: what it sends into a channel (a message from another node,
 * an answer) marks the channel agent-fed until a process of this node sends into it, and
 * receivers in DRAGON_WAIT_ADAPTIVE then sleep at once instead of spinning. Such a message takes
 * tens of microseconds through two agents and the wire, longer than the adaptive spin: spinning
 * for it only took the CPU the agents needed (on 2 vCPUs, 53 us one way against 29 us).
 */
void dg_channel_fed_by_agent(void);

/* Replace the operations (tests); by default they are dg_ta_remote_ops. */
void dg_channel_set_remote_ops(const struct dg_channel_remote_ops *ops);

/* Through this node's transport agent (runtime/client/remote.c). */
extern const struct dg_channel_remote_ops dg_ta_remote_ops;

#endif
