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
