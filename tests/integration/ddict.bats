#!/usr/bin/env bats
# tests/integration/ddict.bats: the distributed dictionary on the 3-node Slurm test cluster: written on one node, read on another, persisted by one job and restored by the next.

bats_require_minimum_version 1.5.0

load common

# sbatch_wait with a longer bound: 100,000 one-by-one gets across nodes take tens of seconds on a
# loaded 2-vCPU machine.
sbatch_wait_long() {
	local id i
	id=$(sbatch --parsable "$@") || return 1
	for i in $(seq 3000); do
		squeue -h -j "$id" 2>/dev/null | grep -q . || { echo "$id"; return 0; }
		sleep 0.1
	done
	echo "job $id did not finish in 300 s" >&2
	return 1
}

@test "ddict: one sbatch --dragon job writes 100,000 keys from its first node and reads them on its third, every byte checked; the next job restores them" {
	DD="$B/tests/ddict/ddtool"
	mkdir -p "$work/persist"
	cat >"$work/job1.sh" <<-EOF
	#!/bin/sh
	#SBATCH --dragon
	#SBATCH -N3
	export DRAGON_DDICT_MANAGER="$B/runtime/ddict/dragon-ddict-manager"
	srun -N1 -r0 "$DD" create d 1 268435456 || exit 1
	srun -N1 -r0 sh -c 'echo "writer node \$DRAGON_NODE_INDEX \$(hostname)"; "$DD" fill d 100000 200 11 batch' || exit 1
	srun -N1 -r2 sh -c 'echo "reader node \$DRAGON_NODE_INDEX \$(hostname)"; "$DD" check d 100000 200 11' || exit 1
	srun -N1 -r1 "$DD" persist d "$work/persist" || exit 1
	echo job1 done
	EOF
	run sbatch_wait_long -o "$work/out1" "$work/job1.sh"
	[ "$status" -eq 0 ]
	cat "$work/out1"
	grep -q "^job1 done" "$work/out1"
	grep -q "checked 100000 keys, 0 bad, len 100000" "$work/out1"
	# the writer and the reader ran on different nodes of the job
	w=$(sed -n 's/^writer node [0-9]* //p' "$work/out1")
	r=$(sed -n 's/^reader node [0-9]* //p' "$work/out1")
	[ -n "$w" ] && [ -n "$r" ] && [ "$w" != "$r" ]
	[ "$(ls "$work/persist" | grep -c '\.shard$')" -eq 3 ]

	cat >"$work/job2.sh" <<-EOF
	#!/bin/sh
	#SBATCH --dragon
	#SBATCH -N3
	export DRAGON_DDICT_MANAGER="$B/runtime/ddict/dragon-ddict-manager"
	srun -N1 -r0 "$DD" create d 1 268435456 || exit 1
	srun -N1 -r2 "$DD" restore d "$work/persist" || exit 1
	srun -N1 -r1 "$DD" check d 100000 200 11 || exit 1
	echo job2 done
	EOF
	run sbatch_wait_long -o "$work/out2" "$work/job2.sh"
	[ "$status" -eq 0 ]
	cat "$work/out2"
	grep -q "^job2 done" "$work/out2"
	grep -q "checked 100000 keys, 0 bad, len 100000" "$work/out2"
}

@test "ddict: in one sbatch --dragon job, Python workers on all three nodes write and read one dictionary that C programs of the job write and read too" {
	DD="$B/tests/ddict/ddtool"
	# The nodes see their own /tmp, where a checkout may be: the job runs a copy of the script.
	cp "${top_srcdir:?}/tests/python/multinode_ddict.py" "$work/"
	cat >"$work/job.sh" <<-EOF
	#!/bin/sh
	#SBATCH --dragon
	#SBATCH -N3
	export DRAGON_DDICT_MANAGER="$B/runtime/ddict/dragon-ddict-manager"
	srun -N1 -r0 "$DD" create pyd 1 67108864 || exit 1
	srun -N1 -r1 "$DD" set pyd from-c c-value || exit 1
	PYTHONPATH="$B/python" srun -N1 -r1 /usr/bin/python3 "$work/multinode_ddict.py" pyd || exit 1
	srun -N1 -r2 sh -c 'echo "C reader on \$(hostname)"; "$DD" show pyd py-node0' || exit 1
	srun -N1 -r0 "$B/runtime/launcher/dragon" status || exit 1
	echo job done
	EOF
	run sbatch_wait_long -o "$work/out" "$work/job.sh"
	[ "$status" -eq 0 ]
	cat "$work/out"
	grep -q "^job done" "$work/out"
	grep -q "^nodes 3 managers 3$" "$work/out"
	[ "$(grep -c '^wrote rank' "$work/out")" -eq 3 ]
	[ "$(grep '^wrote rank' "$work/out" | awk '{print $7}' | sort -u | wc -l)" -eq 3 ] # three hosts
	[ "$(grep -c "^read rank .* bad 0 from-c b'c-value'$" "$work/out")" -eq 3 ]
	grep -q "^DDICT MULTINODE OK$" "$work/out"
	# the C program on the third node reads what Python on the first wrote
	grep -q "^value written on dgtc[0-9]*-node1$" "$work/out"
	# dragon status in the job: one manager on each node, holding every key between them
	for n in 0 1 2; do grep -Eq "^      manager $n: node $n, pid [0-9]+, [1-9][0-9]* keys, " "$work/out"; done
	[ "$(sed -n 's/^      manager [0-9]: node [0-9], pid [0-9]*, \([0-9]*\) keys, .*/\1/p' "$work/out" | awk "{ s += \$1 } END { print s }")" -eq 6005 ]
}
