# pmix/local.mk: the bootstrap layer: the interface, the single-node backend and the PMIx backend.
runtime_libdragon_impl_la_SOURCES += pmix/boot.c pmix/boot.h pmix/boot_pmix.c pmix/boot_file.c
runtime_libdragon_impl_la_CFLAGS += $(PMIX_CFLAGS)
runtime_libdragon_impl_la_LIBADD += $(PMIX_LIBS)
