#!/usr/bin/env bats
# tests/ddict/ddict.bats: the distributed dictionary on one machine under `dragon`: the whole API, 100,000 keys, persist and restore across runs, a killed manager.

bats_require_minimum_version 1.5.0

setup() {
	B="${top_builddir:-$PWD}"
	DRAGON="$B/runtime/launcher/dragon"
	DD="$B/tests/ddict/ddtool"
	RT="$(mktemp -d /tmp/dragon-ddict.XXXXXX)"
	chmod 700 "$RT"
	export DRAGON_DDICT_MANAGER="$B/runtime/ddict/dragon-ddict-manager"
}

teardown() {
	rm -rf "$RT"
}

@test "the key hash is Python's hashlib.blake2b(key, digest_size=8) read little-endian, and so is the manager of a key" {
	command -v python3 >/dev/null || skip "python3 is not installed"
	python3 -c '
import os, random
random.seed(14)
for n in [0, 1, 7, 8, 63, 64, 65, 200, 1000] + [random.randrange(0, 300) for _ in range(300)]:
    print(os.urandom(n).hex())' >"$RT/keys"
	python3 -c '
import hashlib, sys
for line in open(sys.argv[1]):
    k = bytes.fromhex(line.strip())
    h = int.from_bytes(hashlib.blake2b(k, digest_size=8).digest(), "little")
    print("%016x %d" % (h, h % 7))' "$RT/keys" >"$RT/python"
	"$DD" hash 7 <"$RT/keys" >"$RT/c"
	[ "$(wc -l <"$RT/c")" -eq 309 ]
	diff "$RT/python" "$RT/c"
}

@test "every call of the API behaves as documented (put, get, get_mem, pop, del, contains, len, iteration, clear, pin, budget, batch, wait_for_key, fetch_add, freeze, descriptors)" {
	run -0 timeout 120 "$DRAGON" "$DD" api
	[[ "$output" == *"api: 0 failures"* ]]
}

@test "100,000 keys put one by one and in a batch read back with every byte checked" {
	run -0 timeout 300 "$DRAGON" sh -c '
		"$0" create d 2 268435456 &&
		"$0" fill d 100000 100 1 &&
		"$0" check d 100000 100 1 &&
		"$0" fill d 100000 64 2 batch &&
		"$0" check d 100000 64 2 &&
		"$0" fill d 20000 4000 3 batch &&
		"$0" check d 20000 4000 3 &&
		"$0" destroy d &&
		"$0" create d 1 1048576 && "$0" destroy d' "$DD"
	echo "$output"
	[[ "$output" == *"checked 100000 keys, 0 bad, len 100000"* ]]
	[ "$(echo "$output" | grep -c "checked 100000 keys, 0 bad")" -eq 2 ]
	# destroy (from a process that attached by name) frees the name for a new dictionary
	[ "$(echo "$output" | grep -c "^destroyed")" -eq 2 ]
	# 80 MB in one batch: more messages than the reply channel holds answers, acknowledged as it goes
	[[ "$output" == *"checked 20000 keys, 0 bad, len 100000"* ]]
}

@test "persist in one run, restore in the next; a corrupt or missing shard fails the restore and is named" {
	run -0 timeout 300 "$DRAGON" sh -c '
		"$0" create d 3 67108864 && "$0" fill d 20000 300 7 batch && "$0" persist d "$1"' "$DD" "$RT"
	[ -s "$RT/ddict-0-of-3.shard" ] && [ -s "$RT/ddict-1-of-3.shard" ] && [ -s "$RT/ddict-2-of-3.shard" ]
	run -0 timeout 300 "$DRAGON" sh -c '
		"$0" create d 3 67108864 && "$0" restore d "$1" && "$0" check d 20000 300 7' "$DD" "$RT"
	[[ "$output" == *"checked 20000 keys, 0 bad, len 20000"* ]]
	# one byte of shard 1 changed
	size=$(stat -c %s "$RT/ddict-1-of-3.shard")
	printf 'X' | dd of="$RT/ddict-1-of-3.shard" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
	run timeout 300 "$DRAGON" sh -c '"$0" create d 3 67108864 && "$0" restore d "$1"' "$DD" "$RT"
	[ "$status" -ne 0 ]
	[[ "$output" == *"ddict-1-of-3.shard is corrupt"* ]]
	# shard 2 missing
	rm "$RT/ddict-2-of-3.shard"
	run timeout 300 "$DRAGON" sh -c '"$0" create d 3 67108864 && "$0" restore d "$1"' "$DD" "$RT"
	[ "$status" -ne 0 ]
	[[ "$output" == *"ddict-2-of-3.shard is missing"* || "$output" == *"ddict-1-of-3.shard is corrupt"* ]]
	# a dictionary of another shape is refused
	run timeout 300 "$DRAGON" sh -c '"$0" create d 2 67108864 && "$0" restore d "$1"' "$DD" "$RT"
	[ "$status" -ne 0 ]
}

@test "a killed manager: its keys fail with DRAGON_EPEER in bounded time, the other managers serve theirs" {
	run -0 timeout 300 "$DRAGON" sh -c '
		"$0" create d 3 67108864 && "$0" fill d 3000 64 5 batch || exit 1
		pid=$("$0" pids d | awk "\$1 == 1 { print \$3 }")
		kill -KILL "$pid"
		"$0" probe d 3000 64 5 1' "$DD"
	echo "$output"
	line=$(echo "$output" | grep "^ok ")
	ok=$(echo "$line" | awk "{print \$2}")
	peer=$(echo "$line" | awk "{print \$4}")
	worst=$(echo "$line" | awk "{print \$8}")
	[ "$ok" -gt 1500 ] && [ "$peer" -gt 500 ]
	[ "$((ok + peer))" -eq 3000 ]
	# bounded: each failing call returns within a second (the probe runs every 200 ms)
	awk -v w="$worst" 'BEGIN { exit !(w < 1.0) }'
}

@test "dragon status shows each dictionary: its managers with their keys and bytes after known puts, and a killed manager's error" {
	keys="a bb ccc k1 k2 k3 k4 k5 k6 k7 k8"
	# which manager of two holds each key: C's hash (Python's, as the first test shows)
	for k in $keys; do printf '%s' "$k" | od -An -tx1 | tr -d ' \n'; echo; done >"$RT/keys"
	m0=$("$DD" hash 2 <"$RT/keys" | awk '$2 == 0' | wc -l)
	m1=$("$DD" hash 2 <"$RT/keys" | awk '$2 == 1' | wc -l)
	[ $((m0 + m1)) -eq 11 ] && [ "$m0" -gt 0 ] && [ "$m1" -gt 0 ]
	run -0 timeout 120 "$DRAGON" sh -c '
		"$0" create st 2 1048576 >/dev/null && "$0" create other 1 65536 >/dev/null || exit 1
		for k in $1; do "$0" set st "$k" v || exit 1; done
		"$2" status && "$2" status --json >"$3/status.json" || exit 1
		kill -KILL "$("$0" pids st | awk "\$1 == 1 { print \$3 }")"
		"$2" status' "$DD" "$keys" "$DRAGON" "$RT"
	echo "$output"
	# each entry of a 1-3 byte key and a 1 byte value takes 64 bytes (docs/ddict.md, Budget)
	first=$(echo "$output" | awk '/^fabric/ { n++ } n == 1')
	echo "$first" | grep -Eq "^    dictionary [0-9a-f]{16} 'st': 2 managers$"
	echo "$first" | grep -Eq "^      manager 0: node 0, pid [0-9]+, $m0 keys, $((m0 * 64)) bytes of 1048576$"
	echo "$first" | grep -Eq "^      manager 1: node 0, pid [0-9]+, $m1 keys, $((m1 * 64)) bytes of 1048576$"
	echo "$first" | grep -Eq "^    dictionary [0-9a-f]{16} 'other': 1 managers$"
	echo "$first" | grep -Eq "^      manager 0: node 0, pid [0-9]+, 0 keys, 0 bytes of 65536$"
	python3 - "$RT/status.json" "$m0" "$m1" <<-'PY'
	import json, sys
	st = json.load(open(sys.argv[1]))
	dd = {d["name"]: d for d in st[0]["dictionaries"]}
	assert sorted(dd) == ["other", "st"], dd
	m = dd["st"]["managers"]
	assert [(x["index"], x["keys"], x["bytes"], x["budget"]) for x in m] == \
	    [(0, int(sys.argv[2]), 64 * int(sys.argv[2]), 1048576), (1, int(sys.argv[3]), 64 * int(sys.argv[3]), 1048576)], m
	assert dd["other"]["managers"][0]["keys"] == 0 and len(dd["st"]["id"]) == 16
	PY
	# after manager 1 was killed: the last status names its failure, manager 0 still answers
	last=$(echo "$output" | awk '/^fabric/ { n++ } n == 2')
	echo "$last" | grep -Eq "^      manager 1: DRAGON_E[A-Z]+: "
	echo "$last" | grep -Eq "^      manager 0: node 0, pid [0-9]+, $m0 keys, "
}
