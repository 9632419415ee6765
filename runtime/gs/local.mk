# runtime/gs/local.mk: global services (the fabric's registry, hosted by the head node's local services) and their tests.
runtime_libdragon_impl_la_SOURCES += runtime/gs/gs.c runtime/gs/gs.h

check_PROGRAMS += tests/unit/test_gs
TESTS += tests/unit/test_gs
tests_unit_test_gs_SOURCES = tests/unit/test_gs.c
tests_unit_test_gs_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_unit_test_gs_LDADD = $(TEST_LIBS)

# GS alone, hosted by a stand-in: what a lost node leaves behind.
check_PROGRAMS += tests/unit/test_gs_lost
TESTS += tests/unit/test_gs_lost
tests_unit_test_gs_lost_SOURCES = tests/unit/test_gs_lost.c
tests_unit_test_gs_lost_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS) $(EVENT_CFLAGS)
tests_unit_test_gs_lost_LDADD = $(TEST_LIBS) $(EVENT_LIBS)
