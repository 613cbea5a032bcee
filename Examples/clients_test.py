#!/usr/bin/env python3
"""Checks a running notifications example with clients we did not write: `curl -N`, and
httpx + httpx-sse. Both examples' test.sh run it:

    python3 Examples/clients_test.py http://127.0.0.1:PORT [APP_PID]

With the app's process ID (Linux), it also checks that idle streams wake the app no more than
the hub's heartbeats do. The app under test keeps the token table token-alice -> alice, token-bob -> bob, and serves
GET /events, POST /notify/<user>, POST /broadcast and GET /stats (see Docs/Embedding.md).
Every wait is bounded. Each check waits for the clients it opened to leave the hub (within
DISCONNECT_LIMIT) before the next starts. Exits 1 if any check failed.
"""

import asyncio
import json
import sys
import time
import uuid

import httpx
from httpx_sse import aconnect_sse

from idle_cost import close_streams, context_switches, open_idle_streams


def wakeups(pid):
    """Voluntary context switches of the app's threads: each is a thread going to sleep to be
    woken later. Involuntary ones (preemption) depend on the machine's load, not on the app."""
    return context_switches(pid, kinds=("voluntary_ctxt_switches",))

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"
PID = int(sys.argv[2]) if len(sys.argv) > 2 else None
EVENT_TIMEOUT = 5.0     # seconds to wait for an event that must arrive
QUIET_PERIOD = 0.7      # seconds during which an event that must not arrive does not
DISCONNECT_LIMIT = 1.0  # seconds within which a client that left must leave the hub
IDLE_STREAMS = 200      # streams opened for the idle check
IDLE_WINDOW = 2.0       # seconds over which their wake-ups are counted, three times
IDLE_WAKEUPS = 0.25     # wake-ups per stream per second at most: less than one every 4 s


def unique(title):
    return f"{title} {uuid.uuid4().hex[:8]}"


async def post(path, payload=None, expect=202):
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.post(f"{BASE}{path}", json=payload)
    assert response.status_code == expect, f"POST {path}: {response.status_code} {response.text}"
    return response


async def notify(user, title, body="hello"):
    return (await post(f"/notify/{user}", {"title": title, "body": body})).json()["id"]


async def broadcast(title):
    return (await post("/broadcast", {"title": title, "body": "to everyone"})).json()["id"]


async def clients():
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(f"{BASE}/stats")
    assert response.status_code == 200, response.text
    return response.json()["clients"]


async def wait_for_clients(count, within=EVENT_TIMEOUT):
    """Polls /stats every 10 ms until the hub holds `count` clients; returns the seconds it took."""
    start = time.monotonic()
    while True:
        now = await clients()
        elapsed = time.monotonic() - start
        if now == count:
            return elapsed
        assert elapsed < within, f"the hub has {now} clients, not {count}, after {elapsed:.2f} s"
        await asyncio.sleep(0.01)


class Stream:
    """One event stream read with httpx-sse; a background task queues its events, so that
    each read has its own timeout."""

    def __init__(self, token, *, query=False, last_event_id=None):
        self.url = f"{BASE}/events" + (f"?token={token}" if query else "")
        self.headers = {} if query else {"Authorization": f"Bearer {token}"}
        if last_event_id is not None:
            self.headers["Last-Event-ID"] = last_event_id

    async def __aenter__(self):
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(5, read=None))
        self.context = aconnect_sse(self.http, "GET", self.url, headers=self.headers)
        source = await self.context.__aenter__()
        response = source.response
        assert response.status_code == 200, f"GET /events: {response.status_code}"
        assert response.headers["content-type"].startswith("text/event-stream"), response.headers
        assert "no-cache" in response.headers["cache-control"], response.headers
        self.events = asyncio.Queue()
        self.pump = asyncio.create_task(self._read(source))
        return self

    async def _read(self, source):
        try:
            async for event in source.aiter_sse():
                await self.events.put(event)
        finally:
            await self.events.put(None)

    async def next_notification(self, timeout=EVENT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "no notification arrived"
            try:
                event = await asyncio.wait_for(self.events.get(), remaining)
            except asyncio.TimeoutError:
                raise AssertionError(f"no notification within {timeout} s") from None
            assert event is not None, "the stream ended"
            if event.event == "notification":  # skip retry-only events
                return event

    async def expect_no_notification(self, seconds=QUIET_PERIOD):
        try:
            event = await self.next_notification(timeout=seconds)
        except AssertionError:
            return
        raise AssertionError(f"unexpected notification {event.id}: {event.data}")

    async def close(self):
        self.pump.cancel()
        await self.context.__aexit__(None, None, None)
        await self.http.aclose()

    async def __aexit__(self, *_):
        await self.close()


class Curl:
    """`curl -N` on the events route; its output parsed into events by hand."""

    def __init__(self, token):
        self.token = token

    async def __aenter__(self):
        self.process = await asyncio.create_subprocess_exec(
            "curl", "-N", "-s", "--max-time", "60",
            "-H", f"Authorization: Bearer {self.token}", f"{BASE}/events",
            stdout=asyncio.subprocess.PIPE,
        )
        return self

    async def next_notification(self, timeout=EVENT_TIMEOUT):
        deadline = time.monotonic() + timeout
        fields = {}
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "curl got no notification"
            try:
                line = await asyncio.wait_for(self.process.stdout.readline(), remaining)
            except asyncio.TimeoutError:
                raise AssertionError(f"curl got no notification within {timeout} s") from None
            assert line, "curl's stream ended"
            line = line.decode().rstrip("\r\n")
            if line == "":
                if fields.get("event") == "notification":
                    return fields
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value

    async def kill(self):
        if self.process.returncode is None:
            self.process.kill()
        await asyncio.wait_for(self.process.wait(), 5)

    async def __aexit__(self, *_):
        await self.kill()


def check_notification(event, event_id, title):
    data = json.loads(event.data if hasattr(event, "data") else event["data"])
    got_id = event.id if hasattr(event, "id") else event.get("id")
    assert got_id == event_id, f"expected event {event_id}, got {got_id}"
    assert data["title"] == title, f"expected {title!r}, got {data}"


async def test_unauthorized():
    async with httpx.AsyncClient(timeout=5) as http:
        for url, headers in [
            (f"{BASE}/events", {}),
            (f"{BASE}/events", {"Authorization": "Bearer token-mallory"}),
            (f"{BASE}/events?token=token-mallory", {}),
        ]:
            response = await http.get(url, headers=headers)
            assert response.status_code == 401, f"{url} {headers}: {response.status_code}"
    return "no token or an unknown token: 401"


async def test_events_arrive():
    base = await clients()
    async with Curl("token-alice") as curl, Stream("token-alice") as stream:
        await wait_for_clients(base + 2)
        title = unique("Lunch?")
        event_id = await notify("alice", title)
        check_notification(await curl.next_notification(), event_id, title)
        check_notification(await stream.next_notification(), event_id, title)
    await wait_for_clients(base, within=DISCONNECT_LIMIT)
    return f"alice's curl -N and httpx-sse both got {event_id}"


async def test_only_that_user():
    base = await clients()
    async with Stream("token-alice") as alice, Stream("token-bob", query=True) as bob:
        await wait_for_clients(base + 2)
        for_alice, for_bob = unique("for alice"), unique("for bob")
        alice_id = await notify("alice", for_alice)
        bob_id = await notify("bob", for_bob)
        # Had alice's reached bob, it would come first: it was sent first.
        check_notification(await bob.next_notification(), bob_id, for_bob)
        check_notification(await alice.next_notification(), alice_id, for_alice)
        await alice.expect_no_notification()
        await bob.expect_no_notification()
    await wait_for_clients(base, within=DISCONNECT_LIMIT)
    return f"alice got only {alice_id}, bob (?token=) only {bob_id}"


async def test_broadcast():
    base = await clients()
    async with Stream("token-alice") as alice, Stream("token-bob") as bob:
        await wait_for_clients(base + 2)
        title = unique("Maintenance at noon")
        event_id = await broadcast(title)
        check_notification(await alice.next_notification(), event_id, title)
        check_notification(await bob.next_notification(), event_id, title)
    await wait_for_clients(base, within=DISCONNECT_LIMIT)
    return f"alice and bob both got {event_id}"


async def test_replay():
    base = await clients()
    async with Stream("token-alice") as stream:
        seen = await notify("alice", "seen")
        check_notification(await stream.next_notification(), seen, "seen")
    await wait_for_clients(base, within=DISCONNECT_LIMIT)
    missed = [unique("missed 1"), unique("missed 2")]
    missed_ids = [await notify("alice", title) for title in missed]
    async with Stream("token-alice", last_event_id=seen) as stream:
        for event_id, title in zip(missed_ids, missed):
            check_notification(await stream.next_notification(), event_id, title)
        await stream.expect_no_notification()
        live = unique("live")
        live_id = await notify("alice", live)
        check_notification(await stream.next_notification(), live_id, live)
    await wait_for_clients(base, within=DISCONNECT_LIMIT)
    return f"Last-Event-ID: {seen} replayed exactly {missed_ids[0]}, {missed_ids[1]}, then live"


async def test_disconnect_leaves_hub():
    results = []
    base = await clients()
    async with Curl("token-alice") as curl:
        await wait_for_clients(base + 1)
        event_id = await notify("alice", "before leaving")
        check_notification(await curl.next_notification(), event_id, "before leaving")
        await curl.kill()
        took = await wait_for_clients(base, within=DISCONNECT_LIMIT)
        results.append(f"curl killed: {took:.2f} s")
    stream = await Stream("token-bob").__aenter__()
    await wait_for_clients(base + 1)
    await stream.close()
    took = await wait_for_clients(base, within=DISCONNECT_LIMIT)
    results.append(f"httpx closed: {took:.2f} s")
    return "the client count dropped back to %d: %s" % (base, ", ".join(results))


async def test_idle_streams_wake_nothing():
    """Idle streams must not wake the app periodically (a timer per stream would): its threads'
    wake-ups over IDLE_WINDOW with IDLE_STREAMS idle streams open, minus as many without them.
    The hub's heartbeat (every 15 s, a burst of writes) may fall in a window: of three
    consecutive windows, 6 s in all, at most two hold part of it, so the least of the three
    counts."""
    if PID is None:
        return "skipped: no process ID given"
    base = await clients()
    before = wakeups(PID)
    await asyncio.sleep(IDLE_WINDOW)
    quiet = wakeups(PID) - before
    streams = await open_idle_streams(BASE, IDLE_STREAMS)
    try:
        await wait_for_clients(base + IDLE_STREAMS)
        counts = []
        for _ in range(3):
            before = wakeups(PID)
            await asyncio.sleep(IDLE_WINDOW)
            counts.append(wakeups(PID) - before)
    finally:
        close_streams(streams)
    # All at once: a probe's tick, then as many failed writes and removals from the hub.
    took = await wait_for_clients(base, within=2 * DISCONNECT_LIMIT)
    busy = min(counts)
    per_stream = max(0, busy - quiet) / IDLE_STREAMS / IDLE_WINDOW
    assert per_stream <= IDLE_WAKEUPS, (
        f"{IDLE_STREAMS} idle streams: {counts} wake-ups in three windows of {IDLE_WINDOW:g} s, "
        f"{quiet} without them: {per_stream:.2f} per stream per second, over {IDLE_WAKEUPS}")
    return (f"{IDLE_STREAMS} idle streams: {busy} wake-ups in {IDLE_WINDOW:g} s (least of {counts}; "
            f"{quiet} without them), {per_stream:.3f} per stream per second; "
            f"all {IDLE_STREAMS} closed at once left in {took:.2f} s")


async def main():
    tests = [
        test_unauthorized,
        test_events_arrive,
        test_only_that_user,
        test_broadcast,
        test_replay,
        test_disconnect_leaves_hub,
        test_idle_streams_wake_nothing,
    ]
    failed = 0
    for test in tests:
        name = test.__name__.removeprefix("test_")
        try:
            detail = await asyncio.wait_for(test(), 30)
            print(f"ok    {name}: {detail}", flush=True)
        except Exception as error:  # noqa: BLE001 - report every kind of failure the same way
            failed += 1
            print(f"FAIL  {name}: {type(error).__name__}: {error}", flush=True)
    print(f"{len(tests) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
