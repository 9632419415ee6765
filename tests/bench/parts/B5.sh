#!/bin/sh
# tests/bench/parts/B5.sh: on a 3-node Slurm test cluster, srun --dragon -N3 joining the job's running fabric against a plain srun -N3, and the cold start of `dragon ./hello` in an allocation.
# Needs root (it brings up its own contrib/testcluster, instance DRAGON_TC_ID or the first free
# one, and brings it down). A part that cannot run here prints skip,B5,*,REASON and no result.
B="${1:?build dir}"
S="$(cd "$(dirname "$0")/../../.." && pwd)"
tc="$S/contrib/testcluster"
RUNS=20
[ -n "${BENCH_SMOKE:-}" ] && RUNS=3
skip() {
	echo "skip,B5,*,$*"
	exit 0
}
# The smoke run is part of make check, where tests/integration/cluster.sh may hold a cluster.
[ -n "${BENCH_SMOKE:-}" ] && skip "smoke run: B5 brings up a Slurm test cluster of its own (make bench BENCH=B5)"
[ "$(id -u)" = 0 ] || skip "needs root for the Slurm test cluster"
case "$B" in /tmp/* | /dev/shm/*) skip "the build tree $B is under /tmp, which every test cluster node replaces" ;; esac
JOIN="$B/tests/integration/join_check"
DRAGON="$B/runtime/launcher/dragon"
HELLO="$B/examples/hello"
for f in "$JOIN" "$DRAGON" "$HELLO" "$B/spank/.libs/spank_dragon.so" "$B/runtime/ls/dragon-ls"; do
	[ -x "$f" ] || [ -f "$f" ] || skip "$f is not built (make check_PROGRAMS=... or make check first)"
done
why=$("$tc" check 2>&1) || skip "the test cluster cannot run here: $why"
if [ -n "${DRAGON_TC_ID+set}" ]; then
	ids=${DRAGON_TC_ID:-default}
else
	ids="1 2 3 4 5 6 7 8 9"
fi
chosen=
for i in $ids; do
	[ "$i" = default ] && i=
	export DRAGON_TC_ID="$i"
	if "$tc" check >/dev/null 2>&1 && ! "$tc" status >/dev/null 2>&1; then
		chosen=yes
		break
	fi
done
[ -n "$chosen" ] || skip "no free test cluster instance (tried: $ids)"
export DRAGON_TC_BUILDDIR="$B"
unset DRAGON_TC_PLUGIN DRAGON_TC_PLUGARGS DRAGON_TC_STATE
# Until the transport agent is built, fabrics of several nodes run without it.
[ -x "$B/runtime/ta/dragon-ta" ] || export DRAGON_TA=off
work=$(mktemp -d /var/tmp/dragon-b5.XXXXXX)
trap '"$tc" down >/dev/null 2>&1; rm -rf "$work"' EXIT
"$tc" up 3 >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; skip "contrib/testcluster up 3 failed (instance '$DRAGON_TC_ID')"; }
eval "$("$tc" env)"

# The timing helper: "MEDIAN_MS FAILED" over RUNS runs (after one warm-up run); failed runs are
# counted, not timed ("fail N" when none succeeded).
cat >"$work/median.py" <<'PY'
import subprocess, sys, time
runs = int(sys.argv[1]); cmd = sys.argv[2:]
subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ts = []; failed = 0
for _ in range(runs):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        failed += 1; continue
    ts.append((time.perf_counter() - t) * 1000)
if not ts:
    print("fail", failed); sys.exit(0)
ts.sort(); print("%.2f %d" % (ts[len(ts) // 2], failed))
PY
# result IMPL CASE "MEDIAN FAILED": a result row, and a note when some runs failed.
result() {
	set -- "$1" "$2" $3
	echo "result,B5,$2,0,$1,ms,$3"
	[ "${4:-0}" = 0 ] || echo "skip,B5,$1-failures,$4 of $RUNS timed runs failed (not in the median)"
}
ok() { [ -n "$1" ] && [ "${1%% *}" != fail ]; }

# 1. Inside one salloc --dragon -N3 allocation, whose fabric the first srun --dragon starts (the
#    warm-up run): a step that joins it (every task calls dragon_init) against a plain step.
cat >"$work/join.sh" <<EOF
#!/bin/sh
echo "join \$(python3 '$work/median.py' $RUNS srun --dragon -N3 '$JOIN')"
echo "plain \$(python3 '$work/median.py' $RUNS srun -N3 /bin/true)"
EOF
chmod +x "$work/join.sh"
timeout 600 salloc -Q --dragon -N3 "$work/join.sh" >"$work/join.out" 2>"$work/join.err"
j=$(sed -n 's/^join //p' "$work/join.out")
p=$(sed -n 's/^plain //p' "$work/join.out")
case="srun-N3-step"
if ok "$j" && ok "$p"; then
	result dragon-join "$case" "$j"
	result slurm-plain-srun "$case" "$p"
	echo "result,B5,added-by-join,0,dragon-join,ms,$(echo "${j%% *} ${p%% *}" | awk '{printf "%.2f", $1 - $2}')"
	echo "target,B5,$case,*,ms,dragon-join,slurm-plain-srun,le,1.5"
else
	echo "skip,B5,dragon-join,srun --dragon in salloc failed: $(tail -3 "$work/join.err" | tr '\n,' '  ')"
fi

# 2. Cold start in a batch job of three nodes without --dragon: `dragon ./hello 3` starts a fabric
#    step over the allocation, runs hello's three workers in it and shuts it down.
cat >"$work/cold.sh" <<EOF
#!/bin/sh
echo "cold \$(python3 '$work/median.py' $RUNS '$DRAGON' '$HELLO' 3)"
echo "local \$(python3 '$work/median.py' $RUNS '$DRAGON' --local '$HELLO' 3)"
EOF
chmod +x "$work/cold.sh"
timeout 900 sbatch -W -N3 -o "$work/cold.out" "$work/cold.sh" >/dev/null 2>"$work/cold.err"
c=$(sed -n 's/^cold //p' "$work/cold.out" 2>/dev/null)
l=$(sed -n 's/^local //p' "$work/cold.out" 2>/dev/null)
case="cold-start-hello3"
if ok "$c"; then
	result dragon-alloc-3nodes "$case" "$c"
	if ok "$l"; then result dragon-local-1node "$case" "$l"; fi
else
	echo "skip,B5,dragon-alloc-3nodes,dragon ./hello in a batch job failed: $(tail -3 "$work/cold.out" "$work/cold.err" 2>/dev/null | tr '\n,' '  ')"
fi
