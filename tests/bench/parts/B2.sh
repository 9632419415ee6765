#!/bin/sh
# tests/bench/parts/B2.sh: streaming bandwidth (64-message windows, then an ack), 8 B to 4 MiB: dragon against Open MPI sm, ZeroMQ PUSH/PULL and memcpy.
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
for s in 65536 1048576 4194304; do
	echo "target,$P,stream,$s,bw_MBps,dragon-adaptive,openmpi-sm,ge,0.8"
done
