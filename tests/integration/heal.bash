# tests/integration/heal.bash: tc_heal, run by every cluster test's setup: restart a node whose slurmd died in an earlier test.
# Slurm 22.05.8's slurmd can abort under concurrent step launches (see contrib/testcluster heal);
# the TAP output says what was restarted, and a node that cannot be healed fails the test.
tc_heal() {
	local healed
	if ! healed=$("${TC:?cluster.sh exports TC}" heal 2>&1); then
		echo "$healed"
		return 1
	fi
	[ -z "$healed" ] || printf '%s\n' "$healed" | sed 's/^/# /' >&3
}
