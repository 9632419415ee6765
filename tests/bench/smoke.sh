#!/bin/sh
# tests/bench/smoke.sh: CI's short benchmark run: every part with tiny counts, asserting a row for every installed impl.
# Run from the build dir (automake's test harness does). The figures are meaningless; that the
# benchmarks build, run, agree with each other's protocol and print their rows is what counts.
B="$(pwd)"
S="${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}"
out="$(mktemp /tmp/dragon-bench-smoke.XXXXXX)"
trap 'rm -f "$out"' EXIT
t0=$(date +%s)
BENCH_SMOKE=1 BENCH_TIMEOUT=60 sh "$S/tests/bench/run" "$B" >"$out" 2>&1
rc=$?
cat "$out"
echo "smoke: driver took $(( $(date +%s) - t0 )) s"
csv="$B/bench-results.csv"
fail=0
bad() { echo "FAIL: $*"; fail=1; }
[ $rc -eq 0 ] || bad "driver exited $rc"
[ -s "$csv" ] || { bad "no $csv"; exit 1; }
# rows IMPL PART N: IMPL has N result rows in PART, each with a positive value
rows() {
	got=$(awk -F, -v p="$2" -v i="$1" '$1 == "result" && $2 == p && $5 == i && $7 + 0 > 0' "$csv" | wc -l)
	[ "$got" -eq "$3" ] || bad "$2: $got result rows for $1, expected $3"
}
mpi=no; [ -x "$B/tests/bench/bench_mpi" ] && command -v mpirun >/dev/null && mpi=yes
zmq=no; [ -x "$B/tests/bench/bench_zmq" ] && zmq=yes
nng=no; [ -x "$B/tests/bench/bench_nng" ] && nng=yes
for i in dragon-spin dragon-idle dragon-adaptive futex pipe; do rows $i B1 5; done
for i in dragon-adaptive dragon-zc dragon-batch memcpy; do rows $i B2 7; done
for i in dragon-adaptive dragon-batch pipe; do rows $i B3 3; done
for i in dragon-pool glibc-malloc; do rows $i B7 3; done
[ $mpi = yes ] && { rows openmpi-sm B1 5; rows openmpi-sm B2 7; }
[ $zmq = yes ] && { rows zmq-ipc B1 5; rows zmq-ipc B2 7; rows zmq-ipc B3 3; }
[ $nng = yes ] && rows nng-ipc B1 5
# every part (also the other areas'): a result for each impl its targets name, unless not installed
for f in "$S"/tests/bench/parts/B*.sh; do
	p=$(basename "$f" .sh)
	# A part that cannot run here at all (B5 needs its own Slurm test cluster) says why instead.
	grep -q "^skip,$p,\*," "$csv" && continue
	grep -q "^result,$p," "$csv" || bad "$p printed no result"
	for i in $(awk -F, -v p="$p" '$1 == "target" && $2 == p { print $6; print $7 }' "$csv" | sort -u); do
		grep -q "^result,$p,[^,]*,[^,]*,$i," "$csv" && continue
		grep -q "^skip,$p,$i,.*not installed" "$csv" && continue
		bad "$p: no result for $i ($(grep "^skip,$p,$i," "$csv" | cut -d, -f4-))"
	done
done
# B4's all-to-all has no target: its rows are asserted here (when B4 could run at all)
if grep -q "^result,B4," "$csv"; then
	impls="dragon-chan"
	[ $mpi = yes ] && impls="$impls ompi-tcp ompi-tcp-coll"
	for i in $impls; do
		grep -q "^result,B4,alltoall,65536,$i," "$csv" || bad "B4: no all-to-all row for $i"
	done
fi
[ -s "$B/bench-results.png" ] || command -v gnuplot >/dev/null || echo "note: gnuplot not installed, no PNG"
if command -v gnuplot >/dev/null && [ ! -s "$B/bench-results.png" ]; then bad "no PNG"; fi
[ $fail -eq 0 ] && echo "smoke: all parts produced their rows"
exit $fail
