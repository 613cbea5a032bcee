#!/usr/bin/env bash
# The cluster beside a single node, in one sitting, with ../shared/bench's load generator:
#
#   Benchmarks/cluster.sh                 # 3 rounds of W1 + W4, single node / Redis + 3 nodes alternating (~13 min)
#   QUICK=1 Benchmarks/cluster.sh         # smoke test: 1 round, 5 s W1 and 3 s W4 windows (~1.5 min)
#   ROUNDS=5 WORKLOADS="W1" Benchmarks/cluster.sh
#   ESK_BEFORE_BIN=/path/to/old/EventStreamDemo Benchmarks/cluster.sh seam
#                                         # W3 + W4 of ../shared/bench/run.sh, 3 runs, two builds of the
#                                         # demo as peers beside c-epoll (see Benchmarks/README.md)
#
# Single node: EventStreamDemo serve --bench-rate R (the in-process log). Cluster: a fresh
# redis-server on a free port (--save '' --appendonly no) and 3 demo nodes with --redis: node a
# publishes R ticks/s through the cluster's log, nodes b and c run --bench-rate 0 and relay what
# they read from it. Exactly one publisher, so that every client sees one seq sequence (the
# generator's loss check). One generator per node, clients spread evenly, started together.
# Servers and redis-server are pinned to CPU $SERVER_CPU (0), generators to CPU $GEN_CPU (1).
#
# Variables: ROUNDS (3; QUICK: 1), WORKLOADS ("W1 W4"), W1_CLIENTS (1000) W1_RATE (10) W1_DUR (20),
# W4_CLIENTS (100) W4_RATES ("250 500 1000 1500 2000 5000") W4_DUR (8), SIZE (100), NODES (3),
# LOG_LENGTH (10000), ESK_BIN (a built demo: skips the build), BENCH_SRC, BENCH_WORK, OUT.
# Needs go, gcc, taskset, redis-server, redis-cli, python3. Output: $OUT/table.md, results.jsonl,
# run.log, and every generator report and server log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bench_src=${BENCH_SRC:-$root/../shared/bench}
work=${BENCH_WORK:-/tmp/eventstreamkit-cluster-bench}
mode=${1:-cluster}

command -v go >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; }
command -v redis-server >/dev/null || [ "$mode" = seam ] || { echo "cluster.sh: needs redis-server (Debian redis-server)" >&2; exit 2; }

# Copy the bench (the shared folder may be read-only), keeping what earlier runs built.
mkdir -p "$work"
(cd "$bench_src" && tar cf - --exclude=./results --exclude=./bin --exclude=./.venv --exclude='*/.build' .) | (cd "$work" && tar xf -)
mkdir -p "$work/bin"
(cd "$work/ssebench" && go build -o ../bin/ssebench .)
gcc -O2 -o "$work/bin/sse_epoll" "$work/peers/c-epoll/sse_epoll.c"

if [ -z "${ESK_BIN:-}" ]; then
  swift build -c release --product EventStreamDemo --package-path "$root"
  ESK_BIN="$root/.build/release/EventStreamDemo"
fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
# Run copies: another build replacing a binary mid-run must not touch this one.
mkdir -p "$work/esk-bin/$stamp"
cp "$ESK_BIN" "$work/esk-bin/$stamp/EventStreamDemo"
export ESK_BIN="$work/esk-bin/$stamp/EventStreamDemo"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

case $mode in
  cluster)
    export SSEBENCH_BIN="$work/bin/ssebench" OUT=${OUT:-$work/results/cluster-$stamp}
    mkdir -p "$OUT"
    {
      echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
      echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(git -C "$root" status --porcelain 2>/dev/null | grep -q . && echo ' (dirty)')"
      echo "kernel: $(uname -sr)  cpus: $(nproc)  model: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
      echo "redis: $(redis-server --version)"
      echo "go: $(go version)"
      echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$OUT/env.txt"
    python3 "$root/Benchmarks/cluster.py"
    ;;
  seam)
    [ -x "${ESK_BEFORE_BIN:-}" ] || { echo "cluster.sh seam: set ESK_BEFORE_BIN to the demo built before the seam (Benchmarks/README.md)" >&2; exit 2; }
    cp "$ESK_BEFORE_BIN" "$work/esk-bin/$stamp/EventStreamDemo-before"
    export ESK_BEFORE_BIN="$work/esk-bin/$stamp/EventStreamDemo-before"
    grep -q '^eventstreamkit-before ' "$work/peers.conf" || cat >>"$work/peers.conf" <<'PEER'
# EventStreamKit's demo built before the hub's registry/log seam (added by Benchmarks/cluster.sh seam):
eventstreamkit-before ${ESK_BEFORE_BIN:-eventstreamkit-before-not-built} serve --host 127.0.0.1 --port {PORT} --bench-rate {RATE} --bench-size {SIZE}
PEER
    runs=${SEAM_RUNS:-3}
    base=${OUT:-$work/results/seam-$stamp}
    mkdir -p "$base"
    for i in $(seq "$runs"); do
      # Alternate the order of the two builds from run to run (c-epoll first: the machine's reference).
      if (( i % 2 )); then order="c-epoll eventstreamkit-before eventstreamkit"; else order="c-epoll eventstreamkit eventstreamkit-before"; fi
      echo "== seam run $i/$runs: $order; load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$base/runs.log"
      (cd "$work" && NO_BUILD=1 OUT="$base/run$i" WORKLOADS="${WORKLOADS:-W3 W4}" PEERS="$order" ./run.sh) >"$base/run$i.log" 2>&1 || true
      tail -n 30 "$base/run$i.log"
    done
    python3 - "$base" "$runs" <<'PY' | tee "$base/table.md"
import json, os, statistics, sys
base, runs = sys.argv[1], int(sys.argv[2])
peers = ["c-epoll", "eventstreamkit-before", "eventstreamkit"]
rows = {p: {"w3": [], "c250": [], "c500": [], "max": []} for p in peers}
for i in range(1, runs + 1):
    path = os.path.join(base, f"run{i}", "results.jsonl")
    if not os.path.exists(path):
        continue
    rs = [json.loads(l) for l in open(path)]
    for p in peers:
        mine = [r for r in rs if r["peer"] == p]
        for r in mine:
            if r["workload"] == "W3": rows[p]["w3"].append(r["rss_per_conn_kib"])
            if r["workload"] == "W4" and r["step"] == "r250": rows[p]["c250"].append(r["server_cpu_pct"])
            if r["workload"] == "W4" and r["step"] == "r500": rows[p]["c500"].append(r["server_cpu_pct"])
        w4 = [r for r in mine if r["workload"] == "W4"]
        if w4:
            ok = [r["rate"] for r in w4 if r.get("sustained")]
            rows[p]["max"].append(max(ok) if ok else 0)
def m(xs, f):
    if not xs: return "-"
    s = f.format(statistics.median(xs))
    return s + " (" + ", ".join(f.format(x) for x in xs) + ")"
print(f"# W3 + W4 before and after the seam: medians of {runs} runs (each run's value in parentheses)\n")
print("| peer | W3 KiB per idle stream | W4 server CPU % at 250 ev/s | at 500 ev/s | highest sustained W4 ev/s |")
print("|---|---|---|---|---|")
for p in peers:
    r = rows[p]
    print(f"| {p} | {m(r['w3'], '{:.2f}')} | {m(r['c250'], '{:.0f}')} | {m(r['c500'], '{:.0f}')} | {m(r['max'], '{:.0f}')} |")
PY
    cat "$base/runs.log"
    ;;
  *) echo "usage: Benchmarks/cluster.sh [cluster|seam]" >&2; exit 2 ;;
esac
