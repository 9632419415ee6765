/* runtime/ls/objects.c: the node's pools and channels (create, attach, destroy; the node pool). */
#include "config.h"

#define _GNU_SOURCE 1
#include <event2/bufferevent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/err.h"
#include "core/shm.h"
#include "gs/gs.h"
#include "ls/ls_internal.h"

struct pool *ls_pool_find(struct ls *ls, uint64_t id)
{
	for (struct pool *p = ls->pools; p; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

void ls_send_pool(struct conn *c, uint64_t seq, struct pool *pl)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__PoolReply r = DRAGON__POOL_REPLY__INIT;
	int fd = bufferevent_getfd(c->bev);

	r.pool_id = pl->id;
	r.size = pl->size;
	m.seq = seq;
	m.body_case = DRAGON__MSG__BODY_POOL_REPLY;
	m.pool_reply = &r;
	/* The descriptor cannot queue in a bufferevent: write what is pending, then sendmsg. */
	ls_conn_drain(c);
	if (dg_wire_send(fd, &m, pl->fd))
		ls_log(c->ls, "sending pool %llu to pid %d: %s", (unsigned long long)pl->id,
		       (int)c->pid, dragon_errmsg());
}

void ls_pool_create(struct conn *c, uint64_t seq, const Dragon__PoolCreate *pc)
{
	struct ls *ls = c->ls;
	struct pool *pl;
	int fd;

	if (pc->size == 0 || pc->size > LS_POOL_MAX) {
		ls_reply_error(c, seq, DRAGON_EINVAL, "a pool's size is 1 byte to 1 TiB");
		return;
	}
	fd = memfd_create("dragon-pool", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		dg_err_sys("memfd_create");
		ls_reply_error(c, seq, DRAGON_ESYS, dragon_errmsg());
		return;
	}
	if (ftruncate(fd, (off_t)pc->size)) {
		dg_err_sys("sizing a pool of %llu bytes", (unsigned long long)pc->size);
		close(fd);
		ls_reply_error(c, seq, DRAGON_ENOSPACE, dragon_errmsg());
		return;
	}
	/* Clients map it shared; they must not be able to shrink it under another's feet. */
	fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
	pl = calloc(1, sizeof(*pl));
	if (!pl || (pc->name && *pc->name && !(pl->name = strdup(pc->name)))) {
		free(pl);
		close(fd);
		ls_reply_error(c, seq, DRAGON_ENOMEM, "pool record");
		return;
	}
	pl->id = ((uint64_t)ls->node_index << 48) | ls->next_pool++;
	pl->fd = fd;
	pl->size = pc->size;
	pl->owner = ls_owner_of(c);
	pl->outlive = pc->outlive;
	if (pl->name && ls->gs) {
		uint8_t desc[8];
		for (int i = 0; i < 8; i++)
			desc[i] = (uint8_t)(pl->id >> (8 * i));
		if (gs_name_put(ls->gs, pl->name, DRAGON__KIND__KIND_POOL, desc, 8, pl->owner,
				pl->outlive)) {
			ls_reply_error(c, seq, DRAGON_EEXIST, dragon_errmsg());
			close(fd);
			free(pl->name);
			free(pl);
			return;
		}
	}
	pl->next = ls->pools;
	ls->pools = pl;
	ls_send_pool(c, seq, pl);
}

/*
 * The node's pool, created on the first ChannelCreate (DRAGON_LS_POOL_MB, default 256 MiB; a
 * memfd is sparse). It is also listed among the node's pools, so a process attaches it through
 * local services (PoolAttach hands the memfd over the socket) even where /proc is closed to it.
 */
static int node_pool(struct ls *ls)
{
	const char *v = getenv("DRAGON_LS_POOL_MB");
	dragon_pool_attr_t pa = {.size = (size_t)(v && atoi(v) > 0 ? atoi(v) : 256) << 20};
	struct pool *pl;
	int rv;

	if (ls->node_pool)
		return DRAGON_OK;
	if ((rv = dragon_pool_create(&pa, &ls->node_pool)))
		return rv;
	pl = calloc(1, sizeof(*pl));
	/* Close-on-exec as the original: every process LS starts would otherwise hold the pool. */
	if (!pl || (pl->fd = fcntl(dragon_pool_fd(ls->node_pool), F_DUPFD_CLOEXEC, 3)) < 0) {
		free(pl);
		dragon_pool_destroy(ls->node_pool);
		ls->node_pool = NULL;
		return dg_err_sys("keeping the node pool");
	}
	pl->id = dragon_pool_id(ls->node_pool);
	pl->size = pa.size;
	pl->name = strdup("node");
	pl->outlive = 1;
	pl->next = ls->pools;
	ls->pools = pl;
	return DRAGON_OK;
}

void ls_channel_create(struct conn *c, uint64_t seq, const Dragon__ChannelCreate *cc)
{
	struct ls *ls = c->ls;
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__ChannelReply r = DRAGON__CHANNEL_REPLY__INIT;
	dragon_channel_attr_t attr = {.capacity = cc->capacity, .block_size = cc->block_size};
	struct lchan *lc;
	int rv;

	if (cc->capacity > (1u << 20) || cc->block_size > (1u << 20) || cc->wait > DRAGON_WAIT_IDLE) {
		ls_reply_error(c, seq, DRAGON_EINVAL,
			       "a channel holds up to 1048576 messages of up to "
			       "1 MiB inline, and waits in a mode 0 to 3");
		return;
	}
	attr.wait = (dragon_wait_mode_t)cc->wait;
	if (!(lc = calloc(1, sizeof(*lc)))) {
		ls_reply_error(c, seq, DRAGON_ENOMEM, "channel record");
		return;
	}
	if ((rv = node_pool(ls)) || (rv = dragon_channel_create(ls->node_pool, &attr, &lc->ch)) ||
	    (rv = dragon_channel_serialize(lc->ch, (dragon_channel_desc_t *)lc->desc))) {
		ls_reply_error(c, seq, rv, dragon_errmsg());
		if (lc->ch)
			dragon_channel_destroy(lc->ch);
		free(lc);
		return;
	}
	{
		struct dg_desc d;
		if (dg_desc_unpack(lc->desc, DG_DESC_CHANNEL, &d) == DRAGON_OK)
			lc->id = d.size;
	}
	lc->capacity = cc->capacity ? cc->capacity : 64;
	lc->owner = ls_owner_of(c);
	lc->outlive = cc->outlive;
	lc->next = ls->chans;
	ls->chans = lc;
	r.desc.data = lc->desc;
	r.desc.len = sizeof(lc->desc);
	m.seq = seq;
	m.body_case = DRAGON__MSG__BODY_CHANNEL_REPLY;
	m.channel_reply = &r;
	ls_conn_send(c, &m);
}

void ls_channel_destroy(struct conn *c, uint64_t seq, const Dragon__ChannelDestroy *cd)
{
	struct ls *ls = c->ls;

	struct dg_desc want, have;

	/* Descriptors of one channel differ between processes (each names its own handle on the
	 * pool): the channel is its pool and its place in it. */
	if (cd->desc.len == DRAGON_DESC_SIZE &&
	    dg_desc_unpack(cd->desc.data, DG_DESC_CHANNEL, &want) == DRAGON_OK)
		for (struct lchan **q = &ls->chans; *q; q = &(*q)->next)
			if (dg_desc_unpack((*q)->desc, DG_DESC_CHANNEL, &have) == DRAGON_OK &&
			    have.pool_id == want.pool_id && have.offset == want.offset &&
			    have.size == want.size) {
				struct lchan *lc = *q;
				*q = lc->next;
				dragon_channel_destroy(lc->ch);
				free(lc);
				ls_reply_ok(c, seq);
				return;
			}
	ls_reply_error(c, seq, DRAGON_ENOTFOUND,
		       "no channel of local services with that descriptor "
		       "on this node");
}
