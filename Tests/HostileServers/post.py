#!/usr/bin/env python3
"""POST streams, LLM style: the body arrives exactly, with a correct Content-Length, on every
request (reconnections and 307 too); an OpenAI-style stream is printed in full; a 303 turns the
POST into a GET without a body."""

import json
import os
import sys
import tempfile
import time

from _servers import (SSE_HEAD, Suite, answer, answer_204, serve_sequence)

suite = Suite("post", __doc__)

BODY = b'{"q":1}'


def openai_stream(n):
    out = SSE_HEAD + b"retry: 500\n\n"
    for i in range(n):
        chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": {"content": f"tok {i} \u00e9\u2028\"q\""}, "finish_reason": None}]}
        out += b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"
    return out + b"data: [DONE]\n\n"


def check_post(ctx, req, where, body, content_type="application/json"):
    if req is None:
        ctx.expect(False, f"{where}: no request")
        return
    ctx.expect(req.method == "POST", f"{where}: method {req.method}")
    ctx.expect(req.body == body, f"{where}: body {req.body[:40]!r} ({len(req.body)} bytes) != {body[:40]!r} ({len(body)} bytes)")
    if getattr(req, "chunked", False):
        ctx.expect(False, f"{where}: the body was sent chunked, not with a Content-Length")
    else:
        ctx.expect(req.header("Content-Length") == str(len(body)), f"{where}: Content-Length {req.header('Content-Length')!r}")
    ctx.expect(req.header("Content-Type") == content_type, f"{where}: Content-Type {req.header('Content-Type')!r}")
    ctx.expect((req.header("Accept") or "").lower() == "text/event-stream", f"{where}: Accept {req.header('Accept')!r}")


@suite.scenario("openai-stream", cap=20)
def openai(ctx):
    """--method POST --data '{"q":1}' -H 'Content-Type: application/json': the server gets that
    body with Content-Length: 7; 50 `data: {json}` chunks and `data: [DONE]` are printed in full
    and in order; the reconnection after the close carries the body again; its 204 ends it."""
    n = 50
    s = ctx.server(serve_sequence(answer(openai_stream(n)), answer_204))
    c = ctx.listen(s.url("/v1/chat/completions"), "--method", "POST", "--data", BODY.decode(),
                   "-H", "Content-Type: application/json", "--max-attempts", "3")
    c.wait_exit(10)
    check_post(ctx, s.requests[0] if s.requests else None, "first request", BODY)
    if len(s.requests) > 1:
        check_post(ctx, s.requests[1], "reconnection", BODY)
    data = c.data()
    expected = [json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                            "choices": [{"index": 0, "delta": {"content": f"tok {i} \u00e9\u2028\"q\""},
                                         "finish_reason": None}]}, ensure_ascii=False) for i in range(n)] + ["[DONE]"]
    ctx.expect(data == expected, f"{len(data)} events, first difference at "
               f"{next((i for i, (a, b) in enumerate(zip(data, expected)) if a != b), min(len(data), len(expected)))}")
    ctx.expect(c.proc.poll() == 0, f"exit status {c.proc.poll()}")
    return f"{len(data)} events, last {data[-1] if data else None!r}; {len(s.requests)} requests"


@suite.scenario("post-data-file", cap=20)
def post_data_file(ctx):
    """--data-file with 1 MiB of arbitrary bytes (NUL, CR, LF, invalid UTF-8): the server gets
    exactly those bytes with Content-Length: 1048576."""
    payload = bytes(range(256)) * 4096
    fd, path = tempfile.mkstemp(prefix="hostile-post-")
    with os.fdopen(fd, "wb") as f:
        f.write(payload)
    ctx.closers.append(lambda: os.unlink(path))
    s = ctx.server(answer_204)
    c = ctx.listen(s.url("/upload"), "--method", "POST", "--data-file", path,
                   "-H", "Content-Type: application/octet-stream", "--max-attempts", "2")
    c.wait_exit(10)
    check_post(ctx, s.requests[0] if s.requests else None, "request", payload, "application/octet-stream")
    ctx.expect(c.proc.poll() == 0, f"exit status {c.proc.poll()}")
    req = s.requests[0] if s.requests else None
    return f"received {len(req.body) if req else 0} bytes, Expect: {req.header('Expect') if req else None!r}"


@suite.scenario("post-307", cap=20)
def post_307(ctx):
    """A 307 (and a 308) to another path keeps the method and the body (RFC 9110 15.4.8)."""
    s = ctx.server(lambda conn: None)
    s.handler = serve_sequence(
        answer(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /v2\r\nContent-Length: 0\r\n\r\n"),
        answer(b"HTTP/1.1 308 Permanent Redirect\r\nLocation: /v3\r\nContent-Length: 0\r\n\r\n"),
        answer_204)
    c = ctx.listen(s.url("/v1"), "--method", "POST", "--data", BODY.decode(),
                   "-H", "Content-Type: application/json", "--max-attempts", "2")
    c.wait_exit(10)
    s.wait_requests(3, 2)
    for i, where in ((1, "after the 307"), (2, "after the 308")):
        check_post(ctx, s.requests[i] if len(s.requests) > i else None, where, BODY)
    return "; ".join(f"{r.method} {r.target} {len(r.body)} bytes" for r in s.requests)


@suite.scenario("post-303", cap=20)
def post_303(ctx):
    """A 303 See Other turns the POST into a GET with no body, no Content-Length and no
    Content-Type (RFC 9110 15.4.4)."""
    s = ctx.server(lambda conn: None)
    s.handler = serve_sequence(
        answer(b"HTTP/1.1 303 See Other\r\nLocation: /result\r\nContent-Length: 0\r\n\r\n"), answer_204)
    c = ctx.listen(s.url("/v1"), "--method", "POST", "--data", BODY.decode(),
                   "-H", "Content-Type: application/json", "--max-attempts", "2")
    c.wait_exit(10)
    s.wait_requests(2, 2)
    r = s.requests[1] if len(s.requests) > 1 else None
    ctx.expect(r is not None, "no request after the 303")
    if r is not None:
        ctx.expect(r.method == "GET", f"method after the 303: {r.method}")
        ctx.expect(r.body == b"" and r.header("Content-Length") in (None, "0"),
                   f"a body after the 303: {r.body[:20]!r}, Content-Length {r.header('Content-Length')!r}")
        ctx.expect(r.header("Content-Type") is None, f"Content-Type after the 303: {r.header('Content-Type')!r}")
    return "; ".join(f"{r.method} {r.target} {len(r.body)} bytes" for r in s.requests)


def big_file(ctx, mib):
    fd, path = tempfile.mkstemp(prefix="hostile-post-")
    with os.fdopen(fd, "wb") as f:
        f.write(b"z" * (mib << 20))
    ctx.closers.append(lambda: os.unlink(path))
    return path


@suite.scenario("post-early-close", cap=20)
def post_early_close(ctx):
    """The server reads the head of a 32 MiB POST, answers 401 at once and resets the connection
    while the body is still being written: no death by SIGPIPE; an error line; exit 1 with
    --max-attempts 1."""

    def early(conn):
        # read only the head (the body is far larger than the socket buffers)
        holder = [b""]
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in holder[0] and conn._recv_into(deadline, holder):
            pass
        conn.send(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.reset()

    s = ctx.server(early)
    c = ctx.listen(s.url(), "--method", "POST", "--data-file", big_file(ctx, 32),
                   "-H", "Content-Type: application/octet-stream", "--max-attempts", "1")
    rc = c.wait_exit(10)
    ctx.expect(rc == 1 and c.stderr, f"exit {rc}, stderr {[l for _, l in c.stderr][-1:]}")
    return f"exit {rc}, said {(c.stderr[-1][1][:100] if c.stderr else '-')!r}"


@suite.scenario("post-body-unread", cap=20)
def post_body_unread(ctx):
    """The server reads only the head of a 32 MiB POST, answers 200 with an event, and never
    reads the body: the event is printed (the client reads while it writes), or --connect-timeout
    2 ends the attempt within 2-3.5 s; never a hang."""

    def unread(conn):
        holder = [b""]
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in holder[0] and conn._recv_into(deadline, holder):
            pass
        conn.send(SSE_HEAD + b"data: early\n\n")
        time.sleep(15)

    s = ctx.server(unread)
    c = ctx.listen(s.url(), "--method", "POST", "--data-file", big_file(ctx, 32),
                   "-H", "Content-Type: application/octet-stream", "--connect-timeout", "2",
                   "--max-attempts", "1")
    s.wait_connections(1, 5)
    c.wait_for(lambda x: x.good_events() or x.stderr, 6)
    t = (c.t0 + (c.events[0][0] if c.events else c.stderr[0][0] if c.stderr else 99)) - s.connections[0].t_accept \
        if s.connections else None
    ok = c.data()[:1] == ["early"] or (c.stderr and t is not None and t <= 3.5)
    ctx.expect(ok, f"neither the event nor a timely failure ({t} s)")
    return f"events {c.data()[:1]}, first output {t and round(t, 2)} s after the connection"


if __name__ == "__main__":
    sys.exit(suite.run())
