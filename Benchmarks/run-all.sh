#!/usr/bin/env bash
# Every benchmark in one command, from anywhere:
#   Benchmarks/run-all.sh                 # end-to-end side by side (about 15 min), then micro
#   WORKLOADS="W4" Benchmarks/run-all.sh  # any of ../shared/bench/run.sh's variables pass through
#   SKIP_E2E=1 Benchmarks/run-all.sh      # micro-benchmarks only
#
# End to end: ../shared/bench (load generator, peers, run.sh) is copied to $BENCH_WORK (the
# shared folder may be read-only), EventStreamKit's demo in bench mode is added as a peer
# (release build), and, when built, the Hummingbird embedding example too
# (Examples/HummingbirdNotifications, bench flags --bench-rate/--bench-size). Needs go (Debian golang-go),
# gcc, taskset, ss; run.sh builds what is missing. Results land in $BENCH_WORK/results/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bench_src=${BENCH_SRC:-$root/../shared/bench}
work=${BENCH_WORK:-/tmp/eventstreamkit-bench}

if [ -z "${SKIP_E2E:-}" ]; then
  command -v go >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; }
  swift build -c release --product EventStreamDemo --package-path "$root"
  mkdir -p "$work"
  # Copy the bench, keeping what earlier runs built (bin/, .venv/, peers' .build/).
  (cd "$bench_src" && tar cf - --exclude=./results --exclude=./bin --exclude=./.venv --exclude='*/.build' .) | (cd "$work" && tar xf -)
  export ESK_BIN="$root/.build/release/EventStreamDemo"
  hb_example="$root/Examples/HummingbirdNotifications"
  if [ -d "$hb_example" ] && [ -n "${WITH_EMBEDDING:-1}" ]; then
    swift build -c release --package-path "$hb_example"
    export ESK_HB_BIN
    ESK_HB_BIN="$(swift build -c release --package-path "$hb_example" --show-bin-path)/HummingbirdNotifications"
    grep -q '^eventstreamkit-hummingbird' "$work/peers.conf" || cat >>"$work/peers.conf" <<'PEER'
# EventStreamKit embedded in Hummingbird 2 (Examples/HummingbirdNotifications in bench mode; added by Benchmarks/run-all.sh):
eventstreamkit-hummingbird  ${ESK_HB_BIN:-esk-hummingbird-not-built} --port {PORT} --bench-rate {RATE} --bench-size {SIZE}
PEER
  fi
  (cd "$work" && PEERS="${PEERS:-c-epoll go-nethttp hummingbird eventstreamkit eventstreamkit-hummingbird}" ./run.sh)
fi

echo "== micro-benchmarks (ratios against baselines run in the same process)"
swift run -c release --package-path "$root/Benchmarks" --scratch-path "$root/.build-bench" WireBenchmarks
swift run -c release --package-path "$root/Benchmarks" --scratch-path "$root/.build-bench" FanoutBenchmarks
