# runtime/ta/local.mk: the transport agent dragon-ta (libfabric layer, frames, gateway), its tests and benchmark B4.
# The libfabric layer is a library of its own, linked only into the agent and its tests: libfabric
# pulls in provider libraries (Debian's links PSM, whose constructor sleeps ~200 ms), which no
# process of the fabric should pay for at start.
noinst_LTLIBRARIES += runtime/libdragon_ta.la
runtime_libdragon_ta_la_SOURCES = runtime/ta/frame.c runtime/ta/frame.h runtime/ta/ta.c runtime/ta/ta.h \
	runtime/ta/ta_internal.h runtime/ta/ta_peers.c runtime/ta/ta_send.c runtime/ta/ta_recv.c runtime/ta/ta_bulk.c
runtime_libdragon_ta_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(FABRIC_CFLAGS) $(SODIUM_CFLAGS) $(CRYPTO_CFLAGS)
runtime_libdragon_ta_la_LIBADD = $(FABRIC_LIBS) $(SODIUM_LIBS) $(CRYPTO_LIBS)

check_PROGRAMS += tests/ta/test_frame tests/ta/ta_peer tests/ta/test_credit
BENCH_BINS += tests/ta/ta_peer
tests_ta_test_frame_SOURCES = tests/ta/test_frame.c
tests_ta_test_frame_CFLAGS = $(TEST_CFLAGS) $(SODIUM_CFLAGS)
tests_ta_test_frame_LDADD = runtime/libdragon_ta.la $(TEST_LIBS)
tests_ta_test_credit_SOURCES = tests/ta/test_credit.c
tests_ta_test_credit_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_ta_test_credit_LDADD = runtime/libdragon_ta.la runtime/libdragon_impl.la $(SODIUM_LIBS)
tests_ta_ta_peer_SOURCES = tests/ta/ta_peer.c
tests_ta_ta_peer_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_ta_ta_peer_LDADD = runtime/libdragon_ta.la runtime/libdragon_impl.la
TESTS += tests/ta/test_frame tests/ta/test_credit tests/ta/netns.sh tests/ta/channels.bats
EXTRA_DIST += tests/ta/netns.sh tests/ta/channels.bats

# Frame codec fuzzing: a replay of mutations, then libFuzzer (clang) for a short run.
check_PROGRAMS += tests/ta/fuzz_frame_replay
tests_ta_fuzz_frame_replay_SOURCES = tests/ta/fuzz_frame.c
tests_ta_fuzz_frame_replay_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_ta_fuzz_frame_replay_LDADD = runtime/libdragon_ta.la runtime/libdragon_impl.la $(SODIUM_LIBS)
TESTS += tests/ta/fuzz-frame.sh
EXTRA_DIST += tests/ta/fuzz-frame.sh

# libFuzzer target for the frame decoder: make tests/ta/fuzz_frame && tests/ta/fuzz_frame -max_total_time=60
if ENABLE_FUZZ
noinst_PROGRAMS += tests/ta/fuzz_frame
tests_ta_fuzz_frame_SOURCES = tests/ta/fuzz_frame.c runtime/ta/frame.c runtime/core/error.c
tests_ta_fuzz_frame_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) -DDG_LIBFUZZER -fsanitize=fuzzer,address,undefined
tests_ta_fuzz_frame_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_ta_fuzz_frame_LDADD = $(SODIUM_LIBS) $(CRYPTO_LIBS)
endif

# Benchmark B4 (make bench BENCH=B4): our cross-node ping-pong and streaming against raw TCP and friends.
check_PROGRAMS += tests/bench/b4/tcp_pp
BENCH_BINS += tests/bench/b4/tcp_pp
tests_bench_b4_tcp_pp_SOURCES = tests/bench/b4/tcp_pp.c
EXTRA_DIST += tests/bench/parts/B4.sh

# The transport agent: one per node of a fabric of several nodes, a child of dragon-ls.
libexec_PROGRAMS += runtime/ta/dragon-ta
runtime_ta_dragon_ta_SOURCES = runtime/ta/main.c runtime/ta/agent.h runtime/ta/gateway.h \
	runtime/ta/gateway.c runtime/ta/nodes.c runtime/ta/serve.c runtime/ta/chans.c
runtime_ta_dragon_ta_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
runtime_ta_dragon_ta_LDADD = runtime/libdragon_ta.la runtime/libdragon_impl.la $(SODIUM_LIBS)

# Channels across nodes through the public API (tests/ta/channels.bats, benchmark B4).
check_PROGRAMS += tests/ta/chtool
BENCH_BINS += tests/ta/chtool
tests_ta_chtool_SOURCES = tests/ta/chtool.c
tests_ta_chtool_LDADD = runtime/libdragon_impl.la
