# tests/bench/tc.sh: sourced by the parts that need the Slurm test cluster: tc_up PART brings up a free instance of 3 nodes (or prints skip and exits), tc_down brings down the one tc_up brought up, and nothing else.
# Needs S (the source tree) and B (the build tree) set by the part.
tc="$S/contrib/testcluster"
tc_up() {
	_part=$1
	[ "$(id -u)" = 0 ] || { echo "skip,$_part,*,needs root for the Slurm test cluster"; exit 0; }
	case "$B" in /tmp/* | /dev/shm/*)
		echo "skip,$_part,*,the build tree $B is under /tmp, which every test cluster node replaces"
		exit 0 ;;
	esac
	_why=$("$tc" check 2>&1) || { echo "skip,$_part,*,the test cluster cannot run here: $_why"; exit 0; }
	if [ -n "${DRAGON_TC_ID+set}" ]; then
		_ids=${DRAGON_TC_ID:-default}
	else
		_ids="1 2 3 4 5 6 7 8 9"
	fi
	# shellcheck disable=SC2086 # a list of instances
	_i=$("$tc" pick $_ids 2>/dev/null) || { echo "skip,$_part,*,no free test cluster instance (tried: $_ids)"; exit 0; }
	export DRAGON_TC_ID="$_i"
	export DRAGON_TC_BUILDDIR="$B"
	unset DRAGON_TC_PLUGIN DRAGON_TC_PLUGARGS DRAGON_TC_STATE
	# Until the transport agent is built, fabrics of several nodes run without it.
	[ -x "$B/runtime/ta/dragon-ta" ] || export DRAGON_TA=off
	# From here on the instance is ours to bring down, also if `up` fails half way (a busy
	# instance found above is never touched).
	_tc_mine=yes
	"$tc" up 3 >"$work/up.log" 2>&1 || {
		cat "$work/up.log" >&2
		echo "skip,$_part,*,contrib/testcluster up 3 failed (instance '$DRAGON_TC_ID')"
		exit 0
	}
	eval "$("$tc" env)"
}
tc_down() {
	[ -n "${_tc_mine:-}" ] && "$tc" down >/dev/null 2>&1
	_tc_mine=
}
