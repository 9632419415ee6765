#!/bin/sh
# tests/python/cpython-mp.sh: run CPython's multiprocessing suite for the "dragon" start method against the build tree (make check-cpython-mp).
set -eu
: "${PYTHON:=/usr/bin/python3}"
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
PYTHONPATH="$top_builddir/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
if ! "$PYTHON" -c 'import dragon._core, test._test_multiprocessing' ; then
	echo "FAIL: cannot import the built dragon package or CPython's suite (Debian: libpython3.11-testsuite)" >&2
	exit 1
fi
# Inside a fabric (srun --dragon, dragon PROG) it joins that one; else it starts a private one.
exec timeout "${DRAGON_CPYTHON_TIMEOUT:-1800}" "$PYTHON" "$here/cpython_mp.py" "$@"
