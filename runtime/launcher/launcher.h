/* runtime/launcher/launcher.h: what the launcher's files share: its exit codes, the session with local services, the three ways to a fabric, `dragon status`. */
#ifndef DRAGON_LAUNCHER_LAUNCHER_H
#define DRAGON_LAUNCHER_LAUNCHER_H

#include <signal.h>

/* Exit codes of the launcher itself, as env(1) and timeout(1) use them. */
#define EXIT_DRAGON 125
#define EXIT_NOEXEC 126
#define EXIT_NOTFOUND 127

/* main.c: NAME=VALUE entries PROG gets beside the fabric's environment (NULL-terminated). */
extern const char *launcher_extra_env[];

/* session.c: talking to the local services of a fabric. */
int launcher_dial_ls(const char *sock);
int launcher_take_signals(sigset_t *old);
int launcher_session(int fd, int sfd, char **argv, int label, int own, int *stopsig);
int launcher_exit_code(int status, int stopsig);

/* The three ways to a fabric (main.c picks one): run_local.c, run_join.c, run_alloc.c. */
int launcher_run_local(const char *basedir, int label, char **argv);
int launcher_run_join(const char *sock, int label, char **argv);
int launcher_run_alloc(const char *basedir, int label, char **argv);
int launcher_env_int(const char *name);

/* status.c: `dragon status`. */
int launcher_status(const char *basedir, int json);

#endif
