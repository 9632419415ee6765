#!/bin/sh
# tests/bench/parts/B5.sh: on a 3-node Slurm test cluster: fabric bring-up at job start, srun --dragon joining the job's running fabric against a plain srun, the cold start of `dragon ./hello`, and mpirun for 1 to 16 ranks.
# Needs root (it brings up its own contrib/testcluster, instance DRAGON_TC_ID or the first free
# one, and brings it down). A part that cannot run here prints skip,B5,*,REASON and no result.
B="${1:?build dir}"
S="$(cd "$(dirname "$0")/../../.." && pwd)"
RUNS=20
# bring-up is timed once per job (its first step), over JOBS jobs; the 1-16 rank sweep takes
# SWEEP_RUNS per size and launcher (the whole part stays within a few minutes on 2 vCPUs)
JOBS=7
SWEEP_RUNS=10
SIZES="1 2 4 8 16"
[ -n "${BENCH_SMOKE:-}" ] && RUNS=3
skip() {
	echo "skip,B5,*,$*"
	exit 0
}
# The smoke run is part of make check, where tests/integration/cluster.sh may hold a cluster.
[ -n "${BENCH_SMOKE:-}" ] && skip "smoke run: B5 brings up a Slurm test cluster of its own (make bench BENCH=B5)"
JOIN="$B/tests/integration/join_check"
DRAGON="$B/runtime/launcher/dragon"
HELLO="$B/examples/hello"
for f in "$JOIN" "$DRAGON" "$HELLO" "$B/spank/.libs/spank_dragon.so" "$B/runtime/ls/dragon-ls"; do
	[ -x "$f" ] || [ -f "$f" ] || skip "$f is not built (make check_PROGRAMS=... or make check first)"
done
work=$(mktemp -d /var/tmp/dragon-b5.XXXXXX)
. "$S/tests/bench/tc.sh"
trap 'tc_down; rm -rf "$work"' EXIT
tc_up B5
cp "$S/tests/bench/median.py" "$work/median.py"
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
# N tasks on min(N, 3) nodes; the nodes have 2 CPUs each, so 8 and 16 tasks need --overcommit
for n in $SIZES; do
	nn=\$n; [ \$nn -gt 3 ] && nn=3
	echo "join\$n \$(python3 '$work/median.py' $SWEEP_RUNS srun --dragon -O -N\$nn -n\$n '$JOIN')"
done
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
	# the issue's goal is absolute (<= 50 ms median added to a step): a reference row of 50
	echo "result,B5,added-by-join,0,budget-50ms,ms,50"
	echo "target,B5,added-by-join,*,ms,dragon-join,budget-50ms,le,1"
else
	echo "skip,B5,dragon-join,srun --dragon in salloc failed: $(tail -3 "$work/join.err" | tr '\n,' '  ')"
fi

# 2. Cold start in a batch job of three nodes without --dragon: `dragon ./hello 3` starts a fabric
#    step over the allocation, runs hello's three workers in it and shuts it down.
cat >"$work/cold.sh" <<EOF
#!/bin/sh
echo "cold \$(python3 '$work/median.py' $RUNS '$DRAGON' '$HELLO' 3)"
echo "local \$(python3 '$work/median.py' $RUNS '$DRAGON' --local '$HELLO' 3)"
for n in $SIZES; do
	echo "cold\$n \$(python3 '$work/median.py' $SWEEP_RUNS '$DRAGON' '$HELLO' \$n)"
done
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

# 3. Start to exit for 1 to 16 ranks: the step joining the running fabric (srun --dragon
#    join_check, in the salloc of 1.), the cold start `dragon ./hello N` in the batch job of 2.,
#    `dragon --local ./hello N` on this machine, and mpirun -np N true here (no MPI_Init: the floor
#    of Open MPI's launch; --oversubscribe for more ranks than the 2 CPUs).
# the driver exports MPIRUN; a part run by hand looks for it
[ -n "${MPIRUN:-}" ] || MPIRUN=$(command -v mpirun || echo no)
RUNS=$SWEEP_RUNS # for result's failure note
for n in $SIZES; do
	case="start-$n-ranks"
	v=$(sed -n "s/^join$n //p" "$work/join.out")
	if ok "$v"; then result dragon-join "$case" "$v"; else echo "skip,B5,dragon-join-$n,srun --dragon -n$n failed"; fi
	v=$(sed -n "s/^cold$n //p" "$work/cold.out" 2>/dev/null)
	if ok "$v"; then result dragon-alloc-3nodes "$case" "$v"; else echo "skip,B5,dragon-alloc-3nodes-$n,dragon ./hello $n in a batch job failed"; fi
	v=$(python3 "$work/median.py" $SWEEP_RUNS "$DRAGON" --local "$HELLO" $n)
	if ok "$v"; then result dragon-local-1node "$case" "$v"; else echo "skip,B5,dragon-local-1node-$n,dragon --local ./hello $n failed"; fi
	if [ "$MPIRUN" != no ]; then
		v=$(python3 "$work/median.py" $SWEEP_RUNS "$MPIRUN" --allow-run-as-root --oversubscribe -np $n true)
		if ok "$v"; then result openmpi-mpirun "$case" "$v"; else echo "skip,B5,openmpi-mpirun-$n,mpirun -np $n true failed"; fi
	else
		echo "skip,B5,openmpi-mpirun,mpirun not installed"
	fi
done

# 4. Fabric bring-up at job start, once per job over JOBS jobs: from submitting
#    `salloc --dragon -N3` until its first `srun --dragon -N3 true` returns (that step's tasks wait
#    in task_init until their node's local services wrote ls.ready, so every node is up), against
#    the same with a plain salloc and srun; and within each --dragon job, that first step minus a
#    plain `srun -N3 true` right after it (the bring-up the first step pays).
cat >"$work/first.py" <<'PY'
import os, subprocess, sys, time
def run(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode, (time.perf_counter() - t) * 1000
dragon = sys.argv[1] == "dragon"
rc, first = run(["srun", "--dragon", "-N3", "true"] if dragon else ["srun", "-N3", "true"])
ready = (time.time() - float(os.environ["B5_T0"])) * 1000
# then channels across nodes: tasks on nodes 1 and 2 each send a deposited message to a channel of
# node 0 (through the agents); from submitting the job until that step returns
rc3, xn = (run(["srun", "--dragon", "-N3", "-n3", sys.argv[2]]) if dragon and len(sys.argv) > 2
           else (1, 0))
xnode = (time.time() - float(os.environ["B5_T0"])) * 1000
# a plain step once the fabric is up (its agents loaded), for the difference
rc2, plain = run(["srun", "-N3", "true"])
print("first", "fail" if rc else "%.2f" % first, "ready", "fail" if rc else "%.2f" % ready,
      "plain", "fail" if rc2 else "%.2f" % plain, "xnode", "fail" if rc3 else "%.2f" % xnode)
PY
CH="$B/tests/ta/chtool"
cat >"$work/xnode.sh" <<EOF
#!/bin/sh
if [ "\$SLURM_PROCID" = 0 ]; then exec "$CH" serve x 2 3 >/dev/null; fi
exec "$CH" send x "\$SLURM_PROCID" 1 8 deposited
EOF
chmod +x "$work/xnode.sh"
for kind in dragon plain; do
	flag=
	[ $kind = dragon ] && flag=--dragon
	i=0
	while [ $i -lt $JOBS ]; do
		B5_T0=$(date +%s.%N) timeout 120 salloc -Q $flag -N3 python3 "$work/first.py" $kind "$work/xnode.sh" >>"$work/first-$kind.out" 2>>"$work/first.err"
		i=$((i + 1))
	done
done
# "MEDIAN FAILED" of field F (first, ready, plain, or first-plain) over the jobs of a kind
med() {
	awk -v f="$2" -v jobs=$JOBS '$1 == "first" {
		v = f == "diff" ? ($2 == "fail" || $6 == "fail" ? "fail" : $2 - $6) : (f == "ready" ? $4 : (f == "plain" ? $6 : (f == "xnode" ? $8 : $2)))
		if (v == "fail") next
		a[++n] = v
	} END {
		if (!n) { print "fail", jobs; exit }
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		printf "%.2f %d\n", a[int(n / 2) + 1], jobs - n
	}' "$work/first-$1.out" 2>/dev/null || echo "fail $JOBS"
}
if ok "$(med dragon ready)"; then
	RUNS=$JOBS
	result dragon-first-step salloc-to-ready "$(med dragon ready)"
	ok "$(med plain ready)" && result slurm-plain-srun salloc-to-ready "$(med plain ready)"
	result dragon-first-step first-step-N3 "$(med dragon first)"
	ok "$(med dragon plain)" && result slurm-plain-srun first-step-N3 "$(med dragon plain)"
	ok "$(med dragon diff)" && result dragon-first-step fabric-bringup "$(med dragon diff)"
	# the issue's goals: the first step at most 100 ms over a plain one (a reference row of 100),
	# and channels across nodes usable within 1 s of submitting the job
	echo "result,B5,fabric-bringup,0,budget-100ms,ms,100"
	echo "target,B5,fabric-bringup,*,ms,dragon-first-step,budget-100ms,le,1"
	if ok "$(med dragon xnode)"; then
		result dragon-first-step salloc-to-xnode-channel "$(med dragon xnode)"
		echo "result,B5,salloc-to-xnode-channel,0,budget-1000ms,ms,1000"
		echo "target,B5,salloc-to-xnode-channel,*,ms,dragon-first-step,budget-1000ms,le,1"
	else
		echo "skip,B5,salloc-to-xnode-channel,the step sending across nodes failed: $(tail -3 "$work/first.err" 2>/dev/null | tr '\n,' '  ')"
	fi
else
	echo "skip,B5,dragon-first-step,salloc --dragon with a first srun --dragon failed: $(tail -3 "$work/first.err" 2>/dev/null | tr '\n,' '  ')"
fi
