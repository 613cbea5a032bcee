import Foundation
import Testing
@testable import EventStreamKit

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

        /// Sends one request and returns the status and body.
        func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) async throws -> (status: Int, body: String) {
            let client = try LoopbackClient(port: port, poller: poller)
            defer { client.close() }
            var head = "\(method) \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            if let body { head += "Content-Length: \(body.utf8.count)\r\n" }
            try await client.send(head + "\r\n" + (body ?? ""))
            let response = try await client.readToEnd()
            let status = Int(response.dropFirst(9).prefix(3)) ?? 0
            let content = response.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
            return (status, content)
        }

        func signIn(_ user: String) async throws -> String {
            let response = try await request("POST", "/signin", body: #"{"user":"\#(user)"}"#)
            let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: String]
            return try #require(object?["token"])
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
            #expect(try await demo.request("POST", "/signin", body: body).status == 400, "\(body)")
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
                #expect(try await demo.request("POST", "/notify", body: #"{"to":["\#(to)"],"title":"\#(title)"}"#).status == 202)
            }
            #expect(try await demo.request("POST", "/notify", body: #"{"title":"end"}"#).status == 202)
            var received: [String: [String]] = [:]
            for try await (name, titles) in group { received[name] = titles }
            return received
        }
        #expect(received["alice"] == ["for alice", "end"])
        #expect(received["bob"] == ["for bob", "end"])
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
    ])
    func notifyValidation(body: String, message: String) async throws {
        let demo = try await Running.start()
        let refused = try await demo.request("POST", "/notify", body: body)
        #expect(refused.status == 400)
        #expect(refused.body.contains(message), "\(refused.body)")
        let accepted = try await demo.request("POST", "/notify", body: #"{"except":["bob"],"title":"hi","body":"there"}"#)
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
            return body.contains(#""dana":1"#) && body.contains(#""channels":{"news":1}"#)
        }
        #expect(try await demo.request("POST", "/notify", body: #"{"channel":"news","title":"Flash"}"#).status == 202)
        #expect(try await reader.value.contains(#""headline":"Flash""#))
        let stats = try JSONSerialization.jsonObject(with: Data(try await demo.request("GET", "/stats").body.utf8)) as? [String: Any]
        #expect(stats?["eventsSent"] as? Int == 1)
        #expect((stats?["bytesWritten"] as? Int ?? 0) > 0)
        #expect(stats?["backlogSize"] as? Int == 1)
        let metrics = try await demo.request("GET", "/metrics").body
        #expect(metrics.contains("# TYPE eventstream_events_sent_total counter\neventstream_events_sent_total 1\n"))
        #expect(metrics.contains("# TYPE eventstream_clients gauge\n"))
        // Every sample line is `name[{labels}] value`.
        for line in metrics.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.wholeMatch(of: /eventstream_[a-z_]+(\{[a-z]+="[^"]*"\})? \d+/) != nil, "\(line)")
        }
        try await demo.stop()
    }

    @Test("bench mode: /events opens without a token, also at rate 0 (idle streams), and ticks carry <ns> <seq> <padding> of the given size")
    func benchMode() async throws {
        let idle = try await Running.start(["--bench-rate", "0"])
        let stream = try LoopbackClient(port: idle.port, poller: idle.poller)
        try await stream.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
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
