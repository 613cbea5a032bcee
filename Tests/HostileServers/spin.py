#!/usr/bin/env python3
"""Reconnection storms a server can cause: `retry: 0`, a server that flaps (one comment, close,
forever), a server that closes without a byte, a server that is gone. The client must keep a
floor of about 0.5 s between attempts and stay cheap on CPU."""

import sys
import time

from _servers import (SSE_HEAD, Suite, answer, closed_port, serve_sequence)

suite = Suite("spin", __doc__)
MAX_RATE = 2.5  # connections (or attempts) per second
MAX_CPU = 0.15  # share of one core


def measure(ctx, server, client, seconds, start_after=1):
    """Waits for `start_after` connections, then counts connections and client CPU over
    `seconds`. Returns (connections per second, CPU share, connections in the window)."""
    server.wait_connections(start_after, 8)
    if len(server.connections) < start_after:
        return None, None, 0
    t_start = time.monotonic()
    n_start = len(server.connections)
    cpu_start = client.cpu_s()
    time.sleep(seconds)
    t_end = time.monotonic()
    n_end = len(server.connections)
    cpu_end = client.cpu_s()
    cpu = None if cpu_start is None or cpu_end is None else (cpu_end - cpu_start) / (t_end - t_start)
    return (n_end - n_start) / (t_end - t_start), cpu, n_end - n_start


def judge(ctx, rate, cpu, what):
    ctx.expect(rate is not None, f"{what}: the client never connected")
    if rate is not None:
        ctx.expect(rate <= MAX_RATE, f"{what}: {rate:.1f} connections/s, over {MAX_RATE}")
    if cpu is not None:
        ctx.expect(cpu <= MAX_CPU, f"{what}: client CPU {cpu * 100:.0f}% of a core, over {MAX_CPU * 100:.0f}%")


@suite.scenario("retry0", cap=20)
def retry0(ctx):
    """Every connection: `retry: 0`, one event, close. Over 5 s: connections/s ≤ 2.5, client
    CPU ≤ 15% of a core."""
    s = ctx.server(answer(SSE_HEAD + b"retry: 0\n\ndata: again\n\n"))
    c = ctx.listen(s.url())
    rate, cpu, n = measure(ctx, s, c, 5)
    judge(ctx, rate, cpu, "retry: 0")
    return f"{rate or 0:.2f} connections/s, CPU {(cpu or 0) * 100:.1f}% over 5 s ({n} connections)"


@suite.scenario("flapping", cap=25)
def flapping(ctx):
    """Every connection: the head, `: hi` (a comment), close; forever. Over 10 s: connections/s
    ≤ 2.5 (the figure for the notes), client CPU ≤ 15%."""
    s = ctx.server(answer(SSE_HEAD + b": hi\n\n"))
    c = ctx.listen(s.url())
    rate, cpu, n = measure(ctx, s, c, 10)
    judge(ctx, rate, cpu, "flapping")
    return f"{rate or 0:.2f} connections/s, CPU {(cpu or 0) * 100:.1f}% over 10 s ({n} connections)"


@suite.scenario("retry0-then-empty", cap=20)
def retry0_then_empty(ctx):
    """`retry: 0` and one event, then every later connection is closed without a byte of
    response: connections/s ≤ 2.5 over 5 s, CPU ≤ 15%."""

    def empty(conn):
        conn.recv_request(timeout=2)

    s = ctx.server(serve_sequence(answer(SSE_HEAD + b"retry: 0\n\ndata: once\n\n"), rest=empty))
    c = ctx.listen(s.url())
    rate, cpu, n = measure(ctx, s, c, 5, start_after=2)
    judge(ctx, rate, cpu, "empty replies")
    return f"{rate or 0:.2f} connections/s, CPU {(cpu or 0) * 100:.1f}% over 5 s ({n} connections)"


@suite.scenario("server-gone", cap=20)
def server_gone(ctx):
    """(a) a port nothing listens on, from the start; (b) `retry: 0` and one event, then the
    server stops listening. Over 5 s each client's CPU ≤ 15% and its attempt lines ≤ 2.5/s."""
    never = ctx.listen(f"http://127.0.0.1:{closed_port()}/events")
    s = ctx.server(answer(SSE_HEAD + b"retry: 0\n\ndata: last\n\n"))
    gone = ctx.listen(s.url())
    gone.wait_events(1, 8)
    s.close_listener()
    time.sleep(0.5)
    figures = []
    samples = {}
    for label, c in (("never listened", never), ("gone after retry: 0", gone)):
        samples[label] = (time.monotonic(), c.cpu_s(), len(c.stderr))
    time.sleep(5)
    for label, c in (("never listened", never), ("gone after retry: 0", gone)):
        t0, cpu0, lines0 = samples[label]
        dt = time.monotonic() - t0
        cpu1 = c.cpu_s()
        cpu = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / dt
        lines = (len(c.stderr) - lines0) / dt
        ctx.expect(cpu is None or cpu <= MAX_CPU, f"{label}: client CPU {cpu * 100 if cpu else 0:.0f}% of a core")
        ctx.expect(lines <= MAX_RATE, f"{label}: {lines:.1f} stderr lines/s")
        ctx.expect(c.alive() or c.proc.returncode == 1, f"{label}: {c.observed()}")
        figures.append(f"{label}: CPU {(cpu or 0) * 100:.1f}%, {lines:.2f} error lines/s")
    return "; ".join(figures)


@suite.scenario("https-retry0", transports=None, cap=20)
def https_retry0(ctx):
    """Over https (trusted test CA): `retry: 0`, one event, close, on every connection:
    connections/s ≤ 2.5 over 5 s, CPU ≤ 15% (TLS handshakes make a spin costly)."""
    s = ctx.server(answer(SSE_HEAD + b"retry: 0\n\ndata: again\n\n"), tls=True)
    c = ctx.listen(s.url(), trust=True, transport=False)
    rate, cpu, n = measure(ctx, s, c, 5)
    judge(ctx, rate, cpu, "https retry: 0")
    return f"{rate or 0:.2f} connections/s, CPU {(cpu or 0) * 100:.1f}% over 5 s ({n} connections)"


if __name__ == "__main__":
    sys.exit(suite.run())
