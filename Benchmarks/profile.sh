#!/usr/bin/env bash
# Instructions per delivery, and where they go, under valgrind --tool=callgrind:
#
#   Benchmarks/profile.sh                        # eventstreamkit, eventstreamkit-hummingbird, hummingbird
#   NICE=-10 PEERS="vapor eventstreamkit-vapor" Benchmarks/profile.sh
#   NO_SETUP=1 BENCH_WORK=/tmp/bench Benchmarks/profile.sh   # peers already built there
#
# For each peer (names as in Benchmarks/compare.sh: the bench's peers.conf plus
# Benchmarks/bench-setup.sh's eventstreamkit, eventstreamkit-hummingbird, eventstreamkit-vapor,
# vapor), it starts the server under callgrind, pinned to CPU $SERVER_CPU, publishing RATE
# events/s of SIZE bytes, and the bench's load generator (bin/ssebench) with CLIENTS clients on
# CPU $GEN_CPU. The generator's window (DURATION + 4 s) starts SETTLE s after every client is
# connected; 1 s into it, callgrind's counters are zeroed (callgrind_control -z), and DURATION s
# later dumped (callgrind_control -d). The interval lies inside the window, away from its ends
# (the generator closes every stream when its window ends), so:
#   instructions per delivery = Ir in the dump / (deliveries/s the generator counted x interval)
# Then Benchmarks/callgrind_top.py lists the top TOP functions, self and inclusive, each also
# per delivery (callgrind_annotate, Swift names demangled; see that script for the details).
#
# These are instruction counts of user space under valgrind (the kernel's share, the sends and
# the wake-ups, is not in them), not time: they are repeatable on a busy machine. Valgrind runs
# the server's threads one at a time and about 50x slower, so RATE must stay low enough that the
# server keeps up under it (check "delivery ratio" and "missed" in the output: a server that
# falls behind batches more events per write, and its cost per delivery drops).
#
# On a busy machine the server under valgrind may get too little of its CPU to keep up even at a
# low rate (p50 latency in seconds, a delivery ratio above 1 as it catches up, header timeouts
# while connecting): NICE=-10 runs it ahead of other work for its minute or so (root only).
#
# Variables: PEERS, RATE (default 2), SIZE (100), CLIENTS (100), DURATION (20 s), SETTLE (5 s),
# TOP (15), NICE (0), CONC (10: connection attempts in flight, so that a slow server under
# valgrind is not sent 100 at once), SERVER_CPU (0), GEN_CPU (1), BENCH_WORK, OUT (default
# $BENCH_WORK/results/profile-<UTC time>), NO_SETUP=1. Everything is on loopback, every step is
# bounded by `timeout`, and the server and generator are stopped by PID.
set -u -o pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-"eventstreamkit eventstreamkit-hummingbird hummingbird"}
RATE=${RATE:-2}; SIZE=${SIZE:-100}; CLIENTS=${CLIENTS:-100}
DURATION=${DURATION:-20}; SETTLE=${SETTLE:-5}; TOP=${TOP:-15}
SERVER_CPU=${SERVER_CPU:-0}; GEN_CPU=${GEN_CPU:-1}; NICE=${NICE:-0}; CONC=${CONC:-10}
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }

if [[ -n "${NO_SETUP:-}" ]]; then
  BENCH=${BENCH_WORK:-/tmp/eventstreamkit-bench}
  export ESK_BIN=${ESK_BIN:-$root/.build/release/EventStreamDemo} ESK_HB_BIN=${ESK_HB_BIN:-} ESK_VAPOR_BIN=${ESK_VAPOR_BIN:-}
else
  . "$root/Benchmarks/bench-setup.sh"
  bench_setup "$PEERS" || exit 1
fi
OUT=${OUT:-$BENCH/results/profile-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
T0=$(date +%s)
log() { printf '[%4ds] %s\n' $(( $(date +%s) - T0 )) "$*" | tee -a "$OUT/profile.log" >&2; }
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "command: PEERS=\"$PEERS\" RATE=$RATE SIZE=$SIZE CLIENTS=$CLIENTS DURATION=$DURATION SETTLE=$SETTLE NICE=$NICE Benchmarks/profile.sh"
  echo "$(valgrind --version); $(swift --version 2>/dev/null | head -1)"
} >"$OUT/env.txt"

# Valgrind 3.19 (Debian 12) dies ("the 'impossible' happened", SIGSEGV) in every Swift program
# with an async main: libdispatch's main thread waits in sigsuspend() on a `static const`
# sigset_t, and valgrind's rt_sigsuspend wrapper writes to the mask it is given, which is
# read-only there. This preload copies the mask to the stack first; it changes nothing else.
shim="$BENCH/bin/valgrind-sigsuspend.so"
if [[ ! -f "$shim" ]]; then
  mkdir -p "$BENCH/bin"
  gcc -O2 -shared -fPIC -o "$shim" -x c - <<'C' || { log "cannot build $shim"; exit 1; }
#include <signal.h>
#include <unistd.h>
#include <sys/syscall.h>
int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, 8);  /* the kernel's sigset: 64 signals */
}
C
fi

# The peers' commands, as run.sh reads peers.conf.
declare -A PEER_CMD
while read -r name cmd; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  [[ "$cmd" == @* ]] && cmd=${cmd#* }
  PEER_CMD[$name]=$cmd
done <"$BENCH/peers.conf"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

stop() { # pid seconds: SIGTERM, then SIGKILL after `seconds`
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null
  for (( i = 0; i < $2 * 10; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { log "  $pid ignored SIGTERM for $2 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null; }
  wait "$pid" 2>/dev/null
}

summary=()
for peer in $PEERS; do
  [[ -n "${PEER_CMD[$peer]:-}" ]] || { log "unknown peer $peer"; continue; }
  port=$(free_port)
  c=${PEER_CMD[$peer]}; c=${c//\{PORT\}/$port}; c=${c//\{RATE\}/$RATE}; c=${c//\{SIZE\}/$SIZE}
  eval "argv=($c)"
  if ! (cd "$BENCH" && [[ -x "${argv[0]}" ]]); then log "skip $peer: ${argv[0]} not built"; continue; fi
  # Valgrind 3.19 cannot read the DWARF 5 that clang writes for the C modules of swift-nio and
  # others ("unhandled dwarf2 abbrev form code 0x25", then it gives up): every peer runs as a
  # copy without debug info. The symbol table stays, so functions keep their names; costs of
  # inlined code go to the function it was inlined into, and there are no file:line figures.
  bin=$(cd "$BENCH" && readlink -f "${argv[0]}")
  mkdir -p "$OUT/bin"
  objcopy --strip-debug "$bin" "$OUT/bin/$peer" || { log "skip $peer: objcopy failed"; continue; }
  argv[0]=$OUT/bin/$peer
  log "== $peer: ${argv[*]} (a copy of $bin without debug info)"
  cg="$OUT/$peer.callgrind"
  (cd "$BENCH" && LD_PRELOAD="$shim" exec nice -n "$NICE" taskset -c "$SERVER_CPU" valgrind --tool=callgrind --callgrind-out-file="$cg.%p" "${argv[@]}") >"$OUT/$peer.server.log" 2>&1 &
  spid=$!
  up=0
  for (( i = 0; i < 1200; i++ )); do   # up to 120 s: valgrind starts slowly
    kill -0 "$spid" 2>/dev/null || break
    if ss -Hltn "sport = :$port" | grep -q .; then up=1; break; fi
    sleep 0.1
  done
  if (( ! up )); then log "  $peer did not start under valgrind (see $OUT/$peer.server.log)"; stop "$spid" 10; continue; fi
  sleep 1
  timeout $(( DURATION + SETTLE + 300 )) taskset -c "$GEN_CPU" "$BENCH/bin/ssebench" -url "http://127.0.0.1:$port/events" \
      -clients "$CLIENTS" -duration "$(( DURATION + 4 ))s" -settle "${SETTLE}s" -server-pid "$spid" -expect-rate "$RATE" \
      -conc "$CONC" -connect-timeout 150s -label "$peer.profile" >"$OUT/$peer.gen.txt" 2>"$OUT/$peer.gen.err" &
  gpid=$!
  connected=0
  for (( i = 0; i < 1600; i++ )); do   # up to 160 s for every client to connect
    grep -q '^connected ' "$OUT/$peer.gen.err" 2>/dev/null && { connected=1; break; }
    kill -0 "$gpid" 2>/dev/null || break
    sleep 0.1
  done
  if (( ! connected )); then
    log "  the generator did not connect (see $OUT/$peer.gen.err)"; stop "$gpid" 5; stop "$spid" 30; continue
  fi
  # The generator's window starts SETTLE s after its "connected" line and lasts DURATION + 4 s;
  # the callgrind interval lies inside it, from 1 s after its start to DURATION s later, so it
  # holds neither the connecting nor the closing of the streams at the window's end. Zeroing
  # and dumping go through vgdb and take a moment each: the zero is taken as the middle of its
  # call, and the dump is asked for DURATION s after that.
  sleep "$(( SETTLE + 1 ))"
  z0=$(date +%s%N)
  timeout 60 callgrind_control -z "$spid" >/dev/null 2>>"$OUT/$peer.server.log"
  z1=$(date +%s%N)
  target=$(( (z0 + z1) / 2 + DURATION * 1000000000 ))
  now=$(date +%s%N)
  (( target > now )) && sleep "$(( (target - now) / 1000000000 )).$(printf '%09d' $(( (target - now) % 1000000000 )))"
  d0=$(date +%s%N)
  timeout 120 callgrind_control -d "$spid" >/dev/null 2>>"$OUT/$peer.server.log"
  d1=$(date +%s%N)
  wait "$gpid"; grc=$?
  stop "$spid" 60
  dump=$(ls "$cg.$spid".* 2>/dev/null | grep -E '\.[0-9]+\.[0-9]+$' | head -1)
  js=$(tail -n1 "$OUT/$peer.gen.txt")
  if [[ $grc -ne 0 || "$js" != \{* || -z "$dump" ]]; then
    log "  failed: generator rc=$grc, dump '${dump}' (see $OUT/$peer.*)"; continue
  fi
  ir=$(awk '/^(summary|totals):/{print $2; exit}' "$dump")
  events=$(python3 -c 'import json, sys; print(round(json.loads(sys.argv[1])["deliveries_per_s"] * (int(sys.argv[3]) - (int(sys.argv[2]) / 2 + int(sys.argv[4]) / 2)) / 1e9))' "$js" "$z0" "$d0" "$z1")
  line=$(python3 - "$peer" "$ir" "$js" "$z0" "$z1" "$d0" "$d1" <<'PY'
import json, sys
peer, ir, js = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
z0, z1, d0, d1 = (int(t) / 1e9 for t in sys.argv[4:8])
interval = d0 - (z0 + z1) / 2  # from the zero (middle of its call) to the dump's request
deliveries = js["deliveries_per_s"] * interval  # the generator's rate over its whole window
print(f"| {peer} | {ir / deliveries:,.0f} | {ir:,} | {deliveries:,.0f} | {js['deliveries_per_s']:,.1f} | "
      f"{js.get('delivery_ratio', 0):.3f} | {js['missed']} | {js['lat_p50_ms']:.1f} / {js['lat_p99_ms']:.1f} | "
      f"{js['duration_s']:.2f} / {interval:.2f} (zero {z1 - z0:.2f}, dump {d1 - d0:.2f}) |")
PY
)
  summary+=("$line")
  log "  $line"
  python3 "$root/Benchmarks/callgrind_top.py" "$dump" "$events" "$TOP" "$OUT/$peer"
done

{
  echo "# callgrind profiles ($(basename "$OUT"))"
  echo
  echo '```'; cat "$OUT/env.txt"; echo '```'
  echo
  echo "Instruction counts of the server's user space under valgrind, over the generator's window; not time."
  echo
  echo "Ir per delivery = Ir between zero and dump / deliveries in that interval (the generator's"
  echo "deliveries/s over its window, which holds the interval, x the interval)."
  echo
  echo "| peer | Ir per delivery | Ir in interval | deliveries in interval | deliveries/s (generator) | delivery ratio | missed | p50 / p99 ms (under valgrind) | window s: generator / callgrind |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${summary[@]}"
  for peer in $PEERS; do
    for mode in inclusive self; do
      [[ -s "$OUT/$peer.top-$mode.txt" ]] || continue
      echo; echo "## $peer: top $TOP functions, $mode"; echo; echo '```'; cat "$OUT/$peer.top-$mode.txt"; echo '```'
    done
    if [[ -s "$OUT/$peer.by-library.txt" ]]; then
      echo; echo "## $peer: self cost by shared object"; echo; echo '```'; cat "$OUT/$peer.by-library.txt"; echo '```'
    fi
  done
} | tee "$OUT/profile.md"
log "done in $(( $(date +%s) - T0 ))s: $OUT/profile.md (whole annotations: $OUT/<peer>.annotate.txt; dumps: $OUT/<peer>.callgrind.<pid>.1, open with callgrind_annotate or kcachegrind)"
