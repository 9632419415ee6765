#!/bin/sh
# tests/bench/parts/B5a.sh: `dragon ./hello` start to exit against mpirun -np 1 true and a Python Pool(2).
B="${1:?build dir}"
RUNS=20
[ -n "${BENCH_SMOKE:-}" ] && RUNS=3
base="$(mktemp -d /tmp/dragon-b5a.XXXXXX)"
trap 'rm -rf "$base"' EXIT
# median wall time in ms of RUNS runs of a command (python only times; it is not the peer here)
median_ms() {
	python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time
runs = int(sys.argv[1]); cmd = sys.argv[2:]
ts = []
for _ in range(runs):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ts.append((time.perf_counter() - t) * 1000)
    if r.returncode != 0:
        print("fail"); sys.exit(0)
ts.sort(); print("%.2f" % ts[len(ts) // 2])
PY
}
case="start-to-exit"
ours=$(median_ms "$B/runtime/launcher/dragon" --runtime-dir "$base/rt" "$B/examples/hello" 2)
if [ "$ours" = fail ] || [ -z "$ours" ]; then echo "skip,B5a,dragon-hello,dragon ./hello failed"; exit 0; fi
echo "result,B5a,$case,0,dragon-hello,ms,$ours"
MPIRUN=$(command -v mpirun || true)
if [ -n "$MPIRUN" ]; then
	m=$(median_ms "$MPIRUN" --allow-run-as-root -np 1 true)
	if [ "$m" != fail ]; then
		echo "result,B5a,$case,0,openmpi-mpirun,ms,$m"
		echo "target,B5a,$case,*,ms,dragon-hello,openmpi-mpirun,le,1.0"
	else
		echo "skip,B5a,openmpi-mpirun,mpirun -np 1 true failed"
	fi
else
	echo "skip,B5a,openmpi-mpirun,mpirun not installed"
fi
if command -v python3 >/dev/null; then
	p=$(median_ms python3 -c 'import multiprocessing as mp
if __name__ == "__main__":
    with mp.Pool(2) as p: p.map(abs, [1, 2])')
	echo "result,B5a,$case,0,python-pool2,ms,$p"
	echo "target,B5a,$case,*,ms,dragon-hello,python-pool2,le,1.0"
else
	echo "skip,B5a,python-pool2,python3 not installed"
fi
