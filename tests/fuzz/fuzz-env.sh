#!/bin/sh
# tests/fuzz/fuzz-env.sh: fuzz the runtime's DRAGON_* environment parsing (numeric settings, the transport agent's configuration) with libFuzzer.
b="${top_builddir:-.}"
s="${top_srcdir:-..}"
. "$s/tests/fuzz/ta-sources.sh"
exec "$s/tests/run-fuzz" environment - 1024 -- \
	-I"$s/include" -I"$s/runtime" -I"$b" -I"$b/runtime" \
	"$s/tests/fuzz/fuzz_env.c" $(ta_sources "$s") \
	$(pkg-config --cflags --libs libsodium libfabric libcrypto)
