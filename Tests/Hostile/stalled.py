#!/usr/bin/env python3
"""stalled.py BINARY [--measure-only] [options]

--readers stalled readers of a fast bench stream (the demo runs with --bench-rate 200
--bench-size 2000): each opens GET /events with a small SO_RCVBUF (--rcvbuf, set before
connect) and never reads. Once all are connected they are held for --hold-seconds while the
server's VmRSS and VmHWM are sampled every second, with one /health probe a second.

Reports the baseline, peak and last RSS in MiB, the peak RSS per reader in KiB above the
baseline, the /health probe latencies, how many readers the server had closed by the end
(their sockets in CLOSE_WAIT) and what /stats said.
Bound: peak RSS <= --max-rss-mib (250: measured 96-117 MiB; the old server reached 466-1,136).
Prints one JSON line; exits 1 if a bound is violated (unless --measure-only), 2 on error.
"""

import json
import os
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _hostile as H  # noqa: E402

TCP_CLOSE_WAIT = 8


def tcp_state(sock):
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        return info[0]
    except OSError:
        return None


def main():
    parser = H.base_parser(__doc__, 150)
    parser.add_argument("--readers", type=int, default=2000)
    parser.add_argument("--rcvbuf", type=int, default=4096)
    parser.add_argument("--hold-seconds", type=float, default=20)
    parser.add_argument("--bench-rate", type=float, default=200)
    parser.add_argument("--bench-size", type=int, default=2000)
    parser.add_argument("--connect-seconds", type=float, default=40, help="give up connecting after this long")
    parser.add_argument("--max-rss-mib", type=float, default=250)
    parser.add_argument("--backlog", type=int, default=None, help="passed to the demo as --backlog (replay events kept)")
    parser.add_argument("--stop-grace", type=float, default=10, help="SIGTERM to SIGKILL at the end, seconds")
    args = parser.parse_args()
    H.install_hard_timeout(args.timeout)
    nofile = H.raise_nofile()

    def run():
        demo_args = ["--bench-rate", str(args.bench_rate), "--bench-size", str(args.bench_size)]
        if args.backlog is not None:
            demo_args += ["--backlog", str(args.backlog)]
        server = H.Server(args.binary, demo_args)
        readers = []
        try:
            if H.health_latency(server.port, 5) is None:
                raise RuntimeError("the server does not answer /health")
            baseline = server.rss_mib()
            ktcp0 = H.kernel_tcp_mib()
            request = f"GET /events HTTP/1.1\r\nHost: {H.HOST}\r\nAccept: text/event-stream\r\n\r\n".encode()
            t0 = time.monotonic()
            failures = []
            samples = []
            next_sample = t0
            while len(readers) < args.readers and time.monotonic() - t0 < args.connect_seconds:
                try:
                    s = H.connect(server.port, 5, rcvbuf=args.rcvbuf)
                    s.sendall(request)
                    readers.append(s)
                except OSError as e:
                    failures.append(f"{type(e).__name__}: {e}")
                    if len(failures) > 50:
                        break
                if time.monotonic() >= next_sample:
                    samples.append({"t": round(time.monotonic() - t0, 1), "rss": server.rss_mib(), "hwm": server.hwm_mib(),
                                    "readers": len(readers)})
                    next_sample += 1
            connect_s = round(time.monotonic() - t0, 2)
            connected_rss = server.rss_mib()
            health = []
            health_failures = 0
            hold_start = time.monotonic()
            cpu0 = server.cpu_ms()
            for i in range(int(args.hold_seconds)):
                target = hold_start + i + 1
                samples.append({"t": round(time.monotonic() - t0, 1), "rss": server.rss_mib(), "hwm": server.hwm_mib(),
                                "ktcp": H.kernel_tcp_mib()})
                latency = H.health_latency(server.port, 2.0)
                if latency is None:
                    health_failures += 1
                    health.append(2.0)
                else:
                    health.append(latency)
                delay = target - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            last_rss = server.rss_mib()
            hwm = server.hwm_mib()
            cpu_hold = (server.cpu_ms() or 0) - (cpu0 or 0)
            hold_s = time.monotonic() - hold_start
            closed = sum(1 for s in readers if tcp_state(s) == TCP_CLOSE_WAIT)
            try:
                status, body, _ = H.http_get(server.port, "/stats", 5)
                stats = json.loads(body)
            except Exception as e:  # noqa: BLE001
                stats = f"{type(e).__name__}: {e}"
            alive = server.alive()
            fds = server.open_fds()
            rss_values = [x["rss"] for x in samples if x.get("rss") is not None] + [last_rss or 0]
            peak = max(rss_values) if rss_values else None
            stop = server.stop(args.stop_grace)
            n = len(readers)
            figures = {
                "script": "stalled", "binary": args.binary, "readers": n, "connect_failures": len(failures),
                "connect_failure_sample": failures[:3], "connect_s": connect_s, "rcvbuf": args.rcvbuf,
                "nofile": list(nofile),
                "rss_mib_baseline": baseline, "rss_mib_connected": connected_rss, "rss_mib_peak": peak,
                "rss_mib_last": last_rss, "hwm_mib": hwm,
                "kib_per_reader_peak": round((peak - baseline) * 1024 / n, 1) if n and peak and baseline else None,
                "kib_per_reader_last": round((last_rss - baseline) * 1024 / n, 1) if n and last_rss and baseline else None,
                "kernel_tcp_mib_baseline": ktcp0,
                "kernel_tcp_mib_peak": max([x.get("ktcp") or 0 for x in samples] or [0]),
                "server_cpu_pct_during_hold": round(cpu_hold / hold_s / 10, 1),
                "health_ms_during_hold": H.summary_ms(health, health_failures),
                "readers_closed_by_server": closed, "server_open_fds": fds, "stats": stats,
                "server_alive_at_end": alive, "server_stop": stop,
                "server_stderr_lines": len(server.stderr_log),
                "server_stderr_sample": [line for _, line in server.stderr_log[:3]],
                "rss_samples": [[x["t"], x["rss"]] for x in samples],
            }
            violations = []
            if peak is None or peak > args.max_rss_mib:
                violations.append(f"peak RSS {peak} MiB > {args.max_rss_mib} MiB")
            if not alive:
                violations.append("the server died")
            return H.emit(figures, violations, args.measure_only)
        finally:
            H.close_all(readers)
            H.Server.kill_all()

    H.main_wrapper(run)


if __name__ == "__main__":
    main()
