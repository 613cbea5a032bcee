#!/usr/bin/env python3
"""What idle event streams cost a notifications example (Linux: reads /proc).

    python3 Examples/idle_cost.py [--streams 2000] [--window 30] [--rounds 3] NAME=BINARY ...

Each round starts every BINARY in turn (so the binaries alternate), on port 0, and for each:
warms it up, reads its RSS, opens --streams idle `GET /events` streams (raw sockets that read
nothing after the response head), waits until /stats counts them, reads its RSS again, then
counts its CPU time (utime + stime) and its threads' context switches over --window seconds,
first with no stream open, then with the streams open. Then it closes every stream at once and
times how long the hub takes to forget them, and stops the app with SIGTERM. Prints each run and
the median of each figure per NAME.

clients_test.py imports the helpers below for its own idle-stream check.
"""

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of every thread of `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def context_switches(pid, kinds=("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
    """Context switches of every thread of `pid` so far (threads that ended are not counted):
    by default voluntary (a thread went to sleep: each wake-up) and involuntary (it was
    preempted, which depends on the machine's load too)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as file:
                for line in file:
                    if line.startswith(kinds):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def client_count(base):
    with urllib.request.urlopen(f"{base}/stats", timeout=5) as response:
        return json.load(response)["clients"]


async def wait_for_count(base, count, within):
    """Polls /stats until it shows `count` clients; returns the seconds it took."""
    start = time.monotonic()
    while True:
        now = await asyncio.to_thread(client_count, base)
        elapsed = time.monotonic() - start
        if now == count:
            return elapsed
        if elapsed > within:
            raise AssertionError(f"the hub has {now} clients, not {count}, after {elapsed:.2f} s")
        await asyncio.sleep(0.01)


async def open_idle_stream(base, token="token-alice"):
    """One `GET /events` on a raw socket: reads the response head, then nothing. Returns the writer."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200"), head[:80]
    return writer


async def open_idle_streams(base, count, batch=100):
    writers = []
    for start in range(0, count, batch):
        writers += await asyncio.gather(*(open_idle_stream(base) for _ in range(min(batch, count - start))))
    return writers


def close_streams(writers):
    for writer in writers:
        writer.transport.abort()


def start(binary):
    """Starts the app on port 0; returns (process, base URL)."""
    process = subprocess.Popen([binary, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    assert line.startswith("listening on "), f"{binary} printed {line!r}"
    return process, line.removeprefix("listening on ").strip()


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def measure(binary, streams, window):
    process, base = start(binary)
    pid = process.pid
    try:
        # Warm up: a few streams opened and closed, so that what is allocated once is allocated.
        warm = await open_idle_streams(base, 20)
        await wait_for_count(base, 20, 10)
        close_streams(warm)
        await wait_for_count(base, 0, 30)
        await asyncio.sleep(2)
        baseline = rss_kib(pid)
        cpu, switches = cpu_seconds(pid), context_switches(pid)
        await asyncio.sleep(window)
        idle_cpu, idle_switches = cpu_seconds(pid) - cpu, context_switches(pid) - switches

        writers = await open_idle_streams(base, streams)
        await wait_for_count(base, streams, 30)
        await asyncio.sleep(2)
        loaded = rss_kib(pid)
        cpu, switches = cpu_seconds(pid), context_switches(pid)
        await asyncio.sleep(window)
        streams_cpu, streams_switches = cpu_seconds(pid) - cpu, context_switches(pid) - switches

        close_streams(writers)
        forget = await wait_for_count(base, 0, 60)
        return {
            "KiB/stream": (loaded - baseline) / streams,
            "RSS base MiB": baseline / 1024,
            "CPU ms/s, 0 streams": idle_cpu * 1000 / window,
            f"CPU ms/s, {streams} streams": streams_cpu * 1000 / window,
            "switches/s, 0 streams": idle_switches / window,
            f"switches/s, {streams} streams": streams_switches / window,
            f"forget {streams} (s)": forget,
        }
    finally:
        stop(process)


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--window", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("binaries", nargs="+", metavar="NAME=BINARY")
    options = parser.parse_args()
    binaries = [entry.split("=", 1) for entry in options.binaries]
    results = {name: [] for name, _ in binaries}
    for round in range(1, options.rounds + 1):
        for name, binary in binaries:
            result = await measure(binary, options.streams, options.window)
            results[name].append(result)
            print(f"round {round} {name}: " + ", ".join(f"{key} {value:.2f}" for key, value in result.items()), flush=True)
    print(f"medians of {options.rounds} rounds:")
    for name, runs in results.items():
        print(f"  {name}: " + ", ".join(f"{key} {statistics.median(run[key] for run in runs):.2f}" for key in runs[0]))


if __name__ == "__main__":
    asyncio.run(main())
