#!/bin/sh
# tests/jupyter/run.sh: make check's Jupyter tests on this machine: the tutorial notebooks through nbclient, interrupt and restart, the dragon-jupyter server, the kernel spec inside and outside a fabric.
# With an argument (notebooks, interrupt, server, kernelspec, browser) runs those parts only; browser is not part of make check (SCREENSHOT=path, NODES=n of the fabric it runs in).
set -u
: "${PYTHON:=/usr/bin/python3}"
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
top_builddir=$(cd "$top_builddir" && pwd)
cmd=$top_builddir/python/dragon-jupyter
# Never skip silently: what the tests need must be there.
if ! "$PYTHON" -c 'import nbclient, nbformat, ipykernel, notebook, jupyter_client' ; then
	echo "FAIL: $PYTHON lacks Jupyter (Debian: jupyter-notebook python3-ipykernel python3-nbclient python3-nbformat; contrib/install-deps)" >&2
	exit 1
fi
[ -x "$cmd" ] || { echo "FAIL: $cmd is not built" >&2; exit 1; }
# Outside a fabric (the kernel and the server start their own); Jupyter's and IPython's files in
# a directory of ours, removed at the end.
unset DRAGON_LS_SOCKET DRAGON_RUNTIME_DIR JUPYTER_TOKEN
work=$(mktemp -d "${TMPDIR:-/tmp}/dragon-jupyter-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
export JUPYTER_PATH="$top_builddir/python/jupyter" JUPYTER_RUNTIME_DIR="$work/runtime" \
	JUPYTER_CONFIG_DIR="$work/config" JUPYTER_DATA_DIR="$work/data" IPYTHONDIR="$work/ipython" \
	PYTHONPATH="$top_builddir/python${PYTHONPATH:+:$PYTHONPATH}"
parts=${1:-notebooks interrupt server kernelspec}
rc=0
for part in $parts; do
	echo "# $part"
	case $part in
	notebooks) "$PYTHON" "$here/run_notebooks.py" --nodes 1 || rc=1 ;;
	interrupt) "$PYTHON" "$here/interrupt_restart.py" --nodes 1 || rc=1 ;;
	server) (cd "$here" && "$PYTHON" server_check.py --cmd "$cmd" --workdir "$work") || rc=1 ;;
	kernelspec)
		# outside a fabric the kernel starts a private one; inside one (a launcher's) it joins it
		(cd "$here" && "$PYTHON" kernelspec_check.py) || rc=1
		(cd "$here" && "$top_builddir/runtime/launcher/dragon" --local "$PYTHON" kernelspec_check.py --inside) || rc=1 ;;
	browser) (cd "$here" && "$PYTHON" browser_check.py --cmd "$cmd" --workdir "$work" --nodes "${NODES:-1}" \
		--screenshot "${SCREENSHOT:-$top_srcdir/docs/images/jupyter-notebook.png}") || rc=1 ;;
	*) echo "FAIL: unknown part $part"; rc=1 ;;
	esac
done
exit $rc
