#!/usr/bin/env bats
# tests/multinode/multinode.bats: three nodes' local services on one machine (file bootstrap): joins, names, groups, status and failures across nodes.

bats_require_minimum_version 1.5.0

load nodes

@test "three nodes join one fabric: every node reports its index, and status from any node lists all three" {
	start_nodes 3
	run on 2 "$MN" info
	[ "$status" -eq 0 ]
	[ "$output" = "node 2 of 3 fabric $FAB" ]
	run on 1 "$DRAGON" status --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | grep -c '"index"')" -eq 3 ]
	# The job key is the same on every node and private to the user.
	cmp "$RT/n0/job.key" "$RT/n2/job.key"
	[ "$(stat -c %a "$RT/n1/job.key")" = 600 ]
}

@test "a name registered on node 1 is found from node 2 and from the head node" {
	start_nodes 3
	run on 1 "$MN" put greeting "hello from one" outlive
	[ "$status" -eq 0 ]
	run on 2 "$MN" get greeting 2000
	[ "$status" -eq 0 ]
	[ "$output" = "hello from one" ]
	run on 0 "$MN" get greeting 0
	[ "$output" = "hello from one" ]
	# Without outlive the name goes with its client, on every node.
	on 1 "$MN" put transient x
	run on 2 "$MN" get transient 0
	[ "$status" -ne 0 ]
	[[ "$output" == *"not found"* || "$output" == *"ENOTFOUND"* || "$output" == *"timed out"* ]]
}

@test "a lookup on node 2 waits for a name that node 1 registers later" {
	start_nodes 3
	( sleep 0.5; on 1 "$MN" put late yes outlive ) &
	run on 2 "$MN" get late 5000
	[ "$status" -eq 0 ]
	[ "$output" = "yes" ]
}

@test "a group created on node 1 places ranks round robin and block across the nodes, and its statuses come back" {
	start_nodes 3
	run on 1 "$MN" group 6 rr sh -c 'echo $DRAGON_NODE_INDEX > '"$RT/out"'/rr$DRAGON_GROUP_RANK; exit $((DRAGON_GROUP_RANK == 4 ? 3 : 0))'
	[ "$status" -eq 0 ]
	[ "$output" = "worst 3" ]
	for r in 0 1 2 3 4 5; do [ "$(cat "$RT/out/rr$r")" = "$((r % 3))" ]; done
	run on 2 "$MN" group 6 block sh -c 'echo $DRAGON_NODE_INDEX > '"$RT/out"'/b$DRAGON_GROUP_RANK'
	[ "$output" = "worst 0" ]
	for r in 0 1 2 3 4 5; do [ "$(cat "$RT/out/b$r")" = "$((r / 2))" ]; done
}

@test "a member that cannot start on another node ends with 127, and the group wait still returns" {
	start_nodes 3
	run on 0 "$MN" group 2 2 /nonexistent/program
	[ "$status" -eq 0 ]
	[ "$output" = "worst 127" ]
	grep -q "starting a process of group" "$RT/ls2.log"
	# On the requester's own node the same mistake is an error of the call.
	run on 0 "$MN" group 2 0 /nonexistent/program
	[ "$status" -ne 0 ]
	[[ "$output" == *"/nonexistent/program"* ]]
}

@test "garbage, a wrong key and a bad Join on the head node's port are refused and it keeps serving" {
	start_nodes 3
	addr=$(cut -d' ' -f1 < "$RT/boot/0.ls.addrs" | tr -d '\0')
	host=${addr%:*}
	port=${addr##*:}
	# Garbage instead of the link preamble.
	exec 8<>"/dev/tcp/$host/$port"
	head -c 4096 /dev/urandom >&8 || true
	exec 8>&-
	# A node that holds another key: its Join does not authenticate.
	mkdir -m 700 "$RT/boot2" "$RT/n9"
	cp "$RT/boot/0.ls.addrs" "$RT/boot2/0.ls.addrs"
	head -c 32 /dev/urandom > "$RT/boot2/0.job.key"
	touch "$RT/boot2/fence1.0"
	# (Without a transport agent: its fake bootstrap has no second fence.)
	DRAGON_TA=off DRAGON_BOOT_DIR="$RT/boot2" DRAGON_BOOT_RANK=1 DRAGON_BOOT_SIZE=2 DRAGON_STARTUP_TIMEOUT=5 \
		run "$LS" --dir "$RT/n9" --fabric-id "$FAB" --boot file
	[ "$status" -ne 0 ]
	[[ "$output" == *"cannot join the head node"* ]]
	# The fabric still works.
	run on 2 "$MN" info
	[ "$output" = "node 2 of 3 fabric $FAB" ]
	run on 1 "$MN" group 3 rr true
	[ "$output" = "worst 0" ]
	grep -q "refusing\|dropped a link\|failed authentication\|does not speak" "$RT/ls0.log" || { cat "$RT/ls0.log"; false; }
}

@test "when a node's local services die the head node says it is lost and the rest goes on; when the head node dies every node stops" {
	start_nodes 3
	kill -KILL "${PIDS[2]}"
	for _ in $(seq 50); do grep -q "node 2 .* is lost" "$RT/ls0.log" && break; sleep 0.1; done
	grep -q "node 2 .* is lost: the peer closed the link" "$RT/ls0.log"
	for _ in $(seq 50); do grep -q "node 2 is lost" "$RT/ls1.log" && break; sleep 0.1; done
	grep -q "node 2 is lost (the head node reports it)" "$RT/ls1.log"
	# A new group goes to the two nodes that are left.
	run on 1 "$MN" group 3 rr true
	[ "$status" -eq 0 ]
	[ "$output" = "worst 0" ]
	run on 1 "$MN" put still-here y outlive
	[ "$status" -eq 0 ]
	kill -KILL "${PIDS[0]}"
	for _ in $(seq 100); do kill -0 "${PIDS[1]}" 2>/dev/null || break; sleep 0.05; done
	! kill -0 "${PIDS[1]}" 2>/dev/null
	grep -q "lost the head node" "$RT/ls1.log"
	[ ! -e "$RT/n1/ls.sock" ]
	[ ! -e "$RT/n1/job.key" ]
}

@test "a node that goes silent (stopped, like a cut network) is lost within DRAGON_NODE_TIMEOUT: its group member ends with 256, and it stops itself once it runs again" {
	DRAGON_NODE_TIMEOUT=1 start_nodes 3
	on 1 "$MN" group 3 rr sleep 4.01 >"$RT/group.out" 2>&1 &
	client=$!
	for _ in $(seq 100); do [ "$(pgrep -f '^sleep 4.01$' | wc -l)" -eq 3 ] && break; sleep 0.05; done
	[ "$(pgrep -f '^sleep 4.01$' | wc -l)" -eq 3 ]
	SECONDS=0
	kill -STOP "${PIDS[2]}"
	for _ in $(seq 100); do grep -q "node 2 .* is lost" "$RT/ls0.log" && break; sleep 0.05; done
	took=$SECONDS
	grep -qE "node 2 .* is lost: nothing heard for [0-9]+ ms \(node timeout 1000 ms\)" "$RT/ls0.log"
	[ "$took" -le 3 ]
	wait "$client"
	cat "$RT/group.out"
	[ "$(cat "$RT/group.out")" = "worst 256" ]
	kill -CONT "${PIDS[2]}"
	for _ in $(seq 100); do kill -0 "${PIDS[2]}" 2>/dev/null || break; sleep 0.05; done
	! kill -0 "${PIDS[2]}" 2>/dev/null
	grep -q "lost the head node" "$RT/ls2.log"
	[ -z "$(pgrep -f '^sleep 4.01$' || true)" ]
}

@test "dragon PROG inside a fabric runs PROG there: hello's workers on three nodes report back through the links" {
	start_nodes 3
	run on 1 "$DRAGON" -l "$B/examples/hello" 6
	[ "$status" -eq 0 ]
	for r in 0 1 2 3 4 5; do
		[[ "$output" == *"$r/$(hostname): hello from rank $r of 6"* ]]
		[[ "$output" == *"report: rank $r pid"* ]]
	done
	[[ "$output" == *"6 workers done, worst status 0"* ]]
	# PROG runs on the node it was started from, in the caller's directory, with its status.
	cd "$RT/out"
	run on 2 "$DRAGON" sh -c 'echo node $DRAGON_NODE_INDEX in $PWD; exit 4'
	[ "$status" -eq 4 ]
	[ "$output" = "node 2 in $RT/out" ]
	# The fabric outlives a joined launcher.
	run on 0 "$MN" info
	[ "$status" -eq 0 ]
}

@test "a signal to a launcher joined to a fabric stops its program, not the fabric" {
	start_nodes 2
	on 1 "$DRAGON" sh -c 'echo started; exec sleep 30' > "$RT/out/join" &
	local pid=$!
	for _ in $(seq 50); do grep -q started "$RT/out/join" && break; sleep 0.1; done
	# (SIGINT is ignored by background jobs of a script: SIGTERM takes the same path.)
	kill -TERM $pid
	st=0
	wait $pid || st=$?
	[ "$st" -eq 143 ]
	! pgrep -f "sleep 30" -P "${PIDS[1]}" >/dev/null
	run on 1 "$MN" info
	[ "$output" = "node 1 of 2 fabric $FAB" ]
}

@test "stopping the head node stops every node in order, with nothing left" {
	start_nodes 3
	on 2 "$MN" group 3 rr sh -c 'exec sleep 3$RANDOM' &
	sleep 0.5
	kill -TERM "${PIDS[0]}"
	for p in "${PIDS[@]}"; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		! kill -0 "$p" 2>/dev/null
	done
	! grep -q "lost the head node\|left the fabric\|is lost" "$RT"/ls*.log
	for i in 0 1 2; do [ -z "$(ls -A "$RT/n$i")" ]; done
}
