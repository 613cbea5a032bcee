@testable import EventStreamKit
import Testing

private let tick = try! EventType<Int>("tick", marshal: .text)

/// Order is an invariant: a connection receives events in the order they were sent to it,
/// also when its queue overflows and frames are dropped.
@Suite("EventServer: order under overflow")
struct EventServerOrderTests {
    @Test(arguments: [OverflowPolicy.dropOldest, .coalesce])
    func sequenceNumbersOnlyGrowUnderOverflowAndBursts(policy: OverflowPolicy) async throws {
        var configuration = EventServer<Int>.Configuration()
        configuration.queueCapacity = 16
        configuration.overflowPolicy = policy
        let server = EventServer<Int>(configuration: configuration)
        var connections: [EventConnection<Int>] = []
        for source in 0..<8 { connections.append(try await server.connect(source: source)) }
        let readers = connections.enumerated().map { index, connection in
            Task {
                var parser = EventStreamParser()
                var seen: [Int] = []
                var wakeUps = 0
                for await chunk in connection.body {
                    for case .event(let event) in try parser.parse(chunk) {
                        seen.append(Int(event.data)!)
                    }
                    wakeUps += 1
                    // Slow readers, each differently slow, so that queues overflow.
                    for _ in 0..<(index * 3) { await Task.yield() }
                    if seen.last == -1 { break }
                }
                return seen
            }
        }
        var next = 0
        var random = SeededGenerator(seed: 7)
        while next < 5000 {
            let burst = Int.random(in: 1...40, using: &random)
            if burst == 1 {
                try await server.send(next, as: tick)
            } else {
                try await server.send(contentsOf: next..<(next + burst), as: tick)
            }
            next += burst
        }
        // The scenario must really overflow, or this test proves nothing.
        #expect(connections.contains { $0.droppedCount > 0 })
        // The end marker goes to a queue that has room: wait until each is drained.
        for connection in connections {
            try await waitUntil("reader to drain") { connection.mailbox.queuedCount == 0 }
        }
        try await server.send(-1, as: tick)
        for reader in readers {
            let seen = try await withDeadline(.seconds(20), "a reader to finish") { try await reader.value }
            let numbers = seen.dropLast()
            #expect(!numbers.isEmpty)
            #expect(zip(numbers, numbers.dropFirst()).allSatisfy { $0 < $1 }, "out of order: \(Array(numbers.prefix(50)))")
            #expect(seen.last == -1)
        }
    }
}
