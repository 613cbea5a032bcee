#!/usr/bin/env bash
# Builds Examples/Interop and runs its two checks (README.md there says what they prove):
#   1. OpenAPIReadsHub: swift-openapi-runtime's SSE decoder reads a live stream from our
#      HTTPServer, and both parsers are compared with the WHATWG spec on a corpus.
#   2. ChatCompletionsClient: our EventSource POSTs to an OpenAI-style endpoint served by
#      chat_server.py (Python standard library), and a non-retryable POST is never resent.
# Exits non-zero on any failure; every step is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")"
START=$(date +%s)
# Not under .build: recreating a folder there would make SwiftPM rebuild.
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/Interop-test.XXXXXX")
SERVER=""
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true' EXIT

echo "== building Interop (swift-openapi-runtime and EventStreamKit)"
if ! timeout 1500 swift build > "$LOGS/build.log" 2>&1; then
    tail -40 "$LOGS/build.log"; echo "build failed"; exit 1
fi
tail -1 "$LOGS/build.log"
# Zero warnings in this package's own code (dependencies' warnings are theirs).
if grep -E "Examples/Interop/Sources/.*warning:" "$LOGS/build.log"; then
    echo "warnings in Examples/Interop"; exit 1
fi
BIN=$(timeout 120 swift build --show-bin-path)
BUILT=$(date +%s)
echo "-- built in $((BUILT - START)) s"

STATUS=0
echo "== check 1: swift-openapi-runtime reads EventStreamKit's HTTPServer"
timeout 120 "$BIN/OpenAPIReadsHub" || STATUS=1

echo "== check 2: EventSource POSTs to an OpenAI-style Python server"
: > "$LOGS/server.out"
python3 chat_server.py > "$LOGS/server.out" 2> "$LOGS/server.err" &
SERVER=$!
URL=""
for _ in $(seq 100); do  # up to 10 s for its first line
    URL=$(sed -n 's|^listening on \(http://.*\)$|\1|p' "$LOGS/server.out")
    [ -n "$URL" ] && break
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$URL" ]; then
    echo "chat_server.py did not print its URL"; cat "$LOGS/server.out" "$LOGS/server.err"; STATUS=1
else
    timeout 120 "$BIN/ChatCompletionsClient" "$URL" || STATUS=1
fi
kill "$SERVER" 2>/dev/null || true
wait "$SERVER" 2>/dev/null || true
SERVER=""

echo "-- Interop: $(( $(date +%s) - START )) s in all ($((BUILT - START)) s building, $(( $(date +%s) - BUILT )) s checking)"
if [ $STATUS -eq 0 ]; then
    rm -rf "$LOGS"
else
    echo "-- chat_server.py's log (all output kept in $LOGS)"; tail -30 "$LOGS/server.err"
fi
exit $STATUS
