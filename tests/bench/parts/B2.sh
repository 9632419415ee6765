#!/bin/sh
# tests/bench/parts/B2.sh: streaming bandwidth (64-message windows, then an ack), 8 B to 4 MiB: dragon (plain, zero-copy, batched) against Open MPI sm, ZeroMQ PUSH/PULL and memcpy.
B="${1:?build dir}"
P=B2
tmp="$(mktemp -d /tmp/dragon-b2.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
# run IMPL CMD...: the command prints the result lines; a failure or hang is reported, not fatal.
run() {
	impl=$1; shift
	timeout -k 5 "${BENCH_TIMEOUT:-600}" "$@" || echo "skip,$P,$impl,failed (exit $?)"
}
run dragon-adaptive "$B/tests/bench/bench_onnode" bw dragon-adaptive 1600
run dragon-zc "$B/tests/bench/bench_onnode" bw dragon-zc 1600
run dragon-batch "$B/tests/bench/bench_onnode" bw dragon-batch 1600
if [ -n "${BENCH_BASELINE:-}" ]; then
	run v1-dragon-adaptive "$BENCH_BASELINE" bw dragon-adaptive 1600 | sed 's/,dragon-/,v1-dragon-/'
fi
run memcpy "$B/tests/bench/bench_onnode" bw memcpy 1600
if [ -x "$B/tests/bench/bench_mpi" ] && [ -n "${MPIRUN:-}" ] && [ "$MPIRUN" != no ]; then
	run openmpi-sm "$MPIRUN" --allow-run-as-root --oversubscribe -np 2 --bind-to none \
		--mca btl self,vader "$B/tests/bench/bench_mpi" bw 1600 </dev/null
else
	echo "skip,$P,openmpi-sm,Open MPI not installed"
fi
if [ -x "$B/tests/bench/bench_zmq" ]; then
	run zmq-ipc "$B/tests/bench/bench_zmq" bw "$tmp" 1600
else
	echo "skip,$P,zmq-ipc,libzmq not installed"
fi
# the goal (issue 16): the plain copying send at every size
echo "target,$P,stream,*,bw_MBps,dragon-adaptive,openmpi-sm,ge,1"
echo "target,$P,stream,*,bw_MBps,dragon-batch,openmpi-sm,ge,1"
