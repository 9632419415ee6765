# tests/integration/heal.bash: tc_heal, run by every cluster test's setup: restart a node whose slurmd died in an earlier test; run_past_pmix_race for Slurm's PMIx authentication race.
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

# Slurm 22.05's PMIx plugin authenticates a direct connection between two slurmstepds of a step
# with a munge credential that only root may decode (pmixp_server.c, _auth_cred_create with
# SlurmdUser). The accepting slurmstepd decodes it on its PMIx thread; if that slurmstepd is just
# then launching its task, with its privileges dropped to the job's user (mgr.c _fork_all_tasks),
# munged sees the user, answers "Unauthorized credential for client UID=<user>", and the
# connection is refused: the fence of the fabric step never completes and the fabric fails to
# start (docs/admin.md, known limitations). Only jobs of users other than root can meet it.
# tc_pmix_refusals: how many such refusals the cluster's slurmd logs hold.
tc_pmix_refusals() {
	cat "${DRAGON_TC_STATE:?cluster.sh exports it}"/log/slurmd-*.log 2>/dev/null |
		grep -c "Munge decode failed: Unauthorized credential for client" || true
}

# run_past_pmix_race ARGS...: bats' run ARGS; if that failed and slurmd logged a new refusal
# meanwhile, say so and run it once more (a second refusal fails the test).
run_past_pmix_race() {
	local before
	before=$(tc_pmix_refusals)
	run "$@"
	if [ "$status" -ne 0 ] && [ "$(tc_pmix_refusals)" -gt "$before" ]; then
		echo "# slurmstepd refused a PMIx direct connection (munge decode as the job's user, docs/admin.md): once more" >&3
		run "$@"
	fi
}
