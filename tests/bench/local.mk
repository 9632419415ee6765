# tests/bench/local.mk: build rules for this area (included from the top Makefile.am).
bench: $(BENCH_BINS)
	@echo "no benchmarks yet"
