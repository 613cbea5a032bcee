#!/usr/bin/env python3
"""What else an attacker sends: NUL bytes, invalid UTF-8, CR-only line ends and a CRLF split
across reads, byte-order marks, data made to break the JSON output lines, escape sequences and
CR aimed at the terminal reading stderr, 1xx floods (10,000 `100 Continue`, and an endless
trickle of them); and the CLI's own --help."""

import subprocess
import sys
import time

from _servers import (SSE_HEAD, Suite, answer, answer_204, serve_sequence)

suite = Suite("content", __doc__)
MAX_RSS_MIB = 100


def stream(*parts, pause=0.0):
    """A handler: the head, then each part (a pause between them), then close; later
    connections get a 204."""

    def first(conn):
        conn.recv_request()
        conn.send(SSE_HEAD + b"retry: 500\n\n")
        for p in parts:
            if pause:
                time.sleep(pause)
            if not conn.send(p):
                return

    return serve_sequence(first, answer_204)


def run_stream(ctx, *parts, pause=0.0, flags=()):
    s = ctx.server(stream(*parts, pause=pause))
    c = ctx.listen(s.url(), "--max-attempts", "3", *flags)
    c.wait_exit(8)
    return s, c


@suite.scenario("nul-bytes", cap=15)
def nul_bytes(ctx):
    """`data: a\\0b` keeps the NUL (JSON \\u0000); `id: x\\0y` is ignored, as the spec says (the
    next event still has id `1`)."""
    s, c = run_stream(ctx, b"id: 1\ndata: a\x00b\n\n", b"id: x\x00y\ndata: c\n\n")
    events = c.good_events()
    got = [(e.get("data"), e.get("id")) for e in events]
    ctx.expect(got == [("a\x00b", "1"), ("c", "1")], f"events {got}")
    return f"events {got}"


@suite.scenario("invalid-utf8", cap=15)
def invalid_utf8(ctx):
    """`data: a\\xffb\\xc3` and an overlong `\\xc0\\xaf` decode with U+FFFD (the spec's UTF-8
    decode); standard output stays valid UTF-8 JSON."""
    s, c = run_stream(ctx, b"data: a\xffb\xc3\n\n", b"data: \xc0\xaf/\n\n")
    got = c.data()
    ok = got == ["a\ufffdb\ufffd", "\ufffd\ufffd/"]
    ctx.expect(ok, f"events {got!r}")
    return f"events {got!r}"


@suite.scenario("cr-line-ends", cap=15)
def cr_line_ends(ctx):
    """CR-only line ends (`data: one\\r\\r`), CRLF, and a CRLF split across two reads
    (`data: a\\r` | `\\ndata: b\\n\\n` is ONE event `a\\nb`, not two)."""
    s, c = run_stream(ctx, b"data: one\r\rdata: two\r\n\r\n", b"data: a\r", b"\ndata: b\n\n", pause=0.15)
    got = c.data()
    ctx.expect(got == ["one", "two", "a\nb"], f"events {got!r}")
    return f"events {got!r}"


@suite.scenario("bom", cap=15)
def bom(ctx):
    """A UTF-8 BOM at the very start of the stream (split across two reads) is skipped; a BOM
    later is part of a field name (`\\ufeffdata` is not `data`), so that event is empty and not
    dispatched."""

    def first(conn):
        conn.recv_request()
        conn.send(SSE_HEAD + b"\xef")
        time.sleep(0.15)
        conn.send(b"\xbb\xbfretry: 500\n\ndata: bom\n\n\xef\xbb\xbfdata: second-bom\n\ndata: after\n\n")

    s = ctx.server(serve_sequence(first, answer_204))
    c = ctx.listen(s.url(), "--max-attempts", "3")
    c.wait_exit(8)
    got = c.data()
    ctx.expect(got == ["bom", "after"], f"events {got!r}")
    return f"events {got!r}"


@suite.scenario("id-bytes", cap=15)
def id_bytes(ctx):
    """`id: é✓ \x01\x7f` (non-ASCII and control bytes other than NUL/CR/LF): printed as is, and
    the reconnection's Last-Event-ID carries exactly its UTF-8 bytes (no crash building the
    header, no percent-encoding)."""
    ident = "\u00e9\u2713 \x01\x7f"
    s, c = run_stream(ctx, b"id: " + ident.encode() + b"\ndata: x\n\n")
    s.wait_requests(2, 2)
    raw = s.requests[1].header("Last-Event-ID") if len(s.requests) > 1 else None
    sent = raw.encode("latin-1") if raw is not None else None
    ids = [e.get("id") for e in c.good_events()]
    ctx.expect(ids == [ident], f"ids printed {ids!r}")
    ctx.expect(sent == ident.encode(), f"Last-Event-ID bytes {sent!r}, expected {ident.encode()!r}")
    return f"printed {ids!r}, Last-Event-ID bytes {sent!r}"


@suite.scenario("json-breakers", cap=15)
def json_breakers(ctx):
    """Data, event type and id made to break one-JSON-object-per-line: quotes, backslashes,
    `"}` + a fake object, U+2028/U+2029, escape and control bytes, a lone surrogate's bytes
    (invalid, so U+FFFD). Each event is one line that parses back to exactly what was sent."""
    evil = '"},{"type":"fake","data":"pwned\\\\ \u2028\u2029 \x1b[2J\x07\x08\x7f'
    s, c = run_stream(ctx, b"event: " + evil.encode() + b"\nid: " + evil.encode() + b"\ndata: " + evil.encode()
                      + b"\ndata: \xed\xa0\x80\n\n")
    events = c.good_events()
    ctx.expect(len(events) == 1, f"{len(events)} events (lines) for one event: {[e for e in events][:3]}")
    if events:
        e = events[0]
        ctx.expect(e.get("type") == evil, f"type {e.get('type')!r}")
        ctx.expect(e.get("id") == evil, f"id {e.get('id')!r}")
        ctx.expect(e.get("data") == evil + "\n\ufffd\ufffd\ufffd" or e.get("data") == evil + "\n\ufffd",
                   f"data {e.get('data')!r}")
    return f"{len(events)} line(s), keys {sorted(events[0]) if events else None}"


@suite.scenario("stderr-injection", cap=20)
def stderr_injection(ctx):
    """A reason phrase, a Content-Type and a Location carrying ESC sequences, BEL, CR and a forged
    `EventStreamDemo listen:` line: the client says something on stderr (each is a failure), with
    no raw ESC, BEL or CR, and no line it did not write itself."""
    forged = b"\rEventStreamDemo listen: attempt 1 failed: forged; retrying in 0.5 s"
    cases = [
        b"HTTP/1.1 500 \x1b]0;pwned\x07\x1b[2J oops" + forged + b"\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\x1b[31m" + forged + b"\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 302 Found\r\nLocation: gopher://x\x1b[31m/" + forged + b"\r\nContent-Length: 0\r\n\r\n",
    ]
    clients = []
    for head in cases:
        s = ctx.server(answer(head))
        clients.append(ctx.listen(s.url(), "--max-attempts", "2"))
    figures = []
    deadline = time.monotonic() + 8
    for i, c in enumerate(clients):
        c.wait_exit(max(0.1, deadline - time.monotonic()))
        raw = c.stderr_bytes
        ctx.expect(bool(raw.strip()), f"case {i}: nothing on stderr (each case is a failed attempt)")
        for byte, name in ((b"\x1b", "ESC"), (b"\x07", "BEL"), (b"\r", "CR")):
            ctx.expect(byte not in raw, f"case {i}: raw {name} on stderr: {raw[:160]!r}")
        ctx.expect(not any(line.startswith("EventStreamDemo listen: attempt 1 failed: forged")
                           for _, line in c.stderr), f"case {i}: a forged line on stderr")
        figures.append(f"case {i}: {raw[:100]!r}")
    return "; ".join(figures)


@suite.scenario("1xx-flood", cap=20)
def flood_1xx(ctx):
    """10,000 `HTTP/1.1 100 Continue` responses, then the 200: the event is delivered, or a clear
    error, within 10 s; peak RSS under 100 MiB."""
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" * 10000
    s = ctx.server(serve_sequence(answer(interim + SSE_HEAD + b"retry: 500\n\ndata: finally\n\n"), answer_204))
    c = ctx.listen(s.url(), "--max-attempts", "1")
    rc = c.wait_exit(10)
    rss = c.peak_rss_mib()
    ctx.expect(c.data() == ["finally"] or (rc == 1 and c.stderr), f"events {c.data()}, exit {rc}")
    ctx.expect(rss < MAX_RSS_MIB, f"peak RSS {rss} MiB")
    return f"events {c.data()}, exit {rc}, peak RSS {rss} MiB, {(c.stderr[-1][1][:80] if c.stderr else '-')!r}"


@suite.scenario("1xx-endless", cap=20)
def endless_1xx(ctx):
    """`100 Continue` every 10 ms, forever: with --connect-timeout 2 a failure line within
    2-3.5 s (interim responses are not the head); peak RSS under 100 MiB."""

    def trickle(conn):
        conn.recv_request()
        for _ in range(3000):
            if not conn.send(b"HTTP/1.1 100 Continue\r\n\r\n") or conn.wait_gone(0.01):
                return

    s = ctx.server(trickle)
    c = ctx.listen(s.url(), "--connect-timeout", "2", "--read-timeout", "30", "--max-attempts", "1")
    s.wait_connections(1, 5)
    c.wait_for(lambda x: x.stderr, 8)
    took = (c.t0 + c.stderr[0][0] - s.connections[0].t_accept) if c.stderr and s.connections else None
    rss = c.peak_rss_mib()
    # The client may give up on the flood itself (a cap on interim responses) before the
    # connect timeout; either way within the timeout's bound.
    ctx.expect(took is not None and took <= 3.5, f"failure line after {took} s")
    ctx.expect(rss < MAX_RSS_MIB, f"peak RSS {rss} MiB")
    return f"failure line {took and round(took, 2)} s after the connection, peak RSS {rss} MiB"


@suite.scenario("help", transports=None, cap=15)
def help_(ctx):
    """`listen --help` and `serve --help` print a usage (mentioning the new listen flags) and
    exit 0."""
    figures = []
    for sub, words in (("listen", ["--max-attempts", "--connect-timeout", "--read-timeout", "--transport",
                                   "--method", "--data"]), ("serve", ["--port"])):
        try:
            out = subprocess.run([ctx.binary, sub, "--help"], capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            ctx.expect(False, f"{sub} --help hung")
            continue
        text = (out.stdout + out.stderr).decode("utf-8", "replace")
        ctx.expect(out.returncode == 0, f"{sub} --help: exit {out.returncode}: {text[:100]!r}")
        missing = [w for w in words if w not in text]
        ctx.expect(not missing, f"{sub} --help does not mention {missing}")
        figures.append(f"{sub}: exit {out.returncode}, {len(text)} chars")
    return "; ".join(figures)


if __name__ == "__main__":
    sys.exit(suite.run())
