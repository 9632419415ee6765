#!/bin/sh
# spank/test_exports.sh: the built plugin exports only the SPANK symbols (the version script works).
so=${top_builddir:-.}/spank/.libs/spank_dragon.so
[ -f "$so" ] || { echo "FAIL: $so not built"; exit 1; }
command -v nm >/dev/null 2>&1 || { echo "SKIP: nm (binutils) is not installed"; exit 77; }
syms=$(nm -D --defined-only "$so" | awk '{print $3}' | sort)
echo "exported: $(echo $syms)"
for need in slurm_spank_init slurm_spank_init_post_opt slurm_spank_task_init slurm_spank_exit \
	plugin_name plugin_type plugin_version spank_plugin_version; do
	echo "$syms" | grep -qx "$need" || { echo "FAIL: $need is not exported"; exit 1; }
done
other=$(echo "$syms" | grep -v -E '^(slurm_spank_|spank_|plugin_name$|plugin_type$|plugin_version$)' | grep -v '^$')
[ -z "$other" ] || { echo "FAIL: exports more than Slurm needs: $other"; exit 1; }
echo "PASS"
