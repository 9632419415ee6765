# tests/scale/common.sh: what the scale, measurement and soak scripts share: a free test cluster instance of N nodes, brought down and checked clean on exit.
# Sourced with S (source tree) and B (build tree) set. Every failure is loud: FAIL and exit 1.

tc="$S/contrib/testcluster"

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

note() { echo "# $*"; }

# need FILE...: each must be built.
need() {
	local f
	for f in "$@"; do
		[ -x "$f" ] || [ -f "$f" ] || fail "$f is not built (run 'make' and 'make check TESTS=' first)"
	done
}

# Pick a free test cluster instance (DRAGON_TC_ID if set) and export it.
pick_instance() {
	local ids i
	[ "$(id -u)" = 0 ] || fail "needs root (the Slurm test cluster uses namespaces)"
	case "$B" in /tmp | /tmp/* | /dev/shm/*) fail "the build tree $B is under /tmp or /dev/shm, which every test cluster node replaces" ;; esac
	if [ -n "${DRAGON_TC_ID+set}" ]; then ids=${DRAGON_TC_ID:-default}; else ids="9 8 7 6 5 4 3 2 1"; fi
	# shellcheck disable=SC2086 # a list of instances
	i=$("$tc" pick $ids 2>/dev/null) || fail "$("$tc" pick $ids 2>&1 | tail -n 1)"
	export DRAGON_TC_ID="$i"
	note "test cluster instance '$i'"
	return 0
}

# The names the instance uses, to check that 'down' left none of them.
instance_names() {
	if [ -n "$DRAGON_TC_ID" ]; then pfx=dgtc$DRAGON_TC_ID bridge=dgtc${DRAGON_TC_ID}br; else pfx=dgtc bridge=dgtc0; fi
}

# cluster_up N: bring N nodes up and point Slurm's commands at them; cluster_down on exit.
cluster_up() {
	export DRAGON_TC_BUILDDIR="$B"
	unset DRAGON_TC_PLUGIN DRAGON_TC_PLUGARGS DRAGON_TC_STATE
	trap 'cluster_down $?' EXIT
	trap 'exit 130' INT TERM
	"$tc" up "$1" || fail "contrib/testcluster up $1 failed (instance '$DRAGON_TC_ID')"
	eval "$("$tc" env)"
	# The nodes' network namespaces: daemons in them are this cluster's (another instance may
	# run daemons of the same build tree).
	instance_names
	node_nets=$(for f in /var/run/netns/"$pfx"-node*; do stat -L -c %i "$f"; done | tr '\n' ' ')
}

# Down, and nothing of the instance left: no daemons, state, namespaces, veths or bridge; no
# local services or transport agents of this build tree.
cluster_down() {
	local rc=0 prev=${1:-0}
	trap - EXIT
	instance_names
	"$tc" down || rc=1
	if "$tc" status >/dev/null 2>&1 || [ -e "${DRAGON_TC_STATE:-/nonexistent}" ]; then
		echo "FAIL: contrib/testcluster down left ${DRAGON_TC_STATE:-its state} or daemons behind" >&2
		rc=1
	fi
	if ip netns list | grep -q "^$pfx-node" || ip link show "$bridge" >/dev/null 2>&1 ||
		ip link show 2>/dev/null | grep -q ": $pfx-v[0-9]"; then
		echo "FAIL: down left namespaces $pfx-node*, veths $pfx-v* or bridge $bridge behind" >&2
		rc=1
	fi
	if fabric_left; then
		echo "FAIL: local services or transport agents of $B are still running: $(fabric_left)" >&2
		rc=1
	fi
	[ -n "${work:-}" ] && [ -d "$work" ] && [ -z "${KEEP_WORK:-}" ] && rm -rf "$work"
	[ "$rc" = 0 ] && note "cluster down, nothing left"
	[ "$rc" = 0 ] && rc=$prev
	exit "$rc"
}

# Local services or transport agents of this build tree that still run on this cluster's nodes
# (prints them).
fabric_left() {
	local pid cmd ino
	pgrep -af "^$B/runtime/.*dragon-(ls|ta) " | while read -r pid cmd; do
		ino=$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null) || continue
		case " ${node_nets:-} " in *" $ino "*) echo "$pid $cmd" ;; esac
	done | head -5 | grep .
}

# wait_fabric_gone SECONDS: the job's fabric ends with the job (bounded wait).
wait_fabric_gone() {
	local end=$((SECONDS + $1))
	while fabric_left >/dev/null; do
		[ "$SECONDS" -ge "$end" ] && fail "the fabric's daemons still run $1 s after the job ended: $(fabric_left)"
		sleep 0.2
	done
}
