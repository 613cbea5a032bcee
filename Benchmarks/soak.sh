#!/usr/bin/env bash
# A bounded soak of the demo server (issue 9): a few thousand users connect, read and
# disconnect at random while events are broadcast and sent per user; then checks that no
# event was lost or duplicated outside announced gaps, that the server's resident memory
# stayed flat after warm-up, and that its descriptors came back to the baseline.
#
#   Benchmarks/soak.sh [DURATION_SECONDS=600] [USERS=2000] [extra Soak options...]
#
# Run from anywhere; builds in release (the demo in .build, Soak in .build-bench).
# Exit status: Soak's (0 pass, 1 fail, 2 usage or setup error), 124 if it overran.
set -euo pipefail

DURATION="${1:-600}"
USERS="${2:-2000}"
shift $(( $# > 2 ? 2 : $# ))

cd "$(dirname "$0")/.."

echo "building EventStreamDemo (release)..."
swift build -c release --product EventStreamDemo
echo "building Soak (release)..."
swift build -c release --package-path Benchmarks --scratch-path .build-bench --product Soak

# Run copies: another build replacing a binary mid-run must not touch this one.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cp .build/release/EventStreamDemo "$WORK/EventStreamDemo"
cp .build-bench/release/Soak "$WORK/Soak"

# A few thousand client sockets in one process, and as many in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 20000 || true
echo "descriptor limit $(ulimit -n); bounded by timeout $((DURATION + 120)) s"

set +e
timeout --signal=TERM --kill-after=10 "$((DURATION + 120))" \
    "$WORK/Soak" --server-binary "$WORK/EventStreamDemo" --duration "$DURATION" --users "$USERS" "$@"
STATUS=$?
set -e
if [ "$STATUS" -eq 124 ]; then echo "soak.sh: Soak overran its $((DURATION + 120)) s bound" >&2; fi
exit "$STATUS"
