#!/bin/bash
# tests/scale/soak.sh: make soak: SOAK_MINUTES (default 30) of every node of 3 streaming mixed sizes to every other node's channels and back; 0 lost, 0 duplicated, order kept; the daemons' memory and descriptors flat.
# Needs root (a 3-node test cluster of its own). Not in CI. The tasks check every message
# (scaletool soak); this script samples the memory and descriptor count of every node's local
# services and transport agent once the traffic runs, half way and just before it ends, and
# fails on growth: descriptors must not grow at all, a daemon's own memory (anonymous resident
# memory: its heap) not by more than SOAK_RSS_SLACK_KB (default 2048) over the second half (the
# first half includes the warm-up). The pages of the job's pools that an agent maps (shared
# memory, bounded by the pools' size: they grow as the pools' allocators reach further into
# them) are reported, not judged. The summary goes to SOAK_OUT (default
# BUILD/soak-results/soak.txt).
set -u
S=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
B=$(cd "${top_builddir:-$S/build}" && pwd)
. "$S/tests/scale/common.sh"

MIN=${SOAK_MINUTES:-30}
case $MIN in '' | *[!0-9.]*) fail "SOAK_MINUTES must be a number of minutes, got '$MIN'" ;; esac
SECS=$(awk -v m="$MIN" 'BEGIN {printf "%d", m * 60}')
[ "$SECS" -ge 20 ] || fail "SOAK_MINUTES=$MIN is too short (20 s at least)"
SLACK=${SOAK_RSS_SLACK_KB:-2048}
OUT=${SOAK_OUT:-$B/soak-results}
TOOL=$B/tests/scale/scaletool
need "$TOOL" "$B/spank/.libs/spank_dragon.so" "$B/runtime/ls/dragon-ls" "$B/runtime/ta/dragon-ta"
mkdir -p "$OUT" || fail "cannot create $OUT"

pick_instance
cluster_up 3
work=$(mktemp -d "$DRAGON_TC_STATE/soak.XXXXXX")
cat >"$work/job.sh" <<EOF
#!/bin/sh
#SBATCH --dragon
#SBATCH -N3
#SBATCH -o $work/job.out
srun -K --dragon -N3 --ntasks-per-node=1 "$TOOL" soak "\$SLURM_JOB_ID" $SECS
echo "soak rc \$?"
EOF
job=$(sbatch --parsable "$work/job.sh") || fail "sbatch failed"
start=$SECONDS
note "job $job: 3 nodes, $SECS s; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# daemons: "pid name" of the job's local services and transport agents (all nodes share our pid
# namespace; those in this cluster's network namespaces: another instance may run the same job id).
on_our_nodes() { case " $node_nets " in *" $(stat -L -c %i "/proc/$1/ns/net" 2>/dev/null) "*) return 0 ;; esac; return 1; }
daemons() {
	local p
	for p in $(pgrep -f "^$B/runtime/ls/dragon-ls --dir [^ ]+/$job --fabric-id job$job "); do on_our_nodes "$p" && echo "$p ls"; done
	for p in $(pgrep -f "^$B/runtime/.*dragon-ta --node [0-9]+ --dir [^ ]+/$job "); do on_our_nodes "$p" && echo "$p ta"; done
}
# sample: "name pid anon_kb fds shmem_kb" per daemon (resident memory of its own, descriptors,
# resident pages of shared pools)
sample() {
	local pid name
	daemons | while read -r pid name; do
		echo "$name $pid $(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null) $(ls "/proc/$pid/fd" 2>/dev/null | wc -l) $(awk '/^RssShmem/ {print $2}' "/proc/$pid/status" 2>/dev/null)"
	done | sort
}
done_job() { ! squeue -h -j "$job" 2>/dev/null | grep -q .; }

# The first sample once the traffic has run a while (a tenth of the soak, 10 to 60 s): the
# channels, pools and peers are set up by then.
warm=$((SECS / 10))
[ "$warm" -lt 10 ] && warm=10
[ "$warm" -gt 60 ] && warm=60
while [ $((SECONDS - start)) -lt "$warm" ]; do
	done_job && fail "the job ended before the first sample: $(cat "$work/job.out" 2>/dev/null | tail -n 20)"
	sleep 1
done
sample >"$work/first"
[ "$(wc -l <"$work/first")" = 6 ] || fail "expected 3 local services and 3 agents, found: $(cat "$work/first")"
# Every minute, and the last a few seconds before the traffic stops.
: >"$work/trail"
next=$((start + 60))
while [ $((SECONDS - start)) -lt $((SECS - 5)) ]; do
	done_job && fail "the job ended early: $(tail -n 20 "$work/job.out" 2>/dev/null)"
	sleep 1
	[ ! -e "$work/mid" ] && [ $((SECONDS - start)) -ge $((SECS / 2)) ] && sample >"$work/mid"
	if [ "$SECONDS" -ge "$next" ]; then
		next=$((next + 60))
		echo "$((SECONDS - start)) s: $(sample | awk '{printf "%s %s kB own + %s kB pools, %s fds; ", $1, $3, $5, $4}')" >>"$work/trail"
	fi
done
sample >"$work/last"
note "last sample at $((SECONDS - start)) s; waiting for the job to end"
end=$((SECONDS + 300))
until done_job; do
	[ "$SECONDS" -ge "$end" ] && fail "the job did not end within 300 s of its soak's end: $(tail -n 20 "$work/job.out")"
	sleep 1
done
load=$(cut -d' ' -f1-3 /proc/loadavg)
cat "$work/job.out"
grep -q "^soak rc 0$" "$work/job.out" || fail "the soak's tasks failed: $(tail -n 30 "$work/job.out")"
[ "$(grep -c "0 lost, 0 duplicated$" "$work/job.out")" = 3 ] || fail "not all 3 tasks reported 0 lost, 0 duplicated"

# Growth per daemon: first, half-way and last samples side by side (same pids).
join -j 2 -o 1.1,0,1.3,2.3,1.4,2.4,1.5,2.5 <(sort -k2,2 "$work/first") <(sort -k2,2 "$work/mid") >"$work/g1"
join -j 2 -o 1.1,0,1.3,1.4,2.3,1.5,2.4,1.7,1.8,2.5 <(sort -k2,2 "$work/g1") <(sort -k2,2 "$work/last") >"$work/growth"
[ "$(wc -l <"$work/growth")" = 6 ] || fail "the daemons changed during the soak: first [$(cat "$work/first")] last [$(cat "$work/last")]"
{
	echo "soak of $SECS s on 3 nodes (job $job), ended $(date -u '+%Y-%m-%d %H:%M UTC'), load average at the end $load"
	grep "^soak [0-9] of 3:" "$work/job.out"
	echo "daemon pid own_kb_first own_kb_half own_kb_last fds_first fds_last pools_kb_first pools_kb_half pools_kb_last (own: anonymous resident memory; pools: resident pages of shared pools; first sample at ${warm} s, half at $((SECS / 2)) s, last 5 s before the end)"
	cat "$work/growth"
	echo "every minute:"
	cat "$work/trail"
} >"$OUT/soak.txt"
cat "$OUT/soak.txt"
bad=$(awk -v s="$SLACK" '$5 > $4 + s || $7 > $6 {print}' "$work/growth")
[ -z "$bad" ] || fail "a daemon's own memory grew over the second half, or its descriptors grew (name pid own own own fds fds pools pools pools): $bad"
echo "ok - 0 lost, 0 duplicated, order kept per sender; the own memory and the descriptors of every local services and agent flat"
wait_fabric_gone 30
