#!/usr/bin/env bats
# tests/ddict/multinode.bats: the dictionary over three nodes' local services and transport agents on one machine (file bootstrap).

bats_require_minimum_version 1.5.0

load ../multinode/nodes

DDSETUP() {
	DD="$B/tests/ddict/ddtool"
	export DRAGON_DDICT_MANAGER="$B/runtime/ddict/dragon-ddict-manager"
}

stop_nodes() { # the fabric ends: its services, agents and managers go
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
	rm -rf "$RT"/n* "$RT/boot"/*
}

@test "three nodes: 100,000 keys written on node 1 are read on node 2 and node 0 with every byte checked; persisted, restored by a new fabric" {
	DDSETUP
	start_nodes 3
	run -0 on 0 "$DD" create d 1 268435456
	[[ "$output" == *"with 3 managers"* ]]
	run -0 on 1 timeout 300 "$DD" fill d 100000 200 3 batch
	run -0 on 2 timeout 300 "$DD" check d 100000 200 3
	[[ "$output" == *"checked 100000 keys, 0 bad, len 100000"* ]]
	run -0 on 0 timeout 300 "$DD" check d 100000 200 3
	[[ "$output" == *"0 bad"* ]]
	# one by one across nodes too (fewer: each is a round trip through two agents)
	run -0 on 2 timeout 300 "$DD" fill d 2000 5000 4
	run -0 on 1 timeout 300 "$DD" check d 2000 5000 4
	mkdir -p "$RT/persist"
	run -0 on 0 "$DD" persist d "$RT/persist"
	ls "$RT/persist"
	[ "$(ls "$RT/persist" | grep -c '\.shard$')" -eq 3 ]
	stop_nodes
	FAB="mn$RANDOM"
	start_nodes 3
	run -0 on 0 "$DD" create d 1 268435456
	run -0 on 2 "$DD" restore d "$RT/persist"
	run -0 on 1 timeout 300 "$DD" check d 2000 5000 4
	[[ "$output" == *"checked 2000 keys, 0 bad, len 100000"* ]]
}

@test "three nodes: a killed manager fails its keys with DRAGON_EPEER, the other nodes' managers serve" {
	DDSETUP
	start_nodes 3
	run -0 on 0 "$DD" create d 1 67108864
	run -0 on 0 timeout 120 "$DD" fill d 3000 64 9 batch
	pid=$(on 0 "$DD" pids d | awk '$2 == 2 { print $3 }')
	[ -n "$pid" ]
	kill -KILL "$pid"
	run -0 on 1 timeout 120 "$DD" probe d 3000 64 9 2
	echo "$output"
	[[ "$output" == *"other 0"* ]]
}

@test "three nodes: a node lost (its agent killed): its keys fail with DRAGON_EPEER within the dead time, the others serve" {
	DDSETUP
	export DRAGON_TA_DEAD_MS=1000
	start_nodes 3
	run -0 on 0 "$DD" create d 1 67108864
	run -0 on 0 timeout 120 "$DD" fill d 300 64 9 batch
	ta=$(sed -n 's/^pid //p' "$RT/n2/ta.info")
	[ -n "$ta" ]
	kill -KILL "$ta"
	run -0 on 1 timeout 120 "$DD" probe d 300 64 9 2
	echo "$output"
	[[ "$output" == *"other 0"* ]]
	worst=$(echo "$output" | awk '/^ok /{print $8}')
	awk -v w="$worst" 'BEGIN { exit !(w < 3.0) }'
}
