#!/usr/bin/env bash
# Examples/test_example.sh PRODUCT: checks that Docs/Embedding.md's snippets are the examples'
# code, builds the example Examples/PRODUCT, starts it on a free
# port, checks it with curl -N and httpx-sse (clients_test.py), stops it with SIGTERM and
# checks that it shut down cleanly. Then starts it again, drains its hub with SIGUSR1 and
# checks that a new stream is refused with 503 and Retry-After while the server goes on.
# For the Hummingbird example, also checks that /metrics counts what the hub's observer saw
# (metrics_check.py): after clients_test.py, and exactly for one stream and one notification
# in the second run.
# Exits non-zero on any failure; every step is bounded by `timeout`. Each example's test.sh
# calls this.
set -euo pipefail
PRODUCT=${1:?usage: test_example.sh HummingbirdNotifications|VaporNotifications}
cd "$(dirname "$0")/$PRODUCT"
# Only the Hummingbird example serves the hub's observer hooks on /metrics (EventStreamMetrics.swift).
METRICS=$([ "$PRODUCT" = HummingbirdNotifications ] && echo 1 || echo 0)
# Not under .build: recreating a folder there makes SwiftPM recompile Hummingbird.
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/$PRODUCT-test.XXXXXX")

STATUS=0
echo "== Docs/Embedding.md's snippets are the examples' code"
python3 ../docs_snippets_test.py || STATUS=1

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

# Starts the app on port 0 (output in $LOGS/$1.stdout and .stderr); sets PID and URL.
start_app() {
    : > "$LOGS/$1.stdout"  # exists before the app opens it: the loop below reads it at once
    "$BIN" --port 0 >> "$LOGS/$1.stdout" 2> "$LOGS/$1.stderr" &
    PID=$!
    URL=""
    for _ in $(seq 100); do  # up to 10 s for the first line
        URL=$(head -n 1 "$LOGS/$1.stdout" | sed -n 's|^listening on \(http://.*\)$|\1|p')
        [ -n "$URL" ] && break
        kill -0 $PID 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$URL" ]; then
        echo "the app did not print its URL"; cat "$LOGS/$1.stdout" "$LOGS/$1.stderr"; exit 1
    fi
}

# Waits until /stats counts $1 clients (up to 5 s).
wait_for_clients() {
    for _ in $(seq 50); do
        curl -s --max-time 2 "$URL/stats" | grep -q "\"clients\":$1[,}]" && return 0
        sleep 0.1
    done
    return 1
}

# Sends SIGTERM and checks that the app exits cleanly within 20 s; sets STATUS=1 if not.
stop_app() {
    kill -TERM $PID
    if timeout 20 tail --pid=$PID -f /dev/null; then
        wait $PID && echo "the app stopped cleanly" || { echo "the app exited with status $?"; STATUS=1; }
    else
        echo "the app did not stop within 20 s"; STATUS=1
    fi
}

trap 'kill -KILL $PID 2>/dev/null || true' EXIT
start_app run
echo "== $PRODUCT listening on $URL"

timeout 180 python3 ../clients_test.py "$URL" $PID || STATUS=$?

if [ $METRICS = 1 ]; then
    # At least what clients_test.py did (it opens, replays, notifies and closes streams of its
    # own), and every stream it opened counted as closed: none is open now.
    echo "== /metrics after clients_test.py"
    timeout 30 python3 ../metrics_check.py "$URL" \
        'eventstream_connections_opened_total >= 5' \
        'eventstream_reconnections_total >= 1' \
        'eventstream_open_connections == 0' \
        'eventstream_connections_closed_total{reason="clientGone"} >= 1' \
        'eventstream_connection_duration_seconds_count >= 5' \
        'eventstream_events_published_total{event="notification"} >= 8' \
        'eventstream_events_published_total{event="other"} == 0' \
        'eventstream_deliveries_total >= 5' \
        'eventstream_events_without_recipients_total >= 1' \
        'eventstream_replays_total >= 1' \
        'eventstream_replayed_events_total >= 2' \
        'eventstream_bytes_written_total > 0' \
        || STATUS=1
fi

echo "== stopping $PRODUCT (SIGTERM) with a stream open"
timeout 30 curl -N -s -H "Authorization: Bearer token-alice" "$URL/events" > "$LOGS/open-stream" &
CURL=$!
wait_for_clients 1 || true
stop_app
if wait $CURL && grep -q '^retry: ' "$LOGS/open-stream"; then
    echo "the open stream was ended by the hub with '$(grep '^retry: ' "$LOGS/open-stream")'"
else
    echo "the open stream did not end with a retry"; STATUS=1
fi

echo "== draining $PRODUCT's hub (SIGUSR1) with a stream open, the server still running"
start_app drain
timeout 30 curl -N -s -H "Authorization: Bearer token-alice" "$URL/events" > "$LOGS/drained-stream" &
CURL=$!
wait_for_clients 1 || true
if [ $METRICS = 1 ]; then
    # A fresh app: one stream (alice's curl above) and one notification to her, counted exactly.
    echo "== /metrics after one stream and one notification"
    curl -s --max-time 5 -X POST -H 'Content-Type: application/json' -d '{"title":"metrics","body":"one"}' "$URL/notify/alice" > /dev/null \
        || { echo "the notification to alice was not sent"; STATUS=1; }
    for _ in $(seq 50); do grep -q '^event: notification' "$LOGS/drained-stream" && break; sleep 0.1; done
    timeout 30 python3 ../metrics_check.py "$URL" \
        'eventstream_connections_opened_total == 1' \
        'eventstream_reconnections_total == 0' \
        'eventstream_open_connections == 1' \
        'eventstream_events_published_total{event="notification"} == 1' \
        'eventstream_deliveries_total == 1' \
        'eventstream_events_without_recipients_total == 0' \
        || STATUS=1
fi
kill -USR1 $PID
if wait $CURL && grep -q '^retry: ' "$LOGS/drained-stream"; then
    echo "the open stream was ended by the hub with '$(grep '^retry: ' "$LOGS/drained-stream")'"
else
    echo "the open stream did not end with a retry"; STATUS=1
fi
# The stream ended after the hub stopped accepting streams: this one is refused.
REFUSED=$(timeout 10 curl -s -D - -o /dev/null -H "Authorization: Bearer token-alice" "$URL/events" | tr -d '\r' || true)
RETRY_AFTER=$(printf '%s\n' "$REFUSED" | sed -n 's/^[Rr]etry-[Aa]fter: *//p')
if printf '%s\n' "$REFUSED" | head -1 | grep -q '^HTTP/1.1 503' && [[ "$RETRY_AFTER" =~ ^[1-9][0-9]*$ ]]; then
    echo "a new stream was refused: 503 with Retry-After: $RETRY_AFTER"
else
    echo "a new stream was not refused with 503 and Retry-After:"; printf '%s\n' "$REFUSED"; STATUS=1
fi
if curl -s --max-time 5 "$URL/stats" | grep -q '"clients":0[,}]'; then
    echo "the server still serves: /stats answers with no client"
else
    echo "/stats did not answer after the drain"; STATUS=1
fi
if [ $METRICS = 1 ]; then
    # The drain ended the stream (reason shutdown), and the refused one never opened.
    echo "== /metrics after the drain"
    timeout 30 python3 ../metrics_check.py "$URL" \
        'eventstream_connections_opened_total == 1' \
        'eventstream_open_connections == 0' \
        'eventstream_connections_closed_total{reason="shutdown"} == 1' \
        'eventstream_connection_duration_seconds_count == 1' \
        'eventstream_bytes_written_total > 0' \
        || STATUS=1
fi
stop_app

if [ $STATUS -eq 0 ]; then
    rm -rf "$LOGS"
else
    echo "-- app stderr (last 30 lines of each run; all output kept in $LOGS)"; tail -30 "$LOGS"/*.stderr
fi
exit $STATUS
