#!/usr/bin/env bats
# tests/integration/launcher.bats: `dragon PROG` inside a Slurm allocation starts a fabric over every node of the job (run by cluster.sh).
bats_require_minimum_version 1.5.0

setup() {
	B="${top_builddir:?}"
	DRAGON="$B/runtime/launcher/dragon"
	HELLO="$B/examples/hello"
	# Job output must be visible from the nodes and from here: not under /tmp.
	OUT="$(mktemp -d /var/tmp/dragon-launcher-bats.XXXXXX)"
}

teardown() {
	rm -rf "$OUT"
}

# Nothing of a fabric on any node: no dragon-ls or dragon-ta process, no runtime directory. The nodes
# share the pid namespace with the machine, so only this build tree's programs count; the SPANK
# plugin's runtime_dir keeps its (empty) per-user directory /tmp/dragon-run/<uid> by design.
assert_nodes_clean() {
	run --separate-stderr timeout 60 srun -N3 sh -c \
		"pgrep -f '^$B/runtime/[^ ]*dragon-(ls|ta) ' >/dev/null && echo \"process on \$(hostname)\"; ls -d /tmp/dragon-*/* 2>/dev/null | grep -v '^/tmp/dragon-run/[0-9]*\$'; true"
	[ "$status" -eq 0 ]
	[ -z "$output" ] || { echo "left behind: $output"; return 1; }
}

# The same, once the fabric had up to 60 s to finish its cleanup (a loaded machine stretches it).
wait_nodes_clean() {
	for _ in $(seq 30); do
		assert_nodes_clean >/dev/null 2>&1 && return 0
		sleep 2
	done
	assert_nodes_clean
}

@test "dragon PROG in a 3-node batch job runs a fabric over all three nodes and exits with PROG's status" {
	cat > "$OUT/job.sh" <<-JOB
	#!/bin/sh
	"$DRAGON" -l "$HELLO" 6
	echo "hello rc=\$?"
	"$DRAGON" sh -c 'exit 7'
	echo "exit rc=\$?"
	"$DRAGON" status >/dev/null 2>&1
	echo "status outside a fabric rc=\$?"
	JOB
	chmod +x "$OUT/job.sh"
	run timeout 120 sbatch -N3 -W -o "$OUT/job.out" "$OUT/job.sh"
	[ "$status" -eq 0 ]
	cat "$OUT/job.out"
	for r in 0 1 2 3 4 5; do
		grep -q "^$r/dgtc[0-9]*-node$((r % 3 + 1)): hello from rank $r of 6" "$OUT/job.out"
	done
	grep -q "6 workers done, worst status 0" "$OUT/job.out"
	grep -q "^hello rc=0$" "$OUT/job.out"
	grep -q "^exit rc=7$" "$OUT/job.out"
	! grep -q "lost the head node\|left the fabric\|is lost" "$OUT/job.out"
	assert_nodes_clean
}

@test "dragon --local in a batch job stays on its node" {
	run timeout 120 sbatch -N3 -W -o "$OUT/job.out" --wrap "$DRAGON --local -l $HELLO 3"
	[ "$status" -eq 0 ]
	[ "$(grep -o 'hello from rank [0-9] of 3 on [a-z0-9-]*' "$OUT/job.out" | awk '{print $NF}' | sort -u | wc -l)" -eq 1 ]
	assert_nodes_clean
}

@test "scancel of a job running dragon leaves no process or directory on any node" {
	run timeout 60 sbatch -N3 -o "$OUT/job.out" --parsable --wrap "$DRAGON sleep 300"
	[ "$status" -eq 0 ]
	job=$output
	for _ in $(seq 100); do grep -q . <(squeue -h -s -j "$job" -o %j | grep dragon-fabric) && break; sleep 0.1; done
	sleep 1
	scancel "$job"
	for _ in $(seq 100); do [ -z "$(squeue -h -j "$job")" ] && break; sleep 0.1; done
	[ -z "$(squeue -h -j "$job")" ]
	wait_nodes_clean
}
