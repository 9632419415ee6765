# runtime/services.mk: build rules for this area (included from the top Makefile.am).
