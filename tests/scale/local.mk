# tests/scale/local.mk: the 16-node check (make check-scale), the scale measurements (make scale-measure) and the soak (make soak); none of them in CI.
check_PROGRAMS += tests/scale/scaletool
tests_scale_scaletool_SOURCES = tests/scale/scaletool.c
tests_scale_scaletool_LDADD = runtime/libdragon_impl.la
EXTRA_DIST += tests/scale/common.sh tests/scale/check-scale.sh tests/scale/measure.sh tests/scale/soak.sh \
	docs/scale.md docs/images/scale.gp docs/images/scale.png docs/images/scale.dat docs/images/scale-before.dat \
	docs/images/scale-runs.jsonl docs/images/scale-before-runs.jsonl docs/images/scale-32.dat docs/images/scale-32-runs.jsonl \
	docs/soak-result.txt

SCALE_PROGS = tests/integration/join_check tests/scale/scaletool examples/hello runtime/launcher/dragon \
	runtime/ls/dragon-ls runtime/ta/dragon-ta spank/spank_dragon.la

# make check-scale [SCALE_NODES=16]: one --dragon job over a 16-node test cluster (needs root).
.PHONY: check-scale scale-measure scale-plot soak
check-scale: $(SCALE_PROGS)
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' $(SHELL) $(srcdir)/tests/scale/check-scale.sh

# make scale-measure [SCALE_SIZES="1 2 4 8 16"] [SCALE_RUNS=5]: the figures of docs/scale.md.
scale-measure: $(SCALE_PROGS)
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' $(SHELL) $(srcdir)/tests/scale/measure.sh

# make scale-plot: docs/images/scale.png again from docs/images/scale*.dat (copy a run's
# scale-results/scale.dat there first).
scale-plot:
	@command -v gnuplot >/dev/null || { echo "make scale-plot: needs gnuplot (Debian package gnuplot-nox)" >&2; exit 1; }
	cd $(srcdir)/docs/images && gnuplot scale.gp

# make soak [SOAK_MINUTES=30]: 3 nodes stream to each other's channels and back (docs/scale.md).
SOAK_MINUTES = 30
soak: $(SCALE_PROGS)
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' SOAK_MINUTES='$(SOAK_MINUTES)' \
		$(SHELL) $(srcdir)/tests/scale/soak.sh

# The head node tells a connection's end only to the nodes that hold something of it (in make check).
TESTS += tests/scale/head.bats
EXTRA_DIST += tests/scale/head.bats tests/scale/job_measure.py
