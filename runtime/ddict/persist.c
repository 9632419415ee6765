/* runtime/ddict/persist.c: writing a shard to a file with a checksum, and reading it back only if the whole file checks out. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/err.h"
#include "core/le.h"
#include "ddict/dd.h"

/*
 * File layout (little-endian):
 *   header, 48 bytes: "DDSHARD1", u32 version (1), u32 index, u32 managers, u32 0,
 *                     u64 keys, u64 record bytes, u64 0
 *   records:          u32 klen, u64 vlen, key, value (repeated `keys` times)
 *   trailer:          BLAKE2b-256 of everything before it
 */
#define HDR_LEN 48
#define SUM_LEN 32
#define REC_HDR 12

void dd_shard_path(const char *dir, unsigned index, unsigned n, char *out, size_t cap)
{
	snprintf(out, cap, "%s/ddict-%u-of-%u.shard", dir, index, n);
}

struct writer {
	FILE *f;
	crypto_generichash_state st;
	uint64_t records, bytes;
	int err;
};

static void emit(struct writer *w, const void *p, size_t n)
{
	if (!n)
		return;
	crypto_generichash_update(&w->st, p, n);
	if (fwrite(p, 1, n, w->f) != n)
		w->err = 1;
}

int dd_shard_save(const struct dd_shard *s, const char *path)
{
	char tmp[4200];
	unsigned char hdr[HDR_LEN] = "DDSHARD1", sum[SUM_LEN], rh[REC_HDR];
	uint64_t *b = (uint64_t *)(s->base + s->h->buckets_off), recbytes = 0;
	struct writer w = { 0 };
	int fd;

	/* Sizes first: the header carries them, and it is hashed before the records. */
	for (uint64_t i = 0; i < s->h->nbuckets; i++)
		for (uint64_t off = b[i]; off; off = ((struct dd_entry *)(s->base + off))->next) {
			const struct dd_entry *e = (struct dd_entry *)(s->base + off);
			recbytes += REC_HDR + e->klen + e->vlen;
		}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return dg_err(DRAGON_EINVAL, "shard path too long: %s", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return dg_err_sys("persist: cannot create %s", tmp);
	w.f = fdopen(fd, "wb");
	if (!w.f) {
		close(fd);
		unlink(tmp);
		return dg_err_sys("persist: fdopen %s", tmp);
	}
	crypto_generichash_init(&w.st, NULL, 0, SUM_LEN);
	dg_le_put32(hdr + 8, 1);
	dg_le_put32(hdr + 12, s->h->index);
	dg_le_put32(hdr + 16, s->h->nmanagers);
	dg_le_put32(hdr + 20, 0);
	dg_le_put64(hdr + 24, s->h->count);
	dg_le_put64(hdr + 32, recbytes);
	dg_le_put64(hdr + 40, 0);
	emit(&w, hdr, HDR_LEN);
	for (uint64_t i = 0; i < s->h->nbuckets; i++)
		for (uint64_t off = b[i]; off; off = ((struct dd_entry *)(s->base + off))->next) {
			const struct dd_entry *e = (struct dd_entry *)(s->base + off);
			dg_le_put32(rh, e->klen);
			dg_le_put64(rh + 4, e->vlen);
			emit(&w, rh, REC_HDR);
			emit(&w, e->key, e->klen);
			emit(&w, s->base + e->val_off, e->vlen);
		}
	crypto_generichash_final(&w.st, sum, SUM_LEN);
	if (fwrite(sum, 1, SUM_LEN, w.f) != SUM_LEN)
		w.err = 1;
	if (fflush(w.f) || fsync(fileno(w.f)))
		w.err = 1;
	if (fclose(w.f))
		w.err = 1;
	if (w.err) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return dg_err_sys("persist: writing %s", path);
	}
	/* rename: a reader sees the old file or the whole new one, never a part. */
	if (rename(tmp, path)) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return dg_err_sys("persist: rename to %s", path);
	}
	return DRAGON_OK;
}

int dd_shard_load(struct dd_shard *s, const char *path)
{
	unsigned char *buf = NULL, sum[SUM_LEN];
	struct stat st;
	size_t len, pos;
	uint64_t keys, recbytes, need = 0;
	int fd, rc = DRAGON_OK;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return dg_err(DRAGON_ENOTFOUND, "restore: shard %s is missing", path);
		return dg_err_sys("restore: cannot open shard %s", path);
	}
	if (fstat(fd, &st)) {
		close(fd);
		return dg_err_sys("restore: stat %s", path);
	}
	len = (size_t)st.st_size;
	if (len < HDR_LEN + SUM_LEN) {
		close(fd);
		return dg_err(DRAGON_EBADDESC,
			      "restore: shard %s is truncated (%zu bytes, a shard has at least %d)",
			      path, len, HDR_LEN + SUM_LEN);
	}
	buf = malloc(len);
	if (!buf) {
		close(fd);
		return dg_err(DRAGON_ENOMEM, "restore: %zu bytes for %s", len, path);
	}
	for (pos = 0; pos < len;) {
		ssize_t r = read(fd, buf + pos, len - pos);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = dg_err_sys("restore: reading %s", path);
			goto out;
		}
		pos += (size_t)r;
	}
	if (memcmp(buf, "DDSHARD1", 8) || dg_le_get32(buf + 8) != 1) {
		rc = dg_err(DRAGON_EBADDESC, "restore: %s is not a dictionary shard (bad magic or version)",
			    path);
		goto out;
	}
	crypto_generichash(sum, SUM_LEN, buf, len - SUM_LEN, NULL, 0);
	if (sodium_memcmp(sum, buf + len - SUM_LEN, SUM_LEN)) {
		rc = dg_err(DRAGON_EBADDESC, "restore: shard %s is corrupt or truncated (checksum mismatch)",
			    path);
		goto out;
	}
	if (dg_le_get32(buf + 12) != s->h->index || dg_le_get32(buf + 16) != s->h->nmanagers) {
		rc = dg_err(DRAGON_EINVAL,
			    "restore: %s is shard %u of %u, this is manager %u of %u (restore needs as "
			    "many managers as persisted)",
			    path, dg_le_get32(buf + 12), dg_le_get32(buf + 16), s->h->index, s->h->nmanagers);
		goto out;
	}
	keys = dg_le_get64(buf + 24);
	recbytes = dg_le_get64(buf + 32);
	if (recbytes != len - HDR_LEN - SUM_LEN) {
		rc = dg_err(DRAGON_EBADDESC, "restore: shard %s: header says %llu record bytes, file has %zu",
			    path, (unsigned long long)recbytes, len - HDR_LEN - SUM_LEN);
		goto out;
	}
	/* Walk the records once to check them and the budget before changing the shard. */
	pos = HDR_LEN;
	for (uint64_t k = 0; k < keys; k++) {
		uint64_t kl, vl;
		if (len - SUM_LEN - pos < REC_HDR)
			goto bad;
		kl = dg_le_get32(buf + pos);
		vl = dg_le_get64(buf + pos + 4);
		pos += REC_HDR;
		if (kl > DD_KEY_MAX || kl > len - SUM_LEN - pos || vl > len - SUM_LEN - pos - kl)
			goto bad;
		pos += kl + vl;
		need += dd_charge(kl, vl);
	}
	if (pos != len - SUM_LEN)
		goto bad;
	if (need > s->h->budget) {
		rc = dg_err(DRAGON_ENOSPACE, "restore: shard %s holds %llu bytes, manager %u's budget is %llu",
			    path, (unsigned long long)need, s->h->index,
			    (unsigned long long)s->h->budget);
		goto out;
	}
	dd_shard_clear(s);
	pos = HDR_LEN;
	for (uint64_t k = 0; k < keys; k++) {
		uint64_t kl = dg_le_get32(buf + pos), vl = dg_le_get64(buf + pos + 4);
		const unsigned char *key = buf + pos + REC_HDR;
		rc = dd_shard_put(s, dragon_ddict_hash(key, kl), key, kl, key + kl, vl, NULL);
		if (rc) {
			char m[600];
			snprintf(m, sizeof(m), "%s", dragon_errmsg()); /* dg_err writes that buffer */
			dg_err(rc, "restore: shard %s: key %llu of %llu: %s", path,
			       (unsigned long long)k, (unsigned long long)keys, m);
			goto out;
		}
		pos += REC_HDR + kl + vl;
	}
	goto out;
bad:
	rc = dg_err(DRAGON_EBADDESC, "restore: shard %s: a record runs past the end", path);
out:
	free(buf);
	close(fd);
	return rc;
}
