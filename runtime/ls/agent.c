/* runtime/ls/agent.c: the node's transport agent dragon-ta: its start, its endpoint address and its stop. */
#include "config.h"

#define _GNU_SOURCE 1
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "launcher/libexec.h"
#include "ls/ls_internal.h"

/* Read the value of "key value" line `key` of a small file; DRAGON_ENOTFOUND if absent. */
static int read_keyed(const char *path, const char *key, char *out, size_t cap)
{
	char line[1024];
	size_t kl = strlen(key);
	FILE *f = fopen(path, "re");
	int rv = DRAGON_ENOTFOUND;

	if (!f)
		return DRAGON_ENOTFOUND;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, key, kl) && line[kl] == ' ' && strlen(line + kl + 1) < cap) {
			strcpy(out, line + kl + 1);
			rv = DRAGON_OK;
			break;
		}
	}
	fclose(f);
	return rv;
}

/*
 * A fabric of several nodes gets one transport agent per node, a child of LS (so it ends with
 * LS), reading the job key from DIR/job.key and its peers from DIR/ta.peers, which LS writes
 * after the second fence. The agent announces itself in DIR/ta.info: its endpoint address goes
 * through the bootstrap; processes find its gateway channel there (DRAGON_TA_INFO).
 */
/*
 * Started before the bootstrap's first fence: loading libfabric (and the provider libraries it
 * links) takes a good part of a second on some systems, time the fence would otherwise add to.
 * The agent waits for DIR/job.key, written after that fence, before it handles any frame.
 */
int ls_ta_spawn(struct ls *ls)
{
	char prog[PATH_MAX], info[PATH_MAX + 16], peers[PATH_MAX + 16], node[16];
	pid_t pid;

	snprintf(info, sizeof(info), "%s/ta.info", ls->o->dir);
	snprintf(peers, sizeof(peers), "%s/ta.peers", ls->o->dir);
	snprintf(node, sizeof(node), "%u", ls->node_index);
	unlink(info);
	snprintf(info, sizeof(info), "%s/ta.failed", ls->o->dir);
	unlink(info); /* a previous fabric's */
	if (dg_libexec_find("dragon-ta", "ta", prog, sizeof(prog))) {
		char why[512];
		/* dg_err formats into the buffer dragon_errmsg() returns: copy it first. */
		snprintf(why, sizeof(why), "%s", dragon_errmsg());
		return dg_err(DRAGON_ENOTFOUND, "%s; DRAGON_TA=off runs a fabric without channels "
					      "across nodes",
			      why);
	}
	pid = fork();
	if (pid < 0)
		return dg_err_sys("fork for the transport agent");
	if (pid == 0) {
		char *argv[] = {prog, "--node", node, "--dir", (char *)ls->o->dir, "--peer-file", peers,
				NULL};
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* PSM (linked by some libfabric builds) otherwise takes over SIGSEGV, SIGTERM and
		 * others at load and writes backtrace files into the working directory. */
		setenv("IPATH_NO_BACKTRACE", "1", 0);
		setenv("HFI_NO_BACKTRACE", "1", 0);
		execv(prog, argv);
		_exit(127);
	}
	ls->ta_pid = pid;
	return DRAGON_OK;
}

/* The agent announced its endpoint address in DIR/ta.info. */
int ls_ta_ready(struct ls *ls, char *addr, size_t cap)
{
	char info[PATH_MAX + 16];
	int ms = ls_startup_timeout_ms();
	pid_t pid = ls->ta_pid;

	snprintf(info, sizeof(info), "%s/ta.info", ls->o->dir);
	for (int waited = 0; waited < ms; waited += 5) {
		int st;
		if (read_keyed(info, "addr", addr, cap) == DRAGON_OK)
			return DRAGON_OK;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			char why[700] = "", failed[PATH_MAX + 16];
			FILE *f;
			ls->ta_pid = 0;
			/* its own reason (ta.failed, one line), so the job's tasks see it too */
			snprintf(failed, sizeof(failed), "%s/ta.failed", ls->o->dir);
			if ((f = fopen(failed, "re"))) {
				if (!fgets(why, sizeof(why), f))
					why[0] = 0;
				why[strcspn(why, "\n")] = 0;
				fclose(f);
				unlink(failed);
			}
			return dg_err(DRAGON_EPEER, "the transport agent dragon-ta exited (status %d) before "
						    "it was ready: %s",
				      WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
				      why[0] ? why : "its messages are above");
		}
		usleep(5000);
	}
	return dg_err(DRAGON_ETIMEDOUT, "the transport agent did not write %s within %d s", info,
		      ms / 1000);
}

/* DRAGON_TA=off: a fabric without channels across nodes (the rest works as usual). */
int ls_ta_disabled(void)
{
	const char *v = getenv("DRAGON_TA");

	return v && (!strcmp(v, "off") || !strcmp(v, "0"));
}

/*
 * Stop the agent before anything else is killed: SIGTERM lets it deliver what local processes
 * already handed it (it drains for at most DRAGON_TA_STOP_MS, 2 s); SIGKILL only if it does not
 * exit within a second more. Killed first (as every other child used to be), buffered sends that
 * had returned to their callers were lost.
 */
void ls_ta_stop(struct ls *ls)
{
	pid_t pid = ls->ta_pid;
	int st;

	if (!pid)
		return;
	ls->ta_pid = 0;
	kill(pid, SIGTERM);
	for (int waited = 0; waited < 3000; waited += 5) {
		if (waitpid(pid, &st, WNOHANG) != 0)
			return; /* exited (and reaped), or not our child any more */
		usleep(5000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}
