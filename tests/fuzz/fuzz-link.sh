#!/bin/sh
# tests/fuzz/fuzz-link.sh: fuzz what local services' link port reads, before and after the Join, with libFuzzer.
b="${top_builddir:-.}"
s="${top_srcdir:-..}"
exec "$s/tests/run-fuzz" link - 8192 -- \
	-I"$s/include" -I"$s/runtime" -I"$b" -I"$b/runtime" \
	"$s/tests/fuzz/fuzz_link.c" "$s/runtime/ls/link.c" "$s/runtime/proto/wire.c" "$s/runtime/core/error.c" \
	"$b/runtime/proto/dragon.pb-c.c" $(pkg-config --cflags --libs libsodium libevent libprotobuf-c)
