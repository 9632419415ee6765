#!/bin/bash
# tests/ta/netns.sh: transport agents in three network namespaces: correctness, order, forgery, a killed peer.
set -u
B=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
P=$B/tests/ta/ta_peer
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to create network namespaces"; exit 77; }
command -v ip >/dev/null || { echo "SKIP: no ip(8)"; exit 77; }
[ -x "$P" ] || { echo "SKIP: $P not built"; exit 77; }
T=$(mktemp -d /tmp/dgta.XXXXXX)
NS="dgta-hub-$$ dgta-a-$$ dgta-b-$$ dgta-c-$$"
PIDS=
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for n in $NS; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
ip netns add dgta-hub-$$ 2>/dev/null || { echo "SKIP: cannot create network namespaces"; exit 77; }
ip -n dgta-hub-$$ link add dgta0 type bridge && ip -n dgta-hub-$$ link set dgta0 up || exit 1
i=1
for x in a b c; do
	n=dgta-$x-$$
	ip netns add $n || exit 1
	ip link add dgta$x type veth peer name eth0 netns $n || exit 1
	ip link set dgta$x netns dgta-hub-$$ || exit 1
	ip -n dgta-hub-$$ link set dgta$x master dgta0 up || exit 1
	ip -n $n addr add 10.213.9.$i/24 dev eth0 && ip -n $n link set eth0 up && ip -n $n link set lo up || exit 1
	i=$((i + 1))
done

KEY=$(head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export DRAGON_TA_KEY=$KEY
: > "$T/peers"
fail=0
ok() { echo "ok: $*"; }
# waitfor PID SECONDS: the exit status of a background agent; past SECONDS it is killed, the agents'
# logs are shown and the status is 124 (no step can hang the test)
waitfor() {
	local pid=$1 end=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$end" ]; then
			echo "FAIL: agent $pid still running after $2 s"
			tail -n 5 "$T"/*.log
			kill -9 "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			return 124
		fi
		sleep 0.05
	done
	wait "$pid"
}
bad() { echo "FAIL: $*"; fail=1; }

# start NS NODE PORT LOG args...: an agent whose address joins the peer table before it talks
start() {
	local ns=$1 node=$2 port=$3 log=$4 ip
	shift 4
	ip=10.213.9.$(( $(printf %d "'${ns}") - 96 ))
	rm -f "$T/a$node"
	ip netns exec dgta-$ns-$$ "$P" --node "$node" --peers "$T/peers" --bind "$ip:$port" \
		--addr-out "$T/a$node" --wait-peers $(( $(wc -l < "$T/peers") + 1 )) --dead-ms 1500 \
		"$@" > "$log" 2>&1 &
	LAST=$!
	PIDS="$PIDS $LAST"
	for _ in $(seq 200); do [ -f "$T/a$node" ] && break; sleep 0.05; done
	[ -f "$T/a$node" ] || { bad "agent $node did not start: $(cat "$log")"; exit 1; }
	cat "$T/peers" "$T/a$node" > "$T/peers.new" && mv "$T/peers.new" "$T/peers"
}

if [ "${CI:-}" = true ]; then ITERS=5 COUNT=100000; else ITERS=20 COUNT=1000000; fi
COUNT=${DGTA_COUNT:-$COUNT}

start b 1 24001 "$T/echo1.log" echo; ECHO1=$LAST
start b 2 24002 "$T/sink2.log" sink; SINK2=$LAST
start c 3 24003 "$T/echo3.log" echo

# 1. ping-pong 0 B .. 64 MiB, content verified by the client
start a 11 24011 "$T/pp.log" pingpong 1 0 67108864 $ITERS
waitfor $LAST 600 && grep -q '67108864 bytes' "$T/pp.log" && ok "ping-pong 0 B to 64 MiB across namespaces" ||
	bad "ping-pong: $(tail -3 "$T/pp.log")"

# 2. many messages from two senders at once to one remote sink: none lost, each sender in order
start a 12 24012 "$T/s12.log" stream 2 $COUNT 8; S12=$LAST
start c 13 24013 "$T/s13.log" stream 2 $((COUNT / 2)) 64; S13=$LAST
waitfor $S12 900; r12=$?; waitfor $S13 900; r13=$?
if [ $r12 = 0 ] && grep -q "sink got=$COUNT bad=0" "$T/s12.log" && [ $r13 = 0 ] &&
	grep -q "sink got=$((COUNT / 2)) bad=0" "$T/s13.log"; then
	ok "$COUNT + $((COUNT / 2)) messages from two senders, no loss, per-sender order"
	sed 's/^/    /' "$T/s12.log" "$T/s13.log"
else
	bad "streams: $(cat "$T/s12.log" "$T/s13.log" | tail -4)"
fi

# 3. forged, tampered, replayed, garbage and unknown-node frames are dropped; the agent serves on
start a 14 24014 "$T/forge.log" forge 1
waitfor $LAST 120; rf=$?
if [ $rf = 0 ] && grep -Eq 'malformed=[1-9].* mac=[2-9].* replay=[1-9].* unknown=[1-9]' "$T/forge.log" &&
	grep -q 'bad MAC' "$T/echo1.log" && grep -q 'replayed' "$T/echo1.log"; then
	ok "forged and replayed frames dropped and logged: $(grep forge: "$T/forge.log")"
else
	bad "forge: $(cat "$T/forge.log") / $(cat "$T/echo1.log")"
fi

# 4. a peer agent killed mid-stream: the sender fails with a clear error in bounded time
start a 15 24015 "$T/kill.log" stream 2 100000000 65536 deposited; S15=$LAST
sleep 1
kill -9 $SINK2
t0=$(date +%s%N)
wait $SINK2 2>/dev/null # reaped here, so the shell does not report it killed
waitfor $S15 60; rk=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ $rk != 0 ] && [ $ms -lt 10000 ] && grep -q 'DRAGON_EPEER' "$T/kill.log"; then
	ok "killed peer: sender failed after $ms ms: $(grep DRAGON_EPEER "$T/kill.log")"
else
	bad "killed peer: rc=$rk after $ms ms: $(tail -3 "$T/kill.log")"
fi
# ... and the rest goes on
start a 16 24016 "$T/pp2.log" pingpong 3 8 8 100
waitfor $LAST 120 && ok "other nodes still served after the kill" || bad "after kill: $(cat "$T/pp2.log")"
exit $fail
