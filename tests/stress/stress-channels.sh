#!/bin/sh
# tests/stress/stress-channels.sh: channel stress (1+1 .. 8+8 producers+consumers, SIGKILL rounds, a short kill campaign); smaller under CI.
set -eu
bin=${top_builddir:-.}/tests/stress/chstress
if [ "${CI:-}" = true ] || [ -n "${DRAGON_QUICK:-}" ]; then
	total=100000; rounds=150; kills=50
else
	total=1000000; rounds=300; kills=200
fi
for pc in "1 1" "2 2" "4 4" "8 8"; do
	set -- $pc
	"$bin" run "$1" "$2" $((total / $1))
done
"$bin" kill "$rounds" 100000
# the long campaign (1,000 kills) is `make stress`
"$bin" campaign "$kills"
