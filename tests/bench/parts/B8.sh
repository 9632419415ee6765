#!/bin/sh
# tests/bench/parts/B8.sh: Python multiprocessing with the dragon start method beside CPython's fork and spawn (tests/python/bench_b8.py), `dragon prog.py` beside `python3 prog.py`, and Pool.map with workers on three nodes.
B="${1:?build dir}"
S="$(cd "$(dirname "$0")/../../.." && pwd)"
PY=/usr/bin/python3
RUNS=10
[ -n "${BENCH_SMOKE:-}" ] && RUNS=2
if ! PYTHONPATH="$B/python" "$PY" -c 'import dragon._core' 2>/dev/null; then
	echo "skip,B8,python-dragon,the dragon Python package is not built in $B/python"
	exit 0
fi
# 1. On this machine, in a private one-node fabric: queues, pipes, process start, Pool.
env -u PYTHONDONTWRITEBYTECODE PYTHONPATH="$B/python" "$PY" "$S/tests/python/bench_b8.py"

# 2. `dragon prog.py` of a script that starts 4 processes and joins them, against `python3
#    prog.py` with CPython's spawn: what a user's whole run costs, fabric start and stop included.
work=$(mktemp -d /var/tmp/dragon-b8.XXXXXX)
trap 'rm -rf "$work"' EXIT
cat >"$work/four.py" <<'PY'
import multiprocessing as mp
import sys


def f():
    pass


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1]) if len(sys.argv) > 1 else mp.get_context()
    ps = [ctx.Process(target=f) for _ in range(4)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    sys.exit(0 if all(p.exitcode == 0 for p in ps) else 1)
PY
# Alternately, one of each in turn: a load that changes during the run weighs on both alike.
# Every interpreter writes and then reads its .pyc caches, as a user's does.
r=$(env -u PYTHONDONTWRITEBYTECODE DRAGON_PYTHON="$PY" "$PY" "$S/tests/bench/alternate.py" $((RUNS * 2)) \
	"$B/runtime/launcher/dragon" "$work/four.py" -- "$PY" "$work/four.py" spawn)
set -- $r
if [ $# -eq 4 ] && [ "$1" != fail ] && [ "$2" != fail ]; then
	echo "result,B8,script-4-processes,0,python-dragon,ms,$1"
	echo "result,B8,script-4-processes,0,python-spawn,ms,$2"
	echo "target,B8,script-4-processes,*,ms,python-dragon,python-spawn,le,1.5"
else
	echo "skip,B8,script-4-processes,dragon four.py against python3 four.py spawn: $r"
fi

# 3. Pool(4).map of 20,000 tasks with the workers round robin over the three nodes of the Slurm
#    test cluster (root only), beside the one-node rows of 1.
[ -n "${BENCH_SMOKE:-}" ] && { echo "skip,B8,pool4-map-rate-3nodes,smoke run: the test cluster part runs in make bench BENCH=B8"; exit 0; }
. "$S/tests/bench/tc.sh"
trap 'tc_down; rm -rf "$work"' EXIT
tc_up B8
cat >"$work/map3.py" <<'PY'
import multiprocessing as mp
import socket
import time


def ident(x):
    return x


def started(q):
    q.put(socket.gethostname())


if __name__ == "__main__":
    n = 20000
    q = mp.Queue()
    # Every worker says where it runs once it is up, and the rate is measured with all four
    # running: a map right after Pool() is done by the first ones up (those of this node start
    # first) before the others take a task.
    with mp.Pool(4, initializer=started, initargs=(q,)) as pool:
        hosts = set(q.get(timeout=120) for _ in range(4))
        pool.map(ident, range(100))
        t = time.perf_counter()
        pool.map(ident, range(n))
        rate = n / (time.perf_counter() - t)
    print("hosts", len(hosts), "rate", "%.2f" % rate)
PY
timeout 300 env -u PYTHONDONTWRITEBYTECODE sbatch -W -N3 -o "$work/map3.out" --wrap "DRAGON_PYTHON='$PY' '$B/runtime/launcher/dragon' '$work/map3.py'" >/dev/null 2>"$work/map3.err"
r=$(sed -n 's/^hosts \([0-9]*\) rate \([0-9.]*\)$/\1 \2/p' "$work/map3.out" 2>/dev/null)
if [ -n "$r" ]; then
	echo "result,B8,pool4-map-rate-3nodes,0,python-dragon,tasks/s,${r#* }"
	[ "${r%% *}" = 3 ] || echo "skip,B8,pool4-map-rate-3nodes-hosts,the workers ran on ${r%% *} nodes, not 3"
else
	echo "skip,B8,pool4-map-rate-3nodes,the batch job failed: $(tail -3 "$work/map3.out" "$work/map3.err" 2>/dev/null | tr '\n,' '  ')"
fi
