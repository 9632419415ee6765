#!/bin/sh
# tests/fuzz/fuzz-env.sh: fuzz the runtime's DRAGON_* environment parsing (numeric settings, the transport agent's configuration) with libFuzzer.
b="${top_builddir:-.}"
s="${top_srcdir:-..}"
exec "$s/tests/run-fuzz" environment - 1024 -- \
	-I"$s/include" -I"$s/runtime" -I"$b" -I"$b/runtime" \
	"$s/tests/fuzz/fuzz_env.c" "$s/runtime/ta/ta.c" "$s/runtime/ta/ta_peers.c" "$s/runtime/ta/ta_send.c" \
	"$s/runtime/ta/ta_recv.c" "$s/runtime/ta/ta_bulk.c" "$s/runtime/ta/frame.c" "$s/runtime/core/error.c" "$s/runtime/core/env.c" \
	$(pkg-config --cflags --libs libsodium libfabric libcrypto)
