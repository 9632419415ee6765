#!/usr/bin/env bats
# tests/integration/cpp.bats: the C++ API's examples on the 3-node Slurm test cluster, under srun --dragon and sbatch --dragon (run by cluster.sh).
bats_require_minimum_version 1.5.0

load common

@test "C++ ring under srun --dragon -N3 -n3: the tasks pass the token over queues on node 0 from three nodes" {
	RING="$B/examples/cpp/ring"
	run --separate-stderr timeout 90 srun --dragon -N3 -n3 "$RING" --slurm 5
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "the token went 5 times around 3 processes on 3 node(s): 14 (expected 14)" ]
}

@test "C++ ring and producer/consumer in a sbatch --dragon -N3 job: dragon places the members on the three nodes" {
	cat >"$work/job.sh" <<-EOF
	#!/bin/sh
	#SBATCH --dragon
	#SBATCH -N3
	# Node 0's local services are ready before the other nodes have joined them: a step over all
	# nodes first (each task waits for its own node).
	srun -N3 true
	"$DRAGON" -l "$B/examples/cpp/ring" 6 5
	echo "ring rc=\$?"
	"$DRAGON" "$B/examples/cpp/prodcons" 3 3 500
	echo "prodcons rc=\$?"
	EOF
	run sbatch_wait -o "$work/out" "$work/job.sh"
	[ "$status" -eq 0 ]
	cat "$work/out"
	grep -q ": the token went 5 times around 6 processes on 3 node(s): 29 (expected 29)$" "$work/out"
	grep -qx "ring rc=0" "$work/out"
	grep -qx "3 producers, 3 consumers: 1500 items (expected 1500), sum 1500374250 (expected 1500374250)" "$work/out"
	grep -qx "prodcons rc=0" "$work/out"
}
