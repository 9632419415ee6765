#!/bin/sh
# tests/fuzz/fuzz-options.sh: fuzz the SPANK plugin's settings parser (plugstack.conf, DRAGON_* variables, --dragon) with libFuzzer.
b="${top_builddir:-.}"
s="${top_srcdir:-..}"
exec "$s/tests/run-fuzz" options - 1024 -- \
	-I"$s/include" -I"$s/runtime" -I"$b" \
	"$s/tests/fuzz/fuzz_options.c" "$s/spank/options.c"
