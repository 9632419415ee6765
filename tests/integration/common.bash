# tests/integration/common.bash: what the cluster tests share: a work directory the nodes see, sbatch with a bounded wait, a job's fabric processes.

load heal

setup() {
	B="${top_builddir:?}"
	JOIN="$B/tests/integration/join_check"
	DRAGON="$B/runtime/launcher/dragon"
	# Job output must be visible from the nodes and from here: not under /tmp.
	work=$(mktemp -d "$DRAGON_TC_STATE/bats.XXXXXX")
	tc_heal
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

# The fabric's local services of job $1 that run from this build tree (the nodes share the pid
# namespace with this shell, so pgrep sees them all; other clusters' processes have other paths).
fabric_procs() {
	pgrep -f "^$B/runtime/ls/dragon-ls --dir [^ ]+/$1 --fabric-id job$1 " || true
}

# The transport agents of job $1 (children of its local services, started with the same --dir).
fabric_tas() {
	pgrep -f "^$B/runtime/.*dragon-ta --node [0-9]+ --dir [^ ]+/$1 " || true
}

# The pid of the local services of job $1 that are node $2 of its fabric, as their ls.ready says
# (read through the process's own mount namespace: every node has the same path in its own /tmp).
ls_of_node() {
	local p id idx n pid
	for p in $(fabric_procs "$1"); do
		read -r id idx n pid 2>/dev/null <"$(echo /proc/"$p"/root/tmp/dragon-run/*/"$1"/ls.ready)" || continue
		[ "$id" = "job$1" ] && [ "$idx" = "$2" ] && [ "$pid" = "$p" ] && echo "$p" && return 0
	done
	return 1
}

# Nodes on which job $1's runtime directory exists (looked at from a job of its own: /tmp is per node).
rundir_nodes() {
	timeout 60 srun -Q -N3 sh -c "ls -d /tmp/dragon-run/*/$1 >/dev/null 2>&1 && hostname; true"
}

# Nothing of job $1 on any node: no local services, no transport agent, no runtime directory
# (polls: teardown and the epilog run after the job has left the queue).
assert_job_clean() {
	local i procs="" dirs=""
	for i in $(seq 50); do
		procs=$(fabric_procs "$1"; fabric_tas "$1")
		[ -z "$procs" ] && dirs=$(rundir_nodes "$1") && [ -z "$dirs" ] && return 0
		sleep 0.2
	done
	echo "job $1 left behind: processes [$procs] runtime directory on [$dirs]"
	return 1
}
