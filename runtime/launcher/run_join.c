/* runtime/launcher/run_join.c: PROG in the fabric of the job step it runs in (DRAGON_LS_SOCKET). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "launcher/launcher.h"

/* Inside a job step with a fabric (the Slurm plugin set DRAGON_LS_SOCKET): run PROG in it. */
int launcher_run_join(const char *sock, int label, char **argv)
{
	sigset_t old;
	int fd, sfd, status, stopsig = 0;

	if ((fd = launcher_dial_ls(sock)) < 0) {
		fprintf(stderr, "dragon: cannot reach this job's fabric at %s: %s\n", sock,
			strerror(errno));
		return EXIT_DRAGON;
	}
	if ((sfd = launcher_take_signals(&old)) < 0) {
		close(fd);
		return EXIT_DRAGON;
	}
	status = launcher_session(fd, sfd, argv, label, 0, &stopsig);
	close(fd);
	close(sfd);
	return launcher_exit_code(status, stopsig);
}
