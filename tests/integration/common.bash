# tests/integration/common.bash: what the cluster tests share: a work directory the nodes see, and sbatch with a bounded wait.

setup() {
	B="${top_builddir:?}"
	JOIN="$B/tests/integration/join_check"
	DRAGON="$B/runtime/launcher/dragon"
	# Job output must be visible from the nodes and from here: not under /tmp.
	work=$(mktemp -d "$DRAGON_TC_STATE/bats.XXXXXX")
}

teardown() {
	rm -rf "$work"
}

# Submit a batch script and wait (bounded) until the job has left the queue; prints the job id.
sbatch_wait() {
	local id i
	id=$(sbatch --parsable "$@") || return 1
	for i in $(seq 600); do
		squeue -h -j "$id" 2>/dev/null | grep -q . || { echo "$id"; return 0; }
		sleep 0.1
	done
	echo "job $id did not finish in 60 s" >&2
	return 1
}
