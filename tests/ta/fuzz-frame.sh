#!/bin/sh
# tests/ta/fuzz-frame.sh: fuzz the transport frame codec and replay window (a replay of mutations, then libFuzzer).
b="${top_builddir:-.}"
s="${top_srcdir:-..}"
exec "$s/tests/run-fuzz" frames "$b/tests/ta/fuzz_frame_replay" 4200 -- \
	-I"$s/include" -I"$s/runtime" -I"$b" \
	"$s/tests/ta/fuzz_frame.c" "$s/runtime/ta/frame.c" "$s/runtime/core/error.c" \
	$(pkg-config --cflags --libs libsodium libcrypto)
