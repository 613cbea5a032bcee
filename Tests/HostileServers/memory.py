#!/usr/bin/env python3
"""Memory and partial data: an endless line, an endless event, a flood of comments, events at
full speed into a client whose standard output nobody reads (both also over TLS), and connections that end in the
middle of an event (RST or FIN, plain or chunked). Bounded memory; the partial event is never
printed; the reconnection carries the last complete event's id."""

import sys
import time

from _servers import (NO_CONTENT, SSE_HEAD, Suite, answer, answer_204, serve_sequence)

suite = Suite("memory", __doc__)
MAX_RSS_MIB = 100


def pump(prefix, block, limit_mib, then=None):
    """A handler: the head + prefix, then `block` again and again up to limit_mib MiB or until the
    client is gone."""

    def handler(conn):
        conn.recv_request()
        conn.send(SSE_HEAD + prefix)
        blocks = (limit_mib << 20) // len(block)
        for _ in range(blocks):
            if not conn.send(block, timeout=3):
                return
        if then:
            conn.send(then)

    return handler


@suite.scenario("endless-line", cap=25)
def endless_line(ctx):
    """`data: xxxx...` with no line end, at full speed (up to 256 MiB): an error (a line limit)
    within 10 s, peak RSS under 100 MiB."""
    s = ctx.server(pump(b"data: ", b"x" * 65536, 256))
    c = ctx.listen(s.url(), "--max-attempts", "1")
    c.wait_for(lambda x: x.stderr or x.exit_t is not None, 10)
    rss = c.peak_rss_mib()
    ctx.expect(bool(c.stderr), "no error within 10 s")
    ctx.expect(rss < MAX_RSS_MIB, f"peak RSS {rss} MiB")
    ctx.expect(not c.data(), f"events {len(c.data())}")
    sent = s.connections[0].sent / 1048576 if s.connections else 0
    return f"error after {sent:.1f} MiB sent: {(c.stderr[0][1][:90] if c.stderr else '-')!r}; peak RSS {rss} MiB"


@suite.scenario("endless-event", cap=25)
def endless_event(ctx):
    """`data: <1 KiB>` lines with no blank line, at full speed (up to 256 MiB): an error (an event
    size limit) within 10 s, peak RSS under 100 MiB."""
    s = ctx.server(pump(b"", b"data: " + b"y" * 1017 + b"\n", 256))
    c = ctx.listen(s.url(), "--max-attempts", "1")
    c.wait_for(lambda x: x.stderr or x.exit_t is not None, 10)
    rss = c.peak_rss_mib()
    ctx.expect(bool(c.stderr), "no error within 10 s")
    ctx.expect(rss < MAX_RSS_MIB, f"peak RSS {rss} MiB")
    ctx.expect(not c.data(), f"events {len(c.data())}")
    sent = s.connections[0].sent / 1048576 if s.connections else 0
    return f"error after {sent:.1f} MiB sent: {(c.stderr[0][1][:90] if c.stderr else '-')!r}; peak RSS {rss} MiB"


@suite.scenario("comment-flood", cap=25)
def comment_flood(ctx, tls=False):
    """64 MiB of `: ping` comment lines, then one event: the event is printed, peak RSS under
    100 MiB (comments are not kept)."""
    s = ctx.server(serve_sequence(pump(b"retry: 500\n", b": ping ping ping\n" * 4096, 64, then=b"data: after\n\n"),
                                  answer_204), tls=tls)
    c = ctx.listen(s.url(), "--max-attempts", "2", trust=tls, transport=not tls)
    c.wait_exit(15)
    rss = c.peak_rss_mib()
    ctx.expect(c.data() == ["after"], f"events {c.data()[:3]}")
    ctx.expect(rss < MAX_RSS_MIB, f"peak RSS {rss} MiB")
    return f"events {c.data()[:2]}, peak RSS {rss} MiB"


@suite.scenario("id-huge", cap=20)
def id_huge(ctx):
    """`id:` with just under 1 MiB of bytes once (within the line limit), then 300 six-byte events: the client ignores the ID (it
    is over the 4 KiB limit), so each event costs what it is, not a megabyte of output each."""
    events = b"".join(b"data: %d\n\n" % i for i in range(300))
    s = ctx.server(serve_sequence(answer([SSE_HEAD + b"retry: 500\nid: e0\n\nid: " + b"a" * ((1 << 20) - 16) + b"\n" + events]), answer_204))
    c = ctx.listen(s.url(), "--max-attempts", "2")
    rc = c.wait_exit(15)
    out = c.stdout_bytes
    ctx.expect(len(c.data()) == 300, f"{len(c.data())} events")
    ctx.expect(out < 100_000, f"{out} bytes printed for 300 events")
    leid = s.requests[1].header("Last-Event-ID") if len(s.requests) > 1 else None
    ctx.expect(leid == "e0", f"Last-Event-ID on the reconnection {leid and leid[:20]!r}")
    return f"{len(c.data())} events, {out} bytes printed, Last-Event-ID {leid!r}, exit {rc}"


@suite.scenario("https-comment-flood", transports=None, cap=25)
def https_comment_flood(ctx):
    """comment-flood over TLS: OpenSSL's buffers stay bounded too."""
    return comment_flood(ctx, tls=True)


@suite.scenario("unread-stdout", cap=40)
def unread_stdout(ctx, tls=False):
    """300,000 events (about 60 MiB) at full speed while nobody reads the client's standard
    output for 4 s: peak RSS stays under 100 MiB (the client stops reading the socket instead of
    buffering); then, read, every event arrives once and in order."""
    n = 300000
    pad = b"p" * 160

    def flood(conn):
        conn.recv_request()
        conn.send(SSE_HEAD + b"retry: 500\n\n")
        batch = []
        for i in range(n):
            batch.append(b"id: %d\ndata: %d %s\n\n" % (i, i, pad))
            if len(batch) == 2000:
                if not conn.send(b"".join(batch), timeout=20):
                    return
                batch = []
        conn.send(b"".join(batch), timeout=20)

    s = ctx.server(serve_sequence(flood, answer_204), tls=tls)
    c = ctx.listen(s.url(), "--max-attempts", "2", read_stdout=False, trust=tls, transport=not tls)
    s.wait_connections(1, 5)
    time.sleep(4)
    rss_blocked = c.peak_rss_mib()
    sent_blocked = s.connections[0].sent / 1048576 if s.connections else 0
    c.stdout_gate.set()
    c.wait_exit(25)
    data = c.data()
    in_order = all(d.split(" ", 1)[0] == str(i) for i, d in enumerate(data))
    ctx.expect(rss_blocked < MAX_RSS_MIB, f"peak RSS {rss_blocked} MiB while stdout was not read")
    ctx.expect(len(data) == n and in_order, f"{len(data)} events of {n}, in order: {in_order}")
    rss = c.peak_rss_mib()
    return (f"while stdout unread: server sent {sent_blocked:.1f} MiB, client peak RSS {rss_blocked} MiB; "
            f"then {len(data)} events in order {in_order}, peak RSS {rss} MiB")


@suite.scenario("https-unread-stdout", transports=None, cap=40)
def https_unread_stdout(ctx):
    """unread-stdout over TLS: the client stops reading the socket, not decrypting into memory."""
    return unread_stdout(ctx, tls=True)


def partial_then(ending, framing="plain"):
    def first(conn):
        conn.recv_request()
        events = b"retry: 500\n\nid: 1\ndata: complete\n\n"
        partial = b"id: 2\ndata: partial"
        if framing == "chunked":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            conn.send(b"%x\r\n%s\r\n" % (len(events), events))
            conn.send(b"%x\r\n%s" % (len(partial) + 40, partial))  # the chunk is cut too
        else:
            conn.send(SSE_HEAD + events + partial)
        time.sleep(0.2)
        if ending == "reset":
            conn.reset()

    def second(conn):
        conn.recv_request()
        conn.send(SSE_HEAD + b"data: second\n\n")

    return serve_sequence(first, second, answer_204)


def partial_scenario(ctx, ending, framing="plain"):
    s = ctx.server(partial_then(ending, framing))
    c = ctx.listen(s.url(), "--max-attempts", "4")
    c.wait_exit(8)
    s.wait_requests(2, 1)
    leid = s.requests[1].header("Last-Event-ID") if len(s.requests) > 1 else None
    ctx.expect(c.data() == ["complete", "second"], f"events {c.data()}")
    ctx.expect(leid == "1", f"Last-Event-ID on the reconnection {leid!r}")
    ctx.expect(c.proc.poll() == 0, f"exit status {c.proc.poll()}")
    return f"events {c.data()}, Last-Event-ID {leid!r}"


@suite.scenario("reset-mid-event", cap=20)
def reset_mid_event(ctx):
    """One complete event (id 1), half of the next, then RST (SO_LINGER 0): the client
    reconnects with Last-Event-ID: 1, the partial event is never printed."""
    return partial_scenario(ctx, "reset")


@suite.scenario("close-mid-event", cap=20)
def close_mid_event(ctx):
    """The same with a FIN instead of an RST."""
    return partial_scenario(ctx, "close")


@suite.scenario("close-mid-chunk", cap=20)
def close_mid_chunk(ctx):
    """Chunked: a complete event in one chunk, then a chunk cut in the middle of the next event,
    then a FIN: the partial event is never printed; reconnection with Last-Event-ID: 1."""
    return partial_scenario(ctx, "close", "chunked")


if __name__ == "__main__":
    sys.exit(suite.run())
