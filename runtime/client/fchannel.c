/* runtime/client/fchannel.c: channels created and kept by local services (ChannelCreate), found by name from any node. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <dragon/dragon.h>
#include <dragon/fchannel.h>

#include "core/err.h"
#include "client/client.h"
#include "core/shm.h"

/* Ask the channel's node's local services to destroy it. */
static int destroy_request(const dragon_channel_desc_t *desc)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__ChannelDestroy d = DRAGON__CHANNEL_DESTROY__INIT;

	d.desc.data = (uint8_t *)desc->bytes;
	d.desc.len = sizeof(desc->bytes);
	m.body_case = DRAGON__MSG__BODY_CHANNEL_DESTROY;
	m.channel_destroy = &d;
	return dg_client_call(&m, NULL, NULL);
}

DRAGON_API int dragon_fchannel_create(const char *name, const dragon_channel_attr_t *attr, int flags,
				      dragon_channel_t **ch)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__ChannelCreate c = DRAGON__CHANNEL_CREATE__INIT;
	dragon_channel_desc_t desc;
	int rv;

	if (!ch)
		return dg_err(DRAGON_EINVAL, "ch is NULL");
	*ch = NULL;
	if (attr) {
		c.capacity = attr->capacity;
		c.block_size = attr->block_size;
		c.wait = (uint32_t)attr->wait;
	}
	c.outlive = !!(flags & DRAGON_FCHANNEL_OUTLIVE);
	m.body_case = DRAGON__MSG__BODY_CHANNEL_CREATE;
	m.channel_create = &c;
	if ((rv = dg_client_call(&m, &rep, NULL)))
		return rv;
	if (rep->body_case != DRAGON__MSG__BODY_CHANNEL_REPLY ||
	    rep->channel_reply->desc.len != sizeof(desc.bytes)) {
		dg_msg_free(rep);
		return dg_err(DRAGON_EPROTO, "local services answered a ChannelCreate with %s",
			      dg_msg_name(rep));
	}
	memcpy(desc.bytes, rep->channel_reply->desc.data, sizeof(desc.bytes));
	dg_msg_free(rep);
	if (name && (rv = dragon_name_register(name, DRAGON_NAME_CHANNEL, &desc, sizeof(desc),
					       c.outlive ? DRAGON_NAME_OUTLIVE : 0)))
		goto undo;
	if ((rv = dragon_channel_attach(&desc, ch)))
		goto undo;
	return DRAGON_OK;
undo:
	{
		/* Keep the first failure's message; the channel must not linger unnamed. */
		char why[512];
		snprintf(why, sizeof(why), "%s", dragon_errmsg());
		destroy_request(&desc);
		return dg_err(rv, "%s", why);
	}
}

DRAGON_API int dragon_fchannel_attach(const char *name, int timeout_ms, dragon_channel_t **ch)
{
	enum dragon_name_kind kind;
	dragon_channel_desc_t desc;
	size_t len = sizeof(desc);
	int rv;

	if (!name || !ch)
		return dg_err(DRAGON_EINVAL, "name or ch is NULL");
	if ((rv = dragon_name_lookup(name, timeout_ms, &kind, &desc, &len)))
		return rv;
	if (kind != DRAGON_NAME_CHANNEL || len != sizeof(desc))
		return dg_err(DRAGON_EINVAL, "'%s' names no channel", name);
	return dragon_channel_attach(&desc, ch);
}

DRAGON_API int dragon_fchannel_destroy(dragon_channel_t *ch)
{
	dragon_channel_desc_t desc;
	int rv;

	if (!ch)
		return dg_err(DRAGON_EINVAL, "ch is NULL");
	if ((rv = dragon_channel_serialize(ch, &desc)) || (rv = destroy_request(&desc)))
		return rv;
	return dragon_channel_detach(ch);
}
