/* spank/test_rundir.c: unit tests of the runtime directory's creation and removal (ownership, symlinks, idempotence). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <dragon/error.h>
#include "rundir.h"

struct fx {
	char top[64];  /* scratch directory of one test */
	char base[128]; /* the runtime_dir below it (not yet created) */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->top, sizeof(f->top), "/tmp/dg-rundir-XXXXXX");
	if (!mkdtemp(f->top))
		return -1;
	snprintf(f->base, sizeof(f->base), "%s/run/dragon", f->top);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->top);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void create_makes_private_directories(void **state)
{
	struct fx *f = *state;
	char path[256], want[256], err[256];
	struct stat st;

	assert_int_equal(dragon_rundir_create(f->base, getuid(), getgid(), 42, path, sizeof(path), err, sizeof(err)),
			 DRAGON_OK);
	snprintf(want, sizeof(want), "%s/%u/42", f->base, (unsigned)getuid());
	assert_string_equal(path, want);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(st.st_uid, getuid());
	/* Every step of the job calls it again. */
	assert_int_equal(dragon_rundir_create(f->base, getuid(), getgid(), 42, path, sizeof(path), err, sizeof(err)),
			 DRAGON_OK);
}

static void create_refuses_a_symlink(void **state)
{
	struct fx *f = *state;
	char path[256], udir[256], link[300], target[256], err[256];
	struct stat st;

	snprintf(udir, sizeof(udir), "%s/%u", f->base, (unsigned)getuid());
	assert_int_equal(dragon_rundir_create(f->base, getuid(), getgid(), 1, path, sizeof(path), err, sizeof(err)),
			 DRAGON_OK);
	snprintf(target, sizeof(target), "%s/elsewhere", f->top);
	assert_int_equal(mkdir(target, 0755), 0);
	snprintf(link, sizeof(link), "%s/7", udir);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(dragon_rundir_create(f->base, getuid(), getgid(), 7, path, sizeof(path), err, sizeof(err)),
			 DRAGON_EPERM);
	assert_non_null(strstr(err, "symlink"));
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
}

static void create_refuses_a_loose_directory(void **state)
{
	struct fx *f = *state;
	char path[256], udir[256], err[256];

	snprintf(udir, sizeof(udir), "%s/%u", f->base, (unsigned)getuid());
	assert_int_equal(dragon_rundir_create(f->base, getuid(), getgid(), 1, path, sizeof(path), err, sizeof(err)),
			 DRAGON_OK);
	assert_int_equal(chmod(udir, 0777), 0);
	assert_int_equal(dragon_rundir_create(f->base, getuid(), getgid(), 2, path, sizeof(path), err, sizeof(err)),
			 DRAGON_EPERM);
	assert_non_null(strstr(err, "0700"));
}

static void create_refuses_another_users_directory(void **state)
{
	struct fx *f = *state;
	char path[256], err[256];

	if (geteuid() != 0)
		skip();
	/* Made for uid 12345; a job of uid 12346 with the same name must not take it over. */
	assert_int_equal(dragon_rundir_create(f->base, 12345, 12345, 3, path, sizeof(path), err, sizeof(err)),
			 DRAGON_OK);
	char from[256], to[256];
	snprintf(from, sizeof(from), "%s/12345", f->base);
	snprintf(to, sizeof(to), "%s/12346", f->base);
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(dragon_rundir_create(f->base, 12346, 12346, 3, path, sizeof(path), err, sizeof(err)),
			 DRAGON_EPERM);
	assert_non_null(strstr(err, "uid 12345"));
}

static void create_rejects_relative_base(void **state)
{
	char path[256], err[256];

	(void)state;
	assert_int_equal(dragon_rundir_create("run/dragon", getuid(), getgid(), 1, path, sizeof(path), err, sizeof(err)),
			 DRAGON_EINVAL);
}

static void create_reports_short_path_buffer(void **state)
{
	struct fx *f = *state;
	char path[8], err[256];

	assert_int_equal(dragon_rundir_create(f->base, getuid(), getgid(), 1, path, sizeof(path), err, sizeof(err)),
			 DRAGON_ETOOBIG);
}

static void remove_deletes_the_tree_but_follows_no_symlink(void **state)
{
	struct fx *f = *state;
	char path[256], p[400], target[256], err[256];
	struct stat st;
	FILE *fp;

	assert_int_equal(dragon_rundir_create(f->base, getuid(), getgid(), 9, path, sizeof(path), err, sizeof(err)),
			 DRAGON_OK);
	snprintf(target, sizeof(target), "%s/keep", f->top);
	assert_int_equal(mkdir(target, 0755), 0);
	snprintf(p, sizeof(p), "%s/keep/precious", f->top);
	assert_non_null(fp = fopen(p, "w"));
	fclose(fp);
	snprintf(p, sizeof(p), "%s/a", path);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/a/b", path);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/a/b/file", path);
	assert_non_null(fp = fopen(p, "w"));
	fclose(fp);
	snprintf(p, sizeof(p), "%s/a/link", path);
	assert_int_equal(symlink(target, p), 0);
	assert_int_equal(dragon_rundir_remove(f->base, getuid(), 9, err, sizeof(err)), DRAGON_OK);
	assert_int_not_equal(lstat(path, &st), 0);
	snprintf(p, sizeof(p), "%s/keep/precious", f->top);
	assert_int_equal(stat(p, &st), 0);
	/* Idempotent: the epilog may run again. */
	assert_int_equal(dragon_rundir_remove(f->base, getuid(), 9, err, sizeof(err)), DRAGON_OK);
}

static void remove_of_a_symlinked_job_dir_removes_only_the_link(void **state)
{
	struct fx *f = *state;
	char path[256], udir[256], link[300], target[256], p[300], err[256];
	struct stat st;
	FILE *fp;

	assert_int_equal(dragon_rundir_create(f->base, getuid(), getgid(), 1, path, sizeof(path), err, sizeof(err)),
			 DRAGON_OK);
	snprintf(udir, sizeof(udir), "%s/%u", f->base, (unsigned)getuid());
	snprintf(target, sizeof(target), "%s/victim", f->top);
	assert_int_equal(mkdir(target, 0755), 0);
	snprintf(p, sizeof(p), "%s/victim/file", f->top);
	assert_non_null(fp = fopen(p, "w"));
	fclose(fp);
	snprintf(link, sizeof(link), "%s/5", udir);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(dragon_rundir_remove(f->base, getuid(), 5, err, sizeof(err)), DRAGON_OK);
	assert_int_not_equal(lstat(link, &st), 0);
	assert_int_equal(stat(p, &st), 0);
}

static void remove_of_nothing_is_ok(void **state)
{
	struct fx *f = *state;
	char err[256];

	assert_int_equal(dragon_rundir_remove(f->base, getuid(), 1, err, sizeof(err)), DRAGON_OK);
	assert_int_equal(dragon_rundir_remove("/nonexistent/dragon", getuid(), 1, err, sizeof(err)), DRAGON_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(create_makes_private_directories, setup, teardown),
		cmocka_unit_test_setup_teardown(create_refuses_a_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(create_refuses_a_loose_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(create_refuses_another_users_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(create_rejects_relative_base, setup, teardown),
		cmocka_unit_test_setup_teardown(create_reports_short_path_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(remove_deletes_the_tree_but_follows_no_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(remove_of_a_symlinked_job_dir_removes_only_the_link, setup, teardown),
		cmocka_unit_test_setup_teardown(remove_of_nothing_is_ok, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
