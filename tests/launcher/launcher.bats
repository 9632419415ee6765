#!/usr/bin/env bats
# tests/launcher/launcher.bats: `dragon PROG` end to end: output, exit status, errors, signals, cleanup.

bats_require_minimum_version 1.5.0

setup() {
	B="${top_builddir:-$PWD}"
	DRAGON="$B/runtime/launcher/dragon"
	HELLO="$B/examples/hello"
	DGTOOL="$B/tests/launcher/dgtool"
	RT="$(mktemp -d /tmp/dragon-bats.XXXXXX)"
	chmod 700 "$RT"
	BASE="$RT/base"
	MARK="$RANDOM$RANDOM"
}

teardown() {
	# Only what this test started: processes carrying its marker.
	pkill -KILL -f "sleep 3$MARK" 2>/dev/null || true
	rm -rf "$RT"
}

# Nothing of the fabric left: no runtime directory, no process with our marker, no pool memfd.
assert_clean() {
	[ ! -e "$BASE" ] || { echo "left behind: $(find "$BASE")"; return 1; }
	! pgrep -f "sleep 3$MARK" >/dev/null || { echo "process left: $(pgrep -af "sleep 3$MARK")"; return 1; }
}

wait_for() { # wait_for FILE: up to 5 s
	for _ in $(seq 50); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

@test "--help describes usage and exit codes" {
	run "$DRAGON" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"Usage: dragon"* ]]
	[[ "$output" == *"127 if PROG was not found"* ]]
}

@test "PROG's output reaches stdout and stderr; its exit status is dragon's" {
	run "$DRAGON" --runtime-dir "$BASE" sh -c 'echo out-line; echo err-line >&2; exit 7'
	[ "$status" -eq 7 ]
	[[ "$output" == *"out-line"* ]]
	[[ "$output" == *"err-line"* ]]
	assert_clean
}

@test "stdout and stderr stay separate streams" {
	"$DRAGON" --runtime-dir "$BASE" sh -c 'echo to-out; echo to-err >&2' >"$RT/o" 2>"$RT/e"
	grep -qx to-out "$RT/o"
	grep -qx to-err "$RT/e"
	! grep -q to-err "$RT/o"
}

@test "PROG gets the fabric's environment" {
	run "$DRAGON" --runtime-dir "$BASE" sh -c 'echo "$DRAGON_LS_SOCKET $DRAGON_NODE_INDEX $DRAGON_PUID"'
	[ "$status" -eq 0 ]
	[[ "$output" == "$BASE/"*"/ls.sock 0 "* ]]
}

@test "a missing program is a clear error with status 127" {
	run -127 "$DRAGON" --runtime-dir "$BASE" ./no-such-program-$MARK
	[ "$status" -eq 127 ]
	[[ "$output" == *"no-such-program-$MARK"* ]]
	run -127 "$DRAGON" --runtime-dir "$BASE" no-such-command-$MARK
	[ "$status" -eq 127 ]
	[[ "$output" == *"command not found"* ]]
	assert_clean
}

@test "a PROG ending in .py, or a file that is not executable, runs under the package's Python" {
	printf 'import os, sys\nprint(sys.executable, sys.argv[1:], "DRAGON_LS_SOCKET" in os.environ)\nsys.exit(3)\n' >"$RT/prog.py"
	run -3 "$DRAGON" --runtime-dir "$BASE" "$RT/prog.py" a "b c"
	[ "$output" = "${PYTHON:-/usr/bin/python3} ['a', 'b c'] True" ]
	cp "$RT/prog.py" "$RT/script"
	chmod -x "$RT/script"
	run -3 "$DRAGON" --runtime-dir "$BASE" "$RT/script" x
	[ "$output" = "${PYTHON:-/usr/bin/python3} ['x'] True" ]
	# A relative script is found from dragon's working directory.
	cd "$RT"
	run -3 "$DRAGON" --runtime-dir "$BASE" prog.py
	[ "$output" = "${PYTHON:-/usr/bin/python3} [] True" ]
	# An unchanged multiprocessing program gets the dragon start method and the fabric's processes.
	printf 'import multiprocessing as mp\ndef sq(x):\n    return x * x\nif __name__ == "__main__":\n    with mp.Pool(2) as p:\n        print(mp.get_start_method(), p.map(sq, range(4)))\n' >"$RT/mp.py"
	run -0 "$DRAGON" --runtime-dir "$BASE" "$RT/mp.py"
	[ "$output" = "dragon [0, 1, 4, 9]" ]
	run -127 "$DRAGON" --runtime-dir "$BASE" "no-such-$MARK.py"
	[[ "$output" == *"no-such-$MARK.py: No such file or directory"* ]]
	assert_clean
}

@test "an interpreter named as PROG imports the package too (its default start method stays CPython's)" {
	run -0 env -u PYTHONPATH "$DRAGON" --runtime-dir "$BASE" "${DRAGON_PYTHON:-${PYTHON:-/usr/bin/python3}}" -c \
		'import multiprocessing as mp, dragon; print(dragon.__name__, mp.get_start_method())'
	[ "$output" = "dragon fork" ]
	assert_clean
}

@test "dragon -m MODULE runs Python's module; the options after it are the module's" {
	run -0 bash -c "echo '{\"k\": [1]}' | '$DRAGON' --runtime-dir '$BASE' -m json.tool --compact"
	[ "$output" = '{"k":[1]}' ]
	run -0 "$DRAGON" --runtime-dir "$BASE" -m json.tool --help
	[[ "$output" == *"json.tool"* ]]
	run -1 "$DRAGON" --runtime-dir "$BASE" -m "no_such_module_$MARK"
	[[ "$output" == *"No module named no_such_module_$MARK"* ]]
	run -125 "$DRAGON" -m
	assert_clean
}

@test "an unwritable runtime directory is a clear error" {
	run "$DRAGON" --runtime-dir /proc/dragon-$MARK true
	[ "$status" -eq 125 ]
	[[ "$output" == *"runtime directory"* ]]
}

@test "a runtime directory that is a symlink or open to others is refused" {
	mkdir -m 700 "$RT/real"
	ln -s "$RT/real" "$RT/link"
	run "$DRAGON" --runtime-dir "$RT/link" true
	[ "$status" -eq 125 ]
	[[ "$output" == *"symlink"* ]]
	mkdir -m 777 "$RT/open"
	run "$DRAGON" --runtime-dir "$RT/open" true
	[ "$status" -eq 125 ]
	[[ "$output" == *"open to other users"* ]]
}

@test "the runtime directory is 0700 while the fabric runs" {
	run "$DRAGON" --runtime-dir "$BASE" sh -c 'stat -c %a "$DRAGON_RUNTIME_DIR"; stat -c %a "$(dirname "$DRAGON_RUNTIME_DIR")"'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 700 ]
	[ "${lines[1]}" = 700 ]
}

@test "hello: a group of workers reports by name; -l labels lines" {
	run "$DRAGON" -l --runtime-dir "$BASE" "$HELLO" 4
	[ "$status" -eq 0 ]
	for r in 0 1 2 3; do
		[[ "$output" == *"$r/$(hostname): hello from rank $r of 4"* ]]
		[[ "$output" == *"report: rank $r pid"* ]]
	done
	[[ "$output" == *"4 workers done, worst status 0"* ]]
	assert_clean
}

@test "ring: a token goes around N processes over queues" {
	run "$DRAGON" --runtime-dir "$BASE" "$B/examples/ring" 5 20
	[ "$status" -eq 0 ]
	[[ "$output" == *"20 times around 5 processes: 99 (expected 99)"* ]]
	assert_clean
}

@test "pingpong: two processes bounce a message" {
	run "$DRAGON" --runtime-dir "$BASE" "$B/examples/pingpong" 200
	[ "$status" -eq 0 ]
	[[ "$output" == *"200 round trips"* ]]
	assert_clean
}

@test "a signal kills PROG: dragon exits 128+N and cleans up" {
	run "$DRAGON" --runtime-dir "$BASE" sh -c 'kill -SEGV $$'
	[ "$status" -eq 139 ]
	assert_clean
}

@test "SIGKILL of a fabric child is reported to its creator" {
	"$DRAGON" --runtime-dir "$BASE" "$DGTOOL" spawn-wait sleep "3$MARK" >"$RT/out" 2>&1 &
	lp=$!
	wait_for "$RT/out"
	pid=$(awk '/^pid/{print $2}' "$RT/out")
	[ -n "$pid" ]
	kill -KILL "$pid"
	wait "$lp"
	grep -q "status 137" "$RT/out"
	assert_clean
}

@test "SIGKILL of PROG: dragon reports 137 and leaves nothing" {
	"$DRAGON" --runtime-dir "$BASE" sh -c "echo \$\$ > $RT/pid; $DGTOOL orphan sleep 3$MARK; exec sleep 3$MARK" &
	lp=$!
	wait_for "$RT/pid"
	sleep 0.2
	kill -KILL "$(cat "$RT/pid")"
	st=0; wait "$lp" || st=$?
	[ "$st" -eq 137 ]
	assert_clean
}

@test "SIGINT (Ctrl-C) of the launcher stops everything, status 130" {
	"$DRAGON" --runtime-dir "$BASE" sh -c "echo \$\$ > $RT/pid; sleep 3$MARK & sleep 3$MARK" &
	lp=$!
	wait_for "$RT/pid"
	sleep 0.2
	kill -INT "$lp"
	st=0; wait "$lp" || st=$?
	[ "$st" -eq 130 ]
	assert_clean
}

@test "SIGTERM of the launcher stops everything, status 143, even a process ignoring SIGTERM" {
	"$DRAGON" --runtime-dir "$BASE" sh -c "echo \$\$ > $RT/pid; trap '' TERM; sleep 3$MARK" &
	lp=$!
	wait_for "$RT/pid"
	sleep 0.2
	kill -TERM "$lp"
	st=0; wait "$lp" || st=$?
	[ "$st" -eq 143 ]
	assert_clean
}

@test "SIGKILL of the launcher: local services notice and clean up" {
	"$DRAGON" --runtime-dir "$BASE" sh -c "echo \$\$ > $RT/pid; sleep 3$MARK" &
	lp=$!
	wait_for "$RT/pid"
	sleep 0.2
	kill -KILL "$lp"
	wait "$lp" || true
	for _ in $(seq 50); do [ ! -e "$BASE" ] && ! pgrep -f "sleep 3$MARK" >/dev/null && break; sleep 0.1; done
	assert_clean
}

@test "dragon status lists a queue as a channel of local services (GS keeps no queues)" {
	"$DRAGON" --runtime-dir "$BASE" sh -c "$DGTOOL queue st.q > $RT/q; sleep 3$MARK" &
	lp=$!
	wait_for "$RT/q"
	grep -qx "queue st.q" "$RT/q"
	run "$DRAGON" status --runtime-dir "$BASE"
	[ "$status" -eq 0 ]
	[[ "$output" == *"channel "*": capacity 4 messages"* ]]
	[[ "$output" == *"name 'st.q' -> channel"* ]]
	[[ "$output" != *"queue"* ]]
	run "$DRAGON" status --json --runtime-dir "$BASE"
	[ "$status" -eq 0 ]
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)[0]
assert "queues" not in d, d
assert [c for c in d["channels"] if c["capacity"] == 4 and c["node"] == 0], d["channels"]
assert {"name": "st.q", "kind": "channel"} in d["names"], d["names"]'
	kill -TERM "$lp"
	wait "$lp" || true
	assert_clean
}

@test "dragon status lists the running fabric, in text and JSON" {
	"$DRAGON" --runtime-dir "$BASE" sh -c "echo \$\$ > $RT/pid; sleep 3$MARK" &
	lp=$!
	wait_for "$RT/pid"
	run "$DRAGON" status --runtime-dir "$BASE"
	[ "$status" -eq 0 ]
	[[ "$output" == *"fabric "* ]]
	[[ "$output" == *"running"*"sh"* ]]
	run "$DRAGON" status --json --runtime-dir "$BASE"
	[ "$status" -eq 0 ]
	echo "$output" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[0]["processes"][0]["running"]; assert d[0]["nodes"][0]["index"]==0'
	kill -TERM "$lp"
	wait "$lp" || true
	assert_clean
	run "$DRAGON" status --runtime-dir "$BASE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"no fabric is running"* ]]
}

@test "dragon-ls alone: a process started otherwise joins with DRAGON_LS_SOCKET" {
	mkdir -m 700 "$RT/ls"
	"$B/runtime/ls/dragon-ls" --dir "$RT/ls" --fabric-id "t$MARK" 2>"$RT/ls.err" &
	lsp=$!
	for _ in $(seq 50); do [ -S "$RT/ls/ls.sock" ] && break; sleep 0.1; done
	DRAGON_LS_SOCKET="$RT/ls/ls.sock" run "$DGTOOL" spawn-wait sh -c 'exit 5'
	[ "$status" -eq 0 ]
	[[ "$output" == *"status 5"* ]]
	run "$DGTOOL" spawn-wait true
	[ "$status" -ne 0 ]
	[[ "$output" == *"no fabric to join"* ]]
	kill -TERM "$lsp"
	wait "$lsp"
	[ ! -e "$RT/ls/ls.sock" ]
}

@test "dragon-ls refuses a directory open to others" {
	mkdir -m 755 "$RT/open"
	run "$B/runtime/ls/dragon-ls" --dir "$RT/open"
	[ "$status" -eq 2 ]
	[[ "$output" == *"mode 0700"* ]]
}

@test "dragon's stdin is PROG's: lines, 20 MB intact, and end of input" {
	run -0 bash -c "printf 'a\nb\n' | '$DRAGON' --runtime-dir '$BASE' sh -c 'read x; read y; echo \"\$y \$x\"; cat'"
	[ "$output" = "b a" ]
	head -c 20000000 /dev/urandom >"$RT/in.bin"
	want=$(sha256sum <"$RT/in.bin" | cut -d' ' -f1)
	run -0 bash -c "'$DRAGON' --runtime-dir '$BASE' sha256sum <'$RT/in.bin'"
	[ "${output%% *}" = "$want" ]
	run -0 bash -c "'$DRAGON' --runtime-dir '$BASE' wc -c </dev/null"
	[ "$output" = 0 ]
	assert_clean
}

@test "a PROG that never reads its stdin still ends, and dragon with it" {
	head -c 20000000 /dev/zero >"$RT/in.bin"
	run -3 timeout 20 bash -c "'$DRAGON' --runtime-dir '$BASE' sh -c 'exit 3' <'$RT/in.bin'"
	run -0 timeout 20 bash -c "yes | '$DRAGON' --runtime-dir '$BASE' head -n 2"
	[ "$output" = "$(printf 'y\ny')" ]
	assert_clean
}
