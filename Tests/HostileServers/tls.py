#!/usr/bin/env python3
"""https with a throwaway CA that only the client under test trusts (see _servers.TestCA):
events arrive, interim 1xx responses before the 200 are skipped, chunked framing works, a
reset mid-event reconnects without printing the partial event, and an untrusted certificate is
a clear error with no event, as is a trusted certificate for another name; a DNS name is sent as
SNI. (On Linux the built-in client speaks TLS through the system's OpenSSL; the redirect
scenarios over https are in redirects.py, the TLS stall in timeouts.py.)"""

import sys
import time

from _servers import (SSE_HEAD, Suite, TestCA, answer, answer_204, chunked, serve_sequence)

suite = Suite("tls", __doc__)


def secure_stream(ctx, *parts, then="close"):
    return ctx.server(serve_sequence(answer(list(parts), then=then), answer_204), tls=True)


@suite.scenario("https-events", transports=None, cap=20)
def https_events(ctx):
    """Two events over https, then the close; the reconnection's 204 ends it (exit 0)."""
    s = secure_stream(ctx, SSE_HEAD + b"retry: 500\n\nid: 1\ndata: one\n\n", b"data: two\n\n")
    c = ctx.listen(s.url(), "--max-attempts", "3", trust=True, transport=False)
    rc = c.wait_exit(10)
    ctx.expect(c.data() == ["one", "two"], f"events {c.data()}")
    ctx.expect(rc == 0, f"exit status {rc}")
    leid = s.requests[1].header("Last-Event-ID") if len(s.requests) > 1 else None
    ctx.expect(leid == "1", f"Last-Event-ID on the reconnection {leid!r}")
    return f"events {c.data()}, exit {rc}, Last-Event-ID {leid!r}"


@suite.scenario("https-interim-1xx", transports=None, cap=20)
def https_interim(ctx):
    """103 Early Hints (Link headers) and 100 Continue before the 200, over https: delivered."""
    interim = (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
               b"HTTP/1.1 100 Continue\r\n\r\n")
    s = secure_stream(ctx, interim + SSE_HEAD + b"retry: 500\n\ndata: after-hints\n\n")
    c = ctx.listen(s.url(), "--max-attempts", "3", trust=True, transport=False)
    rc = c.wait_exit(10)
    ctx.expect(c.data() == ["after-hints"], f"events {c.data()}")
    ctx.expect(rc == 0, f"exit status {rc}")
    return f"events {c.data()}, exit {rc}"


@suite.scenario("https-chunked", transports=None, cap=20)
def https_chunked(ctx):
    """Chunked over https, an event split across chunks with extensions, trailers: delivered."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    s = secure_stream(ctx, head + chunked(b"retry: 500\n\ndata: sp", b"lit\n\n", ext=b";a=b", trailers=b"X-T: 1\r\n"))
    c = ctx.listen(s.url(), "--max-attempts", "3", trust=True, transport=False)
    rc = c.wait_exit(10)
    ctx.expect(c.data() == ["split"], f"events {c.data()}")
    return f"events {c.data()}, exit {rc}"


@suite.scenario("https-reset-mid-event", transports=None, cap=20)
def https_reset(ctx):
    """One event (id 1), half of the next, then an RST under the TLS session: reconnection with
    Last-Event-ID: 1, the partial event never printed."""

    def first(conn):
        conn.recv_request()
        conn.send(SSE_HEAD + b"retry: 500\n\nid: 1\ndata: complete\n\nid: 2\ndata: partial")
        time.sleep(0.2)
        conn.reset()

    s = ctx.server(serve_sequence(first, answer(SSE_HEAD + b"data: second\n\n"), answer_204), tls=True)
    c = ctx.listen(s.url(), "--max-attempts", "4", trust=True, transport=False)
    rc = c.wait_exit(10)
    leid = s.requests[1].header("Last-Event-ID") if len(s.requests) > 1 else None
    ctx.expect(c.data() == ["complete", "second"], f"events {c.data()}")
    ctx.expect(leid == "1", f"Last-Event-ID {leid!r}")
    return f"events {c.data()}, Last-Event-ID {leid!r}, exit {rc}"


@suite.scenario("https-untrusted", transports=None, cap=20)
def https_untrusted(ctx):
    """The same server, the client NOT trusting the test CA: a clear error (exit 1 with
    --max-attempts 2), no event, and the server never gets a request."""
    s = secure_stream(ctx, SSE_HEAD + b"data: secret\n\n")
    c = ctx.listen(s.url(), "--max-attempts", "2", transport=False)
    rc = c.wait_exit(10)
    ctx.expect(not c.data(), f"events {c.data()}")
    ctx.expect(not s.requests, f"{len(s.requests)} requests reached the server")
    ctx.expect(rc == 1 and c.stderr, f"exit status {rc}, stderr {[l for _, l in c.stderr][:1]}")
    return f"exit {rc}, {len(s.connections)} connections, said {(c.stderr[-1][1][:100] if c.stderr else '-')!r}"


@suite.scenario("https-wrong-name", transports=None, cap=20)
def https_wrong_name(ctx):
    """A certificate from the trusted CA, but for other.example only, served on 127.0.0.1 and
    reached as 127.0.0.1 and as localhost: refused both times (exit 1), no request sent."""
    said = []
    for host in ("127.0.0.1", "localhost"):
        context = TestCA.get().server_context("other")
        s = ctx.server(serve_sequence(answer([SSE_HEAD + b"data: secret\n\n"])), tls=context)
        c = ctx.listen(s.url(host=host), "--max-attempts", "1", trust=True, transport=False)
        rc = c.wait_exit(10)
        ctx.expect(not c.data(), f"{host}: events {c.data()}")
        ctx.expect(not s.requests, f"{host}: {len(s.requests)} requests reached the server")
        ctx.expect(rc == 1 and c.stderr, f"{host}: exit status {rc}")
        said.append(f"{host}: exit {rc}, {(c.stderr[-1][1][-60:] if c.stderr else '-')!r}")
    return "; ".join(said)


@suite.scenario("https-dns-name", transports=None, cap=20)
def https_dns_name(ctx):
    """https://localhost: the certificate's DNS name is checked, SNI carries it, events arrive."""
    names = []
    s = ctx.server(serve_sequence(answer([SSE_HEAD + b"retry: 500\n\ndata: by-name\n\n"]), answer_204),
                   tls=TestCA.get().server_context("server", server_names=names))
    c = ctx.listen(s.url(host="localhost"), "--max-attempts", "3", trust=True, transport=False)
    rc = c.wait_exit(10)
    ctx.expect(c.data() == ["by-name"], f"events {c.data()}")
    ctx.expect(rc == 0, f"exit status {rc}")
    ctx.expect(names and all(n == "localhost" for n in names), f"SNI names {names}")
    return f"events {c.data()}, exit {rc}, SNI {names}"


if __name__ == "__main__":
    sys.exit(suite.run())
