#!/usr/bin/env bats
# tests/integration/spank.bats: the Dragon SPANK plugin's --dragon option on the test cluster (run by cluster.sh).
bats_require_minimum_version 1.5.0

load common

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

@test "sruns inside a bare #SBATCH --dragon script inherit --dragon and run on three nodes" {
	printf '#!/bin/sh\n#SBATCH --dragon\n#SBATCH -N3\n#SBATCH -o %s/out\nsrun -N3 printenv DRAGON_SPANK_OPTIONS\n' \
		"$work" >"$work/job.sh"
	run sbatch_wait "$work/job.sh"
	[ "$status" -eq 0 ]
	run cat "$work/out"
	echo "$output"
	[[ "$output" != *"(null)"* ]]
	[ "$(printf '%s\n' "$output" | grep -cx 'transport=tcp;ofi_rxm,startup_timeout=30')" -eq 3 ]
}

@test "sruns inside salloc --dragon inherit a bare --dragon" {
	run timeout 60 salloc --dragon -N3 srun printenv DRAGON_SPANK_OPTIONS
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -cx 'transport=tcp;ofi_rxm,startup_timeout=30')" -eq 3 ]
}

@test "an invalid --dragon=bogus=1 fails in srun with a message naming the key" {
	run timeout 60 srun --dragon=bogus=1 -N1 true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"dragon: --dragon: unknown key 'bogus'"* ]]
}

@test "DRAGON_ENABLE=1 in the environment is --dragon: every task joins the job's fabric" {
	run --separate-stderr env DRAGON_ENABLE=1 timeout 60 srun -N3 sh -c 'echo "fabric=$DRAGON_FABRIC_ID node=$DRAGON_NODE_INDEX"'
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -cE '^fabric=job[0-9]+ node=[0-2]$')" -eq 3 ]
}

@test "a bad DRAGON_STARTUP_TIMEOUT fails srun and sbatch before submission, naming the variable" {
	printf '#!/bin/sh\ntrue\n' >"$work/noop.sh"
	run env DRAGON_STARTUP_TIMEOUT=soon timeout 60 srun --dragon -N1 true
	[ "$status" -ne 0 ]
	[[ "$output" == *"dragon: DRAGON_STARTUP_TIMEOUT: startup_timeout='soon'"* ]]
	run env DRAGON_STARTUP_TIMEOUT=soon timeout 60 sbatch --dragon -o /dev/null "$work/noop.sh"
	[ "$status" -ne 0 ]
	[[ "$output" == *"DRAGON_STARTUP_TIMEOUT"* ]]
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

@test "node_timeout: --dragon=node_timeout=2.5 reaches every node's local services as DRAGON_NODE_TIMEOUT; bad values fail before submission, naming the key or variable" {
	printf '#!/bin/sh\ntrue\n' >"$work/noop.sh"
	# Each task shows the settings and its node's local services' DRAGON_NODE_TIMEOUT.
	run --separate-stderr timeout 60 srun --dragon=node_timeout=2.5 -N3 sh -c \
		'echo "opts $DRAGON_SPANK_OPTIONS"; pid=$(cut -d" " -f4 "$DRAGON_RUNTIME_DIR/ls.ready"); tr "\0" "\n" <"/proc/$pid/environ" | grep "^DRAGON_NODE_TIMEOUT="'
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -cx 'opts transport=tcp;ofi_rxm,startup_timeout=30,node_timeout=2.5')" -eq 3 ]
	[ "$(printf '%s\n' "$output" | grep -cx 'DRAGON_NODE_TIMEOUT=2.5')" -eq 3 ]
	# --dragon wins over the environment, which is checked all the same.
	run --separate-stderr env DRAGON_NODE_TIMEOUT=7 timeout 60 srun --dragon=node_timeout=4 -N1 sh -c \
		'pid=$(cut -d" " -f4 "$DRAGON_RUNTIME_DIR/ls.ready"); tr "\0" "\n" <"/proc/$pid/environ" | grep "^DRAGON_NODE_TIMEOUT="'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "DRAGON_NODE_TIMEOUT=4" ]
	run timeout 60 srun --dragon=node_timeout=soon -N1 true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"dragon: --dragon: node_timeout='soon': expected seconds from 0.1 to 3600"* ]]
	run env DRAGON_NODE_TIMEOUT=0.05 timeout 60 srun --dragon -N1 true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"dragon: DRAGON_NODE_TIMEOUT: node_timeout='0.05': expected seconds from 0.1 to 3600"* ]]
	run timeout 60 sbatch --dragon=node_timeout=3601 -o /dev/null "$work/noop.sh"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"node_timeout='3601'"* ]]
}

@test "--dragon values reach every task of the step" {
	run --separate-stderr timeout 60 srun --dragon=transport=shm,startup_timeout=4 -N3 printenv DRAGON_SPANK_OPTIONS
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -cx 'transport=shm,startup_timeout=4')" -eq 3 ]
}

@test "without --dragon the plugin changes nothing in the task's environment" {
	# The tasks inherit this shell's environment: their DRAGON_* variables must be exactly ours.
	want=$(env | grep '^DRAGON_' | sort | md5sum)
	run --separate-stderr timeout 60 srun -N3 sh -c 'env | grep "^DRAGON_" | sort | md5sum'
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

@test "a --dragon step gets a private runtime directory owned by the job's user on every node" {
	uid=$(id -u nobody) gid=$(id -g nobody)
	run_past_pmix_race --separate-stderr timeout 60 setpriv --reuid="$uid" --regid="$gid" --clear-groups \
		srun --chdir=/ --dragon -N3 sh -c 'echo "$(hostname) $DRAGON_RUNTIME_DIR $(stat -c "%u %a" "$DRAGON_RUNTIME_DIR")"'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | awk '{print $1}' | sort -u | wc -l)" -eq 3 ]
	[ "$(printf '%s\n' "$output" | grep -cE "^[^ ]+ /tmp/dragon-run/$uid/[0-9]+ $uid 700\$")" -eq 3 ]
}

@test "the job epilog removes the runtime directory (and what the job left in it) on every node" {
	dir=$(timeout 60 srun -Q --dragon -N3 sh -c 'mkdir -p "$DRAGON_RUNTIME_DIR/sub" && touch "$DRAGON_RUNTIME_DIR/sub/f" &&
		ln -s /etc "$DRAGON_RUNTIME_DIR/etc" && echo "$DRAGON_RUNTIME_DIR"' | sort -u)
	[ "$(printf '%s\n' "$dir" | wc -l)" -eq 1 ]
	[[ "$dir" == /tmp/dragon-run/* ]]
	# The next job on these nodes starts after their epilog; poll briefly anyway.
	for i in $(seq 20); do
		left=$(timeout 60 srun -Q -N3 sh -c "if test -e '$dir'; then hostname; fi")
		[ -z "$left" ] && break
		sleep 0.2
	done
	echo "left on: $left"
	[ -z "$left" ]
	[ -d /etc ] && [ -f /etc/passwd ]
}

@test "plugstack.conf default=on gives every job the runtime without --dragon" {
	# A one-node second instance whose plugstack.conf says default=on.
	other=$(( (${DRAGON_TC_ID:-0} + 5) % 10 ))
	DRAGON_TC_ID=$other DRAGON_TC_STATE= DRAGON_TC_PLUGARGS="default=on runtime_dir=/tmp/dragon-run startup_timeout=11 libexec_dir=$top_builddir/runtime/ls" \
		run "$TC" up 1
	echo "$output"
	[ "$status" -eq 0 ]
	run --separate-stderr env SLURM_CONF="/var/lib/dragon-testcluster-$other/slurm.conf" timeout 60 srun -N1 printenv DRAGON_SPANK_OPTIONS
	out=$output rc=$status
	DRAGON_TC_ID=$other DRAGON_TC_STATE= "$TC" down
	echo "$out"
	[ "$rc" -eq 0 ]
	[ "$out" = "transport=tcp;ofi_rxm,startup_timeout=11" ]
}
