/* spank/spank_dragon.c: the SPANK entry points of spank_dragon.so; each switches on spank_context() to a module. */
#include <stdlib.h>
#include <string.h>

#include <dragon/error.h>
#include "plugin.h"

SPANK_PLUGIN(dragon, 1);

struct dragon_spank dragon_spank_state;

/* Option callbacks only record: Slurm may call them more than once (srun, then again for
 * the job's options in slurmstepd), and validation happens in init_post_opt. */
static int record_option(int val, const char *optarg, int remote)
{
	struct dragon_spank *st = &dragon_spank_state;
	char *copy = NULL;

	(void)val;
	(void)remote;
	/* Slurm 22.05 hands a bare --dragon on to the sruns of a batch script or salloc as
	 * SLURM_SPANK__SLURM_SPANK_OPTION_dragon_dragon=(null), so the callback then gets the
	 * literal text "(null)": it means "no value", not a key=value list. */
	if (optarg && !strcmp(optarg, "(null)"))
		optarg = NULL;
	if (optarg && !(copy = strdup(optarg))) {
		slurm_error(DG_LOG "out of memory recording --dragon");
		return -1;
	}
	free(st->option_value);
	st->option_value = copy;
	st->option_seen = true;
	return 0;
}

static struct spank_option dragon_option = {
	.name = "dragon",
	.arginfo = "key=value,...",
	.usage = "[dragon] run the job in a Dragon runtime (keys: transport=PROVIDER, startup_timeout=SECONDS, node_timeout=SECONDS)",
	.has_arg = 2,
	.val = 0,
	.cb = record_option,
};

static bool context_uses_option(spank_context_t ctx)
{
	return ctx == S_CTX_LOCAL || ctx == S_CTX_REMOTE || ctx == S_CTX_ALLOCATOR;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	struct dragon_spank *st = &dragon_spank_state;
	spank_context_t ctx = spank_context();
	char err[256];
	spank_err_t rc;

	if (!context_uses_option(ctx))
		return 0;
	dragon_spank_opts_init(&st->opts);
	if (dragon_spank_parse_conf(&st->opts, ac, av, err, sizeof(err)) != DRAGON_OK) {
		slurm_error(DG_LOG "plugstack.conf: %s", err);
		return -1;
	}
	/* A spank_options table is not read in allocator context: register explicitly everywhere. */
	rc = spank_option_register(sp, &dragon_option);
	if (rc != ESPANK_SUCCESS) {
		slurm_error(DG_LOG "cannot register --dragon: %s", spank_strerror(rc));
		return -1;
	}
	return 0;
}

/* The user's DRAGON_* variables: srun's and sbatch's own environment, the job's in slurmstepd.
 * One buffer will do: the parser uses each value before it reads the next. */
static const char *env_get(const char *name, void *arg)
{
	static char buf[256];
	spank_t sp = arg;

	if (!sp)
		return getenv(name);
	return spank_getenv(sp, name, buf, sizeof(buf)) == ESPANK_SUCCESS ? buf : NULL;
}

/* Apply the user's environment, then the recorded --dragon value, to the settings; an invalid one
 * is an error naming the variable or the key. */
static int resolve(spank_t sp, struct dragon_spank *st)
{
	char err[256];

	if (dragon_spank_parse_env(&st->opts, env_get, spank_context() == S_CTX_REMOTE ? sp : NULL,
				   err, sizeof(err)) != DRAGON_OK) {
		slurm_error(DG_LOG "%s", err);
		return -1;
	}
	if (!st->option_seen)
		return 0;
	if (dragon_spank_parse_option(&st->opts, st->option_value, err, sizeof(err)) != DRAGON_OK) {
		slurm_error(DG_LOG "--dragon: %s", err);
		return -1;
	}
	return 0;
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	struct dragon_spank *st = &dragon_spank_state;
	spank_context_t ctx = spank_context();

	(void)ac;
	(void)av;
	if (!context_uses_option(ctx))
		return 0;
	if (resolve(sp, st) != 0)
		return -1;
	switch (ctx) {
	case S_CTX_LOCAL:
		return dragon_local_init_post_opt(sp, st);
	case S_CTX_ALLOCATOR:
		return dragon_allocator_init_post_opt(sp, st);
	case S_CTX_REMOTE:
		return dragon_remote_init_post_opt(sp, st);
	default:
		return 0;
	}
}

/* srun, once the step exists and before it is launched: the first srun --dragon of a job starts
 * the job's fabric step. */
int slurm_spank_local_user_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	if (spank_context() != S_CTX_LOCAL)
		return 0;
	return dragon_local_user_init(sp, &dragon_spank_state);
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	if (spank_context() != S_CTX_REMOTE)
		return 0;
	return dragon_remote_task_init(sp, &dragon_spank_state);
}

/* slurm_spank_init is not called before the job epilog: it gets the plugstack.conf arguments itself. */
int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	struct dragon_spank *st = &dragon_spank_state;
	char err[256];

	if (spank_context() != S_CTX_JOB_SCRIPT)
		return 0;
	dragon_spank_opts_init(&st->opts);
	if (dragon_spank_parse_conf(&st->opts, ac, av, err, sizeof(err)) != DRAGON_OK) {
		/* Failing the epilog would drain the node: log and leave the directory. */
		slurm_error(DG_LOG "plugstack.conf: %s", err);
		return 0;
	}
	return dragon_epilog(sp, st);
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	free(dragon_spank_state.option_value);
	dragon_spank_state.option_value = NULL;
	dragon_spank_state.option_seen = false;
	return 0;
}
