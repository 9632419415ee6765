/* runtime/ddict/client.h: what the dictionary's client files share: a handle's state and the request path (client.c), used by lifecycle.c and ops.c. */
#ifndef DRAGON_RUNTIME_DDICT_CLIENT_H
#define DRAGON_RUNTIME_DDICT_CLIENT_H

#include "ddict/dd.h"

#define DEFAULT_BUDGET (64u << 20)
#define DEFAULT_TIMEOUT_MS 30000
#define ZC_PUT_MIN 4096u            /* from here a put on the manager's node goes through its pool */
#define BATCH_FLUSH (1u << 20)      /* a batch message carries about this much */
#define PROBE_MS 200                /* while waiting, check the manager is alive this often */
#define START_TIMEOUT_MS 60000

struct mgr {
	struct dd_minfo info;
	int known;  /* info is valid */
	dragon_channel_t *ch;
	int view_state; /* 0 not tried, 1 attached, -1 not possible */
	struct dd_shard view;
	/* batch being built */
	unsigned char *vals;
	size_t vlen, vcap;
	ProtobufCBinaryData *keys;
	uint64_t *vlens;
	size_t n, ncap;
};

struct parked {
	uint64_t seq;
	DdRep *rep;
	dragon_mem_t mem;
};

struct dragon_ddict {
	struct dd_desc desc;
	struct mgr *m;
	dragon_channel_t *rch;
	unsigned char rdesc[DRAGON_DESC_SIZE];
	uint64_t seq;
	int pin;
	int timeout_ms;
	unsigned node;
	int creator;
	dragon_gid_t *gids;
	unsigned ngids;
	char *name;
	int in_batch;
	uint64_t *bseq;      /* batch messages sent; those from bdone on are not yet acknowledged */
	unsigned *bmgr;
	size_t nb, nbcap, bdone;
	int brc;             /* the batch's first failure, and its text */
	char bmsg[1024];
	struct parked park[64];
	unsigned nparked;
};

/* lifecycle.c: look manager i's name up (waiting up to timeout_ms) and keep its description. */
int dd_lookup_manager(dragon_ddict_t *d, unsigned i, int timeout_ms);

/* client.c: handles, requests and answers, which manager holds a key. */
int dd_call(dragon_ddict_t *d, unsigned i, DdReq *q, const void *pl, size_t plen, int timeout_ms, DdRep **rep, dragon_mem_t *mem, const unsigned char **rpl, size_t *rplen);
int dd_check_key(const dragon_ddict_t *d, const void *key, size_t klen);
int dd_every(dragon_ddict_t *d, uint32_t op, const char *dir, int64_t *sum);
void dd_free_handle(dragon_ddict_t *d);
struct dd_shard *dd_mgr_view(dragon_ddict_t *d, unsigned i);
int dd_mname(const dragon_ddict_t *d, unsigned i, char *out, size_t cap);
int dd_new_handle(const struct dd_desc *hd, dragon_ddict_t **out);
void dd_release(DdRep *rep, dragon_mem_t *mem);
int dd_rep_rc(const DdRep *rep);
int dd_send_req(dragon_ddict_t *d, unsigned i, DdReq *q, const void *pl, size_t plen, uint64_t *seq);
int dd_simple(dragon_ddict_t *d, unsigned i, DdReq *q, int64_t *num);
unsigned dd_target(const dragon_ddict_t *d, const void *key, size_t klen);
int dd_wait_rep(dragon_ddict_t *d, unsigned i, uint64_t seq, int timeout_ms, DdRep **rep, dragon_mem_t *mem, const unsigned char **pl, size_t *plen);

#endif
