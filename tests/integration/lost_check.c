/* tests/integration/lost_check.c: the two sides of a lost node for lostnode.bats: what the victim node holds, and what the survivors see once it is gone. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dragon/dragon.h>

static const char usage[] =
	"Usage: lost_check victim PREFIX SECONDS\n"
	"           on the node to be lost: register PREFIX.name, start a group PREFIX.group of\n"
	"           three 'sleep SECONDS' (one per node, owned by this process) and a 'sleep SECONDS'\n"
	"           on this node (prints 'victim puid P'), hold a channel registered as PREFIX.chan;\n"
	"           print 'victim ready'; sleep\n"
	"       lost_check survivor PREFIX SECONDS TIMEOUT_MS PUID\n"
	"           on a node that stays: start a group of three 'sleep SECONDS' (one per node),\n"
	"           attach PREFIX.chan, print 'survivor ready', then wait (TIMEOUT_MS) for process\n"
	"           PUID (in a thread) and for the group's member on the victim's node, wait for the\n"
	"           group, and report what is left of the victim's name, group and channel, and\n"
	"           where a new group goes; one line per check\n";

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "lost_check: %s: %s: %s\n", what, dragon_strerror(rc), dragon_errmsg());
	return 1;
}

static int victim(const char *prefix, const char *secs)
{
	const char *argv[] = {"sleep", secs, NULL};
	dragon_pool_attr_t pa = {.size = 1 << 20};
	dragon_channel_attr_t ca = {.capacity = 8};
	dragon_channel_desc_t d;
	dragon_pool_t *pool;
	dragon_channel_t *ch;
	dragon_gid_t gid;
	char name[128];
	int rc;

	snprintf(name, sizeof(name), "%s.name", prefix);
	if ((rc = dragon_name_register(name, DRAGON_NAME_USER, "victim", 7, 0)))
		return fail("register the name", rc);
	snprintf(name, sizeof(name), "%s.group", prefix);
	if ((rc = dragon_group_create(argv, 3, DRAGON_POLICY_ROUND_ROBIN, 0, NULL, name, &gid)))
		return fail("start the group", rc);
	{
		dragon_puid_t puid;
		if ((rc = dragon_process_create(argv, NULL, &puid)))
			return fail("start a process", rc);
		printf("victim puid %llu\n", (unsigned long long)puid);
	}
	snprintf(name, sizeof(name), "%s.chan", prefix);
	if ((rc = dragon_pool_create(&pa, &pool)) || (rc = dragon_channel_create(pool, &ca, &ch)) ||
	    (rc = dragon_channel_serialize(ch, &d)) ||
	    (rc = dragon_name_register(name, DRAGON_NAME_CHANNEL, &d, sizeof(d), 0)))
		return fail("make the channel", rc);
	printf("victim ready on node %u\n", dragon_node_index());
	fflush(stdout);
	sleep((unsigned)atoi(secs));
	return 0;
}

/* A wait for a process of the victim's node, under way when the node is lost. */
struct far_wait {
	dragon_puid_t puid;
	int timeout_ms, rc, status;
	double ms;
};

static void *wait_far(void *arg)
{
	struct far_wait *fw = arg;
	double t0 = now_ms();

	fw->rc = dragon_process_wait(fw->puid, fw->timeout_ms, &fw->status);
	fw->ms = now_ms() - t0;
	return NULL;
}

static int survivor(const char *prefix, const char *secs, int timeout_ms, dragon_puid_t far)
{
	struct far_wait fw = {.puid = far, .timeout_ms = timeout_ms, .status = -1};
	pthread_t th;
	const char *argv[] = {"sleep", secs, NULL};
	dragon_channel_desc_t d;
	dragon_wait_t w = {.timeout_us = (long)timeout_ms * 1000};
	dragon_channel_t *ch;
	dragon_gid_t gid, gid2;
	dragon_puid_t lost = 0;
	size_t len = sizeof(d);
	char name[128], buf[64];
	int rc, status = -1, worst = -1;
	double t0;

	snprintf(name, sizeof(name), "%s.chan", prefix);
	if ((rc = dragon_name_lookup(name, 10000, NULL, &d, &len)) || (rc = dragon_channel_attach(&d, &ch)))
		return fail("attach the victim's channel", rc);
	if ((rc = dragon_group_create(argv, 3, DRAGON_POLICY_ROUND_ROBIN, 0, NULL, NULL, &gid)))
		return fail("start the group", rc);
	if (pthread_create(&th, NULL, wait_far, &fw))
		return fail("start a thread", DRAGON_ESYS);
	printf("survivor ready on node %u\n", dragon_node_index());
	fflush(stdout);
	/* Every member sleeps long: the first to end is the one on the lost node (a puid carries
	 * its node in bits 48..61). */
	t0 = now_ms();
	rc = dragon_group_wait_any(gid, timeout_ms, &lost, &status);
	printf("group wait_any: %s puid-node %u status %d after %.0f ms\n", dragon_strerror(rc),
	       (unsigned)((lost >> 48) & 0x3fff), status, now_ms() - t0);
	pthread_join(th, NULL);
	printf("process wait under way: %s status %d after %.0f ms\n", dragon_strerror(fw.rc), fw.status,
	       fw.ms);
	t0 = now_ms();
	rc = dragon_process_wait(lost, timeout_ms, &status);
	printf("process wait: %s status %d after %.0f ms\n", dragon_strerror(rc), status, now_ms() - t0);
	rc = dragon_process_signal(lost, SIGTERM);
	printf("process signal: %s\n", dragon_strerror(rc));
	dragon_group_signal(gid, SIGTERM);
	t0 = now_ms();
	rc = dragon_group_wait_all(gid, timeout_ms, &worst);
	printf("group wait_all: %s worst %d after %.0f ms%s%s\n", dragon_strerror(rc), worst, now_ms() - t0,
	       rc ? ": " : "", rc ? dragon_errmsg() : "");
	snprintf(name, sizeof(name), "%s.name", prefix);
	len = sizeof(buf);
	rc = dragon_name_lookup(name, 0, NULL, buf, &len);
	printf("victim name: %s\n", dragon_strerror(rc));
	snprintf(name, sizeof(name), "%s.group", prefix);
	len = sizeof(buf);
	rc = dragon_name_lookup(name, 0, NULL, buf, &len);
	printf("victim group: %s\n", dragon_strerror(rc));
	t0 = now_ms();
	len = 0;
	rc = dragon_channel_recv(ch, buf, sizeof(buf), &len, &w);
	printf("victim channel recv: %s after %.0f ms\n", dragon_strerror(rc), now_ms() - t0);
	t0 = now_ms();
	rc = dragon_channel_send(ch, "x", 1, &(dragon_wait_t){.timeout_us = (long)timeout_ms * 1000,
							 .flags = DRAGON_WAIT_DEPOSITED});
	printf("victim channel send: %s after %.0f ms\n", dragon_strerror(rc), now_ms() - t0);
	rc = dragon_channel_send(ch, "x", 1, &w);
	printf("victim channel buffered send: %s\n", dragon_strerror(rc));
	/* A new group spreads over the nodes that are left. */
	if ((rc = dragon_group_create(argv, 4, DRAGON_POLICY_ROUND_ROBIN, 0, NULL, NULL, &gid2))) {
		printf("new group: %s: %s\n", dragon_strerror(rc), dragon_errmsg());
	} else {
		printf("new group: OK\n");
		dragon_group_signal(gid2, SIGTERM);
		rc = dragon_group_wait_all(gid2, timeout_ms, &worst);
		printf("new group wait_all: %s worst %d\n", dragon_strerror(rc), worst);
	}
	fflush(stdout);
	dragon_finalize();
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2 || ((strcmp(argv[1], "victim") || argc != 4) &&
			 (strcmp(argv[1], "survivor") || argc != 6))) {
		fputs(usage, stderr);
		return 2;
	}
	if ((rc = dragon_init()))
		return fail("dragon_init", rc);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "victim"))
		return victim(argv[2], argv[3]);
	return survivor(argv[2], argv[3], atoi(argv[4]), strtoull(argv[5], NULL, 10));
}
