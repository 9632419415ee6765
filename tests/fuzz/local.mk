# tests/fuzz/local.mk: libFuzzer checks of the decoders that have no replay program (built by tests/run-fuzz with clang).
TESTS += tests/fuzz/fuzz-options.sh tests/fuzz/fuzz-env.sh tests/fuzz/fuzz-rendezvous.sh tests/fuzz/fuzz-link.sh
EXTRA_DIST += tests/fuzz/fuzz-options.sh tests/fuzz/fuzz-env.sh tests/fuzz/fuzz-rendezvous.sh \
	tests/fuzz/fuzz-link.sh tests/fuzz/fuzz_options.c tests/fuzz/fuzz_env.c tests/fuzz/fuzz_rendezvous.c \
	tests/fuzz/fuzz_link.c tests/fuzz/split.h tests/fuzz/ta-sources.sh tests/fuzz/corpus
