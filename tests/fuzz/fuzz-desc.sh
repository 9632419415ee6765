#!/bin/sh
# tests/fuzz/fuzz-desc.sh: fuzz the descriptor decoder ~15 s with libFuzzer if clang can, else replay mutations.
set -u
b="${top_builddir:-.}"
s="${top_srcdir:-..}"
secs="${DRAGON_FUZZ_SECONDS:-15}"
replay="$b/tests/fuzz/fuzz_desc_replay"
work="$(mktemp -d /tmp/dragon-fuzz-desc.XXXXXX)"
trap 'rm -rf "$work"' EXIT

if command -v clang >/dev/null 2>&1 &&
	clang -fsanitize=fuzzer,address,undefined -DDG_LIBFUZZER -pthread -o "$work/fuzz" \
		-I"$s/include" -I"$s/runtime" -I"$b" \
		"$s/tests/fuzz/fuzz_desc.c" "$s/runtime/shm.c" "$s/runtime/pool.c" \
		"$s/runtime/channel.c" "$s/runtime/error.c" 2>"$work/cc.log"; then
	mkdir "$work/corpus"
	"$replay" 0 "$work/corpus" || exit 1
	echo "libFuzzer on the descriptor decoder and attach paths for ${secs}s"
	"$work/fuzz" -error_exitcode=1 -max_total_time="$secs" -max_len=200 -print_final_stats=1 \
		"$work/corpus" >"$work/fuzz.log" 2>&1
	rc=$?
	tail -12 "$work/fuzz.log"
	exit $rc
fi
echo "clang with libFuzzer unavailable ($(head -c 300 "$work/cc.log" 2>/dev/null)): replaying mutations"
exec "$replay" 200000
