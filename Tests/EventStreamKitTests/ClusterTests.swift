@testable import EventStreamKit
import Testing

/// Three hubs in one process, one redis-server: the cluster's order, delivery and replay.
@Suite("Cluster: three hubs on one Redis", .enabled(if: RedisProcess.shouldRun, "needs redis-server"))
struct ClusterTests {
    private static let note = try! EventType<String>("note", marshal: .text)

    /// Starts `count` hubs on `redis`, each running, and waits until each tails the log.
    private static func nodes(_ count: Int, on redis: RedisProcess, logLength: Int = 10_000) async throws -> (hubs: [EventServer<String>], tasks: [Task<Void, Never>]) {
        var hubs: [EventServer<String>] = []
        var tasks: [Task<Void, Never>] = []
        for _ in 0..<count {
            var configuration = EventServer<String>.Configuration()
            configuration.heartbeatInterval = nil
            configuration.backlogCapacity = 100_000
            configuration.backlogByteLimit = 1 << 30
            let hub = try EventServer<String>(configuration: configuration, cluster: .init(redisURL: "redis://127.0.0.1:\(redis.port)", logLength: logLength))
            hubs.append(hub)
            tasks.append(Task { await hub.run() })
        }
        for hub in hubs { try await waitUntil("the hub tails the log") { await hub.clusterEpoch != nil } }
        return (hubs, tasks)
    }

    @Test("(a) a send on A reaches a source connected to C exactly once, with the log's ID")
    func sendReachesAnotherNode() async throws {
        let redis = try await RedisProcess()
        let (hubs, tasks) = try await Self.nodes(3, on: redis)
        let reader = StreamRecorder(try await hubs[2].connect(source: "carol"))
        let other = StreamRecorder(try await hubs[1].connect(source: "bob"))
        let id = try await hubs[0].send("hello carol", as: Self.note, to: .source("carol"))
        let events = try await reader.waitForEvents(1)
        #expect(events.map(\.data) == ["hello carol"])
        #expect(events.map(\.lastEventID) == [id])
        _ = try await hubs[0].send("everyone", as: Self.note)
        #expect(try await reader.waitForEvents(2).map(\.data) == ["hello carol", "everyone"])
        #expect(try await other.waitForEvents(1).map(\.data) == ["everyone"], "bob never got carol's")
        await reader.cancel()
        await other.cancel()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    @Test("(b) read to k on A, 300 more sent round-robin through A, B and C, reconnect to C: exactly k+1...n, then live")
    func replayOnAnotherNode() async throws {
        let redis = try await RedisProcess()
        let (hubs, tasks) = try await Self.nodes(3, on: redis)
        let first = StreamRecorder(try await hubs[0].connect(source: "alice"))
        var ids: [String] = []
        for index in 0..<20 { ids.append(try await hubs[index % 3].send("e\(index)", as: Self.note, to: .source("alice"))) }
        let seen = try await first.waitForEvents(20)
        #expect(seen.map(\.data) == (0..<20).map { "e\($0)" })
        await first.cancel()
        for index in 20..<320 { ids.append(try await hubs[index % 3].send("e\(index)", as: Self.note, to: .source("alice"))) }
        let lastID = ids.last
        try await waitUntil("C delivered everything") { await hubs[2].lastEventID == lastID }
        let again = StreamRecorder(try await hubs[2].connect(source: "alice", lastEventID: seen.last?.lastEventID))
        _ = try await hubs[1].send("live", as: Self.note, to: .source("alice"))
        let replayed = try await again.waitForEvents(301)
        #expect(replayed.map(\.data) == (20..<320).map { "e\($0)" } + ["live"])
        await again.cancel()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    @Test("Redis down: a send throws at once with logUnavailable; nothing is delivered")
    func sendWhileRedisIsDown() async throws {
        let redis = try await RedisProcess()
        let (hubs, tasks) = try await Self.nodes(1, on: redis)
        redis.kill()
        try await waitUntil("redis-server gone") { !redis.isRunning }
        await #expect {
            _ = try await hubs[0].send("lost", as: Self.note)
        } throws: { ($0 as? EventServerError)?.code == .logUnavailable }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}
