#!/usr/bin/env bats
# tests/integration/lostnode.bats: a fabric that loses a node mid-job goes on without it; one that loses its head node ends everywhere but on a cut-off head node; steps on a node that left fail at once (run by cluster.sh).
bats_require_minimum_version 1.5.0

load common

# The job of each test: the victim (lost_check victim) on the third node holds a name, a group
# and a channel; the survivor (lost_check survivor) on the second node waits for a group member
# on the victim's node. Then the test takes the third node away; the survivor reports what it
# sees, and the script shows `dragon status`, runs a later --dragon step on the two nodes left
# and shows the fabric step's log. With TRAFFIC=1 the second node also streams to an echo on
# the first (that must go on) and sends to a channel on the third (that must fail).
write_job() {
	cat >"$work/job.sh" <<-EOF
	#!/bin/sh
	nodes=\$(scontrol show hostnames "\$SLURM_JOB_NODELIST")
	n1=\$(echo "\$nodes" | sed -n 1p); n2=\$(echo "\$nodes" | sed -n 2p); n3=\$(echo "\$nodes" | sed -n 3p)
	CH="$B/tests/ta/chtool"; LC="$B/tests/integration/lost_check"
	srun --overlap -N1 -n1 -w "\$n3" "\$LC" victim T 6001 >"$work/victim.out" 2>&1 &
	for i in \$(seq 300); do grep -q "victim ready" "$work/victim.out" && break; sleep 0.1; done
	if [ "${TRAFFIC:-0}" = 1 ]; then
		srun --overlap -N1 -n1 -w "\$n3" "\$CH" serve lq 100000000 1 >"$work/lq.out" 2>&1 &
		for i in \$(seq 300); do grep -q ready "$work/lq.out" && break; sleep 0.1; done
		srun --overlap -N1 -n1 -w "\$n2" "\$CH" send lq 0 100000000 1024 deposited >"$work/lsend.out" 2>&1 &
		srun --overlap -N1 -n1 -w "\$n1" "\$CH" echo e1 s1 >"$work/echo.out" 2>&1 &
		srun --overlap -N1 -n1 -w "\$n2" "\$CH" stream s1 e1 65536 20 >"$work/stream.out" 2>&1 &
		stream=\$!
	fi
	if [ "${PY:-0}" = 1 ]; then
		srun --overlap -N1 -n1 -w "\$n2" env PYTHONPATH="$B/python" /usr/bin/python3 "$work/lost_parent.py" 2 >"$work/py.out" 2>&1 &
		pyparent=\$!
		for i in \$(seq 300); do grep -q "python parent ready" "$work/py.out" && break; sleep 0.1; done
	fi
	puid=\$(sed -n 's/^victim puid //p' "$work/victim.out")
	srun --overlap -N1 -n1 -w "\$n2" "\$LC" survivor T 6002 30000 "\$puid" >"$work/survivor.out" 2>&1 &
	survivor=\$!
	for i in \$(seq 300); do grep -q "survivor ready" "$work/survivor.out" && break; sleep 0.1; done
	echo "script ready"
	wait \$survivor
	echo "survivor rc=\$?"
	[ -n "\${stream:-}" ] && { wait \$stream; echo "stream rc=\$?"; }
	[ -n "\${pyparent:-}" ] && { wait \$pyparent; echo "python rc=\$?"; }
	"$DRAGON" status
	t0=\$(date +%s%N)
	srun --overlap --dragon=startup_timeout=20 -N2 -w "\$n1,\$n2" "$JOIN"
	echo "later step rc=\$? in \$(( (\$(date +%s%N) - t0) / 1000000 )) ms"
	sed 's/^/log: /' "/tmp/dragon-run/\$(id -u)/\$SLURM_JOB_ID/job\$SLURM_JOB_ID.log"
	echo "script done"
	# Then a step on the node the test names in later.host (none: skipped): on a node that left
	# the fabric it must fail at once, saying so.
	for i in \$(seq 1200); do [ -s "$work/later.host" ] && break; sleep 0.1; done
	h=\$(cat "$work/later.host" 2>/dev/null)
	if [ -n "\$h" ] && [ "\$h" != none ]; then
		t0=\$(date +%s%N)
		srun --overlap --dragon=startup_timeout=30 -N1 -w "\$h" "$JOIN" >"$work/lost_step.out" 2>&1
		echo "lost step rc=\$? in \$(( (\$(date +%s%N) - t0) / 1000000 )) ms"
		sed 's/^/lost step: /' "$work/lost_step.out"
	fi
	echo "lost step done"
	exec sleep 300
	EOF
}

# Run a --dragon step (startup_timeout 30 s) on host $1 from the job script; it must fail within a
# few seconds naming the host and saying it left the fabric, with why ($2, a regex).
assert_lost_step_fails_fast() {
	echo "$1" >"$work/later.host"
	for _ in $(seq 600); do grep -q "^lost step done" "$work/out" && break; sleep 0.1; done
	sed -n '/^script done/,$p' "$work/out"
	grep -q "^lost step done" "$work/out"
	grep -qE "^lost step rc=[1-9][0-9]* in [0-9]+ ms" "$work/out"
	# The figure, in the TAP log.
	echo "# a step on $1, which left the fabric: $(sed -n 's/^lost step //p' "$work/out" | head -n 1)" >&3
	[ "$(sed -n 's/^lost step rc=.* in \([0-9]*\) ms$/\1/p' "$work/out")" -lt 10000 ]
	grep -qE "^lost step: .*dragon: node $1 is no longer part of the job's fabric: .*$2" "$work/out"
	grep -qE "^lost step: .*a fabric takes no node back: run the job's later --dragon steps without this node \(srun -x $1\)" "$work/out"
}

# Submit the job (extra sbatch arguments in "$@"), wait for its script to be ready; sets job.
start_job() {
	write_job
	cp "$top_srcdir/tests/integration/lost_parent.py" "$work/"
	run timeout 60 sbatch --parsable --dragon --no-kill -N3 -o "$work/out" "$@" "$work/job.sh"
	[ "$status" -eq 0 ]
	job=$output
	for _ in $(seq 600); do grep -q "^script ready" "$work/out" 2>/dev/null && break; sleep 0.1; done
	cat "$work/out" "$work/victim.out" "$work/survivor.out" 2>/dev/null || true
	grep -q "^script ready" "$work/out"
	grep -q "^survivor ready on node 1" "$work/survivor.out"
	grep -q "^victim ready on node 2" "$work/victim.out"
	[ "$(fabric_procs "$job" | wc -l)" -eq 3 ]
}

wait_script_done() {
	for _ in $(seq 900); do grep -q "^script done" "$work/out" && break; sleep 0.1; done
	cat "$work/out"
	cat "$work/survivor.out"
	grep -q "^script done" "$work/out"
}

# What the survivor and the script saw once node 2 was lost (the survivor's wait was answered
# by the node's loss within $1 ms).
assert_survivors_saw() {
	local s="$work/survivor.out"
	grep -q "^survivor rc=0" "$work/out"
	# The member on the lost node ended with DRAGON_STATUS_NODE_LOST (256), its group wait returned.
	grep -qE "^group wait_any: DRAGON_OK: success puid-node 2 status 256 after [0-9]+ ms" "$s"
	[ "$(sed -n 's/^group wait_any: .* after \([0-9]*\) ms$/\1/p' "$s")" -lt "$1" ]
	grep -q "^process wait: DRAGON_OK: success status 256 " "$s"
	# So did a wait for a process there that was under way (passed through the head node).
	grep -q "^process wait under way: DRAGON_OK: success status 256 " "$s"
	grep -q "^process signal: DRAGON_EPEER" "$s"
	grep -q "^group wait_all: DRAGON_OK: success worst 256 " "$s"
	# What the victim owned is released: its name and its group (named) are gone.
	grep -q "^victim name: DRAGON_ENOTFOUND" "$s"
	grep -q "^victim group: DRAGON_ENOTFOUND" "$s"
	# The lost node's channel fails with EPEER: at once once local services told the agent (a wait
	# already under way within the agent's dead time, 5 s), a buffered send too.
	grep -qE "^victim channel recv: DRAGON_EPEER: .* after [0-9]+ ms" "$s"
	[ "$(sed -n 's/^victim channel recv: .* after \([0-9]*\) ms$/\1/p' "$s")" -lt 15000 ]
	grep -q "^victim channel send: DRAGON_EPEER" "$s"
	grep -q "^victim channel buffered send: DRAGON_EPEER" "$s"
	# New groups go to the nodes that are left.
	grep -q "^new group: OK" "$s"
	grep -q "^new group wait_all: DRAGON_OK: success worst 143" "$s"
	# dragon status shows the lost node as lost.
	grep -qE "^  node 2: host dgtc[0-9]*-node3, local services pid [0-9]+, [0-9]+ cpus, LOST$" "$work/out"
	grep -qE "^  node 1: host dgtc[0-9]*-node2, local services pid [0-9]+, [0-9]+ cpus$" "$work/out"
	# A later --dragon step on the nodes that are left joins at once (far below its startup_timeout).
	[ "$(grep -c "^joined job$job [01] 3 " "$work/out")" -eq 2 ]
	grep -qE "^later step rc=0 in [0-9]+ ms" "$work/out"
	[ "$(sed -n 's/^later step rc=0 in \([0-9]*\) ms$/\1/p' "$work/out")" -lt 10000 ]
	# The fabric is still up on the two other nodes; nothing the victim started runs anywhere
	# (its group's members on nodes 0 and 1 were ended for it; what ran on node 2 died with it).
	[ "$(fabric_procs "$job" | wc -l)" -eq 2 ]
	[ "$(fabric_tas "$job" | wc -l)" -eq 2 ]
	# A cut node's local services end its processes as they stop, after their agent's last
	# 2 s: wait for that (bounded) rather than catch them mid-way.
	for _ in $(seq 300); do
		[ -z "$(pgrep -f '^sleep 6001$' || true)" ] && break
		sleep 0.1
	done
	[ -z "$(pgrep -f '^sleep 6001$' || true)" ]
}

# Cancel the job and check nothing is left; $1: how many seconds Slurm may take to end it (a node
# whose network was cut may take Slurm a while to complete on a loaded machine).
end_job() {
	scancel "$job"
	for _ in $(seq $((${1:-30} * 10))); do [ -z "$(squeue -h -j "$job")" ] && break; sleep 0.1; done
	squeue -h -j "$job" -o '%i %T %R'
	sinfo -h -N -o '%N %T %E'
	[ -z "$(squeue -h -j "$job")" ]
	assert_job_clean "$job"
}

teardown() {
	# Put the network back whatever happened, and the node back in service.
	if [ -n "${cut_ns:-}" ]; then
		ip -n "$cut_ns" link set eth0 up 2>/dev/null || true
		scontrol update nodename="$cut_ns" state=resume 2>/dev/null || true
	fi
	[ -n "${job:-}" ] && scancel "$job" 2>/dev/null
	rm -rf "$work"
}

@test "a node whose local services are killed is lost: its processes end with status 256 (Python children's exitcode too), what it owned is released, its channels fail with EPEER, status shows it lost, a later step joins at once, a step on it fails at once" {
	PY=1 start_job
	grep -q "^python parent ready on node 1; NODE_LOST 256" "$work/py.out"
	grep -q "^children on nodes 2 2 2; pids True True" "$work/py.out"
	victim=$(ls_of_node "$job" 2)
	[ -n "$victim" ]
	host=$(nsenter -t "$victim" -u hostname)
	kill -KILL "$victim"
	wait_script_done
	cat "$work/py.out"
	grep -q "^log: dragon-ls\[[0-9]*\]: node 2 ($host) is lost: the peer closed the link; the fabric goes on without it" "$work/out"
	grep -q "^log: dragon-ls\[[0-9]*\]: node 2 is lost (the head node reports it)" "$work/out"
	assert_survivors_saw 5000
	# The Python parent's children on the lost node: a multiprocessing child's exitcode and
	# dragon.native Processes' returncode are dragon.NODE_LOST (256), soon after the loss.
	grep -q "^python rc=0" "$work/out"
	grep -qE "^mp exitcode 256 after [0-9]+ ms" "$work/py.out"
	grep -qE "^native callable returncode 256 after [0-9]+ ms" "$work/py.out"
	grep -qE "^native program returncode 256 after [0-9]+ ms" "$work/py.out"
	[ "$(sed -n 's/^mp exitcode 256 after \([0-9]*\) ms$/\1/p' "$work/py.out")" -lt 20000 ]
	[ -z "$(pgrep -f '^/bin/sleep 6003$' || true)" ]
	# A step on the lost node: its local services were killed (their ls.ready names a dead process).
	assert_lost_step_fails_fast "$host" "node 2 \(this node\): its local services \(pid $victim\) died; the fabric goes on without this node"
	end_job
}

@test "a node cut off the network while traffic flows is lost within the node timeout; traffic between the others goes on; the cut node stops itself" {
	TRAFFIC=1 DRAGON_NODE_TIMEOUT=3 start_job --export=ALL,DRAGON_NODE_TIMEOUT=3
	victim=$(ls_of_node "$job" 2)
	[ -n "$victim" ]
	cut_ns=$(nsenter -t "$victim" -u hostname)
	ta=$(pgrep -P "$victim" -f dragon-ta)
	[ -n "$ta" ]
	grep -q ready "$work/lq.out"
	ip -n "$cut_ns" link set eth0 down
	# The survivor's checks are done once its last line is there; then the network comes back
	# (well before slurmctld would find the node not responding).
	for _ in $(seq 300); do grep -q "^new group wait_all" "$work/survivor.out" && break; sleep 0.1; done
	# The cut node noticed too and stopped its local services and agent.
	for _ in $(seq 100); do ! kill -0 "$victim" 2>/dev/null && ! kill -0 "$ta" 2>/dev/null && break; sleep 0.1; done
	ip -n "$cut_ns" link set eth0 up
	! kill -0 "$victim" 2>/dev/null
	! kill -0 "$ta" 2>/dev/null
	wait_script_done
	cat "$work/stream.out" "$work/lsend.out" || true
	grep -qE "^log: dragon-ls\[[0-9]*\]: node 2 \($cut_ns\) is lost: nothing heard for [0-9]+ ms \(node timeout 3000 ms\)" "$work/out"
	# Lost within the node timeout (3 s), a heartbeat (0.6 s) and a margin for a loaded machine.
	assert_survivors_saw 8000
	# The stream between the first two nodes ran through the cut to its end.
	grep -q "^stream rc=0" "$work/out"
	grep -q "^size 65536 round-trip bandwidth" "$work/stream.out"
	# The sender to the cut node's channel was told the node is unreachable.
	grep -q "EPEER" "$work/lsend.out"
	# Back on the network, the cut node is not part of the fabric: a step there fails at once.
	assert_lost_step_fails_fast "$cut_ns" "node 2 \($cut_ns\): this node lost the head node \(nothing heard for [0-9]+ ms.*\) and left the job's fabric"
	end_job 90
	# Back in service (bounded: a loaded machine takes a while to complete the job there).
	for _ in $(seq 600); do sinfo -h -n "$cut_ns" -o '%T' | grep -qx idle && break; sleep 0.1; done
	sinfo -h -n "$cut_ns" -o '%T %E'
	sinfo -h -n "$cut_ns" -o '%T' | grep -qx idle
}

@test "the head node's loss ends the fabric on every node within a bounded time: its local services, agents and processes, and the fabric step" {
	start_job
	head=$(ls_of_node "$job" 0)
	[ -n "$head" ]
	[ "$(pgrep -f '^sleep 600[12]$' | wc -l)" -eq 7 ]
	fsrun=$(pgrep -f "^srun .*--job-name=dragon-fabric .*--dir [^ ]+/$job " | head -n 1)
	[ -n "$fsrun" ]
	h1=$(nsenter -t "$head" -u hostname)
	h3=$(nsenter -t "$(ls_of_node "$job" 2)" -u hostname)
	SECONDS=0
	kill -KILL "$head"
	# Each node sees its link to the head node close (or go silent: the node timeout, 10 s)
	# and stops: SIGTERM, SIGKILL after 2 s.
	for _ in $(seq 300); do
		[ -z "$(fabric_procs "$job"; fabric_tas "$job"; pgrep -f '^sleep 600[12]$')" ] && break
		sleep 0.05
	done
	took=$SECONDS
	[ -z "$(fabric_procs "$job")" ]
	[ -z "$(fabric_tas "$job")" ]
	[ -z "$(pgrep -f '^sleep 600[12]$' || true)" ]
	[ "$took" -lt 15 ]
	# The fabric step is over.
	for _ in $(seq 100); do ! kill -0 "$fsrun" 2>/dev/null && break; sleep 0.1; done
	! kill -0 "$fsrun" 2>/dev/null
	# Later steps fail at once, on every node: the head node's (its local services died) ...
	wait_script_done
	grep -qE "^later step rc=[1-9][0-9]* in [0-9]+ ms" "$work/out"
	[ "$(sed -n 's/^later step rc=.* in \([0-9]*\) ms$/\1/p' "$work/out")" -lt 10000 ]
	echo "# a step on the nodes of a fabric whose head node died: $(sed -n 's/^later step //p' "$work/out")" >&3
	grep -qE "dragon: node $h1 is no longer part of the job's fabric: node 0 \(this node\): the head node's local services \(pid $head\) died; the job's fabric ended with them" "$work/out"
	# ... and the others' (they lost the head node and stopped).
	assert_lost_step_fails_fast "$h3" "node 2 \($h3\): this node lost the head node \(the peer closed the link\)"
	end_job
}

@test "a head node cut off the network: the other nodes stop within the node timeout; the head node goes on alone (it cannot tell this from losing every other node); steps on the others fail at once" {
	DRAGON_NODE_TIMEOUT=3 start_job --export=ALL,DRAGON_NODE_TIMEOUT=3
	head=$(ls_of_node "$job" 0)
	ls1=$(ls_of_node "$job" 1)
	ls2=$(ls_of_node "$job" 2)
	[ -n "$head" ] && [ -n "$ls1" ] && [ -n "$ls2" ]
	cut_ns=$(nsenter -t "$head" -u hostname)
	h2=$(nsenter -t "$ls1" -u hostname)
	h3=$(nsenter -t "$ls2" -u hostname)
	SECONDS=0
	ip -n "$cut_ns" link set eth0 down
	# The other nodes find the head node silent past the node timeout (3 s) and stop (SIGKILL
	# after 2 s at most); the network comes back once they did.
	for _ in $(seq 200); do ! kill -0 "$ls1" 2>/dev/null && ! kill -0 "$ls2" 2>/dev/null && break; sleep 0.1; done
	took=$SECONDS
	ip -n "$cut_ns" link set eth0 up
	! kill -0 "$ls1" 2>/dev/null
	! kill -0 "$ls2" 2>/dev/null
	[ "$took" -lt 10 ]
	[ -z "$(pgrep -f '^sleep 6001$' || true)" ]
	# The head node's local services go on, having lost the two others.
	kill -0 "$head"
	wait_script_done
	grep -qE "^log: dragon-ls\[[0-9]*\]: node 1 \($h2\) is lost: nothing heard for [0-9]+ ms \(node timeout 3000 ms\)" "$work/out"
	grep -qE "^log: dragon-ls\[[0-9]*\]: node 2 \($h3\) is lost: nothing heard for [0-9]+ ms \(node timeout 3000 ms\)" "$work/out"
	grep -qE "^  node 1: host $h2, .*, LOST$" "$work/out"
	# The later step on the first two nodes: the head node's task joins, the other's fails at once.
	[ "$(grep -c "^joined job$job 0 3 " "$work/out")" -eq 1 ]
	grep -qE "^later step rc=[1-9][0-9]* in [0-9]+ ms" "$work/out"
	[ "$(sed -n 's/^later step rc=.* in \([0-9]*\) ms$/\1/p' "$work/out")" -lt 10000 ]
	grep -qE "dragon: node $h2 is no longer part of the job's fabric: node 1 \($h2\): this node lost the head node \(nothing heard" "$work/out"
	assert_lost_step_fails_fast "$h3" "node 2 \($h3\): this node lost the head node \(nothing heard for [0-9]+ ms"
	kill -0 "$head"
	end_job 90
	# Back in service (bounded: a loaded machine takes a while to complete the job there).
	for _ in $(seq 600); do sinfo -h -n "$cut_ns" -o '%T' | grep -qx idle && break; sleep 0.1; done
	sinfo -h -n "$cut_ns" -o '%T %E'
	sinfo -h -n "$cut_ns" -o '%T' | grep -qx idle
}
