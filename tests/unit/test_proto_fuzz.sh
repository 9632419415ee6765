#!/bin/sh
# tests/unit/test_proto_fuzz.sh: fuzz the message decoder ~20 s with libFuzzer if clang can, else replay mutations.
set -u
b="${top_builddir:-.}"
s="${top_srcdir:-..}"
secs="${DRAGON_FUZZ_SECONDS:-20}"
replay="$b/tests/unit/test_proto_fuzz"
work="$(mktemp -d /tmp/dragon-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT

if command -v clang >/dev/null 2>&1 &&
	clang -fsanitize=fuzzer,address,undefined -DDG_LIBFUZZER -o "$work/fuzz" \
		-I"$s/include" -I"$s/runtime" -I"$b/runtime" -I"$b" \
		$(pkg-config --cflags libprotobuf-c) \
		"$s/tests/unit/test_proto_fuzz.c" "$s/runtime/proto/wire.c" "$s/runtime/error.c" \
		"$b/runtime/proto/dragon.pb-c.c" $(pkg-config --libs libprotobuf-c) 2>"$work/cc.log"; then
	mkdir "$work/corpus"
	"$replay" --seeds "$work/corpus" || exit 1
	echo "libFuzzer on the decoder for ${secs}s"
	"$work/fuzz" -error_exitcode=1 -max_total_time="$secs" -max_len=4096 -print_final_stats=1 "$work/corpus" \
		>"$work/fuzz.log" 2>&1
	rc=$?
	tail -15 "$work/fuzz.log"
	exit $rc
fi
echo "clang with libFuzzer unavailable ($(head -c 300 "$work/cc.log" 2>/dev/null)): replaying mutations"
exec "$replay" 200000
