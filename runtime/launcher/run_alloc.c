/* runtime/launcher/run_alloc.c: a fabric started as a job step (srun) over the nodes of a Slurm allocation, for PROG's lifetime. */
#include "config.h"

#define _GNU_SOURCE 1
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/env.h"
#include "core/err.h"
#include "launcher/launcher.h"
#include "launcher/libexec.h"
#include "launcher/rundir.h"
#include "ls/ls.h"


int launcher_env_int(const char *name)
{
	const char *v = getenv(name);

	return v ? atoi(v) : 0;
}

/* Keep a variable for the fabric step? Not the plugin's, PMIx's or a fabric's own. */
static int scrubbed(const char *e)
{
	static const char *const keep[] = {"DRAGON_DEBUG=",	    "DRAGON_STARTUP_TIMEOUT=", "DRAGON_NODE_TIMEOUT=",
					   "DRAGON_TA",		    "DRAGON_LIBEXECDIR=",
					   "DRAGON_LS_BIND=",	    NULL};

	for (int i = 0; keep[i]; i++)
		if (!strncmp(e, keep[i], strlen(keep[i])))
			return 0;
	return !strncmp(e, "DRAGON_", 7) || !strncmp(e, "PMIX_", 5) ||
	       !strncmp(e, "SLURM_SPANK_", 12) || !strncmp(e, "_SLURM_SPANK_", 13) ||
	       !strncmp(e, "SPANK_", 6);
}

/*
 * Inside a Slurm allocation without the plugin: start the fabric as a step over every node of the
 * job (one dragon-ls per node, PMIx wire-up), join it on this node, run PROG, and shut it down.
 */
int launcher_run_alloc(const char *basedir, int label, char **argv)
{
	char fabric_id[40], base[PATH_MAX], sock[PATH_MAX + 64], ready[PATH_MAX + 64], ls[PATH_MAX],
		nodes[16];
	uint8_t rnd[4];
	int sfd = -1, fd = -1, status = -1, stopsig = 0, timeout_ms,
	    nn = launcher_env_int("SLURM_JOB_NUM_NODES");
	sigset_t old;
	pid_t step;
	size_t ne = 0;
	char **envp;
	extern char **environ;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd) || dg_rundir_base(basedir, base, sizeof(base)) ||
	    dg_libexec_find("dragon-ls", "ls", ls, sizeof(ls))) {
		fprintf(stderr, "dragon: %s\n", dragon_errmsg());
		return EXIT_DRAGON;
	}
	snprintf(fabric_id, sizeof(fabric_id), "job%s-%02x%02x%02x%02x", getenv("SLURM_JOB_ID"), rnd[0],
		 rnd[1], rnd[2], rnd[3]);
	snprintf(sock, sizeof(sock), "%s/%s/%s", base, fabric_id, LS_SOCK_NAME);
	snprintf(nodes, sizeof(nodes), "%d", nn);
	for (char **e = environ; *e; e++)
		ne++;
	if (!(envp = calloc(ne + 2, sizeof(char *)))) {
		fprintf(stderr, "dragon: out of memory\n");
		return EXIT_DRAGON;
	}
	ne = 0;
	for (char **e = environ; *e; e++)
		if (!scrubbed(*e))
			envp[ne++] = *e;
	/* Marks the step so the plugin, if a node has it, leaves it alone. */
	envp[ne++] = "DRAGON_FABRIC_STEP=1";
	if ((sfd = launcher_take_signals(&old)) < 0) {
		free(envp);
		return EXIT_DRAGON;
	}
	fflush(NULL);
	step = fork();
	if (step < 0) {
		fprintf(stderr, "dragon: fork: %s\n", strerror(errno));
		free(envp);
		close(sfd);
		return EXIT_DRAGON;
	}
	if (step == 0) {
		/* No --cpu-bind: one task per node is bound to the node's whole grant, which LS
		 * divides itself; and clusters without task/affinity warn about the option. */
		char *sargv[] = {"srun", "--overlap", "--mpi=pmix", "-N", nodes, "--ntasks-per-node=1",
				 "--kill-on-bad-exit=0", "--no-kill", "--job-name=dragon-fabric", "--quiet", ls,
				 "--base", base, "--fabric-id", fabric_id, "--boot", "pmix", NULL};
		/* Its own process group: the terminal's Ctrl-C is ours to turn into a shutdown. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvpe("srun", sargv, envp);
		fprintf(stderr, "dragon: cannot run srun: %s\n", strerror(errno));
		_exit(EXIT_NOTFOUND);
	}
	free(envp);
	timeout_ms = DG_STARTUP_TIMEOUT_MS();
	snprintf(ready, sizeof(ready), "%s/%s/%s", base, fabric_id, LS_READY_NAME);
	for (int waited = 0; fd < 0; waited += 10) {
		int st;
		/* Ready, not merely listening: the head node says so once every node joined it. */
		if (access(ready, F_OK) == 0 && (fd = launcher_dial_ls(sock)) >= 0)
			break;
		if (waitpid(step, &st, WNOHANG) == step) {
			fprintf(stderr, "dragon: the fabric step ended before it was ready (%s %d); see "
					"the messages above\n",
				WIFEXITED(st) ? "status" : "signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			close(sfd);
			return EXIT_DRAGON;
		}
		if (waited >= timeout_ms) {
			fprintf(stderr, "dragon: local services did not appear at %s within %d s "
					"(DRAGON_STARTUP_TIMEOUT)\n",
				sock, timeout_ms / 1000);
			break;
		}
		usleep(10000);
	}
	if (fd >= 0) {
		status = launcher_session(fd, sfd, argv, label, 1, &stopsig);
		close(fd);
	}
	/* The services stop when node 0's does; srun then ends. Bounded, then by force. */
	for (int waited = 0;; waited += 10) {
		int st;
		pid_t r = waitpid(step, &st, WNOHANG);
		if (r == step || (r < 0 && errno != EINTR))
			break;
		if (waited == 10000 || waited == 15000)
			kill(step, waited == 10000 ? SIGTERM : SIGKILL);
		usleep(10000);
	}
	close(sfd);
	return launcher_exit_code(status, stopsig);
}
