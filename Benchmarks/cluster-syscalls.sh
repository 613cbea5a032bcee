#!/usr/bin/env bash
# System calls per event of a 3-node cluster's publishing node (a) and one relaying node (b):
#
#   Benchmarks/cluster-syscalls.sh path/to/EventStreamDemo [tag]
#
# A fresh redis-server on a free port, three demo nodes on it (a publishes RATE ticks/s, b and c
# relay), CLIENTS clients per node from ../shared/bench's load generator (built by run-all.sh or
# cluster.sh into $BENCH_WORK/bin), and `strace -c -f` on a and b for 5 s once the clients are
# in. strace slows the nodes down: read the calls per event (divide by the node's sendto calls:
# a sends an append and a read per event, b a read), not the times. Everything on loopback,
# every process stopped by PID. Variables: RATE (250), CLIENTS (33), BENCH_WORK.
set -u
BIN=${1:?usage: cluster-syscalls.sh EventStreamDemo [tag]}; tag=${2:-run}
RATE=${RATE:-250}; CLIENTS=${CLIENTS:-33}
gen=${BENCH_WORK:-/tmp/eventstreamkit-bench}/bin/ssebench
[ -x "$gen" ] || { echo "no load generator at $gen: run Benchmarks/cluster.sh QUICK=1 once" >&2; exit 2; }
out=$(mktemp -d "${TMPDIR:-/tmp}/cluster-syscalls.XXXXXX")
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
rp=$(free_port); pa=$(free_port); pb=$(free_port); pc=$(free_port)
redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --loglevel warning >"$out/redis.log" 2>&1 & R=$!
sleep 0.5
"$BIN" serve --host 127.0.0.1 --port "$pa" --redis "redis://127.0.0.1:$rp" --bench-rate "$RATE" --bench-size 100 >"$out/a.log" 2>&1 & A=$!
"$BIN" serve --host 127.0.0.1 --port "$pb" --redis "redis://127.0.0.1:$rp" --bench-rate 0 --bench-size 100 >"$out/b.log" 2>&1 & B=$!
"$BIN" serve --host 127.0.0.1 --port "$pc" --redis "redis://127.0.0.1:$rp" --bench-rate 0 --bench-size 100 >"$out/c.log" 2>&1 & C=$!
sleep 1.5
gens=()
for p in $pa $pb $pc; do
  timeout 60 "$gen" -url "http://127.0.0.1:$p/events" -clients "$CLIENTS" -duration 12s -settle 1s -quiet >/dev/null 2>&1 & gens+=($!)
done
sleep 5
timeout 5 strace -c -f -p "$B" -o "$out/$tag-b.strace" 2>/dev/null &
timeout 5 strace -c -f -p "$A" -o "$out/$tag-a.strace" 2>/dev/null
wait "${gens[@]}" 2>/dev/null
kill "$A" "$B" "$C" "$R" 2>/dev/null; wait 2>/dev/null
for node in a b; do
  echo "== $tag node $node ($([ $node = a ] && echo publishes || echo relays)), $out/$tag-$node.strace"
  head -14 "$out/$tag-$node.strace"
done
