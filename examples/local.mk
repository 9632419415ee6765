# examples/local.mk: build rules for this area (included from the top Makefile.am).
# The examples link libdragon statically so they run from the build tree without libtool wrappers.
noinst_PROGRAMS += examples/hello
examples_hello_SOURCES = examples/hello.c
examples_hello_LDADD = runtime/libdragon_impl.la
