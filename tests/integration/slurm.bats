#!/usr/bin/env bats
# tests/integration/slurm.bats: the test cluster behaves as a real multi-node Slurm cluster (run by cluster.sh).

@test "srun -N3 hostname prints three distinct hostnames" {
	run timeout 60 srun -N3 hostname
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sort -u | wc -l)" -eq 3 ]
}

@test "each node has its own /tmp" {
	run timeout 60 srun -N3 sh -c 'stat -c %d:%i /tmp'
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sort -u | wc -l)" -eq 3 ]
}

@test "srun -N3 -n6 --mpi=pmix: PMIx Put/Fence/Get across three nodes" {
	run timeout 60 srun -N3 -n6 --mpi=pmix "$PMIX_FENCE"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c ': 6/6 values ok, 4 from other hosts$')" -eq 6 ]
}

@test "without --mpi=pmix the PMIx program fails loudly instead of running alone" {
	run timeout 60 srun -N1 "$PMIX_FENCE"
	[ "$status" -ne 0 ]
	[[ "$output" == *"PMIx_Init"* ]]
}

@test "testcluster status reports the cluster up with its three nodes idle" {
	run "$TC" status
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c ' idle ')" -eq 3 ]
}

@test "testcluster up on a running cluster is harmless" {
	run "$TC" up 3
	[ "$status" -eq 0 ]
	run timeout 60 srun -N3 true
	[ "$status" -eq 0 ]
}
