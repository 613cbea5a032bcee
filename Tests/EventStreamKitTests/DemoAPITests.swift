import Foundation
import Synchronization
import Testing
@testable import EventStreamDemo
@testable import EventStreamKit
@testable import EventStreamHTTP

/// The demo's JSON API, against the real binary on a free port.
@Suite("EventStreamDemo serve: the JSON API")
struct DemoAPITests {
    /// A running `EventStreamDemo serve --port 0`, and a poller for raw requests.
    struct Running {
        let demo: DemoProcess
        let port: UInt16
        let poller: Poller

        static func start(_ extra: [String] = []) async throws -> Running {
            let demo = try DemoProcess(["serve", "--port", "0", "--news-interval", "0"] + extra)
            try await waitUntil("the demo to listen") { demo.stdoutLines.first?.contains("serving http://") == true }
            let line = try #require(demo.stdoutLines.first)
            let port = try #require(line.split(separator: ":").last?.split(separator: "/").first.flatMap { UInt16($0) })
            return Running(demo: demo, port: port, poller: try Poller())
        }

        /// The `Host` that ``request(_:_:body:headers:)`` sends (one the demo answers for):
        /// the server's own origin is `http://127.0.0.1`.
        static let host = "127.0.0.1"

        /// Sends one request and returns the status, the head and the body.
        func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) async throws -> (status: Int, head: String, body: String) {
            let client = try LoopbackClient(port: port, poller: poller)
            defer { client.close() }
            var head = "\(method) \(path) HTTP/1.1\r\nHost: \(Self.host)\r\nConnection: close\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            if let body { head += "Content-Length: \(body.utf8.count)\r\n" }
            try await client.send(head + "\r\n" + (body ?? ""))
            let response = try await client.readToEnd()
            let status = Int(response.dropFirst(9).prefix(3)) ?? 0
            let parts = response.components(separatedBy: "\r\n\r\n")
            return (status, parts[0], parts.dropFirst().joined(separator: "\r\n\r\n"))
        }

        func signIn(_ user: String) async throws -> String {
            let response = try await request("POST", "/signin", body: #"{"user":"\#(user)"}"#, headers: ["Content-Type": "application/json"])
            let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: String]
            return try #require(object?["token"], "\(response.status) \(response.body)")
        }

        /// `POST /ticket` as the page sends it: a fresh ticket for `token`'s user.
        func ticket(token: String) async throws -> String {
            let response = try await request("POST", "/ticket", headers: ["Authorization": "Bearer \(token)"])
            let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: String]
            return try #require(object?["ticket"], "\(response.status) \(response.body)")
        }

        /// `POST /notify` as a script sends it: the sender's token and JSON; `headers` replace those.
        func notify(_ body: String, token: String, headers: [String: String] = [:]) async throws -> (status: Int, head: String, body: String) {
            let standard = ["Authorization": "Bearer \(token)", "Content-Type": "application/json"]
            return try await request("POST", "/notify", body: body, headers: standard.merging(headers) { $1 })
        }

        func stop() async throws {
            demo.terminate()
            try await waitUntil("the demo to stop") { !demo.isRunning }
            await poller.shutdown()
        }
    }

    @Test("sign-in issues a fresh unguessable token per sign-in; bad names are refused")
    func signIn() async throws {
        let demo = try await Running.start()
        let first = try await demo.signIn("alice")
        let second = try await demo.signIn("alice")
        #expect(first.count == 32 && first.allSatisfy(\.isHexDigit))
        #expect(first != second)
        for body in [#"{"user":""}"#, #"{"user":"a b"}"#, #"{"user":"<script>"}"#, #"{"name":"x"}"#, "nope", #"{"user":"a","extra":1}"#] {
            #expect(try await demo.request("POST", "/signin", body: body, headers: ["Content-Type": "application/json"]).status == 400, "\(body)")
        }
        try await demo.stop()
    }

    @Test("a stream needs a valid token, and a token opens only its own user's stream")
    func streamsNeedTheirToken() async throws {
        let demo = try await Running.start()
        #expect(try await demo.request("GET", "/events").status == 401)
        #expect(try await demo.request("GET", "/events?token=0123456789abcdef0123456789abcdef").status == 401)
        let alice = try await demo.signIn("alice")
        let bob = try await demo.signIn("bob")
        let aliceSource = try EventSource(url: "http://127.0.0.1:\(demo.port)/events?token=\(alice)&user=bob")
        let bobSource = try EventSource(url: "http://127.0.0.1:\(demo.port)/events?token=\(bob)")
        let received = try await withThrowingTaskGroup(of: (String, [String]).self) { group in
            for (name, source) in [("alice", aliceSource), ("bob", bobSource)] {
                group.addTask {
                    var titles: [String] = []
                    for try await event in source where event.type == "notification" {
                        titles.append(try JSONDecoder().decode([String: String].self, from: Data(event.data.utf8))["title"] ?? "")
                        if titles.last == "end" { break }
                    }
                    return (name, titles)
                }
            }
            try await waitUntil("both streams") {
                let stats = try? await demo.request("GET", "/stats")
                return stats?.body.contains(#""clients":2"#) == true
            }
            for (to, title) in [("alice", "for alice"), ("bob", "for bob"), ("carol", "for carol")] {
                #expect(try await demo.notify(#"{"to":["\#(to)"],"title":"\#(title)"}"#, token: alice).status == 202)
            }
            #expect(try await demo.notify(#"{"title":"end"}"#, token: bob).status == 202)
            var received: [String: [String]] = [:]
            for try await (name, titles) in group { received[name] = titles }
            return received
        }
        #expect(received["alice"] == ["for alice", "end"])
        #expect(received["bob"] == ["for bob", "end"])
        try await demo.stop()
    }

    @Test("a ticket opens one stream, once: a used, unknown or malformed one is 401; POST /ticket needs the bearer token and the server's own origin, and is not cached")
    func ticketsOpenOneStreamOnce() async throws {
        let demo = try await Running.start()
        let token = try await demo.signIn("alice")
        #expect(try await demo.request("POST", "/ticket").status == 401)
        #expect(try await demo.request("POST", "/ticket?token=\(token)").status == 401, "never from the URL")
        #expect(try await demo.request("POST", "/ticket", headers: ["Authorization": "Bearer \(token)", "Origin": "https://evil.example"]).status == 403)
        let issued = try await demo.request("POST", "/ticket", headers: ["Authorization": "Bearer \(token)", "Origin": "http://\(Running.host)"])
        #expect(issued.status == 200)
        #expect(issued.head.contains("Cache-Control: no-store"))
        let ticket = try await demo.ticket(token: token)
        #expect(ticket.count == 32 && ticket != token)
        let stream = try LoopbackClient(port: demo.port, poller: demo.poller)
        try await stream.send("GET /events?ticket=\(ticket) HTTP/1.1\r\nHost: \(Running.host)\r\n\r\n")
        #expect(try await stream.read { $0.contains("\r\n\r\n") }.hasPrefix("HTTP/1.1 200 "))
        let again = try await demo.request("GET", "/events?ticket=\(ticket)")
        #expect(again.status == 401)
        #expect(again.body.contains("POST /ticket"))
        for bad in ["0123456789abcdef0123456789abcdef", "nope", "", token] {
            #expect(try await demo.request("GET", "/events?ticket=\(bad)").status == 401, "\(bad)")
        }
        // A ticket, once refused, does not fall back to a token beside it.
        #expect(try await demo.request("GET", "/events?ticket=\(ticket)&token=\(token)").status == 401)
        stream.close()
        try await demo.stop()
    }

    @Test("a ticket opens only the stream of the user it was issued to, whatever else the URL says")
    func ticketOpensOnlyItsUsersStream() async throws {
        let demo = try await Running.start()
        let alice = try await demo.signIn("alice")
        let bob = try await demo.signIn("bob")
        let ticket = try await demo.ticket(token: alice)
        let source = try EventSource(url: "http://127.0.0.1:\(demo.port)/events?ticket=\(ticket)&token=\(bob)&user=bob")
        let titles = try await withThrowingTaskGroup(of: [String].self) { group in
            group.addTask {
                var titles: [String] = []
                for try await event in source where event.type == "notification" {
                    titles.append(try JSONDecoder().decode([String: String].self, from: Data(event.data.utf8))["title"] ?? "")
                    if titles.last == "end" { break }
                }
                return titles
            }
            try await waitUntil("the stream") { (try? await demo.request("GET", "/stats"))?.body.contains(#""clients":1"#) == true }
            #expect(try await demo.notify(#"{"to":["bob"],"title":"for bob"}"#, token: bob).status == 202)
            #expect(try await demo.notify(#"{"to":["alice"],"title":"for alice"}"#, token: bob).status == 202)
            #expect(try await demo.notify(#"{"title":"end"}"#, token: bob).status == 202)
            return try await group.next() ?? []
        }
        #expect(titles == ["for alice", "end"])
        try await demo.stop()
    }

    @Test("notify answers 202 with the event ID; malformed bodies get 400 and a message", arguments: [
        ("nope", "JSON object"),
        (#"{"to":["a"],"title":"x","cc":["b"]}"#, #"unknown field "cc""#),
        (#"{"to":"alice","title":"x"}"#, "array of user names"),
        (#"{"to":[],"title":"x"}"#, "not empty"),
        (#"{"to":["a"],"except":["b"],"title":"x"}"#, "at most one"),
        (#"{"to":["a"]}"#, "title"),
        (#"{"title":""}"#, "title"),
        (#"{"title":5}"#, "title"),
        (#"{"channel":"sports","title":"x"}"#, "news"),
        (#"{"to":["a b"],"title":"x"}"#, "not a user name"),
        // One character, 201 bytes: a letter and 100 combining acute accents of 2 bytes each.
        (#"{"title":"e\#(String(repeating: "\u{301}", count: 100))"}"#, "1-200 bytes"),
        (#"{"title":"x","body":"\#(String(repeating: "é", count: 1000))x"}"#, "at most 2000 bytes"),
    ])
    func notifyValidation(body: String, message: String) async throws {
        let demo = try await Running.start()
        let token = try await demo.signIn("sender")
        let refused = try await demo.notify(body, token: token)
        #expect(refused.status == 400)
        #expect(refused.body.contains(message), "\(refused.body)")
        let accepted = try await demo.notify(#"{"except":["bob"],"title":"hi","body":"there"}"#, token: token)
        #expect(accepted.status == 202)
        #expect(accepted.body.contains(#""id":""#))
        try await demo.stop()
    }

    @Test("stats and metrics count clients, channels, events, bytes and the backlog")
    func statsAndMetrics() async throws {
        let demo = try await Running.start()
        let token = try await demo.signIn("dana")
        let source = try EventSource(url: "http://127.0.0.1:\(demo.port)/events?token=\(token)&channels=news")
        let reader = Task { for try await event in source where event.type == "news" { return event.data } ; return "" }
        try await waitUntil("dana on the news channel") {
            let body = (try? await demo.request("GET", "/stats"))?.body ?? ""
            return body.contains(#""sources":1"#) && body.contains(#""channels":{"news":1}"#)
        }
        #expect(try await demo.notify(#"{"channel":"news","title":"Flash"}"#, token: token).status == 202)
        #expect(try await reader.value.contains(#""headline":"Flash""#))
        let stats = try JSONSerialization.jsonObject(with: Data(try await demo.request("GET", "/stats").body.utf8)) as? [String: Any]
        #expect(stats?["eventsSent"] as? Int == 1)
        #expect((stats?["bytesWritten"] as? Int ?? 0) > 0)
        #expect(stats?["backlogSize"] as? Int == 1)
        let metrics = try await demo.request("GET", "/metrics").body
        #expect(metrics.contains("# TYPE eventstream_events_sent_total counter\neventstream_events_sent_total 1\n"))
        #expect(metrics.contains("# TYPE eventstream_clients gauge\n"))
        // Every sample line is `name[{labels}] value`; a value is a count, or seconds.
        for line in metrics.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.wholeMatch(of: /eventstream_[a-z_]+(\{[a-z]+="[^"]*"\})? \d+(\.\d+)?/) != nil, "\(line)")
        }
        // What the hooks saw: the stream that opened, and the refusals by status.
        #expect(metrics.contains("\neventstream_connections_opened_total 1\n"), "\(metrics)")
        #expect(metrics.contains("# TYPE eventstream_refused_requests_total counter\n"))
        #expect(metrics.contains("# TYPE eventstream_connection_duration_seconds summary\n"))
        try await demo.stop()
    }

    @Test("stats and metrics count, through the hooks, refusals by status and closed streams by reason, naming nobody")
    func statsFromTheHooks() async throws {
        let demo = try await Running.start()
        #expect(try await demo.request("GET", "/nowhere").status == 404)
        #expect(try await demo.request("GET", "/events").status == 401)
        let token = try await demo.signIn("erin")
        let source = try EventSource(url: "http://127.0.0.1:\(demo.port)/events?token=\(token)")
        let reader = Task { for try await _ in source {} }
        try await waitUntil("erin's stream") { (try? await demo.request("GET", "/stats"))?.body.contains(#""clients":1"#) == true }
        reader.cancel()
        try await waitUntil("erin's stream to end") { (try? await demo.request("GET", "/stats"))?.body.contains(#""clients":0"#) == true }
        let body = try await demo.request("GET", "/stats").body
        #expect(!body.contains("erin"), "\(body)")
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(stats["refusedRequests"] as? [String: Int] == ["401": 1, "404": 1], "\(body)")
        #expect(stats["connectionsOpened"] as? Int == 1)
        #expect(stats["connectionsClosed"] as? [String: Int] == ["clientGone": 1], "\(body)")
        let metrics = try await demo.request("GET", "/metrics").body
        #expect(metrics.contains("eventstream_refused_requests_total{status=\"401\"} 1\n"))
        #expect(metrics.contains("eventstream_connections_closed_total{reason=\"clientGone\"} 1\n"))
        #expect(metrics.contains("eventstream_connection_duration_seconds_count 1\n"))
        try await demo.stop()
    }

    /// Found by the attack run: 10,000 tickets minted and then ~200 refused with 503 (and
    /// thousands with 429) left `refused_requests_total` empty: the routes' own refusals are
    /// responses with `Retry-After`, not thrown errors, and the server's hook never saw them.
    @Test("stats and metrics count the routes' own refusals too: a ticket past the user's bound is a 429 in refusedRequests")
    func statsCountTheRoutesOwnRefusals() async throws {
        let demo = try await Running.start()
        let token = try await demo.signIn("frank")
        for _ in 0..<StreamTickets<String>.Limits().perSource { _ = try await demo.ticket(token: token) }
        let refused = try await demo.request("POST", "/ticket", headers: ["Authorization": "Bearer \(token)"])
        #expect(refused.status == 429)
        let body = try await demo.request("GET", "/stats").body
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(stats["refusedRequests"] as? [String: Int] == ["429": 1], "\(body)")
        let metrics = try await demo.request("GET", "/metrics").body
        #expect(metrics.contains("eventstream_refused_requests_total{status=\"429\"} 1\n"))
        try await demo.stop()
    }

    /// Found by the attack run: `/stats` used to list every connected user by name, to anyone.
    @Test("stats count the users connected, but name none of them")
    func statsNameNoUser() async throws {
        let demo = try await Running.start()
        let token = try await demo.signIn("alice")
        let source = try EventSource(url: "http://127.0.0.1:\(demo.port)/events?token=\(token)")
        let reader = Task { for try await _ in source {} }
        defer { reader.cancel() }
        try await waitUntil("alice's stream") { (try? await demo.request("GET", "/stats"))?.body.contains(#""clients":1"#) == true }
        let stats = try await demo.request("GET", "/stats").body
        #expect(!stats.contains("alice"), "\(stats)")
        let object = try JSONSerialization.jsonObject(with: Data(stats.utf8)) as? [String: Any]
        #expect(object?["sources"] as? Int == 1, "\(stats)")
        #expect(!(try await demo.request("GET", "/metrics").body.contains("alice")))
        try await demo.stop()
    }

    /// DNS rebinding: another site's page, its name pointed at the demo's address, sends its
    /// own name as `Host` and a matching `Origin`. The demo answers only for its own names.
    @Test("a request for another host name is refused (421), however consistent its Origin", arguments: ["/signin", "/health", "/events"])
    func otherHostNamesAreRefused(path: String) async throws {
        let demo = try await Running.start()
        let client = try LoopbackClient(port: demo.port, poller: demo.poller)
        let method = path == "/signin" ? "POST" : "GET"
        let body = #"{"user":"mallory"}"#
        try await client.send("\(method) \(path) HTTP/1.1\r\nHost: evil.example:\(demo.port)\r\nOrigin: http://evil.example:\(demo.port)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let response = try await client.readToEnd()
        #expect(response.hasPrefix("HTTP/1.1 421 "), "\(response)")
        client.close()
        #expect(try await demo.request("GET", "/health").status == 200)
        try await demo.stop()
    }

    @Test("notify needs the sender's token (401 saying how to sign in), JSON (415) and no foreign Origin (403)")
    func notifyNeedsTokenJSONAndOwnOrigin() async throws {
        let demo = try await Running.start()
        let token = try await demo.signIn("alice")
        let body = #"{"title":"hi"}"#
        // What another site's page can send without asking: no token, text/plain, its own Origin.
        let forged = try await demo.request("POST", "/notify", body: body, headers: ["Content-Type": "text/plain", "Origin": "http://evil.example"])
        #expect(forged.status == 403)
        let anonymous = try await demo.request("POST", "/notify", body: body, headers: ["Content-Type": "application/json"])
        #expect(anonymous.status == 401)
        #expect(anonymous.body.contains("POST /signin") && anonymous.body.contains("Authorization: Bearer"), "\(anonymous.body)")
        #expect(try await demo.notify(body, token: "0123456789abcdef0123456789abcdef").status == 401)
        #expect(try await demo.request("POST", "/notify?token=\(token)", body: body, headers: ["Content-Type": "application/json"]).status == 401)
        for contentType in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", ""] {
            let refused = try await demo.notify(body, token: token, headers: ["Content-Type": contentType])
            #expect(refused.status == 415, "\(contentType)")
            #expect(refused.head.hasPrefix("HTTP/1.1 415 Unsupported Media Type"), "\(refused.head)")
        }
        for contentType in ["application/json", "Application/JSON; charset=utf-8", " application/json ;charset=UTF-8"] {
            #expect(try await demo.notify(body, token: token, headers: ["Content-Type": contentType]).status == 202, "\(contentType)")
        }
        for origin in ["http://evil.example", "https://evil.example", "http://127.0.0.1:80", "https://127.0.0.1:443", "http://127.0.0.1.evil.example", "null"] {
            #expect(try await demo.notify(body, token: token, headers: ["Origin": origin]).status == 403, "\(origin)")
        }
        // https: the page's origin behind a proxy that terminates TLS (Deploy/nginx).
        for origin in ["http://\(Running.host)", "HTTP://\(Running.host.uppercased())", "https://\(Running.host)"] {
            #expect(try await demo.notify(body, token: token, headers: ["Origin": origin]).status == 202, "\(origin)")
        }
        try await demo.stop()
    }

    @Test("sign-in takes only JSON from the server's own origin; drop needs the token and the server's own origin")
    func signInAndDropGuards() async throws {
        let demo = try await Running.start()
        let user = #"{"user":"alice"}"#
        #expect(try await demo.request("POST", "/signin", body: user, headers: ["Content-Type": "text/plain"]).status == 415)
        #expect(try await demo.request("POST", "/signin", body: user).status == 415)
        #expect(try await demo.request("POST", "/signin", body: user, headers: ["Content-Type": "application/json", "Origin": "http://evil.example"]).status == 403)
        #expect(try await demo.request("POST", "/signin", body: user, headers: ["Content-Type": "application/json", "Origin": "http://127.0.0.1"]).status == 200)
        let token = try await demo.signIn("alice")
        #expect(try await demo.request("POST", "/drop").status == 401)
        #expect(try await demo.request("POST", "/drop?token=\(token)").status == 401)
        #expect(try await demo.request("POST", "/drop", headers: ["Authorization": "Bearer \(token)", "Origin": "http://evil.example"]).status == 403)
        let dropped = try await demo.request("POST", "/drop", headers: ["Authorization": "Bearer \(token)", "Origin": "http://127.0.0.1"])
        #expect(dropped.status == 200 && dropped.body.contains(#""dropped":0"#), "\(dropped)")
        try await demo.stop()
    }

    /// Found by the attack run: sign-in bodies were parsed whatever their size, before the
    /// sign-in rate; 63 KB of nested objects cost 37 ms of CPU each, unauthenticated.
    @Test("a sign-in body over 1 KiB is refused (413) before it is parsed; a padded, escaped name still fits")
    func signInBodyIsBounded() async throws {
        let demo = try await Running.start()
        let padded = #"{"pad": ["# + Array(repeating: #"{"a":{}}"#, count: 200).joined(separator: ",") + #"], "user": "alice"}"#
        let refused = try await demo.request("POST", "/signin", body: padded, headers: ["Content-Type": "application/json"])
        #expect(refused.status == 413, "\(refused)")
        let escaped = "{\n  \"user\" : \"" + String(repeating: "\\u0061", count: 32) + "\"\n}"
        let accepted = try await demo.request("POST", "/signin", body: escaped, headers: ["Content-Type": "application/json"])
        #expect(accepted.status == 200, "\(accepted)")
        #expect(accepted.body.contains(String(repeating: "a", count: 32)))
        try await demo.stop()
    }

    /// Found by the attack run: an absolute-form target passed the allowed hosts on its
    /// authority, and the Origin check on the `Host` field, which then named any site.
    @Test("an absolute-form POST whose Host and Origin name another site is refused (403); its own origin passes", arguments: [
        ("evil.example", "http://evil.example", 403),
        ("evil.example", "http://127.0.0.1", 200),
    ])
    func absoluteFormOriginCheck(host: String, origin: String, expected: Int) async throws {
        let demo = try await Running.start()
        let token = try await demo.signIn("alice")
        let client = try LoopbackClient(port: demo.port, poller: demo.poller)
        defer { client.close() }
        try await client.send("POST http://127.0.0.1/ticket HTTP/1.1\r\nHost: \(host)\r\nOrigin: \(origin)\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n")
        let response = try await client.readToEnd()
        #expect(response.hasPrefix("HTTP/1.1 \(expected) "), "\(response)")
        try await demo.stop()
    }

    @Test("a notification is from the user whose token sent it")
    func notificationIsFromTheSender() async throws {
        let demo = try await Running.start()
        let alice = try await demo.signIn("alice")
        let bob = try await demo.signIn("bob")
        let source = try EventSource(url: "http://127.0.0.1:\(demo.port)/events?token=\(alice)")
        let reader = Task {
            for try await event in source where event.type == "notification" { return event.data }
            return ""
        }
        try await waitUntil("alice's stream") { (try? await demo.request("GET", "/stats"))?.body.contains(#""clients":1"#) == true }
        #expect(try await demo.notify(#"{"to":["alice"],"title":"from bob"}"#, token: bob).status == 202)
        let note = try JSONDecoder().decode([String: String].self, from: Data(try await reader.value.utf8))
        #expect(note["from"] == "bob" && note["title"] == "from bob")
        try await demo.stop()
    }

    @Test("a flood of sign-ins is answered 429 with Retry-After, and signs nobody out")
    func signInFloodIsRateLimited() async throws {
        let demo = try await Running.start()
        let alice = try await demo.signIn("alice")
        // The burst is 100, refilled at 20 a second: sequential sign-ins reach the limit as long
        // as one takes less than 50 ms; the bound only keeps a broken limit from looping forever.
        var limited: (status: Int, head: String, body: String)?
        for index in 0..<3000 where limited == nil {
            let response = try await demo.request("POST", "/signin", body: #"{"user":"flood\#(index)"}"#, headers: ["Content-Type": "application/json"])
            if response.status != 200 { limited = response }
        }
        let refused = try #require(limited)
        #expect(refused.status == 429)
        #expect(refused.head.contains("\r\nRetry-After: 1"), "\(refused.head)")
        #expect(try await demo.notify(#"{"to":["alice"],"title":"still signed in"}"#, token: alice).status == 202)
        try await demo.stop()
    }

    /// Found by the attack run: 256 notifications to "nobody" in 50 ms pushed everyone's
    /// events out of the replay backlog.
    @Test("a flood of notifications from one user is answered 429 with Retry-After past a burst of 20; another user is unaffected")
    func notifyFloodIsRateLimited() async throws {
        // One notification in 10 s after the burst: the test's own pace earns none back.
        let demo = try await Running.start(["--notify-rate", "0.1"])
        let alice = try await demo.signIn("alice")
        let bob = try await demo.signIn("bob")
        var answers: [(status: Int, head: String, body: String)] = []
        for _ in 0..<30 {
            answers.append(try await demo.notify(#"{"to":["nobody"],"title":"flood"}"#, token: alice))
        }
        #expect(answers.map(\.status) == Array(repeating: 202, count: 20) + Array(repeating: 429, count: 10))
        let refused = try #require(answers.last)
        let retryAfter = refused.head.split(separator: "\r\n").first { $0.hasPrefix("Retry-After: ") }.flatMap { Int($0.dropFirst(13)) }
        #expect(retryAfter.map { (1...10).contains($0) } == true, "\(refused.head)")
        #expect(refused.body.contains("too many notifications"), "\(refused.body)")
        #expect(try await demo.notify(#"{"to":["alice"],"title":"from bob"}"#, token: bob).status == 202)
        // Signing in again gives alice a new token, not a new budget.
        let again = try await demo.signIn("alice")
        #expect(try await demo.notify(#"{"title":"again"}"#, token: again).status == 429)
        try await demo.stop()
    }

    @Test("bench mode: /events opens without a token, also at rate 0 (idle streams), and ticks carry <ns> <seq> <padding> of the given size")
    func benchMode() async throws {
        let idle = try await Running.start(["--bench-rate", "0"])
        let stream = try LoopbackClient(port: idle.port, poller: idle.poller)
        try await stream.send("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(try await stream.read { $0.contains("\r\n\r\n") }.hasPrefix("HTTP/1.1 200 "))
        stream.close()
        try await idle.stop()

        let ticking = try await Running.start(["--bench-rate", "50", "--bench-size", "100"])
        let source = try EventSource(url: "http://127.0.0.1:\(ticking.port)/events")
        var ticks: [MessageEvent] = []
        for try await event in source where event.type == "tick" {
            ticks.append(event)
            if ticks.count == 3 { break }
        }
        for tick in ticks {
            let fields = tick.data.split(separator: " ")
            #expect(tick.data.utf8.count == 100)
            #expect(fields.count == 3 && Int(fields[0]) != nil && Int(fields[1]) != nil && fields[2].allSatisfy { $0 == "x" })
        }
        let sequences = ticks.map { Int($0.data.split(separator: " ")[1])! }
        #expect(sequences == Array(sequences[0]..<(sequences[0] + 3)))
        try await ticking.stop()
    }
}

/// A clock for ``Accounts`` that moves only when told.
private final class ManualTime: Sendable {
    private let instant = Mutex(ContinuousClock.now)
    var now: ContinuousClock.Instant { instant.withLock { $0 } }
    func advance(by duration: Duration) { instant.withLock { $0 += duration } }
}

/// The demo's token policy, in process on the pure values, with a manual clock.
@Suite("EventStreamDemo accounts: TokenStore, TokenBucket, Accounts")
struct DemoAccountsTests {
    let start = ContinuousClock.now

    @Test("10,000 anonymous sign-ins in a third of a second do not sign an earlier user out")
    func floodKeepsEarlierTokens() {
        var store = TokenStore()
        #expect(store.issue("alice-token", to: "alice", at: start) == .issued(forgotten: nil))
        var refused = 0
        for index in 0..<10_000 {
            let at = start + .microseconds(33 * index)
            switch store.issue("flood-\(index)", to: "flood\(index)", at: at) {
            case .issued(let forgotten): #expect(forgotten == nil)
            case .full(let retryAfter):
                refused += 1
                #expect(retryAfter > .seconds(3599) && retryAfter <= .seconds(3600))
            case .userFull: Issue.record("every name is new")
            }
        }
        #expect(refused == 1)
        #expect(store.count == 10_000)
        #expect(store.user(forToken: "alice-token", at: start + .seconds(1)) == "alice")
    }

    @Test("the same flood through Accounts is held to the sign-in rate, and alice stays signed in")
    func floodThroughAccounts() throws {
        let time = ManualTime()
        let accounts = Accounts(now: { time.now })
        guard case .token(let alice, _) = try accounts.signIn("alice") else { Issue.record("alice refused"); return }
        var signedIn = 0, tooFrequent = 0
        for index in 0..<10_000 {
            time.advance(by: .microseconds(33))
            switch try accounts.signIn("flood\(index)") {
            case .token: signedIn += 1
            case .tooFrequent: tooFrequent += 1
            case .full, .userFull: Issue.record("the store cannot be full")
            }
        }
        // A burst of 100 (one went to alice), then 20 a second for 0.33 s.
        #expect((105...107).contains(signedIn), "\(signedIn)")
        #expect(signedIn + tooFrequent == 10_000)
        #expect(accounts.user(forToken: alice) == "alice")
        time.advance(by: .seconds(1))
        guard case .token = try accounts.signIn("later") else { Issue.record("the rate did not recover"); return }
    }

    @Test("notifications: a burst of 20 per user, then 5 a second; each user has a bucket of their own")
    func notificationRate() throws {
        let time = ManualTime()
        let accounts = Accounts(now: { time.now })
        for user in ["alice", "bob"] { guard case .token = try accounts.signIn(user) else { Issue.record("\(user) refused"); return } }
        let waits = (0..<30).map { _ in accounts.takeNotification(from: "alice") }
        #expect(waits.prefix(20).allSatisfy { $0 == nil })
        #expect(waits.suffix(10).allSatisfy { $0 == .milliseconds(200) }, "\(waits)")
        #expect(accounts.takeNotification(from: "bob") == nil)
        time.advance(by: .seconds(1))
        let allowed = (0..<10).filter { _ in accounts.takeNotification(from: "alice") == nil }.count
        #expect(allowed == 5)
    }

    @Test("the notification buckets stay within the token store's capacity: a full bucket or a signed-out user's is forgotten first")
    func notificationBucketsAreBounded() throws {
        let time = ManualTime()
        let accounts = Accounts(limits: TokenStore.Limits(perUser: 8, capacity: 3, idleEviction: .seconds(3600)), now: { time.now })
        for user in ["a", "b", "c"] {
            _ = try accounts.signIn(user)
            #expect(accounts.takeNotification(from: user) == nil)
        }
        #expect(accounts.notificationBucketCount == 3)
        // An hour later a's token makes room for d's; a's bucket makes room for d's.
        time.advance(by: .seconds(3601))
        for user in ["b", "c"] { #expect(accounts.takeNotification(from: user) == nil) }
        guard case .token = try accounts.signIn("d") else { Issue.record("d refused"); return }
        #expect(accounts.takeNotification(from: "d") == nil)
        #expect(accounts.notificationBucketCount == 3)
        // Every user signed in and recently sending: the fullest bucket, here a fresh one's
        // equal, makes room, and nobody is refused for want of a bucket.
        var limits = PerUserRate(rate: 5, burst: 20, capacity: 2)
        let now = ContinuousClock.now
        for _ in 0..<20 { _ = limits.take(for: "x", at: now) { _ in true } }
        _ = limits.take(for: "y", at: now) { _ in true }
        #expect(limits.take(for: "z", at: now) { _ in true } == nil)
        #expect(limits.bucketCount == 2)
        #expect(limits.take(for: "x", at: now) { _ in true } != nil, "x's empty bucket is kept; y's, the fullest, made room")
    }

    /// Found by the attack run: with the library's default 10,000 tickets, 625 sign-ins minting
    /// 16 tickets each (again every 30 s) kept `POST /ticket` at 503 for everyone else.
    @Test("the ticket store has room for every user the token store can hold, each at their own bound: signed-in users cannot fill it for others")
    func ticketStoreOutlastsTheTokenStore() throws {
        let tokens = TokenStore.Limits()
        let limits = DemoApp.ticketLimits
        #expect(limits.perSource == StreamTickets<String>.Limits().perSource)
        #expect(limits.capacity >= limits.perSource * tokens.capacity)
        let time = ManualTime()
        let tickets = StreamTickets<String>(limits: limits, now: { time.now })
        for user in 0..<tokens.capacity {
            for _ in 0..<limits.perSource { _ = try tickets.issue(for: "user\(user)") }
            // One more is this user's own bound (429), never the store's (503).
            do {
                _ = try tickets.issue(for: "user\(user)")
                Issue.record("user\(user) got more than perSource tickets")
            } catch {
                #expect(error.isPerSource, "\(error)")
            }
        }
        #expect(tickets.count == limits.perSource * tokens.capacity)
    }

    /// Found by the attack run: eight sign-ins under alice's name used to forget her token.
    @Test("a ninth sign-in for the same name is refused while the user's tokens are in use; one idle for an hour makes room")
    func perUserCap() {
        var store = TokenStore()
        _ = store.issue("carol-1", to: "carol", at: start)
        for index in 1...8 {
            #expect(store.issue("bob-\(index)", to: "bob", at: start + .seconds(index)) == .issued(forgotten: nil))
        }
        #expect(store.issue("bob-9", to: "bob", at: start + .seconds(9)) == .userFull(retryAfter: .seconds(3592)))
        #expect(store.user(forToken: "bob-1", at: start + .seconds(10)) == "bob", "nobody is signed out")
        // bob-2 is now the least recently used; an hour after its last use it makes room.
        #expect(store.issue("bob-9", to: "bob", at: start + .seconds(3603)) == .issued(forgotten: "bob-2"))
        #expect(store.user(forToken: "bob-2", at: start + .seconds(3604)) == nil)
        #expect(store.user(forToken: "carol-1", at: start + .seconds(3604)) == "carol")
        #expect(store.count == 9)
    }

    @Test("a full store forgets only tokens unused for over an hour, least recently used first, else refuses")
    func fullStoreEvictsOnlyIdleTokens() {
        var store = TokenStore(limits: TokenStore.Limits(perUser: 8, capacity: 3, idleEviction: .seconds(3600)))
        for user in ["a", "b", "c"] { _ = store.issue(user, to: user, at: start) }
        #expect(store.user(forToken: "a", at: start + .seconds(1800)) == "a")
        #expect(store.tokensByRecency == ["b", "c", "a"])
        #expect(store.issue("d", to: "d", at: start + .seconds(3600)) == .full(retryAfter: .zero))
        let later = start + .seconds(3660)
        #expect(store.issue("d", to: "d", at: later) == .issued(forgotten: "b"))
        #expect(store.issue("e", to: "e", at: later) == .issued(forgotten: "c"))
        #expect(store.issue("f", to: "f", at: later) == .full(retryAfter: .seconds(1740)))
        #expect(store.tokensByRecency == ["a", "d", "e"])
        #expect(store.user(forToken: "a", at: later) == "a")
        #expect(store.user(forToken: "b", at: later) == nil)
        // A user at its own cap makes room from its own idle tokens, even in a full store.
        var own = TokenStore(limits: TokenStore.Limits(perUser: 2, capacity: 2, idleEviction: .seconds(3600)))
        _ = own.issue("z-1", to: "z", at: start)
        _ = own.issue("z-2", to: "z", at: start + .seconds(1))
        #expect(own.issue("z-3", to: "z", at: start + .seconds(3601)) == .issued(forgotten: "z-1"))
        #expect(own.tokensByRecency == ["z-2", "z-3"])
    }

    @Test("the token bucket allows its burst at once, then its rate, and refills no further than the burst")
    func tokenBucket() {
        var bucket = TokenBucket(rate: 20, burst: 100)
        // (milliseconds after start, takes) → how many were allowed.
        let steps: [(at: Int, takes: Int, allowed: Int)] = [
            (0, 101, 100),
            (49, 1, 0),
            (50, 2, 1),
            (3_600_000, 101, 100),
            // A clock read before the last one (two threads) adds nothing and takes nothing back.
            (0, 1, 0),
        ]
        for step in steps {
            let allowed = (0..<step.takes).filter { _ in bucket.take(at: start + .milliseconds(step.at)) }.count
            #expect(allowed == step.allowed, "at \(step.at) ms")
        }
    }
}
