# runtime/launcher/local.mk: the `dragon` launcher, the runtime directory and helper-program lookup it shares with local services.
runtime_libdragon_impl_la_SOURCES += \
	runtime/launcher/rundir.c runtime/launcher/rundir.h \
	runtime/launcher/libexec.c runtime/launcher/libexec.h

# The launcher links libdragon statically: it forks local services from its own image.
bin_PROGRAMS += runtime/launcher/dragon
runtime_launcher_dragon_SOURCES = runtime/launcher/main.c runtime/launcher/launcher.h \
	runtime/launcher/session.c runtime/launcher/run_local.c runtime/launcher/run_join.c \
	runtime/launcher/run_alloc.c runtime/launcher/status.c
runtime_launcher_dragon_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(PROTOBUF_C_CFLAGS)
# Python scripts run under the interpreter the package is built for, with the package importable.
runtime_launcher_dragon_CPPFLAGS = $(AM_CPPFLAGS) -DDRAGON_PYTHON='"$(PYTHON)"' -DDRAGON_PYTHONDIR='"$(pythondir)"' 
runtime_launcher_dragon_LDADD = runtime/libdragon_impl.la $(JANSSON_LIBS)
dist_man_MANS += docs/man/dragon.1

# Integration tests of the launcher (bats) and the client they drive.
check_PROGRAMS += tests/launcher/dgtool
tests_launcher_dgtool_SOURCES = tests/launcher/dgtool.c
tests_launcher_dgtool_LDADD = runtime/libdragon_impl.la
TESTS += tests/launcher/launcher.bats
EXTRA_DIST += tests/launcher/launcher.bats

# Benchmarks B5a (fabric start to exit) and B6 (launch rate); parts run by tests/bench/run.
BENCH_BINS += tests/bench/b6_spawn examples/hello runtime/launcher/dragon
check_PROGRAMS += tests/bench/b6_spawn
tests_bench_b6_spawn_SOURCES = tests/bench/b6_spawn.c
tests_bench_b6_spawn_LDADD = runtime/libdragon_impl.la
EXTRA_DIST += tests/bench/parts/B5a.sh tests/bench/parts/B6.sh
