#!/usr/bin/env bats
# tests/integration/jupyter.bats: the Dragon Jupyter kernel inside a 3-node --dragon job of the test cluster: the tutorial notebook through nbclient, an interrupt, the kernel spec joining the job's fabric (run by cluster.sh).
bats_require_minimum_version 1.5.0
load heal

setup() {
	tc_heal || return 1
	B="${top_builddir:?}"
	S="${top_srcdir:?}"
	OUT="$(mktemp -d /var/tmp/dragon-jupyter-bats.XXXXXX)"
	# The nodes see their own /tmp: a checkout there is invisible to them, so the job runs a copy
	# of the test scripts and notebooks (the same layout: tests/jupyter beside examples/notebooks).
	SV="$OUT/src"
	mkdir -p "$SV/tests" "$SV/examples"
	cp -r "$S/tests/jupyter" "$SV/tests/"
	cp -r "$S/examples/notebooks" "$SV/examples/"
	# The kernel runs beside nbclient on the job's first node: its files may live in that node's /tmp.
	JENV="JUPYTER_PATH=$B/python/jupyter JUPYTER_RUNTIME_DIR=/tmp/jupyter-rt JUPYTER_CONFIG_DIR=/tmp/jupyter-cfg JUPYTER_DATA_DIR=/tmp/jupyter-data IPYTHONDIR=/tmp/ipython"
}

teardown() {
	rm -rf "$OUT"
}

@test "jupyter: nbclient runs the tutorial notebook on a kernel in a 3-node --dragon job: every node in its cells" {
	run timeout 600 sbatch -N3 --dragon -W -o "$OUT/job.out" \
		--wrap "srun --dragon -N1 -n1 env $JENV /usr/bin/python3 $SV/tests/jupyter/run_notebooks.py --nodes 3 --hosts-re 'dgtc[0-9]*-node[123]'"
	cat "$OUT/job.out"
	[ "$status" -eq 0 ]
	grep -q "^ok: dragon_tutorial.ipynb on 3 node(s)" "$OUT/job.out"
	! grep -q "^FAIL" "$OUT/job.out"
}

@test "jupyter: interrupt a Pool.map over 3 nodes: no worker left on any node, the next cell works; restart leaves nothing" {
	run timeout 600 sbatch -N3 --dragon -W -o "$OUT/job.out" \
		--wrap "srun --dragon -N1 -n1 env $JENV /usr/bin/python3 $SV/tests/jupyter/interrupt_restart.py --nodes 3"
	cat "$OUT/job.out"
	[ "$status" -eq 0 ]
	grep -q "^map running on 6 workers, hosts \['dgtc[0-9]*-node1', 'dgtc[0-9]*-node2', 'dgtc[0-9]*-node3'\]" "$OUT/job.out"
	grep -q "^INTERRUPT RESTART OK$" "$OUT/job.out"
}

@test "jupyter: the kernel spec inside a 3-node --dragon job joins the job's fabric, not a private one; a cell's child on another node writes into the cell" {
	run timeout 600 sbatch -N3 --dragon -W -o "$OUT/job.out" \
		--wrap "srun --dragon -N1 -n1 env $JENV /usr/bin/python3 $SV/tests/jupyter/kernelspec_check.py --inside --nodes 3"
	cat "$OUT/job.out"
	[ "$status" -eq 0 ]
	grep -q "^inside: kernel fabric .* (private False, 3 node(s))" "$OUT/job.out"
	# what a cell's child on another node writes to its descriptors lands in that cell
	grep -q "^inside: cell cellA: its child on dgtc[0-9]*-node[23] wrote into the cell$" "$OUT/job.out"
	grep -q "^inside: cell cellB: its child on dgtc[0-9]*-node[23] wrote into the cell$" "$OUT/job.out"
	grep -q "^KERNELSPEC OK$" "$OUT/job.out"
}

@test "jupyter: headless Chromium runs the tutorial on dragon-jupyter inside a 3-node --dragon job" {
	# DRAGON_JUPYTER_SCREENSHOT=docs/images/jupyter-notebook.png refreshes the README's picture.
	shot="${DRAGON_JUPYTER_SCREENSHOT:-$OUT/notebook.png}"
	case $shot in /*) ;; *) shot="$S/$shot" ;; esac
	run timeout 600 sbatch -N3 --dragon -W -o "$OUT/job.out" \
		--wrap "srun --dragon -N1 -n1 env $JENV sh -c 'cd $SV/tests/jupyter && mkdir -p /tmp/bw && /usr/bin/python3 browser_check.py --cmd $B/python/dragon-jupyter --workdir /tmp/bw --nodes 3 --screenshot $shot; rc=\$?; rm -rf /tmp/bw; exit \$rc'"
	cat "$OUT/job.out"
	[ "$status" -eq 0 ]
	grep -q "^3 nodes: dgtc[0-9]*-node1 dgtc[0-9]*-node2 dgtc[0-9]*-node3$" "$OUT/job.out"
	grep -q "^worker hosts: dgtc[0-9]*-node1 dgtc[0-9]*-node2 dgtc[0-9]*-node3$" "$OUT/job.out"
	grep -q "^BROWSER OK$" "$OUT/job.out"
	[ -s "$shot" ]
}
