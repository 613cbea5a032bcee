#!/usr/bin/env bash
# run.sh BINARY [script options, e.g. --transport builtin, --legacy-flags]
# Runs every hostile-server script in this folder against `BINARY listen` (an EventStreamDemo),
# one after the other, each capped by `timeout`. Prints one PASS/FAIL/SKIP line per scenario and
# transport, with the figure observed, and exits non-zero if any scenario failed or any script
# broke. About 2.5 minutes when the client passes; failing scenarios wait out their own caps,
# so a failing run takes longer (never more than the sum of the caps below, 8.5 minutes).
set -u
if [ $# -lt 1 ]; then
    echo "usage: $0 BINARY [--transport builtin|foundation] [--legacy-flags] [--only REGEX]" >&2
    exit 2
fi
binary=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
failed=()
start=$SECONDS
# script:cap in seconds (each script's own hard timeout is 8 s shorter)
for entry in numbers.py:75 spin.py:60 redirects.py:45 timeouts.py:45 protocol.py:60 post.py:45 \
             memory.py:75 content.py:45 tls.py:45; do
    script=${entry%%:*}
    cap=${entry##*:}
    echo "== ${script%.py}"
    timeout -k 5 "$cap" "$python" "$here/$script" "$binary" "$@" --timeout $((cap - 8))
    status=$?
    if [ $status -ne 0 ]; then
        failed+=("${script%.py} (exit $status)")
        [ $status -ge 124 ] && echo "FAIL ${script%.py}: killed by run.sh's ${cap} s cap"
    fi
done
echo "run.sh: $((SECONDS - start)) s" >&2
if [ ${#failed[@]} -gt 0 ]; then
    echo "run.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "run.sh: all passed" >&2
