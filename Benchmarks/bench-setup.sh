# Sourced by Benchmarks/run-all.sh, compare.sh and profile.sh (not run on its own):
#   . "$root/Benchmarks/bench-setup.sh"; bench_setup "c-epoll eventstreamkit vapor"
#
# bench_setup PEERS copies ../shared/bench (the shared folder may be read-only) to $BENCH_WORK
# (default /tmp/eventstreamkit-bench), keeping what earlier runs built there (bin/, .venv/,
# the peers' .build/), adds EventStreamKit's peers and the plain Vapor peer to its peers.conf,
# and builds what the named PEERS need, and nothing else:
#   ssebench (the load generator)   always: go build, a few seconds
#   c-epoll, c-epoll-batch          gcc
#   go-nethttp                      go build
#   hummingbird                     the bench's peers/hummingbird-sse (swift build -c release, once)
#   python-sse-starlette            .venv with sse-starlette and uvicorn[standard]
#   eventstreamkit                  the demo in bench mode (swift build -c release here);
#                                   ESK_BIN=path uses that binary instead
#   eventstreamkit-base             another build of the demo (a commit before a change): ESK_BASE_BIN=path,
#                                   never built here
#   eventstreamkit-hummingbird      Examples/HummingbirdNotifications in bench mode; ESK_HB_BIN=path
#   eventstreamkit-vapor            Examples/VaporNotifications in bench mode; ESK_VAPOR_BIN=path
#   eventstreamkit-hummingbird-base, eventstreamkit-vapor-base
#                                   other builds of the examples, for before/after figures:
#                                   ESK_HB_BASE_BIN=path, ESK_VAPOR_BASE_BIN=path, never built here
#   vapor                           Benchmarks/peers/vapor-sse, copied to the bench's peers/ and
#                                   built there (first build about 10 minutes)
# It sets BENCH (the bench work folder) and exports ESK_BIN, ESK_HB_BIN, ESK_VAPOR_BIN, which
# peers.conf names. run.sh can then run with NO_BUILD=1. Needs go (installed from Debian's
# golang-go when missing), gcc, swift, taskset, ss. A failed build is reported; run.sh skips a
# peer whose binary is missing.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bench_log() { printf '[setup] %s\n' "$*" >&2; }

# bench_swift_build NAME LOG ARGS...: a release build, bounded in time; prints the log's tail on failure.
bench_swift_build() {
  local name=$1 log=$2; shift 2
  bench_log "building $name (swift build -c release $*)"
  if ! timeout 2400 swift build -c release "$@" >"$log" 2>&1; then
    tail -30 "$log" >&2
    bench_log "$name: build failed (log: $log)"
    return 1
  fi
}

bench_setup() {
  local peers=" $1 " src=${BENCH_SRC:-$bench_root/../shared/bench}
  BENCH=${BENCH_WORK:-/tmp/eventstreamkit-bench}
  mkdir -p "$BENCH/build-logs"
  command -v go >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; }
  # Copy the bench, keeping what earlier runs built (bin/, .venv/, peers' .build/).
  (cd "$src" && tar cf - --exclude=./results --exclude=./bin --exclude=./.venv --exclude='*/.build' .) | (cd "$BENCH" && tar xf -)
  # tar keeps the sources' times, so the peers' release builds below stay incremental.
  mkdir -p "$BENCH/peers/vapor-sse"
  (cd "$bench_root/Benchmarks/peers/vapor-sse" && tar cf - --exclude=./.build --exclude='./.build-*' --exclude=./Package.resolved .) | (cd "$BENCH/peers/vapor-sse" && tar xf -)
  chmod -R u+w "$BENCH"

  grep -q '^eventstreamkit-hummingbird ' "$BENCH/peers.conf" || cat >>"$BENCH/peers.conf" <<'PEER'
# EventStreamKit embedded in Hummingbird 2 (Examples/HummingbirdNotifications in bench mode; added by Benchmarks/bench-setup.sh):
eventstreamkit-hummingbird  ${ESK_HB_BIN:-esk-hummingbird-not-built} --port {PORT} --bench-rate {RATE} --bench-size {SIZE}
PEER
  grep -q '^eventstreamkit-base ' "$BENCH/peers.conf" || cat >>"$BENCH/peers.conf" <<'PEER'
# Another build of the demo, for before/after figures in one sitting: ESK_BASE_BIN names it (added by Benchmarks/bench-setup.sh):
eventstreamkit-base         ${ESK_BASE_BIN:-esk-base-not-given} serve --host 127.0.0.1 --port {PORT} --bench-rate {RATE} --bench-size {SIZE}
PEER
  grep -q '^eventstreamkit-hummingbird-base ' "$BENCH/peers.conf" || cat >>"$BENCH/peers.conf" <<'PEER'
# Other builds of the examples, for before/after figures in one sitting (added by Benchmarks/bench-setup.sh):
eventstreamkit-hummingbird-base  ${ESK_HB_BASE_BIN:-esk-hummingbird-base-not-given} --port {PORT} --bench-rate {RATE} --bench-size {SIZE}
eventstreamkit-vapor-base   ${ESK_VAPOR_BASE_BIN:-esk-vapor-base-not-given} --port {PORT} --bench-rate {RATE} --bench-size {SIZE}
PEER
  grep -q '^vapor ' "$BENCH/peers.conf" || cat >>"$BENCH/peers.conf" <<'PEER'
# Plain Vapor 4: broadcaster actor -> AsyncStream per client -> Response.Body(asyncStream:) (Benchmarks/peers/vapor-sse; added by Benchmarks/bench-setup.sh):
vapor                       peers/vapor-sse/.build/release/VaporSSE --port {PORT} --rate {RATE} --size {SIZE}
PEER
  grep -q '^eventstreamkit-vapor ' "$BENCH/peers.conf" || cat >>"$BENCH/peers.conf" <<'PEER'
# EventStreamKit embedded in Vapor 4 (Examples/VaporNotifications in bench mode; added by Benchmarks/bench-setup.sh):
eventstreamkit-vapor        ${ESK_VAPOR_BIN:-esk-vapor-not-built} --port {PORT} --bench-rate {RATE} --bench-size {SIZE}
PEER

  local logs=$BENCH/build-logs
  mkdir -p "$BENCH/bin"
  (cd "$BENCH/ssebench" && go build -o ../bin/ssebench .) || { bench_log "ssebench build failed"; return 1; }
  if [[ $peers == *" c-epoll "* || $peers == *" c-epoll-batch "* ]]; then
    gcc -O2 -o "$BENCH/bin/sse_epoll" "$BENCH/peers/c-epoll/sse_epoll.c" || bench_log "sse_epoll build failed"
  fi
  if [[ $peers == *" go-nethttp "* ]]; then
    (cd "$BENCH/peers/go-nethttp" && go build -o ../../bin/go-nethttp .) || bench_log "go-nethttp build failed"
  fi
  if [[ $peers == *" hummingbird "* ]]; then
    local hb=$BENCH/peers/hummingbird-sse/.build/release/HummingbirdSSE
    if [[ ! -x $hb || $BENCH/peers/hummingbird-sse/Sources/HummingbirdSSE/main.swift -nt $hb ]]; then
      bench_swift_build hummingbird-sse "$logs/hummingbird-sse.log" --package-path "$BENCH/peers/hummingbird-sse" || true
    fi
  fi
  if [[ $peers == *" python-sse-starlette "* ]]; then
    if [[ ! -x $BENCH/.venv/bin/python ]] || ! "$BENCH/.venv/bin/python" -c 'import sse_starlette, uvicorn' 2>/dev/null; then
      bench_log "creating .venv (pip install sse-starlette uvicorn[standard])"
      (python3 -m venv "$BENCH/.venv" && "$BENCH/.venv/bin/pip" install -q sse-starlette 'uvicorn[standard]') >"$logs/pip.log" 2>&1 || bench_log "venv setup failed"
    fi
  fi
  if [[ $peers == *" vapor "* ]]; then
    bench_swift_build vapor-sse "$logs/vapor-sse.log" --package-path "$BENCH/peers/vapor-sse" || true
  fi
  if [[ $peers == *" eventstreamkit "* && ! -x ${ESK_BIN:-} ]]; then
    bench_swift_build EventStreamDemo "$logs/eventstreamkit.log" --product EventStreamDemo --package-path "$bench_root" || true
    ESK_BIN="$bench_root/.build/release/EventStreamDemo"
  fi
  export ESK_BIN ESK_BASE_BIN ESK_HB_BASE_BIN ESK_VAPOR_BASE_BIN
  local example
  if [[ $peers == *" eventstreamkit-hummingbird "* && ! -x ${ESK_HB_BIN:-} ]]; then
    example=$bench_root/Examples/HummingbirdNotifications
    bench_swift_build HummingbirdNotifications "$logs/eventstreamkit-hummingbird.log" --package-path "$example" || true
    ESK_HB_BIN="$(swift build -c release --package-path "$example" --show-bin-path)/HummingbirdNotifications"
  fi
  export ESK_HB_BIN
  if [[ $peers == *" eventstreamkit-vapor "* && ! -x ${ESK_VAPOR_BIN:-} ]]; then
    example=$bench_root/Examples/VaporNotifications
    bench_swift_build VaporNotifications "$logs/eventstreamkit-vapor.log" --package-path "$example" || true
    ESK_VAPOR_BIN="$(swift build -c release --package-path "$example" --show-bin-path)/VaporNotifications"
  fi
  export ESK_VAPOR_BIN
  return 0
}
