#!/usr/bin/env python3
"""neverread.py BINARY [--measure-only] [options]

A client that pipelines "GET /" requests (the demo page, ~10 KB an answer) as fast as the
socket takes them, at most --max-requests, and never reads. It watches the connection
for up to --observe-seconds (default --write-timeout + 5): when the server closes it (our
socket in CLOSE_WAIT or reset, or a send that fails), the server's RSS every second, and a
/health probe a second. --write-timeout S is passed to the demo if its --help mentions
--write-timeout.
Reports how long the server kept the connection, whether it had closed it after 20 s,
the requests it took, and its RSS.
Bound: closed within --write-timeout (10) + --slack (2) s of the first request.
Prints one JSON line; exits 1 if a bound is violated (unless --measure-only), 2 on error.
"""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _hostile as H  # noqa: E402

TCP_STATES = {1: "ESTABLISHED", 7: "CLOSE", 8: "CLOSE_WAIT"}


def tcp_info(sock):
    """(state, unacked bytes in our send queue) from TCP_INFO."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return info[0]
    except OSError:
        return None


def main():
    parser = H.base_parser(__doc__, 120)
    parser.add_argument("--write-timeout", type=float, default=10)
    parser.add_argument("--slack", type=float, default=2)
    parser.add_argument("--observe-seconds", type=float, default=None)
    parser.add_argument("--max-requests", type=int, default=20000)
    args = parser.parse_args()
    observe = args.observe_seconds if args.observe_seconds is not None else args.write_timeout + 5
    if args.timeout < observe + 10:
        args.timeout = observe + 10
    H.install_hard_timeout(args.timeout)

    def run():
        demo_args = ["--news-interval", "0"]
        flag = "--write-timeout" in H.binary_help(args.binary)
        if flag:
            demo_args += ["--write-timeout", str(args.write_timeout)]
        server = H.Server(args.binary, demo_args)
        s = None
        try:
            status, page, _ = H.http_get(server.port, "/", 5)
            if status != 200:
                raise RuntimeError(f"GET / answered {status}")
            rss0 = server.rss_mib()
            request = f"GET / HTTP/1.1\r\nHost: {H.HOST}:{server.port}\r\n\r\n".encode()
            s = H.connect(server.port, 5)
            s.setblocking(False)
            t0 = time.monotonic()
            sent = 0
            last_accept = t0
            closed_at = None
            how = None
            samples = []
            health = []
            health_failures = 0
            next_sample = t0
            pending = b""
            while time.monotonic() - t0 < observe:
                now = time.monotonic()
                if sent // len(request) < args.max_requests:
                    if not pending:
                        pending = request * min(256, args.max_requests - sent // len(request))
                    try:
                        n = s.send(pending)
                        if n:
                            sent += n
                            pending = pending[n:]
                            last_accept = now
                    except BlockingIOError:
                        pass
                    except (ConnectionResetError, BrokenPipeError) as e:
                        closed_at, how = now, f"send {type(e).__name__}"
                        break
                state = tcp_info(s)
                if state in (7, 8):
                    closed_at, how = now, TCP_STATES[state]
                    break
                if now >= next_sample:
                    samples.append([round(now - t0, 1), server.rss_mib()])
                    latency = H.health_latency(server.port, 2)
                    if latency is None:
                        health_failures += 1
                        health.append(2.0)
                    else:
                        health.append(latency)
                    next_sample += 1
                time.sleep(0.01)
            kept = (closed_at or time.monotonic()) - t0
            rss_peak = max([x[1] for x in samples if x[1] is not None] + [server.rss_mib() or 0])
            alive = server.alive()
            requests_taken = sent // len(request)
            figures = {
                "script": "neverread", "binary": args.binary, "page_bytes": len(page),
                "write_timeout_flag_passed": flag, "observed_s": round(kept, 1),
                "closed_by_server": closed_at is not None, "closed_at_s": round(closed_at - t0, 1) if closed_at else None,
                "closed_how": how, "closed_within_20s": closed_at is not None and closed_at - t0 <= 20,
                "requests_taken": requests_taken, "request_bytes_taken": sent,
                "last_accepted_at_s": round(last_accept - t0, 1),
                "response_bytes_owed": requests_taken * len(page),
                "rss_mib_before": rss0, "rss_mib_peak": rss_peak, "rss_mib_end": server.rss_mib(),
                "health_ms": H.summary_ms(health, health_failures),
                "server_alive_at_end": alive,
                "rss_samples": samples[::5],
            }
            s.close()
            s = None
            figures["server_stop"] = server.stop()
            figures["server_stderr_sample"] = server.stderr_log[:4]
            violations = []
            limit = args.write_timeout + args.slack
            if closed_at is None or closed_at - t0 > limit:
                violations.append(f"not closed within {limit} s (observed {kept:.1f} s)")
            if not alive:
                violations.append("the server died")
            return H.emit(figures, violations, args.measure_only)
        finally:
            if s is not None:
                s.close()
            H.Server.kill_all()

    H.main_wrapper(run)


if __name__ == "__main__":
    main()
