@testable import EventStreamKit
import Synchronization
import Testing

/// What a hub's lifecycle stream reported about its cluster, in order.
private final class ClusterEventRecorder: Sendable {
    private let events = Mutex<[ClusterEvent]>([])
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(_ hub: EventServer<String>) async {
        let stream = await hub.lifecycleEvents()
        let reading = Task { [self] in
            for await event in stream {
                if case .cluster(let cluster) = event { append(cluster) }
            }
        }
        task.withLock { $0 = reading }
    }

    private func append(_ event: ClusterEvent) { events.withLock { $0.append(event) } }

    var all: [ClusterEvent] { events.withLock { $0 } }

    func cancel() { task.withLock { $0?.cancel() } }
}

@Suite("Cluster: lifecycle events and status", .enabled(if: RedisProcess.shouldRun, "needs redis-server"))
struct ClusterEventTests {
    private static let note = try! EventType<String>("note", marshal: .text)

    private static func hub(on redis: RedisProcess) throws -> EventServer<String> {
        var configuration = EventServer<String>.Configuration()
        configuration.heartbeatInterval = nil
        return try EventServer<String>(configuration: configuration, cluster: .init(redisURL: "redis://127.0.0.1:\(redis.port)", timeout: .milliseconds(500)))
    }

    @Test("the status follows sends: delivered up to the known end, no lag, a measured round trip; nil without a cluster")
    func statusAfterSends() async throws {
        #expect(await EventServer<String>().clusterStatus == nil)
        let redis = try await RedisProcess()
        let hub = try Self.hub(on: redis)
        let task = Task { await hub.run() }
        try await waitUntil("the hub tails the log") { await hub.clusterStatus?.isLogReachable == true }
        var ids: [String] = []
        for index in 0..<5 { ids.append(try await hub.send("e\(index)", as: Self.note)) }
        let lastID = ids.last
        try await waitUntil("the hub delivered its sends") { await hub.lastEventID == lastID }
        let status = try #require(await hub.clusterStatus)
        #expect(status.deliveredSequence == 5)
        #expect(status.knownEndSequence == 5)
        #expect(status.lag == 0)
        #expect(status.lastRoundTrip != nil)
        #expect(lastID == "\(status.epoch ?? "")-5")
        #expect(status.outages == 0 && status.epochChanges == 0 && status.gaps == 0 && status.malformedRecords == 0 && status.appendFailures == 0)
        task.cancel()
        await task.value
    }

    @Test("Redis killed and started again without its data: one outage reported when it starts and one restore when it ends, however many reconnection attempts; then one epoch change; failed sends counted")
    func outageOnceAndEpochChange() async throws {
        let redis = try await RedisProcess()
        let hub = try Self.hub(on: redis)
        let recorder = await ClusterEventRecorder(hub)
        let task = Task { await hub.run() }
        try await waitUntil("the hub tails the log") { await hub.clusterStatus?.isLogReachable == true }
        _ = try await hub.send("before", as: Self.note)
        let epoch = try #require(await hub.clusterStatus?.epoch)
        redis.kill()
        try await waitUntil("the outage is reported") { recorder.all.count == 1 }
        #expect(await hub.clusterStatus?.isLogReachable == false)
        for _ in 0..<3 {
            await #expect(throws: EventServerError.self) { _ = try await hub.send("lost", as: Self.note) }
        }
        // Not a wait for a condition: the outage must last long enough for several of the
        // tail's reconnection attempts to fail (its backoff starts at 50 ms and doubles).
        try await Task.sleep(for: .milliseconds(400))
        try await redis.restart()
        try await waitUntil("the restore and the epoch change are reported") { recorder.all.count >= 3 }
        let events = recorder.all
        #expect(events.count == 3)
        guard case .logUnavailable = events[0] else { Issue.record("first \(events[0])"); return }
        guard case .logRestored(let after) = events[1] else { Issue.record("second \(events[1])"); return }
        #expect(after >= .milliseconds(400))
        let status = try #require(await hub.clusterStatus)
        #expect(events[2] == .epochChanged(from: epoch, to: status.epoch ?? ""))
        #expect(status.outages == 1)
        #expect(status.epochChanges == 1)
        #expect(status.appendFailures == 3)
        #expect(status.isLogReachable)
        recorder.cancel()
        task.cancel()
        await task.value
    }

    @Test("a record the hub cannot read is skipped, reported with its ID and counted; the next one is delivered")
    func malformedRecord() async throws {
        let redis = try await RedisProcess()
        let hub = try Self.hub(on: redis)
        let recorder = await ClusterEventRecorder(hub)
        let task = Task { await hub.run() }
        try await waitUntil("the hub tails the log") { await hub.clusterStatus?.isLogReachable == true }
        let reader = StreamRecorder(try await hub.connect(source: "alice"))
        let foreign = RedisEventLog(endpoint: redis.endpoint, stream: RedisEventStream(name: "events", maxLength: 10_000))
        let (epoch, sequence) = try await foreign.append([[9, 9, 9]])
        _ = try await hub.send("fine", as: Self.note)
        #expect(try await reader.waitForEvents(1).map(\.data) == ["fine"])
        #expect(recorder.all == [.malformedRecord(id: "\(epoch)-\(sequence)")])
        #expect(await hub.clusterStatus?.malformedRecords == 1)
        await reader.cancel()
        recorder.cancel()
        task.cancel()
        await task.value
    }
}
