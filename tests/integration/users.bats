#!/usr/bin/env bats
# tests/integration/users.bats: another user's job on the nodes of a running --dragon job: what it can reach of that job, and whether its bytes on the job's ports hurt it (run by cluster.sh).
bats_require_minimum_version 1.5.0

load common

# The intruder: a user that is neither root (the job's owner here) nor anyone else's.
OTHER=nobody

# A job left by a failed test is cancelled (common.bash's teardown removes the work directory).
teardown() {
	[ -z "${job:-}" ] || scancel "$job" 2>/dev/null || true
	rm -rf "$work"
}

@test "another user's job on the same nodes cannot reach a --dragon job's socket, runtime directory or processes, and its garbage, truncated frames and replays on the link and agent ports leave the job's data intact and its fabric serving" {
	getent passwd "$OTHER" >/dev/null
	CH="$B/tests/ta/chtool"
	name="kept$RANDOM"
	# The job keeps a channel with two messages on its first node, waits for the attack to end,
	# then reads them on its third node and runs one more --dragon step over all nodes.
	cat >"$work/job.sh" <<-EOF
	#!/bin/sh
	nodes=\$(scontrol show hostnames "\$SLURM_JOB_NODELIST")
	first=\$(echo "\$nodes" | sed -n 1p)
	third=\$(echo "\$nodes" | sed -n 3p)
	srun --overlap -N1 -n1 -w "\$first" "$CH" hold $name 120 "first message" "second message" >"$work/hold.out" 2>&1 &
	holder=\$!
	srun --overlap -N1 -n1 -w "\$third" "$CH" poll $name 10000 >/dev/null && touch "$work/up"
	for i in \$(seq 900); do [ -e "$work/go" ] && break; sleep 0.1; done
	srun --overlap -N1 -n1 -w "\$third" "$CH" recv $name 2 10000
	echo "recv status \$?"
	srun --overlap -N3 "$JOIN"
	echo "join status \$?"
	kill \$holder
	wait \$holder
	EOF
	run timeout 60 sbatch --parsable --dragon -N3 -o "$work/out" "$work/job.sh"
	[ "$status" -eq 0 ]
	job=$output
	for _ in $(seq 600); do [ -e "$work/up" ] && break; sleep 0.1; done
	cat "$work/out" || true
	[ -e "$work/up" ]

	# What the job runs: local services and agents on every node, and the task holding the channel.
	lss=$(pgrep -f "^$B/runtime/ls/dragon-ls --dir [^ ]+/$job " | sort)
	tas=$(pgrep -f "^$B/runtime/.*dragon-ta --node [0-9]+ --dir [^ ]+/$job " | sort)
	holder=$(pgrep -f "^$CH hold $name ")
	[ "$(echo "$lss" | wc -l)" -eq 3 ] && [ "$(echo "$tas" | wc -l)" -eq 3 ] && [ -n "$holder" ]
	rundir=$(tr '\0' '\n' </proc/"$holder"/environ | sed -n 's/^DRAGON_LS_SOCKET=\(.*\)\/ls\.sock$/\1/p')
	[ -n "$rundir" ]
	# Their ports, as the nodes' sockets show them: the head node's link port, each agent's.
	link="" agents=""
	for p in $lss; do
		l=$(nsenter -t "$p" -n ss -Hltnp | awk -v pid="pid=$p," 'index($0, pid) {print $4; exit}')
		[ -n "$l" ] && link=$(nsenter -t "$p" -n hostname -I | awk '{print $1}'):${l##*:}
	done
	for p in $tas; do
		a=$(nsenter -t "$p" -n ss -Hltnp | awk -v pid="pid=$p," 'index($0, pid) {print $4; exit}')
		[ -n "$a" ] && agents="$agents${agents:+,}$a"
	done
	echo "link $link agents $agents rundir $rundir"
	[ -n "$link" ] && [ "$(echo "$agents" | tr ',' '\n' | wc -l)" -eq 3 ]

	# The other user's job, on the same three nodes, while the first one runs.
	cp "$top_srcdir/tests/integration/intruder.py" "$work/intruder.py"
	chmod 755 "$work" "$work/intruder.py"
	pids=$(echo $lss $tas $holder | tr ' ' ',')
	run --separate-stderr timeout 120 runuser -u "$OTHER" -- srun --chdir=/ -N3 --ntasks-per-node=1 \
		-w "$(squeue -h -j "$job" -o %N)" /usr/bin/python3 "$work/intruder.py" "$rundir" "$pids" "$link" "$agents"
	echo "$output"
	echo "$stderr"
	touch "$work/go"
	[ "$status" -eq 0 ]
	! grep -q REACHED <<<"$output"
	# Every node refused every look, and the attacks were made.
	[ "$(grep -c '^refused local services. socket' <<<"$output")" -eq 3 ]
	[ "$(grep -c '^refused runtime directory listing' <<<"$output")" -eq 3 ]
	[ "$(grep -c "^refused /proc/$holder/mem" <<<"$output")" -eq 3 ]
	[ "$(grep -c '^sent link replayed frame' <<<"$output")" -eq 3 ]
	[ "$(grep -c '^sent agent garbage' <<<"$output")" -eq 9 ]

	# The first job: its daemons live, its data arrives, a new step joins its fabric.
	for p in $lss $tas $holder; do kill -0 "$p"; done
	for _ in $(seq 300); do grep -q "^join status" "$work/out" && break; sleep 0.1; done
	cat "$work/out"
	grep -qx "first message" "$work/out"
	grep -qx "second message" "$work/out"
	grep -qx "recv status 0" "$work/out"
	grep -qx "join status 0" "$work/out"
	[ "$(grep -c '^joined job[0-9]* [0-2] 3 ' "$work/out")" -eq 3 ]
	for _ in $(seq 300); do [ -z "$(squeue -h -j "$job")" ] && break; sleep 0.1; done
	[ -z "$(squeue -h -j "$job")" ]
}
