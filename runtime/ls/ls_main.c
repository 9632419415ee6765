/* runtime/ls/ls_main.c: dragon-ls, local services as a daemon of its own (one per node, e.g. from a Slurm fabric step). */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dragon/error.h>

#include "core/inherit.h"
#include "launcher/rundir.h"
#include "ls/ls.h"

static const char usage[] =
	"Usage: dragon-ls --dir DIR [--fabric-id ID] [--boot BACKEND]\n"
	"       dragon-ls --base BASE --fabric-id ID [--boot BACKEND]\n"
	"Run local services of one node: serve DIR/" LS_SOCK_NAME " until SIGTERM or SIGINT.\n"
	"DIR must exist, belong to you and be closed to others (0700); with --base, DIR is\n"
	"BASE/ID, created here (0700, BASE too if missing) and removed at exit. The node's index and peers\n"
	"come from the bootstrap BACKEND (default: single, a one-node fabric). Processes started by\n"
	"it, or started otherwise with DRAGON_LS_SOCKET=DIR/" LS_SOCK_NAME ", join the fabric.\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
					     {"fabric-id", required_argument, NULL, 'f'},
					     {"boot", required_argument, NULL, 'b'},
					     {"base", required_argument, NULL, 'B'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct ls_opts o = {.listen_fd = -1, .ctl_fd = -1, .fabric_id = "local"};
	struct dg_rundir rd;
	const char *base = NULL;
	struct stat st;
	int c, rv;

	/* Nothing of slurmstepd's (its PMIx server socket) or of our starter's stays open with us. */
	dg_close_inherited();
	while ((c = getopt_long(argc, argv, "d:f:b:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o.dir = optarg;
			break;
		case 'f':
			o.fabric_id = optarg;
			break;
		case 'b':
			o.boot = optarg;
			break;
		case 'B':
			base = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (base && !o.dir) {
		/* One directory per fabric on each node (the base must be node-local). */
		if (!strcmp(o.fabric_id, "local") || strchr(o.fabric_id, '/')) {
			fputs("dragon-ls: --base needs a --fabric-id without '/'\n", stderr);
			return 2;
		}
		if (dg_rundir_create(base, o.fabric_id, &rd)) {
			fprintf(stderr, "dragon-ls: %s\n", dragon_errmsg());
			return 1;
		}
		o.dir = rd.dir;
		o.remove_dir = 1;
		rv = ls_run(&o) ? 1 : 0;
		dg_rundir_remove(&rd);
		return rv;
	}
	if (!o.dir || base) {
		fputs(usage, stderr);
		return 2;
	}
	if (lstat(o.dir, &st) || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		fprintf(stderr, "dragon-ls: %s must be an existing directory of yours, mode 0700\n",
			o.dir);
		return 2;
	}
	return ls_run(&o) ? 1 : 0;
}
