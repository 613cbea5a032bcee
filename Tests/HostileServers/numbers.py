#!/usr/bin/env python3
"""Numbers a server controls: retry fields, redirect ports, Content-Length, chunk sizes, status
codes, head sizes. The client must never trap on them, and must keep its memory bounded."""

import sys
import time

from _servers import (NO_CONTENT, SSE_HEAD, Suite, TRANSPORTS, answer, serve_sequence)

suite = Suite("numbers", __doc__)
MAX_RSS_MIB = 100

HUGE_RETRY = {
    "20 digits": b"99999999999999999999",
    "2^63": b"9223372036854775808",
    "2^64+1": b"18446744073709551617",
    "10^30": b"1" + b"0" * 30,
}


@suite.scenario("retry-huge", cap=20)
def retry_huge(ctx):
    """`retry:` with 20 digits, 2^63, 2^64+1, 10^30, then close: the client stays alive (no trap,
    no exit), and waits a clamped delay of at least the 0.5 s floor before reconnecting."""
    clients = {}
    servers = {}
    for label, value in HUGE_RETRY.items():
        s = ctx.server(serve_sequence(answer(SSE_HEAD + b"retry: " + value + b"\n\ndata: before\n\n")))
        servers[label] = s
        clients[label] = ctx.listen(s.url())
    deadline = time.monotonic() + 8
    for c in clients.values():
        c.wait_events(1, max(0.1, deadline - time.monotonic()))
    time.sleep(2.5)
    figures = []
    for label, c in clients.items():
        s = servers[label]
        ctx.expect(c.data()[:1] == ["before"], f"{label}: the event before the close was not printed")
        rc = c.proc.poll()
        ctx.expect(rc is None or rc == 0, f"{label}: the client exited ({c.observed()})")
        times = s.accept_times()
        gap = times[1] - (s.connections[0].t_accept) if len(times) > 1 else None
        if gap is not None:
            ctx.expect(gap >= 0.4, f"{label}: reconnected after {gap:.2f} s, under the 0.5 s floor")
        delays = [a[3] for a in c.attempts() if a[3] is not None]
        for d in delays:
            ctx.expect(d not in ("inf", "nan") and float(d) < 1e9, f"{label}: retry delay printed as {d}")
        figures.append(f"{label}: {'alive' if rc is None else f'exit {rc}'}, "
                       f"reconnect {'none in 2.5 s' if gap is None else f'after {gap:.2f} s'}, "
                       f"delay said {delays[0] + ' s' if delays else '-'}")
    return "; ".join(figures)


@suite.scenario("retry-not-digits", cap=20)
def retry_not_digits(ctx):
    """`retry: 1500`, then `retry: -1`, `retry: 1e3`, `retry: ５` (fullwidth) and `retry: 2 ` are
    ignored (only ASCII digits count): the reconnection comes about 1.5 s after the close."""
    body = (SSE_HEAD + b"retry: 1500\n\n"
            + b"retry: -1\nretry: 1e3\nretry: \xef\xbc\x95\nretry: 2 \nretry: 0x1\n\ndata: x\n\n")
    s = ctx.server(serve_sequence(answer(body)))
    c = ctx.listen(s.url())
    s.wait_connections(2, 6)
    gap = None
    if len(s.connections) > 1:
        # from the client's view: the first connection ended when the server closed it
        gap = s.connections[1].t_accept - s.connections[0].t_accept
    ctx.expect(gap is not None and 1.3 <= gap <= 2.6,
               f"reconnected after {'never' if gap is None else f'{gap:.2f} s'}, expected about 1.5 s")
    c.wait_exit(3)
    return f"reconnection {'-' if gap is None else f'{gap:.2f} s'} after the close"


def expect_failure_within(ctx, c, deadline, label, events_allowed=False):
    """The client reports a failure on stderr (an attempt line, or its last line on giving up)
    by `deadline` (time.monotonic()) and its peak RSS stays under the bound. Returns a figure."""
    c.wait_for(lambda s: s.stderr or s.exit_t is not None, max(0.0, deadline - time.monotonic()))
    ok = bool(c.stderr)
    ctx.expect(ok, f"{label}: no error line within {deadline - c.t0:.0f} s")
    if not events_allowed:
        ctx.expect(not c.good_events(), f"{label}: printed events {c.data()[:2]} from a broken response")
    rss = c.peak_rss_mib()
    ctx.expect(rss < MAX_RSS_MIB, f"{label}: peak RSS {rss} MiB over {MAX_RSS_MIB}")
    first = c.stderr[0] if c.stderr else None
    said = f"{first[0]:.2f} s: {first[1][:90]!r}" if first else "no error line"
    return f"{label}: {said}, RSS {rss} MiB"


@suite.scenario("redirect-bad-port", cap=25)
def redirect_bad_port(ctx):
    """A 307 to port 65536, 99999, 0, -1 or 20 digits: a clear error line (exit 1 or a retry),
    never a signal."""
    ports = ["65536", "99999", "0", "-1", "99999999999999999999"]
    clients = {}
    for p in ports:
        loc = f"http://127.0.0.1:{p}/events".encode()
        s = ctx.server(answer(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: " + loc + b"\r\nContent-Length: 0\r\n\r\n"))
        clients[p] = ctx.listen(s.url(), "--max-attempts", "2")
    figures = []
    deadline = time.monotonic() + 9
    for p, c in clients.items():
        c.wait_for(lambda s: s.exit_t is not None, max(0.1, deadline - time.monotonic()))
        rc = c.proc.poll()
        ctx.expect(c.stderr, f"port {p}: no error line")
        ctx.expect(rc is None or rc == 1, f"port {p}: exit status {rc}")
        figures.append(f"{p}: {'alive' if rc is None else f'exit {rc}'}, "
                       f"{(c.stderr[-1][1][:80] if c.stderr else '-')!r}")
    return "; ".join(figures)


@suite.scenario("content-length-huge", cap=25)
def content_length_huge(ctx):
    """Content-Length of 26 digits, 2^64, 2^63-1 (valid, must not be preallocated), -1, 1e9, 0x10
    on a text/event-stream 200: an error line, no crash, peak RSS under 100 MiB."""
    values = [b"99999999999999999999999999", b"18446744073709551616", b"9223372036854775807", b"-1", b"1e9", b"0x10"]
    clients = {}
    for v in values:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: " + v + b"\r\n\r\n"
        s = ctx.server(answer(head + b"data: x\n\n"))
        clients[v] = ctx.listen(s.url(), "--max-attempts", "1")
    figures = []
    deadline = time.monotonic() + 6
    for v, c in clients.items():
        figures.append(expect_failure_within(ctx, c, deadline, v.decode(), events_allowed=(v == b"9223372036854775807")))
    return "; ".join(figures)


@suite.scenario("chunk-size-huge", cap=25)
def chunk_size_huge(ctx):
    """Chunk sizes FFFFFFFFFFFFFFFFFFFF (80 bits), 10000000000000000 (2^64), 7FFFFFFFFFFFFFFF
    (valid, must not be preallocated), -1, zz, +5, 0x5, empty: an error line, no event from
    an invalid size, no crash, peak RSS under 100 MiB."""
    sizes = [b"FFFFFFFFFFFFFFFFFFFF", b"10000000000000000", b"7FFFFFFFFFFFFFFF", b"-1", b"zz", b"+5", b"0x5", b""]
    clients = {}
    for size in sizes:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        s = ctx.server(answer(head + size + b"\r\ndata: x\n\n\r\n"))
        clients[size] = ctx.listen(s.url(), "--max-attempts", "1")
    figures = []
    deadline = time.monotonic() + 6
    for size, c in clients.items():
        figures.append(expect_failure_within(ctx, c, deadline, repr(size.decode()), events_allowed=(size == b"7FFFFFFFFFFFFFFF")))
    return "; ".join(figures)


@suite.scenario("status-line-bad", cap=25)
def status_line_bad(ctx):
    """Status lines with a 1 MiB reason phrase, status 20 digits, -200, +200, 2000, version
    HTTP/99999999999999999999.1: an error line, no event, no crash, RSS bounded."""
    lines = {
        "1 MiB reason": b"HTTP/1.1 200 " + b"A" * (1 << 20),
        "status 20 digits": b"HTTP/1.1 99999999999999999999 OK",
        "status -200": b"HTTP/1.1 -200 OK",
        "status +200": b"HTTP/1.1 +200 OK",
        "status 2000": b"HTTP/1.1 2000 OK",
        "version huge": b"HTTP/99999999999999999999.1 200 OK",
    }
    clients = {}
    for label, line in lines.items():
        s = ctx.server(answer(line + b"\r\nContent-Type: text/event-stream\r\n\r\ndata: x\n\n"))
        clients[label] = ctx.listen(s.url(), "--max-attempts", "1")
    deadline = time.monotonic() + 6
    return "; ".join(expect_failure_within(ctx, c, deadline, label) for label, c in clients.items())


@suite.scenario("headers-huge", cap=25)
def headers_huge(ctx):
    """10,000 header fields (400 KB), one 1 MiB header line, and 64 MiB of header lines: an error
    line, no event, no crash, peak RSS under 100 MiB."""
    many = b"".join(b"X-Header-%05d: %s\r\n" % (i, b"v" * 24) for i in range(10000))
    one = b"X-Big: " + b"b" * (1 << 20) + b"\r\n"
    endless = b"X-More: " + b"m" * 1000 + b"\r\n"

    def flood(conn):
        conn.recv_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        for _ in range(64 * 1024):  # 64 MiB, until the client goes
            if not conn.send(endless, timeout=3):
                return

    heads = {
        "10,000 headers": answer(SSE_HEAD[:-2] + many + b"\r\ndata: x\n\n"),
        "1 MiB header": answer(SSE_HEAD[:-2] + one + b"\r\ndata: x\n\n"),
        "64 MiB of headers": flood,
    }
    clients = {}
    servers = {}
    for label, handler in heads.items():
        s = ctx.server(handler)
        servers[label] = s
        clients[label] = ctx.listen(s.url(), "--max-attempts", "1")
    deadline = time.monotonic() + 8
    figures = [expect_failure_within(ctx, c, deadline, label) for label, c in clients.items()]
    sent = servers["64 MiB of headers"].connections
    if sent:
        figures.append(f"flood: the server sent {sent[0].sent / 1048576:.1f} MiB")
    return "; ".join(figures)


if __name__ == "__main__":
    sys.exit(suite.run())
