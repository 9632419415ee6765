#!/bin/sh
# tests/integration/cluster.sh: bring the Slurm test cluster up once, run every tests/integration/*.bats on it, always bring it down.
# Exits 77 (SKIP) with the reason when the machine cannot host the cluster or bats is missing.
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
top_builddir=$(cd "$top_builddir" && pwd)
tc=$top_srcdir/contrib/testcluster

if [ -z "${BATS:-}" ] || [ "$BATS" = no ] || ! command -v "$BATS" >/dev/null 2>&1; then
	echo "SKIP: bats is not installed (Debian package 'bats')"
	exit 77
fi
# Each node has a private /tmp: programs built under /tmp are invisible to the nodes.
case $top_builddir in
/tmp | /tmp/* | /dev/shm/*)
	echo "SKIP: the build tree $top_builddir is under /tmp or /dev/shm, which every test cluster node replaces with its own"
	exit 77
	;;
esac
# Use the instance given by DRAGON_TC_ID, or else the first free one, so that two checkouts (or a
# developer's own cluster) can run the tests at the same time.
if [ -n "${DRAGON_TC_ID+set}" ]; then
	ids=${DRAGON_TC_ID:-default}
else
	ids="default 1 2 3 4 5 6 7 8 9"
fi
# shellcheck disable=SC2086 # a list of instances
picked=$("$tc" pick $ids)
case $? in
0) ;;
77) echo "SKIP: the Slurm test cluster cannot run here (reason above)"; exit 77 ;;
*) echo "SKIP: no free test cluster instance (tried: $ids); bring one down (contrib/testcluster down)"; exit 77 ;;
esac
export DRAGON_TC_ID="$picked"
echo "# using test cluster instance '${DRAGON_TC_ID}'"
export DRAGON_TC_BUILDDIR="$top_builddir"
export DRAGON_TC_PLUGIN="$top_builddir/spank/.libs/spank_dragon.so"
export PMIX_FENCE="$top_builddir/tests/integration/pmix_fence"
export BOOT_CHECK="$top_builddir/tests/integration/boot_check"
export TC="$tc"
for f in "$DRAGON_TC_PLUGIN" "$PMIX_FENCE" "$BOOT_CHECK" "$top_builddir/tests/integration/join_check"; do
	[ -x "$f" ] || [ -f "$f" ] || { echo "FAIL: $f is not built"; exit 1; }
done

trap '"$tc" down' EXIT
trap 'exit 130' INT TERM
t0=$(date +%s%N)
"$tc" up 3
rc=$?
t1=$(date +%s%N)
if [ "$rc" = 77 ] || [ "$rc" = 75 ]; then
	trap - EXIT
	echo "SKIP: the Slurm test cluster could not come up here (reason above)"
	exit 77
fi
if [ "$rc" != 0 ]; then
	echo "FAIL: contrib/testcluster up 3 failed (rc $rc)"
	exit 1
fi
echo "# cluster up in $(( (t1 - t0) / 1000000 )) ms"
eval "$("$tc" env)"
rc=0
# DRAGON_BATS_FILTER=REGEX runs only the tests whose names match (bats -f), for development.
"$BATS" --tap ${DRAGON_BATS_FILTER:+-f "$DRAGON_BATS_FILTER"} "$top_srcdir"/tests/integration/*.bats || rc=$?
t2=$(date +%s%N)
"$tc" down || rc=1
t3=$(date +%s%N)
trap - EXIT
echo "# bats ran in $(( (t2 - t1) / 1000000 )) ms; cluster down in $(( (t3 - t2) / 1000000 )) ms"
# down leaves nothing behind: no namespace, bridge or state directory of ours.
if [ -n "$DRAGON_TC_ID" ]; then
	pfx=dgtc$DRAGON_TC_ID bridge=dgtc${DRAGON_TC_ID}br
else
	pfx=dgtc bridge=dgtc0
fi
if "$tc" status >/dev/null 2>&1 || [ -e "$DRAGON_TC_STATE" ]; then
	echo "FAIL: contrib/testcluster down left $DRAGON_TC_STATE or daemons behind"
	rc=1
fi
if ip netns list | grep -q "^$pfx-node" || ip link show "$bridge" >/dev/null 2>&1 ||
	ip link show | grep -q ": $pfx-v[0-9]"; then
	echo "FAIL: contrib/testcluster down left namespaces $pfx-node*, veths $pfx-v* or bridge $bridge behind"
	rc=1
fi
exit "$rc"
