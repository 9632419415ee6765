#!/bin/sh
# tests/fuzz/fuzz-desc.sh: fuzz the descriptor decoder and attach paths (a replay of mutations, then libFuzzer).
b="${top_builddir:-.}"
s="${top_srcdir:-..}"
exec "$s/tests/run-fuzz" descriptors "$b/tests/fuzz/fuzz_desc_replay" 200 -- \
	-I"$s/include" -I"$s/runtime" -I"$b" \
	"$s/tests/fuzz/fuzz_desc.c" "$s/runtime/core/shm.c" "$s/runtime/core/pool.c" "$s/runtime/core/pool_alloc.c" "$s/runtime/core/pool_cache.c" \
	"$s/runtime/core/channel.c" "$s/runtime/core/channel_ring.c" "$s/runtime/core/error.c" $(pkg-config --cflags --libs libsodium)
