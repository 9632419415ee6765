#!/usr/bin/env bats
# tests/integration/slurm.bats: the test cluster behaves as a real multi-node Slurm cluster (run by cluster.sh).
bats_require_minimum_version 1.5.0


@test "srun -N3 hostname prints three distinct hostnames" {
	run --separate-stderr timeout 60 srun -N3 hostname
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sort -u | wc -l)" -eq 3 ]
}

@test "each node has its own /tmp" {
	run --separate-stderr timeout 60 srun -N3 sh -c 'stat -c %d:%i /tmp'
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sort -u | wc -l)" -eq 3 ]
}

@test "srun -N3 -n6 --mpi=pmix: PMIx Put/Fence/Get across three nodes" {
	run --separate-stderr timeout 60 srun -N3 -n6 --mpi=pmix "$PMIX_FENCE"
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

@test "up names the node that did not register, shows its log and leaves nothing behind" {
	# A second instance beside the running one, whose node 2 'slurmd' exits at once.
	other=$(( (${DRAGON_TC_ID:-0} + 5) % 10 ))
	fake=$(mktemp -d "$DRAGON_TC_STATE/fake.XXXXXX")
	cat >"$fake/slurmd" <<'SH'
#!/bin/sh
# stands in for slurmd: node 2 logs an error and never registers
conf=$2 name=$4
case $name in
*-node2) echo "fake slurmd: cannot start $name on purpose" >>"$(dirname "$conf")/log/slurmd-$name.log"; exit 0 ;;
esac
exec /usr/sbin/slurmd "$@"
SH
	chmod +x "$fake/slurmd"
	PATH=$fake:$PATH DRAGON_TC_ID=$other DRAGON_TC_STATE= DRAGON_TC_TIMEOUT=3 run "$TC" up 3
	rm -rf "$fake"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"these nodes are not idle: dgtc${other}-node2"* ]]
	[[ "$output" == *"cannot start dgtc${other}-node2 on purpose"* ]]
	[ ! -e "/var/lib/dragon-testcluster-$other" ]
	! ip netns list | grep -q "^dgtc${other}-node"
	! ip link show "dgtc${other}br" 2>/dev/null
}

@test "down twice is harmless" {
	DRAGON_TC_ID=$(( (${DRAGON_TC_ID:-0} + 5) % 10 )) DRAGON_TC_STATE= run "$TC" down
	[ "$status" -eq 0 ]
}
