#!/usr/bin/env bats
# tests/ta/channels.bats: channels across nodes through the public API: three nodes' local services and transport agents on one machine.

bats_require_minimum_version 1.5.0

load ../multinode/nodes

# bg NODE OUTFILE CMD...: a client of NODE in the background, killed at teardown
bg() {
	local i=$1 out=$2
	shift 2
	# A simple command in the background: $! is the client itself, not a subshell around it.
	DRAGON_LS_SOCKET="$RT/n$i/ls.sock" DRAGON_NODE_INDEX=$i "$@" >"$out" 2>&1 &
	PIDS+=($!)
	LAST=$!
}

wait_ready() { # wait_ready FILE: the client printed "ready"
	for _ in $(seq 200); do grep -q '^ready' "$1" 2>/dev/null && return 0; sleep 0.05; done
	cat "$1"
	return 1
}

# large NODE: "IN PLACED GIVENUP" of NODE's agent (large messages received, received in place,
# given up), from the state it logs on SIGUSR1
large() {
	local ta before
	ta=$(sed -n 's/^pid //p' "$RT/n$1/ta.info")
	before=$(grep -c "dragon-ta\[$1\]: state: frames in" "$RT/ls$1.log" || true)
	kill -USR1 "$ta"
	for _ in $(seq 100); do
		[ "$(grep -c "dragon-ta\[$1\]: state: frames in" "$RT/ls$1.log")" -gt "$before" ] && break
		sleep 0.05
	done
	grep "dragon-ta\[$1\]: state: frames in" "$RT/ls$1.log" | tail -n 1 |
		sed -n 's/.*large messages in \([0-9]*\) placed \([0-9]*\) given up \([0-9]*\).*/\1 \2 \3/p'
}

@test "ping-pong between node 2 and a channel on node 0 carries every size from 0 B to 64 MiB intact" {
	CH="$B/tests/ta/chtool"
	start_nodes 3
	bg 0 "$RT/echo.out" "$CH" echo e p
	run -0 on 2 timeout 120 "$CH" ping p e 3 0 1 8 1000 65536 262144 262145 1048576 16777216 67108864
	[ "$(echo "$output" | grep -c ' ok one-way')" -eq 10 ]
	wait_bg "$LAST" 120
	# the six sizes from 64 KiB on (with the request's header, above DRAGON_TA_ZCOPY_KB) went
	# zero-copy both ways, each received into the pool of the channel it went to (3 round trips
	# of each and two warm-up rounds: 30 messages each way)
	read -r in placed gaveup < <(large 0)
	echo "# node 0: large messages in $in placed $placed given up $gaveup"
	[ "$in" -eq 30 ] && [ "$placed" -eq 30 ] && [ "$gaveup" -eq 0 ]
	read -r in placed gaveup < <(large 2)
	echo "# node 2: large messages in $in placed $placed given up $gaveup"
	[ "$in" -eq 30 ] && [ "$placed" -eq 30 ] && [ "$gaveup" -eq 0 ]
}

@test "a large message received from another node's channel comes back zero-copy, intact" {
	CH="$B/tests/ta/chtool"
	start_nodes 3
	bg 0 "$RT/hold.out" "$CH" hold big 60
	wait_ready "$RT/hold.out"
	# node 1 puts 4 MiB into node 0's channel; node 2 receives it from there (its answer is a
	# large message from node 0's agent into node 2's reply channel)
	run -0 on 1 timeout 60 "$CH" send big 7 2 4194304 deposited
	run -0 on 2 env CHTOOL_RECV_CAP=8388608 timeout 60 "$CH" recv big 2 10000
	echo "$output"
	[ "$(echo "$output" | grep -c 'got 4194304 bytes from sender 7 seq [01] intact')" -eq 2 ]
	[ "$(large 0)" = "2 2 0" ]
	[ "$(large 2)" = "2 2 0" ]
}

@test "large messages held zero-copy for a full channel: once received, the agent's budget is whole again and it goes on taking frames" {
	CH="$B/tests/ta/chtool"
	start_nodes 3
	bg 0 "$RT/hold.out" "$CH" hold big 60
	wait_ready "$RT/hold.out"
	# 80 messages of 128 KiB into a channel of 64 slots: 16 wait in node 0's agent, zero-copy
	run -0 on 1 timeout 60 "$CH" send big 7 80 131072
	# until node 0's agent holds some of them for the full channel (its state, asked by SIGUSR1)
	local ta held=
	ta=$(sed -n 's/^pid //p' "$RT/n0/ta.info")
	for _ in $(seq 300); do
		kill -USR1 "$ta"
		sleep 0.1
		held=$(grep "dragon-ta\[0\]: state: held" "$RT/ls0.log" | tail -n 1 | grep -o "([1-9][0-9]* for full channels)") && break
	done
	[ -n "$held" ]
	run -0 on 2 env CHTOOL_RECV_CAP=262144 timeout 60 "$CH" recv big 80 10000
	[ "$(echo "$output" | grep -c 'got 131072 bytes from sender 7 seq [0-9]* intact')" -eq 80 ]
	# the agent still takes frames: small messages after them arrive
	run -0 on 1 timeout 60 "$CH" send big 8 20 64
	run -0 on 2 env CHTOOL_RECV_CAP=4096 timeout 60 "$CH" recv big 20 10000
	echo "$output"
	[ "$(echo "$output" | grep -c 'from sender 8 seq [0-9]* intact')" -eq 20 ]
	# and its state says nothing is held for full channels any more
	large 0 >/dev/null
	grep "dragon-ta\[0\]: state: held" "$RT/ls0.log" | tail -n 1 | grep -q "(0 for full channels)"
}

# large_pingpong SETTING LARGEST EXPECT: two nodes whose agents run with SETTING (NAME=VALUE);
# 65537 B, 1 MiB and LARGEST bytes ping-pong intact between them, and node 0's agent then reports
# EXPECT as its large messages (see large).
large_pingpong() {
	CH="$B/tests/ta/chtool"
	export "$1"
	start_nodes 2
	bg 0 "$RT/echo.out" "$CH" echo e p
	run -0 on 1 timeout 120 "$CH" ping p e 2 65537 1048576 "$2"
	[ "$(echo "$output" | grep -c ' ok one-way')" -eq 3 ]
	wait_bg "$LAST" 120
	[ "$(large 0)" = "$3" ]
}

@test "large messages copied through the agents' buffers (DRAGON_TA_ZCOPY_KB=0) arrive intact" {
	large_pingpong DRAGON_TA_ZCOPY_KB=0 16777216 "0 0 0"
}

@test "large messages in many small zero-copy chunks (DRAGON_TA_BULK_KB=16) arrive intact" {
	large_pingpong DRAGON_TA_BULK_KB=16 4194304 "12 12 0"
}

@test "a sender's agent killed in the middle of a large message: the receiving node gives it up and its pool space comes back" {
	CH="$B/tests/ta/chtool"
	export DRAGON_TA_DEAD_MS=1000
	# every agent stops sending a large message after its first 8 MiB (a test hook)
	DRAGON_TA_TEST_STALL_KB=8192 start_nodes 2
	bg 0 "$RT/pw.out" "$CH" poolwatch big 60
	wait_ready "$RT/pw.out"
	local free0 now
	free0=$(sed -n 's/^ready free=//p' "$RT/pw.out")
	# buffered: returns once node 1's agent holds it
	run -0 on 1 timeout 60 "$CH" send big 0 1 67108864
	# node 0's agent took 64 MiB of the channel's pool for it; the message is not in the channel
	for _ in $(seq 200); do
		now=$(tail -n 1 "$RT/pw.out")
		[[ "$now" == free=* ]] && [ "${now#free=}" != "$free0 count=0" ] && break
		sleep 0.05
	done
	echo "# before: free=$free0; after the first chunks: $now"
	[[ "$now" == *" count=0" ]]
	now=${now#free=}
	[ $((free0 - ${now%% *})) -ge 67108864 ]
	kill -KILL "$(sed -n 's/^pid //p' "$RT/n1/ta.info")"
	# within the dead time (1 s) and some: the message given up, the space back, nothing enqueued
	for _ in $(seq 200); do
		[ "$(tail -n 1 "$RT/pw.out")" = "free=$free0 count=0" ] && break
		sleep 0.05
	done
	tail -n 3 "$RT/pw.out"
	[ "$(tail -n 1 "$RT/pw.out")" = "free=$free0 count=0" ]
	grep -q "dragon-ta\[0\]: gave up a message of 6710[0-9]* bytes from node 1" "$RT/ls0.log"
	[ "$(large 0 | cut -d' ' -f3)" -eq 1 ]
}

@test "messages sent before the agents are up wait for them and are delivered, in order" {
	CH="$B/tests/ta/chtool"
	# Every agent starts 4 s late (a wrapper in DRAGON_LIBEXECDIR), as when loading libfabric is
	# slow: the services are ready long before, and the first remote operation waits, bounded.
	mkdir -m 700 "$RT/slow"
	printf '#!/bin/sh\nsleep 4\nexec "%s" "$@"\n' "$B/runtime/ta/dragon-ta" >"$RT/slow/dragon-ta"
	chmod +x "$RT/slow/dragon-ta"
	DRAGON_TA_EARLY_READY=1 NODES_EARLY=1 DRAGON_LIBEXECDIR="$RT/slow" start_nodes 2
	grep -q '^pending 1$' "$RT/n1/ta.info"
	[ ! -e "$RT/n1/ta.peers" ]
	bg 0 "$RT/serve.out" "$CH" serve early 50 1
	wait_ready "$RT/serve.out"
	run -0 on 1 env DRAGON_DEBUG=1 "$CH" send early 0 50 100
	[[ "$output" == *"waiting for this node's transport agent"* ]]
	[[ "$output" == *"transport agent is up after"* ]]
	wait_bg "$LAST" 60
	grep -q "received 50 in order from 1 senders" "$RT/serve.out"
}

@test "DRAGON_TA_EARLY_READY=0: local services say ready only once the agents' addresses are exchanged" {
	mkdir -m 700 "$RT/slow"
	printf '#!/bin/sh\nsleep 2\nexec "%s" "$@"\n' "$B/runtime/ta/dragon-ta" >"$RT/slow/dragon-ta"
	chmod +x "$RT/slow/dragon-ta"
	DRAGON_TA_EARLY_READY=0 NODES_EARLY=1 DRAGON_LIBEXECDIR="$RT/slow" start_nodes 2
	# start_nodes returned once both wrote ls.ready: their tables were there before
	[ -e "$RT/n0/ta.peers" ]
	[ -e "$RT/n1/ta.peers" ]
	! grep -q '^pending 1$' "$RT/n0/ta.info"
}

@test "frames from nodes that know the agents' addresses before this node's agent does wait for it: none lost" {
	CH="$B/tests/ta/chtool"
	# Node 2's agent reads its table from a copy the test publishes late (a wrapper in
	# DRAGON_LIBEXECDIR changes --peer-file), as when node 2's services write ta.peers seconds
	# after the others': nodes 0 and 1 send to it before it knows them (the early-ready race).
	mkdir -m 700 "$RT/late"
	printf '#!/bin/sh\n[ "$2" = 2 ] && exec "%s" --node 2 --dir "$4" --peer-file "$6.late"\nexec "%s" "$@"\n' \
		"$B/runtime/ta/dragon-ta" "$B/runtime/ta/dragon-ta" >"$RT/late/dragon-ta"
	chmod +x "$RT/late/dragon-ta"
	DRAGON_TA_EARLY_READY=1 NODES_EARLY=1 DRAGON_LIBEXECDIR="$RT/late" start_nodes 3
	for i in 0 1 2; do
		for _ in $(seq 400); do [ -e "$RT/n$i/ta.peers" ] && break; sleep 0.05; done
		[ -e "$RT/n$i/ta.peers" ]
	done
	[ ! -e "$RT/n2/ta.peers.late" ]
	bg 2 "$RT/serve.out" "$CH" serve late 100 2
	wait_ready "$RT/serve.out"
	serve=$LAST
	bg 0 "$RT/hold.out" "$CH" hold h0 60 "first" "second"
	wait_ready "$RT/hold.out"
	# buffered sends: they return once nodes 0 and 1's agents hold them, which send at once
	run -0 on 0 "$CH" send late 0 50 100
	run -0 on 1 "$CH" send late 1 50 100
	# and a receive from node 2 on node 0's channel, which node 2's agent holds for now
	bg 2 "$RT/recv.out" "$CH" recv h0 2 30000
	recv=$LAST
	# Longer than anything the agent ever waited for its table (2 s) before it took a frame of an
	# unknown node for garbage: this delay is the race, not a wait for a condition.
	sleep 3
	[ "$(grep -c . "$RT/serve.out")" -eq 1 ] # only "ready": nothing arrived before the table
	cp "$RT/n2/ta.peers" "$RT/n2/.late.tmp"
	mv "$RT/n2/.late.tmp" "$RT/n2/ta.peers.late"
	wait_bg "$serve" 60
	grep -q "received 100 in order from 2 senders" "$RT/serve.out"
	wait_bg "$recv" 60
	[ "$(cat "$RT/recv.out")" = "$(printf 'first\nsecond')" ]
	! grep -q "unknown-peer" "$RT/ls2.log"
}

@test "a node whose agent never comes up: the other nodes' processes fail on its channels at once" {
	CH="$B/tests/ta/chtool"
	mkdir -m 700 "$RT/bad"
	printf '#!/bin/sh\n[ "$2" = 1 ] && exit 3\nexec "%s" "$@"\n' "$B/runtime/ta/dragon-ta" >"$RT/bad/dragon-ta"
	chmod +x "$RT/bad/dragon-ta"
	DRAGON_TA_EARLY_READY=1 NODES_EARLY=1 DRAGON_LIBEXECDIR="$RT/bad" start_nodes 2
	for _ in $(seq 400); do [ -e "$RT/n0/ta.peers" ] && break; sleep 0.05; done
	[ -e "$RT/n0/ta.peers" ]
	grep -q "transport: .*unreachable from this node" "$RT/ls1.log"
	# node 1 is not in the table: a process of node 0 gets EPEER on its channel, without a wait
	bg 1 "$RT/hold.out" "$CH" hold nb 30 x
	wait_ready "$RT/hold.out"
	run -1 on 0 timeout 20 "$CH" recv nb 1 -1
	[[ "$output" == *"DRAGON_EPEER"* ]]
	# and node 1's own processes are told that their agent is gone
	bg 0 "$RT/hold0.out" "$CH" hold n0 30 y
	wait_ready "$RT/hold0.out"
	run -1 on 1 "$CH" recv n0 1 0
	[[ "$output" == *"DRAGON_EPEER"*"transport agent of this node"*"is gone"* ]]
}

@test "a million messages from node 1 reach a channel on node 0 with no loss, in order" {
	CH="$B/tests/ta/chtool"
	start_nodes 2
	bg 0 "$RT/serve.out" "$CH" serve s 1000000 1
	wait_ready "$RT/serve.out"
	run -0 on 1 timeout 120 "$CH" send s 0 1000000 16
	# The sends returned once node 1's agent held them; delivery takes minutes on a loaded machine:
	# the wait fails when node 0's agent stops receiving for 60 s, or after 15 minutes.
	wait_flow "$LAST" 0 60 900
	grep -q "received 1000000 in order from 1 senders" "$RT/serve.out"
}

@test "a node's services stopped right after buffered sends: what its agent held still arrives" {
	CH="$B/tests/ta/chtool"
	start_nodes 2
	bg 0 "$RT/serve.out" "$CH" serve q 3000 1
	wait_ready "$RT/serve.out"
	# The sends return once node 1's agent holds the messages; then node 1's services stop (as at
	# the end of a job): the agent must deliver what it holds before it goes (it used to be
	# killed with SIGKILL first).
	run -0 on 1 "$CH" send q 0 3000 2000
	kill -TERM "${PIDS[1]}"
	wait_bg "${PIDS[1]}" 30
	wait_bg "$LAST" 60
	grep -q "received 3000 in order from 1 senders" "$RT/serve.out"
}

@test "eight senders on two nodes to one channel on node 0: each sender's messages arrive in its order" {
	CH="$B/tests/ta/chtool"
	start_nodes 3
	bg 0 "$RT/serve.out" "$CH" serve m 80000 8
	wait_ready "$RT/serve.out"
	local senders=()
	for i in 0 1 2 3; do on 1 timeout 120 "$CH" send m $i 10000 100 & senders+=($!); done
	for i in 4 5 6 7; do on 2 timeout 120 "$CH" send m $i 10000 3000 & senders+=($!); done
	for p in "${senders[@]}"; do wait_bg "$p" 150; done
	wait_bg "$LAST" 120
	grep -q "received 80000 in order from 8 senders" "$RT/serve.out"
}

@test "all-to-all on three nodes with a small agent buffer: every node's stream arrives whole, in order" {
	# Each agent's budget (1 MiB here) fills with its own node's sends at once; the agents must
	# still take each other's frames, or none returns the credit the others wait for (a deadlock
	# before 2026-11-30).
	CH="$B/tests/ta/chtool"
	DRAGON_TA_BUFFER_MB=1 start_nodes 3
	local a2a=()
	for i in 0 1 2; do bg $i "$RT/a2a$i.out" "$CH" a2a x $i 3 65536 2; a2a+=($LAST); done
	for p in "${a2a[@]}"; do wait_bg "$p" 150; done
	[ "$(cat "$RT"/a2a?.out | grep -c '^a2a node . received [1-9]')" -eq 3 ]
}

@test "receive and poll on another node's channel: messages in order, a timeout, deposited sends" {
	CH="$B/tests/ta/chtool"
	start_nodes 3
	bg 0 "$RT/hold.out" "$CH" hold h 30 one two
	wait_ready "$RT/hold.out"
	run -0 on 2 "$CH" poll h 0
	[ "$output" = "in out" ]
	run -0 on 1 "$CH" recv h 2 1000
	[ "$output" = "$(printf 'one\ntwo')" ]
	run -1 on 1 "$CH" recv h 1 300
	[[ "$output" == *"DRAGON_ETIMEDOUT"*"channel on node 0"* ]]
	run -0 on 2 "$CH" poll h 0
	[ "$output" = "out" ]
	# A deposited send has landed when it returns: a receive that does not wait finds it.
	run -0 on 2 "$CH" send h 0 1 16 deposited
	run -0 on 1 "$CH" recv h 1 0
}

@test "garbage in a node's gateway is dropped and logged; the agent goes on serving" {
	CH="$B/tests/ta/chtool"
	start_nodes 2
	bg 0 "$RT/serve.out" "$CH" serve g 100 1
	wait_ready "$RT/serve.out"
	run -0 on 1 "$CH" junk "$RT/n1/ta.info"
	run -0 on 1 "$CH" send g 0 100 64
	wait_bg "$LAST" 120
	grep -q "received 100 in order" "$RT/serve.out"
	grep -q "dragon-ta\[1\]: dropped request" "$RT/ls1.log"
}

@test "a node whose agent dies: waits on its channels fail with EPEER in bounded time; other nodes go on" {
	CH="$B/tests/ta/chtool"
	export DRAGON_TA_DEAD_MS=1000
	start_nodes 3
	bg 2 "$RT/hold.out" "$CH" hold h 60
	wait_ready "$RT/hold.out"
	bg 0 "$RT/serve.out" "$CH" serve ok 10 1
	local server=$LAST
	wait_ready "$RT/serve.out"
	# A receive on node 2's empty channel waits; then node 2's agent is killed.
	bg 1 "$RT/recv.out" "$CH" recv h 1 -1
	local waiter=$LAST rc=0
	sleep 0.5
	local ta
	ta=$(sed -n 's/^pid //p' "$RT/n2/ta.info")
	[ -n "$ta" ]
	kill -KILL "$ta"
	local t0=$SECONDS
	wait_bg "$waiter" 30 || rc=$?
	[ "$rc" -eq 1 ]
	[ $((SECONDS - t0)) -le 5 ]
	grep -q "DRAGON_EPEER" "$RT/recv.out"
	# Deposited sends to the dead node fail too, and node 0 still serves node 1.
	run -1 on 1 timeout 20 "$CH" send h 0 1 16 deposited
	[[ "$output" == *"DRAGON_EPEER"* ]]
	# a large one too (it would go zero-copy)
	run -1 on 1 timeout 20 "$CH" send h 0 1 4194304 deposited
	[[ "$output" == *"DRAGON_EPEER"* ]]
	run -0 on 1 "$CH" send ok 0 10 32
	wait_bg "$server" 60
	grep -q "received 10 in order" "$RT/serve.out"
}

@test "a channel on another node without a transport agent (DRAGON_TA=off) fails to attach, naming why" {
	CH="$B/tests/ta/chtool"
	export DRAGON_TA=off
	start_nodes 2
	bg 0 "$RT/hold.out" "$CH" hold h 30 x
	wait_ready "$RT/hold.out"
	run -1 on 1 "$CH" recv h 1 0
	[[ "$output" == *"DRAGON_EPEER"*"transport agent"* ]]
}

@test "a process whose own node's agent dies gets EPEER, never waits forever on its gateway" {
	CH="$B/tests/ta/chtool"
	start_nodes 2
	bg 0 "$RT/hold.out" "$CH" hold h 60
	wait_ready "$RT/hold.out"
	local ta
	ta=$(sed -n 's/^pid //p' "$RT/n1/ta.info")
	# A stopped agent takes nothing: the sender fills the gateway and waits; then the agent dies.
	kill -STOP "$ta"
	bg 1 "$RT/send.out" timeout 30 "$CH" send h 0 5000 100
	local sender=$LAST rc=0
	sleep 1
	kill -KILL "$ta"
	wait_bg "$sender" 60 || rc=$?
	[ "$rc" -eq 1 ]
	grep -q "DRAGON_EPEER.*transport agent of this node.*is gone" "$RT/send.out"
	# A process that starts after the agent died is told the same at once.
	run -1 on 1 "$CH" send h 0 1 100
	[[ "$output" == *"DRAGON_EPEER"*"transport agent of this node"*"is gone"* ]]
}

@test "a channel kept by local services: found by name from another node after its creator left, or gone with it" {
	CH="$B/tests/ta/chtool"
	start_nodes 3
	run -0 on 0 "$CH" fchan kept outlive 0 one two
	run -0 on 2 "$CH" recv kept 2 1000
	[ "$output" = "$(printf 'one\ntwo')" ]
	run -0 on 0 "$DRAGON" status --json
	[[ "$output" == *CHANNEL* || "$output" == *channel* ]]
	# Without outlive the channel and its name go with the process.
	run -0 on 1 "$CH" fchan owned owned 0 x
	run -1 on 2 "$CH" recv owned 1 0
	[[ "$output" == *lookup* ]]
}
