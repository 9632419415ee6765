#!/bin/sh
# tests/bench/parts/Bcpp.sh: B1's 8 B ping-pong and B2's 64 B stream through the C++ API against the C API, interleaved in one program.
B="${1:?build dir}"
P=Bcpp
timeout -k 5 "${BENCH_TIMEOUT:-600}" "$B/tests/bench/bench_cpp" 20000 2000 || echo "skip,$P,dragon-cpp,failed (exit $?)"
# the goal: the C++ API within 5% of C
echo "target,$P,pingpong,8,lat_us,dragon-cpp,dragon-c,le,1.05"
echo "target,$P,stream,64,bw_MBps,dragon-cpp,dragon-c,ge,0.95"
