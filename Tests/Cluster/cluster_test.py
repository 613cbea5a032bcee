#!/usr/bin/env python3
"""Multi-process cluster tests (issue 15, item 8): a real redis-server started here (a free
port, a temporary directory, no persistence), 3 EventStreamDemo processes joined to it, and
Debian's haproxy for scenario (g). Python 3 standard library only.

    cluster_test.py BINARY [--only a,c] [--seed N] [--timeout S] [--post-rate R] [--tick-rate R]

Scenarios (each prints one JSON line of figures, "pass": true/false):
  a  a notification sent on A to user u reaches u's stream on C exactly once
  b  a client reads k events on A; 500 more sent round-robin through A, B, C; it reconnects
     to C with Last-Event-ID and gets exactly k+1..n, then live
  c  30 clients hop between nodes every ~200 ms while 3 publishers send (POSTs plus the
     bench ticker of node A) about 2,000 events/s for ~10 s: every client's events are
     exactly those addressed to it, contiguous in the cluster's order, ticks contiguous too
  d  --log-length 50 and an old ID (or one of another epoch) -> the gap event first
  e  kill -9 a node: its clients reconnect to the others with Last-Event-ID and get
     everything they missed, exactly once, in order
  f  restart Redis without its data: exactly one gap per client, then continuity
  g  one client hopping nodes through haproxy (round robin, no stickiness) every ~300 ms

Exactness: every notification carries a number of ours in its title, and every POST's 202
gives its cluster ID (<epoch>-<sequence>). Between a start and an end marker (broadcasts),
the list of cluster IDs a client received must equal the sorted list of IDs addressed to it.

Exit status: 0 all passed, 1 a scenario failed, 2 the run broke (a process would not start,
hard timeout). Every process started here is killed on exit (SIGKILL, and PR_SET_PDEATHSIG
should this script itself be killed).
"""

import argparse
import atexit
import collections
import http.client
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HOST = "127.0.0.1"
SERVING = re.compile(r"serving http://127\.0\.0\.1:(\d+)/")
REDIS_SERVER = next((p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if os.access(p, os.X_OK)),
                    shutil.which("redis-server"))
HAPROXY = next((p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)),
               shutil.which("haproxy"))


class Failure(Exception):
    """The cluster did something wrong: the scenario fails."""


class Broken(Exception):
    """The run itself broke (a process did not start, ...)."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def wait_until(predicate, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- processes

_children = []
_children_lock = threading.Lock()


def _die_with_parent():
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def spawn(argv, log_path):
    log = open(log_path, "ab")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent)
    log.close()
    with _children_lock:
        _children.append(proc)
    return proc


def kill_all():
    with _children_lock:
        procs = list(_children)
    for proc in procs:
        if proc.poll() is None:
            try:
                proc.kill()
            except OSError:
                pass
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except Exception:
            pass


def stop(proc, grace=3):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def tail(path, lines=15):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 8192))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


class Redis:
    """redis-server on 127.0.0.1, a free port, its own temporary directory, no persistence."""

    def __init__(self, tmp, name):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"redis-{name}-", dir=tmp)
        self.log = os.path.join(self.dir, "redis.log")
        self.proc = None
        self.start()

    def start(self):
        self.proc = spawn([REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--dir", self.dir,
                           "--save", "", "--appendonly", "no", "--daemonize", "no"], self.log)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise Broken(f"redis-server exited with {self.proc.returncode}: {tail(self.log)}")
            try:
                if self.command("PING") == "PONG":
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Broken(f"redis-server on port {self.port} does not answer PING: {tail(self.log)}")
            time.sleep(0.02)

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=5)

    def command(self, *words):
        """One command, its reply as Python (simple strings, integers, bulk strings only)."""
        with socket.create_connection((HOST, self.port), timeout=2) as s:
            request = f"*{len(words)}\r\n" + "".join(f"${len(str(w).encode())}\r\n{w}\r\n" for w in words)
            s.sendall(request.encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("redis closed the connection")
                data += chunk
            kind, rest = data[:1], data[1:]
            line = rest.split(b"\r\n", 1)[0].decode()
            if kind == b"+":
                return line
            if kind == b":":
                return int(line)
            if kind == b"-":
                raise OSError(f"redis error: {line}")
            if kind == b"$":
                length = int(line)
                if length < 0:
                    return None
                header = len(line) + 3
                while len(data) < header + length + 2:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise OSError("redis closed the connection")
                    data += chunk
                return data[header:header + length].decode("utf-8", "replace")
            raise OSError(f"unexpected reply {data[:50]!r}")


class Node:
    """One EventStreamDemo joined to the cluster."""

    def __init__(self, ctx, name, redis, cluster, extra=()):
        self.name = name
        self.log = os.path.join(ctx.tmp, f"{cluster}-{name}.log")
        argv = [ctx.binary, "serve", "--redis", f"redis://{HOST}:{redis.port}", "--port", "0",
                "--node", name, "--cluster-name", cluster, "--signin-rate", "100000",
                "--notify-rate", "100000", "--news-interval", "0", *extra]
        self.argv = argv
        self.proc = spawn(argv, self.log)
        self.port = None
        deadline = time.monotonic() + 20
        while self.port is None:
            match = SERVING.search(tail(self.log, 50))
            if match:
                self.port = int(match.group(1))
                break
            if self.proc.poll() is not None:
                raise Broken(f"node {name} exited with {self.proc.returncode}: {' '.join(argv)}\n{tail(self.log)}")
            if time.monotonic() > deadline:
                raise Broken(f"node {name} did not say it is serving within 20 s\n{tail(self.log)}")
            time.sleep(0.02)

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=5)

    def stats(self):
        status, body = Http(self.port, timeout=5).request("GET", "/stats")
        check(status == 200, f"GET /stats on {self.name}: {status}")
        return json.loads(body)

    def cluster_epoch(self):
        """The cluster epoch /stats reports, or None while the node does not tail the log yet."""
        try:
            cluster = self.stats().get("cluster")
        except (OSError, ValueError, http.client.HTTPException):
            return None
        if isinstance(cluster, dict):
            epoch = cluster.get("epoch")
            return str(epoch) if epoch not in (None, "") else None
        return None


def start_cluster(ctx, redis, cluster, count=3, extra=(), per_node=None):
    names = "ABC"[:count] if count <= 3 else [f"N{i}" for i in range(count)]
    nodes = []
    for index, name in enumerate(names):
        more = list(extra) + list((per_node or {}).get(name, ()))
        nodes.append(Node(ctx, name, redis, cluster, more))
    # A node that does not tail the log yet would not deliver an event appended now to a
    # client connected now: wait until each reports the cluster's epoch.
    ctx.nodes.extend(nodes)
    # A node that does not tail the log yet would not deliver an event appended now to a
    # client connected now: a probe client on every node, and notifications to it through A,
    # until each has one.
    token = sign_in(nodes[0].port, "probe")
    probes = []
    for node in nodes:
        probe = Client("probe", token)
        probe.connect(node.port, node.name)
        probes.append(probe)
    http = Http(nodes[0].port)
    deadline = time.monotonic() + 15
    try:
        while not all(p.events for p in probes):
            check(time.monotonic() < deadline, f"nodes {[n.name for n, p in zip(nodes, probes) if not p.events]} did not deliver a send on A within 15 s")
            status, body = http.request("POST", "/notify", {"to": ["probe"], "title": "probe"}, token)
            check(status == 202, f"POST /notify on A for the probe: {status} {body[:200]!r}")
            until = time.monotonic() + 0.3
            for probe in probes:
                if not probe.events:
                    probe.pump(until)
    finally:
        for probe in probes:
            probe.close()
    return nodes


# ---------------------------------------------------------------- HTTP

class Http:
    """One keep-alive connection to a node."""

    def __init__(self, port, timeout=10):
        self.port = port
        self.timeout = timeout
        self.conn = None
        self.retries = 0

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, token=None):
        headers = {"Host": f"{HOST}:{self.port}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in range(2):
            reused = self.conn is not None
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                if (response.getheader("Connection") or "").lower() == "close":
                    self.close()
                return response.status, payload
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A keep-alive connection the server closed while idle: once, on a new one.
                self.close()
                if attempt or not reused:
                    raise
                self.retries += 1
            except Exception:
                self.close()
                raise


def sign_in(port, user):
    status, body = Http(port).request("POST", "/signin", {"user": user})
    check(status == 200, f"POST /signin {user}: {status} {body[:200]!r}")
    return json.loads(body)["token"]


def parse_id(text):
    """'<epoch>-<sequence>' -> (epoch, sequence), or None."""
    if not text or "-" not in text:
        return None
    epoch, _, sequence = text.rpartition("-")
    try:
        return epoch, int(sequence)
    except ValueError:
        return None


class Sent:
    """Every notification sent in a scenario, by cluster ID, with whom it was for."""

    def __init__(self):
        self.by_id = {}  # (epoch, seq) -> (number, kind, users)
        self.lock = threading.Lock()
        self.numbers = itertools.count(1)
        self.failed = []  # (number, status or exception)

    def notify(self, http, token, prefix, kind="all", users=(), title=None):
        number = next(self.numbers)
        body = {"title": title or f"{prefix}:{number}"}
        if kind == "to":
            body["to"] = list(users)
        elif kind == "except":
            body["except"] = list(users)
        elif kind == "news":
            body["channel"] = "news"
        try:
            status, payload = http.request("POST", "/notify", body, token)
        except Exception as error:
            with self.lock:
                self.failed.append((number, repr(error)))
            return None
        if status != 202:
            with self.lock:
                self.failed.append((number, f"{status} {payload[:200]!r}"))
            return None
        key = parse_id(json.loads(payload)["id"])
        with self.lock:
            check(key not in self.by_id, f"POST /notify answered an ID twice: {key}")
            self.by_id[key] = (number, kind, frozenset(users))
        return key


def addressed(entry, user, news):
    _, kind, users = entry
    if kind in ("all", "mark"):
        return True
    if kind == "to":
        return user in users
    if kind == "except":
        return user not in users
    if kind == "news":
        return news
    raise ValueError(kind)


# ---------------------------------------------------------------- SSE client

class Refused(Exception):
    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class Client:
    """One user's EventSource, following the WHATWG rules: the last event ID moves with every
    `id:` field (also on an ID-only frame, which dispatches nothing), `retry:` sets the
    reconnection delay, and a reconnect sends Last-Event-ID.

    `lazy`: while connected, only keep the bytes (Python cannot parse 30 busy streams and
    send 1,000 POST/s in one process); at each close, take the last event ID and `retry` from
    them (the last `id:` line before the last blank line), and parse everything in
    `finalize()`, which checks that the parse agrees with the IDs used to reconnect."""

    def __init__(self, user, token, news=False, retry_cap=3.0, lazy=False):
        self.user = user
        self.lazy = lazy
        self._chunks = []
        self.streams = []  # lazy: the bytes of each connection
        self.quick_ids = []  # lazy: the last event ID taken at each close
        self._lazy_marks = set()
        self._conn_index = -1
        self.token = token
        self.news = news
        self.retry_cap = retry_cap
        self.last_id = None
        self.retry = 2.0
        self.events = []  # (key or None, type, data bytes, connection index)
        self.marks = collections.Counter()
        self.served_by = []  # the `node` welcome events
        # Signs in again (port -> token) when a node answers 401: the demo's tokens live in
        # Redis, and a Redis restarted empty forgets them.
        self.reauth = None
        self.signins = 0
        self.gaps = []  # (index in events, last id when it came)
        self.connections = []  # (label, backend header, monotonic time)
        self.refusals = []
        self.sock = None
        self._raw = b""
        self._buf = b""
        self._chunked = False
        self._chunk_left = 0
        self._data = []
        self._type = ""
        self._id = None

    # -- connection

    def connect(self, port, label, timeout=5):
        self.close()
        path = f"/events?token={self.token}" + ("&channels=news" if self.news else "")
        lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: text/event-stream", "Cache-Control: no-cache"]
        if self.last_id:
            lines.append(f"Last-Event-ID: {self.last_id}")
        sock = socket.create_connection((HOST, port), timeout=timeout)
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(65536)
                if not chunk:
                    raise Refused(f"{label}: closed before the response head ({head[:200]!r})")
                head += chunk
                if len(head) > 65536:
                    raise Refused(f"{label}: response head over 64 KiB")
            head, _, rest = head.partition(b"\r\n\r\n")
            status_line, *fields = head.decode("latin-1").split("\r\n")
            headers = {}
            for field in fields:
                name, _, value = field.partition(":")
                headers[name.strip().lower()] = value.strip()
            status = int(status_line.split()[1])
            if status != 200:
                raise Refused(f"{label}: {status_line} {rest[:200]!r}", status)
            check("text/event-stream" in headers.get("content-type", ""), f"{label}: Content-Type {headers.get('content-type')!r}")
        except Exception:
            sock.close()
            raise
        self.sock = sock
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._raw = b""
        self._chunk_left = 0
        self._buf = b""
        # A new stream: new data and event type buffers; the last event ID carries over.
        self._data = []
        self._type = ""
        self._id = self.last_id
        if not self.connections:
            self._initial_id = self.last_id
        self.connections.append((label, headers.get("x-served-by"), time.monotonic()))
        self._conn_index = len(self.connections) - 1
        self._chunks = []
        if rest:
            self._feed(rest)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
            if self.lazy:
                self._finish_lazy()

    def _finish_lazy(self):
        data = b"".join(self._chunks)
        self._chunks = []
        self.streams.append(data)
        end = data.rfind(b"\n\n")
        if end >= 0:
            head = b"\n" + data[:end + 1]
            for field in (b"id", b"retry"):
                at = head.rfind(b"\n" + field + b":")
                if at >= 0:
                    value = head[at + len(field) + 2:head.index(b"\n", at + 1)]
                    if value[:1] == b" ":
                        value = value[1:]
                    if field == b"id":
                        self.last_id = value.decode("utf-8", "replace")
                    elif value.isdigit():
                        self.retry = min(int(value) / 1000, self.retry_cap)
            for title in re.findall(rb'"title":"(mark:[^"]*)"', head):
                self._lazy_marks.add(title.decode())
        self.quick_ids.append(self.last_id)

    def has_mark(self, title):
        if not self.lazy:
            return self.marks[title] >= 1
        if title in self._lazy_marks:
            return True
        return f'"title":"{title}"'.encode() in b"".join(list(self._chunks))

    def finalize(self):
        """Lazy: parses every connection's bytes as they came, in order."""
        if not self.lazy:
            return
        check(self.sock is None, f"{self.user}: finalize while connected")
        self.last_id = self._initial_id
        for index, data in enumerate(self.streams):
            self._conn_index = index
            self._data, self._type, self._id, self._buf = [], "", self.last_id, b""
            self._parse(data)
            check(self.last_id == self.quick_ids[index],
                  f"harness: {self.user} reconnected after {self.quick_ids[index]}, the parse says {self.last_id}")

    def pump(self, until, stop=None):
        """Reads until `until` (monotonic), the stream's end ("eof"), or `stop` is set."""
        sock = self.sock
        while True:
            now = time.monotonic()
            if now >= until:
                return "time"
            if stop is not None and stop.is_set():
                return "stop"
            sock.settimeout(min(0.1, until - now))
            try:
                chunk = sock.recv(262144)
            except socket.timeout:
                continue
            except OSError:
                self.close()
                return "eof"
            if not chunk:
                self.close()
                return "eof"
            if self._feed(chunk):
                self.close()
                return "eof"

    # -- parsing

    def _feed(self, chunk):
        if not self._chunked:
            if self.lazy:
                self._chunks.append(chunk)
            else:
                self._parse(chunk)
            return False
        self._raw += chunk
        body = []
        while True:
            if self._chunk_left > 0:
                take = self._raw[:self._chunk_left]
                body.append(take)
                self._raw = self._raw[len(take):]
                self._chunk_left -= len(take)
                if self._chunk_left > 0:
                    break
                self._chunk_left = -2  # the CRLF after the chunk
            if self._chunk_left == -2:
                if len(self._raw) < 2:
                    break
                self._raw = self._raw[2:]
                self._chunk_left = 0
            line_end = self._raw.find(b"\r\n")
            if line_end < 0:
                break
            size = int(self._raw[:line_end].split(b";")[0], 16)
            self._raw = self._raw[line_end + 2:]
            if size == 0:
                self._take(b"".join(body))
                return True
            self._chunk_left = size
        self._take(b"".join(body))
        return False

    def _take(self, data):
        if self.lazy:
            self._chunks.append(data)
        else:
            self._parse(data)

    def _parse(self, data):
        buf = self._buf + data
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")  # the server writes LF; a proxy could write CRLF
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        for line in lines:
            if not line:
                self._dispatch()
                continue
            if line[0] == 58:  # ':' comment
                continue
            field, sep, value = line.partition(b":")
            if sep and value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                self._data.append(value)
            elif field == b"id":
                if b"\0" not in value:
                    self._id = value.decode("utf-8", "replace")
            elif field == b"event":
                self._type = value.decode("utf-8", "replace")
            elif field == b"retry":
                if value.isdigit():
                    self.retry = min(int(value) / 1000, self.retry_cap)

    def _dispatch(self):
        self.last_id = self._id
        if not self._data:
            self._type = ""
            return
        data = b"\n".join(self._data)
        kind = self._type or "message"
        self._data = []
        self._type = ""
        if kind == "node":
            # The demo's welcome event: which node serves this stream (no ID).
            self.served_by.append(data.decode("utf-8", "replace"))
            return
        key = parse_id(self._id)
        if kind == "gap":
            self.gaps.append((len(self.events), self._id))
        elif kind == "notification" and b'"title":"mark:' in data:
            self.marks[json.loads(data)["title"]] += 1
        self.events.append((key, kind, data, self._conn_index))

    # -- reading what came

    def index_of_mark(self, title):
        for index, (key, kind, data, _) in enumerate(self.events):
            if kind == "notification" and b'"title":"mark:' in data and json.loads(data)["title"] == title:
                return index
        return None


def number_of(kind, data):
    """Our number in a notification's title or a news headline ('prefix:N' -> N), or None."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    title = value.get("title") if kind == "notification" else value.get("headline")
    if not isinstance(title, str) or ":" not in title:
        return None
    tail_ = title.rpartition(":")[2]
    return int(tail_) if tail_.isdigit() else None


def describe_diff(expected, received, limit=6):
    exp_set, rec_set = set(expected), set(received)
    missing = sorted(exp_set - rec_set)
    extra = sorted(rec_set - exp_set)
    duplicates = sorted(k for k, n in collections.Counter(received).items() if n > 1)
    first = next((i for i, (a, b) in enumerate(zip(expected, received)) if a != b), min(len(expected), len(received)))
    parts = [f"expected {len(expected)}, received {len(received)}, first difference at index {first}"]
    if missing:
        parts.append(f"missing {len(missing)}: {missing[:limit]}")
    if extra:
        parts.append(f"not addressed to it {len(extra)}: {extra[:limit]}")
    if duplicates:
        parts.append(f"duplicated {len(duplicates)}: {duplicates[:limit]}")
    if not missing and not extra and not duplicates:
        parts.append(f"reordered near {received[max(0, first - 2):first + 3]}")
    return "; ".join(parts)


def window(client, start_title, end_title):
    """The events a client received strictly between two markers (which it must have, once)."""
    check(client.marks[start_title] == 1, f"{client.user}: start marker {start_title} received {client.marks[start_title]} times")
    check(client.marks[end_title] == 1, f"{client.user}: end marker {end_title} received {client.marks[end_title]} times")
    start = client.index_of_mark(start_title)
    end = client.index_of_mark(end_title)
    return client.events[start], client.events[start + 1:end], client.events[end]


def check_exact(client, sent, start_title, end_title, ticks=None):
    """Between the markers: exactly the IDs addressed to the client, in the cluster's order,
    each with our number for that ID; ticks (if any) contiguous. Returns the count checked."""
    start_event, events, end_event = window(client, start_title, end_title)
    lo, hi = start_event[0], end_event[0]
    check(lo and hi and lo[0] == hi[0], f"{client.user}: markers {lo} and {hi} not in one epoch")
    epoch = lo[0]
    received = []
    tick_numbers = []
    for key, kind, data, _ in events:
        check(key is not None and key[0] == epoch, f"{client.user}: an event with ID {key} between markers of epoch {epoch} ({kind} {data[:80]!r})")
        received.append(key)
        if kind == "tick":
            check(ticks is not None, f"{client.user}: a tick in a scenario without ticks")
            parts = data.split(b" ")
            tick_numbers.append(int(parts[1]))
            ticks.setdefault(key, int(parts[1]))
            check(ticks[key] == int(parts[1]), f"ID {key} is tick {ticks[key]} for one client, tick {int(parts[1])} for {client.user}")
        elif kind in ("notification", "news"):
            entry = sent.by_id.get(key)
            check(entry is not None, f"{client.user}: {kind} {key} ({data[:80]!r}) was never answered to a POST")
            check(number_of(kind, data) == entry[0], f"{client.user}: ID {key} carries {data[:80]!r}, not our number {entry[0]}")
        elif kind == "gap":
            raise Failure(f"{client.user}: a gap event between {start_title} and {end_title} (ID {key})")
        else:
            raise Failure(f"{client.user}: unexpected event {kind} {key}")
    expected = [key for key, entry in sent.by_id.items()
                if key[0] == epoch and lo[1] < key[1] < hi[1] and addressed(entry, client.user, client.news)]
    if ticks is not None:
        expected += [key for key in ticks if key[0] == epoch and lo[1] < key[1] < hi[1]]
    expected.sort(key=lambda k: k[1])
    if received != expected:
        raise Failure(f"{client.user} (news={client.news}, {len(client.connections)} connections): {describe_diff(expected, received)}")
    if tick_numbers:
        bad = next((i for i in range(1, len(tick_numbers)) if tick_numbers[i] != tick_numbers[i - 1] + 1), None)
        check(bad is None, f"{client.user}: ticks not contiguous: {tick_numbers[bad - 1] if bad else ''} then {tick_numbers[bad] if bad else ''}")
    return len(received), epoch, lo[1], hi[1]


def check_coverage(sent, ticks, epoch, lo, hi):
    """Every cluster ID between the markers is one we sent or a tick some client saw: no ID
    unaccounted for (an event nobody could check)."""
    unknown = [s for s in range(lo + 1, hi) if (epoch, s) not in sent.by_id and (epoch, s) not in (ticks or {})]
    check(not unknown, f"{len(unknown)} IDs between the markers are neither a POST's nor a tick any client saw: {unknown[:8]}")


# ---------------------------------------------------------------- client loops

def follow(client, ports, stop, rng, hop=None, prefer=None, log=None):
    """A client's loop: connected to one node; every `hop` seconds (if set) it closes and
    reconnects to another; when the stream ends it waits its retry delay and reconnects to
    another node. `ports` is a list of (label, port)."""
    current = prefer if prefer is not None else rng.randrange(len(ports))
    while not stop.is_set():
        label, port = ports[current]
        try:
            client.connect(port, label)
        except (OSError, Refused) as error:
            client.refusals.append((label, str(error), time.monotonic()))
            if getattr(error, "status", None) == 401 and client.reauth is not None:
                try:
                    client.token = client.reauth(port)
                    client.signins += 1
                    continue
                except Exception as failure:
                    client.refusals.append((label, f"sign-in: {failure}", time.monotonic()))
            time.sleep(min(client.retry, 0.5) if isinstance(error, Refused) else 0.05)
            current = (current + 1) % len(ports)
            continue
        until = time.monotonic() + (hop * rng.uniform(0.75, 1.25) if hop else 3600)
        outcome = client.pump(until, stop)
        client.close()
        if outcome == "eof":
            stop.wait(client.retry)
        if len(ports) > 1:
            current = rng.choice([i for i in range(len(ports)) if i != current])


class Clients:
    """Client threads, stopped and joined together."""

    def __init__(self):
        self.stop = threading.Event()
        self.threads = []
        self.errors = []

    def start(self, client, *args, **kwargs):
        def run():
            try:
                follow(client, *args, stop=self.stop, **kwargs)
            except Exception:
                self.errors.append(f"{client.user}: {traceback.format_exc(limit=3)}")
        thread = threading.Thread(target=run, name=client.user, daemon=True)
        thread.start()
        self.threads.append(thread)

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)
        check(not self.errors, "a client thread broke: " + " | ".join(self.errors[:2]))


def connected(clients, count=1):
    return all(len(c.connections) >= count and c.sock is not None for c in clients)


def mark(sent, http, token, title, clients, timeout=15):
    key = sent.notify(http, token, "mark", kind="mark", title=title)
    check(key is not None, f"the marker {title} was refused: {sent.failed[-1:]}")
    wait_until(lambda: all(c.has_mark(title) for c in clients), timeout,
               f"every client to receive {title} (missing: {[c.user for c in clients if not c.has_mark(title)][:5]})")
    return key


# ---------------------------------------------------------------- scenarios

def scenario_a(ctx):
    redis = Redis(ctx.tmp, "a")
    nodes = start_cluster(ctx, redis, "esk-a")
    a, b, c = nodes
    tokens = {user: sign_in(a.port, user) for user in ("sender", "carol", "bob")}
    carol = Client("carol", tokens["carol"])
    bob = Client("bob", tokens["bob"])
    group = Clients()
    group.start(carol, [("C", c.port)], rng=random.Random(ctx.seed))
    group.start(bob, [("B", b.port)], rng=random.Random(ctx.seed + 1))
    wait_until(lambda: connected([carol, bob]), 10, "carol on C and bob on B")
    sent = Sent()
    http = Http(a.port)
    started = time.monotonic()
    key = sent.notify(http, tokens["sender"], "a", kind="to", users=["carol"])
    check(key is not None, f"POST /notify on A: {sent.failed}")
    wait_until(lambda: any(e[0] == key for e in carol.events), 10, f"carol to receive {key} on C")
    latency = time.monotonic() - started
    time.sleep(1.0)  # a duplicate would come within this
    group.finish()
    got = [e for e in carol.events if e[1] == "notification"]
    check(len(got) == 1, f"carol got {len(got)} notifications on C, expected exactly 1: {[e[:2] for e in got]}")
    check(got[0][0] == key and number_of("notification", got[0][2]) == sent.by_id[key][0],
          f"carol got {got[0][:3]}, expected ID {key}")
    check(json.loads(got[0][2]).get("from") == "sender", f"from is {json.loads(got[0][2]).get('from')!r}, not sender")
    check(not [e for e in bob.events if e[1] == "notification"], f"bob on B got carol's notification: {bob.events[:2]}")
    return {"latency_ms": round(latency * 1000, 1), "id": f"{key[0]}-{key[1]}"}


def scenario_b(ctx, k=40, more=500):
    redis = Redis(ctx.tmp, "b")
    # A small local cache: the replay on C must come from the log in Redis.
    nodes = start_cluster(ctx, redis, "esk-b", extra=("--backlog", "64"))
    a, b, c = nodes
    tokens = {user: sign_in(a.port, user) for user in ("sender", "u", "other")}
    sent = Sent()
    https = [Http(node.port) for node in nodes]
    u = Client("u", tokens["u"])
    u.connect(a.port, "A")
    keys = []
    for i in range(k):
        keys.append(sent.notify(https[i % 3], tokens["sender"], "b", kind="to", users=["u"]))
    deadline = time.monotonic() + 10
    while len([e for e in u.events if e[1] == "notification"]) < k and time.monotonic() < deadline:
        u.pump(min(deadline, time.monotonic() + 0.1))
    got = [e[0] for e in u.events if e[1] == "notification"]
    check(got == keys, f"the first {k} on A: {describe_diff(keys, got)}")
    u.close()
    last_seen = u.last_id
    check(parse_id(last_seen) >= keys[-1], f"last event ID {last_seen} is before {keys[-1]}")
    # 500 more through A, B and C in turn, interleaved with events for someone else.
    for i in range(more):
        users = ["u"] if i % 4 != 3 else ["other"]
        key = sent.notify(https[i % 3], tokens["sender"], "b", kind="to", users=users)
        check(key is not None, f"POST {i} through {'ABC'[i % 3]}: {sent.failed[-1:]}")
        if users == ["u"]:
            keys.append(key)
    check(not sent.failed, f"sends refused: {sent.failed[:3]}")
    before = len(u.events)
    started = time.monotonic()
    u.connect(c.port, "C")
    expected = keys[k:]
    deadline = time.monotonic() + 15
    while len(u.events) - before < len(expected) and time.monotonic() < deadline:
        if u.pump(min(deadline, time.monotonic() + 0.1)) == "eof":
            raise Failure("C closed the replaying stream")
    replay_s = time.monotonic() - started
    live = sent.notify(https[1], tokens["sender"], "b", kind="to", users=["u"])
    expected.append(live)
    deadline = time.monotonic() + 10
    while len(u.events) - before < len(expected) and time.monotonic() < deadline:
        u.pump(min(deadline, time.monotonic() + 0.1))
    u.pump(time.monotonic() + 0.5)  # duplicates would come now
    u.close()
    got = [e[0] for e in u.events[before:] if e[1] == "notification"]
    other = [e for e in u.events[before:] if e[1] != "notification"]
    check(not other, f"unexpected events on C: {[(e[0], e[1]) for e in other[:3]]}")
    check(got == expected, f"replay on C after {last_seen}: {describe_diff(expected, got)}")
    return {"k": k, "sent": more, "for_u_after_k": len(expected) - 1, "replay_ms": round(replay_s * 1000, 1), "live": True}


def scenario_c(ctx, clients_count=30, seconds=10.0, hop=0.2):
    redis = Redis(ctx.tmp, "c")
    tick_rate = ctx.tick_rate
    post_rate = ctx.post_rate
    per_node = {"A": ("--bench-rate", str(tick_rate), "--bench-size", "0")} if tick_rate > 0 else {}
    # A client that falls a queue behind is disconnected and replays from the log: exact
    # delivery is then checkable even for the clients this loaded machine reads slowly
    # (under the default drop-oldest policy they would lose events, by design and reported).
    # A queue of 4,096 events (2 s at this rate) makes that rare.
    nodes = start_cluster(ctx, redis, "esk-c", extra=("--overflow-policy", "disconnect", "--queue-capacity", "4096"), per_node=per_node)
    ports = [(node.name, node.port) for node in nodes]
    rng = random.Random(ctx.seed)
    users = [f"c{i:02d}" for i in range(clients_count)]
    publishers = [f"pub{i}" for i in range(3)]
    tokens = {user: sign_in(nodes[0].port, user) for user in users + publishers}
    clients = [Client(user, tokens[user], news=(i % 3 == 0), lazy=True) for i, user in enumerate(users)]
    group = Clients()
    for i, client in enumerate(clients):
        group.start(client, ports, rng=random.Random(ctx.seed * 1000 + i), prefer=i % 3)
    wait_until(lambda: connected(clients), 15, "30 clients connected")
    sent = Sent()
    control = Http(nodes[1].port)
    mark(sent, control, tokens["pub0"], "mark:c-start", clients)
    # Now hop: every thread reads for ~hop seconds, then reconnects elsewhere with Last-Event-ID.
    group.finish()
    group = Clients()
    for i, client in enumerate(clients):
        group.start(client, ports, rng=random.Random(ctx.seed * 1000 + 500 + i), hop=hop)
    # Publishers: threads per node, each on its own keep-alive connection, paced.
    threads_per_node = 2
    stop_at = time.monotonic() + seconds
    counts = collections.Counter()
    errors = []

    def publish(node_index, thread_index):
        prng = random.Random(ctx.seed * 7 + node_index * 31 + thread_index)
        http = Http(nodes[node_index].port)
        token = tokens[publishers[node_index]]
        rate = post_rate / (3 * threads_per_node)
        next_at = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if now >= stop_at:
                    break
                if next_at > now:
                    time.sleep(next_at - now)
                next_at += 1 / rate
                if next_at < now - 0.5:
                    next_at = now  # behind: no burst to catch up
                roll = prng.random()
                if roll < 0.3:
                    kind, targets = "all", ()
                elif roll < 0.6:
                    kind, targets = "to", prng.sample(users, prng.randint(1, 3))
                elif roll < 0.8:
                    kind, targets = "except", prng.sample(users, prng.randint(1, 3))
                else:
                    kind, targets = "news", ()
                if sent.notify(http, token, "c", kind=kind, users=targets) is not None:
                    counts[node_index] += 1
            counts["retries"] += http.retries
        except Exception:
            errors.append(traceback.format_exc(limit=3))

    started = time.monotonic()
    cpu_before = os.times()
    workers = [threading.Thread(target=publish, args=(n, t), daemon=True) for n in range(3) for t in range(threads_per_node)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 30)
    elapsed = time.monotonic() - started
    cpu_after = os.times()
    check(not errors, "a publisher broke: " + errors[0] if errors else "")
    check(not sent.failed, f"{len(sent.failed)} sends failed, first: {sent.failed[:2]}")
    end_key = mark(sent, control, tokens["pub0"], "mark:c-end", clients, timeout=20)
    group.finish()
    parse_started = time.monotonic()
    for client in clients:
        client.finalize()
    parse_s = time.monotonic() - parse_started
    ticks = {}
    delivered = 0
    for client in clients:
        count, epoch, lo, hi = check_exact(client, sent, "mark:c-start", "mark:c-end", ticks)
        delivered += count
    check_coverage(sent, ticks, epoch, lo, hi)
    posts = sum(counts[n] for n in range(3))
    tick_count = len(ticks)
    for client in clients:  # with the ticks of every client known, check again
        check_exact(client, sent, "mark:c-start", "mark:c-end", ticks)
    check(len(ticks) == tick_count, "ticks changed")
    connections = sum(len(c.connections) for c in clients)
    return {
        "clients": clients_count, "seconds": round(elapsed, 1),
        "posts_per_s": round(posts / elapsed), "ticks_per_s": round(tick_count / elapsed),
        "events_per_s": round((posts + tick_count) / elapsed),
        "cluster_ids": hi - lo - 1, "deliveries_checked": delivered,
        "connections": connections, "hops_per_client_s": round(connections / clients_count / elapsed, 1),
        "refused_connects": sum(len(c.refusals) for c in clients), "post_retries": counts["retries"],
        "parse_s": round(parse_s, 1), "python_cpu_s": round((cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system), 1),
    }


def scenario_d(ctx):
    redis = Redis(ctx.tmp, "d")
    nodes = start_cluster(ctx, redis, "esk-d", extra=("--log-length", "50", "--backlog", "10"))
    a, b, c = nodes
    tokens = {user: sign_in(a.port, user) for user in ("sender", "u")}
    sent = Sent()
    https = [Http(node.port) for node in nodes]
    keys = [sent.notify(https[i % 3], tokens["sender"], "d", kind="to", users=["u"]) for i in range(400)]
    check(not sent.failed, f"sends refused: {sent.failed[:3]}")
    lengths = {}
    for key in redis_keys(redis):
        try:
            lengths[key] = redis.command("XLEN", key)
        except OSError:
            pass  # not a stream
    results = {}
    for label, last_id, node in (("old", f"{keys[0][0]}-{keys[0][1]}", c), ("other-epoch", "x0x0-5", b)):
        u = Client("u", tokens["u"])
        u.last_id = last_id
        u.connect(node.port, node.name)
        deadline = time.monotonic() + 5
        while not u.events and time.monotonic() < deadline:
            if u.pump(min(deadline, time.monotonic() + 0.1)) == "eof":
                break
        u.pump(time.monotonic() + 0.3)
        u.close()
        check(u.events, f"{label} ID {last_id} on {node.name}: nothing came in 5 s (expected the gap event)")
        check(u.events[0][1] == "gap", f"{label} ID {last_id} on {node.name}: first event {u.events[0][1]} {u.events[0][0]}, expected gap")
        check(len(u.gaps) == 1, f"{label} ID {last_id}: {len(u.gaps)} gap events")
        replayed = [e for e in u.events if e[1] == "notification"]
        check(not replayed, f"{label} ID {last_id}: {len(replayed)} events replayed after the gap, first {replayed[:1]}")
        results[label] = "gap"
    # Inside the window: a recent ID replays exactly, no gap.
    u = Client("u", tokens["u"])
    u.last_id = f"{keys[-6][0]}-{keys[-6][1]}"
    u.connect(a.port, "A")
    deadline = time.monotonic() + 5
    while len(u.events) < 5 and time.monotonic() < deadline:
        u.pump(min(deadline, time.monotonic() + 0.1))
    u.pump(time.monotonic() + 0.3)
    u.close()
    got = [e[0] for e in u.events]
    check(got == keys[-5:], f"recent ID inside the window: {describe_diff(keys[-5:], got)} ({[e[1] for e in u.events][:3]})")
    results["recent"] = "exact"
    results["xlen"] = lengths
    return results


def redis_keys(redis):
    """The keys in the scenario's Redis (KEYS * on a test instance)."""
    with socket.create_connection((HOST, redis.port), timeout=2) as s:
        s.sendall(b"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n")
        data = b""
        s.settimeout(2)
        while True:
            chunk = s.recv(65536)
            data += chunk
            if not chunk or data.count(b"\r\n") >= 1 + 2 * int(data[1:data.find(b"\r\n")] or 0):
                break
        lines = data.split(b"\r\n")
        return [lines[i].decode() for i in range(2, len(lines), 2) if lines[i]]


def steady_publisher(sent, nodes_http, token, users, prefix, rate, stop, rng, errors):
    def run():
        index = 0
        next_at = time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                if next_at > now:
                    stop.wait(next_at - now)
                    continue
                next_at += 1 / rate
                roll = rng.random()
                if roll < 0.35:
                    kind, targets = "to", rng.sample(users, min(len(users), rng.randint(1, 2)))
                elif roll < 0.55:
                    kind, targets = "except", rng.sample(users, 1)
                elif roll < 0.75:
                    kind, targets = "news", ()
                else:
                    kind, targets = "all", ()
                sent.notify(nodes_http[index % len(nodes_http)], token, prefix, kind=kind, users=targets)
                index += 1
        except Exception:
            errors.append(traceback.format_exc(limit=3))
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def scenario_e(ctx, per_node=4):
    redis = Redis(ctx.tmp, "e")
    nodes = start_cluster(ctx, redis, "esk-e")
    a, b, c = nodes
    ports = [(node.name, node.port) for node in nodes]
    users = [f"e{i:02d}" for i in range(3 * per_node)]
    tokens = {user: sign_in(b.port, user) for user in users + ["sender"]}
    clients = [Client(user, tokens[user], news=(i % 2 == 0)) for i, user in enumerate(users)]
    group = Clients()
    for i, client in enumerate(clients):
        group.start(client, ports, rng=random.Random(ctx.seed + i), prefer=i % 3)
    wait_until(lambda: connected(clients), 10, "clients connected")
    on_a = [client for i, client in enumerate(clients) if i % 3 == 0]
    sent = Sent()
    control = Http(b.port)
    mark(sent, control, tokens["sender"], "mark:e-start", clients)
    stop = threading.Event()
    errors = []
    # About 400 sends a second: A's clients miss a few hundred events each in their retry
    # delay (2 s), more than a connection's queue (256) holds at once.
    publishers = [steady_publisher(sent, [Http(node.port)], tokens["sender"], users, "e", 200, stop,
                                   random.Random(ctx.seed + index), errors) for index, node in enumerate((b, c))]
    publish_started = time.monotonic()
    time.sleep(1.5)
    killed_at = time.monotonic()
    a.kill9()
    # A's clients must be back (on B or C) and receiving.
    wait_until(lambda: all(len(cl.connections) >= 2 and cl.sock is not None for cl in on_a), 15,
               "A's clients to reconnect to B or C")
    recovered = max(cl.connections[-1][2] for cl in on_a) - killed_at
    time.sleep(1.5)
    stop.set()
    for publisher in publishers:
        publisher.join(timeout=10)
    publish_rate = len(sent.by_id) / (time.monotonic() - publish_started)
    check(not errors, f"publisher broke: {errors[:1]}")
    check(not sent.failed, f"{len(sent.failed)} sends through B and C failed, first: {sent.failed[:2]}")
    mark(sent, control, tokens["sender"], "mark:e-end", clients)
    group.finish()
    for client in clients:
        check_exact(client, sent, "mark:e-start", "mark:e-end")
    for client in on_a:
        check(client.connections[-1][0] in ("B", "C"), f"{client.user} ended on {client.connections[-1][0]}")
    return {"clients": len(clients), "on_killed_node": len(on_a), "sent": len(sent.by_id),
            "sends_per_s": round(publish_rate), "reconnected_within_s": round(recovered, 2),
            "largest_replay": max(len([e for e in cl.events if e[3] == 1]) for cl in on_a)}


def scenario_f(ctx, per_node=3):
    redis = Redis(ctx.tmp, "f")
    nodes = start_cluster(ctx, redis, "esk-f")
    ports = [(node.name, node.port) for node in nodes]
    users = [f"f{i:02d}" for i in range(3 * per_node)]
    tokens = {user: sign_in(nodes[0].port, user) for user in users + ["sender"]}
    clients = [Client(user, tokens[user], news=(i % 2 == 1)) for i, user in enumerate(users)]
    for client in clients:
        client.reauth = lambda port, user=client.user: sign_in(port, user)
    group = Clients()
    for i, client in enumerate(clients):
        group.start(client, ports, rng=random.Random(ctx.seed + i), prefer=i % 3)
    wait_until(lambda: connected(clients), 10, "clients connected")
    sent = Sent()
    https = [Http(node.port) for node in nodes]
    mark(sent, https[0], tokens["sender"], "mark:f-start1", clients)
    rng = random.Random(ctx.seed)
    for i in range(150):
        kind = rng.choice(["all", "to", "except", "news"])
        sent.notify(https[i % 3], tokens["sender"], "f", kind=kind, users=rng.sample(users, 2) if kind in ("to", "except") else ())
    check(not sent.failed, f"sends failed before the restart: {sent.failed[:2]}")
    old = mark(sent, https[1], tokens["sender"], "mark:f-end1", clients)
    restarted_at = time.monotonic()
    redis.kill()
    time.sleep(0.3)
    redis.start()  # the same port, empty: a new run_id
    wait_until(lambda: all(len(c.gaps) >= 1 for c in clients), 30,
               f"every client to get a gap event (without: {[c.user for c in clients if not c.gaps]})")
    gaps_within = time.monotonic() - restarted_at
    # A send works again, in a new epoch.
    deadline = time.monotonic() + 15
    signins = 0
    while True:
        key = sent.notify(https[2], tokens["sender"], "mark", kind="mark", title="mark:f-start2")
        if key is not None:
            break
        if sent.failed and sent.failed[-1][1].startswith("401"):
            try:
                tokens["sender"] = sign_in(nodes[2].port, "sender")  # the token was in the lost Redis
                signins += 1
                continue
            except (Failure, OSError):
                pass
        check(time.monotonic() < deadline, f"no send accepted 15 s after Redis came back: {sent.failed[-1:]}")
        time.sleep(0.2)
    check(key[0] != old[0], f"the epoch did not change after Redis restarted empty: {old[0]}")
    wait_until(lambda: all(c.marks["mark:f-start2"] >= 1 for c in clients), 15, "every client to receive mark:f-start2")
    sent.failed.clear()  # refusals while Redis was down are expected (and nothing was sent)
    for i in range(150):
        kind = rng.choice(["all", "to", "except", "news"])
        sent.notify(https[i % 3], tokens["sender"], "f", kind=kind, users=rng.sample(users, 2) if kind in ("to", "except") else ())
    check(not sent.failed, f"sends failed after the restart: {sent.failed[:2]}")
    mark(sent, https[0], tokens["sender"], "mark:f-end2", clients)
    time.sleep(1.0)  # a second gap would come now
    group.finish()
    for client in clients:
        check(len(client.gaps) == 1, f"{client.user}: {len(client.gaps)} gap events, expected exactly 1 (after IDs {[g[1] for g in client.gaps]})")
        check_exact(client, sent, "mark:f-start1", "mark:f-end1")
        check_exact(client, sent, "mark:f-start2", "mark:f-end2")
        gap_index = client.gaps[0][0]
        end1 = client.index_of_mark("mark:f-end1")
        start2 = client.index_of_mark("mark:f-start2")
        check(end1 < gap_index < start2, f"{client.user}: the gap came at {gap_index}, not between the epochs ({end1}, {start2})")
        between = [e for e in client.events[end1 + 1:start2] if e[1] != "gap"]
        check(not between, f"{client.user}: events between the epochs: {[(e[0], e[1]) for e in between[:3]]}")
    return {"clients": len(clients), "gap_per_client": 1, "gaps_within_s": round(gaps_within, 2),
            "signed_in_again": sum(c.signins for c in clients) + signins,
            "old_epoch": old[0], "new_epoch": key[0]}


def scenario_g(ctx, seconds=6.0, hop=0.3):
    redis = Redis(ctx.tmp, "g")
    nodes = start_cluster(ctx, redis, "esk-g")
    port = free_port()
    config = os.path.join(ctx.tmp, "haproxy.cfg")
    with open(config, "w") as f:
        f.write(f"""global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout tunnel 1h
frontend cluster
    bind {HOST}:{port}
    default_backend nodes
backend nodes
    balance roundrobin
    http-response set-header X-Served-By %s
""" + "".join(f"    server {node.name} {HOST}:{node.port}\n" for node in nodes))
    log = os.path.join(ctx.tmp, "haproxy.log")
    proxy = spawn([HAPROXY, "-f", config, "-db"], log)
    deadline = time.monotonic() + 10
    while True:
        if proxy.poll() is not None:
            raise Broken(f"haproxy exited with {proxy.returncode}: {tail(log)}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            break
        except OSError:
            check(time.monotonic() < deadline, "haproxy does not accept connections")
            time.sleep(0.05)
    users = ["hopper", "g1", "g2"]
    tokens = {user: sign_in(nodes[0].port, user) for user in users + ["sender"]}
    hopper = Client("hopper", tokens["hopper"], news=True)
    group = Clients()
    group.start(hopper, [("haproxy", port)], rng=random.Random(ctx.seed))
    wait_until(lambda: connected([hopper]), 10, "the hopper connected through haproxy")
    sent = Sent()
    https = [Http(node.port) for node in nodes]
    mark(sent, https[0], tokens["sender"], "mark:g-start", [hopper])
    group.finish()  # the hopper now reconnects every ~hop seconds, with Last-Event-ID
    group = Clients()
    group.start(hopper, [("haproxy", port)], rng=random.Random(ctx.seed), hop=hop)
    stop = threading.Event()
    errors = []
    publisher = steady_publisher(sent, https, tokens["sender"], users, "g", 200, stop, random.Random(ctx.seed), errors)
    time.sleep(seconds)
    stop.set()
    publisher.join(timeout=10)
    check(not errors, f"publisher broke: {errors[:1]}")
    check(not sent.failed, f"sends failed: {sent.failed[:2]}")
    mark(sent, https[2], tokens["sender"], "mark:g-end", [hopper])
    group.finish()
    count, *_ = check_exact(hopper, sent, "mark:g-start", "mark:g-end")
    backends = collections.Counter(c[1] for c in hopper.connections)
    check(set(backends) >= {node.name for node in nodes},
          f"haproxy did not spread the hopper's connections over the 3 nodes: {dict(backends)}")
    return {"connections": len(hopper.connections), "backends": dict(backends), "events": count, "sent": len(sent.by_id)}


SCENARIOS = {"a": scenario_a, "b": scenario_b, "c": scenario_c, "d": scenario_d,
             "e": scenario_e, "f": scenario_f, "g": scenario_g}
BOUNDS = {"a": 30, "b": 40, "c": 60, "d": 30, "e": 40, "f": 60, "g": 30}


class Context:
    pass


def run_scenario(ctx, name):
    """Runs one scenario in a thread bounded by BOUNDS[name]; its processes die with it."""
    result = {}
    logs = []
    started = time.monotonic()
    with _children_lock:
        before = len(_children)

    def body():
        try:
            result["figures"] = SCENARIOS[name](ctx)
        except Failure as error:
            result["error"] = str(error)
        except Broken as error:
            result["broken"] = str(error)
        except Exception:
            result["broken"] = traceback.format_exc(limit=5)

    ctx.nodes = []
    thread = threading.Thread(target=body, name=f"scenario-{name}", daemon=True)
    thread.start()
    thread.join(BOUNDS[name])
    if thread.is_alive():
        result["broken"] = f"over its bound of {BOUNDS[name]} s"
    if "figures" not in result:
        for node in ctx.nodes:  # what the nodes counted, for the report
            if node.alive():
                try:
                    logs.append(f"--- /stats of {node.name}: {json.dumps(node.stats())}")
                except Exception as error:
                    logs.append(f"--- /stats of {node.name}: {error!r}")
    with _children_lock:
        mine = _children[before:]
    for proc in mine:
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except Exception:
            pass
    line = {"scenario": name, "pass": "figures" in result, "seconds": round(time.monotonic() - started, 1)}
    line.update(result.get("figures", {}))
    if "error" in result:
        line["error"] = result["error"]
    if "broken" in result:
        line["broken"] = result["broken"]
    if not line["pass"]:
        for path in sorted(os.listdir(ctx.tmp)):
            if path.startswith(f"esk-{name}-") and path.endswith(".log"):
                logs.append(f"--- {path}\n{tail(os.path.join(ctx.tmp, path), 8)}")
    print(json.dumps(line), flush=True)
    for text in logs:
        print(text, file=sys.stderr, flush=True)
    return "broken" not in result, line["pass"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", help="path to the EventStreamDemo executable")
    parser.add_argument("--only", default="abcdefg", help="scenarios to run, e.g. a,c (default: all)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock, printed)")
    parser.add_argument("--timeout", type=float, default=170, help="hard overall timeout, seconds")
    parser.add_argument("--post-rate", type=float, default=1000, help="(c) POST /notify a second, over 3 publishers")
    parser.add_argument("--tick-rate", type=float, default=1550, help="(c) bench ticks a second from node A (0: none)")
    args = parser.parse_args()
    missing = [name for name, path in (("redis-server", REDIS_SERVER), ("haproxy", HAPROXY)) if not path]
    if missing:
        print(json.dumps({"scenario": "all", "pass": False, "error": f"not installed: {', '.join(missing)} (apt-get install {' '.join(missing)})"}), flush=True)
        return 2
    if not os.access(args.binary, os.X_OK):
        print(json.dumps({"scenario": "all", "pass": False, "error": f"not an executable: {args.binary}"}), flush=True)
        return 2
    ctx = Context()
    ctx.binary = os.path.abspath(args.binary)
    ctx.seed = args.seed if args.seed is not None else int(time.time()) % 100000
    ctx.post_rate = args.post_rate
    ctx.tick_rate = args.tick_rate
    ctx.tmp = tempfile.mkdtemp(prefix="esk-cluster-")
    print(f"cluster_test: seed {ctx.seed}, logs in {ctx.tmp}", file=sys.stderr, flush=True)
    atexit.register(kill_all)

    def on_signal(signum, frame):
        kill_all()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(int(args.timeout))
    names = [n for n in args.only.replace(",", "") if n in SCENARIOS]
    ok_run, ok_all = True, True
    started = time.monotonic()
    try:
        for name in names:
            ran, passed = run_scenario(ctx, name)
            ok_run &= ran
            ok_all &= passed
    except KeyboardInterrupt:
        kill_all()
        print("cluster_test: interrupted", file=sys.stderr)
        return 130
    finally:
        kill_all()
    print(f"cluster_test: {time.monotonic() - started:.1f} s, seed {ctx.seed}", file=sys.stderr, flush=True)
    if ok_all:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
        return 0
    return 1 if ok_run else 2


if __name__ == "__main__":
    sys.exit(main())
