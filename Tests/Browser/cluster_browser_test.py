#!/usr/bin/env python3
"""The demo as a cluster, in headless Chromium: a real browser whose stream is dropped
reconnects to another node and shows what it missed.

A redis-server on a free port, three `EventStreamDemo serve --redis` nodes, and Debian's
HAProxy in front (round robin, no stickiness, health checks on /health). The page is loaded
through HAProxy:

1. alice signs in on the page (her token is shared by every node); her stream opens on some
   node, which the page shows (the stream's first event names its node);
2. a notification sent through HAProxy (by a script signed in as "tester", on whichever node
   HAProxy picks) reaches her;
3. the node serving her stream is killed with SIGKILL; while her browser waits to reconnect, a
   notification is sent to her through HAProxy (another node takes it);
4. the browser reconnects through HAProxy with Last-Event-ID, lands on another node, and shows
   the missed notification there, replayed from the cluster's log; each of its EventSources
   was opened with a one-time ticket (kept in Redis, so any node redeems it), never the token.

    Tests/Browser/cluster_browser_test.py PATH/TO/EventStreamDemo
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser_test  # noqa: E402  (the Chrome driver and its deadline)
from browser_test import Chrome, Failure, check_no_token_in_urls  # noqa: E402


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, what, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.05)
    raise Failure(f"timed out waiting for {what}")


def answers(port, path="/health"):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Node:
    def __init__(self, binary, redis_port, name):
        self.name = name
        self.process = subprocess.Popen(
            [binary, "serve", "--port", "0", "--news-interval", "0", "--redis", f"redis://127.0.0.1:{redis_port}",
             "--node", name, "--cluster-name", "browser-test"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        match = None
        while match is None and len(self.lines) < 20:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip())
            match = re.search(r"serving http://127\.0\.0\.1:(\d+)/", line)
        if not match:
            raise Failure(f"node {name} did not print its URL: {self.lines}")
        self.port = int(match.group(1))
        threading.Thread(target=self.collect, daemon=True).start()

    def collect(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def haproxy_config(port, nodes):
    servers = "\n".join(
        f"  server {node.name} 127.0.0.1:{node.port} check inter 300ms fall 1 rise 2" for node in nodes)
    return f"""global
  maxconn 2000
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  # An event stream is a long response: the tunnel timeout, not the server timeout, bounds it.
  timeout tunnel 1h
  # A dead node refuses the connection: try another.
  option redispatch
  retries 3
frontend sse
  bind 127.0.0.1:{port}
  default_backend nodes
backend nodes
  balance roundrobin
  option httpchk
  http-check send meth GET uri /health ver HTTP/1.1 hdr Host 127.0.0.1
{servers}
"""


def post(base, path, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read() or b"{}")


def run(binary):
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    redis = shutil.which("redis-server") or "/usr/bin/redis-server"
    for path, package in ((haproxy, "haproxy"), (redis, "redis-server")):
        if not os.access(path, os.X_OK):
            raise Failure(f"{package} is not installed (apt-get install {package})")
    scratch = tempfile.mkdtemp(prefix="esk-cluster-browser-")
    processes = []
    nodes = []
    chrome = None
    try:
        redis_port = free_port()
        processes.append(subprocess.Popen(
            [redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", scratch],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", redis_port)) == 0, "redis-server")
        nodes = [Node(binary, redis_port, name) for name in ("north", "east", "west")]
        proxy_port = free_port()
        config = os.path.join(scratch, "haproxy.cfg")
        with open(config, "w") as file:
            file.write(haproxy_config(proxy_port, nodes))
        processes.append(subprocess.Popen([haproxy, "-f", config, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: answers(proxy_port), "HAProxy to answer")
        base = f"http://127.0.0.1:{proxy_port}"

        chrome = Chrome()
        chrome.open(base + "/")
        print("page loaded through HAProxy", base, "in front of", ", ".join(f"{n.name} :{n.port}" for n in nodes))

        # 1. alice signs in; her stream names its node.
        chrome.evaluate("document.getElementById('user').value = 'alice'; document.getElementById('news').checked = false;"
                        "document.getElementById('signin-form').requestSubmit(); true")
        chrome.wait_for("document.getElementById('state').textContent === 'open' && "
                        "document.getElementById('node').textContent.startsWith('node ')", "alice's stream to open and name its node")
        first_node = chrome.evaluate("document.getElementById('node').textContent").removeprefix("node ")
        serving = next((node for node in nodes if node.name == first_node), None)
        if serving is None:
            raise Failure(f"the page names a node that is not one of ours: {first_node!r}")
        print("alice's stream is served by node", first_node)

        # 2. A notification through HAProxy, from whichever node takes it.
        _, tester = post(base, "/signin", {"user": "tester"})
        token = tester["token"]
        status, before = post(base, "/notify", {"to": ["alice"], "title": "Before the crash", "body": "live"}, token)
        if status != 202:
            raise Failure(f"notify answered {status}")
        chrome.wait_for("[...document.querySelectorAll('#notifications .title')].some(e => e.textContent.startsWith('Before the crash'))",
                        "the first notification")

        # 3. Kill the node that serves alice; send while she is away.
        serving.process.kill()
        serving.process.wait(timeout=10)
        chrome.wait_for("document.getElementById('state').textContent === 'reconnecting'", "the page to see its stream end")
        status, missed = post(base, "/notify", {"to": ["alice"], "title": "Missed while away", "body": "replayed on another node"}, token)
        if status != 202:
            raise Failure(f"notify after the crash answered {status}")
        print(f"node {first_node} killed; sent {missed['id']} while alice was away")

        # 4. The browser reconnects through HAProxy to another node and shows what it missed.
        chrome.wait_for("document.getElementById('state').textContent === 'open' && "
                        "[...document.querySelectorAll('#notifications .title')].some(e => e.textContent.startsWith('Missed while away'))",
                        "the browser to reconnect and show the missed notification", timeout=20)
        second_node = chrome.evaluate("document.getElementById('node').textContent").removeprefix("node ")
        if second_node == first_node or second_node not in {node.name for node in nodes}:
            raise Failure(f"the reconnected stream is served by {second_node!r}, not another node of the cluster")
        titles = chrome.evaluate("[...document.querySelectorAll('#notifications .title')].map(e => e.firstChild.textContent)")
        if [t for t in titles if t.startswith("Missed while away")].__len__() != 1 or [t for t in titles if t.startswith("Before the crash")].__len__() != 1:
            raise Failure(f"each notification must appear exactly once: {titles}")
        log = chrome.evaluate("[...document.querySelectorAll('#log li')].map(li => li.textContent)")
        if not any(f"reconnected with Last-Event-ID {before['id']}" in line for line in log):
            raise Failure(f"the page did not reconnect with Last-Event-ID {before['id']}: {log}")
        print(f"the browser reconnected to node {second_node} with Last-Event-ID {before['id']} and showed {missed['id']} exactly once")
        opened = check_no_token_in_urls(chrome)
        print(f"each of its {len(opened)} EventSources had a fresh ticket, none its token")
    finally:
        if chrome:
            chrome.close()
        for node in nodes:
            node.stop()
        for process in processes:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(scratch, ignore_errors=True)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    browser_test.DEADLINE = time.monotonic() + 90
    try:
        run(sys.argv[1])
    except (Failure, AssertionError, urllib.error.URLError, OSError) as error:
        print("CLUSTER BROWSER TEST FAILED:", error, file=sys.stderr)
        return 1
    print("cluster browser test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
