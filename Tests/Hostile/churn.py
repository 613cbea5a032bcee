#!/usr/bin/env python3
"""churn.py BINARY [--measure-only] [options]

"Innocent closes": a connection the server closes that it had no reason to close.
For --seconds, with the demo in bench mode (--bench-rate 5):
  * slowloris connections are opened steadily (--slowloris-rate a second): each sends a
    partial request head and never finishes it, so the server's head timeout closes it
    (10 s in the old server; --head-timeout S is passed to the demo only if its --help
    mentions the flag). A fraction of them (--impatient-fraction) give up by themselves
    at a random moment around the head timeout, as real clients do;
  * legitimate connections arrive steadily (--legit-rate a second, --legit-workers
    threads): each sends a complete "GET /events" and holds the stream --hold-min to
    --hold-max seconds (--events-fraction of them), or a complete "GET /health", then
    closes by itself;
  * the demo's stdout and stderr are pipes of --pipe-size bytes that this script drains
    slowly (--drain-bytes every --drain-interval s), so that the server's log writes block.
An innocent close: a legitimate connection that sees EOF or a reset before it got its
complete /health response, or before it chose to close its stream (before the server is
told to stop). A refusal with a status (503), a connect failure and a stuck request (no
answer within --request-timeout) are counted apart.
Bound: innocent closes <= --max-innocent (0).
Prints one JSON line; exits 1 if a bound is violated (unless --measure-only), 2 on error.
"""

import fcntl
import heapq
import os
import random
import selectors
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _hostile as H  # noqa: E402


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.values = {}
        self.samples = {}
        self.health_latencies = []

    def add(self, key, n=1, sample=None):
        with self.lock:
            self.values[key] = self.values.get(key, 0) + n
            if sample is not None:
                kept = self.samples.setdefault(key, [])
                if len(kept) < 5:
                    kept.append(sample)


def slow_drain(server, fds, chunk, interval, fast, counts):
    """Reads `chunk` bytes from each pipe every `interval` s, so that the server's writes
    block; once `fast` is set, reads everything as it comes (for the shutdown)."""
    partial = {fd: b"" for fd in fds}
    for fd in fds:
        os.set_blocking(fd, False)
    while True:
        for fd in fds:
            try:
                data = os.read(fd, 65536 if fast.is_set() else chunk)
            except BlockingIOError:
                continue
            except OSError:
                continue
            if not data:
                continue
            counts["bytes"] += len(data)
            partial[fd] += data
            *lines, partial[fd] = partial[fd].split(b"\n")
            for line in lines:
                counts["lines"] += 1
                if len(server.stderr_log) < 20:
                    server.stderr_log.append((time.monotonic() - server.started, line.decode("utf-8", "replace")))
        time.sleep(0.005 if fast.is_set() else interval)


def legit_worker(port, args, stop, next_start, counters, rng):
    health_request = f"GET /health HTTP/1.1\r\nHost: {H.HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
    events_request = f"GET /events HTTP/1.1\r\nHost: {H.HOST}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
    interval = 1.0 / args.legit_rate
    while not stop.is_set():
        with next_start["lock"]:
            start = max(next_start["t"], time.monotonic())
            next_start["t"] = start + interval
        delay = start - time.monotonic()
        if delay > 0:
            if stop.wait(delay):
                return
        events = rng.random() < args.events_fraction
        kind = "events" if events else "health"
        try:
            s = H.connect(port, args.request_timeout)
        except OSError as e:
            counters.add("connect_failed", sample=f"connect: {type(e).__name__}: {e}")
            continue
        counters.add(f"legit_{kind}")
        t0 = time.monotonic()
        try:
            s.sendall(events_request if events else health_request)
            deadline = t0 + args.request_timeout
            if not events:
                try:
                    status, _, body, _ = H.read_response(s, deadline)
                except socket.timeout:
                    counters.add("stuck", sample=f"health: no answer within {args.request_timeout} s")
                    continue
                except (ConnectionError, OSError) as e:
                    counters.add("innocent_closes", sample=f"health: {type(e).__name__}: {e} after {time.monotonic() - t0:.3f} s")
                    counters.add("innocent_health")
                    continue
                if status != 200:
                    counters.add("refused", sample=f"health: status {status}")
                else:
                    counters.add("ok_health")
                    with counters.lock:
                        counters.health_latencies.append(time.monotonic() - t0)
                continue
            hold = rng.uniform(args.hold_min, args.hold_max)
            end = deadline  # until the response head arrives; then the hold starts
            buffer = b""
            head_seen = False
            while True:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    if head_seen:
                        counters.add("ok_events")
                    else:
                        counters.add("stuck", sample=f"events: no response head within {args.request_timeout} s")
                    break
                s.settimeout(min(remaining, 0.5))
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    continue
                except OSError as e:
                    data = None
                    error = f"{type(e).__name__}: {e}"
                else:
                    error = "EOF"
                if not data:
                    if head_seen or not buffer.startswith(b"HTTP/1.1 "):
                        counters.add("innocent_closes",
                                     sample=f"events: {error} {time.monotonic() - t0:.3f} s after connecting (hold {hold:.2f} s), "
                                            f"head {'seen' if head_seen else 'not seen'}")
                        counters.add("innocent_events")
                    else:
                        counters.add("refused", sample=f"events: {buffer[:40]!r}")
                    break
                if not head_seen:
                    buffer += data
                    if b"\r\n\r\n" in buffer:
                        if not buffer.startswith(b"HTTP/1.1 200"):
                            counters.add("refused", sample=f"events: {buffer[:40]!r}")
                            break
                        head_seen = True
                        buffer = b""
                        end = time.monotonic() + hold
        finally:
            s.close()


def main():
    parser = H.base_parser(__doc__, 90)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--head-timeout", type=float, default=None,
                        help="passed to the demo if its --help mentions --head-timeout (else 10 s)")
    parser.add_argument("--slowloris-rate", type=float, default=100, help="new slowloris connections a second")
    parser.add_argument("--impatient-fraction", type=float, default=0.5)
    parser.add_argument("--legit-rate", type=float, default=100, help="new legitimate connections a second")
    parser.add_argument("--legit-workers", type=int, default=80)
    parser.add_argument("--events-fraction", type=float, default=0.3)
    parser.add_argument("--hold-min", type=float, default=1.0)
    parser.add_argument("--hold-max", type=float, default=3.0)
    parser.add_argument("--request-timeout", type=float, default=5.0)
    parser.add_argument("--drain-bytes", type=int, default=200)
    parser.add_argument("--drain-interval", type=float, default=0.02)
    parser.add_argument("--pipe-size", type=int, default=4096)
    parser.add_argument("--max-innocent", type=int, default=0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    H.install_hard_timeout(args.timeout)
    H.raise_nofile()
    rng = random.Random(args.seed)

    def run():
        demo_args = ["--bench-rate", "5"]
        head_timeout = 10.0
        supports = "--head-timeout" in H.binary_help(args.binary)
        if args.head_timeout is not None and supports:
            demo_args += ["--head-timeout", str(args.head_timeout)]
            head_timeout = args.head_timeout
        server = H.Server(args.binary, demo_args, drain=False)
        pipe_sizes = []
        for stream in (server.proc.stdout, server.proc.stderr):
            try:
                pipe_sizes.append(fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, args.pipe_size))
            except (OSError, AttributeError):
                pipe_sizes.append(None)
        stop = threading.Event()
        fast = threading.Event()
        drain_counts = {"bytes": 0, "lines": 0}
        drainer = threading.Thread(target=slow_drain, daemon=True,
                                   args=(server, [server.proc.stdout.fileno(), server.proc.stderr.fileno()],
                                         args.drain_bytes, args.drain_interval, fast, drain_counts))
        drainer.start()
        counters = Counters()
        workers = []
        slow = {}  # socket -> (opened at, give up at or None)
        selector = selectors.DefaultSelector()
        lifetimes = []
        try:
            if H.health_latency(server.port, 5) is None:
                raise RuntimeError("the server does not answer /health")
            next_start = {"lock": threading.Lock(), "t": time.monotonic()}
            for i in range(args.legit_workers):
                t = threading.Thread(target=legit_worker, daemon=True,
                                     args=(server.port, args, stop, next_start, counters, random.Random(rng.random())))
                t.start()
                workers.append(t)
            partial = f"GET /health HTTP/1.1\r\nHost: {H.HOST}:{server.port}\r\nUser-Agent: slowloris\r\n".encode()
            t0 = time.monotonic()
            end = t0 + args.seconds
            interval = 1.0 / args.slowloris_rate
            rss_samples = []
            next_rss = t0
            next_open = t0
            give_ups = []
            slow_stats = {"opened": 0, "closed_by_server": 0, "gave_up": 0, "connect_failed": 0, "answered": 0}
            while time.monotonic() < end:
                now = time.monotonic()
                while next_open <= now:
                    next_open += interval
                    try:
                        s = H.connect(server.port, 2)
                        s.sendall(partial)
                        s.setblocking(False)
                    except OSError:
                        slow_stats["connect_failed"] += 1
                        continue
                    give_up = None
                    if rng.random() < args.impatient_fraction:
                        give_up = now + head_timeout * rng.uniform(0.8, 1.1)
                        heapq.heappush(give_ups, (give_up, s.fileno(), s))
                    slow[s] = (now, give_up)
                    selector.register(s, selectors.EVENT_READ)
                    slow_stats["opened"] += 1
                for key, _ in selector.select(timeout=max(0, min(next_open, end) - time.monotonic())):
                    s = key.fileobj
                    try:
                        data = s.recv(4096)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if data:
                        slow_stats["answered"] += 1  # e.g. a 408; the close follows
                        continue
                    opened, _ = slow.pop(s)
                    lifetimes.append(time.monotonic() - opened)
                    selector.unregister(s)
                    s.close()
                    slow_stats["closed_by_server"] += 1
                now = time.monotonic()
                if now >= next_rss:
                    rss_samples.append(server.rss_mib() or 0)
                    next_rss += 1
                while give_ups and give_ups[0][0] <= now:
                    _, _, s = heapq.heappop(give_ups)
                    if s in slow:  # else the server closed it first
                        selector.unregister(s)
                        s.close()
                        del slow[s]
                        slow_stats["gave_up"] += 1
            # the clients stop first: only then is the server told to stop
            stop.set()
            for t in workers:
                t.join(timeout=args.hold_max + args.request_timeout + 1)
            alive = server.alive()
            rss = server.rss_mib()
            slow_open_at_end = len(slow)
            for s in list(slow):
                selector.unregister(s)
                s.close()
            slow.clear()
            fast.set()  # the logs may flow again: a blocked write must not pass for a hung shutdown
            stopped = server.stop()
            values = dict(counters.values)
            innocent = values.get("innocent_closes", 0)
            lifetimes_ms = H.summary_ms(lifetimes)
            figures = {
                "script": "churn", "binary": args.binary, "seconds": args.seconds, "head_timeout_s": head_timeout,
                "head_timeout_flag_passed": args.head_timeout is not None and supports,
                "slowloris": {**slow_stats, "open_at_end": slow_open_at_end,
                              "lifetime_s_closed_by_server": {k: (round(v / 1000, 2) if isinstance(v, float) else v)
                                                              for k, v in lifetimes_ms.items()}},
                "legit_rate_achieved": round((values.get("legit_health", 0) + values.get("legit_events", 0)) / args.seconds, 1),
                "legit": {"health": values.get("legit_health", 0), "events": values.get("legit_events", 0),
                          "ok_health": values.get("ok_health", 0), "ok_events": values.get("ok_events", 0),
                          "refused": values.get("refused", 0), "stuck": values.get("stuck", 0),
                          "connect_failed": values.get("connect_failed", 0)},
                "legit_health_ms": H.summary_ms(counters.health_latencies),
                "innocent_closes": innocent,
                "innocent_health": values.get("innocent_health", 0), "innocent_events": values.get("innocent_events", 0),
                "samples": counters.samples,
                "log_drained": drain_counts, "pipe_sizes": pipe_sizes,
                "server_alive_at_end": alive, "rss_mib_end": rss, "rss_mib_peak": max(rss_samples + [rss or 0]), "server_stop": stopped,
                "server_log_sample": [line for _, line in server.stderr_log[:3]],
            }
            violations = []
            if innocent > args.max_innocent:
                violations.append(f"{innocent} innocent closes > {args.max_innocent}")
            if not alive:
                violations.append("the server died")
            return H.emit(figures, violations, args.measure_only)
        finally:
            stop.set()
            H.close_all(slow)
            H.Server.kill_all()

    H.main_wrapper(run)


if __name__ == "__main__":
    main()
