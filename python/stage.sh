#!/bin/sh
# python/stage.sh: copy the package's sources into an out-of-tree build so build/python is an importable package on its own (a test cluster's nodes may not see the source tree, e.g. a checkout in /tmp).
# Usage: stage.sh SRCDIR BUILDDIR FILE... (paths relative to both; nothing to do when they are one tree)
src=$1 build=$2
shift 2
[ "$src" = "$build" ] && exit 0
for f in "$@"; do
	# A copy older than its source, or a link left by an earlier build, is replaced.
	if [ ! -e "$build/$f" ] || [ -L "$build/$f" ] || [ "$src/$f" -nt "$build/$f" ]; then
		mkdir -p "$(dirname "$build/$f")" && rm -f "$build/$f" && cp -p "$src/$f" "$build/$f" || exit 1
	fi
done
