# runtime/core/local.mk: pools, channels, descriptors and fd passing (libdragon's on-node data path).
runtime_libdragon_impl_la_SOURCES += \
	runtime/core/error.c runtime/core/err.h \
	runtime/core/shm.c runtime/core/shm.h \
	runtime/core/fdpass.c runtime/core/fdpass.h runtime/core/env.c runtime/core/env.h \
	runtime/core/pool.c runtime/core/pool_alloc.c runtime/core/pool_cache.c \
	runtime/core/pool_impl.h runtime/core/pool_internal.h \
	runtime/core/channel.c runtime/core/channel_ring.c runtime/core/channel_ring.h \
	runtime/core/channel_remote.h runtime/core/channel_internal.h runtime/core/le.h runtime/core/inherit.h
dragoninclude_HEADERS += include/dragon/pool.h include/dragon/channel.h
runtime_libdragon_impl_la_CFLAGS += $(SODIUM_CFLAGS)
runtime_libdragon_impl_la_LIBADD += $(SODIUM_LIBS)

check_PROGRAMS += tests/unit/test_error
tests_unit_test_error_SOURCES = tests/unit/test_error.c
tests_unit_test_error_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_error_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_error

check_PROGRAMS += tests/unit/test_pool tests/unit/test_channel
TESTS += tests/unit/test_pool tests/unit/test_channel
tests_unit_test_pool_SOURCES = tests/unit/test_pool.c
tests_unit_test_pool_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_pool_LDADD = $(TEST_LIBS)
tests_unit_test_channel_SOURCES = tests/unit/test_channel.c
tests_unit_test_channel_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_channel_LDADD = $(TEST_LIBS)

# Multi-process stress: 1+1 up to 8+8, and SIGKILL mid-operation (sizes scale down under CI).
check_PROGRAMS += tests/stress/chstress
tests_stress_chstress_SOURCES = tests/stress/chstress.c
tests_stress_chstress_LDADD = runtime/libdragon_impl.la
TESTS += tests/stress/stress-channels.sh
EXTRA_DIST += tests/stress/stress-channels.sh

# make tsan: test_channel (its 4+4 threads on one channel among the rest) built with
# ThreadSanitizer against runtime/core alone; fails on any report. Also run by make check when
# the compiler has -fsanitize=thread (tests/unit/tsan-channel.sh).
TSAN_SRCS = $(srcdir)/tests/unit/test_channel.c $(srcdir)/tests/unit/tsan_remote_stub.c \
	$(srcdir)/runtime/core/error.c $(srcdir)/runtime/core/shm.c $(srcdir)/runtime/core/fdpass.c \
	$(srcdir)/runtime/core/pool.c $(srcdir)/runtime/core/pool_alloc.c $(srcdir)/runtime/core/pool_cache.c \
	$(srcdir)/runtime/core/channel.c $(srcdir)/runtime/core/channel_ring.c
tests/unit/test_channel_tsan: $(TSAN_SRCS) $(srcdir)/runtime/core/*.h
	$(CC) -fsanitize=thread -g -O1 -pthread $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) \
		$(CMOCKA_CFLAGS) $(SODIUM_CFLAGS) -o $@ $(TSAN_SRCS) $(CMOCKA_LIBS) $(SODIUM_LIBS)
tsan: tests/unit/test_channel_tsan
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" ./tests/unit/test_channel_tsan
.PHONY: tsan
TESTS += tests/unit/tsan-channel.sh
EXTRA_DIST += tests/unit/tsan-channel.sh tests/unit/tsan_remote_stub.c
CLEANFILES += tests/unit/test_channel_tsan

# make stress: the long kill campaign, 1,000 SIGKILLs of producers and consumers under 4+4 load.
stress: tests/stress/chstress
	./tests/stress/chstress campaign $${KILLS:-1000}
.PHONY: stress

# Descriptor decoder fuzzing: a replay of mutations, then libFuzzer (clang) for a short run.
check_PROGRAMS += tests/fuzz/fuzz_desc_replay
tests_fuzz_fuzz_desc_replay_SOURCES = tests/fuzz/fuzz_desc.c
tests_fuzz_fuzz_desc_replay_LDADD = runtime/libdragon_impl.la
TESTS += tests/fuzz/fuzz-desc.sh
EXTRA_DIST += tests/fuzz/fuzz-desc.sh tests/fuzz/seed.h
