#!/bin/sh
# tests/bench/parts/B3.sh: n producers and n consumers on one queue (1+1, 2+2, 4+4; 64 B): dragon against ZeroMQ PUSH/PULL fan-in and a pipe.
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
	run pipe "$B/tests/bench/bench_onnode" mpmc pipe $n 1600000
	if [ -x "$B/tests/bench/bench_zmq" ]; then
		run zmq-ipc "$B/tests/bench/bench_zmq" mpmc "$tmp" $n 1600000
	fi
done
[ -x "$B/tests/bench/bench_zmq" ] || echo "skip,$P,zmq-ipc,libzmq not installed"
echo "target,$P,4+4,64,rate_per_s,dragon-adaptive,zmq-ipc,ge,2"
