# tests/integration/local.mk: build rules for this area (included from the top Makefile.am).
# One TESTS entry brings the Slurm test cluster up once and runs every .bats file on it.
check_PROGRAMS += tests/integration/pmix_fence
tests_integration_pmix_fence_SOURCES = tests/integration/pmix_fence.c
tests_integration_pmix_fence_CFLAGS = $(AM_CFLAGS) $(PMIX_CFLAGS)
tests_integration_pmix_fence_LDADD = $(PMIX_LIBS)
TESTS += tests/integration/cluster.sh
EXTRA_DIST += tests/integration/cluster.sh tests/integration/slurm.bats tests/integration/spank.bats

# The PMIx bootstrap backend of libdragon, exercised on the test cluster (slurm.bats).
check_PROGRAMS += tests/integration/boot_check
tests_integration_boot_check_SOURCES = tests/integration/boot_check.c
tests_integration_boot_check_LDADD = runtime/libdragon_impl.la

# A task of a srun --dragon step joins the job's fabric (fabric.bats).
check_PROGRAMS += tests/integration/join_check
tests_integration_join_check_SOURCES = tests/integration/join_check.c
tests_integration_join_check_LDADD = runtime/libdragon_impl.la
EXTRA_DIST += tests/integration/fabric.bats tests/integration/launcher.bats tests/integration/common.bash tests/integration/heal.bash tests/integration/users.bats tests/integration/intruder.py

# Both sides of a node lost mid-job (lostnode.bats).
check_PROGRAMS += tests/integration/lost_check
tests_integration_lost_check_SOURCES = tests/integration/lost_check.c
tests_integration_lost_check_LDADD = runtime/libdragon_impl.la -lpthread
EXTRA_DIST += tests/integration/lostnode.bats tests/integration/lost_parent.py

# An Open MPI program that joins the fabric too (fabric.bats); compiled with mpicc's flags like tests/bench/bench_mpi,
# linked by libtool (libdragon is a libtool library) with mpicc's link flags.
if HAVE_MPI
check_PROGRAMS += tests/integration/mpi_dragon
tests_integration_mpi_dragon_SOURCES = tests/integration/mpi_dragon.c
tests_integration_mpi_dragon_CFLAGS = $(AM_CFLAGS) `$(MPICC) -showme:compile`
tests_integration_mpi_dragon_LDFLAGS = `$(MPICC) -showme:link`
tests_integration_mpi_dragon_LDADD = runtime/libdragon_impl.la
endif
