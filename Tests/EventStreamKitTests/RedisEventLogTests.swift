@testable import EventStreamKit
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a tail delivered, in order.
private final class TailRecorder: Sendable {
    private let events = Mutex<[RedisEventLog.TailEvent]>([])

    func append(_ event: RedisEventLog.TailEvent) { events.withLock { $0.append(event) } }

    var all: [RedisEventLog.TailEvent] { events.withLock { $0 } }

    var records: [RedisEventStream.Record] {
        all.flatMap { event -> [RedisEventStream.Record] in
            if case .records(let records) = event { records } else { [] }
        }
    }

    var epochChanges: [(String?, String)] {
        all.compactMap { event in
            if case .epochChanged(let from, let to) = event { (from, to) } else { nil }
        }
    }

    func count(_ matching: (RedisEventLog.TailEvent) -> Bool) -> Int { all.filter(matching).count }
}

private func texts(_ records: [RedisEventStream.Record]) -> [String] {
    records.map { String(decoding: $0.payload, as: UTF8.self) }
}

@Suite("RedisEventLog against a real redis-server", .enabled(if: RedisProcess.shouldRun, "needs redis-server"))
struct RedisEventLogTests {
    fileprivate static func startTail(_ log: RedisEventLog, from cursor: RedisEventLog.Cursor, into recorder: TailRecorder) -> Task<Void, Never> {
        Task {
            await log.tail(from: cursor, block: .milliseconds(200), maximumBackoff: .milliseconds(200)) { recorder.append($0) }
        }
    }

    @Test("200 appends at once: each gets its own contiguous range, and the tail delivers every record once, in order")
    func concurrentAppends() async throws {
        let redis = try await RedisProcess()
        let log = RedisEventLog(endpoint: redis.endpoint, stream: RedisEventStream(name: "hub", maxLength: 100_000))
        let recorder = TailRecorder()
        let tail = Self.startTail(log, from: RedisEventLog.Cursor(epoch: nil, sequence: 0), into: recorder)
        let results = try await withThrowingTaskGroup(of: (UInt64, [String]).self) { group in
            for index in 0..<200 {
                group.addTask {
                    let texts = (0...(index % 3)).map { "a\(index)-\($0)" }
                    return (try await log.append(texts.map { Array($0.utf8) }).first, texts)
                }
            }
            return try await group.reduce(into: [(UInt64, [String])]()) { $0.append($1) }
        }
        var expected: [UInt64: String] = [:]
        for (first, texts) in results {
            for (offset, text) in texts.enumerated() { expected[first + UInt64(offset)] = text }
        }
        let total = expected.count
        try await waitUntil("the tail delivered \(total) records") { recorder.records.count >= total }
        tail.cancel()
        await tail.value
        let records = recorder.records
        #expect(records.map(\.sequence) == Array(1...UInt64(total)))
        #expect(records.allSatisfy { expected[$0.sequence] == String(decoding: $0.payload, as: UTF8.self) })
        #expect(recorder.epochChanges.isEmpty)
    }

    @Test("300 replays at once share a few reads on one connection, and each gets exactly its own slice of the log")
    func concurrentRangesShareReads() async throws {
        let redis = try await RedisProcess()
        let log = RedisEventLog(endpoint: redis.endpoint, stream: RedisEventStream(name: "hub", maxLength: 100_000))
        _ = try await log.append((1...500).map { Array("e\($0)".utf8) })
        let monitor = try await RedisConnection.connect(to: redis.endpoint)
        defer { monitor.close() }
        func connectionsReceived() async throws -> Int {
            let info = try await monitor.send([RESPValue.command(["INFO", "stats"])])[0].string ?? ""
            let line = info.split(separator: "\r\n").first { $0.hasPrefix("total_connections_received:") }
            return try #require(line.flatMap { Int($0.split(separator: ":")[1]) })
        }
        let before = try await connectionsReceived()
        var generator = SeededGenerator(seed: 7)
        let asks = (0..<300).map { _ in
            let after = UInt64.random(in: 0..<500, using: &generator)
            return (after, UInt64.random(in: after...500, using: &generator))
        }
        let slices = try await withThrowingTaskGroup(of: (Int, [RedisEventStream.Record]).self) { group in
            for (index, ask) in asks.enumerated() {
                group.addTask { (index, try await log.range(after: ask.0, through: ask.1)) }
            }
            return try await group.reduce(into: [Int: [RedisEventStream.Record]]()) { $0[$1.0] = $1.1 }
        }
        for (index, ask) in asks.enumerated() {
            let expected = ask.1 > ask.0 ? (ask.0 + 1...ask.1).map { "e\($0)" } : []
            #expect(texts(slices[index] ?? []) == expected, "after \(ask.0) through \(ask.1)")
        }
        // One connection for every read (the append's is separate and was opened before).
        #expect(try await connectionsReceived() - before == 1)
        // A failed read fails every read of its batch, and the next read connects again.
        redis.kill()
        try await waitUntil("redis-server to exit") { !redis.isRunning }
        await #expect(throws: RedisError.self) { try await log.range(after: 1, through: 3) }
        try await redis.restart()
        #expect(try await log.range(after: 1, through: 3).isEmpty, "the restarted server has no data")
    }

    @Test("Redis stops and comes back with its data: appends throw at once meanwhile; the tail reports one outage and resumes from its cursor, nothing lost or repeated")
    func outageWithData() async throws {
        let redis = try await RedisProcess(extraArguments: ["--appendonly", "yes", "--appendfsync", "always"])
        let log = RedisEventLog(endpoint: redis.endpoint, stream: RedisEventStream(name: "hub", maxLength: 1000), timeout: .seconds(1))
        let recorder = TailRecorder()
        let start = try await log.end()
        let tail = Self.startTail(log, from: start, into: recorder)
        for index in 1...10 { _ = try await log.append([Array("before \(index)".utf8)]) }
        try await waitUntil("10 records") { recorder.records.count == 10 }
        redis.kill(SIGTERM)
        try await waitUntil("redis-server stopped") { !redis.isRunning }
        let attemptedAt = ContinuousClock.now
        await #expect(throws: RedisError.self) { _ = try await log.append([Array("while down".utf8)]) }
        #expect(attemptedAt.duration(to: .now) < .seconds(2), "an append fails at once while Redis is down")
        try await waitUntil("the tail noticed") { recorder.count { if case .disconnected = $0 { true } else { false } } == 1 }
        try await redis.restart()
        for index in 1...10 { _ = try await log.append([Array("after \(index)".utf8)]) }
        try await waitUntil("20 records") { recorder.records.count >= 20 }
        tail.cancel()
        await tail.value
        #expect(texts(recorder.records) == (1...10).map { "before \($0)" } + (1...10).map { "after \($0)" })
        #expect(recorder.records.map(\.sequence) == Array(1...20))
        #expect(recorder.count { if case .disconnected = $0 { true } else { false } } == 1)
        #expect(recorder.count { if case .reconnected = $0 { true } else { false } } == 1)
        #expect(recorder.epochChanges.isEmpty)
    }

    @Test("Redis restarts without its data: the tail reports exactly one epoch change, then the new epoch's records from 1")
    func dataLost() async throws {
        let redis = try await RedisProcess()
        let log = RedisEventLog(endpoint: redis.endpoint, stream: RedisEventStream(name: "hub", maxLength: 1000), timeout: .seconds(1))
        let recorder = TailRecorder()
        let start = try await log.end()
        let tail = Self.startTail(log, from: start, into: recorder)
        for index in 1...5 { _ = try await log.append([Array("old \(index)".utf8)]) }
        try await waitUntil("5 records") { recorder.records.count == 5 }
        redis.kill()
        try await redis.restart()
        try await waitUntil("the tail reported the new epoch") { recorder.epochChanges.count == 1 }
        // The tail created the new epoch already: the first append goes through.
        let appended: (epoch: String, first: UInt64)? = try await log.append([Array("new 1".utf8), Array("new 2".utf8)])
        try await waitUntil("7 records") { recorder.records.count >= 7 }
        tail.cancel()
        await tail.value
        let change = recorder.epochChanges
        #expect(change.count == 1)
        #expect(change.first?.0 == start.epoch)
        #expect(change.first?.1 == appended?.epoch)
        #expect(appended?.first == 1)
        #expect(Array(recorder.records.suffix(2).map(\.sequence)) == [1, 2])
        #expect(texts(recorder.records) == (1...5).map { "old \($0)" } + ["new 1", "new 2"])
    }

    @Test("a failover that rolled the sequence back: a tail past the log's end starts a new epoch, so no number is reused")
    func rollback() async throws {
        let redis = try await RedisProcess()
        let stream = RedisEventStream(name: "hub", maxLength: 1000)
        let log = RedisEventLog(endpoint: redis.endpoint, stream: stream, timeout: .seconds(1))
        let start = try await log.end()
        for index in 1...10 { _ = try await log.append([Array("e\(index)".utf8)]) }
        // What a replica that missed the last 6 writes looks like after promotion.
        let admin = try await RedisConnection.connect(to: redis.endpoint)
        _ = try await admin.send([RESPValue.command(["HSET", stream.metaKey, "seq", "4"])] + (5...10).map { RESPValue.command(["XDEL", stream.streamKey, "\($0)-0"]) })
        let recorder = TailRecorder()
        let tail = Self.startTail(log, from: RedisEventLog.Cursor(epoch: start.epoch, sequence: 10), into: recorder)
        try await waitUntil("the epoch changed") { recorder.epochChanges.count == 1 }
        let appended = try await log.append([Array("fresh".utf8)])
        try await waitUntil("the fresh record") { recorder.records.count == 1 }
        tail.cancel()
        await tail.value
        #expect(recorder.epochChanges.first?.0 == start.epoch)
        #expect(recorder.epochChanges.first?.1 == appended.epoch)
        #expect(appended.epoch != start.epoch && appended.first == 1)
        #expect(texts(recorder.records) == ["fresh"])
    }
}
