#!/usr/bin/env python3
"""HTTP/1.x framing a client meets in the wild, or that a hostile server crafts: what the request
must carry, gzip it did not ask for, interim 1xx responses, HTTP/1.0, chunk extensions and
trailers, bare-LF heads, Content-Length that must bound the body, conflicting framing, content
types, a 101 it never asked for."""

import gzip
import sys
import time

from _servers import (NO_CONTENT, SSE_HEAD, Suite, answer, answer_204, chunked, serve_sequence)

suite = Suite("protocol", __doc__)


def stream_then_204(*parts, then="close"):
    return serve_sequence(answer(list(parts), then=then), answer_204)


def delivered(ctx, c, expected, seconds=8, exit_expected=0):
    """The client prints exactly `expected` (data values) and, with the 204 that follows, exits."""
    c.wait_exit(seconds)
    got = c.data()
    ctx.expect(got == expected, f"events {got[:6]} != {expected}")
    if exit_expected is not None:
        ctx.expect(c.proc.poll() == exit_expected, f"exit status {c.proc.poll()}")
    return f"events {got[:4]}{' ...' if len(got) > 4 else ''}"


@suite.scenario("request-headers", cap=15)
def request_headers(ctx):
    """The request: GET, HTTP/1.1, Host with the port, Accept: text/event-stream, no compression
    offered (no Accept-Encoding, or identity only), Cache-Control: no-cache, Last-Event-ID from
    --last-event-id, no Content-Length/Transfer-Encoding on a GET."""
    s = ctx.server(answer_204)
    c = ctx.listen(s.url("/events?x=1"), "--last-event-id", "41")
    c.wait_exit(8)
    req = s.requests[0] if s.requests else None
    ctx.expect(req is not None, "no request")
    if req is None:
        return "-"
    ae = req.header("Accept-Encoding")
    codings = [p.split(";")[0].strip().lower() for p in (ae or "").split(",") if p.strip()]
    ctx.expect(req.method == "GET", f"method {req.method}")
    ctx.expect(req.target == "/events?x=1", f"target {req.target!r}")
    ctx.expect(req.version == "HTTP/1.1", f"version {req.version!r}")
    ctx.expect(req.header("Host") == f"127.0.0.1:{s.port}", f"Host {req.header('Host')!r}")
    ctx.expect((req.header("Accept") or "").lower() == "text/event-stream", f"Accept {req.header('Accept')!r}")
    ctx.expect(all(x == "identity" for x in codings), f"Accept-Encoding {ae!r} offers compression")
    ctx.expect((req.header("Cache-Control") or "").lower() == "no-cache", f"Cache-Control {req.header('Cache-Control')!r}")
    ctx.expect(req.header("Last-Event-ID") == "41", f"Last-Event-ID {req.header('Last-Event-ID')!r}")
    ctx.expect(req.header("Content-Length") is None and req.header("Transfer-Encoding") is None,
               "a GET with a body header")
    ctx.expect(c.proc.poll() == 0, f"exit status {c.proc.poll()} after a 204")
    return "; ".join(f"{n}: {v}" for n, v in req.headers)


@suite.scenario("gzip-unasked", cap=20)
def gzip_unasked(ctx):
    """A 200 with Content-Encoding: gzip and a gzipped body: the event is decoded and printed,
    or the client says loudly (stderr) that it cannot take that content coding; never a silent
    reconnect with no output (the next connection's 204 would end it with exit 0 and nothing)."""
    body = gzip.compress(b"retry: 500\n\ndata: zipped\n\n")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n\r\n"
    s = ctx.server(stream_then_204(head, body))
    c = ctx.listen(s.url(), "--max-attempts", "2")
    c.wait_exit(8)
    loud = [line for _, line in c.stderr if any(w in line.lower() for w in ("gzip", "encoding", "coding", "compress"))]
    ctx.expect(c.data() == ["zipped"] or bool(loud),
               f"neither decoded ({c.data()[:2]}) nor a loud error (stderr: {[l for _, l in c.stderr][:2]})")
    return f"events {c.data()[:2]}; stderr about the coding: {loud[:1]}"


@suite.scenario("interim-1xx", cap=15)
def interim_1xx(ctx):
    """`103 Early Hints` with two Link headers, then `100 Continue`, then the 200: the events
    are delivered."""
    interim = (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n"
               b"Link: </app.js>; rel=preload; as=script\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n")
    s = ctx.server(stream_then_204(interim + SSE_HEAD + b"retry: 500\n\ndata: after-hints\n\n"))
    c = ctx.listen(s.url(), "--max-attempts", "3")
    return delivered(ctx, c, ["after-hints"])


@suite.scenario("http10-until-close", cap=15)
def http10(ctx):
    """`HTTP/1.0 200` with no Content-Length: the body runs until the close; the events are
    delivered."""
    head = b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
    s = ctx.server(stream_then_204(head, b"retry: 500\n\ndata: one\n\n", b"data: two\n\n"))
    c = ctx.listen(s.url(), "--max-attempts", "3")
    return delivered(ctx, c, ["one", "two"])


@suite.scenario("chunked-extensions-trailers", cap=15)
def chunked_ext(ctx):
    """Chunked, with chunk extensions (`;name=value`, `;q="a;b c"`), events split across chunks,
    and trailer fields after the last chunk: the events are delivered intact."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"
    body = b""
    for piece, ext in ((b"retry: 500\n\ndata: spl", b";name=value"), (b"it\n\ndata: two\n", b';q="a;b c"'),
                       (b"\n", b";x"), (b"data: three\n\n", b"")):
        body += b"%x%s\r\n%s\r\n" % (len(piece), ext, piece)
    body += b"0;end=1\r\nX-T: 1\r\nX-Other: 2\r\n\r\n"
    s = ctx.server(stream_then_204(head, body))
    c = ctx.listen(s.url(), "--max-attempts", "3")
    return delivered(ctx, c, ["split", "two", "three"])


@suite.scenario("bare-lf-head", cap=15)
def bare_lf(ctx):
    """A head with bare LF line ends (all, or mixed with CRLF). RFC 9112 2.2 lets a recipient
    recognize a lone LF as a line terminator, libcurl (the foundation transport) does, and
    so do browsers: both transports accept it and deliver the events."""
    heads = {
        "all LF": b"HTTP/1.1 200 OK\nContent-Type: text/event-stream\n\n",
        "mixed": b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\nCache-Control: no-cache\r\n\n",
    }
    clients = {}
    for label, head in heads.items():
        s = ctx.server(stream_then_204(head + b"retry: 500\n\ndata: lf\n\n"))
        clients[label] = ctx.listen(s.url(), "--max-attempts", "3")
    figures = []
    deadline = time.monotonic() + 8
    for label, c in clients.items():
        c.wait_exit(max(0.1, deadline - time.monotonic()))
        ctx.expect(c.data() == ["lf"], f"{label}: events {c.data()[:3]}, stderr {[l for _, l in c.stderr][:1]}")
        figures.append(f"{label}: {c.data()[:2]}")
    return "; ".join(figures)


@suite.scenario("content-length-bounds-body", cap=15)
def content_length_bounds(ctx):
    """Content-Length: 13 covers `data: first\\n\\n`; the server then sends `data: smuggled\\n\\n`
    on the same connection: only `first` is printed."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 13\r\n\r\n"
    s = ctx.server(stream_then_204(head + b"data: first\n\n" + b"retry: 500\n\ndata: smuggled\n\n"))
    c = ctx.listen(s.url(), "--max-attempts", "3")
    c.wait_exit(8)
    ctx.expect("smuggled" not in c.data(), f"printed the bytes past Content-Length: {c.data()}")
    ctx.expect(c.data()[:1] == ["first"], f"events {c.data()}")
    return f"events {c.data()[:3]}"


@suite.scenario("chunked-and-content-length", cap=15)
def chunked_and_cl(ctx):
    """Both Transfer-Encoding: chunked and Content-Length: 5 (RFC 9112 6.3: chunked wins, or the
    response is an error): never an event made of raw chunk framing; `first` whole or nothing."""
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    s = ctx.server(stream_then_204(head + chunked(b"retry: 500\n\ndata: fi", b"rst\n\n")))
    c = ctx.listen(s.url(), "--max-attempts", "2")
    c.wait_exit(8)
    ctx.expect(all(d == "first" for d in c.data()), f"events {c.data()}")
    return f"events {c.data()[:3]}, stderr {[l[:80] for _, l in c.stderr][:1]}"


@suite.scenario("conflicting-content-length", cap=15)
def conflicting_cl(ctx):
    """Two Content-Length fields that disagree (13 and 14): RFC 9112 6.3 says the user agent
    MUST discard the response: no event, a failure line."""
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 13\r\n"
            b"Content-Length: 14\r\n\r\n")
    s = ctx.server(answer(head + b"data: first\n\n"))
    c = ctx.listen(s.url(), "--max-attempts", "1")
    c.wait_for(lambda x: x.exit_t is not None, 6)
    ctx.expect(not c.data(), f"events {c.data()}")
    ctx.expect(bool(c.stderr), "no failure line")
    return f"events {c.data()[:2]}, stderr {[l[:80] for _, l in c.stderr][:1]}"


@suite.scenario("content-type", cap=15)
def content_type(ctx):
    """`Text/Event-Stream; charset=UTF-8` is accepted; `text/event-streams`, `text/html` and no
    Content-Type at all are refused: exit 1, an error line, no event."""
    cases = {
        "Text/Event-Stream; charset=UTF-8": (b"Content-Type: Text/Event-Stream; charset=UTF-8\r\n", True),
        "text/event-streams": (b"Content-Type: text/event-streams\r\n", False),
        "text/html": (b"Content-Type: text/html\r\n", False),
        "none": (b"", False),
    }
    clients = {}
    for label, (field, ok) in cases.items():
        head = b"HTTP/1.1 200 OK\r\n" + field + b"\r\n"
        s = ctx.server(stream_then_204(head + b"retry: 500\n\ndata: x\n\n"))
        clients[label] = (ctx.listen(s.url(), "--max-attempts", "3"), ok)
    figures = []
    deadline = time.monotonic() + 8
    for label, (c, ok) in clients.items():
        rc = c.wait_exit(max(0.1, deadline - time.monotonic()))
        if ok:
            ctx.expect(c.data() == ["x"] and rc == 0, f"{label}: events {c.data()}, exit {rc}")
        else:
            ctx.expect(not c.data() and rc == 1 and c.stderr, f"{label}: events {c.data()}, exit {rc}")
        figures.append(f"{label}: exit {rc}, {len(c.data())} events")
    return "; ".join(figures)


@suite.scenario("unasked-101", cap=15)
def unasked_101(ctx):
    """`101 Switching Protocols` (Upgrade: websocket) that the client never asked for, then SSE
    bytes: no event, a failure line within 5 s (no hang)."""
    head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    s = ctx.server(answer(head + b"data: upgraded\n\n", then="hold", hold=10))
    c = ctx.listen(s.url(), "--max-attempts", "1")
    c.wait_for(lambda x: x.stderr, 5)
    ctx.expect(not c.data(), f"events {c.data()}")
    ctx.expect(bool(c.stderr), "no failure line within 5 s")
    return f"events {c.data()[:2]}, stderr {[l[:80] for _, l in c.stderr][:1]}"


if __name__ == "__main__":
    sys.exit(suite.run())
