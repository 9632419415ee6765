# examples/local.mk: build rules for this area (included from the top Makefile.am).
# The examples link libdragon statically so they run from the build tree without libtool wrappers.
noinst_PROGRAMS += examples/hello
examples_hello_SOURCES = examples/hello.c
examples_hello_LDADD = runtime/libdragon_impl.la
noinst_PROGRAMS += examples/ring examples/pingpong
examples_ring_SOURCES = examples/ring.c
examples_ring_LDADD = runtime/libdragon_impl.la
examples_pingpong_SOURCES = examples/pingpong.c
examples_pingpong_LDADD = runtime/libdragon_impl.la
