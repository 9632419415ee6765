/* runtime/ls/publish.c: rendezvous files in the runtime directory: job.key, ls.ready, ta.peers, ta.lost. */
#include "config.h"

#define _GNU_SOURCE 1
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "ls/ls_internal.h"
#include "../../pmix/boot.h"

/*
 * The runtime directory's files (and, for a directory of its own, the directory): removed as soon
 * as LS stops, before it waits for its processes, so that a SIGKILL during the grace period (Slurm
 * sends one KillWait seconds after SIGTERM) leaves nothing on disk. Idempotent.
 */
void ls_remove_files(struct ls *ls)
{
	static const char *const mine[] = {LS_READY_NAME, "job.key", "ta.peers", "ta.info", "ta.bell",
					   "ta.lost"};
	char path[PATH_MAX + 16];

	unlink(ls->sock_path);
	for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", ls->o->dir, mine[i]);
		unlink(path);
	}
	if (ls->o->remove_dir)
		rmdir(ls->o->dir);
}

/*
 * Write DIR/name whole or not at all (readers poll for it): fill writes it into a temporary file
 * that is then renamed into place.
 */
static int publish_file(struct ls *ls, const char *name, mode_t mode,
			int (*fill)(struct ls *, FILE *))
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
	FILE *f;
	int fd, rv;

	snprintf(path, sizeof(path), "%s/%s", ls->o->dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%d", ls->o->dir, name, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return dg_err_sys("create %s", tmp);
	if (!(f = fdopen(fd, "w"))) {
		close(fd);
		unlink(tmp);
		return dg_err_sys("open %s", tmp);
	}
	rv = fill(ls, f);
	if (fclose(f) && !rv)
		rv = dg_err_sys("write %s", tmp);
	if (!rv && rename(tmp, path))
		rv = dg_err_sys("rename to %s", path);
	if (rv)
		unlink(tmp);
	return rv;
}

/* The job key, for the node's transport agent (0600). Unbuffered: no copy of it stays behind in a
 * stdio buffer. */
static int fill_key(struct ls *ls, FILE *f)
{
	setvbuf(f, NULL, _IONBF, 0);
	if (fwrite(ls->key, 1, sizeof(ls->key), f) != sizeof(ls->key))
		return dg_err_sys("write the job key");
	return DRAGON_OK;
}

int ls_write_key(struct ls *ls)
{
	return publish_file(ls, "job.key", 0600, fill_key);
}

static int fill_ready(struct ls *ls, FILE *f)
{
	fprintf(f, "%s %u %u %d\n", ls->o->fabric_id, ls->node_index, ls->node_count, (int)getpid());
	return DRAGON_OK;
}

/* Everything is up: say so in DIR/ls.ready (see ls.h). */
int ls_write_ready(struct ls *ls)
{
	int rv = publish_file(ls, LS_READY_NAME, 0644, fill_ready);

	if (!rv)
		ls->ready = 1;
	return rv;
}

/* Second fence done: every agent's address into DIR/ta.peers. */
static int fill_peers(struct ls *ls, FILE *f)
{
	int rv = DRAGON_OK;

	for (uint32_t i = 0; i < ls->node_count && !rv; i++) {
		void *v = NULL;
		size_t len = 0;
		if ((rv = dg_boot_get(ls->boot, (int)i, "ta.addr", &v, &len)))
			break;
		if (!len || ((char *)v)[len - 1] || strchr(v, '\n') || strchr(v, ' '))
			rv = dg_err(DRAGON_EPROTO, "node %u published a malformed transport address", i);
		else if (!strcmp(v, "-"))
			; /* its agent failed to start: left out, so its channels fail at once */
		else
			fprintf(f, "%u %s\n", i, (char *)v);
		free(v);
	}
	return rv;
}

int ls_ta_write_peers(struct ls *ls)
{
	return publish_file(ls, "ta.peers", 0644, fill_peers);
}

static int fill_lost(struct ls *ls, FILE *f)
{
	for (uint32_t i = 0; i < ls->node_count; i++)
		if (ls->lost[i])
			fprintf(f, "%u\n", i);
	return DRAGON_OK;
}

/*
 * The fabric lost a node: DIR/ta.lost lists every lost node, and SIGUSR2 makes the node's agent
 * read it (it gives up on them, and processes' operations on their channels fail at once).
 */
int ls_ta_tell_lost(struct ls *ls)
{
	int rv;

	if (!ls->ta_pid)
		return DRAGON_OK;
	if ((rv = publish_file(ls, "ta.lost", 0600, fill_lost)))
		return rv;
	if (kill(ls->ta_pid, SIGUSR2))
		return dg_err_sys("signal the transport agent (pid %d)", (int)ls->ta_pid);
	return DRAGON_OK;
}
