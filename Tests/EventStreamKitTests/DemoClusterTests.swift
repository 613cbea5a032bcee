import Foundation
import Testing
@testable import EventStreamKit

/// `EventStreamDemo serve --redis`: two demo processes and one Redis.
@Suite("EventStreamDemo serve --redis: a demo cluster", .enabled(if: RedisProcess.shouldRun, "needs redis-server"))
struct DemoClusterTests {
    typealias Running = DemoAPITests.Running

    static func node(_ redis: RedisProcess, _ name: String, cluster: String = "demo-test") async throws -> Running {
        try await Running.start(["--redis", "redis://127.0.0.1:\(redis.port)", "--node", name, "--cluster-name", cluster])
    }

    /// Reads `source` until `count` events of `types` came, and returns them as (type, data, ID).
    static func collect(_ source: EventSource, types: Set<String>, count: Int) async throws -> [(type: String, data: String, id: String)] {
        var events: [(type: String, data: String, id: String)] = []
        for try await event in source where types.contains(event.type) {
            events.append((event.type, event.data, event.lastEventID))
            if events.count == count { break }
        }
        return events
    }

    @Test("a token from one node opens a stream on another, which names its node first and gets what any node sends, with one ID order")
    func tokensAndEventsCrossNodes() async throws {
        let redis = try await RedisProcess()
        let a = try await Self.node(redis, "alpha")
        let b = try await Self.node(redis, "beta")
        let token = try await a.signIn("alice")
        let source = try EventSource(url: "http://127.0.0.1:\(b.port)/events?token=\(token)")
        let events = try await withThrowingTaskGroup(of: [(type: String, data: String, id: String)].self) { group in
            group.addTask { try await Self.collect(source, types: ["node", "notification"], count: 4) }
            try await waitUntil("alice's stream on beta") {
                (try? await b.request("GET", "/stats"))?.body.contains(#""clients":1"#) == true
            }
            #expect(try await a.notify(#"{"to":["alice"],"title":"one"}"#, token: token).status == 202)
            #expect(try await b.notify(#"{"title":"two"}"#, token: token).status == 202)
            #expect(try await a.notify(#"{"except":["alice"],"title":"not for alice"}"#, token: token).status == 202)
            #expect(try await a.notify(#"{"to":["alice","bob"],"title":"three"}"#, token: token).status == 202)
            return try await group.next() ?? []
        }
        #expect(events.map(\.type) == ["node", "notification", "notification", "notification"])
        #expect(events.first?.data == "beta")
        // The welcome event carries no ID: the stream's last event ID is untouched by it.
        #expect(events.first?.id == "")
        let titles = try events.dropFirst().map { try JSONDecoder().decode([String: String].self, from: Data($0.data.utf8))["title"] }
        #expect(titles == ["one", "two", "three"])
        let sequences = events.dropFirst().compactMap { $0.id.split(separator: "-").last.flatMap { Int($0) } }
        #expect(sequences == [1, 2, 4], "one sequence across both nodes: \(events.map(\.id))")
        // /stats: the node, the log's epoch (the one in the IDs), no lag once delivered, and
        // the cluster-wide count; /metrics the same for Prometheus.
        let epoch = String(events[1].id.split(separator: "-")[0])
        let stats = try JSONSerialization.jsonObject(with: Data(try await b.request("GET", "/stats").body.utf8)) as? [String: Any]
        #expect(stats?["node"] as? String == "beta")
        let cluster = stats?["cluster"] as? [String: Any]
        #expect(cluster?["epoch"] as? String == epoch)
        #expect(cluster?["delivered"] as? Int == 4)
        #expect(cluster?["lag"] as? Int == 0)
        #expect(cluster?["logReachable"] as? Bool == true)
        #expect(cluster?["redisErrors"] as? Int == 0)
        // alice opens a stream on beta again (the one above ended with its loop); alpha counts it.
        let stream = try LoopbackClient(port: b.port, poller: b.poller)
        defer { stream.close() }
        try await stream.send("GET /events?token=\(token) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        _ = try await stream.read { $0.contains("data: beta") }
        try await waitUntil("alice counted cluster-wide") {
            let body = (try? await a.request("GET", "/stats"))?.body ?? ""
            return body.contains(#""clients":1,"delivered""#)
        }
        let metrics = try await a.request("GET", "/metrics").body
        #expect(metrics.contains(#"eventstream_cluster_info{node="alpha",epoch="\#(epoch)"} 1"#), "\(metrics)")
        #expect(metrics.contains("eventstream_cluster_lag_events 0"))
        #expect(metrics.contains("eventstream_cluster_clients 1"))
        #expect(metrics.contains("eventstream_cluster_round_trip_seconds "))
        // /drop on alpha ends alice's stream on beta.
        #expect(try await a.request("POST", "/drop", headers: ["Authorization": "Bearer \(token)"]).body.contains(#""dropped":1"#))
        _ = try await stream.readToEnd()
        // A token nobody issued is refused on both.
        for node in [a, b] {
            #expect(try await node.request("GET", "/events?token=0123456789abcdef0123456789abcdef").status == 401)
        }
        try await a.stop()
        try await b.stop()
    }

    @Test("a ticket issued on one node opens a stream once on another, and then on neither")
    func ticketsCrossNodesOnce() async throws {
        let redis = try await RedisProcess()
        let a = try await Self.node(redis, "alpha")
        let b = try await Self.node(redis, "beta")
        let token = try await a.signIn("alice")
        let ticket = try await a.ticket(token: token)
        let stream = try LoopbackClient(port: b.port, poller: b.poller)
        try await stream.send("GET /events?ticket=\(ticket) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let head = try await stream.read { $0.contains("data: beta") }
        #expect(head.hasPrefix("HTTP/1.1 200 "))
        for node in [a, b] {
            #expect(try await node.request("GET", "/events?ticket=\(ticket)").status == 401)
        }
        // One issued by beta, redeemed on beta: also once.
        let local = try await b.ticket(token: token)
        let second = try LoopbackClient(port: b.port, poller: b.poller)
        try await second.send("GET /events?ticket=\(local) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(try await second.read { $0.contains("data: beta") }.hasPrefix("HTTP/1.1 200 "))
        #expect(try await a.request("GET", "/events?ticket=\(local)").status == 401)
        stream.close()
        second.close()
        // Redis down: no ticket can be issued or checked; 503, not a silent local fallback.
        let spare = try await a.ticket(token: token)
        redis.kill()
        try await waitUntil("redis-server to exit") { !redis.isRunning }
        let refused = try await a.request("POST", "/ticket", headers: ["Authorization": "Bearer \(token)"])
        #expect(refused.status == 503)
        #expect(refused.head.contains("Retry-After:"))
        #expect(try await a.request("GET", "/events?ticket=\(spare)").status == 503)
        try await a.stop()
        try await b.stop()
    }

    @Test("Redis down: sign-in, another node's token and sending answer 503 with Retry-After; a node's own token still opens its stream")
    func redisDown() async throws {
        let redis = try await RedisProcess()
        let a = try await Self.node(redis, "alpha")
        let b = try await Self.node(redis, "beta")
        let fromA = try await a.signIn("alice")
        redis.kill()
        try await waitUntil("redis-server to exit") { !redis.isRunning }
        let signIn = try await b.request("POST", "/signin", body: #"{"user":"bob"}"#, headers: ["Content-Type": "application/json"])
        #expect(signIn.status == 503)
        #expect(signIn.head.contains("Retry-After:"))
        #expect(try await b.request("GET", "/events?token=\(fromA)").status == 503)
        let notify = try await a.notify(#"{"title":"lost?"}"#, token: fromA)
        #expect(notify.status == 503, "\(notify.body)")
        #expect(notify.head.contains("Retry-After:"))
        #expect(notify.body.contains("not sent"))
        // Alpha's own token needs no Redis: its stream opens (and stays open, on heartbeats).
        let client = try LoopbackClient(port: a.port, poller: a.poller)
        try await client.send("GET /events?token=\(fromA) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let head = try await client.read { $0.contains("event: node") }
        #expect(head.hasPrefix("HTTP/1.1 200"))
        #expect(head.contains("data: alpha"))
        client.close()
        // The sign-in refused on beta left no token behind on beta.
        try await redis.restart()
        #expect(try await b.signIn("bob").count == 32)
        try await a.stop()
        try await b.stop()
    }
}
