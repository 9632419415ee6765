#!/bin/sh
# docs/pictures/check-names.sh: every source file and folder named in the architecture pictures exists in the tree.
s="${top_srcdir:-.}"
rc=0
for dot in "$s"/docs/pictures/*.dot; do
	# Names like core/channel.c, runtime/ls/, ta_send.c, dragon.proto: look each up under the tree.
	for name in $(sed 's/\\n/ /g' "$dot" | grep -o '[A-Za-z][A-Za-z_/.]*\.\(c\|h\|hpp\|proto\)\b' | sort -u); do
		base=${name##*/}
		dir=${name%"$base"}
		hits=$(cd "$s" && find runtime spank pmix include python -name "$base" 2>/dev/null | grep -F "$dir" | head -1)
		if [ -z "$hits" ]; then
			echo "$(basename "$dot"): names $name, which is not in the tree"
			rc=1
		fi
	done
	for dir in $(grep -o '\b\(runtime\|spank\|pmix\|include\|python\)/[a-z/]*/' "$dot" | sort -u); do
		[ -d "$s/$dir" ] || { echo "$(basename "$dot"): names folder $dir, which is not in the tree"; rc=1; }
	done
done
[ "$rc" = 0 ] && echo "every file and folder the pictures name exists"
exit $rc
