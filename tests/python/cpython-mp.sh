#!/bin/sh
# tests/python/cpython-mp.sh: run CPython's multiprocessing suite (and concurrent.futures' process-pool tests) for the "dragon" start method against the package as installed (make check-cpython-mp).
set -eu
: "${PYTHON:=/usr/bin/python3}"
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# The suite starts fresh interpreters (`python3 -I mp_fork_bomb.py dragon`) that must know the
# method the way an installed package makes them: the build is installed (make install
# prefix=...) into a virtual environment of $PYTHON (a prefix whose site-packages the interpreter
# processes, .pth files included), and the suite runs with that environment's interpreter and the
# installed package, not the build tree's.
venv="$top_builddir/tests/python/installed"
rm -rf "$venv"
mkdir -p "$top_builddir/tests/python"
if ! "$PYTHON" -m venv --without-pip --system-site-packages "$venv" ; then
	echo "FAIL: $PYTHON -m venv cannot make $venv" >&2
	exit 1
fi
if ! ${MAKE:-make} -C "$top_builddir" install prefix="$venv" >"$venv/install.log" 2>&1 ; then
	echo "FAIL: make install prefix=$venv (see $venv/install.log)" >&2
	exit 1
fi
PY="$venv/bin/python3"
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
if [ ! -f "$site/dragon/__init__.py" ] || [ ! -f "$site/dragon_startmethod.pth" ] ; then
	echo "FAIL: make install did not put the package and dragon_startmethod.pth into $site" >&2
	exit 1
fi
unset PYTHONPATH
if ! "$PY" -I -c 'import multiprocessing as m, sys; m.get_context("dragon"); assert "dragon._core" in sys.modules' ; then
	echo "FAIL: an isolated $PY does not know the dragon start method through $site/dragon_startmethod.pth" >&2
	exit 1
fi
if ! "$PY" -c 'import test._test_multiprocessing, test.test_concurrent_futures' ; then
	echo "FAIL: cannot import CPython's suites (Debian: libpython3.11-testsuite)" >&2
	exit 1
fi
# The installed package's launcher is the configured prefix's, not installed here: the fabric
# programs come from the build tree.
DRAGON_LAUNCHER="$top_builddir/runtime/launcher/dragon"
export DRAGON_LAUNCHER
# Inside a fabric (srun --dragon, dragon PROG) it joins that one; else it starts a private one.
# CPYTHON_MP_SUITES: "mp futures" (default), or one of them.
rc=0
for suite in ${CPYTHON_MP_SUITES:-mp futures}; do
	case $suite in
	mp) timeout "${DRAGON_CPYTHON_TIMEOUT:-1800}" "$PY" "$here/cpython_mp.py" "$@" || rc=1 ;;
	futures) timeout "${DRAGON_CPYTHON_TIMEOUT:-1800}" "$PY" "$here/cpython_mp.py" --futures "$@" || rc=1 ;;
	*) echo "FAIL: unknown suite $suite in CPYTHON_MP_SUITES (mp, futures)" >&2; exit 1 ;;
	esac
done
exit $rc
