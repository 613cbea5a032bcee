#!/usr/bin/env bash
# Every benchmark in one command, from anywhere:
#   Benchmarks/run-all.sh                 # end-to-end side by side (about 15 min), then micro
#   WORKLOADS="W4" Benchmarks/run-all.sh  # any of ../shared/bench/run.sh's variables pass through
#   SKIP_E2E=1 Benchmarks/run-all.sh      # micro-benchmarks only
#   PEERS="c-epoll vapor eventstreamkit-vapor" Benchmarks/run-all.sh   # the Vapor peers too
#
# End to end: ../shared/bench (load generator, peers, run.sh) is copied to $BENCH_WORK (the
# shared folder may be read-only), EventStreamKit's demo in bench mode is added as a peer
# (release build), and the Hummingbird embedding example too (Examples/HummingbirdNotifications,
# bench flags --bench-rate/--bench-size; WITH_EMBEDDING= leaves it out). peers.conf also gets
# `vapor` (Benchmarks/peers/vapor-sse) and `eventstreamkit-vapor` (Examples/VaporNotifications in
# bench mode), run when named in PEERS. Benchmarks/bench-setup.sh does this setup (compare.sh
# shares it). Needs go (Debian golang-go), gcc, taskset, ss; run.sh builds what is missing.
# Results land in $BENCH_WORK/results/. For ratios over alternating rounds: Benchmarks/compare.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-/tmp/eventstreamkit-bench}

if [ -z "${SKIP_E2E:-}" ]; then
  default_peers="c-epoll go-nethttp hummingbird eventstreamkit"
  [ -n "${WITH_EMBEDDING:-1}" ] && [ -d "$root/Examples/HummingbirdNotifications" ] && default_peers+=" eventstreamkit-hummingbird"
  peers=${PEERS:-$default_peers}
  # Copies the bench to $BENCH_WORK, adds EventStreamKit's peers (and the Vapor peers) to its
  # peers.conf, builds what the selected peers need (Benchmarks/bench-setup.sh).
  . "$root/Benchmarks/bench-setup.sh"
  BENCH_WORK=$work bench_setup "$peers"
  (cd "$work" && PEERS="$peers" ./run.sh)
fi

echo "== micro-benchmarks (ratios against baselines run in the same process)"
swift run -c release --package-path "$root/Benchmarks" --scratch-path "$root/.build-bench" WireBenchmarks
swift run -c release --package-path "$root/Benchmarks" --scratch-path "$root/.build-bench" FanoutBenchmarks
