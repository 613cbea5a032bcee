#!/usr/bin/env python3
"""An OpenAI-style streaming chat completions endpoint, standard library only.

    python3 chat_server.py            # prints "listening on http://127.0.0.1:PORT" and serves

POST /v1/chat/completions checks what a real API checks (method, Content-Type, Accept,
Authorization, a JSON body with "stream": true) and answers 200 text/event-stream with
`data: {"choices":[{"delta":{"content":...}}]}` events, then `data: [DONE]`, then closes, as
OpenAI's API does (HTTP/1.1, chunked). The body's "model" picks a scenario:

    "m"             the full stream above
    "drop-chunked"  two events, then the connection closes in the middle of a chunk
    "drop-close"    no chunked framing (the body ends at the close): two events, then close

GET /stats returns how many POSTs each model got, the requests refused and why, and how each
request body was framed: a client that must not retry is caught sending the POST twice.
"""
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The content pieces of the full stream; the client must print them joined, exactly.
PIECES = ["Hel", "lo", ", wör", "ld", " 👋", "\n", '"quoted" \\ back\\slash', " 日本語", "\u2028", "!"]
EXPECTED = "".join(PIECES)

lock = threading.Lock()
stats = {"requests": {}, "refused": [], "framing": []}


def chunk(delta, finish_reason=None, ensure_ascii=True):
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    return b"data: " + json.dumps(body, ensure_ascii=ensure_ascii, separators=(",", ":")).encode() + b"\n\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        sys.stderr.write("chat_server: " + (format % args) + "\n")

    def refuse(self, status, reason):
        with lock:
            stats["refused"].append({"status": status, "reason": reason, "method": self.command, "path": self.path})
        body = json.dumps({"error": {"message": reason}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            framing, body = "chunked", b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return framing, body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None:
            return "none", b""
        return "content-length", self.rfile.read(int(length))

    def do_GET(self):
        if self.path == "/stats":
            with lock:
                body = json.dumps(stats).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/v1/chat/completions":
            self.refuse(405, "use POST")
        else:
            self.refuse(404, "not found")

    def do_POST(self):
        if self.path != "/v1/chat/completions":
            return self.refuse(404, "not found")
        framing, raw = self.read_body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        model = body.get("model") if isinstance(body, dict) else None
        with lock:
            stats["requests"][str(model)] = stats["requests"].get(str(model), 0) + 1
            stats["framing"].append(framing)
        if self.headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
            return self.refuse(415, "Content-Type must be application/json, not %r" % self.headers.get("Content-Type"))
        if "text/event-stream" not in self.headers.get("Accept", ""):
            return self.refuse(406, "Accept must include text/event-stream, not %r" % self.headers.get("Accept"))
        if self.headers.get("Authorization") != "Bearer test-key":
            return self.refuse(401, "bad API key")
        if not isinstance(body, dict) or body.get("stream") is not True:
            return self.refuse(400, 'the body must be a JSON object with "stream": true, not %r' % raw[:200])
        if model not in ("m", "drop-chunked", "drop-close"):
            return self.refuse(404, "no such model %r" % model)

        chunked = model != "drop-close"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def send(data):
            self.wfile.write((b"%x\r\n" % len(data)) + data + b"\r\n" if chunked else data)
            self.wfile.flush()
            time.sleep(0.01)

        # A short reconnection time, so that a client that wrongly retries does so at once.
        send(b"retry: 100\n\n")
        send(chunk({"role": "assistant", "content": ""}))
        if model == "m":
            send(b": OPENROUTER PROCESSING\n\n")  # a comment, as some providers send
            for i, piece in enumerate(PIECES):
                event = chunk({"content": piece}, ensure_ascii=(i % 2 == 0))
                if i == 3:  # one event split across two chunks, mid-line
                    send(event[:9])
                    send(event[9:])
                else:
                    send(event)
            send(chunk({}, finish_reason="stop"))
            send(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        send(chunk({"content": "partial"}))
        if chunked:
            # A chunk that promises 64 bytes and delivers a few: the body is cut.
            self.wfile.write(b"40\r\ndata: {\"choi")
            self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("listening on http://127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
