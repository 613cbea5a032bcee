@testable import EventStreamKit
import Synchronization
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

    @Test("a node started while Redis is down accepts no send and no stream until it reads the log; then what it accepts, its own clients get")
    func nodeStartedWhileRedisIsDown() async throws {
        let redis = try await RedisProcess()
        redis.kill()
        try await waitUntil("redis-server gone") { !redis.isRunning }
        var configuration = EventServer<String>.Configuration()
        configuration.heartbeatInterval = nil
        let hub = try EventServer<String>(configuration: configuration, cluster: .init(redisURL: "redis://127.0.0.1:\(redis.port)", timeout: .milliseconds(300)))
        let task = Task { await hub.run() }
        await #expect { _ = try await hub.send("early", as: Self.note) } throws: { ($0 as? EventServerError)?.code == .logUnavailable }
        await #expect {
            let early = try await hub.connect(source: "early")
            await early.close()  // not reached unless this fails: no stream left to hold the hub's shutdown
        } throws: { ($0 as? EventServerError)?.code == .logUnavailable }
        // Not a wait for a condition: the outage must last long enough for the tail's retries
        // to back off past a second, so that the node is still not reading the log when the
        // first send after the restart comes (what the old code then lost).
        try await Task.sleep(for: .milliseconds(1500))
        try await redis.restart()
        // The first send the node accepts after Redis is back, to a stream it accepted: the
        // stream gets it (it used to be appended before the point the tail then started from).
        let reader = Mutex<StreamRecorder?>(nil)
        try await waitUntil("a stream and a send accepted", timeout: .seconds(15)) {
            if reader.withLock({ $0 }) == nil, let connection = try? await hub.connect(source: "carol") {
                reader.withLock { $0 = StreamRecorder(connection) }
            }
            guard reader.withLock({ $0 }) != nil else { return false }
            return (try? await hub.send("first", as: Self.note, to: .source("carol"))) != nil
        }
        let stream = try #require(reader.withLock { $0 })
        #expect(try await stream.waitForEvents(1).map(\.data) == ["first"])
        await stream.cancel()
        task.cancel()
        await task.value
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

@Suite("Cluster: hopping, gaps and quiet clients", .enabled(if: RedisProcess.shouldRun, "needs redis-server"))
struct ClusterReplayTests {
    private static let note = try! EventType<String>("note", marshal: .text)

    private static func hub(on redis: RedisProcess, backlog: Int, logLength: Int = 10_000, heartbeat: Duration? = nil) throws -> EventServer<String> {
        var configuration = EventServer<String>.Configuration()
        configuration.heartbeatInterval = heartbeat
        configuration.backlogCapacity = backlog
        configuration.gapEvent = try ServerSentEvent(event: "gap", data: "gap")
        return try EventServer<String>(configuration: configuration, cluster: .init(redisURL: "redis://127.0.0.1:\(redis.port)", logLength: logLength))
    }

    private static func start(_ hubs: [EventServer<String>]) async throws -> [Task<Void, Never>] {
        let tasks = hubs.map { hub in Task { await hub.run() } }
        for hub in hubs { try await waitUntil("the hub tails the log") { await hub.clusterEpoch != nil } }
        return tasks
    }

    @Test("(c) 8 clients hop between three nodes while events are sent through all three: each gets exactly what was addressed to it, in order")
    func hoppingClients() async throws {
        let redis = try await RedisProcess()
        // A small cache on each node, so that hops exercise all three replay paths: from the
        // cache, from the log (XRANGE), and a client ahead of the node it lands on.
        let hubs = try (0..<3).map { _ in try Self.hub(on: redis, backlog: 8) }
        let tasks = try await Self.start(hubs)
        let clients = (0..<8).map { "c\($0)" }
        var generator = SeededGenerator(seed: 7)
        var expected: [String: [String]] = [:]
        var received: [String: [String]] = [:]
        var recorders: [String: StreamRecorder] = [:]
        var lastIDs: [String: String] = [:]
        var nodes: [String: Int] = [:]
        for client in clients {
            nodes[client] = Int.random(in: 0..<3, using: &generator)
            recorders[client] = StreamRecorder(try await hubs[nodes[client]!].connect(source: client))
        }
        for step in 0..<400 {
            let addressed = clients.filter { _ in Int.random(in: 0..<3, using: &generator) == 0 }
            let text = "s\(step)"
            if !addressed.isEmpty {
                _ = try await hubs[step % 3].send(text, as: Self.note, to: .only(Set(addressed)))
                for client in addressed { expected[client, default: []].append(text) }
            }
            if step % 25 == 24 {
                for client in clients where Bool.random(using: &generator) {
                    let recorder = recorders[client]!
                    await recorder.cancel()
                    let events = recorder.events
                    received[client, default: []] += events.map(\.data)
                    if let last = events.last { lastIDs[client] = last.lastEventID }
                    nodes[client] = (nodes[client]! + 1 + Int.random(in: 0..<2, using: &generator)) % 3
                    recorders[client] = StreamRecorder(try await hubs[nodes[client]!].connect(source: client, lastEventID: lastIDs[client]))
                }
            }
        }
        for client in clients {
            let want = expected[client, default: []]
            let already = received[client, default: []].count
            let recorder = recorders[client]!
            let rest = try await recorder.waitForEvents(want.count - already)
            await recorder.cancel()
            let all = received[client, default: []] + rest.map(\.data)
            #expect(all == want, "\(client): \(all.count) events, \(want.count) addressed; first difference at \(Array(zip(all, want)).firstIndex { $0.0 != $0.1 } ?? min(all.count, want.count))")
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    @Test("(d) a Last-Event-ID the log has trimmed: the gap signal, then live")
    func trimmedIsAGap() async throws {
        let redis = try await RedisProcess()
        let hubs = try (0..<2).map { _ in try Self.hub(on: redis, backlog: 5, logLength: 10) }
        let tasks = try await Self.start(hubs)
        let first = StreamRecorder(try await hubs[0].connect(source: "alice"))
        _ = try await hubs[0].send("one", as: Self.note, to: .source("alice"))
        let old = try await first.waitForEvents(1)[0].lastEventID
        await first.cancel()
        for index in 0..<300 { _ = try await hubs[index % 2].send("x\(index)", as: Self.note, to: .source("bob")) }
        let lastID = try await hubs[0].send("last", as: Self.note, to: .source("bob"))
        try await waitUntil("node B delivered everything") { await hubs[1].lastEventID == lastID }
        let again = StreamRecorder(try await hubs[1].connect(source: "alice", lastEventID: old))
        _ = try await hubs[0].send("live", as: Self.note, to: .source("alice"))
        let events = try await again.waitForEvents(2)
        #expect(events.map(\.type) == ["gap", "note"])
        #expect(events.last?.data == "live")
        await again.cancel()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    @Test("a replay from the log is owed beyond the queue, but not beyond the limit shared by every queue: past it, a gap")
    func replayWithinTheSharedLimit() async throws {
        let redis = try await RedisProcess()
        var configuration = EventServer<String>.Configuration()
        configuration.heartbeatInterval = nil
        configuration.backlogCapacity = 5
        configuration.queueCapacity = 4
        configuration.totalQueueByteLimit = 8_000
        configuration.gapEvent = try ServerSentEvent(event: "gap", data: "gap")
        let hub = try EventServer<String>(configuration: configuration, cluster: .init(redisURL: "redis://127.0.0.1:\(redis.port)"))
        let tasks = try await Self.start([hub])
        let padding = String(repeating: "x", count: 80)
        var ids: [String] = []
        for index in 0..<120 { ids.append(try await hub.send("\(index) \(padding)", as: Self.note, to: .source("alice"))) }
        let lastID = ids.last
        try await waitUntil("delivered") { await hub.lastEventID == lastID }
        // 30 events of about 100 bytes: far over the queue (4), well within the shared limit.
        let near = StreamRecorder(try await hub.connect(source: "alice", lastEventID: ids[89]))
        #expect(try await near.waitForEvents(30).map(\.lastEventID) == Array(ids[90...]))
        // 110 events, about 11 KB, owed to a client that does not read: over the shared 8,000.
        let far = StreamRecorder(try await hub.connect(source: "alice", lastEventID: ids[9]))
        #expect(try await far.waitForEvents(1).map(\.type) == ["gap"])
        await near.cancel()
        await far.cancel()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    @Test("a forged Last-Event-ID ahead of the log: the gap signal and live events at once, not a wait for the log to reach it")
    func forgedFutureIDIsAGap() async throws {
        let redis = try await RedisProcess()
        let hubs = [try Self.hub(on: redis, backlog: 100)]
        let tasks = try await Self.start(hubs)
        let first = try await hubs[0].send("one", as: Self.note)
        let epoch = try #require(first.split(separator: "-").first)
        let forged = StreamRecorder(try await hubs[0].connect(source: "mallory", lastEventID: "\(epoch)-1000000"))
        _ = try await hubs[0].send("live", as: Self.note)
        let events = try await forged.waitForEvents(2)
        #expect(events.map(\.type) == ["gap", "note"])
        #expect(events.last?.data == "live")
        #expect(await hubs[0].clusterFloors.isEmpty, "no floor is left for the forged claim")
        await forged.cancel()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    @Test("a quiet client stays inside the log's window: heartbeats carry the log's ID, so after the log moved far on, its reconnection is no gap")
    func quietClientStaysInTheWindow() async throws {
        let redis = try await RedisProcess()
        let hubs = try (0..<2).map { _ in try Self.hub(on: redis, backlog: 5, logLength: 10, heartbeat: .milliseconds(50)) }
        let tasks = try await Self.start(hubs)
        let quiet = StreamRecorder(try await hubs[0].connect(source: "quiet"))
        for index in 0..<300 { _ = try await hubs[index % 2].send("x\(index)", as: Self.note, to: .source("busy")) }
        let lastID = try await hubs[0].send("last", as: Self.note, to: .source("busy"))
        try await waitUntil("the quiet client's last event ID followed the log", timeout: .seconds(5)) { quiet.lastEventID == lastID }
        #expect(quiet.events.isEmpty, "heartbeats dispatch nothing")
        await quiet.cancel()
        let again = StreamRecorder(try await hubs[1].connect(source: "quiet", lastEventID: quiet.lastEventID))
        _ = try await hubs[1].send("for you", as: Self.note, to: .source("quiet"))
        #expect(try await again.waitForEvents(1).map(\.data) == ["for you"], "no gap event before it")
        await again.cancel()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}
