/* runtime/launcher/main.c: `dragon PROG [ARGS]` and `dragon status`: options, usage, finding PROG, and which of the three ways to a fabric. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher/launcher.h"

/* The interpreter the Python package was built for (configure's PYTHON) and where it is installed. */
#ifndef DRAGON_PYTHON
#define DRAGON_PYTHON "/usr/bin/python3"
#endif
#ifndef DRAGON_PYTHONDIR
#define DRAGON_PYTHONDIR ""
#endif

/* PYTHONPATH=... for PROG when joining a fabric whose local services have another environment. */
static char pythonpath_env[2 * PATH_MAX + 32];
const char *launcher_extra_env[2];

static const char usage[] =
	"Usage: dragon [OPTIONS] PROG [ARGS...]\n"
	"       dragon [OPTIONS] SCRIPT.py [ARGS...]\n"
	"       dragon [OPTIONS] -m MODULE [ARGS...]\n"
	"       dragon status [--json] [--runtime-dir DIR]\n"
	"\n"
	"Run PROG as a process of a Dragon fabric, forward the output of every process it starts,\n"
	"and exit with PROG's status. Which fabric:\n"
	"  - in a job step that has one (srun --dragon; DRAGON_LS_SOCKET is set): that one;\n"
	"  - on a node of a Slurm allocation of several nodes: a fresh one over all its nodes,\n"
	"    started as a job step (srun --overlap --mpi=pmix) and shut down when PROG ends;\n"
	"  - otherwise, or with --local: a fresh one on this machine.\n"
	"A fabric dragon started leaves nothing behind: processes, sockets, runtime directories\n"
	"and pools go with it.\n"
	"A PROG ending in .py, or a file that is not executable, runs under Python (" DRAGON_PYTHON "),\n"
	"the interpreter the dragon package was built for, with multiprocessing's start method\n"
	"\"dragon\" as its default (python3 -m dragon PROG); so does -m MODULE.\n"
	"\n"
	"Options:\n"
	"  -l, --label            prefix each output line with RANK/HOST: (like srun -l)\n"
	"  -m MODULE              run Python's MODULE as a script (python3 -m MODULE ARGS...)\n"
	"      --local            always start a fabric on this machine only\n"
	"      --runtime-dir DIR  where fabrics keep their sockets (default $XDG_RUNTIME_DIR/dragon\n"
	"                         or /tmp/dragon-UID)\n"
	"      --json             (status) print JSON\n"
	"  -h, --help             this text\n"
	"  -V, --version          the version\n"
	"\n"
	"Exit status: PROG's status (128+N if it died of signal N); 125 if dragon itself failed,\n"
	"126 if PROG is not executable, 127 if PROG was not found; 128+N if dragon was stopped\n"
	"by signal N (Ctrl-C: 130).\n"
	"Environment: DRAGON_DEBUG=1 logs every request of local services; DRAGON_PYTHON names\n"
	"another Python interpreter for scripts and -m.\n";

/*
 * Is PROG there to run: a path as given, else a name looked up in PATH? 0, or the launcher's
 * exit code after a message. Local services start it; this only fails early and clearly.
 */
static int resolve_prog(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];
	struct stat st;

	if (strchr(prog, '/')) {
		if (stat(prog, &st)) {
			fprintf(stderr, "dragon: %s: %s\n", prog, strerror(errno));
			return errno == ENOENT ? EXIT_NOTFOUND : EXIT_NOEXEC;
		}
		if (!S_ISREG(st.st_mode) || access(prog, X_OK)) {
			fprintf(stderr, "dragon: %s: not an executable file\n", prog);
			return EXIT_NOEXEC;
		}
		return 0;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)n, path, n ? "/" : "", prog);
		if (!stat(buf, &st) && S_ISREG(st.st_mode) && !access(buf, X_OK))
			return 0;
		path += n;
		if (*path == ':')
			path++;
	}
	fprintf(stderr, "dragon: %s: command not found\n", prog);
	return EXIT_NOTFOUND;
}

/* The Python interpreter for scripts: the one the dragon package was built for, unless told. */
static const char *python(void)
{
	const char *p = getenv("DRAGON_PYTHON");

	return p && *p ? p : DRAGON_PYTHON;
}

/* Does PROG name a Python script: it ends in .py, or it is a file that is not executable? */
static int is_script(const char *prog)
{
	size_t n = strlen(prog);
	struct stat st;

	if (n > 3 && !strcmp(prog + n - 3, ".py"))
		return 1;
	return strchr(prog, '/') && !stat(prog, &st) && S_ISREG(st.st_mode) && access(prog, X_OK);
}

/*
 * Make the dragon package importable by PROG: the build tree's python/ when this launcher runs
 * from a build tree (build/runtime/launcher/dragon), else the configured install directory
 * (which Debian's python3 does not search for a /usr/local prefix). It goes first on PYTHONPATH,
 * in our environment (a fabric we start inherits it) and in PROG's spawn request (a fabric we
 * join has its own environment).
 */
static void python_path(void)
{
	char self[PATH_MAX], dir[PATH_MAX + 32], probe[PATH_MAX + 64];
	const char *old = getenv("PYTHONPATH");
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	dir[0] = 0;
	if (n > 0) {
		self[n] = 0;
		/* .../runtime/launcher/dragon -> ... */
		for (int up = 0; up < 3 && (slash = strrchr(self, '/')); up++)
			*slash = 0;
		snprintf(probe, sizeof(probe), "%s/python/dragon/__init__.py", self);
		if (!access(probe, R_OK))
			snprintf(dir, sizeof(dir), "%s/python", self);
	}
	if (!dir[0])
		snprintf(dir, sizeof(dir), "%s", DRAGON_PYTHONDIR);
	if (!dir[0])
		return;
	snprintf(pythonpath_env, sizeof(pythonpath_env), "PYTHONPATH=%s%s%s", dir,
		 old && *old ? ":" : "", old && *old ? old : "");
	setenv("PYTHONPATH", pythonpath_env + strlen("PYTHONPATH="), 1);
	launcher_extra_env[0] = pythonpath_env;
}

/*
 * PROG's command line with the interpreter in front when it is a Python script or a module
 * (module: -m given): PYTHON -m dragon PROG ARGS (or -m dragon -m MODULE ARGS), so that the
 * dragon start method is multiprocessing's default and an unchanged program spreads over the
 * fabric. NULL after a message when the script is missing or memory runs out.
 */
static char **python_argv(char **argv, int argc, const char *module, int *rv)
{
	/* python -m dragon [-m MODULE] ARGS NULL */
	char **out = calloc((size_t)argc + 6, sizeof(*out));
	int k = 0;

	*rv = EXIT_DRAGON;
	if (!out) {
		fprintf(stderr, "dragon: out of memory\n");
		return NULL;
	}
	python_path();
	out[k++] = (char *)python();
	out[k++] = "-m";
	out[k++] = "dragon";
	if (module) {
		out[k++] = "-m";
		out[k++] = (char *)module;
	} else if (access(argv[0], R_OK)) {
		fprintf(stderr, "dragon: %s: %s\n", argv[0], strerror(errno));
		*rv = errno == ENOENT ? EXIT_NOTFOUND : EXIT_NOEXEC;
		free(out);
		return NULL;
	}
	for (int i = 0; i < argc; i++)
		out[k++] = argv[i];
	out[k] = NULL;
	return out;
}

static int run(const char *basedir, int label, int local, char **argv)
{
	const char *sock = getenv("DRAGON_LS_SOCKET");
	int rv;

	if ((rv = resolve_prog(argv[0])))
		return rv;
	if (local)
		return launcher_run_local(basedir, label, argv);
	if (sock && *sock)
		return launcher_run_join(sock, label, argv);
	/* On a node of a Slurm allocation of several nodes (not on the login node of salloc). */
	if (getenv("SLURM_JOB_ID") && getenv("SLURMD_NODENAME") &&
	    launcher_env_int("SLURM_JOB_NUM_NODES") > 1)
		return launcher_run_alloc(basedir, label, argv);
	return launcher_run_local(basedir, label, argv);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},    {"version", no_argument, NULL, 'V'},
		{"label", no_argument, NULL, 'l'},   {"runtime-dir", required_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},    {"local", no_argument, NULL, 'L'},
		{NULL, 0, NULL, 0}};
	const char *basedir = NULL, *module = NULL;
	int label = 0, json = 0, local = 0, c;

	/* Options end at PROG, or after -m MODULE: what follows is the module's (as with python3). */
	while (!module && (c = getopt_long(argc, argv, "+hVlm:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			printf("dragon %s\n", PACKAGE_VERSION);
			return 0;
		case 'l':
			label = 1;
			break;
		case 'r':
			basedir = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'L':
			local = 1;
			break;
		case 'm':
			module = optarg;
			break;
		default:
			fputs(usage, stderr);
			return EXIT_DRAGON;
		}
	}
	if (!module && optind >= argc) {
		fprintf(stderr, "dragon: no program given\n%s", usage);
		return EXIT_DRAGON;
	}
	if (!module && !strcmp(argv[optind], "status")) {
		optind++;
		while ((c = getopt_long(argc, argv, "+hj", opts, NULL)) != -1) {
			if (c == 'j')
				json = 1;
			else if (c == 'r')
				basedir = optarg;
			else if (c == 'h') {
				fputs(usage, stdout);
				return 0;
			} else {
				return EXIT_DRAGON;
			}
		}
		return launcher_status(basedir, json);
	}
	if (json) {
		fprintf(stderr, "dragon: --json applies to `dragon status`\n");
		return EXIT_DRAGON;
	}
	if (module || is_script(argv[optind])) {
		char **pargv = python_argv(argv + optind, argc - optind, module, &c);
		if (!pargv)
			return c;
		c = run(basedir, label, local, pargv);
		free(pargv);
		return c;
	}
	/* Any program may be a Python interpreter (`dragon python3 prog.py`) or start one: the
	 * package is importable by every process of the fabric, not only by scripts we recognise. */
	python_path();
	return run(basedir, label, local, argv + optind);
}
