#!/bin/sh
# tests/bench/parts/B3.sh: n producers and n consumers on one queue (1+1, 2+2, 4+4; 64 B): dragon (plain and batched 32 at a time) against ZeroMQ PUSH/PULL fan-in and a pipe.
B="${1:?build dir}"
P=B3
tmp="$(mktemp -d /tmp/dragon-b3.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
# run IMPL CMD...: the command prints the result lines; a failure or hang is reported, not fatal.
run() {
	impl=$1; shift
	timeout -k 5 "${BENCH_TIMEOUT:-600}" "$@" || echo "skip,$P,$impl,failed (exit $?)"
}
for n in 1 2 4; do
	run dragon-adaptive "$B/tests/bench/bench_onnode" mpmc dragon-adaptive $n 1600000
	run dragon-batch "$B/tests/bench/bench_onnode" mpmc dragon-batch $n 1600000
	if [ -n "${BENCH_BASELINE:-}" ]; then
		run v1-dragon-adaptive "$BENCH_BASELINE" mpmc dragon-adaptive $n 1600000 |
			sed 's/,dragon-/,v1-dragon-/'
	fi
	run pipe "$B/tests/bench/bench_onnode" mpmc pipe $n 1600000
	if [ -x "$B/tests/bench/bench_zmq" ]; then
		run zmq-ipc "$B/tests/bench/bench_zmq" mpmc "$tmp" $n 1600000
	fi
done
[ -x "$B/tests/bench/bench_zmq" ] || echo "skip,$P,zmq-ipc,libzmq not installed"
# the goal (issue 16): twice ZeroMQ's fan-in at each
for c in 1+1 2+2 4+4; do
	echo "target,$P,$c,64,rate_per_s,dragon-adaptive,zmq-ipc,ge,2"
	echo "target,$P,$c,64,rate_per_s,dragon-batch,zmq-ipc,ge,2"
done
