#!/bin/sh
# tests/ddict/fuzz-req.sh: fuzz a dictionary manager's request handling (a replay of mutations, then libFuzzer).
b="${top_builddir:-.}"
s="${top_srcdir:-..}"
exec "$s/tests/run-fuzz" ddict-requests "$b/tests/ddict/fuzz_req_replay" 4096 -- \
	-I"$s/include" -I"$s/runtime" -I"$b" -I"$b/runtime" \
	"$s/tests/ddict/fuzz_req.c" "$s/runtime/ddict/serve.c" "$s/runtime/ddict/store.c" \
	"$s/runtime/ddict/persist.c" "$s/runtime/ddict/wire.c" "$b/runtime/ddict/ddict.pb-c.c" \
	"$s/runtime/core/shm.c" "$s/runtime/core/pool.c" "$s/runtime/core/pool_alloc.c" "$s/runtime/core/pool_cache.c" \
	"$s/runtime/core/error.c" \
	$(pkg-config --cflags --libs libsodium libprotobuf-c)
