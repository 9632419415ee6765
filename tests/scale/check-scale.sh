#!/bin/bash
# tests/scale/check-scale.sh: make check-scale: one --dragon job over a 16-node test cluster: bring-up, a joining step, dragon status, a group of 64, a name seen from every node, an all-to-all of channels.
# Not in CI (a 16-node cluster is heavy on 2 vCPUs). Needs root. SCALE_NODES=N for another size
# (2 or more). Every step has a bounded wait; any failure says what and exits 1; the cluster is
# brought down and checked clean whatever happens.
set -u
S=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
B=$(cd "${top_builddir:-$S/build}" && pwd)
. "$S/tests/scale/common.sh"

N=${SCALE_NODES:-16}
case $N in '' | *[!0-9]* | 0 | 1) fail "SCALE_NODES must be a number of 2 or more, got '$N'" ;; esac
JOIN=$B/tests/integration/join_check
DRAGON=$B/runtime/launcher/dragon
HELLO=$B/examples/hello
TOOL=$B/tests/scale/scaletool
need "$JOIN" "$DRAGON" "$HELLO" "$TOOL" "$B/spank/.libs/spank_dragon.so" "$B/runtime/ls/dragon-ls" "$B/runtime/ta/dragon-ta"
GROUP=$((4 * N))

pick_instance
t0=$(date +%s%N)
cluster_up "$N"
note "$N nodes idle in $((($(date +%s%N) - t0) / 1000000)) ms; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Job output must be seen by the nodes and by this shell: not under /tmp.
work=$(mktemp -d "$DRAGON_TC_STATE/scale.XXXXXX")

# The job: each step's output to a file of its own, its time in ms to times; the checks run
# afterwards, here. A step that fails or hangs (timeout) ends the job with its name.
cat >"$work/job.sh" <<EOF
#!/bin/bash
ms() { echo \$(( (\$(date +%s%N) - \$1) / 1000000 )); }
step() {
	local name=\$1 t; shift
	t=\$(date +%s%N)
	timeout 120 "\$@" >"$work/\$name.out" 2>"$work/\$name.err" || { echo "step \$name failed (rc \$?): \$*" >&2; tail -n 20 "$work/\$name.err" >&2; exit 1; }
	echo "\$name \$(ms \$t)" >>"$work/times"
}
echo "job \$SLURM_JOB_ID" >"$work/job"
nodes=\$(scontrol show hostnames "\$SLURM_JOB_NODELIST")
step bringup srun --dragon -N$N "$JOIN"
step join srun --dragon -N$N "$JOIN"
step plain srun -N$N true
step status srun --dragon -N1 "$DRAGON" status --json
step group srun --dragon -N1 "$DRAGON" "$HELLO" $GROUP
# A name published from a node in the middle, looked up from every node.
middle=\$(echo "\$nodes" | sed -n "$((N / 2 + 1))p")
step put srun --dragon -N1 -w "\$middle" "$JOIN" put scale.name "from-\$middle"
step get srun --dragon -N$N "$JOIN" get scale.name
step a2a srun --dragon -N$N --ntasks-per-node=1 "$TOOL" a2a "\$SLURM_JOB_ID" 200 1000
EOF
chmod +x "$work/job.sh"
timeout 600 salloc -Q --dragon -N"$N" "$work/job.sh" >"$work/salloc.out" 2>"$work/salloc.err"
rc=$?
cat "$work/times" 2>/dev/null | sed 's/^/# step ms: /'
[ "$rc" = 0 ] || fail "the --dragon job failed (rc $rc): $(tail -n 25 "$work/salloc.err" "$work/salloc.out")"
job=$(sed -n 's/^job //p' "$work/job")
note "job $job; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# check WHAT COMMAND...: the check must hold, or FAIL naming it and the step's output.
check() {
	local what=$1 out=$2
	shift 2
	"$@" || fail "$what; $out says: $(head -c 3000 "$work/$out")"
	echo "ok - $what"
}
count() { grep -cE "$1" "$work/$2"; }
distinct() { grep -E "$1" "$work/$2" | awk -v f="$3" '{print $f}' | sort -u | wc -l; }

for s in bringup join; do
	check "$s: all $N tasks joined fabric job$job with $N nodes" $s.out \
		test "$(count "^joined job$job [0-9]+ $N " $s.out)" -eq "$N"
	check "$s: $N distinct node indexes on $N distinct hosts" $s.out \
		test "$(grep "^joined" "$work/$s.out" | awk '{print $3, $5}' | sort -u | awk '{print $1}' | sort -u | wc -l)" -eq "$N" \
		-a "$(distinct "^joined" $s.out 5)" -eq "$N"
done
check "dragon status lists $N nodes" status.out test "$(grep -c '"ls_pid"' "$work/status.out")" -eq "$N"
check "dragon status names $N distinct hosts" status.out \
	test "$(grep -oE '"host": "[^"]+"' "$work/status.out" | sort -u | wc -l)" -eq "$N"
check "a group of $GROUP: every member said hello" group.out test "$(count '^hello from rank [0-9]+ of '$GROUP' on ' group.out)" -eq "$GROUP"
check "a group of $GROUP: members on all $N nodes" group.out test "$(distinct '^hello from rank' group.out 8)" -eq "$N"
check "a group of $GROUP: every rank once" group.out \
	test "$(grep '^hello from rank' "$work/group.out" | awk '{print $4}' | sort -un | wc -l)" -eq "$GROUP"
check "a group of $GROUP: all done with status 0" group.out grep -q "^$GROUP workers done, worst status 0" "$work/group.out"
value=$(awk '/^joined/ {print $5}' "$work/put.out")
check "the name was published on one node" put.out test -n "$value"
check "the name is found from all $N nodes, with its value" get.out \
	test "$(count "^name scale.name = from-$value\$" get.out)" -eq "$N" -a "$(distinct "^joined" get.out 5)" -eq "$N"
check "all-to-all: each of $N tasks received 200 from each of $((N - 1)) peers in order, bytes checked" a2a.out \
	test "$(count "^a2a [0-9]+ of $N: sent 200 to each of $((N - 1)) peers, received $((200 * (N - 1))) in order" a2a.out)" -eq "$N"
wait_fabric_gone 30
echo "ok - the job's local services and transport agents ended with it"
note "load average $(cut -d' ' -f1-3 /proc/loadavg)"
# cluster_down (on exit) checks that nothing of the cluster is left.
