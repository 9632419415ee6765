#!/usr/bin/env bats
# tests/scale/head.bats: what the head node spends per node: a connection's end is told only to the nodes that hold something of it; the descriptor limit fits the node count (three nodes' local services on this machine, file bootstrap).
bats_require_minimum_version 1.5.0

load ../multinode/nodes

# Lines of node $1's log saying that another node's connection or owner ended.
gones() { grep -c "says owner .* are gone" "$RT/ls$1.log" || true; }

@test "a client of node 1 that reached no other node ends without the head node telling node 2" {
	export DRAGON_DEBUG=1
	start_nodes 3
	for i in 1 2 3; do
		run on 1 "$MN" info
		[ "$status" -eq 0 ]
		[ "$output" = "node 1 of 3 fabric $FAB" ]
	done
	# node 1 told the head node of each (so that GS forgets them)...
	for _ in $(seq 100); do [ "$(gones 0)" -ge 3 ] && break; sleep 0.05; done
	[ "$(gones 0)" -ge 3 ]
	# ...which told nobody else (a name lookup from node 2 goes through the same link after them)
	run on 2 "$MN" get nosuchname 0
	[ "$(gones 2)" -eq 0 ]
}

@test "a client of node 1 whose group runs on node 2 ends: the head node tells node 2, which stops the member" {
	export DRAGON_DEBUG=1
	start_nodes 3
	# The member (on node 2) says its pid, then sleeps; its creator waits for it.
	on 1 "$MN" group 1 2 sh -c "echo \$\$ > '$RT/out/member'; exec sleep 300" &
	creator=$!
	for _ in $(seq 200); do [ -s "$RT/out/member" ] && break; sleep 0.05; done
	member=$(cat "$RT/out/member")
	kill -0 "$member"
	# the creator dies (its connection to node 1 closes): node 2 hears of it and stops the member
	pids=$(pgrep -f "mnclient group 1 2 sh -c .*$RT/out/member")
	[ -n "$pids" ]
	kill -KILL $pids
	for _ in $(seq 200); do kill -0 "$member" 2>/dev/null || break; sleep 0.05; done
	! kill -0 "$member" 2>/dev/null
	[ "$(gones 2)" -ge 1 ]
	wait "$creator" || true
}

# The soft and hard descriptor limits of process $1.
nofile() { awk '/^Max open files/ {print $4, $5}' "/proc/$1/limits"; }

@test "local services raise a soft descriptor limit below the fabric's need (nodes + 256) within the hard limit" {
	ulimit -Sn 100
	ulimit -Hn 1000
	start_nodes 3
	for i in 0 1 2; do [ "$(nofile "${PIDS[$i]}")" = "259 1000" ]; done
	! grep -q "descriptors per node" "$RT/ls0.log"
}

@test "a hard descriptor limit below the fabric's need: local services take all of it and say how to raise it" {
	ulimit -Sn 100
	ulimit -Hn 200
	start_nodes 3
	[ "$(nofile "${PIDS[0]}")" = "200 200" ]
	grep -q "a fabric of 3 nodes needs about 259 descriptors per node; the hard limit (RLIMIT_NOFILE) is 200: raise it" "$RT/ls0.log"
}

@test "the head node's port for other nodes takes a backlog of thousands of connections (every node connects at start-up)" {
	start_nodes 3
	port=$(tr -d '\0' <"$RT/boot/0.ls.addrs" | cut -d' ' -f1 | sed 's/.*://')
	echo "port $port"
	[ -n "$port" ]
	# ss shows a listening socket's backlog as its Send-Q (the kernel caps it at somaxconn)
	want=$(cat /proc/sys/net/core/somaxconn)
	[ "$want" -gt 4096 ] && want=4096
	ss -Hltn "sport = :$port"
	[ "$(ss -Hltn "sport = :$port" | awk '{print $3}' | head -1)" = "$want" ]
}
