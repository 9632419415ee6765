#!/bin/bash
# tests/bench/parts/B4.sh: B4, cross-node channel transport: latency and bandwidth across a veth between two namespaces.
set -u
B=${1:-.}
P=$B/tests/ta/ta_peer
TCP=$B/tests/bench/b4/tcp_pp
[ "$(id -u)" = 0 ] || { echo "skip,B4,all,needs root for network namespaces"; exit 0; }
if [ "${BENCH_SMOKE:-}" = 1 ]; then IT=50 SZ="8 1024"; else IT=5000 SZ="8 64 1024 16384 65536 1048576"; fi
A=dgta-b4a-$$ Bn=dgta-b4b-$$ PIDS=
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del $A 2>/dev/null; ip netns del $Bn 2>/dev/null
	rm -rf "${T:-/nonexistent}"
}
trap cleanup EXIT
trap 'exit 1' TERM INT
T=$(mktemp -d /tmp/dgta-b4.XXXXXX)
ip netns add $A && ip netns add $Bn || { echo "skip,B4,all,cannot create network namespaces"; exit 0; }
ip -n $A link add eth0 type veth peer name eth0 netns $Bn
ip -n $A addr add 10.213.9.101/24 dev eth0; ip -n $Bn addr add 10.213.9.102/24 dev eth0
for n in $A $Bn; do ip -n $n link set eth0 up; ip -n $n link set lo up; done
ina() { ip netns exec $A "$@"; }
inb() { ip netns exec $Bn "$@"; }
bg_b() { ip netns exec $Bn "$@" > "$T/bg.log" 2>&1 & PIDS="$PIDS $!"; LAST=$!; }
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# ours: echo agent in B, client agent in A, peer table exchanged through a file
export DRAGON_TA_KEY=$(head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n')
bg_b "$P" --node 1 --peers "$T/peers" --bind 10.213.9.102:25001 --addr-out "$T/a1" --wait-peers 2 echo
ECHO=$LAST
run_ours() {
	rm -f "$T/a2" "$T/peers"
	ina "$P" --node 2 --peers "$T/peers" --bind 10.213.9.101:25002 --addr-out "$T/a2" --wait-peers 2 "$@" &
	local c=$!
	for _ in $(seq 200); do [ -f "$T/a1" ] && [ -f "$T/a2" ] && break; sleep 0.05; done
	cat "$T/a1" "$T/a2" > "$T/p.new" && mv "$T/p.new" "$T/peers"
	wait $c
}
for s in $SZ; do
	v=$(run_ours pingpong 1 "$s" "$s" $IT csv | cut -d, -f2)
	[ -n "$v" ] && echo "result,B4,pingpong,$s,dragon-ta,lat_us,$v"
done
stop $ECHO
rm -f "$T/a1"
bg_b "$P" --node 1 --peers "$T/peers" --bind 10.213.9.102:25005 --addr-out "$T/a1" --wait-peers 2 sink
ECHO=$LAST
N=$([ "${BENCH_SMOKE:-}" = 1 ] && echo 50 || echo 2000)
v=$(run_ours stream 1 $N 1048576 | sed -n 's/.*: \([0-9.]*\) MB\/s.*/\1/p')
[ -n "$v" ] && echo "result,B4,stream,1048576,dragon-ta,bw_MBps,$v"
stop $ECHO
sleep 0.2
# idle agent CPU: one agent with nothing to do for 3 s
bg_b "$P" --node 1 --peers "$T/peers" --bind 10.213.9.102:25003 echo
sleep 1; t0=$(awk '{print $14+$15}' /proc/$LAST/stat 2>/dev/null || echo 0); sleep 3
t1=$(awk '{print $14+$15}' /proc/$LAST/stat 2>/dev/null || echo 0)
echo "result,B4,idle-cpu,0,dragon-ta,ms,$(( (t1 - t0) * 1000 / $(getconf CLK_TCK) ))"
stop $LAST

# raw TCP, blocking and busy-polling
for mode in block spin; do
	for s in $SZ; do
		bg_b "$TCP" server 25100 $mode; sleep 0.2
		v=$(ina "$TCP" client 10.213.9.102 25100 "$s" $IT $mode)
		stop $LAST
		[ -n "$v" ] && echo "result,B4,pingpong,$s,tcp-$mode,lat_us,$v"
	done
done
bg_b "$TCP" server 25100 spin; sleep 0.2
v=$(ina "$TCP" client 10.213.9.102 25100 1048576 $N spin stream); stop $LAST
[ -n "$v" ] && echo "result,B4,stream,1048576,tcp-spin,bw_MBps,$v"

# fi_pingpong over the same provider (its usec/xfer column)
if command -v fi_pingpong >/dev/null; then
	for s in $SZ; do
		bg_b fi_pingpong -p "tcp;ofi_rxm" -e rdm -S "$s" -I $IT -B 25200; sleep 0.3
		v=$(ina fi_pingpong -p "tcp;ofi_rxm" -e rdm -S "$s" -I $IT -P 25200 10.213.9.102 2>/dev/null |
			awk '$1 ~ /^[0-9]/ {print $(NF-1)}' | tail -1)
		stop $LAST
		[ -n "$v" ] && echo "result,B4,pingpong,$s,fi_pingpong,lat_us,$v"
	done
else
	echo "skip,B4,fi_pingpong,libfabric-bin not installed"
fi

# iperf3: the bandwidth ceiling
if command -v iperf3 >/dev/null; then
	bg_b iperf3 -s -1 -p 25300; sleep 0.3
	v=$(ina iperf3 -c 10.213.9.102 -p 25300 -t $([ "${BENCH_SMOKE:-}" = 1 ] && echo 1 || echo 3) -f m |
		awk '/receiver/ {print $(NF-2) / 8}')
	stop $LAST
	[ -n "$v" ] && echo "result,B4,stream,1048576,iperf3,bw_MBps,$v"
else
	echo "skip,B4,iperf3,not installed"
fi
echo "skip,B4,zmq-tcp,ZeroMQ tcp peer not written yet"
echo "skip,B4,openmpi-tcp,mpirun across namespaces not set up yet (needs an ssh-less launcher per namespace)"

for s in 8 64 1024; do
	echo "target,B4,pingpong,$s,lat_us,dragon-ta,fi_pingpong,le,1.2"
done
echo "target,B4,stream,1048576,bw_MBps,dragon-ta,iperf3,ge,0.7"
