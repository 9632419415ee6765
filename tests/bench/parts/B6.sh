#!/bin/sh
# tests/bench/parts/B6.sh: process launch rate through the fabric against a raw posix_spawn loop.
B="${1:?build dir}"
N=2000
[ -n "${BENCH_SMOKE:-}" ] && N=100
K=4
D="$B/runtime/launcher/dragon"
P="$B/tests/bench/b6_spawn"
base="$(mktemp -d /tmp/dragon-b6.XXXXXX)"
trap 'rm -rf "$base"' EXIT
ours=$("$D" --runtime-dir "$base/rt" "$P" dragon "$N" "$K") || { echo "skip,B6,dragon-ls,launcher failed"; exit 0; }
peer=$("$P" posix "$N" "$K")
echo "result,B6,spawn-true-${K}-in-flight,0,dragon-ls,rate_per_s,$ours"
echo "result,B6,spawn-true-${K}-in-flight,0,posix_spawn,rate_per_s,$peer"
echo "target,B6,spawn-true-${K}-in-flight,*,rate_per_s,dragon-ls,posix_spawn,ge,0.5"
