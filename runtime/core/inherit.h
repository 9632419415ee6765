/* runtime/core/inherit.h: close the descriptors a daemon inherited (slurmstepd's PMIx server socket, its parent's sockets). */
#ifndef DRAGON_CORE_INHERIT_H
#define DRAGON_CORE_INHERIT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dirent.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Close every descriptor from 3 up. Called first thing in a daemon's main(), before it opens
 * anything: what it holds then was inherited (Slurm's and its parent's sockets, which would
 * otherwise stay open, and in use by nobody, for the fabric's whole life). Standard input, output
 * and error stay. Kernels before 5.9 have no close_range: walk /proc/self/fd instead.
 */
static inline void dg_close_inherited(void)
{
	DIR *d;
	struct dirent *e;
	int fds[1024], n = 0, more = 1;

	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
	while (more && (d = opendir("/proc/self/fd"))) {
		more = 0;
		n = 0;
		while ((e = readdir(d))) {
			char *end;
			long fd = strtol(e->d_name, &end, 10);
			if (*end || e->d_name[0] == '.' || fd < 3 || fd == dirfd(d))
				continue;
			if (n == (int)(sizeof(fds) / sizeof(fds[0]))) {
				more = 1; /* closed after this round; look again */
				break;
			}
			fds[n++] = (int)fd;
		}
		closedir(d);
		for (int i = 0; i < n; i++)
			close(fds[i]);
	}
}

#endif
