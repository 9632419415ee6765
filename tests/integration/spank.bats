#!/usr/bin/env bats
# tests/integration/spank.bats: the Dragon SPANK plugin's --dragon option on the test cluster (run by cluster.sh).

setup() {
	work=$(mktemp -d "$DRAGON_TC_STATE/bats.XXXXXX")
}

teardown() {
	rm -rf "$work"
}

# Submit a batch script and wait (bounded) until the job has left the queue.
sbatch_wait() {
	local id i
	id=$(sbatch --parsable "$@") || return 1
	for i in $(seq 300); do
		squeue -h -j "$id" 2>/dev/null | grep -q . || { echo "$id"; return 0; }
		sleep 0.1
	done
	echo "job $id did not finish in 30 s" >&2
	return 1
}

@test "srun --dragon -N3 true is accepted" {
	run timeout 60 srun --dragon -N3 true
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "srun --help lists --dragon with a [dragon] usage prefix" {
	run srun --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--dragon"*"[dragon] "* ]]
}

@test "sbatch --help lists --dragon (allocator context)" {
	run sbatch --help
	[[ "$output" == *"--dragon"*"[dragon] "* ]]
}

@test "a batch script with #SBATCH --dragon is accepted and runs" {
	printf '#!/bin/sh\n#SBATCH --dragon\n#SBATCH -N1\n#SBATCH -o %s/out\necho "batch ran on $(hostname): ${DRAGON_SPANK_OPTIONS-unset}"\n' \
		"$work" >"$work/job.sh"
	run sbatch_wait "$work/job.sh"
	[ "$status" -eq 0 ]
	run cat "$work/out"
	echo "$output"
	[[ "$output" == "batch ran on "*": transport=tcp;ofi_rxm,startup_timeout=30" ]]
}

@test "an invalid --dragon=bogus=1 fails in srun with a message naming the key" {
	run timeout 60 srun --dragon=bogus=1 -N1 true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"dragon: --dragon: unknown key 'bogus'"* ]]
}

@test "an invalid --dragon value is rejected before the job is submitted" {
	printf '#!/bin/sh\ntrue\n' >"$work/noop.sh"
	first=$(sbatch --parsable -o /dev/null "$work/noop.sh")
	run timeout 60 srun --dragon=bogus=1 -N1 true
	[ "$status" -ne 0 ]
	run timeout 60 sbatch --dragon=startup_timeout=0 -o /dev/null "$work/noop.sh"
	[ "$status" -ne 0 ]
	[[ "$output" == *"startup_timeout='0'"* ]]
	second=$(sbatch --parsable -o /dev/null "$work/noop.sh")
	# No job id was used up by the two rejected commands.
	[ "$second" -eq $((first + 1)) ]
}

@test "--dragon values reach every task of the step" {
	run timeout 60 srun --dragon=transport=shm,startup_timeout=4 -N3 printenv DRAGON_SPANK_OPTIONS
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -cx 'transport=shm,startup_timeout=4')" -eq 3 ]
}

@test "without --dragon the plugin changes nothing in the task's environment" {
	# The tasks inherit this shell's environment: their DRAGON_* variables must be exactly ours.
	want=$(env | grep '^DRAGON_' | sort | md5sum)
	run timeout 60 srun -N3 sh -c 'env | grep "^DRAGON_" | sort | md5sum'
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sort -u)" = "$want" ]
}

@test "an unknown plugstack.conf argument stops srun with a message naming it" {
	sed "s|^PlugStackConfig=.*|PlugStackConfig=$work/plugstack.conf|" "$SLURM_CONF" >"$work/slurm.conf"
	echo "required $DRAGON_TC_PLUGIN sbatch_supprt=yes" >"$work/plugstack.conf"
	SLURM_CONF=$work/slurm.conf run timeout 60 srun -N1 true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"dragon: plugstack.conf: unknown key 'sbatch_supprt'"* ]]
}

@test "srun inside a #SBATCH --dragon script inherits --dragon" {
	printf '#!/bin/sh\n#SBATCH --dragon=startup_timeout=9\n#SBATCH -N3\n#SBATCH -o %s/out\nsrun -N3 printenv DRAGON_SPANK_OPTIONS\n' \
		"$work" >"$work/job.sh"
	run sbatch_wait "$work/job.sh"
	[ "$status" -eq 0 ]
	run cat "$work/out"
	echo "$output"
	[ "$(printf '%s\n' "$output" | grep -cx 'transport=tcp;ofi_rxm,startup_timeout=9')" -eq 3 ]
}

@test "salloc --dragon validates its value before allocating" {
	run timeout 60 salloc --dragon=transport= -N1 true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"dragon: --dragon: transport=''"* ]]
}

@test "salloc --dragon is accepted" {
	run timeout 60 salloc --dragon -N1 true
	echo "$output"
	[ "$status" -eq 0 ]
}
