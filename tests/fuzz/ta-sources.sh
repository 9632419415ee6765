# tests/fuzz/ta-sources.sh: sourced by the fuzz scripts that link the transport agent's library: its sources, from the source tree $1.
ta_sources() {
	for f in ta ta_peers ta_send ta_recv ta_bulk frame; do
		printf '%s ' "$1/runtime/ta/$f.c"
	done
	printf '%s %s\n' "$1/runtime/core/error.c" "$1/runtime/core/env.c"
}
