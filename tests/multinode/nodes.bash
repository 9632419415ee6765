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
	# A failed test shows what the services and agents logged (bats prints teardown's output then).
	[ -n "${BATS_TEST_COMPLETED:-}" ] || [ -n "${DUMPED:-}" ] || dump_logs
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$RT"
}

# start_nodes N: N local services, node i serving $RT/n<i>/ls.sock.
start_nodes() {
	local n=$1
	for i in $(seq 0 $((n - 1))); do
		mkdir -m 700 "$RT/n$i"
		# The agents talk over loopback: left to choose, libfabric's tcp took the address of
		# whatever bridge was up (other test clusters' dgtc*), and when that bridge went away
		# mid-test their connection was black-holed (TCP retransmitting for ~15 min).
		DRAGON_TA_BIND="${DRAGON_TA_BIND:-127.0.0.1}" \
		DRAGON_BOOT_DIR="$RT/boot" DRAGON_BOOT_RANK=$i DRAGON_BOOT_SIZE=$n \
			DRAGON_STARTUP_TIMEOUT=10 "$LS" --dir "$RT/n$i" --fabric-id "$FAB" --boot file \
			2>"$RT/ls$i.log" &
		PIDS+=($!)
	done
	for i in $(seq 0 $((n - 1))); do
		for _ in $(seq 200); do [ -e "$RT/n$i/ls.ready" ] && break; sleep 0.05; done
		[ -e "$RT/n$i/ls.ready" ] || { cat "$RT"/ls*.log; return 1; }
	done
	# The services serve before their transport agents are up; tests of running agents wait for
	# them (the agents' addresses in ta.peers) unless NODES_EARLY=1.
	[ "$n" -gt 1 ] && [ "${DRAGON_TA:-}" != off ] && [ -z "${NODES_EARLY:-}" ] || return 0
	for i in $(seq 0 $((n - 1))); do
		for _ in $(seq 400); do [ -e "$RT/n$i/ta.peers" ] && break; sleep 0.05; done
		[ -e "$RT/n$i/ta.peers" ] || { cat "$RT"/ls*.log; return 1; }
	done
}

on() { # on NODE CMD...: run a client of that node, never for more than 180 s (a hang fails)
	local i=$1
	shift
	DRAGON_LS_SOCKET="$RT/n$i/ls.sock" DRAGON_NODE_INDEX=$i timeout -k 5 180 "$@"
}

# dump_logs: every node's agent state (SIGUSR1 makes an agent log its queues and per-peer
# sequence and credit state), then the services' and agents' logs and the clients' output.
dump_logs() {
	[ -n "${RT:-}" ] && [ -d "$RT" ] || return 0
	local f pid node
	for f in "$RT"/n*/ta.info; do
		[ -e "$f" ] || continue
		pid=$(sed -n 's/^pid //p' "$f")
		node=$(sed -n 's/^node //p' "$f")
		[ -n "$pid" ] && kill -USR1 "$pid" 2>/dev/null || continue
		# the agent logs at its next loop turn (the signal interrupts its sleep): wait for it
		for _ in $(seq 40); do
			grep -qF "dragon-ta[$node]: state: frames in" "$RT/ls$node.log" 2>/dev/null && break
			sleep 0.05
		done
	done
	# the agents' TCP sockets (tcp;ofi_rxm): bytes waiting in the kernel on either side
	if command -v ss >/dev/null; then
		for f in "$RT"/n*/ta.info; do
			pid=$(sed -n 's/^pid //p' "$f" 2>/dev/null)
			[ -n "$pid" ] && ss -tinpH 2>/dev/null | grep -A1 "pid=$pid," | sed "s/^/ta $pid: /"
		done
	fi
	for f in "$RT"/ls*.log "$RT"/*.out; do
		[ -e "$f" ] || continue
		echo "==== $f"
		tail -n 200 "$f"
	done
}

# wait_bg PID SECONDS: wait for a background client at most SECONDS; past that, show where it and
# the agents are (logs, agents' state, the client's stack when gdb is there), kill it, and fail.
# Its exit status otherwise.
wait_bg() {
	local pid=$1 secs=$2 rc=0 end=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$end" ]; then
			echo "# client $pid still running after ${secs}s"
			if command -v gdb >/dev/null; then
				timeout 60 gdb -p "$pid" -batch -ex 'thread apply all bt' 2>&1 | grep -E '^(#|Thread)' | head -40
			fi
			dump_logs
			DUMPED=1
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			return 124
		fi
		sleep 0.05
	done
	wait "$pid" || rc=$?
	return "$rc"
}

# wait_flow PID NODE STALL MAX: wait for a background client that receives what NODE's agent
# carries, as long as that agent keeps receiving frames: fail (as wait_bg does) when its frame
# count stood still for STALL seconds (a stall) or after MAX seconds in all. A loaded machine may
# be slow; only a stall is a failure.
wait_flow() {
	local pid=$1 node=$2 stall=$3 max=$4 rc=0 last="" n ta moved=$SECONDS end=$((SECONDS + $4))
	ta=$(sed -n 's/^pid //p' "$RT/n$node/ta.info")
	while kill -0 "$pid" 2>/dev/null; do
		kill -USR1 "$ta" 2>/dev/null
		sleep 2
		n=$(grep -F "dragon-ta[$node]: state: frames in" "$RT/ls$node.log" | tail -n 1 | awk '{print $5}')
		if [ "$n" != "$last" ]; then
			last=$n
			moved=$SECONDS
		fi
		if [ $((SECONDS - moved)) -ge "$stall" ] || [ "$SECONDS" -ge "$end" ]; then
			echo "# node $node's agent received no frame for $((SECONDS - moved)) s (total ${max} s bound)"
			wait_bg "$pid" 0
			return $?
		fi
	done
	wait "$pid" || rc=$?
	return "$rc"
}
