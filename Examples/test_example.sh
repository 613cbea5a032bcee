#!/usr/bin/env bash
# Examples/test_example.sh PRODUCT: builds the example Examples/PRODUCT, starts it on a free
# port, checks it with curl -N and httpx-sse (clients_test.py), stops it with SIGTERM and
# checks that it shut down cleanly. Exits non-zero on any failure; every step is bounded by
# `timeout`. Each example's test.sh calls this.
set -euo pipefail
PRODUCT=${1:?usage: test_example.sh HummingbirdNotifications|VaporNotifications}
cd "$(dirname "$0")/$PRODUCT"
# Not under .build: recreating a folder there makes SwiftPM recompile Hummingbird.
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/$PRODUCT-test.XXXXXX")

echo "== building $PRODUCT"
if ! timeout 1500 swift build > "$LOGS/build.log" 2>&1; then
    tail -40 "$LOGS/build.log"; echo "build failed"; exit 1
fi
tail -1 "$LOGS/build.log"
BIN="$(timeout 120 swift build --show-bin-path)/$PRODUCT"

if ! python3 -c 'import httpx, httpx_sse' 2>/dev/null; then
    echo "== installing httpx and httpx-sse"
    timeout 300 python3 -m pip install --quiet httpx httpx-sse
fi

: > "$LOGS/stdout"  # exists before the app opens it: the loop below reads it at once
"$BIN" --port 0 >> "$LOGS/stdout" 2> "$LOGS/stderr" &
PID=$!
trap 'kill -KILL $PID 2>/dev/null || true' EXIT

URL=""
for _ in $(seq 100); do  # up to 10 s for the first line
    URL=$(head -n 1 "$LOGS/stdout" | sed -n 's|^listening on \(http://.*\)$|\1|p')
    [ -n "$URL" ] && break
    kill -0 $PID 2>/dev/null || break
    sleep 0.1
done
if [ -z "$URL" ]; then
    echo "the app did not print its URL"; cat "$LOGS/stdout" "$LOGS/stderr"; exit 1
fi
echo "== $PRODUCT listening on $URL"

STATUS=0
timeout 180 python3 ../clients_test.py "$URL" || STATUS=$?

echo "== stopping $PRODUCT (SIGTERM) with a stream open"
timeout 30 curl -N -s -H "Authorization: Bearer token-alice" "$URL/events" > "$LOGS/open-stream" &
CURL=$!
for _ in $(seq 50); do
    curl -s --max-time 2 "$URL/stats" | grep -q '"clients":1[,}]' && break
    sleep 0.1
done
kill -TERM $PID
if timeout 20 tail --pid=$PID -f /dev/null; then
    wait $PID && echo "the app stopped cleanly" || { echo "the app exited with status $?"; STATUS=1; }
else
    echo "the app did not stop within 20 s"; STATUS=1
fi
if wait $CURL && grep -q '^retry: ' "$LOGS/open-stream"; then
    echo "the open stream was ended by the hub with '$(grep '^retry: ' "$LOGS/open-stream")'"
else
    echo "the open stream did not end with a retry"; STATUS=1
fi
if [ $STATUS -eq 0 ]; then
    rm -rf "$LOGS"
else
    echo "-- app stderr (last 30 lines; all output kept in $LOGS)"; tail -30 "$LOGS/stderr"
fi
exit $STATUS
