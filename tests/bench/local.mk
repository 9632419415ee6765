# tests/bench/local.mk: build rules for this area (included from the top Makefile.am).
# The on-node benchmarks (B1 B2 B3 B7) and `make bench`, which runs every tests/bench/parts/B*.sh.
BENCH_BINS += tests/bench/bench_onnode
check_PROGRAMS += tests/bench/bench_onnode
tests_bench_bench_onnode_SOURCES = tests/bench/bench_onnode.c tests/bench/bench_util.h
tests_bench_bench_onnode_LDADD = runtime/libdragon_impl.la
# Per-message instruction counts under callgrind (load-independent; see docs/bench.md).
check_PROGRAMS += tests/bench/chcost
tests_bench_chcost_SOURCES = tests/bench/chcost.c
tests_bench_chcost_LDADD = runtime/libdragon_impl.la

if HAVE_ZMQ
BENCH_BINS += tests/bench/bench_zmq
check_PROGRAMS += tests/bench/bench_zmq
tests_bench_bench_zmq_SOURCES = tests/bench/bench_zmq.c tests/bench/bench_util.h
tests_bench_bench_zmq_CFLAGS = $(AM_CFLAGS) $(ZMQ_CFLAGS)
tests_bench_bench_zmq_LDADD = $(ZMQ_LIBS)
# B4's ZeroMQ tcp peer (the part itself and tcp_pp are in runtime/ta/local.mk)
BENCH_BINS += tests/bench/b4/zmq_pp
check_PROGRAMS += tests/bench/b4/zmq_pp
tests_bench_b4_zmq_pp_SOURCES = tests/bench/b4/zmq_pp.c tests/bench/bench_util.h
tests_bench_b4_zmq_pp_CFLAGS = $(AM_CFLAGS) $(ZMQ_CFLAGS)
tests_bench_b4_zmq_pp_LDADD = $(ZMQ_LIBS)
endif

if HAVE_NNG
BENCH_BINS += tests/bench/bench_nng
check_PROGRAMS += tests/bench/bench_nng
tests_bench_bench_nng_SOURCES = tests/bench/bench_nng.c tests/bench/bench_util.h
tests_bench_bench_nng_LDADD = $(NNG_LIBS)
endif

# Open MPI programs are compiled with mpicc's flags and linked by the wrapper itself.
if HAVE_MPI
BENCH_BINS += tests/bench/bench_mpi
check_PROGRAMS += tests/bench/bench_mpi
tests_bench_bench_mpi_SOURCES = tests/bench/bench_mpi.c tests/bench/bench_util.h
tests_bench_bench_mpi_CFLAGS = $(AM_CFLAGS) `$(MPICC) -showme:compile`
tests_bench_bench_mpi_LINK = $(MPICC) $(tests_bench_bench_mpi_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@
endif

EXTRA_DIST += docs/bench.md docs/bench-results.png tests/bench/run tests/bench/smoke.sh tests/bench/parts/B1.sh tests/bench/parts/B2.sh \
	tests/bench/parts/B3.sh tests/bench/parts/B7.sh tests/bench/parts/B5.sh \
	tests/bench/median.py tests/bench/alternate.py tests/bench/tc.sh
TESTS += tests/bench/smoke.sh

# make bench [BENCH="B1 B7"]: each part runs ours and its peers; one table, CSV and PNG here.
bench: $(BENCH_BINS)
	MPIRUN="$(MPIRUN)" $(SHELL) $(srcdir)/tests/bench/run "$(abs_builddir)" $(BENCH)

# The smoke run (and make bench) write these into the build directory.
CLEANFILES += bench-results.csv bench-results.png
