#!/usr/bin/env python3
"""onebyte.py BINARY [--measure-only] [options]

(a) The server's CPU cost of a request head sent one byte per packet: --requests requests
of a realistic ~600-byte "GET /health" head (a browser's headers), each on a fresh
connection with TCP_NODELAY and one send() per byte, then --requests sent whole. The
server's CPU is read before and after each batch: utime+stime from /proc/PID/stat (clock
ticks, in ms) and, more finely, the sum of /proc/PID/task/*/schedstat (ns). The ratio
(one-byte / whole, per request) uses schedstat when it is there.
(b) --crlf-mib MiB of "\\r\\n" on one connection before any request line: first a probe of
--max-crlf-bytes + 1 KiB and a --probe-wait s pause, then the rest as fast as the socket
takes it. Reports whether and when the server refuses it (a status line, or a close), how
many bytes had been sent by then, its RSS growth and the CPU it spent. If it never refuses,
a valid request line follows, to see whether it is answered.
Bounds: ratio <= --max-ratio (8: measured 2.8-4.0; the old server 39-51); the CRLF flood refused during the probe (within\n--max-crlf-bytes, 65536).
Prints one JSON line; exits 1 if a bound is violated (unless --measure-only), 2 on error.
"""

import fcntl
import os
import select
import socket
import struct
import sys
import termios
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _hostile as H  # noqa: E402

SIOCOUTQ = termios.TIOCOUTQ  # same number on Linux: bytes not yet acknowledged by the peer


def browser_head(port):
    head = (
        f"GET /health HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8\r\n"
        "Accept-Encoding: gzip, deflate, br\r\n"
        "Accept-Language: en-GB,en-US;q=0.9,en;q=0.8,de;q=0.7\r\n"
        "Cache-Control: max-age=0\r\n"
        "Connection: close\r\n"
        "Sec-Ch-Ua: \"Not_A Brand\";v=\"8\", \"Chromium\";v=\"120\"\r\n"
        "Sec-Ch-Ua-Mobile: ?0\r\n"
        "Sec-Ch-Ua-Platform: \"Linux\"\r\n"
        "Sec-Fetch-Dest: document\r\n"
        "Sec-Fetch-Mode: navigate\r\n"
        "Sec-Fetch-Site: none\r\n"
        "Sec-Fetch-User: ?1\r\n"
        "Upgrade-Insecure-Requests: 1\r\n"
        "Cookie: session=3f1c9a7e2b; theme=dark\r\n"
        "\r\n"
    )
    return head.encode()


def sched_ns(pid):
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            pass  # a thread that ended: its time is lost to this sum (rare)
    return total


def cpu_mark(server):
    return server.cpu_ms(), sched_ns(server.pid), time.monotonic()


def cpu_since(server, mark):
    ms, ns, t = mark
    ms2, ns2, t2 = cpu_mark(server)
    return {"ticks_ms": round(ms2 - ms, 1), "sched_ms": round((ns2 - ns) / 1e6, 2) if ns is not None and ns2 is not None else None,
            "wall_s": round(t2 - t, 2)}


def one_request(port, head, byte_by_byte, timeout):
    s = H.connect(port, timeout, nodelay=True)
    try:
        if byte_by_byte:
            for i in range(len(head)):
                s.send(head[i:i + 1])
        else:
            s.sendall(head)
        status, _, _, _ = H.read_response(s, time.monotonic() + timeout)
        return status
    finally:
        s.close()


def batch(server, head, count, byte_by_byte, timeout):
    mark = cpu_mark(server)
    failures = []
    for _ in range(count):
        try:
            status = one_request(server.port, head, byte_by_byte, timeout)
            if status != 200:
                failures.append(f"status {status}")
        except (OSError, ValueError) as e:
            failures.append(f"{type(e).__name__}: {e}")
    used = cpu_since(server, mark)
    used["requests"] = count
    used["failures"] = len(failures)
    used["failure_sample"] = failures[:3]
    used["ticks_ms_per_request"] = round(used["ticks_ms"] / count, 4)
    used["sched_us_per_request"] = round(used["sched_ms"] * 1000 / count, 1) if used["sched_ms"] is not None else None
    return used


def crlf_flood(server, total_bytes, probe_bytes, probe_wait, answer_wait):
    """Sends `probe_bytes` of CRLF and waits `probe_wait` s for a refusal; then, if there was
    none, the rest up to `total_bytes` as fast as the socket takes it; then, if still none,
    a request line. Returns what the server did and when."""
    chunk = b"\r\n" * 32768
    rss0 = server.rss_mib()
    peak = rss0
    mark = cpu_mark(server)
    s = H.connect(server.port, 5)
    s.setblocking(False)
    sent = 0
    out = {"bytes_requested": total_bytes, "probe_bytes": probe_bytes, "refused": False, "refused_in_probe": False,
           "how": None, "answer": None}
    t0 = time.monotonic()
    next_sample = t0
    request_sent = False
    probe_until = None  # once the probe is sent: wait for a refusal until then
    deadline = t0 + 60
    while time.monotonic() < deadline:
        now = time.monotonic()
        limit = probe_bytes if (probe_until is None or now < probe_until) else total_bytes
        want_write = sent < limit or (sent >= total_bytes and not request_sent)
        r, w, _ = select.select([s], [s] if want_write else [], [], 0.05)
        now = time.monotonic()
        if now >= next_sample:
            rss = server.rss_mib()
            if rss is not None:
                peak = max(peak, rss)
            next_sample = now + 0.25
        if r:
            try:
                data = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError) as e:
                data = b""
                out["how"] = f"recv {type(e).__name__}"
            except BlockingIOError:
                data = None
            if data is not None:
                if data:
                    out["answer"] = data[:120].decode("latin-1")
                    out["how"] = out["how"] or "answered"
                else:
                    out["how"] = out["how"] or "EOF"
                try:
                    unacked = struct.unpack("i", fcntl.ioctl(s.fileno(), SIOCOUTQ, b"\0\0\0\0"))[0]
                except OSError:
                    unacked = None
                out.update(at_s=round(now - t0, 3), bytes_sent_before=sent, unacked_then=unacked)
                out["refused"] = not request_sent or not (out["answer"] or "").startswith("HTTP/1.1 2")
                out["refused_in_probe"] = out["refused"] and sent <= probe_bytes
                break
        if w:
            try:
                if sent < limit:
                    n = s.send(chunk[: min(len(chunk), limit - sent)])
                    sent += n
                    if sent >= probe_bytes and probe_until is None:
                        probe_until = time.monotonic() + probe_wait
                    if sent >= total_bytes:
                        out["all_sent_at_s"] = round(now - t0, 3)
                elif sent >= total_bytes and not request_sent:
                    # never refused: does a request line after all that CRLF get an answer?
                    s.send(f"GET /health HTTP/1.1\r\nHost: {H.HOST}\r\nConnection: close\r\n\r\n".encode())
                    request_sent = True
                    deadline = min(deadline, now + answer_wait)
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError) as e:
                out["how"] = f"send {type(e).__name__}"
                out.update(at_s=round(now - t0, 3), bytes_sent_before=sent, refused=True, refused_in_probe=sent <= probe_bytes)
                break
    else:
        out["how"] = "nothing within the wait"
    s.close()
    out["request_line_sent_after_flood"] = request_sent
    out["bytes_sent"] = sent
    out["rss_mib_before"] = rss0
    out["rss_mib_peak"] = peak
    out["rss_mib_growth"] = round(peak - rss0, 1) if peak is not None and rss0 is not None else None
    out["cpu"] = cpu_since(server, mark)
    return out


def main():
    parser = H.base_parser(__doc__, 120)
    parser.add_argument("--requests", type=int, default=300, help="requests per batch (M)")
    parser.add_argument("--request-timeout", type=float, default=5)
    parser.add_argument("--crlf-mib", type=float, default=50)
    parser.add_argument("--answer-wait", type=float, default=5,
                        help="after an unrefused CRLF flood, how long to wait for the answer to a request line")
    parser.add_argument("--max-ratio", type=float, default=8)
    parser.add_argument("--max-crlf-bytes", type=int, default=65536,
                        help="the probe sends this + 1 KiB of CRLF, then waits --probe-wait s for the refusal")
    parser.add_argument("--probe-wait", type=float, default=2)
    args = parser.parse_args()
    H.install_hard_timeout(args.timeout)

    def run():
        server = H.Server(args.binary, ["--news-interval", "0"])
        try:
            head = browser_head(server.port)
            if H.health_latency(server.port, 5) is None:
                raise RuntimeError("the server does not answer /health")
            batch(server, head, 20, False, args.request_timeout)  # warm up
            idle_mark = cpu_mark(server)
            time.sleep(1)  # a measuring window (idle CPU over one second), not a wait
            idle = cpu_since(server, idle_mark)
            whole = batch(server, head, args.requests, False, args.request_timeout)
            bytewise = batch(server, head, args.requests, True, args.request_timeout)
            whole2 = batch(server, head, args.requests, False, args.request_timeout)
            # the whole-head cost: the mean of one batch before and one after the one-byte batch
            whole_sched = (whole["sched_ms"] + whole2["sched_ms"]) / 2 if whole["sched_ms"] is not None else None
            whole_ticks = (whole["ticks_ms"] + whole2["ticks_ms"]) / 2
            if whole_sched is not None and bytewise["sched_ms"] is not None and whole_sched > 0:
                ratio = bytewise["sched_ms"] / whole_sched
                ratio_from = "schedstat"
            else:
                ratio = bytewise["ticks_ms"] / whole_ticks if whole_ticks > 0 else None
                ratio_from = "ticks"
            crlf = crlf_flood(server, int(args.crlf_mib * 1024 * 1024), args.max_crlf_bytes + 1024, args.probe_wait,
                              args.answer_wait)
            alive = server.alive()
            health_after = H.health_latency(server.port, 2)
            rss_end = server.rss_mib()
            stop = server.stop()
            figures = {
                "script": "onebyte", "binary": args.binary, "head_bytes": len(head), "requests": args.requests,
                "idle_cpu_1s": idle,
                "whole": whole, "whole_again": whole2, "one_byte": bytewise,
                "ratio": round(ratio, 1) if ratio is not None else None, "ratio_from": ratio_from,
                "crlf_flood": crlf,
                "health_ms_after": round(health_after * 1000, 2) if health_after is not None else None,
                "rss_mib_end": rss_end, "server_alive_at_end": alive, "server_stop": stop,
                "server_stderr_lines": len(server.stderr_log), "server_stderr_sample": server.stderr_log[:4],
            }
            violations = []
            if ratio is None or ratio > args.max_ratio:
                violations.append(f"one-byte/whole CPU ratio {figures['ratio']} > {args.max_ratio}")
            if not crlf["refused"]:
                violations.append(f"a {args.crlf_mib} MiB CRLF flood was not refused")
            elif not crlf["refused_in_probe"]:
                violations.append(f"the CRLF flood was not refused within {args.max_crlf_bytes} bytes "
                                  f"(+1 KiB, {args.probe_wait} s wait) but after {crlf.get('bytes_sent_before')} bytes sent")
            if bytewise["failures"] or whole["failures"]:
                violations.append(f"failed requests: {bytewise['failures']} one-byte, {whole['failures']} whole")
            if not alive:
                violations.append("the server died")
            return H.emit(figures, violations, args.measure_only)
        finally:
            H.Server.kill_all()

    H.main_wrapper(run)


if __name__ == "__main__":
    main()
