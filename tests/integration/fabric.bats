#!/usr/bin/env bats
# tests/integration/fabric.bats: the plugin's fabric step: --dragon steps of a job join one fabric, and nothing is left when the job ends (run by cluster.sh).
bats_require_minimum_version 1.5.0

load common

@test "srun --dragon -N3: every task joins one fabric, named after the job, on 3 distinct nodes" {
	run --separate-stderr timeout 60 srun --dragon -N3 -n6 "$JOIN"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c '^joined job[0-9]* [0-2] 3 ')" -eq 6 ]
	[ "$(printf '%s\n' "$output" | awk '{print $2}' | sort -u | wc -l)" -eq 1 ]
	[ "$(printf '%s\n' "$output" | awk '{print $3}' | sort -u | tr '\n' ' ')" = "0 1 2 " ]
	# Each node index is one host.
	[ "$(printf '%s\n' "$output" | awk '{print $3, $5}' | sort -u | wc -l)" -eq 3 ]
	job=$(printf '%s\n' "$output" | awk 'NR==1 {sub("job", "", $2); print $2}')
	assert_job_clean "$job"
}

@test "a task of a --dragon step gets DRAGON_LS_SOCKET, DRAGON_FABRIC_ID and its node index and count" {
	run --separate-stderr timeout 60 srun --dragon -N3 sh -c \
		'echo "$DRAGON_FABRIC_ID $DRAGON_NODE_INDEX $DRAGON_NODE_COUNT $DRAGON_LS_SOCKET $DRAGON_FABRIC"; test -S "$DRAGON_LS_SOCKET"'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -cE '^(job[0-9]+) [0-2] 3 /tmp/dragon-run/[0-9]+/[0-9]+/ls\.sock \1$')" -eq 3 ]
}

@test "sbatch --dragon: three srun steps of the job see the same fabric; what step 1 named, steps 2 and 3 find" {
	cat >"$work/job.sh" <<-EOF
	#!/bin/sh
	#SBATCH --dragon
	#SBATCH -N3
	echo "batch DRAGON_FABRIC=\$DRAGON_FABRIC"
	srun -N3 "$JOIN" | sed "s/^/step1 /"
	srun -N1 "$JOIN" put greeting from-step2 | sed "s/^/step2 /"
	srun -N3 "$JOIN" get greeting | sed "s/^/step3 /"
	EOF
	run sbatch_wait -o "$work/out" "$work/job.sh"
	[ "$status" -eq 0 ]
	job=$output
	cat "$work/out"
	grep -qx "batch DRAGON_FABRIC=job$job" "$work/out"
	[ "$(grep -c "^step1 joined job$job [0-2] 3 " "$work/out")" -eq 3 ]
	[ "$(grep -c "^step2 joined job$job 0 3 " "$work/out")" -eq 1 ]
	[ "$(grep -c "^step3 joined job$job [0-2] 3 " "$work/out")" -eq 3 ]
	[ "$(grep -c "^step3 name greeting = from-step2" "$work/out")" -eq 3 ]
	[ "$(grep '^step[13] joined' "$work/out" | awk '{print $4}' | sort | uniq -c | awk '{print $1}' | tr '\n' ' ')" = "2 2 2 " ]
	assert_job_clean "$job"
}

@test "salloc --dragon -N3, then srun --dragon joins; so do sruns started at the same time, with one fabric" {
	cat >"$work/inside.sh" <<-EOF
	#!/bin/sh
	for i in 1 2 3 4; do srun --overlap --dragon -N3 "$JOIN" >"$work/out.\$i" 2>&1 & done
	wait
	pgrep -f "^$B/runtime/ls/dragon-ls .* --fabric-id job\$SLURM_JOB_ID " | wc -l
	echo "job=\$SLURM_JOB_ID"
	EOF
	chmod +x "$work/inside.sh"
	run --separate-stderr timeout 90 salloc -Q --dragon -N3 "$work/inside.sh"
	echo "$output"
	cat "$work"/out.*
	[ "$status" -eq 0 ]
	job=$(printf '%s\n' "$output" | sed -n 's/^job=//p')
	# One fabric: one local services process per node, not one per srun.
	[ "$(printf '%s\n' "$output" | head -1)" -eq 3 ]
	[ "$(cat "$work"/out.* | grep -c "^joined job$job [0-2] 3 ")" -eq 12 ]
	assert_job_clean "$job"
}

@test "dragon status inside a --dragon step lists the job's three nodes" {
	# The first step makes sure every node's local services are up (each task waits for its own
	# node); node 0's are ready before the others have joined it, so a status asked at once from
	# node 0 may list fewer nodes.
	cat >"$work/inside.sh" <<-EOF
	#!/bin/sh
	srun --dragon -N3 true || exit 1
	srun --dragon -N1 "$DRAGON" status --json
	EOF
	chmod +x "$work/inside.sh"
	run --separate-stderr timeout 60 salloc -Q --dragon -N3 "$work/inside.sh"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c '"ls_pid"')" -eq 3 ]
	[ "$(printf '%s\n' "$output" | grep -oE '"host": "[^"]+"' | sort -u | wc -l)" -eq 3 ]
	[[ "$output" == *'"fabric_id": "job'* ]]
}

@test "a job without --dragon starts no runtime: no local services, no runtime directory" {
	# Lock files of earlier clusters' jobs may be there (job ids start again at 1): this job's may
	# not change.
	locks=$(ls -l --time-style=full-iso "/tmp/dragon-slurm-$(id -u)" 2>/dev/null)
	run --separate-stderr timeout 60 srun -N3 sh -c \
		'sleep 0.5; ls -d /tmp/dragon-run/*/$SLURM_JOB_ID 2>/dev/null; echo "job=$SLURM_JOB_ID fabric=${DRAGON_FABRIC-none}"'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c '^job=[0-9]* fabric=none$')" -eq 3 ]
	[ "$(printf '%s\n' "$output" | grep -vc '^job=')" -eq 0 ]
	job=$(printf '%s\n' "$output" | sed -n '1s/^job=\([0-9]*\).*/\1/p')
	[ -z "$(fabric_procs "$job")" ]
	# Only this job id's files count: other test clusters on the machine share the directory.
	[ "$(ls -l --time-style=full-iso "/tmp/dragon-slurm-$(id -u)" 2>/dev/null | grep -E " job$job\.")" = \
		"$(printf '%s\n' "$locks" | grep -E " job$job\.")" ]
}

@test "scancel of a --dragon job leaves no local services and no runtime directory on any node" {
	run timeout 60 sbatch --parsable --dragon -N3 -o "$work/out" --wrap "srun -N3 sleep 300"
	[ "$status" -eq 0 ]
	job=$output
	# Wait until the fabric serves on every node (three local services processes).
	for _ in $(seq 300); do [ "$(fabric_procs "$job" | wc -l)" -eq 3 ] && break; sleep 0.1; done
	[ "$(fabric_procs "$job" | wc -l)" -eq 3 ]
	scancel "$job"
	for _ in $(seq 300); do [ -z "$(squeue -h -j "$job")" ] && break; sleep 0.1; done
	[ -z "$(squeue -h -j "$job")" ]
	assert_job_clean "$job"
}

@test "when the fabric does not come up, the step fails within startup_timeout naming the node, the directory and the setting" {
	mkdir "$work/fake"
	printf '#!/bin/sh\necho "fake dragon-ls: not starting" >&2\nexit 3\n' >"$work/fake/dragon-ls"
	chmod +x "$work/fake/dragon-ls"
	SECONDS=0
	DRAGON_LIBEXECDIR="$work/fake" run timeout 60 srun --dragon=startup_timeout=2 -N3 true
	took=$SECONDS
	echo "$output"
	[ "$status" -ne 0 ]
	[ "$took" -lt 15 ]
	[[ "$output" == *"dragon: node dgtc"*"-node"*"did not start within 2 s (no /tmp/dragon-run/"*"/ls.ready); raise startup_timeout"* ]]
	# A user's failed fabric never drains a node.
	sleep 1
	! sinfo -h -o '%T' | grep -qiE 'drain|down'
}

@test "srun --dragon with no dragon-ls to run fails fast, naming where it looked" {
	DRAGON_LIBEXECDIR=/nonexistent run timeout 60 srun --dragon -N3 true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"dragon: job "*": cannot start the fabric step: no executable dragon-ls in DRAGON_LIBEXECDIR=/nonexistent"* ]]
}

@test "an invalid --dragon value fails fast and starts nothing" {
	SECONDS=0
	run timeout 60 srun --dragon=startup_timeout=x -N3 true
	echo "$output"
	[ "$status" -ne 0 ]
	[ "$SECONDS" -lt 5 ]
	[[ "$output" == *"dragon: --dragon: startup_timeout='x'"* ]]
}

@test "a --dragon batch job whose fabric does not come up fails, showing the fabric step's last words; no node drains" {
	mkdir "$work/fake"
	# It lingers a little after its message: srun may drop the output of a task that exits at once
	# while the step ends.
	printf '#!/bin/sh\necho "fake dragon-ls: not starting on $(hostname)" >&2\nsleep 1\nexit 3\n' >"$work/fake/dragon-ls"
	chmod +x "$work/fake/dragon-ls"
	printf '#!/bin/sh\necho "script ran"\n' >"$work/job.sh"
	DRAGON_LIBEXECDIR="$work/fake" run sbatch_wait --dragon=startup_timeout=3 -N3 -o "$work/out" "$work/job.sh"
	[ "$status" -eq 0 ]
	job=$output
	cat "$work/out"
	! grep -q "script ran" "$work/out"
	# The batch step says the fabric step ended (if its srun is gone before the 3 s are up) or
	# that the runtime did not start in time.
	grep -qE "dragon: node dgtc[0-9]*-node1: the job's (fabric step \(srun pid [0-9]*\) ended before its runtime was ready|runtime did not start within 3 s)" "$work/out"
	grep -q "dragon: node dgtc[0-9]*-node1: the fabric step said: .*fake dragon-ls: not starting" "$work/out"
	scontrol show job "$job" | grep -q "JobState=FAILED"
	! sinfo -h -o '%T' | grep -qiE 'drain|down'
	assert_job_clean "$job"
}

@test "a --dragon batch script is a member of the job's fabric: dragon PROG and dragon status in it use that fabric" {
	cat >"$work/job.sh" <<-EOF
	#!/bin/sh
	#SBATCH --dragon
	#SBATCH -N3
	echo "script \$DRAGON_FABRIC_ID \$DRAGON_NODE_INDEX \$DRAGON_NODE_COUNT"
	# Node 0's local services are ready before the other nodes have joined them: a step over all
	# nodes first (each task waits for its own node), until node 0 waits for them itself.
	srun -N3 true
	"$DRAGON" status
	"$DRAGON" -l "$B/examples/hello" 3
	echo "hello rc=\$?"
	"$DRAGON" status | grep -c "^fabric "
	EOF
	run sbatch_wait -o "$work/out" "$work/job.sh"
	[ "$status" -eq 0 ]
	job=$output
	cat "$work/out"
	grep -qx "script job$job 0 3" "$work/out"
	grep -qx "fabric job$job" "$work/out"
	[ "$(grep -c '^  node [0-2]: host ' "$work/out")" -eq 3 ]
	[ "$(grep -c "hello from rank [0-2] of 3" "$work/out")" -eq 3 ]
	grep -qx "hello rc=0" "$work/out"
	# Only the job's fabric: dragon started none of its own.
	[ "$(tail -1 "$work/out")" = 1 ]
	assert_job_clean "$job"
}

@test "the fabric of a user's job runs as that user, and its tasks join it" {
	uid=$(id -u nobody) gid=$(id -g nobody)
	run_past_pmix_race --separate-stderr timeout 60 setpriv --reuid="$uid" --regid="$gid" --clear-groups \
		srun --chdir=/ --dragon -N3 sh -c \
		'read id idx n pid <"$DRAGON_RUNTIME_DIR/ls.ready"; echo "$(ps -o uid= -p "$pid" | tr -d " ") $(stat -c %u "$DRAGON_LS_SOCKET")"; '"'$JOIN'"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -cx "$uid $uid")" -eq 3 ]
	[ "$(printf '%s\n' "$output" | grep -c '^joined job[0-9]* [0-2] 3 ')" -eq 3 ]
}

@test "an srun --dragon run by a task of a --dragon step joins the same fabric and starts no other" {
	cat >"$work/inside.sh" <<-EOF
	#!/bin/sh
	srun --dragon -N1 -n1 sh -c 'srun --overlap --dragon -N3 -n3 "$JOIN"'
	pgrep -f "^$B/runtime/ls/dragon-ls .* --fabric-id job\$SLURM_JOB_ID " | wc -l
	EOF
	chmod +x "$work/inside.sh"
	run --separate-stderr timeout 60 salloc -Q --dragon -N3 "$work/inside.sh"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c '^joined job[0-9]* [0-2] 3 ')" -eq 3 ]
	[ "$(printf '%s\n' "$output" | tail -1)" -eq 3 ]
}

@test "srun --dragon -N3: every task sends to one channel on node 0 through the transport agents" {
	CH="$B/tests/ta/chtool"
	# Task 0 owns the channel and expects 1000 messages from each of the other five tasks.
	cat >"$work/task.sh" <<-EOF
	#!/bin/sh
	if [ "\$SLURM_PROCID" = 0 ]; then exec "$CH" serve q 5000 6; fi
	exec "$CH" send q "\$SLURM_PROCID" 1000 200
	EOF
	chmod +x "$work/task.sh"
	run --separate-stderr timeout 90 srun --dragon -N3 -n6 --distribution=block "$work/task.sh"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[[ "$output" == *"received 5000 in order from 6 senders"* ]]
}

@test "sbatch --dragon: a channel named by step 1 on the first node is read by step 2 on the third" {
	CH="$B/tests/ta/chtool"
	cat >"$work/job.sh" <<-EOF
	#!/bin/sh
	#SBATCH --dragon
	#SBATCH -N3
	#SBATCH -o $work/out
	nodes=\$(scontrol show hostnames "\$SLURM_JOB_NODELIST")
	first=\$(echo "\$nodes" | sed -n 1p)
	third=\$(echo "\$nodes" | sed -n 3p)
	srun --overlap -N1 -n1 -w "\$first" "$CH" hold shared 30 "first message" "second message" > $work/hold.out 2>&1 &
	holder=\$!
	srun --overlap -N1 -n1 -w "\$third" "$CH" recv shared 2 10000
	echo "step2 status \$?"
	kill \$holder
	wait \$holder
	EOF
	job=$(sbatch_wait "$work/job.sh")
	cat "$work/out" "$work/hold.out" || true
	grep -qx "first message" "$work/out"
	grep -qx "second message" "$work/out"
	grep -qx "step2 status 0" "$work/out"
	assert_job_clean "$job"
}

@test "Open MPI under srun --mpi=pmix --dragon -N3: every rank allreduces and joins one fabric on its own node" {
	MPI="$B/tests/integration/mpi_dragon"
	[ -x "$MPI" ] || skip "no mpicc at configure time: tests/integration/mpi_dragon is not built"
	run --separate-stderr timeout 60 srun --mpi=pmix --dragon -N3 -n3 "$MPI"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	# "mpi RANK SIZE SUM FABRIC_ID NODE_INDEX NODE_COUNT HOST": the sum of ranks 0..2 is 3.
	[ "$(printf '%s\n' "$output" | grep -cE '^mpi [0-2] 3 3 job[0-9]+ [0-2] 3 ')" -eq 3 ]
	[ "$(printf '%s\n' "$output" | awk '{print $2}' | sort -u | tr '\n' ' ')" = "0 1 2 " ]
	[ "$(printf '%s\n' "$output" | awk '{print $5}' | sort -u | wc -l)" -eq 1 ]
	[ "$(printf '%s\n' "$output" | awk '{print $6}' | sort -u | tr '\n' ' ')" = "0 1 2 " ]
	[ "$(printf '%s\n' "$output" | awk '{print $6, $8}' | sort -u | wc -l)" -eq 3 ]
	job=$(printf '%s\n' "$output" | awk 'NR==1 {sub("job", "", $5); print $5}')
	assert_job_clean "$job"
}

@test "a --dragon batch job that runs past its time limit is killed by Slurm and leaves nothing on any node" {
	printf '#!/bin/sh\necho "script started"\nsleep 300\necho "script woke"\n' >"$work/job.sh"
	run timeout 60 sbatch --parsable --dragon -N3 -t 1 -o "$work/out" "$work/job.sh"
	[ "$status" -eq 0 ]
	job=$output
	# The script runs once the fabric is ready on every node: a batch task still waiting for it
	# would be killed only when startup_timeout runs out.
	for _ in $(seq 300); do grep -q "^script started" "$work/out" 2>/dev/null && break; sleep 0.1; done
	grep -q "^script started" "$work/out"
	[ "$(fabric_procs "$job" | wc -l)" -eq 3 ]
	# A minute is Slurm's smallest limit, and slurmctld looks at limits every 30 s or so: a limit
	# of 0 set on the running job (end time = start time) expires at the next look, not 60-90 s on.
	scontrol update JobId="$job" TimeLimit=0
	for _ in $(seq 600); do [ -z "$(squeue -h -j "$job")" ] && break; sleep 0.1; done
	[ -z "$(squeue -h -j "$job")" ]
	cat "$work/out"
	scontrol show job "$job" | grep -q "JobState=TIMEOUT"
	grep -q "DUE TO TIME LIMIT" "$work/out"
	! grep -q "script woke" "$work/out"
	assert_job_clean "$job"
}

@test "--dragon=transport=NOSUCH on three nodes fails within seconds, naming the provider and the providers that exist" {
	t0=$(date +%s%N)
	run --separate-stderr timeout 60 srun --dragon=transport=NOSUCH -N3 true
	t1=$(date +%s%N)
	echo "$stderr"
	echo "took $(( (t1 - t0) / 1000000 )) ms"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	# startup_timeout is 30 s: a failure that was passed on, not a wait that ran out.
	[ $(( (t1 - t0) / 1000000 )) -lt 10000 ]
	! grep -q "did not start within" <<<"$stderr"
	# Every node says its runtime failed; the nodes that failed first name the provider (srun
	# then stops the others, which say so).
	[ "$(grep -c "dragon: node dgtc[0-9]*-node[0-9]: the job's runtime failed to start: node [0-2] (dgtc[0-9]*-node[0-9]): " <<<"$stderr")" -eq 3 ]
	grep -q "the job's runtime failed to start: node [0-2] (dgtc[0-9]*-node[0-9]): .*no libfabric provider 'NOSUCH'.*providers here: .*tcp;ofi_rxm" <<<"$stderr"
}

@test "after a fabric that failed to start, the next --dragon step of the job starts a new one (the old failure is not taken for the new fabric's)" {
	run --separate-stderr timeout 90 salloc -Q -N3 sh -c "
		srun --dragon=transport=NOSUCH -N3 true; echo \"bad rc=\$?\"
		# the failed fabric step's srun ends a moment after the step that saw its failure: wait
		# until the step has left and its srun (here, the fabric's lock owner) has exited
		for i in \$(seq 100); do squeue -h -s -j \$SLURM_JOB_ID -o %j | grep -q dragon-fabric || break; sleep 0.1; done
		for i in \$(seq 100); do pgrep -f \"^srun --overlap --mpi=pmix --jobid \$SLURM_JOB_ID \" >/dev/null || break; sleep 0.1; done
		srun --dragon -N3 '$JOIN'; echo \"good rc=\$?\""
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	grep -qE '^bad rc=[1-9]' <<<"$output"
	grep -q '^good rc=0' <<<"$output"
	[ "$(grep -c '^joined job[0-9]* [0-2] 3 ' <<<"$output")" -eq 3 ]
}

# The sockets and pipes process $1 has open from descriptor $2 up, one "socket:[N]" per line.
fd_objects() {
	local f n
	for f in /proc/"$1"/fd/*; do
		n=${f##*/}
		[ "$n" -ge "$2" ] || continue
		readlink "$f" 2>/dev/null | grep -E '^(socket|pipe):' || true
	done
}

# Fails (naming it) when process $1 ($2: what it is) has a descriptor from 3 up that is not one of
# its own kinds, or that is also open in one of the processes $3... (it inherited it).
assert_own_fds() {
	local pid=$1 what=$2 f n t p
	shift 2
	local theirs
	theirs=$(for p in "$@"; do fd_objects "$p" 0; done | sort -u)
	for f in /proc/"$pid"/fd/*; do
		n=${f##*/}
		[ "$n" -ge 3 ] || continue
		t=$(readlink "$f") || continue
		if ! [[ "$t" =~ ^(socket|pipe):\[[0-9]+\]$|^anon_inode:\[(eventpoll|eventfd)\]$|^/memfd:dragon-pool|^/tmp/dragon-run/[0-9]+/[0-9]+/ta\.bell$ ]]; then
			echo "$what $pid: descriptor $n is $t"
			return 1
		fi
		if grep -qxF "$t" <<<"$theirs"; then
			echo "$what $pid: descriptor $n ($t) is also open in its parent: inherited"
			return 1
		fi
	done
}

# Every node's local services and transport agent of job $1 hold only their own descriptors.
daemons_own_fds() {
	local i ls ta stepd
	for i in 0 1 2; do
		ls=$(ls_of_node "$1" "$i") && [ -n "$ls" ] || { echo "no local services of node $i"; return 1; }
		ta=$(pgrep -P "$ls" -f dragon-ta) && [ -n "$ta" ] || { echo "no transport agent on node $i"; return 1; }
		stepd=$(ps -o ppid= "$ls" | tr -d ' ')
		[ "$(cat /proc/"$stepd"/comm)" = slurmstepd ] || { echo "node $i: parent $stepd is not slurmstepd"; return 1; }
		# The comparison sees what is shared: standard output is slurmstepd's pipe.
		grep -qxF "$(readlink /proc/"$ls"/fd/1)" <<<"$(fd_objects "$stepd" 0)" || return 1
		assert_own_fds "$ls" "node $i's dragon-ls" "$stepd" || return 1
		assert_own_fds "$ta" "node $i's dragon-ta" "$ls" "$stepd" || return 1
	done
}

@test "local services and transport agents hold no descriptor they inherited (slurmstepd's PMIx server socket, local services' sockets)" {
	cat >"$work/job.sh" <<-EOF
	#!/bin/sh
	srun -N3 true && touch "$work/up"
	exec sleep 300
	EOF
	run timeout 60 sbatch --parsable --dragon -N3 -o "$work/out" "$work/job.sh"
	[ "$status" -eq 0 ]
	job=$output
	for _ in $(seq 300); do [ -e "$work/up" ] && break; sleep 0.1; done
	[ -e "$work/up" ]
	rc=0
	daemons_own_fds "$job" || rc=$?
	scancel "$job"
	[ "$rc" -eq 0 ]
	for _ in $(seq 300); do [ -z "$(squeue -h -j "$job")" ] && break; sleep 0.1; done
	assert_job_clean "$job"
}
