# runtime/ls/local.mk: local services (one per node), the links between nodes' services, and their tests.
runtime_libdragon_impl_la_SOURCES += runtime/ls/ls.c runtime/ls/ls.h runtime/ls/ls_internal.h \
	runtime/ls/agent.c runtime/ls/conn.c runtime/ls/io.c runtime/ls/nodes.c runtime/ls/objects.c \
	runtime/ls/proc.c runtime/ls/publish.c runtime/ls/route.c runtime/ls/spawn.c runtime/ls/status.c \
	runtime/ls/link.c runtime/ls/link.h
runtime_libdragon_impl_la_CFLAGS += $(EVENT_CFLAGS) $(HWLOC_CFLAGS) $(SODIUM_CFLAGS) \
	-DDRAGON_LIBEXECDIR='"$(libexecdir)"'
runtime_libdragon_impl_la_LIBADD += $(EVENT_LIBS) $(HWLOC_LIBS)

# dragon-ls: local services as their own daemon (the Slurm fabric step starts one per node).
libexec_PROGRAMS += runtime/ls/dragon-ls
runtime_ls_dragon_ls_SOURCES = runtime/ls/ls_main.c
runtime_ls_dragon_ls_LDADD = runtime/libdragon_impl.la

# Unit tests: real local services in a child process, driven with good and bad messages.
check_PROGRAMS += tests/unit/test_ls
TESTS += tests/unit/test_ls
EXTRA_DIST += tests/unit/test_ls_fixture.h
tests_unit_test_ls_SOURCES = tests/unit/test_ls.c
tests_unit_test_ls_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_unit_test_ls_LDADD = $(TEST_LIBS)

# Pools attached through local services under stress: forked clients, threads, reattaching,
# descriptors of another pool or layout, descriptors LS must not leak into what it starts.
check_PROGRAMS += tests/unit/test_pool_attach
TESTS += tests/unit/test_pool_attach
tests_unit_test_pool_attach_SOURCES = tests/unit/test_pool_attach.c
tests_unit_test_pool_attach_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS) -pthread
tests_unit_test_pool_attach_LDADD = $(TEST_LIBS) -lpthread

# Links between nodes: joins, order, and what they refuse (a server thread on loopback).
check_PROGRAMS += tests/unit/test_link
TESTS += tests/unit/test_link
tests_unit_test_link_SOURCES = tests/unit/test_link.c
tests_unit_test_link_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS) $(EVENT_CFLAGS) $(SODIUM_CFLAGS) -pthread
tests_unit_test_link_LDADD = $(TEST_LIBS) $(EVENT_LIBS) $(SODIUM_LIBS) -lpthread

# Several nodes' local services on one machine (file bootstrap): links, routing, names and groups across nodes.
check_PROGRAMS += tests/multinode/mnclient
tests_multinode_mnclient_SOURCES = tests/multinode/mnclient.c
tests_multinode_mnclient_LDADD = runtime/libdragon_impl.la
TESTS += tests/multinode/multinode.bats
EXTRA_DIST += tests/multinode/multinode.bats tests/multinode/nodes.bash
EXTRA_DIST += docs/services.md docs/multinode.md
