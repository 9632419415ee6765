#!/bin/sh
# tests/fuzz/fuzz-rendezvous.sh: fuzz the readers of the runtime directory's files ls.ready, ls.failed, ls.ended and ta.peers with libFuzzer.
b="${top_builddir:-.}"
s="${top_srcdir:-..}"
exec "$s/tests/run-fuzz" rendezvous - 4096 -- \
	-I"$s/include" -I"$s/runtime" -I"$b" -I"$b/runtime" \
	"$s/tests/fuzz/fuzz_rendezvous.c" "$s/spank/fabric.c" "$s/spank/fail.c" "$s/spank/options.c" \
	"$s/runtime/ta/ta.c" "$s/runtime/ta/ta_peers.c" "$s/runtime/ta/ta_send.c" "$s/runtime/ta/ta_recv.c" "$s/runtime/ta/ta_bulk.c" \
	"$s/runtime/ta/frame.c" "$s/runtime/core/error.c" "$s/runtime/core/env.c" \
	$(pkg-config --cflags --libs libsodium libfabric libcrypto)
