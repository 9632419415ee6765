#!/bin/sh
# tests/unit/test_proto_fuzz.sh: fuzz the message decoder (a replay of mutations, then libFuzzer).
b="${top_builddir:-.}"
s="${top_srcdir:-..}"
DRAGON_FUZZ_SECONDS="${DRAGON_FUZZ_SECONDS:-20}" exec "$s/tests/run-fuzz" messages \
	"$b/tests/unit/test_proto_fuzz" 4096 -- \
	-I"$s/include" -I"$s/runtime" -I"$b/runtime" -I"$b" $(pkg-config --cflags libprotobuf-c) \
	"$s/tests/unit/test_proto_fuzz.c" "$s/runtime/proto/wire.c" "$s/runtime/core/error.c" \
	"$b/runtime/proto/dragon.pb-c.c" $(pkg-config --libs libprotobuf-c)
