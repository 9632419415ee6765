#!/bin/sh
# tests/cpp/unit.sh: runs the C++ API's GoogleTest program (tests/cpp/test_cpp) as the first process of a fresh fabric, and checks that the fabric left nothing behind.
B=${top_builddir:-$(pwd)}
rt=$(mktemp -d /tmp/dragon-cpp-unit.XXXXXX) || exit 1
chmod 700 "$rt"
trap 'rm -rf "$rt"' EXIT
"$B/runtime/launcher/dragon" --runtime-dir "$rt/base" "$B/tests/cpp/test_cpp" ${GTEST_ARGS:-}
rc=$?
if [ -e "$rt/base" ]; then
	echo "FAIL: the fabric left its runtime directory behind: $(find "$rt/base")"
	rc=1
fi
exit $rc
