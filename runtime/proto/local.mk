# runtime/proto/local.mk: the wire protocol every service and client speaks (protobuf-c schema, framing) and its decoder tests.

# The wire schema: protoc-c generates its C code at build time.
BUILT_SOURCES += runtime/proto/dragon.pb-c.c runtime/proto/dragon.pb-c.h
CLEANFILES += runtime/proto/dragon.pb-c.c runtime/proto/dragon.pb-c.h
EXTRA_DIST += runtime/proto/dragon.proto
runtime/proto/dragon.pb-c.c runtime/proto/dragon.pb-c.h: $(srcdir)/runtime/proto/dragon.proto
	$(AM_V_GEN)$(MKDIR_P) runtime/proto && \
	$(PROTOC_C) --c_out=runtime/proto -I$(srcdir)/runtime/proto $(srcdir)/runtime/proto/dragon.proto

nodist_runtime_libdragon_impl_la_SOURCES = runtime/proto/dragon.pb-c.c runtime/proto/dragon.pb-c.h
runtime_libdragon_impl_la_SOURCES += runtime/proto/wire.c runtime/proto/wire.h
runtime_libdragon_impl_la_CFLAGS += $(PROTOBUF_C_CFLAGS)
runtime_libdragon_impl_la_LIBADD += $(PROTOBUF_C_LIBS)

check_PROGRAMS += tests/unit/test_proto
TESTS += tests/unit/test_proto
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
tests_unit_fuzz_proto_SOURCES = tests/unit/test_proto_fuzz.c runtime/proto/wire.c runtime/core/error.c
nodist_tests_unit_fuzz_proto_SOURCES = runtime/proto/dragon.pb-c.c
tests_unit_fuzz_proto_CFLAGS = -DDG_LIBFUZZER -fsanitize=fuzzer,address $(PROTOBUF_C_CFLAGS)
tests_unit_fuzz_proto_LDFLAGS = -fsanitize=fuzzer,address
tests_unit_fuzz_proto_LDADD = $(PROTOBUF_C_LIBS)
endif
