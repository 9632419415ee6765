#!/bin/sh
# tests/bench/parts/B7.sh: pool allocate+free (64 B, 4 KiB, random sizes; batches of 32) against glibc malloc.
B="${1:?build dir}"
P=B7
for impl in dragon-pool glibc-malloc; do
	timeout -k 5 "${BENCH_TIMEOUT:-600}" "$B/tests/bench/bench_onnode" alloc $impl 8000000 || echo "skip,$P,$impl,failed (exit $?)"
done
if [ -n "${BENCH_BASELINE:-}" ]; then
	timeout -k 5 "${BENCH_TIMEOUT:-600}" "$BENCH_BASELINE" alloc dragon-pool 8000000 | sed 's/,dragon-/,v1-dragon-/'
fi
# the goal (issue 16)
echo "target,$P,*,*,ns_per_op,dragon-pool,glibc-malloc,le,3"
