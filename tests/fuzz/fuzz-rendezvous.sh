#!/bin/sh
# tests/fuzz/fuzz-rendezvous.sh: fuzz the readers of the runtime directory's files ls.ready, ls.failed, ls.ended and ta.peers with libFuzzer.
b="${top_builddir:-.}"
s="${top_srcdir:-..}"
. "$s/tests/fuzz/ta-sources.sh"
exec "$s/tests/run-fuzz" rendezvous - 4096 -- \
	-I"$s/include" -I"$s/runtime" -I"$b" -I"$b/runtime" \
	"$s/tests/fuzz/fuzz_rendezvous.c" "$s/spank/fabric.c" "$s/spank/fail.c" "$s/spank/options.c" \
	$(ta_sources "$s") \
	$(pkg-config --cflags --libs libsodium libfabric libcrypto)
