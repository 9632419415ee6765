# spank/local.mk: build rules for this area (included from the top Makefile.am).
# spank_dragon.so: the SPANK plugin, a libtool module exporting only what Slurm looks up.
spankplugin_LTLIBRARIES = spank/spank_dragon.la
spank_spank_dragon_la_SOURCES = spank/spank_dragon.c spank/plugin.h spank/local.c spank/allocator.c \
	spank/remote.c spank/epilog.c spank/options.c spank/options.h spank/rundir.c spank/rundir.h \
	spank/fabric.c spank/fabric.h spank/fail.c spank/fail.h
# dragon-ls is found in the installed libexec directory unless plugstack.conf says libexec_dir=.
spank_spank_dragon_la_CPPFLAGS = $(AM_CPPFLAGS) $(SLURM_CPPFLAGS) -DDRAGON_LIBEXECDIR='"$(libexecdir)"'
spank_spank_dragon_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared \
	-Wl,--version-script=$(srcdir)/spank/spank_dragon.map
EXTRA_spank_spank_dragon_la_DEPENDENCIES = $(srcdir)/spank/spank_dragon.map
EXTRA_DIST += spank/spank_dragon.map spank/test_exports.sh

check_PROGRAMS += spank/test_options
spank_test_options_SOURCES = spank/test_options.c spank/options.c spank/options.h
spank_test_options_CFLAGS = $(TEST_CFLAGS)
spank_test_options_LDADD = $(CMOCKA_LIBS)
TESTS += spank/test_options spank/test_exports.sh

check_PROGRAMS += spank/test_rundir
spank_test_rundir_SOURCES = spank/test_rundir.c spank/rundir.c spank/rundir.h spank/fail.c spank/fail.h
spank_test_rundir_CFLAGS = $(TEST_CFLAGS)
spank_test_rundir_LDADD = $(CMOCKA_LIBS)
TESTS += spank/test_rundir

check_PROGRAMS += spank/test_fabric
spank_test_fabric_SOURCES = spank/test_fabric.c spank/fabric.c spank/fabric.h spank/fail.c spank/fail.h spank/options.c spank/options.h
spank_test_fabric_CFLAGS = $(TEST_CFLAGS)
spank_test_fabric_LDADD = $(CMOCKA_LIBS)
TESTS += spank/test_fabric

# The plugin's manual page and the administrator's guide.
dist_man_MANS += docs/man/spank-dragon.8
EXTRA_DIST += docs/admin.md
