#!/bin/sh
# tests/python/run.sh: make check's entry for the Python suites: pytest on tests/python against the build tree's dragon package.
set -eu
: "${PYTHON:=/usr/bin/python3}"
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
PYTHONPATH="$top_builddir/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
# Never skip silently: a module that does not import is a failure.
if ! "$PYTHON" -c 'import dragon._core' ; then
	echo "FAIL: $PYTHON cannot import the built dragon package from $top_builddir/python" >&2
	exit 1
fi
if ! "$PYTHON" -c 'import pytest, cloudpickle' ; then
	echo "FAIL: $PYTHON lacks pytest or cloudpickle (Debian: python3-pytest python3-cloudpickle; contrib/install-deps)" >&2
	exit 1
fi
# Outside a fabric the tests start a private one (and must leave nothing behind).
unset DRAGON_LS_SOCKET DRAGON_RUNTIME_DIR
if [ $# -eq 0 ]; then set -- "$here"; fi
exec "$PYTHON" -m pytest -q -p no:cacheprovider -o console_output_style=classic "$@"
