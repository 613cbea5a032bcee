#!/usr/bin/env python3
"""Drives the demo page in headless Chromium, as a user would, and fails if the page does not
do what the README promises:

1. a user signs in on the page, and its EventSource opens;
2. a notification sent with POST /notify (by a script, signed in as "tester") to that user
   appears in the DOM, from "tester"; one to another user does not; one sent from the page's own
   form, with its token, appears from the signed-in user;
3. after the page's "Drop my stream" button, the server ends the stream, the browser reconnects
   by itself with Last-Event-ID, and shows the notification sent while it was away;
4. the page never put its long-lived token in a URL: every EventSource it opened (recorded by a
   wrapper around the constructor) carried a one-time ticket, and no request the browser sent
   (DevTools Network events) had the token in its URL;
5. the server stops cleanly on SIGTERM.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON
messages separated by NUL on fds 3 and 4), with the standard library only.

    Tests/Browser/browser_test.py PATH/TO/EventStreamDemo [--screenshot FILE]
"""
import base64
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

DEADLINE = time.monotonic() + 90


class Failure(Exception):
    pass


def remaining():
    left = DEADLINE - time.monotonic()
    if left <= 0:
        raise Failure("the browser test ran out of time (90 s)")
    return left


class Chrome:
    """Headless Chromium with a DevTools pipe."""

    def __init__(self):
        binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        if not binary:
            raise Failure("chromium is not installed (apt-get install chromium)")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # Move the child's ends above 10, so that placing them on 3 and 4 cannot clobber each other.
        child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def place_fds():
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        self.profile = tempfile.mkdtemp(prefix="esk-chromium-")
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--remote-debugging-pipe", "--window-size=1200,800", "--user-data-dir=" + self.profile, "about:blank"],
            pass_fds=(3, 4), preexec_fn=place_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(child_r)
        os.close(child_w)
        self.buffer = b""
        self.next_id = 0
        self.session = None
        # DevTools events (messages without an id) read while waiting for replies.
        self.events = []

    def send(self, method, params=None, session=True):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self.read_message()
            if "method" in reply and "id" not in reply:
                self.events.append(reply)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise Failure(f"{method} failed: {reply['error']}")
                return reply.get("result", {})

    def read_message(self):
        while b"\0" not in self.buffer:
            import select
            ready, _, _ = select.select([self.from_chrome], [], [], remaining())
            if not ready:
                raise Failure("chromium stopped answering")
            chunk = os.read(self.from_chrome, 1 << 16)
            if not chunk:
                raise Failure("chromium exited")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Network.enable")
        # Records every URL the page opens an EventSource on, before the page's script runs.
        self.send("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_EVENT_SOURCES})
        self.send("Emulation.setDeviceMetricsOverride", {"width": 1200, "height": 800, "deviceScaleFactor": 1, "mobile": False})
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && !!document.getElementById('signin-form')", "the page to load")

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise Failure(f"page script failed: {expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, what, timeout=15):
        end = min(time.monotonic() + timeout, DEADLINE)
        while time.monotonic() < end:
            if self.evaluate(expression):
                return
            time.sleep(0.05)
        raise Failure(f"timed out waiting for {what}; page state: {self.evaluate(PAGE_STATE)}")

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


RECORD_EVENT_SOURCES = """(() => {
  const Native = window.EventSource;
  window.__eventSourceURLs = [];
  window.EventSource = class extends Native {
    constructor(url, init) { window.__eventSourceURLs.push(new URL(url, location.href).href); super(url, init); }
  };
})();"""


def requested_urls(chrome):
    """Every URL the browser sent a request to, from the DevTools Network events seen so far."""
    return [event["params"]["request"]["url"] for event in chrome.events if event.get("method") == "Network.requestWillBeSent"]


def check_no_token_in_urls(chrome):
    """The page's token is in no EventSource URL and no request URL; each EventSource had a ticket."""
    token = chrome.evaluate("session.token")
    if not token:
        raise Failure("the page holds no token: the check would prove nothing")
    opened = chrome.evaluate("window.__eventSourceURLs")
    if not opened:
        raise Failure("no EventSource was recorded: the constructor wrapper did not run")
    leaking = [url for url in opened + requested_urls(chrome) if token in url]
    if leaking:
        raise Failure(f"the page put its long-lived token in a URL: {leaking}")
    without_ticket = [url for url in opened if not re.search(r"[?&]ticket=[0-9a-f]{32}(&|$)", url)]
    if without_ticket:
        raise Failure(f"an EventSource was opened without a ticket: {without_ticket}")
    tickets = [re.search(r"ticket=([0-9a-f]{32})", url).group(1) for url in opened]
    if len(set(tickets)) != len(tickets):
        raise Failure(f"a ticket was used for two EventSources: {opened}")
    return opened


PAGE_STATE = """JSON.stringify({
  state: document.getElementById('state').textContent,
  lastId: document.getElementById('last-id').textContent,
  notifications: [...document.querySelectorAll('#notifications .notification')].map(li => li.innerText),
  log: [...document.querySelectorAll('#log li')].map(li => li.textContent),
})"""


class Demo:
    """The demo server as a subprocess, its output collected."""

    def __init__(self, binary):
        self.process = subprocess.Popen([binary, "serve", "--port", "0", "--news-interval", "1"],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # stdout and stderr share the pipe, and the server's log line ("listening on …") is
        # written by its log thread: it may come before or after the "serving http://…/" line.
        seen = []
        match = None
        while match is None and len(seen) < 20:
            line = self.process.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"http://[^ ]+/", line)
        if not match:
            raise Failure(f"the demo did not print its URL: {''.join(seen)!r}")
        self.base = match.group(0)
        self.lines = [line.rstrip() for line in seen]
        threading.Thread(target=self.collect, daemon=True).start()

    def collect(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def sign_in(self, user):
        status, body = self.post("/signin", {"user": user})
        assert status == 200, status
        return body["token"]

    def notify(self, body):
        """POST /notify as a script does: signed in as "tester" (signing in on first use)."""
        if not getattr(self, "token", None):
            self.token = self.sign_in("tester")
        return self.post("/notify", body, token=self.token)

    def post(self, path, body, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        request = urllib.request.Request(self.base + path.lstrip("/"), data=json.dumps(body).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")

    def get(self, path):
        with urllib.request.urlopen(self.base + path.lstrip("/"), timeout=10) as response:
            return json.loads(response.read())

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise Failure("the demo did not stop within 15 s of SIGTERM")


def notifications(chrome):
    return chrome.evaluate("[...document.querySelectorAll('#notifications .notification .title')].map(e => e.firstChild.textContent)")


def run(binary, screenshot):
    demo = Demo(binary)
    chrome = None
    try:
        chrome = Chrome()
        chrome.open(demo.base)
        print("page loaded from", demo.base)

        # 1. Sign in as alice on the page; no news yet, so that every event ID below is a notification's.
        chrome.evaluate("document.getElementById('user').value = 'alice'; document.getElementById('news').checked = false;"
                        "document.getElementById('signin-form').requestSubmit(); true")
        chrome.wait_for("document.getElementById('state').textContent === 'open'", "alice's stream to open")
        print("alice signed in; her EventSource is open")

        # 2. One notification to alice appears; one to bob does not.
        status, bob = demo.notify({"to": ["bob"], "title": "For bob only", "body": "alice must not see this"})
        assert status == 202, status
        status, first = demo.notify({"to": ["alice"], "title": "Hello alice", "body": "sent with POST /notify"})
        assert status == 202, status
        chrome.wait_for("[...document.querySelectorAll('#notifications .title')].some(e => e.textContent.startsWith('Hello alice'))", "alice's notification")
        status, second = demo.notify({"except": ["bob"], "title": "Everyone but bob", "body": "a broadcast"})
        chrome.wait_for("[...document.querySelectorAll('#notifications .title')].some(e => e.textContent.startsWith('Everyone but bob'))", "the broadcast")
        sender = chrome.evaluate("[...document.querySelectorAll('#notifications .notification')].find(li => li.innerText.includes('Hello alice')).innerText")
        if "from tester" not in sender:
            raise Failure(f"the notification does not say it is from its sender, tester: {sender!r}")
        seen = notifications(chrome)
        if any(title.startswith("For bob only") for title in seen):
            raise Failure(f"alice's page shows bob's notification: {seen}")
        last_id = chrome.evaluate("document.getElementById('last-id').textContent")
        if last_id != second["id"]:
            raise Failure(f"the page shows Last-Event-ID {last_id!r}, the server sent {second['id']!r}")
        print("alice got her notifications (ids", first["id"], second["id"] + "), not bob's", bob["id"])

        # The page's own form sends with alice's token and JSON; the notification is from alice.
        chrome.evaluate("document.getElementById('target').value = 'to'; document.getElementById('users').value = 'alice';"
                        "document.getElementById('title').value = 'Note to self'; document.getElementById('body').value = 'sent from the page';"
                        "document.getElementById('send-form').requestSubmit(); true")
        chrome.wait_for("document.getElementById('send-result').textContent !== ''", "the page's send to be answered")
        result = chrome.evaluate("document.getElementById('send-result').textContent")
        if not result.startswith("sent as event"):
            raise Failure(f"the page's own send was refused: {result!r}")
        chrome.wait_for("[...document.querySelectorAll('#notifications .notification')].some(li => li.innerText.includes('Note to self') && li.innerText.includes('from alice'))",
                        "the page's own notification, from alice")
        # The last event alice has before the drop: the one she resumes from.
        latest = result.removeprefix("sent as event ").strip()
        print("the page sent", latest, "with alice's token; it arrived from alice")

        # 3. Drop the stream; send while alice is away; the browser reconnects and catches up.
        chrome.evaluate("document.getElementById('drop').click(); true")
        chrome.wait_for("document.getElementById('state').textContent === 'reconnecting'", "the page to see its stream end")
        # alice's page holds the only stream (no news): /stats counts streams, naming no one.
        if demo.get("/stats")["clients"]:
            raise Failure("alice is still connected after the drop")
        status, missed = demo.notify({"to": ["alice"], "title": "Missed while away", "body": "replayed from the backlog"})
        if demo.get("/stats")["clients"]:
            raise Failure("alice reconnected before the missed notification was sent; the test proves nothing")
        chrome.wait_for("document.getElementById('state').textContent === 'open' && "
                        "[...document.querySelectorAll('#notifications .title')].some(e => e.textContent.startsWith('Missed while away'))",
                        "the browser to reconnect and show the missed notification")
        log = chrome.evaluate("[...document.querySelectorAll('#log li')].map(li => li.textContent)")
        if not any(f"reconnected with Last-Event-ID {latest}" in line for line in log):
            raise Failure(f"the page did not log a reconnection with Last-Event-ID {latest}: {log}")
        deadline = time.monotonic() + 5
        while not any(f"reconnect alice" in line and f"Last-Event-ID {latest}" in line for line in demo.lines):
            if time.monotonic() > deadline:
                raise Failure(f"the server did not log alice's reconnection with Last-Event-ID {latest}: {demo.lines}")
            time.sleep(0.05)
        tag = chrome.evaluate("[...document.querySelectorAll('#notifications .notification')].find(li => li.innerText.includes('Missed while away')).innerText")
        print("the browser reconnected with Last-Event-ID", latest, "and showed the missed notification", missed["id"], "|", tag.splitlines()[0])

        # 4. The token was never in a URL; each stream had a ticket of its own, used once.
        opened = check_no_token_in_urls(chrome)
        print(f"the page opened {len(opened)} EventSources, each with a fresh ticket; its token was in none of"
              f" {len(requested_urls(chrome))} request URLs")
        used = re.search(r"ticket=([0-9a-f]{32})", opened[0]).group(1)
        try:
            with urllib.request.urlopen(demo.base + "events?ticket=" + used, timeout=5) as response:
                raise Failure(f"a used ticket opened a stream again ({response.status})")
        except urllib.error.HTTPError as error:
            if error.code != 401:
                raise Failure(f"a used ticket was answered {error.code}, not 401")
        print("the page's first ticket, used once, is refused (401) when a script replays its URL")

        if screenshot:
            chrome.evaluate("document.getElementById('toggle-news').click(); true")
            chrome.wait_for("document.querySelectorAll('#news-feed li').length >= 1", "the first headline")
            demo.notify({"to": ["alice", "carol"], "title": "Lunch at 12:30?", "body": "Downstairs, as usual."})
            chrome.evaluate("document.getElementById('target').value = 'except'; document.getElementById('users').value = 'bob';"
                            "document.getElementById('title').value = 'Surprise party for bob'; document.getElementById('body').value = 'Friday 5 pm, keep it quiet';"
                            "document.getElementById('send-form').requestSubmit(); true")
            chrome.wait_for("document.getElementById('send-result').textContent.startsWith('sent')", "the page's own send")
            chrome.wait_for("document.querySelectorAll('#news-feed li').length >= 3", "some news")
            time.sleep(2.2)  # one stats refresh
            chrome.screenshot(screenshot)
            print("screenshot written to", screenshot)
    finally:
        if chrome:
            chrome.close()
        code = demo.stop()
    if code != 0:
        raise Failure(f"the demo exited with {code} after SIGTERM")
    if not any("stopped" in line for line in demo.lines):
        raise Failure("the demo did not log its clean stop")
    print("the demo stopped cleanly on SIGTERM")


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    screenshot = None
    if "--screenshot" in args:
        screenshot = args[args.index("--screenshot") + 1]
    try:
        run(args[0], screenshot)
    except (Failure, AssertionError, urllib.error.URLError) as error:
        print("BROWSER TEST FAILED:", error, file=sys.stderr)
        return 1
    print("browser test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
