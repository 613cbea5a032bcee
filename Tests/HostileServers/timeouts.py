#!/usr/bin/env python3
"""Servers that stall: accept and never answer, answer the head then go silent, dribble the head
one byte a second, accept TCP and never do the TLS handshake, never accept at all (SYN dropped).
--connect-timeout must cover everything up to the end of the response head, --read-timeout the
silences of an open stream; each fires within about a second of its value, and the client
reconnects with Last-Event-ID."""

import socket
import sys
import time

from _servers import (HOST, SSE_HEAD, Suite, answer, answer_204, serve_sequence)

suite = Suite("timeouts", __doc__)
SLACK = 1.0  # s after the timeout's value


def first_error_after(c, t_ref):
    """Seconds from t_ref (time.monotonic()) to the client's first stderr line, or None."""
    if not c.stderr:
        return None
    return c.t0 + c.stderr[0][0] - t_ref


@suite.scenario("connect-timeout-silent", cap=20)
def connect_timeout_silent(ctx):
    """Accepts, reads the request, never answers. --connect-timeout 1: a failure line within
    1-2 s of the connection, then a retry (a second connection)."""
    s = ctx.server(lambda conn: (conn.recv_request(), conn.hold(15)))
    c = ctx.listen(s.url(), "--connect-timeout", "1", "--read-timeout", "30", "--max-attempts", "3")
    s.wait_connections(1, 5)
    c.wait_for(lambda x: x.stderr, 5)
    took = first_error_after(c, s.connections[0].t_accept) if s.connections else None
    ctx.expect(took is not None and 0.8 <= took <= 1 + SLACK, f"failure line after {took} s")
    s.wait_connections(2, 6)
    retry = (s.connections[1].t_accept - s.connections[0].t_accept) if len(s.connections) > 1 else None
    ctx.expect(retry is not None, "no second connection within 6 s of the failure")
    return f"failure line {took and round(took, 2)} s after the connection; second connection after {retry and round(retry, 2)} s"


@suite.scenario("read-timeout-silent", cap=20)
def read_timeout_silent(ctx, tls=False):
    """The head and `retry: 500`, `id: e1`, one event; then silence. --read-timeout 1: the
    server sees a second connection 1-2.8 s after the event, carrying Last-Event-ID: e1."""
    sent = {}

    def first(conn):
        conn.recv_request()
        conn.send(SSE_HEAD + b"retry: 500\nid: e1\ndata: one\n\n")
        sent["t"] = time.monotonic()
        conn.hold(15)

    s = ctx.server(serve_sequence(first, answer_204), tls=tls)
    c = ctx.listen(s.url(), "--read-timeout", "1", "--connect-timeout", "5", "--max-attempts", "3",
                   trust=tls, transport=not tls)
    s.wait_connections(2, 8)
    gap = (s.connections[1].t_accept - sent["t"]) if len(s.connections) > 1 and "t" in sent else None
    ctx.expect(c.data()[:1] == ["one"], f"events {c.data()[:3]}")
    ctx.expect(gap is not None and 0.9 <= gap <= 1 + 0.5 + SLACK + 0.3, f"reconnected after {gap} s")
    s.wait_requests(2, 3)
    leid = s.requests[1].header("Last-Event-ID") if len(s.requests) > 1 else None
    ctx.expect(leid == "e1", f"Last-Event-ID on the reconnection: {leid!r}")
    c.wait_exit(3)
    return f"reconnected {gap and round(gap, 2)} s after the last byte, Last-Event-ID {leid!r}"


@suite.scenario("https-read-timeout-silent", transports=None, cap=20)
def https_read_timeout_silent(ctx):
    """read-timeout-silent over TLS."""
    return read_timeout_silent(ctx, tls=True)


@suite.scenario("read-timeout-flowing", cap=20)
def read_timeout_flowing(ctx):
    """An event every 0.8 s with a comment between (a byte every 0.4 s) for 3.2 s:
    --read-timeout 1 never fires while bytes flow (one connection, four events), then the
    close and a 204."""

    def first(conn):
        conn.recv_request()
        conn.send(SSE_HEAD + b"retry: 500\n\n")
        for i in range(8):
            if conn.wait_gone(0.4):
                return
            conn.send(b": ping\n\n" if i % 2 == 0 else b"data: tick %d\n\n" % i)

    s = ctx.server(serve_sequence(first, answer_204))
    c = ctx.listen(s.url(), "--read-timeout", "1", "--connect-timeout", "5", "--max-attempts", "3")
    c.wait_exit(8)
    ctx.expect(c.data() == ["tick 1", "tick 3", "tick 5", "tick 7"], f"events {c.data()}")
    ctx.expect(len(s.connections) == 2, f"{len(s.connections)} connections, expected 2 (stream, 204)")
    return f"{len(c.data())} events over {len(s.connections)} connections"


@suite.scenario("dribbled-head", cap=20)
def dribbled_head(ctx):
    """The head, one byte a second. --connect-timeout 1 (--read-timeout 5): a failure line
    within 1-2 s of the connection: the connect timeout covers the whole head."""
    s = ctx.server(lambda conn: (conn.recv_request(), conn.dribble(SSE_HEAD + b"data: late\n\n", 1.0)))
    c = ctx.listen(s.url(), "--connect-timeout", "1", "--read-timeout", "5", "--max-attempts", "1")
    s.wait_connections(1, 5)
    c.wait_for(lambda x: x.stderr, 6)
    took = first_error_after(c, s.connections[0].t_accept) if s.connections else None
    ctx.expect(took is not None and 0.8 <= took <= 1 + SLACK, f"failure line after {took} s")
    return f"failure line {took and round(took, 2)} s after the connection"


@suite.scenario("tls-stall", transports=None, cap=20)
def tls_stall(ctx):
    """An https URL whose server accepts TCP and never says a word of TLS. --connect-timeout 1:
    a failure line within 1-2 s."""
    s = ctx.server(lambda conn: conn.hold(15))  # plain TCP: the ClientHello is never answered
    c = ctx.listen(s.url(scheme="https"), "--connect-timeout", "1", "--max-attempts", "1", transport=False)
    s.wait_connections(1, 5)
    c.wait_for(lambda x: x.stderr, 6)
    took = first_error_after(c, s.connections[0].t_accept) if s.connections else None
    ctx.expect(took is not None and 0.8 <= took <= 1 + SLACK, f"failure line after {took} s")
    return f"failure line {took and round(took, 2)} s after the TCP connection"


@suite.scenario("syn-dropped", cap=20)
def syn_dropped(ctx):
    """A listener whose accept queue is full (backlog 0, never accepts): the client's SYN is
    dropped, TCP connect hangs. --connect-timeout 1: a failure line within 1-2 s."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = [listener]
    ctx.closers.append(lambda: [f.close() for f in fillers])
    for _ in range(8):  # fill the queue until a connect no longer completes
        f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        f.settimeout(0.3)
        fillers.append(f)
        try:
            f.connect((HOST, port))
        except (socket.timeout, OSError):
            break
    t = time.monotonic()
    c = ctx.listen(f"http://{HOST}:{port}/events", "--connect-timeout", "1", "--max-attempts", "1")
    c.wait_for(lambda x: x.stderr, 6)
    took = first_error_after(c, t)
    ctx.expect(took is not None and 0.8 <= took <= 1 + SLACK + 0.2, f"failure line after {took} s")
    return f"failure line {took and round(took, 2)} s after the start"


if __name__ == "__main__":
    sys.exit(suite.run())
