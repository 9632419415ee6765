# pmix/local.mk: build rules for this area (included from the top Makefile.am).
runtime_libdragon_impl_la_SOURCES += pmix/boot.c pmix/boot.h
