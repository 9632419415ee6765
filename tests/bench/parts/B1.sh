#!/bin/sh
# tests/bench/parts/B1.sh: ping-pong latency, 8 B to 1 MiB: dragon (spin, idle, adaptive) against Open MPI sm, ZeroMQ, nng, a pipe and a futex floor.
B="${1:?build dir}"
P=B1
tmp="$(mktemp -d /tmp/dragon-b1.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
# run IMPL CMD...: the command prints the result lines; a failure or hang is reported, not fatal.
run() {
	impl=$1; shift
	timeout -k 5 "${BENCH_TIMEOUT:-600}" "$@" || echo "skip,$P,$impl,failed (exit $?)"
}
for m in spin idle adaptive; do
	case $m in spin) n=400000 ;; *) n=40000 ;; esac
	run dragon-$m "$B/tests/bench/bench_onnode" lat dragon-$m $n
	# BENCH_BASELINE=an older bench_onnode: its rows as v1-dragon-* in the same run
	if [ -n "${BENCH_BASELINE:-}" ]; then
		run v1-dragon-$m "$BENCH_BASELINE" lat dragon-$m $n | sed 's/,dragon-/,v1-dragon-/'
	fi
done
run futex "$B/tests/bench/bench_onnode" lat futex 40000
run pipe "$B/tests/bench/bench_onnode" lat pipe 40000
if [ -x "$B/tests/bench/bench_mpi" ] && [ -n "${MPIRUN:-}" ] && [ "$MPIRUN" != no ]; then
	run openmpi-sm "$MPIRUN" --allow-run-as-root --oversubscribe -np 2 --bind-to none \
		--mca btl self,vader "$B/tests/bench/bench_mpi" lat 400000 </dev/null
else
	echo "skip,$P,openmpi-sm,Open MPI not installed"
fi
if [ -x "$B/tests/bench/bench_zmq" ]; then
	run zmq-ipc "$B/tests/bench/bench_zmq" lat "$tmp" 20000
else
	echo "skip,$P,zmq-ipc,libzmq not installed"
fi
if [ -x "$B/tests/bench/bench_nng" ]; then
	run nng-ipc "$B/tests/bench/bench_nng" "$tmp" 20000
else
	echo "skip,$P,nng-ipc,nng not installed"
fi
# the goals (issue 16), at the sizes they name
for s in 8 64 1024 65536; do
	echo "target,$P,pingpong,$s,lat_us,dragon-spin,openmpi-sm,le,1.5"
done
for s in 8 64 1024; do
	echo "target,$P,pingpong,$s,lat_us,dragon-adaptive,openmpi-sm,le,2"
done
echo "target,$P,pingpong,*,lat_us,dragon-idle,futex,le,1.2"
