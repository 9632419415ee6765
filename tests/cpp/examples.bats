#!/usr/bin/env bats
# tests/cpp/examples.bats: the C++ examples (examples/cpp/) run under `dragon` on this machine and leave nothing behind.

bats_require_minimum_version 1.5.0

setup() {
	B="${top_builddir:-$PWD}"
	DRAGON="$B/runtime/launcher/dragon"
	RT="$(mktemp -d /tmp/dragon-cpp-bats.XXXXXX)"
	chmod 700 "$RT"
	BASE="$RT/base"
}

teardown() {
	rm -rf "$RT"
}

# Nothing of this test's fabric left: no runtime directory, no process that it started (found by
# the runtime directory in their environment: the same examples may run at the same time in other
# tests, on the test cluster's nodes too, which share this pid namespace).
assert_clean() {
	local left
	[ ! -e "$BASE" ] || { echo "left behind: $(find "$BASE")"; return 1; }
	left=$(grep -las "DRAGON_RUNTIME_DIR=$BASE/" /proc/[0-9]*/environ 2>/dev/null || true)
	[ -z "$left" ] || { echo "left running: $left"; return 1; }
}

@test "C++ ring: a token goes 20 times around 5 processes over named queues" {
	run --separate-stderr "$DRAGON" --runtime-dir "$BASE" "$B/examples/cpp/ring" 5 20
	echo "$output"; echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "the token went 20 times around 5 processes on 1 node(s): 99 (expected 99)" ]
	assert_clean
}

@test "C++ ring with a label per line (dragon -l) and the default size" {
	run "$DRAGON" -l --runtime-dir "$BASE" "$B/examples/cpp/ring"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *": the token went 10 times around 4 processes on 1 node(s): 39 (expected 39)" ]]
	assert_clean
}

@test "C++ producer/consumer: 3 producers, 2 consumers, every item consumed once" {
	run --separate-stderr "$DRAGON" --runtime-dir "$BASE" "$B/examples/cpp/prodcons" 3 2 2000
	echo "$output"; echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "3 producers, 2 consumers: 6000 items (expected 6000), sum 6005997000 (expected 6005997000)" ]
	assert_clean
}

@test "C++ examples: a bad argument is a usage error, a dragon error is reported with its detail" {
	run "$DRAGON" --runtime-dir "$BASE" "$B/examples/cpp/ring" 1
	[ "$status" -eq 2 ]
	[[ "$output" == *"usage: ring"* ]]
	# Outside a fabric dragon::runtime throws: the message carries the code and the library's detail.
	run env -u DRAGON_LS_SOCKET -u DRAGON_RUNTIME_DIR "$B/examples/cpp/prodcons"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == "prodcons: dragon::runtime: "*"DRAGON_ENOTINIT"* ]]
	assert_clean
}
