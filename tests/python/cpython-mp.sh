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
# CPYTHON_MP_SUITES: "mp futures" (default), or one of them.
suites=${CPYTHON_MP_SUITES:-mp futures}
for suite in $suites; do
	case $suite in
	mp | futures) ;;
	*) echo "FAIL: unknown suite $suite in CPYTHON_MP_SUITES (mp, futures)" >&2; exit 1 ;;
	esac
done
flag() { [ "$1" = futures ] && echo --futures || :; }
# CPYTHON_MP_NODES: "1" (default), "3", or "1 3": one node (a private fabric, or the fabric this
# runs in) and/or the only task of a 3-node `sbatch --dragon` job on the Slurm test cluster.
nodes=${CPYTHON_MP_NODES:-1}
for n in $nodes; do
	case $n in
	1 | 3) ;;
	*) echo "FAIL: CPYTHON_MP_NODES holds 1 and/or 3, not $n" >&2; exit 1 ;;
	esac
done
rc=0
summary="$venv/summary"
: >"$summary"
# CPython's POSIX semaphores (/dev/shm/sem.mp-*) the suites leave behind are reported in the
# summary, not removed (another program's could be among them).
sems() { ls /dev/shm 2>/dev/null | grep '^sem\.mp-' | sort || :; }
sems >"$venv/sems.before"
report_sems() {
	sems | comm -13 "$venv/sems.before" - >"$venv/sems.left"
	if [ -s "$venv/sems.left" ]; then
		echo "== CPython suites left $(wc -l <"$venv/sems.left") POSIX semaphore(s) in /dev/shm: $(tr '\n' ' ' <"$venv/sems.left")" >>"$summary"
	fi
}
for n in $nodes; do
	[ "$n" = 1 ] || continue
	for suite in $suites; do
		out="$venv/$suite-1node.out"
		timeout "${DRAGON_CPYTHON_TIMEOUT:-1800}" "$PY" "$here/cpython_mp.py" $(flag "$suite") "$@" 2>&1 | tee "$out"
		grep -q '^== .*, failed [0-9]* ([0-9]* documented, 0 not)' "$out" || rc=1
		grep '^== ' "$out" >>"$summary" || echo "== $suite on 1 node: no result (see $out)" >>"$summary"
	done
done
case " $nodes " in *" 3 "*) ;; *) report_sems; cat "$summary"; exit $rc ;; esac
# Three nodes: a free instance of the test cluster is chosen as tests/integration/cluster.sh
# does, brought up and down here. The nodes see neither /tmp nor, maybe, the checkout: the
# suite's scripts run from a copy in the build tree.
case $top_builddir in
/tmp | /tmp/* | /dev/shm/*)
	echo "FAIL: the build tree $top_builddir is under /tmp or /dev/shm, which every test cluster node replaces" >&2
	exit 1 ;;
esac
suite_dir="$venv/suite"
mkdir -p "$suite_dir"
cp "$here/cpython_mp.py" "$here/test_multiprocessing_dragon.py" "$here/test_concurrent_futures_dragon.py" "$suite_dir/"
tc="$top_srcdir/contrib/testcluster"
if [ -n "${DRAGON_TC_ID+set}" ]; then ids=${DRAGON_TC_ID:-default}; else ids="default 1 2 3 4 5 6 7 8 9"; fi
# shellcheck disable=SC2086 # a list of instances
picked=$("$tc" pick $ids)
case $? in
0) ;;
77) echo "SKIP: the Slurm test cluster cannot run here (reason above)"; cat "$summary"; exit 77 ;;
*) echo "FAIL: no free test cluster instance (tried: $ids)" >&2; exit 1 ;;
esac
export DRAGON_TC_ID="$picked"
echo "# CPython suites on 3 nodes: test cluster instance '${DRAGON_TC_ID}'"
export DRAGON_TC_BUILDDIR="$top_builddir"
export DRAGON_TC_PLUGIN="$top_builddir/spank/.libs/spank_dragon.so"
unset DRAGON_TC_PLUGARGS DRAGON_TC_STATE
trap '"$tc" down >/dev/null 2>&1' EXIT
trap 'exit 130' INT TERM
"$tc" up 3 || { echo "FAIL: contrib/testcluster up 3 failed (instance '$DRAGON_TC_ID')" >&2; exit 1; }
eval "$("$tc" env)"
# the arguments (a regular expression) quoted for the job's shell
args=
for a in "$@"; do
	args="$args '$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'"
done
for suite in $suites; do
	out="$venv/$suite-3nodes.out"
	rm -f "$out"
	timeout "${DRAGON_CPYTHON_TIMEOUT:-1800}" sbatch -N3 --dragon -W -o "$out" \
		--wrap "srun --dragon -N1 -n1 '$PY' '$suite_dir/cpython_mp.py' $(flag "$suite")$args" >/dev/null || :
	grep -v '^dragon-ta\[' "$out" 2>/dev/null || echo "FAIL: the 3-node job of suite $suite wrote no output ($out)"
	grep -q '^== .*, failed [0-9]* ([0-9]* documented, 0 not)' "$out" 2>/dev/null || rc=1
	grep '^== ' "$out" >>"$summary" 2>/dev/null || echo "== $suite on 3 nodes: no result (see $out)" >>"$summary"
done
"$tc" down || rc=1
trap - EXIT
report_sems
cat "$summary"
exit $rc
