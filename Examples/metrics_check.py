#!/usr/bin/env python3
"""Checks a running example's GET /metrics (Prometheus text format 0.0.4) against expectations:

    python3 Examples/metrics_check.py http://127.0.0.1:PORT 'eventstream_open_connections == 0' \\
        'eventstream_connections_closed_total{reason="cancelled"} >= 1' ...

Each expectation is a series (a metric name, with its labels in any order, or none), an
operator (==, >=, >, <=, <) and a number; a series that is absent counts as failing. The
metrics are read again every 0.1 s until every expectation holds or --wait seconds (default 5)
have passed, since the hub reports a stream's end a little after its client sees it. Prints
each expectation with the value found and exits 1 if any failed.
"""

import operator
import re
import sys
import time
import urllib.request

OPERATORS = {"==": operator.eq, ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
EXPECTATION = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s*(==|>=|<=|>|<)\s*(\S+)\s*$")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def series(name, labels):
    """A series' key: its name and its labels, sorted, so that their order does not matter."""
    return name, tuple(sorted(LABEL.findall(labels or "")))


def scrape(base):
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        content_type = response.headers.get("Content-Type", "")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if not match:
            raise ValueError(f"not a sample line: {line!r}")
        samples[series(match[1], match[2])] = float(match[3])
    return content_type, samples


def main():
    args = sys.argv[1:]
    wait = 5.0
    if len(args) >= 2 and args[0] == "--wait":
        wait, args = float(args[1]), args[2:]
    if len(args) < 2:
        sys.exit(__doc__)
    base, texts = args[0].rstrip("/"), args[1:]
    expectations = []
    for text in texts:
        match = EXPECTATION.match(text)
        if not match:
            sys.exit(f"not an expectation: {text!r}")
        expectations.append((text, series(match[1], match[2]), OPERATORS[match[3]], float(match[4])))

    deadline = time.monotonic() + wait
    while True:
        content_type, samples = scrape(base)
        failed = [e for e in expectations if e[1] not in samples or not e[2](samples[e[1]], e[3])]
        if not failed or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    ok = "text/plain" in content_type and "version=0.0.4" in content_type
    print(f"{'ok  ' if ok else 'FAIL'}  Content-Type: {content_type}")
    for text, key, _, _ in expectations:
        found = samples.get(key)
        print(f"{'FAIL' if any(f[0] == text for f in failed) else 'ok  '}  {text}  (found {'nothing' if found is None else f'{found:g}'})")
    sys.exit(0 if ok and not failed else 1)


if __name__ == "__main__":
    main()
