#!/usr/bin/env python3
"""Redirects: credentials must not follow a redirect to another origin (another port on
127.0.0.1 is another origin), a harmless header must; redirect loops and non-HTTP schemes end
in a clear error; an https → http redirect is refused before any byte goes to the http server."""

import sys
import time

from _servers import (NO_CONTENT, Suite, answer, answer_204, serve_sequence)

suite = Suite("redirects", __doc__)

CREDENTIALS = {"Authorization": "Bearer s", "Cookie": "c=1", "Proxy-Authorization": "Basic x"}
HARMLESS = {"X-Trace": "1"}


def header_flags():
    flags = []
    for name, value in {**CREDENTIALS, **HARMLESS}.items():
        flags += ["-H", f"{name}: {value}"]
    return flags


def redirect(location, status=b"307 Temporary Redirect"):
    return answer(b"HTTP/1.1 " + status + b"\r\nLocation: " + location.encode() + b"\r\nContent-Length: 0\r\n\r\n")


def check_headers(ctx, req, where, credentials_expected):
    if req is None:
        ctx.expect(False, f"{where}: no request arrived")
        return "-"
    got = {name: req.header(name) for name in {**CREDENTIALS, **HARMLESS}}
    for name, value in CREDENTIALS.items():
        if credentials_expected:
            ctx.expect(got[name] == value, f"{where}: {name} missing (got {got[name]!r})")
        else:
            ctx.expect(got[name] is None, f"{where}: {name} LEAKED ({got[name]!r})")
    for name, value in HARMLESS.items():
        ctx.expect(got[name] == value, f"{where}: {name} dropped (got {got[name]!r})")
    return ", ".join(f"{n}={'yes' if v else 'no'}" for n, v in got.items())


@suite.scenario("credentials-cross-origin", cap=15)
def credentials_cross_origin(ctx):
    """-H Authorization, Cookie, Proxy-Authorization and X-Trace; a 307 to another port: the
    first origin gets all four, the second only X-Trace; the 204 there ends the client (exit 0)."""
    b = ctx.server(answer_204)
    a = ctx.server(redirect(b.url("/elsewhere")))
    c = ctx.listen(a.url(), *header_flags(), "--max-attempts", "2")
    rc = c.wait_exit(8)
    first = check_headers(ctx, a.requests[0] if a.requests else None, "first origin", True)
    second = check_headers(ctx, b.requests[0] if b.requests else None, "second origin", False)
    ctx.expect(rc == 0, f"exit status {rc} after the 204")
    return f"first origin: {first}; after the 307: {second}"


@suite.scenario("credentials-scheme-relative", cap=15)
def credentials_scheme_relative(ctx):
    """A 302 with a scheme-relative Location `//127.0.0.1:OTHER/x` is another origin too."""
    b = ctx.server(answer_204)
    a = ctx.server(redirect(f"//127.0.0.1:{b.port}/x", b"302 Found"))
    c = ctx.listen(a.url(), *header_flags(), "--max-attempts", "2")
    rc = c.wait_exit(8)
    second = check_headers(ctx, b.requests[0] if b.requests else None, "second origin", False)
    if a.requests[1:]:
        ctx.expect(False, f"the first origin got the scheme-relative path as a request: {a.requests[1].target!r}")
    ctx.expect(rc == 0, f"exit status {rc} after the 204")
    return f"after the 302: {second}"


@suite.scenario("credentials-same-origin", cap=15)
def credentials_same_origin(ctx):
    """A 307 to another path on the same origin keeps every header (the user's credentials are
    for that origin)."""
    a = ctx.server(serve_sequence(lambda conn: None, answer_204))  # placeholder, replaced below
    a.handler = serve_sequence(redirect(a.url("/second")), answer_204)
    c = ctx.listen(a.url(), *header_flags(), "--max-attempts", "2")
    rc = c.wait_exit(8)
    second = check_headers(ctx, a.requests[1] if len(a.requests) > 1 else None, "same origin, after the 307", True)
    ctx.expect(rc == 0, f"exit status {rc} after the 204")
    return f"after the 307: {second}"


@suite.scenario("no-cookie-jar", cap=15)
def no_cookie_jar(ctx):
    """The stream sets `Set-Cookie: planted=1` (and a 307 from another port sets `from-b=1`
    with Domain=127.0.0.1, which cookies share across ports): no later request carries a cookie
    the user did not give with -H. (URLSession's default configuration has a shared cookie jar.)"""
    a = ctx.server(lambda conn: None)
    b = ctx.server(answer(b"HTTP/1.1 307 Temporary Redirect\r\nSet-Cookie: from-b=1; Domain=127.0.0.1; Path=/\r\n"
                          b"Location: " + a.url("/events").encode() + b"\r\nContent-Length: 0\r\n\r\n"))
    a.handler = serve_sequence(
        answer(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nSet-Cookie: planted=1; Path=/\r\n\r\n"
               b"retry: 500\n\ndata: x\n\n"),
        answer_204)
    c = ctx.listen(b.url(), "--max-attempts", "3")
    c.wait_exit(8)
    a.wait_requests(2, 2)
    cookies = [(r.target, r.header("Cookie")) for r in a.requests + b.requests[1:]]
    ctx.expect(len(a.requests) >= 2, f"{len(a.requests)} requests to the stream's origin")
    ctx.expect(all(v is None for _, v in cookies), f"cookies sent: {cookies}")
    return f"requests and their Cookie: {cookies}"


@suite.scenario("redirect-loop", cap=20)
def redirect_loop(ctx):
    """A 307 to itself, forever: a clear error and exit 1 within 10 s, with a bounded number of
    requests (≤ 25 with --max-attempts 2)."""
    a = ctx.server(lambda conn: None)
    a.handler = redirect(a.url("/loop"))
    c = ctx.listen(a.url(), "--max-attempts", "2")
    rc = c.wait_exit(10)
    n = len(a.requests)
    ctx.expect(rc == 1, f"exit status {rc}")
    ctx.expect(n <= 25, f"{n} requests")
    ctx.expect(bool(c.stderr), "no error line")
    return f"{n} requests, exit {rc}, said {(c.stderr[-1][1][:100] if c.stderr else '-')!r}"


@suite.scenario("redirect-scheme", cap=20)
def redirect_scheme(ctx):
    """A 302 to file:///etc/passwd, ftp://127.0.0.1/, javascript:alert(1), gopher://127.0.0.1:70/:
    a clear error, exit 1, no crash."""
    targets = ["file:///etc/passwd", "ftp://127.0.0.1/x", "javascript:alert(1)", "gopher://127.0.0.1:70/x"]
    clients = {}
    for t in targets:
        a = ctx.server(redirect(t, b"302 Found"))
        clients[t] = ctx.listen(a.url(), "--max-attempts", "2")
    figures = []
    deadline = time.monotonic() + 9
    for t, c in clients.items():
        rc = c.wait_exit(max(0.1, deadline - time.monotonic()))
        ctx.expect(rc == 1, f"{t}: exit status {rc}")
        ctx.expect(not c.good_events(), f"{t}: printed {c.data()[:2]}")
        figures.append(f"{t}: exit {rc}, {(c.stderr[-1][1][:80] if c.stderr else '-')!r}")
    return "; ".join(figures)


@suite.scenario("https-to-http", transports=None, cap=20)
def https_to_http(ctx):
    """An https server (trusted test CA) answers 307 to an http server: the client refuses it
    with a clear error and exit 1; the http server never receives a byte."""
    plain = ctx.server(answer_204)
    secure = ctx.server(None, tls=True)
    secure.handler = redirect(plain.url("/downgraded"))
    c = ctx.listen(secure.url(), *header_flags(), "--max-attempts", "2", trust=True, transport=False)
    rc = c.wait_exit(10)
    ctx.expect(len(secure.requests) >= 1, "the https server got no request (trust or TLS failed)")
    ctx.expect(not plain.connections, f"the http server got {len(plain.connections)} connection(s)")
    ctx.expect(rc == 1, f"exit status {rc}")
    return (f"https requests {len(secure.requests)}, http connections {len(plain.connections)}, exit {rc}, "
            f"said {(c.stderr[-1][1][:100] if c.stderr else '-')!r}")


@suite.scenario("https-credentials-cross-origin", transports=None, cap=20)
def https_credentials_cross_origin(ctx):
    """Over https (trusted test CA): a 307 to another https port drops the credentials and keeps
    X-Trace."""
    b = ctx.server(answer_204, tls=True)
    a = ctx.server(redirect(b.url("/elsewhere")), tls=True)
    c = ctx.listen(a.url(), *header_flags(), "--max-attempts", "2", trust=True, transport=False)
    rc = c.wait_exit(10)
    first = check_headers(ctx, a.requests[0] if a.requests else None, "first origin", True)
    second = check_headers(ctx, b.requests[0] if b.requests else None, "second origin", False)
    ctx.expect(rc == 0, f"exit status {rc} after the 204")
    return f"first origin: {first}; after the 307: {second}"


if __name__ == "__main__":
    sys.exit(suite.run())
