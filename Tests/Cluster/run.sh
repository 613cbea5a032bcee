#!/usr/bin/env bash
# run.sh BINARY [cluster_test.py options]
# Runs the multi-process cluster tests (issue 15): a redis-server of their own, 3 BINARY
# (EventStreamDemo) nodes per scenario, haproxy for (g). Prints one JSON line of figures per
# scenario; exits non-zero if any scenario failed or broke, if the run exceeded its cap, or
# if redis-server or haproxy is missing: these tests never skip.
set -u
if [ $# -lt 1 ]; then
    echo "usage: $0 BINARY [--only a,c] [--seed N] ..." >&2
    exit 2
fi
binary=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
missing=()
[ -x /usr/bin/redis-server ] || command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
    echo "run.sh: FAILED: not installed: ${missing[*]} (apt-get install ${missing[*]}); the cluster tests do not skip" >&2
    exit 1
fi
start=$SECONDS
# The script's own hard timeout (170 s) is shorter than this cap.
timeout -k 5 180 "$python" "$here/cluster_test.py" "$binary" --timeout 170 "$@"
status=$?
echo "run.sh: $((SECONDS - start)) s" >&2
if [ $status -ne 0 ]; then
    [ $status -ge 124 ] && echo "{\"scenario\": \"all\", \"error\": \"killed by run.sh's 180 s cap\", \"pass\": false}"
    echo "run.sh: failed (exit $status)" >&2
    exit 1
fi
echo "run.sh: all passed" >&2
