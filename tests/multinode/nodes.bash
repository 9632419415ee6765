# tests/multinode/nodes.bash: bats helpers shared by tests of several nodes on one machine: start local services with the file bootstrap, run a client on a node, clean up.

setup() {
	B="${top_builddir:-$PWD}"
	LS="$B/runtime/ls/dragon-ls"
	DRAGON="$B/runtime/launcher/dragon"
	MN="$B/tests/multinode/mnclient"
	RT="$(mktemp -d /tmp/dragon-mn.XXXXXX)"
	chmod 700 "$RT"
	mkdir -m 700 "$RT/boot" "$RT/out"
	PIDS=()
	FAB="mn$RANDOM"
}

teardown() {
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$RT"
}

# start_nodes N: N local services, node i serving $RT/n<i>/ls.sock.
start_nodes() {
	local n=$1
	for i in $(seq 0 $((n - 1))); do
		mkdir -m 700 "$RT/n$i"
		DRAGON_BOOT_DIR="$RT/boot" DRAGON_BOOT_RANK=$i DRAGON_BOOT_SIZE=$n \
			DRAGON_STARTUP_TIMEOUT=10 "$LS" --dir "$RT/n$i" --fabric-id "$FAB" --boot file \
			2>"$RT/ls$i.log" &
		PIDS+=($!)
	done
	for i in $(seq 0 $((n - 1))); do
		for _ in $(seq 200); do [ -e "$RT/n$i/ls.ready" ] && break; sleep 0.05; done
		[ -e "$RT/n$i/ls.ready" ] || { cat "$RT"/ls*.log; return 1; }
	done
}

on() { # on NODE CMD...: run a client of that node
	local i=$1
	shift
	DRAGON_LS_SOCKET="$RT/n$i/ls.sock" DRAGON_NODE_INDEX=$i "$@"
}
