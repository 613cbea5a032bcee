@testable import EventStreamKit
import Testing

/// Three hubs in one process, one redis-server: cluster-wide counts and closes.
@Suite("Cluster: presence and closes across nodes", .enabled(if: RedisProcess.shouldRun, "needs redis-server"))
struct ClusterPresenceTests {
    private static let note = try! EventType<String>("note", marshal: .text)
    private static let prefix = "eventstreamkit:{events}:"

    private static func hub(on redis: RedisProcess, heartbeat: Duration? = nil, backlog: Int = 1000) throws -> EventServer<String> {
        var configuration = EventServer<String>.Configuration()
        configuration.heartbeatInterval = heartbeat
        configuration.backlogCapacity = backlog
        return try EventServer<String>(configuration: configuration, cluster: .init(redisURL: "redis://127.0.0.1:\(redis.port)", presenceInterval: .milliseconds(100)))
    }

    private static func start(_ hubs: [EventServer<String>]) async throws -> [Task<Void, Never>] {
        let tasks = hubs.map { hub in Task { await hub.run() } }
        for hub in hubs { try await waitUntil("the hub tails the log") { await hub.clusterEpoch != nil } }
        return tasks
    }

    /// The keys under the cluster's prefix that match `pattern`.
    private static func keys(_ pattern: String, on redis: RedisProcess) async throws -> [String] {
        let connection = try await RedisConnection.connect(to: redis.endpoint)
        defer { connection.close() }
        let reply = try await connection.send([RESPValue.command(["KEYS", prefix + pattern])])[0]
        return (reply.elements ?? []).compactMap(\.string).sorted()
    }

    /// Waits until every hub counts `source` (or everyone, for `nil`) as `expected`.
    private static func waitForCount(_ expected: Int, source: String?, on hubs: [EventServer<String>]) async throws {
        try await waitUntil("every hub counts \(expected) for \(source ?? "everyone")") {
            for hub in hubs {
                let count: Int?
                if let source {
                    count = try? await hub.clusterClientCount(source: source)
                } else {
                    count = try? await hub.clusterClientCount()
                }
                if count != expected { return false }
            }
            return true
        }
    }

    @Test("counts across three nodes; a node whose run() is cancelled stops counting when its liveness expires, and its keys are reaped; after every disconnect the counts are 0 and no presence key is left")
    func countsAcrossNodes() async throws {
        let redis = try await RedisProcess()
        let hubs = try (0..<3).map { _ in try Self.hub(on: redis) }
        var tasks = try await Self.start(hubs)
        var recorders = [
            StreamRecorder(try await hubs[0].connect(source: "alice")),
            StreamRecorder(try await hubs[0].connect(source: "alice")),
            StreamRecorder(try await hubs[1].connect(source: "alice")),
            StreamRecorder(try await hubs[2].connect(source: "bob")),
        ]
        try await Self.waitForCount(3, source: "alice", on: hubs)
        try await Self.waitForCount(1, source: "bob", on: hubs)
        try await Self.waitForCount(0, source: "carol", on: hubs)
        try await Self.waitForCount(4, source: nil, on: hubs)
        #expect(await hubs[0].clientCount(source: "alice") == 2, "the node-local count stays local")

        // Node C dies: its run() is cancelled, so it stops writing; its fields stay in Redis
        // until its liveness key expires, then nobody counts them and a live node reaps them.
        let dead = hubs[2].cluster!.presence.nodeID
        #expect(try await Self.keys("node:\(dead)*", on: redis).count == 2)
        tasks[2].cancel()
        await tasks[2].value
        let live = Array(hubs[0..<2])
        try await Self.waitForCount(0, source: "bob", on: live)
        try await Self.waitForCount(3, source: nil, on: live)
        try await waitUntil("the dead node's keys are reaped") {
            let left = (try? await Self.keys("node:\(dead)*", on: redis)) ?? ["?"]
            let bob = (try? await Self.keys("presence:bob", on: redis)) ?? ["?"]
            return left.isEmpty && bob.isEmpty
        }

        // Node B restarts as a new node: alice's stream there counts once, not twice.
        let old = hubs[1].cluster!.presence.nodeID
        tasks[1].cancel()
        await tasks[1].value
        let restarted = try Self.hub(on: redis)
        tasks[1] = try await Self.start([restarted])[0]
        recorders.append(StreamRecorder(try await restarted.connect(source: "alice")))
        let nodes = [hubs[0], restarted]
        try await waitUntil("the old node's keys are reaped") { ((try? await Self.keys("node:\(old)*", on: redis)) ?? ["?"]).isEmpty }
        try await Self.waitForCount(3, source: "alice", on: nodes)
        try await Self.waitForCount(3, source: nil, on: nodes)

        for recorder in recorders { await recorder.cancel() }
        try await Self.waitForCount(0, source: "alice", on: nodes)
        try await Self.waitForCount(0, source: nil, on: nodes)
        try await waitUntil("no presence key is left") {
            let presence = (try? await Self.keys("presence:*", on: redis)) ?? ["?"]
            let sources = (try? await Self.keys("node:*:sources", on: redis)) ?? ["?"]
            return presence.isEmpty && sources.isEmpty
        }
        let liveNodes = [hubs[0], restarted].map { $0.cluster!.presence.nodeID }
        try await waitUntil("only the live nodes are left") {
            (try? await Self.keys("node:*", on: redis)) == liveNodes.map { Self.prefix + "node:" + $0 }.sorted()
        }
        tasks[0].cancel()
        tasks[1].cancel()
        for task in tasks { await task.value }
    }

    @Test("counts throw logUnavailable when Redis is gone; a hub without a cluster counts its own streams")
    func countsWithoutRedis() async throws {
        let redis = try await RedisProcess()
        let hubs = [try Self.hub(on: redis)]
        let tasks = try await Self.start(hubs)
        redis.kill()
        try await waitUntil("redis-server gone") { !redis.isRunning }
        await #expect { _ = try await hubs[0].clusterClientCount(source: "alice") } throws: { ($0 as? EventServerError)?.code == .logUnavailable }
        await #expect { _ = try await hubs[0].clusterClientCount() } throws: { ($0 as? EventServerError)?.code == .logUnavailable }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }

        let single = EventServer<String>()
        let connection = StreamRecorder(try await single.connect(source: "alice"))
        #expect(try await single.clusterClientCount(source: "alice") == 1)
        #expect(try await single.clusterClientCount() == 1)
        try await single.closeEverywhere(source: "alice")
        try await connection.waitForEnd()
        #expect(try await single.clusterClientCount() == 0)
    }

    @Test("closeEverywhere on B closes alice's streams on all three nodes, after what was sent before it; bob's stay open")
    func closeEverywhere() async throws {
        let redis = try await RedisProcess()
        let hubs = try (0..<3).map { _ in try Self.hub(on: redis) }
        let tasks = try await Self.start(hubs)
        let alices = try await hubs.asyncMap { StreamRecorder(try await $0.connect(source: "alice")) }
        let bob = StreamRecorder(try await hubs[1].connect(source: "bob"))
        _ = try await hubs[2].send("before", as: Self.note, to: .source("alice"))
        try await hubs[1].closeEverywhere(source: "alice")
        for alice in alices {
            try await alice.waitForEnd()
            #expect(alice.data == ["before"])
        }
        _ = try await hubs[0].send("still here", as: Self.note, to: .source("bob"))
        #expect(try await bob.waitForEvents(1).map(\.data) == ["still here"])
        #expect(!bob.ended)
        for hub in hubs {
            #expect(await hub.clientCount(source: "alice") == 0)
            #expect(await hub.eventsSent == 2, "the control record is no event")
        }
        await bob.cancel()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    @Test("a heartbeat may carry a control record's ID: a client reconnecting with it replays exactly what came after, on every node, and live")
    func replayAfterControlRecord() async throws {
        let redis = try await RedisProcess()
        let hubs = try (0..<3).map { _ in try Self.hub(on: redis, heartbeat: .milliseconds(50)) }
        let tasks = try await Self.start(hubs)
        let quiet = StreamRecorder(try await hubs[0].connect(source: "quiet"))
        _ = try await hubs[1].send("first", as: Self.note, to: .source("quiet"))
        try await hubs[1].closeEverywhere(source: "nobody")
        let status = try #require(await hubs[1].clusterStatus)
        let controlID = "\(status.epoch ?? "")-\(status.knownEndSequence)"
        try await waitUntil("the quiet client's heartbeat carried the control record's ID") { quiet.lastEventID == controlID }
        #expect(quiet.data == ["first"])
        await quiet.cancel()

        // Nothing after it yet: the control record is the last one a node delivered.
        let early = StreamRecorder(try await hubs[2].connect(source: "quiet", lastEventID: controlID))
        _ = try await hubs[0].send("live", as: Self.note, to: .source("quiet"))
        #expect(try await early.waitForEvents(1).map(\.data) == ["live"])
        await early.cancel()

        _ = try await hubs[1].send("after", as: Self.note, to: .source("quiet"))
        let lastID = try await hubs[2].send("last", as: Self.note, to: .source("quiet"))
        for hub in hubs { try await waitUntil("every node delivered everything") { await hub.lastEventID == lastID } }
        for hub in hubs {
            let again = StreamRecorder(try await hub.connect(source: "quiet", lastEventID: controlID))
            #expect(try await again.waitForEvents(3).map(\.data) == ["live", "after", "last"])
            await again.cancel()
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}

extension Array {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
