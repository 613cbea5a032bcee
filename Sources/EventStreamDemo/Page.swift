/// The demo page, served at `/` from the binary: HTML, CSS and JavaScript in one document,
/// no CDN and no build step. Text from events is set with `textContent`, never as HTML.
enum Page {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>EventStreamKit demo</title>
<style>
  :root { --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #f05138; --ok: #12b76a; --warn: #f79009; --bad: #d92d20; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f7f8fa; }
  header { display: flex; align-items: center; gap: 16px; padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; }
  header h1 span { color: var(--accent); }
  .pill { display: inline-flex; align-items: center; gap: 6px; padding: 2px 10px; border-radius: 999px; background: #f2f4f7; font-size: 13px; }
  .dot { width: 9px; height: 9px; border-radius: 50%; background: var(--muted); }
  .open .dot { background: var(--ok); } .connecting .dot, .reconnecting .dot { background: var(--warn); } .closed .dot { background: var(--bad); }
  main { display: grid; grid-template-columns: 1fr 1fr; gap: 20px; padding: 20px 24px; max-width: 1200px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; }
  h2 { font-size: 15px; margin: 0 0 10px; }
  label { display: block; font-size: 13px; color: var(--muted); margin: 8px 0 4px; }
  input, select, textarea { width: 100%; padding: 7px 9px; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
  textarea { height: 54px; resize: vertical; }
  button { margin-top: 10px; padding: 7px 14px; border: 0; border-radius: 6px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
  button.secondary { background: #475467; }
  ul { list-style: none; margin: 0; padding: 0; max-height: 330px; overflow: auto; }
  li { padding: 8px 0; border-bottom: 1px solid var(--line); }
  li .title { font-weight: 600; }
  li .meta { font-size: 12px; color: var(--muted); }
  .tag { font-size: 11px; background: #fef0c7; color: #93370d; border-radius: 4px; padding: 0 5px; margin-left: 6px; }
  #log li { font: 12px/1.4 ui-monospace, monospace; padding: 3px 0; border: 0; }
  .row { display: flex; gap: 10px; align-items: center; }
  .row > * { flex: 1; }
  .hidden { display: none; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0; font-size: 13px; }
  dt { color: var(--muted); }
  .error { color: var(--bad); font-size: 13px; }
</style>
</head>
<body>
<header>
  <h1>EventStream<span>Kit</span> demo · per-user push notifications</h1>
  <span id="state-pill" class="pill closed"><span class="dot"></span><span id="state">signed out</span></span>
  <span class="pill">user: <b id="who">–</b></span>
  <span class="pill">Last-Event-ID: <code id="last-id">–</code></span>
</header>
<main>
  <section id="signin-panel">
    <h2>Sign in</h2>
    <form id="signin-form">
      <label for="user">User name (letters, digits, . _ -)</label>
      <input id="user" autocomplete="off" placeholder="alice" required>
      <label><input type="checkbox" id="news" checked style="width:auto"> Subscribe to the news channel</label>
      <button id="signin" type="submit">Sign in and connect</button>
      <div id="signin-error" class="error"></div>
    </form>
  </section>
  <section id="session-panel" class="hidden">
    <h2>Your stream</h2>
    <dl>
      <dt>state</dt><dd id="state-text">–</dd>
      <dt>events received</dt><dd id="count">0</dd>
      <dt>reconnections</dt><dd id="reconnects">0</dd>
      <dt>served by</dt><dd id="node">this server</dd>
    </dl>
    <div class="row">
      <button id="drop" class="secondary" type="button" title="The server ends your stream; the browser reconnects with Last-Event-ID and gets what it missed">Drop my stream</button>
      <button id="toggle-news" class="secondary" type="button">Leave news</button>
    </div>
    <h2 style="margin-top:14px">Connection log</h2>
    <ul id="log"></ul>
  </section>
  <section>
    <h2>Notifications</h2>
    <ul id="notifications"></ul>
  </section>
  <section>
    <h2>Send a notification</h2>
    <form id="send-form">
      <div class="row">
        <div><label for="target">To</label>
          <select id="target">
            <option value="to">one or several users</option>
            <option value="everyone">everyone</option>
            <option value="except">everyone except…</option>
            <option value="news">the news channel</option>
          </select></div>
        <div><label for="users">Users (comma-separated)</label><input id="users" placeholder="bob, carol"></div>
      </div>
      <label for="title">Title (up to 200 bytes in UTF-8)</label><input id="title" required maxlength="200" placeholder="Lunch?">
      <label for="body">Body (up to 2000 bytes)</label><textarea id="body" maxlength="2000" placeholder="12:30 downstairs"></textarea>
      <button id="send" type="submit">Send</button>
      <div id="send-result" class="meta"></div>
    </form>
  </section>
  <section>
    <h2>News channel</h2>
    <ul id="news-feed"></ul>
  </section>
  <section>
    <h2>Server</h2>
    <dl id="stats"></dl>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const session = { user: null, token: null, source: null, news: true, lastId: "", count: 0, reconnects: 0, openedAt: 0,
  generation: 0, retryTimer: null, failures: 0 };

function setState(state) {
  $("state").textContent = state;
  $("state-text").textContent = state;
  $("state-pill").className = "pill " + state;
}

function logLine(text) {
  const li = document.createElement("li");
  li.textContent = new Date().toLocaleTimeString() + "  " + text;
  $("log").prepend(li);
}

function item(list, title, lines, tag) {
  const li = document.createElement("li");
  const head = document.createElement("div");
  head.className = "title";
  head.textContent = title;
  if (tag) { const t = document.createElement("span"); t.className = "tag"; t.textContent = tag; head.append(t); }
  li.append(head);
  for (const line of lines) {
    const div = document.createElement("div");
    div.className = line.meta ? "meta" : "";
    div.textContent = line.text;
    li.append(div);
  }
  $(list).prepend(li);
  return li;
}

// The long-lived token never goes in a URL (proxies and access logs keep URLs): each
// connection asks POST /ticket, with the token in a header, for a ticket that opens one
// stream within seconds, and puts that in the EventSource URL.
async function connect(resumeFrom) {
  if (session.source) session.source.close();
  session.source = null;
  clearTimeout(session.retryTimer);
  const generation = ++session.generation;
  if (!session.wasDown) setState("connecting");
  let ticket;
  try {
    const response = await fetch("/ticket", { method: "POST", headers: { Authorization: "Bearer " + session.token } });
    if (response.status === 401) {
      setState("closed");
      logLine("closed: " + (await response.text()).trim());
      return;
    }
    if (!response.ok) throw new Error("POST /ticket answered " + response.status);
    ticket = (await response.json()).ticket;
  } catch (error) {
    if (generation === session.generation) reconnectLater(String(error));
    return;
  }
  if (generation !== session.generation) return;  // a newer connect() took over meanwhile
  let url = "/events?ticket=" + encodeURIComponent(ticket) + (session.news ? "&channels=news" : "");
  // A new EventSource does not send Last-Event-ID; the query parameter resumes it (the server reads both).
  if (resumeFrom) url += "&lastEventId=" + encodeURIComponent(resumeFrom);
  const source = new EventSource(url);
  session.source = source;
  source.onopen = () => {
    setState("open");
    session.failures = 0;
    if (session.wasDown) {
      session.reconnects += 1;
      $("reconnects").textContent = session.reconnects;
      logLine("reconnected with Last-Event-ID " + (session.lastId || "(none)"));
    } else {
      logLine("connected");
    }
    session.wasDown = false;
    session.openedAt = Date.now();
  };
  source.onerror = () => {
    // Left alone, the browser would reconnect to this same URL, whose ticket is used up:
    // close it, and reconnect with a fresh ticket and the last event ID.
    source.close();
    if (session.source !== source) return;
    session.source = null;
    reconnectLater("stream ended");
  };
  const received = (event) => {
    session.lastId = event.lastEventId;
    $("last-id").textContent = event.lastEventId || "–";
    session.count += 1;
    $("count").textContent = session.count;
  };
  source.addEventListener("notification", (event) => {
    received(event);
    const note = JSON.parse(event.data);
    // Sent before this connection opened: it reached us by replay, after a reconnection.
    const missed = Date.parse(note.sentAt) < session.openedAt;
    const li = item("notifications", note.title, [
      { text: note.body },
      { text: "from " + note.from + " · " + new Date(note.sentAt).toLocaleTimeString() + " · id " + event.lastEventId, meta: true },
    ], missed ? "caught up after reconnecting" : "");
    li.className = "notification";
    li.dataset.id = event.lastEventId;
  });
  // In a cluster, each stream starts by naming the node that serves it (an event without an
  // ID: the Last-Event-ID stays what it was).
  source.addEventListener("node", (event) => {
    $("node").textContent = "node " + event.data;
    logLine("served by node " + event.data);
  });
  source.addEventListener("gap", () => {
    logLine("the server could not replay everything since Last-Event-ID " + (session.lastId || "(none)") + ": some notifications are missing");
  });
  source.addEventListener("news", (event) => {
    received(event);
    const news = JSON.parse(event.data);
    item("news-feed", news.headline, [{ text: new Date(news.sentAt).toLocaleTimeString() + " · id " + event.lastEventId, meta: true }]);
  });
}

// Reconnects after the server's retry interval (2 s), doubling up to 30 s while attempts fail.
function reconnectLater(why) {
  if (!session.wasDown) logLine(why + "; reconnecting with a fresh ticket");
  session.wasDown = true;
  setState("reconnecting");
  const delay = Math.min(2000 * 2 ** session.failures, 30000);
  session.failures += 1;
  session.retryTimer = setTimeout(() => connect(session.lastId), delay);
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signin-error").textContent = "";
  const response = await fetch("/signin", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user: $("user").value.trim() }) });
  if (!response.ok) { $("signin-error").textContent = await response.text(); return; }
  const body = await response.json();
  session.user = body.user;
  session.token = body.token;
  session.news = $("news").checked;
  $("who").textContent = body.user;
  $("toggle-news").textContent = session.news ? "Leave news" : "Join news";
  $("signin-panel").classList.add("hidden");
  $("session-panel").classList.remove("hidden");
  connect("");
});

$("drop").addEventListener("click", async () => {
  const response = await fetch("/drop", { method: "POST", headers: { Authorization: "Bearer " + session.token } });
  logLine("asked the server to drop the stream (" + (response.ok ? "ok" : response.status) + ")");
});

$("toggle-news").addEventListener("click", () => {
  session.news = !session.news;
  $("toggle-news").textContent = session.news ? "Leave news" : "Join news";
  logLine(session.news ? "joining news" : "leaving news");
  connect(session.lastId);
});

$("send-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const target = $("target").value;
  const users = $("users").value.split(",").map((s) => s.trim()).filter((s) => s);
  const body = { title: $("title").value, body: $("body").value };
  if (target === "to") body.to = users;
  if (target === "except") body.except = users;
  if (target === "news") body.channel = "news";
  const headers = { "Content-Type": "application/json" };
  if (session.token) headers.Authorization = "Bearer " + session.token;
  const response = await fetch("/notify", { method: "POST", headers, body: JSON.stringify(body) });
  $("send-result").textContent = response.ok ? "sent as event " + (await response.json()).id : "refused: " + (await response.text());
});

async function refreshStats() {
  try {
    const stats = await (await fetch("/stats")).json();
    const rows = [["clients", stats.clients], ["news subscribers", stats.channels.news || 0], ["events sent", stats.eventsSent],
      ["deliveries", stats.deliveries], ["bytes written", stats.bytesWritten], ["dropped frames", stats.droppedFrames],
      ["backlog", stats.backlogSize + " / " + stats.backlogCapacity]];
    // The node that answered this request, which is not always the one serving the stream.
    if (stats.node) rows.unshift(["answered by node", stats.node]);
    if (stats.cluster) rows.push(["cluster epoch", stats.cluster.epoch || "–"], ["tail lag", stats.cluster.lag + " events"],
      ["Redis", stats.cluster.logReachable ? "reachable" : "unreachable"], ["Redis errors", stats.cluster.redisErrors]);
    $("stats").replaceChildren(...rows.flatMap(([k, v]) => { const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = v; return [dt, dd]; }));
  } catch (error) { /* the server may be restarting */ }
}
refreshStats();
setInterval(refreshStats, 2000);
</script>
</body>
</html>
"""#
}
