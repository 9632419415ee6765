#!/usr/bin/env bats
# tests/integration/python.bats: Python multiprocessing with the "dragon" start method across the 3 nodes of the test cluster (run by cluster.sh).
bats_require_minimum_version 1.5.0
load heal

setup() {
	tc_heal || return 1
	B="${top_builddir:?}"
	S="${top_srcdir:?}"
	DRAGON="$B/runtime/launcher/dragon"
	OUT="$(mktemp -d /var/tmp/dragon-python-bats.XXXXXX)"
	# The nodes see their own /tmp, where a checkout may be: the job runs a copy of the script.
	cp "$S/tests/python/multinode_hosts.py" "$OUT/"
}

teardown() {
	rm -rf "$OUT"
}

@test "python: dragon prog.py in a 3-node batch job puts Process and Pool children on all three nodes, and those bound to its node beside it" {
	cat > "$OUT/job.sh" <<-JOB
	#!/bin/sh
	PYTHONPATH="$B/python" "$DRAGON" /usr/bin/python3 "$OUT/multinode_hosts.py"
	echo "rc=\$?"
	JOB
	chmod +x "$OUT/job.sh"
	run timeout 300 sbatch -N3 -W -o "$OUT/job.out" "$OUT/job.sh"
	cat "$OUT/job.out"
	[ "$status" -eq 0 ]
	grep -q "^nodes 3 " "$OUT/job.out"
	grep -q "^process hosts dgtc[0-9]*-node1 dgtc[0-9]*-node2 dgtc[0-9]*-node3 " "$OUT/job.out"
	grep -q "^pool hosts dgtc[0-9]*-node1 dgtc[0-9]*-node2 dgtc[0-9]*-node3 map 24$" "$OUT/job.out"
	grep -q "^remote empty get: queue.Empty" "$OUT/job.out"
	grep -q "^remote round trip: ping$" "$OUT/job.out"
	grep -q "^manager hosts dgtc[0-9]*-node1 dgtc[0-9]*-node2 dgtc[0-9]*-node3$" "$OUT/job.out"
	# children given a loopback address or a SharedMemory ran on the parent's host; a policy
	# naming another host was followed
	parent=$(sed -n 's/^nodes 3 parent \([^ ]*\) .*/\1/p' "$OUT/job.out")
	grep -q "^bound child hosts $parent shm True policy host dgtc[0-9]*-node[0-9]$" "$OUT/job.out"
	! grep -q "^bound child hosts .* policy host $parent$" "$OUT/job.out"
	grep -q "^MULTINODE OK$" "$OUT/job.out"
	grep -q "^rc=0$" "$OUT/job.out"
}

@test "python: a srun --dragon task joins the job's fabric and spreads its children over the nodes" {
	run timeout 300 sbatch -N3 --dragon -W -o "$OUT/job.out" \
		--wrap "PYTHONPATH=$B/python srun --dragon -N1 -n1 /usr/bin/python3 $OUT/multinode_hosts.py"
	cat "$OUT/job.out"
	[ "$status" -eq 0 ]
	grep -q "^MULTINODE OK$" "$OUT/job.out"
}

@test "python: what children of a srun --dragon task print on the other nodes (Process, Pool, native ProcessGroup) reaches the task's stdout and stderr, each line once and whole" {
	cp "$S/tests/python/remote_output.py" "$OUT/"
	run timeout 300 sbatch -N3 --dragon -W -o "$OUT/job.out" -e "$OUT/job.err" \
		--wrap "PYTHONPATH=$B/python srun --dragon -N1 -n1 /usr/bin/python3 $OUT/remote_output.py"
	cat "$OUT/job.out"
	cat "$OUT/job.err"
	[ "$status" -eq 0 ]
	grep -q "^REMOTE OUTPUT DONE$" "$OUT/job.out"
	grep -q "^exitcodes \[0, 0\]$" "$OUT/job.out"
	parent=$(sed -n 's/^parent \([^ ]*\) others .*/\1/p' "$OUT/job.out")
	others=$(sed -n 's/^parent [^ ]* others \(.*\)/\1/p' "$OUT/job.out")
	[ -n "$parent" ] && [ "$(echo $others | wc -w)" -eq 2 ]
	pad=$(printf 'x%.0s' $(seq 100))
	# every line of each child, whole, once, on the stream it was printed to, from its host
	for h in $others; do
		n=$(grep -c "^rout $h p[0-9]* [0-9]* $pad\$" "$OUT/job.out")
		[ "$n" -eq 200 ] || { echo "$h: $n of 200 stdout lines"; false; }
		n=$(grep -c "^rerr $h p[0-9]* [0-9]* $pad\$" "$OUT/job.err")
		[ "$n" -eq 200 ] || { echo "$h: $n of 200 stderr lines"; false; }
		[ "$(grep "^rout $h " "$OUT/job.out" | sort -u | wc -l)" -eq 200 ]
		[ "$(grep "^rerr $h " "$OUT/job.err" | sort -u | wc -l)" -eq 200 ]
	done
	[ "$(grep -c "^rout " "$OUT/job.out")" -eq 400 ]
	[ "$(grep -c "^rerr " "$OUT/job.err")" -eq 400 ]
	! grep -q "^rerr " "$OUT/job.out"
	! grep -q "^rout " "$OUT/job.err"
	! grep -q "^r\(out\|err\) $parent " "$OUT/job.out" "$OUT/job.err"
	# Pool workers on another node: each task's lines once, whole
	first=$(echo $others | cut -d' ' -f1)
	[ "$(grep -c "^pout $first [0-9] $pad\$" "$OUT/job.out")" -eq 10 ]
	[ "$(grep -c "^perr $first [0-9] $pad\$" "$OUT/job.err")" -eq 10 ]
	[ "$(grep "^pout " "$OUT/job.out" | sort -u | wc -l)" -eq 10 ]
	# a native ProcessGroup over the three nodes: each member's line once, from every host
	grep -q "^group worst 0$" "$OUT/job.out"
	[ "$(grep -c "^nout dgtc[0-9]*-node[123] [012]$" "$OUT/job.out")" -eq 3 ]
	[ "$(grep "^nout " "$OUT/job.out" | cut -d' ' -f2 | sort -u | wc -l)" -eq 3 ]
	[ "$(grep -c "^nerr dgtc[0-9]*-node[123] [012]$" "$OUT/job.err")" -eq 3 ]
}
