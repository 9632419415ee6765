/* tests/ddict/test_ddict.c: cmocka tests of the dictionary's parts without a fabric: hash, shard store, persistence, codec and request handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ddict/dd.h"

static dragon_pool_t *pool;
static struct dd_shard sh;
static char dir[64];

static int setup(void **state)
{
	dragon_pool_attr_t a = { 32u << 20, 0 };
	(void)state;
	assert_int_equal(dragon_pool_create(&a, &pool), DRAGON_OK);
	assert_int_equal(dd_shard_create(pool, 4u << 20, 1, 3, &sh), DRAGON_OK);
	snprintf(dir, sizeof(dir), "/tmp/ddict-unit.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	dd_shard_free(&sh);
	dragon_pool_destroy(pool);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static int put(struct dd_shard *s, const char *k, const void *v, size_t vl)
{
	return dd_shard_put(s, dragon_ddict_hash(k, strlen(k)), k, strlen(k), v, vl, NULL);
}

static const unsigned char *get(struct dd_shard *s, const char *k, size_t *vl)
{
	struct dd_entry *e;
	if (dd_shard_find(s, dragon_ddict_hash(k, strlen(k)), k, strlen(k), &e))
		return NULL;
	*vl = e->vlen;
	return dd_shard_value(s, e);
}

/* The hash is BLAKE2b-64 read little-endian: these are Python's hashlib values. */
static void hash_matches_python_and_spreads(void **state)
{
	unsigned per[4] = { 0 };
	char k[32];
	(void)state;
	assert_true(dragon_ddict_hash("", 0) == 0xb4b2797457a0a6e4ull);
	assert_true(dragon_ddict_hash("hello", 5) == 0x7d34e501a8edb6a7ull);
	assert_true(dragon_ddict_hash("key-12345", 9) == 0x3ef3493de1c1ce93ull);
	for (int i = 0; i < 40000; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		per[dragon_ddict_hash(k, strlen(k)) % 4]++;
	}
	for (int m = 0; m < 4; m++)
		assert_in_range(per[m], 9500, 10500);
}

static void store_put_get_replace_delete(void **state)
{
	const unsigned char *v;
	size_t vl;
	unsigned char big[10000];
	(void)state;
	dd_shard_clear(&sh);
	assert_int_equal(put(&sh, "a", "one", 3), DRAGON_OK);
	assert_int_equal(put(&sh, "", "empty key", 9), DRAGON_OK);
	assert_int_equal(put(&sh, "z", "", 0), DRAGON_OK);
	memset(big, 7, sizeof(big));
	assert_int_equal(put(&sh, "big", big, sizeof(big)), DRAGON_OK); /* own allocation */
	assert_int_equal(sh.h->count, 4);
	assert_non_null(v = get(&sh, "a", &vl));
	assert_int_equal(vl, 3);
	assert_memory_equal(v, "one", 3);
	assert_non_null(v = get(&sh, "", &vl));
	assert_memory_equal(v, "empty key", 9);
	assert_non_null(get(&sh, "z", &vl));
	assert_int_equal(vl, 0);
	assert_non_null(v = get(&sh, "big", &vl));
	assert_int_equal(vl, sizeof(big));
	assert_memory_equal(v, big, sizeof(big));
	uint64_t used = sh.h->used;
	assert_int_equal(put(&sh, "a", "uno!", 4), DRAGON_OK); /* replace */
	assert_int_equal(sh.h->count, 4);
	assert_non_null(v = get(&sh, "a", &vl));
	assert_memory_equal(v, "uno!", 4);
	assert_true(sh.h->used == used);
	assert_int_equal(dd_shard_del(&sh, dragon_ddict_hash("a", 1), "a", 1), DRAGON_OK);
	assert_int_equal(dd_shard_del(&sh, dragon_ddict_hash("a", 1), "a", 1), DRAGON_ENOTFOUND);
	assert_null(get(&sh, "a", &vl));
	assert_int_equal(sh.h->count, 3);
	dd_shard_clear(&sh);
	assert_int_equal(sh.h->count, 0);
	assert_true(sh.h->used == 0);
}

/* A put past the budget fails, names the manager and its use, and changes nothing. */
static void store_budget_refuses_whole(void **state)
{
	static unsigned char v[256 << 10];
	char k[32];
	int i, rc = DRAGON_OK;
	(void)state;
	dd_shard_clear(&sh);
	for (i = 0; i < 100 && rc == DRAGON_OK; i++) {
		snprintf(k, sizeof(k), "v%d", i);
		memset(v, i, sizeof(v));
		rc = put(&sh, k, v, sizeof(v));
	}
	assert_int_equal(rc, DRAGON_ENOSPACE);
	assert_non_null(strstr(dragon_errmsg(), "manager 1"));
	assert_non_null(strstr(dragon_errmsg(), "bytes used"));
	uint64_t count = sh.h->count, used = sh.h->used;
	assert_true(used <= sh.h->budget);
	/* replacing an existing key with a too-large value keeps the old value */
	memset(v, 0x55, sizeof(v));
	static unsigned char huge[4u << 20];
	assert_int_equal(put(&sh, "v0", huge, sizeof(huge)), DRAGON_ENOSPACE);
	size_t vl;
	const unsigned char *p = get(&sh, "v0", &vl);
	assert_non_null(p);
	assert_int_equal(vl, sizeof(v));
	assert_int_equal(p[0], 0);
	assert_true(sh.h->count == count && sh.h->used == used);
	dd_shard_clear(&sh);
}

static int count_key(void *arg, const struct dd_entry *e)
{
	unsigned char *seen = arg;
	char k[16] = { 0 };
	assert_int_equal(e->klen, 6);
	memcpy(k, e->key + 1, 5);
	seen[atoi(k)]++;
	return 0;
}

static int count_key_chunked(void *arg, const struct dd_entry *e)
{
	count_key(arg, e);
	return 1; /* stop after this bucket */
}

static void store_grows_and_iterates_every_key_once(void **state)
{
	static unsigned char seen[30000];
	char k[32];
	(void)state;
	dd_shard_clear(&sh);
	for (int i = 0; i < 30000; i++) {
		snprintf(k, sizeof(k), "k%05d", i);
		assert_int_equal(put(&sh, k, &i, sizeof(i)), DRAGON_OK);
	}
	assert_true(sh.h->nbuckets >= 30000);
	for (int i = 0; i < 30000; i += 997) {
		size_t vl;
		snprintf(k, sizeof(k), "k%05d", i);
		const unsigned char *p = get(&sh, k, &vl);
		assert_non_null(p);
		assert_memory_equal(p, &i, sizeof(i));
	}
	uint64_t cur = 0;
	memset(seen, 0, sizeof(seen));
	dd_shard_keys(&sh, &cur, count_key, seen);
	assert_true(cur == UINT64_MAX);
	for (int i = 0; i < 30000; i++)
		assert_int_equal(seen[i], 1);
	/* the same in chunks, going on from the cursor */
	memset(seen, 0, sizeof(seen));
	cur = 0;
	unsigned chunks = 0;
	while (cur != UINT64_MAX) {
		dd_shard_keys(&sh, &cur, count_key_chunked, seen);
		chunks++;
	}
	assert_true(chunks > 100);
	for (int i = 0; i < 30000; i++)
		assert_int_equal(seen[i], 1);
	dd_shard_clear(&sh);
}

/* A read-only view attached from the header's descriptor finds what the manager stored. */
static void store_view_reads_in_place(void **state)
{
	dragon_mem_desc_t md;
	struct dd_shard v;
	size_t vl;
	(void)state;
	dd_shard_clear(&sh);
	assert_int_equal(put(&sh, "seen", "from the view", 13), DRAGON_OK);
	assert_int_equal(dragon_mem_serialize(&sh.hdr_mem, &md), DRAGON_OK);
	assert_int_equal(dd_shard_view(&md, &v), DRAGON_OK);
	const unsigned char *p = get(&v, "seen", &vl);
	assert_non_null(p);
	assert_memory_equal(p, "from the view", 13);
	dragon_pool_detach(v.pool);
	dd_shard_clear(&sh);
}

static void fill(struct dd_shard *s, int n)
{
	char k[32], v[100];
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "p%d", i);
		memset(v, 'a' + i % 26, sizeof(v));
		assert_int_equal(put(s, k, v, (size_t)(i % 100)), DRAGON_OK);
	}
}

static void persist_round_trip(void **state)
{
	char path[256];
	struct dd_shard other;
	(void)state;
	dd_shard_clear(&sh);
	fill(&sh, 5000);
	dd_shard_path(dir, 1, 3, path, sizeof(path));
	assert_int_equal(dd_shard_save(&sh, path), DRAGON_OK);
	assert_int_equal(dd_shard_create(pool, 4u << 20, 1, 3, &other), DRAGON_OK);
	assert_int_equal(put(&other, "stale", "x", 1), DRAGON_OK);
	assert_int_equal(dd_shard_load(&other, path), DRAGON_OK);
	assert_int_equal(other.h->count, 5000);
	size_t vl;
	assert_null(get(&other, "stale", &vl)); /* restore replaces, it does not merge */
	for (int i = 0; i < 5000; i++) {
		char k[32];
		snprintf(k, sizeof(k), "p%d", i);
		const unsigned char *p = get(&other, k, &vl);
		assert_non_null(p);
		assert_int_equal(vl, (size_t)(i % 100));
		for (size_t j = 0; j < vl; j++)
			assert_int_equal(p[j], 'a' + i % 26);
	}
	dd_shard_free(&other);
}

static void persist_refuses_bad_files_and_names_them(void **state)
{
	char path[256], cmd[1024];
	struct dd_shard other;
	struct stat st;
	(void)state;
	dd_shard_clear(&sh);
	fill(&sh, 300);
	dd_shard_path(dir, 1, 3, path, sizeof(path));
	assert_int_equal(dd_shard_save(&sh, path), DRAGON_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(dd_shard_create(pool, 4u << 20, 1, 3, &other), DRAGON_OK);
	assert_int_equal(put(&other, "keep", "me", 2), DRAGON_OK);

	/* truncated */
	snprintf(cmd, sizeof(cmd), "cp %s %s.t && truncate -s %lld %s.t", path, path,
		 (long long)st.st_size - 100, path);
	assert_int_equal(system(cmd), 0);
	char tpath[300];
	snprintf(tpath, sizeof(tpath), "%s.t", path);
	assert_int_equal(dd_shard_load(&other, tpath), DRAGON_EBADDESC);
	assert_non_null(strstr(dragon_errmsg(), tpath));
	/* one byte changed in the middle */
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	fseek(f, st.st_size / 2, SEEK_SET);
	int c = fgetc(f);
	fseek(f, st.st_size / 2, SEEK_SET);
	fputc(c ^ 0x20, f);
	fclose(f);
	assert_int_equal(dd_shard_load(&other, path), DRAGON_EBADDESC);
	assert_non_null(strstr(dragon_errmsg(), path));
	assert_non_null(strstr(dragon_errmsg(), "corrupt"));
	/* missing */
	char mpath[300];
	dd_shard_path(dir, 2, 3, mpath, sizeof(mpath));
	assert_int_equal(dd_shard_load(&other, mpath), DRAGON_ENOTFOUND);
	assert_non_null(strstr(dragon_errmsg(), "ddict-2-of-3.shard"));
	/* too short to be a shard */
	snprintf(cmd, sizeof(cmd), "printf DDSHARD1 > %s", mpath);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(dd_shard_load(&other, mpath), DRAGON_EBADDESC);
	/* another manager's shard */
	struct dd_shard third;
	char opath[256];
	assert_int_equal(dd_shard_create(pool, 1u << 20, 0, 3, &third), DRAGON_OK);
	dd_shard_path(dir, 0, 3, opath, sizeof(opath));
	assert_int_equal(dd_shard_save(&third, opath), DRAGON_OK);
	assert_int_equal(dd_shard_load(&other, opath), DRAGON_EINVAL);
	assert_non_null(strstr(dragon_errmsg(), "shard 0 of 3"));
	dd_shard_free(&third);
	/* none of that touched the shard */
	size_t vl;
	assert_int_equal(other.h->count, 1);
	assert_non_null(get(&other, "keep", &vl));
	dd_shard_free(&other);
}

/* ---- the request handler, driven with encoded messages ---- */

static unsigned char last[1 << 16];
static size_t last_len;
static unsigned replies;

static void grab(void *arg, const unsigned char *desc, const void *msg, size_t len)
{
	(void)arg;
	(void)desc;
	replies++;
	last_len = len < sizeof(last) ? len : sizeof(last);
	memcpy(last, msg, last_len);
}

static unsigned char rdesc[DRAGON_DESC_SIZE];

static void send(struct dd_server *s, DdReq *q, const void *pl, size_t plen)
{
	unsigned char *b;
	size_t n;
	q->reply.data = rdesc;
	q->reply.len = sizeof(rdesc);
	q->node = 99; /* not the manager's node: values come inline */
	assert_int_equal(dd_encode(&q->base, pl, plen, &b, &n), DRAGON_OK);
	dd_serve(s, b, n);
	free(b);
}

static DdRep *reply(const unsigned char **pl)
{
	DdRep *r;
	size_t plen;
	assert_int_equal(dd_decode_rep(last, last_len, &r, pl, &plen), DRAGON_OK);
	return r;
}

static void serve_requests(void **state)
{
	struct dd_server s = { 0 };
	const unsigned char *pl;
	DdRep *r;
	(void)state;
	dd_shard_clear(&sh);
	s.shard = sh;
	s.reply = grab;
	snprintf(s.name, sizeof(s.name), "manager 1 (node 0)");

	DdReq q = DD_REQ__INIT;
	q.op = DD_OP_PUT;
	q.seq = 7;
	q.key.data = (uint8_t *)"k";
	q.key.len = 1;
	q.vlen = 5;
	send(&s, &q, "value", 5);
	r = reply(&pl);
	assert_int_equal(r->seq, 7);
	assert_int_equal(r->rc, 0);
	dd_rep__free_unpacked(r, NULL);

	DdReq g = DD_REQ__INIT;
	g.op = DD_OP_GET;
	g.seq = 8;
	g.key = q.key;
	send(&s, &g, NULL, 0);
	r = reply(&pl);
	assert_int_equal(r->rc, 0);
	assert_int_equal(r->vlen, 5);
	assert_memory_equal(pl, "value", 5);
	dd_rep__free_unpacked(r, NULL);

	/* a put whose announced length is not the payload's */
	q.vlen = 9;
	send(&s, &q, "value", 5);
	r = reply(&pl);
	assert_int_equal(r->rc, DRAGON_EPROTO);
	dd_rep__free_unpacked(r, NULL);

	/* batch of three, then a counter */
	DdReq b = DD_REQ__INIT;
	ProtobufCBinaryData keys[3] = { { 2, (uint8_t *)"b1" }, { 2, (uint8_t *)"b2" },
					{ 2, (uint8_t *)"b3" } };
	uint64_t vlens[3] = { 1, 2, 3 };
	b.op = DD_OP_BATCH;
	b.n_keys = 3;
	b.keys = keys;
	b.n_vlens = 3;
	b.vlens = vlens;
	send(&s, &b, "abbccc", 6);
	r = reply(&pl);
	assert_int_equal(r->rc, 0);
	assert_int_equal(r->num, 3);
	dd_rep__free_unpacked(r, NULL);
	assert_int_equal(sh.h->count, 4);
	vlens[2] = 4; /* runs past the payload: refused whole */
	send(&s, &b, "abbccc", 6);
	r = reply(&pl);
	assert_int_equal(r->rc, DRAGON_EPROTO);
	dd_rep__free_unpacked(r, NULL);

	DdReq f = DD_REQ__INIT;
	f.op = DD_OP_FETCH_ADD;
	f.key.data = (uint8_t *)"ctr";
	f.key.len = 3;
	f.delta = 5;
	send(&s, &f, NULL, 0);
	r = reply(&pl);
	assert_int_equal(r->num, 0);
	dd_rep__free_unpacked(r, NULL);
	f.delta = -2;
	send(&s, &f, NULL, 0);
	r = reply(&pl);
	assert_int_equal(r->num, 5);
	dd_rep__free_unpacked(r, NULL);
	f.key = q.key; /* "k" holds 5 bytes: not a counter */
	send(&s, &f, NULL, 0);
	r = reply(&pl);
	assert_int_equal(r->rc, DRAGON_EINVAL);
	dd_rep__free_unpacked(r, NULL);

	/* a waiter is answered by the put of its key, not before */
	DdReq w = DD_REQ__INIT;
	w.op = DD_OP_WAIT;
	w.seq = 50;
	w.key.data = (uint8_t *)"later";
	w.key.len = 5;
	w.timeout_ms = 60000;
	unsigned before = replies;
	send(&s, &w, NULL, 0);
	assert_int_equal(replies, before);
	q.key = w.key;
	q.vlen = 1;
	q.seq = 51;
	send(&s, &q, "x", 1);
	assert_int_equal(replies, before + 2);
	/* the waiter's answer came first, then the put's */
	w.seq = 52;
	w.timeout_ms = 1;
	w.key.data = (uint8_t *)"never";
	send(&s, &w, NULL, 0);
	usleep(5000);
	dd_serve_expire(&s);
	r = reply(&pl);
	assert_int_equal(r->seq, 52);
	assert_int_equal(r->rc, DRAGON_ETIMEDOUT);
	dd_rep__free_unpacked(r, NULL);

	/* frozen: writes refused, reads served */
	DdReq z = DD_REQ__INIT;
	z.op = DD_OP_FREEZE;
	send(&s, &z, NULL, 0);
	assert_int_equal(sh.h->frozen, 1);
	q.seq = 60;
	send(&s, &q, "x", 1);
	r = reply(&pl);
	assert_int_equal(r->rc, DRAGON_EPERM);
	dd_rep__free_unpacked(r, NULL);
	send(&s, &g, NULL, 0);
	r = reply(&pl);
	assert_int_equal(r->rc, 0);
	dd_rep__free_unpacked(r, NULL);
	z.op = DD_OP_UNFREEZE;
	send(&s, &z, NULL, 0);
	assert_int_equal(sh.h->frozen, 0);

	/* garbage is dropped without an answer (there is nowhere to send it) */
	before = replies;
	dd_serve(&s, "garbage!", 8);
	dd_serve(&s, NULL, 0);
	unsigned char junk[64];
	memset(junk, 0xff, sizeof(junk));
	dd_serve(&s, junk, sizeof(junk));
	assert_int_equal(replies, before);
	free(s.waiters);
	dd_shard_clear(&sh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hash_matches_python_and_spreads),
		cmocka_unit_test(store_put_get_replace_delete),
		cmocka_unit_test(store_budget_refuses_whole),
		cmocka_unit_test(store_grows_and_iterates_every_key_once),
		cmocka_unit_test(store_view_reads_in_place),
		cmocka_unit_test(persist_round_trip),
		cmocka_unit_test(persist_refuses_bad_files_and_names_them),
		cmocka_unit_test(serve_requests),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
