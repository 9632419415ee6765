/* tests/fuzz/fuzz_rendezvous.c: libFuzzer target of the runtime directory's rendezvous files: ls.ready, ls.failed, ls.ended (the SPANK plugin's readers) and ta.peers (the transport agent's). */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dragon/error.h>
#include "../../spank/fabric.h"
#include "ta/ta_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void put(const char *name, const uint8_t *data, size_t size)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd))
		abort();
}

static void cleanup(void)
{
	char path[128];
	static const char *const names[] = {"ls.ready", "ls.failed", "ls.ended", "ta.peers"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* The same bytes as each of the three files; what a reader accepts must be what it promises. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static dg_ta ta;
	struct dragon_fabric_ready r;
	char why[512];

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/dev/shm/dragon-fuzz-rdv.%d", (int)getpid());
		if (mkdir(dir, 0700))
			abort();
		atexit(cleanup);
		snprintf(ta.peer_file, sizeof(ta.peer_file), "%s/ta.peers", dir);
	}
	put("ls.ready", data, size);
	if (dragon_fabric_read_ready(dir, &r) == DRAGON_OK &&
	    (r.node_index >= r.node_count || r.pid <= 0 || !memchr(r.fabric_id, 0, sizeof(r.fabric_id))))
		abort();
	put("ls.failed", data, size);
	if (dragon_fabric_read_failed(dir, 1, why, sizeof(why)) == DRAGON_OK)
		for (const char *c = why; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				abort();
	put("ls.ended", data, size);
	if (dragon_fabric_read_left(dir, 1, why, sizeof(why)) == DRAGON_OK)
		for (const char *c = why; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				abort();
	put("ta.peers", data, size);
	ta.npeers = 0;
	ta.peer_mtime.tv_sec = ta.peer_mtime.tv_nsec = 0;
	if (ta_peer_file_load(&ta) == DRAGON_OK)
		for (size_t i = 0; i < ta.npeers; i++)
			if (ta.peers[i].addrlen == 0 || ta.peers[i].addrlen > TA_ADDR_MAX)
				abort();
	return 0;
}
