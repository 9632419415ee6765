# runtime/services.mk: local services, global services, the protocol, the client library and the launcher.

# The wire schema: protoc-c generates its C code at build time.
BUILT_SOURCES += runtime/proto/dragon.pb-c.c runtime/proto/dragon.pb-c.h
CLEANFILES += runtime/proto/dragon.pb-c.c runtime/proto/dragon.pb-c.h
EXTRA_DIST += runtime/proto/dragon.proto
runtime/proto/dragon.pb-c.c runtime/proto/dragon.pb-c.h: $(srcdir)/runtime/proto/dragon.proto
	$(AM_V_GEN)$(MKDIR_P) runtime/proto && \
	$(PROTOC_C) --c_out=runtime/proto -I$(srcdir)/runtime/proto $(srcdir)/runtime/proto/dragon.proto

nodist_runtime_libdragon_impl_la_SOURCES = runtime/proto/dragon.pb-c.c runtime/proto/dragon.pb-c.h
runtime_libdragon_impl_la_SOURCES += \
	runtime/proto/wire.c runtime/proto/wire.h \
	runtime/ls/ls.c runtime/ls/ls.h runtime/ls/link.c runtime/ls/link.h \
	runtime/gs/gs.c runtime/gs/gs.h \
	runtime/launcher/rundir.c runtime/launcher/rundir.h runtime/libexec.c runtime/libexec.h \
	runtime/client/client.c runtime/client/client.h runtime/client/sync.c \
	runtime/client/remote.c runtime/client/fchannel.c runtime/ta/gateway.h
runtime_libdragon_impl_la_CFLAGS += $(EVENT_CFLAGS) $(PROTOBUF_C_CFLAGS) $(HWLOC_CFLAGS) $(SODIUM_CFLAGS) \
	-DDRAGON_LIBEXECDIR='"$(libexecdir)"'
runtime_libdragon_impl_la_LIBADD += $(EVENT_LIBS) $(PROTOBUF_C_LIBS) $(HWLOC_LIBS)

dragoninclude_HEADERS += include/dragon/init.h include/dragon/process.h include/dragon/group.h \
	include/dragon/name.h include/dragon/queue.h include/dragon/sync.h \
	include/dragon/fchannel.h

# The launcher links libdragon statically: it forks local services from its own image.
bin_PROGRAMS += runtime/launcher/dragon
runtime_launcher_dragon_SOURCES = runtime/launcher/dragon.c
runtime_launcher_dragon_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(PROTOBUF_C_CFLAGS)
runtime_launcher_dragon_LDADD = runtime/libdragon_impl.la $(JANSSON_LIBS)

# Integration tests of the launcher (bats) and the client they drive.
check_PROGRAMS += tests/launcher/dgtool
tests_launcher_dgtool_SOURCES = tests/launcher/dgtool.c
tests_launcher_dgtool_LDADD = runtime/libdragon_impl.la
TESTS += tests/launcher/launcher.bats
EXTRA_DIST += tests/launcher/launcher.bats

# Unit tests: real local services in a child process, driven with good and bad messages.
check_PROGRAMS += tests/unit/test_ls tests/unit/test_gs tests/unit/test_proto
TESTS += tests/unit/test_ls tests/unit/test_gs tests/unit/test_proto
EXTRA_DIST += tests/unit/test_ls_fixture.h
tests_unit_test_ls_SOURCES = tests/unit/test_ls.c
tests_unit_test_ls_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_unit_test_ls_LDADD = $(TEST_LIBS)
tests_unit_test_gs_SOURCES = tests/unit/test_gs.c
tests_unit_test_gs_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_unit_test_gs_LDADD = $(TEST_LIBS)
tests_unit_test_proto_SOURCES = tests/unit/test_proto.c
tests_unit_test_proto_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_unit_test_proto_LDADD = $(TEST_LIBS)

# Decoder fuzzing: a replay program always; the check script runs libFuzzer (clang) when it can.
check_PROGRAMS += tests/unit/test_proto_fuzz
tests_unit_test_proto_fuzz_SOURCES = tests/unit/test_proto_fuzz.c
tests_unit_test_proto_fuzz_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_unit_test_proto_fuzz_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_proto_fuzz.sh
EXTRA_DIST += tests/unit/test_proto_fuzz.sh
if ENABLE_FUZZ
# make fuzz-proto: a libFuzzer binary of the decoder (run it with a corpus directory).
noinst_PROGRAMS += tests/unit/fuzz_proto
tests_unit_fuzz_proto_SOURCES = tests/unit/test_proto_fuzz.c runtime/proto/wire.c runtime/error.c
nodist_tests_unit_fuzz_proto_SOURCES = runtime/proto/dragon.pb-c.c
tests_unit_fuzz_proto_CFLAGS = -DDG_LIBFUZZER -fsanitize=fuzzer,address $(PROTOBUF_C_CFLAGS)
tests_unit_fuzz_proto_LDFLAGS = -fsanitize=fuzzer,address
tests_unit_fuzz_proto_LDADD = $(PROTOBUF_C_LIBS)
endif

# Benchmarks B5a (fabric start to exit) and B6 (launch rate); parts run by tests/bench/run.
BENCH_BINS += tests/bench/b6_spawn examples/hello runtime/launcher/dragon
check_PROGRAMS += tests/bench/b6_spawn
tests_bench_b6_spawn_SOURCES = tests/bench/b6_spawn.c
tests_bench_b6_spawn_LDADD = runtime/libdragon_impl.la
EXTRA_DIST += tests/bench/parts/B5a.sh tests/bench/parts/B6.sh

dist_man_MANS += docs/man/dragon.1
EXTRA_DIST += docs/services.md docs/multinode.md

# dragon-ls: local services as their own daemon (the Slurm fabric step will start one per node).
libexec_PROGRAMS += runtime/ls/dragon-ls
runtime_ls_dragon_ls_SOURCES = runtime/ls/ls_main.c
runtime_ls_dragon_ls_LDADD = runtime/libdragon_impl.la

# Several nodes' local services on one machine (file bootstrap): links, routing, names and groups across nodes.
check_PROGRAMS += tests/multinode/mnclient
tests_multinode_mnclient_SOURCES = tests/multinode/mnclient.c
tests_multinode_mnclient_LDADD = runtime/libdragon_impl.la
TESTS += tests/multinode/multinode.bats
EXTRA_DIST += tests/multinode/multinode.bats tests/multinode/nodes.bash

# Links between nodes: joins, order, and what they refuse (a server thread on loopback).
check_PROGRAMS += tests/unit/test_link
TESTS += tests/unit/test_link
tests_unit_test_link_SOURCES = tests/unit/test_link.c
tests_unit_test_link_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS) $(EVENT_CFLAGS) $(SODIUM_CFLAGS) -pthread
tests_unit_test_link_LDADD = $(TEST_LIBS) $(EVENT_LIBS) $(SODIUM_LIBS) -lpthread
