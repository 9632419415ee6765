#!/bin/sh
# tests/bench/parts/B8.sh: Python multiprocessing with the dragon start method beside CPython's fork and spawn (tests/python/bench_b8.py).
B="${1:?build dir}"
S="$(cd "$(dirname "$0")/../../.." && pwd)"
PY=/usr/bin/python3
if ! PYTHONPATH="$B/python" "$PY" -c 'import dragon._core' 2>/dev/null; then
	echo "skip,B8,python-dragon,the dragon Python package is not built in $B/python"
	exit 0
fi
PYTHONPATH="$B/python" "$PY" "$S/tests/python/bench_b8.py"
