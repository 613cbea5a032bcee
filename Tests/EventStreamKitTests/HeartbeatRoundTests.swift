@testable import EventStreamKit
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing

/// The heartbeat round over a large hub: senders write heartbeats for idle streams
/// themselves (decision 0012), so a round over 15,000 streams is 15,000 writes on the hub's
/// actor. An outside attack measured a notification sent at that moment waiting 280 ms for
/// the whole round. The round now lets other work on the hub run between chunks of
/// ``EventServer/heartbeatChunk`` streams.
@Suite("Heartbeat rounds")
struct HeartbeatRoundTests {
    /// What the fake writers saw, in order: `"hb <stream>"` or `"event <stream>"`.
    final class WriteLog: Sendable {
        let entries = Mutex<[String]>([])
        /// Set by the first heartbeat write, as it begins.
        let roundBegan = Atomic<Bool>(false)
        /// Set by the sending task just before it calls the hub.
        let sendStarted = Atomic<Bool>(false)

        func append(_ entry: String) { entries.withLock { $0.append(entry) } }
        var snapshot: [String] { entries.withLock { $0 } }
    }

    /// Connects `count` streams whose readers wait, each with a sender's writer that logs
    /// what it writes. The first heartbeat write holds the round until the sending task
    /// started, and a little longer, so that its call is queued on the hub by then.
    private static func idleStreams(_ count: Int, on hub: EventServer<String>, log: WriteLog) async throws -> [EventConnection<String>] {
        var connections: [EventConnection<String>] = []
        for index in 0..<count {
            let connection = try await hub.connect(source: "s\(index)")
            connection.mailbox.allowImmediateWrites(ImmediateWriter { deliveries in
                for delivery in deliveries {
                    if delivery.isControl {
                        if log.snapshot.isEmpty {
                            log.roundBegan.store(true, ordering: .releasing)
                            let deadline = ContinuousClock.now + .seconds(10)
                            while !log.sendStarted.load(ordering: .acquiring) && ContinuousClock.now < deadline { usleep(1000) }
                            // The one guess: the flag is set just before the sending task's
                            // call to the hub, and that call's enqueue on the hub's actor cannot
                            // be observed from here (the actor is held by this write). 20 ms
                            // covers it; too short a margin could fail the test spuriously, never pass it wrongly.
                            usleep(20_000)
                        }
                        log.append("hb \(index)")
                    } else {
                        log.append("event \(index)")
                    }
                }
                return .written
            })
            connections.append(connection)
            Task { for await _ in connection.body {} }
        }
        let all = connections
        try await waitUntil("every reader waits") { all.allSatisfy { $0.mailbox.readerIsWaiting } }
        return all
    }

    /// A hub whose heartbeat rounds run only when a test calls `sendHeartbeats()`.
    private static func hubWithoutItsOwnRounds() -> EventServer<String> {
        var configuration = EventServer<String>.Configuration()
        configuration.heartbeatInterval = nil
        return EventServer<String>(configuration: configuration)
    }

    @Test("a send during a heartbeat round over many streams waits for one chunk, not the whole round")
    func aSendDuringARoundIsNotHeldForTheWholeRound() async throws {
        let hub = Self.hubWithoutItsOwnRounds()
        let chunk = EventServer<String>.heartbeatChunk
        let count = 4 * chunk
        let log = WriteLog()
        let connections = try await Self.idleStreams(count, on: hub, log: log)
        let note = try EventType<String>("note", marshal: .text)

        let round = Task { await hub.sendHeartbeats() }
        try await waitUntil("the round's first write began") { log.roundBegan.load(ordering: .acquiring) }
        let send = Task {
            log.sendStarted.store(true, ordering: .releasing)
            try await hub.send("x", as: note, to: .source("s\(count - 1)"))
        }
        await round.value
        try await send.value

        let entries = log.snapshot
        let event = try #require(entries.firstIndex(of: "event \(count - 1)"), "the event was written")
        // The send ran at the first chunk's end: after at most one chunk of heartbeats.
        #expect(event <= chunk, "the event was written after \(event) heartbeats, the round has \(count)")
        // And the round still reached every stream: each got a heartbeat, except the one that
        // got the event first (it is no longer idle).
        let heartbeats = Set(entries.filter { $0.hasPrefix("hb ") })
        #expect(heartbeats.count >= count - 1)
        for connection in connections { await connection.close() }
    }

    @Test("a round ends, and writes each stream at most once, while streams leave between its chunks")
    func aRoundSurvivesStreamsLeavingMidway() async throws {
        let hub = Self.hubWithoutItsOwnRounds()
        let chunk = EventServer<String>.heartbeatChunk
        let log = WriteLog()
        log.sendStarted.store(true, ordering: .relaxed)
        let connections = try await Self.idleStreams(2 * chunk, on: hub, log: log)
        let round = Task { await hub.sendHeartbeats() }
        // Close every stream while the round runs: some are gone before their turn.
        for connection in connections { await connection.close() }
        await round.value
        try await waitUntil("every stream ended") { await hub.clientCount == 0 }
        let entries = log.snapshot
        #expect(entries.count <= 2 * chunk)
        #expect(Set(entries).count == entries.count, "a stream got two heartbeats in one round")
    }
}
