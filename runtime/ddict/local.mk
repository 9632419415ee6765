# runtime/ddict/local.mk: the distributed dictionary: its part of libdragon, the manager program, its tests, fuzzing and benchmark B9.

# The managers' request schema: protoc-c generates its C code at build time.
BUILT_SOURCES += runtime/ddict/ddict.pb-c.c runtime/ddict/ddict.pb-c.h
CLEANFILES += runtime/ddict/ddict.pb-c.c runtime/ddict/ddict.pb-c.h
EXTRA_DIST += runtime/ddict/ddict.proto docs/ddict.md
runtime/ddict/ddict.pb-c.c runtime/ddict/ddict.pb-c.h: $(srcdir)/runtime/ddict/ddict.proto
	$(AM_V_GEN)$(MKDIR_P) runtime/ddict && \
	$(PROTOC_C) --c_out=runtime/ddict -I$(srcdir)/runtime/ddict $(srcdir)/runtime/ddict/ddict.proto

nodist_runtime_libdragon_impl_la_SOURCES += runtime/ddict/ddict.pb-c.c runtime/ddict/ddict.pb-c.h
runtime_libdragon_impl_la_SOURCES += runtime/ddict/dd.h runtime/ddict/store.c \
	runtime/ddict/persist.c runtime/ddict/wire.c runtime/ddict/serve.c runtime/ddict/client.h runtime/ddict/client.c \
	runtime/ddict/lifecycle.c runtime/ddict/ops.c runtime/ddict/status.c runtime/ddict/status.h
runtime_libdragon_impl_la_CFLAGS += $(SODIUM_CFLAGS)
runtime_libdragon_impl_la_LIBADD += $(SODIUM_LIBS)
dragoninclude_HEADERS += include/dragon/ddict.h

# One manager per shard, started by dragon_ddict_create as a group.
libexec_PROGRAMS += runtime/ddict/dragon-ddict-manager
runtime_ddict_dragon_ddict_manager_SOURCES = runtime/ddict/manager.c
runtime_ddict_dragon_ddict_manager_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
runtime_ddict_dragon_ddict_manager_LDADD = runtime/libdragon_impl.la

# Unit tests: hashing, the shard store, persistence, the message codec and the request handler.
check_PROGRAMS += tests/ddict/test_ddict
TESTS += tests/ddict/test_ddict
tests_ddict_test_ddict_SOURCES = tests/ddict/test_ddict.c
tests_ddict_test_ddict_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS) $(SODIUM_CFLAGS)
tests_ddict_test_ddict_LDADD = $(TEST_LIBS)

# ddtool: the dictionary from the command line, for the integration tests.
check_PROGRAMS += tests/ddict/ddtool
tests_ddict_ddtool_SOURCES = tests/ddict/ddtool.c
tests_ddict_ddtool_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_ddict_ddtool_LDADD = runtime/libdragon_impl.la
TESTS += tests/ddict/ddict.bats tests/ddict/multinode.bats
EXTRA_DIST += tests/ddict/ddict.bats tests/ddict/multinode.bats
# On the Slurm test cluster: tests/integration/cluster.sh runs it with the other .bats files there.
EXTRA_DIST += tests/integration/ddict.bats

# Request fuzzing: a replay of mutations always, then libFuzzer (clang) for a short run.
check_PROGRAMS += tests/ddict/fuzz_req_replay
tests_ddict_fuzz_req_replay_SOURCES = tests/ddict/fuzz_req.c
tests_ddict_fuzz_req_replay_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_ddict_fuzz_req_replay_LDADD = runtime/libdragon_impl.la
TESTS += tests/ddict/fuzz-req.sh
EXTRA_DIST += tests/ddict/fuzz-req.sh

# Benchmark B9 (tests/bench/parts/B9.sh): our side, and Redis/memcached through their C clients.
BENCH_BINS += tests/ddict/bench_ddict runtime/ddict/dragon-ddict-manager
check_PROGRAMS += tests/ddict/bench_ddict
tests_ddict_bench_ddict_SOURCES = tests/ddict/bench_ddict.c
tests_ddict_bench_ddict_LDADD = runtime/libdragon_impl.la
BENCH_BINS += tests/ddict/bench_kv
check_PROGRAMS += tests/ddict/bench_kv
tests_ddict_bench_kv_SOURCES = tests/ddict/bench_kv.c
tests_ddict_bench_kv_CFLAGS = $(AM_CFLAGS)
tests_ddict_bench_kv_LDADD =
if HAVE_HIREDIS
tests_ddict_bench_kv_CFLAGS += -DHAVE_HIREDIS $(HIREDIS_CFLAGS)
tests_ddict_bench_kv_LDADD += $(HIREDIS_LIBS)
endif
if HAVE_MEMCACHED
tests_ddict_bench_kv_CFLAGS += -DHAVE_MEMCACHED $(MEMCACHED_CFLAGS)
tests_ddict_bench_kv_LDADD += $(MEMCACHED_LIBS)
endif
EXTRA_DIST += tests/bench/parts/B9.sh
