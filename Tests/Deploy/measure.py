#!/usr/bin/env python3
"""Measures what goes wrong without each setting of Deploy/ (the figures in Docs/Deployment.md):
the Deploy/ configs run as they are and with one setting changed, in front of the demo, with
short timeouts so that it takes about a minute. Everything on 127.0.0.1.

    Tests/Deploy/measure.py PATH/TO/EventStreamDemo [nginx|haproxy|chromium|stop|nofile|silence ...]

Streams are read with `curl -sN` (HTTP/1.1 to nginx over TLS, or to HAProxy), each line
time-stamped on arrival; the 12-stream page with Chromium, as Tests/Deploy/nginx_h2_test.py.
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nginx_h2_test as t  # noqa: E402

t.DEADLINE = time.monotonic() + 600
ROOT = t.ROOT
CLEANUP = []


class Stream:
    """`curl -sN URL`, its output lines time-stamped; `ended` is when curl exited."""

    def __init__(self, url, *extra):
        self.started = time.time()
        self.process = subprocess.Popen(["curl", "-sNk", *extra, url], stdout=subprocess.PIPE, text=True, preexec_fn=t.die_with_parent)
        CLEANUP.append(self.process)
        self.lines = []
        self.ended = None
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.process.stdout:
            self.lines.append((time.time(), line.rstrip("\n")))
        self.process.wait()
        self.ended = time.time()

    def arrivals(self, prefix):
        """(arrival, title) of notifications whose title starts with prefix."""
        found = []
        for at, line in self.lines:
            if line.startswith("data: {"):
                title = json.loads(line[6:]).get("title", "")
                if title.startswith(prefix):
                    found.append((at, title))
        return found

    def heartbeats(self):
        return [round(at - self.started, 1) for at, line in self.lines if line.startswith(":")]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()


def delays(demo, sender, stream, prefix, count=10, interval=0.3, settle=2.0):
    """Sends `count` notifications `interval` apart; returns the delay of each (None: never came)."""
    sent = {}
    for index in range(count):
        title = f"{prefix}{index}"
        sent[title] = time.time()
        demo.post("/notify", {"title": title}, token=sender)
        time.sleep(interval)
    time.sleep(settle)
    arrived = dict((title, at) for at, title in stream.arrivals(prefix))
    return [round((arrived[title] - sent[title]) * 1000) if title in arrived else None for title in sent]


def summary(values):
    got = [v for v in values if v is not None]
    missing = len(values) - len(got)
    if not got:
        return f"none of {len(values)} arrived"
    return f"median {statistics.median(got):.0f} ms, max {max(got)} ms" + (f", {missing} of {len(values)} never arrived" if missing else "")


def start_nginx_variant(demo, name, edit):
    directory = tempfile.mkdtemp(prefix=f"esk-measure-{name}-")
    cert, key, spki = t.make_certificate(directory)
    port = t.free_port()
    main = t.nginx_config(directory, port, t.free_port(), demo.port, cert, key, edit=edit)
    process = t.start_nginx(directory, main)
    CLEANUP.append(process)
    t.wait_for_port(port, process, f"nginx ({name})")
    return f"https://127.0.0.1:{port}", spki


def edit_line(old, new):
    def edit(site):
        return t.substitute(site, old, new)
    return edit


def measure_nginx(binary):
    demo = t.Demo(binary)
    CLEANUP.append(demo.process)
    sender = demo.sign_in("sender")
    variants = {
        "deploy": None,
        "proxy_buffering on, X-Accel-Buffering honoured": edit_line(r"^(\s*)proxy_buffering off;", r"\1proxy_buffering on;"),
        "proxy_buffering on, X-Accel-Buffering ignored": edit_line(r"^(\s*)proxy_buffering off;", r"\1proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;"),
        "gzip on (gzip_types text/event-stream)": edit_line(r"^\s*gzip off;\n", ""),
        "proxy_http_version 1.0 (nginx's default)": edit_line(r"^(\s*)proxy_http_version 1\.1;", r"\1proxy_http_version 1.0;"),
    }
    results = {}

    def run(name, edit):
        base, _ = start_nginx_variant(demo, re.sub(r"\W+", "-", name)[:20], edit)
        user = "m" + str(abs(hash(name)) % 10**6)
        token = demo.sign_in(user)
        stream = Stream(f"{base}/events?token={token}", "--compressed")
        time.sleep(1)
        result = summary(delays(demo, sender, stream, f"{user}-", count=10, interval=0.3, settle=3.0))
        head = subprocess.run(["curl", "-sk", "--compressed", "-o", "/dev/null", "-D", "-", "--max-time", "1", f"{base}/events?token={demo.sign_in(user + 'h')}"],
                              capture_output=True, text=True).stdout
        encoding = re.search(r"(?im)^content-encoding: *(\S+)", head)
        results[name] = (result + (f" (Content-Encoding: {encoding.group(1)})" if encoding else ""), stream)

    threads = [threading.Thread(target=run, args=item) for item in variants.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("nginx: delay of a notification, POST /notify to the line at curl, 10 sent 300 ms apart:")
    for name in variants:
        print(f"  {name:50s} {results[name][0]}")

    # Timeouts: an idle stream (no events; the hub's heartbeat every 15 s), watched for 65 s.
    idle = {
        "deploy (proxy_read_timeout 60s)": None,
        "proxy_read_timeout 5s": edit_line(r"^(\s*)proxy_read_timeout 60s;", r"\1proxy_read_timeout 5s;"),
        "proxy_read_timeout 20s": edit_line(r"^(\s*)proxy_read_timeout 60s;", r"\1proxy_read_timeout 20s;"),
        "proxy_read_timeout 35s": edit_line(r"^(\s*)proxy_read_timeout 60s;", r"\1proxy_read_timeout 35s;"),
    }
    streams = {}
    for name, edit in idle.items():
        base, _ = start_nginx_variant(demo, "idle" + str(len(streams)), edit)
        streams[name] = Stream(f"{base}/events?token={demo.sign_in('idle' + str(len(streams)))}")
    time.sleep(65)
    print("nginx: an idle stream (heartbeat every 15 s), watched 65 s:")
    for name, stream in streams.items():
        ended = f"cut after {stream.ended - stream.started:.1f} s" if stream.ended else "still open"
        print(f"  {name:50s} {ended}; heartbeats at {stream.heartbeats()} s")


def haproxy_config(port, nodes, edit=None):
    with open(os.path.join(ROOT, "Deploy", "haproxy", "eventstreamkit.cfg")) as file:
        config = file.read()
    for line in ("log /dev/log local0", "user haproxy", "group haproxy", "daemon"):
        config = t.substitute(config, rf"^\s*{re.escape(line)}\n", "")
    config = t.substitute(config, r"^(\s*)bind :80$", rf"\1bind 127.0.0.1:{port}")
    # maxconn 20000 needs 40,000 descriptors; this machine's hard limit may be lower.
    config = t.substitute(config, r"^(\s*)maxconn 20000$", r"\1maxconn 2000")
    servers = "".join(f"    server node{i + 1} 127.0.0.1:{node.port}\n" for i, node in enumerate(nodes))
    config, count = re.subn(r"^    server node\d 127\.0\.0\.1:808\d\n", "", config, flags=re.M)
    assert count == 3, count
    config += servers
    return edit(config) if edit else config


def start_haproxy(config):
    directory = tempfile.mkdtemp(prefix="esk-measure-haproxy-")
    path = os.path.join(directory, "haproxy.cfg")
    with open(path, "w") as file:
        file.write(config)
    process = subprocess.Popen(["/usr/sbin/haproxy", "-f", path, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=t.die_with_parent)
    CLEANUP.append(process)
    return process


def measure_haproxy(binary):
    redis_port = t.free_port()
    redis = subprocess.Popen(["/usr/bin/redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, preexec_fn=t.die_with_parent)
    CLEANUP.append(redis)
    t.wait_for_port(redis_port, redis, "redis-server")
    nodes = []
    for name in ("alpha", "beta", "gamma"):
        node = t.Demo(binary, "--redis", f"redis://127.0.0.1:{redis_port}", "--node", name)
        CLEANUP.append(node.process)
        nodes.append(node)
    variants = {
        "deploy (client/server 60s, tunnel 1h)": None,
        "timeout server 5s, tunnel 1h": lambda c: t.substitute(c, r"^(\s*)timeout server 60s", r"\1timeout server 5s"),
        "timeout server 5s, no timeout tunnel": lambda c: t.substitute(t.substitute(c, r"^(\s*)timeout server 60s", r"\1timeout server 5s"), r"^\s*timeout tunnel 1h\n", ""),
        "timeout client 5s, tunnel 1h": lambda c: t.substitute(c, r"^(\s*)timeout client 60s", r"\1timeout client 5s"),
        "timeout server 20s, no timeout tunnel": lambda c: t.substitute(t.substitute(c, r"^(\s*)timeout server 60s", r"\1timeout server 20s"), r"^\s*timeout tunnel 1h\n", ""),
    }
    bases = {}
    for name, edit in variants.items():
        port = t.free_port()
        process = start_haproxy(haproxy_config(port, nodes, edit))
        t.wait_for_port(port, process, f"haproxy ({name})")
        bases[name] = f"http://127.0.0.1:{port}"
    sender = nodes[0].sign_in("sender")
    # Round robin, no stickiness: six streams through the deploy config, the node each landed on.
    base = bases["deploy (client/server 60s, tunnel 1h)"]
    time.sleep(5)  # past two health checks (inter 2s, rise 2): a node failing /health would be down
    landed = []
    for index in range(6):
        token = nodes[0].sign_in(f"rr{index}")
        stream = Stream(f"{base}/events?token={token}")
        time.sleep(0.5)
        landed += [line[6:] for _, line in stream.lines if line.startswith("data: ") and not line.startswith("data: {")][:1]
        stream.stop()
    print(f"haproxy: six streams landed on nodes {landed}")
    token = nodes[0].sign_in("hdelay")
    stream = Stream(f"{base}/events?token={token}")
    time.sleep(1)
    print(f"haproxy: delay of a notification (deploy config): {summary(delays(nodes[0], sender, stream, 'h-', count=10, interval=0.3, settle=1.0))}")
    streams = {name: Stream(f"{url}/events?token={nodes[0].sign_in('hidle' + str(i))}") for i, (name, url) in enumerate(bases.items())}
    time.sleep(65)
    print("haproxy: an idle stream (heartbeat every 15 s), watched 65 s:")
    for name, stream in streams.items():
        ended = f"cut after {stream.ended - stream.started:.1f} s" if stream.ended else "still open"
        print(f"  {name:42s} {ended}; heartbeats at {stream.heartbeats()} s")

    # A node killed: streams opened at once, before the health check notices, with and without redispatch.
    without = t.free_port()
    process = start_haproxy(haproxy_config(without, nodes, lambda c: t.substitute(c, r"^\s*option redispatch\n", "")))
    t.wait_for_port(without, process, "haproxy (no redispatch)")
    nodes[2].process.kill()
    for name, url in (("with option redispatch", base), ("without option redispatch", f"http://127.0.0.1:{without}")):
        codes = []
        for index in range(9):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                    codes.append(response.status)
            except urllib.error.HTTPError as error:
                codes.append(error.code)
        print(f"haproxy: 9 requests right after a node was killed, {name}: {codes}")


def measure_chromium(binary):
    demo = t.Demo(binary)
    CLEANUP.append(demo.process)
    for label, edit in (("HTTP/1.1 (listen ... ssl; no http2)", edit_line(r"^(\s*)listen (127\.0\.0\.1:\d+) ssl http2;", r"\1listen \2 ssl;")), ("HTTP/2 (deploy)", None)):
        base, spki = start_nginx_variant(demo, "chromium", edit)
        tokens = {f"c{i}": demo.sign_in(f"c{i}-{abs(hash(label)) % 1000}") for i in range(1, 13)}
        chrome = t.Chrome(spki=spki)
        try:
            session = chrome.open(base + "/")
            chrome.evaluate(session, """window.esk = {open: {}, at: performance.now()};
              for (const [user, token] of Object.entries(%s)) {
                const source = new EventSource('/events?token=' + encodeURIComponent(token));
                source.onopen = () => { esk.open[user] = Math.round(performance.now() - esk.at); };
              }; true""" % json.dumps(tokens))
            time.sleep(5)
            health = chrome.evaluate(session, """(async () => { const start = performance.now();
              const result = await Promise.race([fetch('/health').then(r => r.status), new Promise(r => setTimeout(() => r('no answer'), 5000))]);
              return [result, Math.round(performance.now() - start)]; })()""")
            opened = chrome.evaluate(session, "esk.open")
            protocols = sorted({r.get("protocol") for r in chrome.responses(session, "/events")})
            print(f"chromium, 12 EventSources in one page, {label}: {len(opened)} open after 5 s {protocols}; a fetch('/health') then: {health[0]} after {health[1]} ms")
        finally:
            chrome.close()


def measure_stop(binary):
    """SIGTERM with streams open: how long the demo takes to exit, and what the clients saw."""
    demo = t.Demo(binary)
    streams = [Stream(f"{demo.base}/events?token={demo.sign_in(f's{i}')}") for i in range(20)]
    time.sleep(1)
    start = time.time()
    demo.process.send_signal(signal.SIGTERM)
    demo.process.wait(timeout=30)
    took = time.time() - start
    time.sleep(0.5)
    ended = [s for s in streams if s.ended]
    retries = [line for s in streams for _, line in s.lines if line.startswith("retry:")]
    print(f"demo: SIGTERM with 20 streams open: exited after {took:.2f} s (status {demo.process.returncode}); "
          f"{len(ended)} streams ended, {len(retries)} got a retry: line first ({retries[:1]})")


def measure_nofile(binary):
    """The descriptor limit: streams opened with a soft limit of 256, as without LimitNOFILE at 1024."""
    process = subprocess.Popen(["prlimit", "--nofile=256:256", binary, "serve", "--port", "0", "--bench-rate", "0", "--news-interval", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=t.die_with_parent)
    CLEANUP.append(process)
    port = None
    while port is None:
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", process.stdout.readline())
        port = match and int(match.group(1))
    ok, refused, sockets = 0, 0, []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = s.recv(64)
        if head.startswith(b"HTTP/1.1 200"):
            ok += 1
        else:
            refused += 1
        sockets.append(s)
    print(f"demo with a descriptor limit of 256: of 300 streams, {ok} opened, {refused} answered 503 (the 64 kept in reserve, and the process's own)")
    for s in sockets:
        s.close()


def measure_silence(binary):
    """The longest silence on a stream: an event just after a heartbeat tick, then nothing."""
    demo = t.Demo(binary)
    CLEANUP.append(demo.process)
    sender = demo.sign_in("sender")
    stream = Stream(f"{demo.base}/events?token={demo.sign_in('quiet')}")
    while not stream.heartbeats():
        time.sleep(0.05)
    demo.post("/notify", {"to": ["quiet"], "title": "just after a tick"}, token=sender)
    event = time.time()
    while len(stream.heartbeats()) < 2:
        time.sleep(0.05)
    print(f"demo: an event right after a heartbeat tick; the next heartbeat came {stream.started + stream.heartbeats()[1] - event:.1f} s later")
    stream.stop()


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    binary = os.path.abspath(sys.argv[1])
    which = sys.argv[2:] or ["nginx", "haproxy", "chromium", "stop", "nofile", "silence"]
    start = time.time()
    try:
        threads = [threading.Thread(target=globals()["measure_" + name], args=(binary,)) for name in which]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for process in CLEANUP:
            if process.poll() is None:
                process.terminate()
        for process in CLEANUP:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    print(f"measured in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
