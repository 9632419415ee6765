#!/bin/sh
# tests/unit/tsan-channel.sh: make check's ThreadSanitizer run of test_channel (skipped, exit 77, where the compiler lacks TSan).
set -u
cd "${top_builddir:-.}" || exit 99
if ! make -s tests/unit/test_channel_tsan >tsan-build.log 2>&1; then
	if grep -q "sanitize=thread\|libtsan\|cannot find -ltsan" tsan-build.log; then
		echo "no ThreadSanitizer here:"; cat tsan-build.log; rm -f tsan-build.log; exit 77
	fi
	cat tsan-build.log; rm -f tsan-build.log; exit 1
fi
rm -f tsan-build.log
TSAN_OPTIONS="halt_on_error=1 exitcode=66" exec ./tests/unit/test_channel_tsan
