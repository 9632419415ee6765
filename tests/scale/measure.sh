#!/bin/bash
# tests/scale/measure.sh: make scale-measure: bring-up and joining-step times and the head node's costs at 1, 2, 4, 8 and 16 nodes, for docs/scale.md.
# Needs root. One test cluster of the largest size stays up while it measures; SCALE_RUNS jobs per
# size (sizes interleaved, so that a change of the machine's load spreads over all of them), each
# job measured by job_measure.py. Writes every job's figures (JSON lines, load average included)
# and the medians per size (scale.dat, what docs/images/scale.gp plots) into SCALE_OUT.
set -u
S=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
B=$(cd "${top_builddir:-$S/build}" && pwd)
. "$S/tests/scale/common.sh"

SIZES=${SCALE_SIZES:-1 2 4 8 16}
RUNS=${SCALE_RUNS:-5}
JOIN_RUNS=${SCALE_JOIN_RUNS:-5}
LOOKUPS=${SCALE_LOOKUPS:-200}
OUT=${SCALE_OUT:-$B/scale-results}
max=0
for n in $SIZES; do
	case $n in '' | *[!0-9]* | 0) fail "SCALE_SIZES must be node counts, got '$n'" ;; esac
	[ "$n" -gt "$max" ] && max=$n
done
need "$B/tests/integration/join_check" "$B/runtime/launcher/dragon" "$B/tests/scale/scaletool" \
	"$B/spank/.libs/spank_dragon.so" "$B/runtime/ls/dragon-ls" "$B/runtime/ta/dragon-ta"
mkdir -p "$OUT" || fail "cannot create $OUT"
: >"$OUT/runs.jsonl"

pick_instance
cluster_up "$max"
work=$(mktemp -d "$DRAGON_TC_STATE/measure.XXXXXX")
cp "$S/tests/scale/job_measure.py" "$work/"
note "measuring sizes [$SIZES], $RUNS jobs each; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$RUNS"); do
	for n in $SIZES; do
		SCALE_NETNS=$node_nets SCALE_T0=$(date +%s.%N) timeout 600 salloc -Q --dragon -N"$n" /usr/bin/python3 "$work/job_measure.py" \
			"$B" "$n" "$JOIN_RUNS" "$LOOKUPS" >"$work/out" 2>"$work/err" ||
			fail "the measuring job of $n nodes failed: $(tail -n 20 "$work/err" "$work/out")"
		line=$(sed -n 's/^MEASURE //p' "$work/out")
		[ -n "$line" ] || fail "the measuring job of $n nodes printed no figures: $(tail -n 20 "$work/err" "$work/out")"
		echo "$line" >>"$OUT/runs.jsonl"
		note "run $r, $n nodes: $(echo "$line" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print("bring-up %.0f ms, join %.0f ms (plain %.0f), head CPU/join step %.2f ms, load %.1f" % (d["bringup_ms"], d["join_ms"], d["plain_ms"], d["head_cpu_per_join_step_ms"], d["load_end"]))')"
	done
done
wait_fabric_gone 30
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
runs = [json.loads(l) for l in open(out + "/runs.jsonl")]
cols = ["ready_ms", "bringup_ms", "first_step_ms", "join_ms", "join_true_ms", "plain_ms",
        "ls_start_spread_ms", "ls_to_ready_ms", "ls_to_key_ms", "key_to_peers_ms", "peers_to_ready_ms", "head_ready_after_last_ms",
        "head_cpu_bringup_ms", "other_cpu_bringup_ms", "head_cpu_per_join_step_ms", "other_cpu_per_join_step_ms",
        "head_cpu_status_step_ms", "status_bytes", "head_cpu_per_relayed_us", "other_cpu_per_lookup_us",
        "lookup_us_median", "status_ms", "group_ms", "head_cpu_per_member_us", "head_rss_kb", "other_rss_kb", "load_end"]
sizes = sorted({r["nodes"] for r in runs})
with open(out + "/scale.dat", "w") as f:
    f.write("# medians over %d jobs per size (tests/scale/measure.sh); columns:\n# nodes %s\n"
            % (len(runs) // len(sizes), " ".join(cols)))
    for n in sizes:
        rs = [r for r in runs if r["nodes"] == n]
        f.write("%d %s\n" % (n, " ".join("%.3f" % statistics.median(r.get(c, 0) for r in rs) for c in cols)))
print(open(out + "/scale.dat").read())
PY
note "figures in $OUT (runs.jsonl, scale.dat); load average $(cut -d' ' -f1-3 /proc/loadavg)"
