#!/usr/bin/env bash
# Peers side by side in alternating rounds, medians over the rounds and ratios to a baseline
# peer: every comparison is one command.
#
#   BASELINE=c-epoll PEERS="c-epoll eventstreamkit" WORKLOADS="W4" ROUNDS=3 Benchmarks/compare.sh
#   PEERS="hummingbird eventstreamkit-hummingbird vapor eventstreamkit-vapor" Benchmarks/compare.sh
#   QUICK=1 PEERS="vapor" WORKLOADS=W4 Benchmarks/compare.sh     # smoke test: 1 round, short windows
#
# Round 1 runs every workload for every peer (W1: A, B, C; then W2: A, B, C; ...), round 2 the
# same again, and so on, so that the machine's drift and other people's builds hit every peer
# alike. ROTATE=1 also rotates the peers' order each round (round 2: B, C, A). Each (round,
# workload, peer) is one run of the bench's run.sh (NO_BUILD=1, PEERS=that peer,
# WORKLOADS=that workload) in its own folder, each server on fresh ports.
#
# Figures, from the bench's results.jsonl (fields as ../shared/bench/report.py reads them):
#   W4  server CPU % at 250 and 500 ev/s (x 100 clients), highest sustained rate
#   W2  latency p99 (10,000 clients x 1 ev/s)
#   W3  KiB of resident memory per idle stream
#   W1  latency p50 and p99 (1,000 clients x 10 ev/s)
#   and the events missed in W1 + W2 (must be 0)
# Printed: each figure's median over the rounds (min-max beside it), and the ratio of each
# peer's median to BASELINE's median; then every round's values. Also written to
# $OUT/compare.md and $OUT/compare.json.
#
# Variables: PEERS (default "c-epoll eventstreamkit"), BASELINE (default: the first of PEERS),
# WORKLOADS (default W4), ROUNDS (default 3; 1 with QUICK=1), ROTATE, QUICK (run.sh's short
# windows and smaller W2/W3), BENCH_WORK (default /tmp/eventstreamkit-bench), OUT (default
# $BENCH_WORK/results/compare-<UTC time>), NO_SETUP=1 (use the bench work folder as it is: no
# copy, no build). run.sh's own variables (W4_RATES, W4_DUR, W2_CLIENTS, SERVER_CPU, ...) pass
# through. Peer names are those of the bench's peers.conf plus what Benchmarks/bench-setup.sh
# adds: eventstreamkit, eventstreamkit-hummingbird, eventstreamkit-vapor, vapor.
# Everything runs on loopback; every run is bounded by run.sh's own limits.
set -u -o pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-"c-epoll eventstreamkit"}
read -r -a peer_list <<<"$PEERS"
BASELINE=${BASELINE:-${peer_list[0]}}
WORKLOADS=${WORKLOADS:-W4}
if [[ -n "${QUICK:-}" ]]; then ROUNDS=${ROUNDS:-1}; else ROUNDS=${ROUNDS:-3}; fi
[[ " $PEERS " == *" $BASELINE "* ]] || { echo "BASELINE=$BASELINE is not one of PEERS=\"$PEERS\"" >&2; exit 2; }

if [[ -n "${NO_SETUP:-}" ]]; then
  BENCH=${BENCH_WORK:-/tmp/eventstreamkit-bench}
  export ESK_BIN ESK_HB_BIN ESK_VAPOR_BIN
  ESK_BIN=${ESK_BIN:-$root/.build/release/EventStreamDemo}
else
  . "$root/Benchmarks/bench-setup.sh"
  bench_setup "$PEERS" || exit 1
fi
OUT=${OUT:-$BENCH/results/compare-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
T0=$(date +%s)
log() { printf '[%4ds] %s\n' $(( $(date +%s) - T0 )) "$*" | tee -a "$OUT/compare.log" >&2; }
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "command: BASELINE=$BASELINE PEERS=\"$PEERS\" WORKLOADS=\"$WORKLOADS\" ROUNDS=$ROUNDS${QUICK:+ QUICK=$QUICK}${ROTATE:+ ROTATE=$ROTATE} Benchmarks/compare.sh"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/env.txt"
log "bench in $BENCH, output in $OUT; $ROUNDS round(s) of [$WORKLOADS] x [$PEERS], baseline $BASELINE"

port=${BASE_PORT:-18200}
for (( round = 1; round <= ROUNDS; round++ )); do
  order=("${peer_list[@]}")
  if [[ -n "${ROTATE:-}" ]]; then
    shift_by=$(( (round - 1) % ${#peer_list[@]} ))
    order=("${peer_list[@]:shift_by}" "${peer_list[@]:0:shift_by}")
  fi
  for wl in $WORKLOADS; do
    for peer in "${order[@]}"; do
      dir="$OUT/round$round/$wl-$peer"
      mkdir -p "$dir"
      log "round $round/$ROUNDS: $wl $peer"
      (cd "$BENCH" && NO_BUILD=1 PEERS="$peer" WORKLOADS="$wl" OUT="$dir" BASE_PORT="$port" ./run.sh) >"$dir/run.out" 2>&1
      grep -E ': connected|skip |unknown|did not start|generator failed' "$dir/run.log" 2>/dev/null | sed 's/^\[ *[0-9]*s\] */    /' >&2
      port=$(( port + 20 ))   # fresh ports for every run.sh (W4 uses one per step)
      (( port > 28000 )) && port=${BASE_PORT:-18200}
    done
  done
done

python3 "$root/Benchmarks/compare_report.py" "$OUT" "$BASELINE" "$PEERS" | tee "$OUT/compare.md"
log "done in $(( $(date +%s) - T0 ))s: $OUT/compare.md"
