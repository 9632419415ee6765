/* tests/unit/tsan_remote_stub.c: the transport hook for the ThreadSanitizer build of test_channel, which links runtime/core alone. */
#include "config.h"

#include "core/channel_remote.h"
#include "core/err.h"

static int no_agent(const dragon_channel_desc_t *desc, void **state)
{
	(void)desc;
	(void)state;
	return dg_err(DRAGON_EPEER, "no transport agent is reachable (runtime/core alone)");
}

const struct dg_channel_remote_ops dg_ta_remote_ops = { .attach = no_agent };
