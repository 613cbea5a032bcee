#!/usr/bin/env bash
# run.sh BINARY [--measure-only]
# Runs every hostile-client script in this folder against BINARY (an EventStreamDemo) with
# its defaults, one after the other (about 3 minutes; each is also capped by `timeout`, so
# the whole is cut at 235 s), prints each script's JSON line, and exits non-zero if
# any script failed a bound (exit 1) or broke (exit 2, or killed by its cap).
set -u
if [ $# -lt 1 ]; then
    echo "usage: $0 BINARY [--measure-only]" >&2
    exit 2
fi
binary=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
failed=()
start=$SECONDS
# script:cap in seconds (the scripts' own hard timeouts are shorter)
for entry in flood.py:45 stalled.py:75 churn.py:60 onebyte.py:40 neverread.py:35; do
    script=${entry%%:*}
    cap=${entry##*:}
    left=$((235 - (SECONDS - start)))  # the whole run stays under 4 minutes
    [ $cap -gt $left ] && cap=$left
    if [ $cap -lt 15 ]; then
        failed+=("$script (no time left)")
        echo "{\"script\": \"${script%.py}\", \"error\": \"not run: run.sh's 4 minutes are up\", \"pass\": false}"
        continue
    fi
    timeout -k 5 "$cap" "$python" "$here/$script" "$binary" "$@" --timeout $((cap - 8))
    status=$?
    if [ $status -ne 0 ]; then
        failed+=("$script (exit $status)")
        [ $status -ge 124 ] && echo "{\"script\": \"${script%.py}\", \"error\": \"killed by run.sh's ${cap} s cap\", \"pass\": false}"
    fi
done
echo "run.sh: $((SECONDS - start)) s" >&2
if [ ${#failed[@]} -gt 0 ]; then
    echo "run.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "run.sh: all passed" >&2
