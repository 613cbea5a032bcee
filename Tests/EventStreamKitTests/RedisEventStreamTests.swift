@testable import EventStreamKit
import Synchronization
import Testing

private func payload(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite("RedisEventStream against a real redis-server", .enabled(if: RedisProcess.shouldRun, "needs redis-server"))
struct RedisEventStreamTests {
    private static func append(_ log: RedisEventStream, _ payloads: [[UInt8]], on connection: RedisConnection, epoch: String = "e1") async throws -> (epoch: String, first: UInt64) {
        let reply = try await connection.send([log.appendCommand(payloads, candidateEpoch: epoch)])
        return try log.appendResult(reply[0])
    }

    @Test("three nodes append at once: one contiguous sequence, each batch contiguous, read back in order")
    func contiguousAcrossAppenders() async throws {
        let redis = try await RedisProcess()
        let log = RedisEventStream(name: "hub", maxLength: 100_000)
        final class Batches: Sendable {
            let list = Mutex<[(node: Int, first: UInt64, payloads: [String])]>([])
        }
        let batches = Batches()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in 0..<3 {
                group.addTask {
                    let connection = try await RedisConnection.connect(to: redis.endpoint)
                    defer { connection.close() }
                    for batch in 0..<40 {
                        let texts = (0..<(1 + batch % 4)).map { "n\(node)-b\(batch)-\($0)" }
                        let (_, first) = try await Self.append(log, texts.map(payload), on: connection, epoch: "node\(node)")
                        batches.list.withLock { $0.append((node, first, texts)) }
                    }
                }
            }
            try await group.waitForAll()
        }
        let all = batches.list.withLock { $0 }.sorted { $0.first < $1.first }
        var expected: [String] = []
        var next: UInt64 = 1
        for batch in all {
            #expect(batch.first == next, "batch \(batch.payloads[0]) starts at \(batch.first), expected \(next)")
            next = batch.first + UInt64(batch.payloads.count)
            expected += batch.payloads
        }
        let reader = try await RedisConnection.connect(to: redis.endpoint)
        let records = try log.rangeResult(try await reader.send([log.rangeCommand(after: 0, count: 10_000)])[0])
        #expect(records.map(\.sequence) == Array(1...UInt64(expected.count)))
        #expect(records.map { String(decoding: $0.payload, as: UTF8.self) } == expected)
        #expect(Set(records.map(\.epoch)).count == 1, "the first append's epoch, for everyone")
        let state = try log.stateResult(try await reader.send([log.stateCommand])[0])
        #expect(state?.last == UInt64(expected.count))
        #expect(state?.epoch == records.first?.epoch)
    }

    @Test("the tail waits on the server for the next append, and returns exactly what follows the cursor")
    func tail() async throws {
        let redis = try await RedisProcess()
        let log = RedisEventStream(name: "hub", maxLength: 1000)
        let writer = try await RedisConnection.connect(to: redis.endpoint)
        _ = try await Self.append(log, [payload("one"), payload("two")], on: writer)
        let tailer = try await RedisConnection.connect(to: redis.endpoint)
        #expect(try log.tailResult(try await tailer.send([log.tailCommand(after: 1, count: 10, block: .milliseconds(50))])[0]).map(\.payload) == [payload("two")])
        #expect(try log.tailResult(try await tailer.send([log.tailCommand(after: 2, count: 10, block: .milliseconds(50))])[0]).isEmpty, "nothing new: the block times out")
        let waiting = Task { try log.tailResult(try await tailer.send([log.tailCommand(after: 2, count: 10, block: .seconds(5))], timeout: .seconds(10))[0]) }
        try await redis.waitUntilBlocked()
        _ = try await Self.append(log, [payload("three")], on: writer)
        let records = try await waiting.value
        #expect(records.map(\.sequence) == [3])
        #expect(records.map(\.payload) == [payload("three")])
    }

    @Test("MAXLEN ~ trims the oldest: a reader from an old sequence sees that the first record is later than it asked")
    func trimming() async throws {
        let redis = try await RedisProcess()
        let log = RedisEventStream(name: "hub", maxLength: 10)
        let connection = try await RedisConnection.connect(to: redis.endpoint)
        for index in 1...300 { _ = try await Self.append(log, [payload("\(index)")], on: connection) }
        let records = try log.rangeResult(try await connection.send([log.rangeCommand(after: 0, count: 1000)])[0])
        #expect(records.last?.sequence == 300)
        #expect((records.first?.sequence ?? 0) > 1, "trimmed")
        #expect(records.count < 300 && records.count >= 10)
    }

    @Test("Redis loses its data: the next append starts a new epoch at sequence 1, and the old stream is gone")
    func epochRotation() async throws {
        let redis = try await RedisProcess()
        let log = RedisEventStream(name: "hub", maxLength: 1000)
        let connection = try await RedisConnection.connect(to: redis.endpoint)
        let (first, _) = try await Self.append(log, (1...5).map { payload("old \($0)") }, on: connection, epoch: "alpha")
        #expect(first == "alpha")
        let (kept, next) = try await Self.append(log, [payload("old 6")], on: connection, epoch: "beta")
        #expect(kept == "alpha" && next == 6, "an existing log keeps its epoch")
        _ = try await connection.send([RESPValue.command(["FLUSHALL"])])
        #expect(try log.stateResult(try await connection.send([log.stateCommand])[0]) == nil)
        let (rotated, restart) = try await Self.append(log, [payload("new 1")], on: connection, epoch: "gamma")
        #expect(rotated == "gamma" && restart == 1)
        // Only the hash lost (a partial loss): the stream left over is dropped with the epoch.
        _ = try await Self.append(log, [payload("new 2")], on: connection, epoch: "x")
        _ = try await connection.send([RESPValue.command(["DEL", log.metaKey])])
        let (again, one) = try await Self.append(log, [payload("newer 1")], on: connection, epoch: "delta")
        #expect(again == "delta" && one == 1)
        let records = try log.rangeResult(try await connection.send([log.rangeCommand(after: 0, count: 100)])[0])
        #expect(records == [RedisEventStream.Record(sequence: 1, epoch: "delta", payload: payload("newer 1"))])
    }
}
