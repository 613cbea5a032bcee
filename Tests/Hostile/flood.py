#!/usr/bin/env python3
"""flood.py BINARY [--measure-only] [options]

Two flooding clients, each in its own process, for --flood-seconds:
  (a) one connection that sends "\\r\\n" endlessly, as fast as the socket takes it
      (if the server closes it, it reconnects, at most --max-flood-connections in all);
  (b) one connection that pipelines valid "GET /health" requests as fast as it can and
      reads the answers back as fast as they come.
A victim meanwhile measures (i) /health latency on fresh connections (--requests
sequential requests, paced over the phase) and (ii) event latency on one open bench stream
(the demo runs with --bench-rate 20; latency = now - the timestamp in the event).
The same victim figures are first measured with no flood (--baseline-seconds).

The flooders run --flood-seconds + 1 s (they start 0.5 s before the victim's phase);
"first_close_s" counts from their start.
Bounds (under flood): health p99 <= --health-p99-ms (100), event p99 <= --event-p99-ms (200).
A /health request that fails or takes over --request-timeout counts as that timeout.
Prints one JSON line; exits 1 if a bound is violated (unless --measure-only), 2 on error.
"""

import multiprocessing as mp
import os
import select
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _hostile as H  # noqa: E402


def crlf_flooder(port, seconds, max_connections, results, started):
    """(a): endless "\\r\\n". Reports bytes sent, when (if) the server first closed it or
    answered, what it answered, and how many connections it took."""
    H.signal.signal(H.signal.SIGTERM, H.signal.SIG_DFL)
    H.signal.signal(H.signal.SIGALRM, H.signal.SIG_IGN)
    H.die_with_parent()
    chunk = b"\r\n" * 32768
    t0 = time.monotonic()
    end = t0 + seconds
    out = {"bytes_sent": 0, "connections": 0, "closed_by_server": False, "first_close_s": None,
           "first_close_after_bytes": None, "first_close_how": None, "answer": None, "closes": 0}
    while time.monotonic() < end and out["connections"] < max_connections:
        try:
            s = H.connect(port, 2)
        except OSError as e:
            out.setdefault("connect_errors", 0)
            out["connect_errors"] += 1
            time.sleep(0.01)
            continue
        out["connections"] += 1
        s.setblocking(False)
        sent_here = 0
        how = None
        while time.monotonic() < end:
            r, w, _ = select.select([s], [s], [], 0.2)
            if r:
                try:
                    data = s.recv(65536)
                except (ConnectionResetError, BrokenPipeError) as e:
                    how = f"recv {type(e).__name__}"
                    break
                except BlockingIOError:
                    data = None
                if data == b"":
                    how = "EOF"
                    break
                if data and out["answer"] is None:
                    out["answer"] = data[:100].decode("latin-1")
            if w:
                try:
                    n = s.send(chunk)
                    sent_here += n
                    out["bytes_sent"] += n
                    if out["bytes_sent"] == n:
                        started.set()  # once: the first bytes are out
                except BlockingIOError:
                    pass
                except (ConnectionResetError, BrokenPipeError) as e:
                    how = f"send {type(e).__name__}"
                    break
        s.close()
        if how is None:
            break  # the flood's time is up
        out["closes"] += 1
        if not out["closed_by_server"]:
            out["closed_by_server"] = True
            out["first_close_s"] = round(time.monotonic() - t0, 3)
            out["first_close_after_bytes"] = sent_here
            out["first_close_how"] = how
    results.put(("crlf", out))


def pipeline_flooder(port, seconds, max_connections, results, started):
    """(b): pipelined GET /health, written as fast as the socket takes them, answers read
    as fast as they come."""
    H.signal.signal(H.signal.SIGTERM, H.signal.SIG_DFL)
    H.signal.signal(H.signal.SIGALRM, H.signal.SIG_IGN)
    H.die_with_parent()
    request = f"GET /health HTTP/1.1\r\nHost: {H.HOST}:{port}\r\n\r\n".encode()
    batch = request * 256
    marker = b"HTTP/1.1 "
    t0 = time.monotonic()
    end = t0 + seconds
    out = {"requests_sent": 0, "responses": 0, "connections": 0, "closes": 0, "first_close_s": None}
    bytes_sent = 0
    while time.monotonic() < end and out["connections"] < max_connections:
        try:
            s = H.connect(port, 2)
        except OSError:
            time.sleep(0.01)
            continue
        out["connections"] += 1
        s.setblocking(False)
        pending = b""
        tail = b""
        closed = False
        while time.monotonic() < end:
            r, w, _ = select.select([s], [s], [], 0.2)
            if r:
                try:
                    data = s.recv(1 << 20)
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                except BlockingIOError:
                    data = None
                if data == b"":
                    closed = True
                    break
                if data:
                    joined = tail + data
                    out["responses"] += joined.count(marker)
                    tail = joined[-(len(marker) - 1):]
            if w:
                if not pending:
                    pending = batch
                try:
                    n = s.send(pending)
                    bytes_sent += n
                    if bytes_sent == n:
                        started.set()  # once: the first bytes are out
                    pending = pending[n:]
                except BlockingIOError:
                    pass
                except (ConnectionResetError, BrokenPipeError):
                    closed = True
                    break
        s.close()
        if not closed:
            break
        out["closes"] += 1
        if out["first_close_s"] is None:
            out["first_close_s"] = round(time.monotonic() - t0, 3)
    out["requests_sent"] = bytes_sent // len(request)
    results.put(("pipeline", out))


def victim_phase(server, stream, seconds, requests, request_timeout):
    """Paced sequential /health on fresh connections while the stream records."""
    latencies = []
    failures = 0
    errors = []
    stream.latencies.clear()
    stream.recording = True
    t0 = time.monotonic()
    interval = seconds / requests
    for i in range(requests):
        target = t0 + i * interval
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        started = time.monotonic() - server.started
        value = H.health_latency(server.port, request_timeout, errors)
        if value is None:
            errors[-1] = f"at {started:.2f} s: {errors[-1]}"
            failures += 1
            latencies.append(request_timeout)
        else:
            latencies.append(value)
    remaining = t0 + seconds - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
    stream.recording = False
    events = list(stream.latencies)
    return {"health_ms": H.summary_ms(latencies, failures), "health_errors": errors[:5], "event_ms": H.summary_ms(events),
            "phase_s": round(time.monotonic() - t0, 2)}


def main():
    parser = H.base_parser(__doc__, 90)
    parser.add_argument("--flood-seconds", type=float, default=10)
    parser.add_argument("--baseline-seconds", type=float, default=5)
    parser.add_argument("--requests", type=int, default=200, help="victim /health requests per phase")
    parser.add_argument("--request-timeout", type=float, default=2.0)
    parser.add_argument("--bench-rate", type=float, default=20)
    parser.add_argument("--flooders", default="crlf,pipeline",
                        help="which flooders run: crlf, pipeline or both")
    parser.add_argument("--max-flood-connections", type=int, default=2000)
    parser.add_argument("--health-p99-ms", type=float, default=100)
    parser.add_argument("--event-p99-ms", type=float, default=200)
    args = parser.parse_args()
    H.install_hard_timeout(args.timeout)
    children = []

    def run():
        server = H.Server(args.binary, ["--bench-rate", str(args.bench_rate)])
        try:
            if H.health_latency(server.port, 5) is None:
                raise RuntimeError("the server does not answer /health")
            stream = H.EventLatency(server.port).start()
            if not stream.first_event.wait(10):
                raise RuntimeError(f"the bench stream delivered no event: {stream.error}")
            baseline = victim_phase(server, stream, args.baseline_seconds, args.requests, args.request_timeout)
            rss_before = server.rss_mib()
            cpu_before = server.cpu_ms()

            ctx = mp.get_context("fork")
            results = ctx.Queue()
            chosen = {"crlf": crlf_flooder, "pipeline": pipeline_flooder}
            targets = [chosen[name] for name in args.flooders.split(",") if name]
            flowing = []
            for target in targets:
                started = ctx.Event()  # set by the flooder once its first bytes are out
                p = ctx.Process(target=target, args=(server.port, args.flood_seconds + 1, args.max_flood_connections, results, started),
                                daemon=True)
                p.start()
                children.append(p)
                flowing.append(started)
            flood_start = time.monotonic() - server.started
            for started in flowing:
                if not started.wait(10):
                    raise RuntimeError("a flooder sent nothing within 10 s")
            flood = victim_phase(server, stream, args.flood_seconds - 0.5, args.requests, args.request_timeout)
            rss_end = server.rss_mib()
            hwm_end = server.hwm_mib()
            cpu_flood = (server.cpu_ms() or 0) - (cpu_before or 0)
            flooders = {}
            deadline = time.monotonic() + 10
            while len(flooders) < len(targets) and time.monotonic() < deadline:
                try:
                    name, out = results.get(timeout=max(0.1, deadline - time.monotonic()))
                    flooders[name] = out
                except Exception:
                    break
            stream.stop()
            crlf = flooders.get("crlf")
            alive = server.alive()
            stop = server.stop()
            log_lines = len(server.stderr_log)
            figures = {
                "script": "flood", "binary": args.binary,
                "baseline": baseline, "flood": flood, "flood_start_s": round(flood_start, 2),
                "stream_error": stream.error, "stream_closed_by_server": stream.closed_by_server,
                "rss_mib_before_flood": rss_before, "rss_mib_end": rss_end, "hwm_mib_end": hwm_end,
                "server_cpu_ms_during_flood": round(cpu_flood),
                "flooder_seconds": args.flood_seconds + 1,
                # a close seen only as the flooders stop is no sign of a limit on "\r\n"
                "crlf_closed_while_flooding": bool(crlf and crlf["closed_by_server"]
                                                   and crlf["first_close_s"] < args.flood_seconds + 1 - 0.3),
                "flooder_crlf": crlf, "flooder_pipeline": flooders.get("pipeline"),
                "server_alive_at_end": alive, "server_stop": stop, "server_stderr_lines": log_lines,
                "server_stderr_sample": server.stderr_log[:6],
            }
            violations = []
            hp99 = flood["health_ms"]["p99"]
            ep99 = flood["event_ms"]["p99"]
            if hp99 is None or hp99 > args.health_p99_ms:
                violations.append(f"health p99 under flood {hp99} ms > {args.health_p99_ms} ms")
            if ep99 is None or ep99 > args.event_p99_ms:
                violations.append(f"event p99 under flood {ep99} ms > {args.event_p99_ms} ms "
                                  f"({flood['event_ms']['n']} events)")
            if not alive:
                violations.append("the server died")
            return H.emit(figures, violations, args.measure_only)
        finally:
            for p in children:
                if p.is_alive():
                    p.kill()
            H.Server.kill_all()

    H.main_wrapper(run)


if __name__ == "__main__":
    main()
