# runtime/gs/local.mk: global services (the fabric's registry, hosted by the head node's local services) and their tests.
runtime_libdragon_impl_la_SOURCES += runtime/gs/gs.c runtime/gs/gs.h

check_PROGRAMS += tests/unit/test_gs
TESTS += tests/unit/test_gs
tests_unit_test_gs_SOURCES = tests/unit/test_gs.c
tests_unit_test_gs_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_unit_test_gs_LDADD = $(TEST_LIBS)
