import Foundation

/// The cluster's event log at run time: appends go through one connection (every append
/// waiting at one moment goes out in one pipelined write, in call order), and ``tail(from:deliver:)``
/// reads the log on a connection of its own and hands each record to `deliver` once, in log
/// order, across Redis restarts and lost data.
///
/// Redis failures are reported, never hidden: an append while Redis is unreachable throws at
/// once (``RedisError``); the tail reconnects with jittered backoff and resumes from its cursor;
/// when the log's epoch changed (Redis lost its data, or a failover rolled the sequence back)
/// the tail says so once (``TailEvent/epochChanged(from:to:)``), then goes on from the new
/// epoch's first record.
actor RedisEventLog {
    /// What the tail hands on, in log order.
    enum TailEvent: Sendable, Equatable {
        /// Records after the cursor, contiguous with what came before (unless a
        /// ``gap(after:next:)`` or an epoch change came first).
        case records([RedisEventStream.Record])
        /// Records after `after` were trimmed from the log before the tail could read them;
        /// the next record is `next`.
        case gap(after: UInt64, next: UInt64)
        /// The log's epoch is not the one the cursor was in: what came before is gone.
        case epochChanged(from: String?, to: String)
        /// The tail lost Redis (logged once per outage by the caller) and will retry.
        case disconnected(RedisError)
        /// The tail reached Redis again.
        case reconnected
    }

    /// A position in the log.
    struct Cursor: Sendable, Equatable {
        var epoch: String?
        var sequence: UInt64
    }

    let endpoint: RedisEndpoint
    let stream: RedisEventStream
    /// How long an append may wait for Redis before it throws.
    let timeout: Duration
    /// Appends and other short commands: one shared, pipelined connection.
    private let commands: RedisClient
    /// Replays: a connection of their own, so that a replay does not wait behind appends,
    /// nor they behind it.
    private let reads: RedisClient
    private var rangesWaiting: [(after: UInt64, through: UInt64, continuation: CheckedContinuation<Result<[RedisEventStream.Record], any Error>, Never>)] = []
    private var isReadingRanges = false

    init(endpoint: RedisEndpoint, stream: RedisEventStream, timeout: Duration = .seconds(2)) {
        self.endpoint = endpoint
        self.stream = stream
        self.timeout = timeout
        commands = RedisClient(endpoint: endpoint, timeout: timeout)
        reads = RedisClient(endpoint: endpoint, timeout: timeout)
    }

    /// Appends `payloads` as consecutive records.
    ///
    /// - Returns: The log's epoch and the first record's sequence number.
    /// - Throws: ``RedisError`` when Redis cannot be reached or refuses (nothing was appended,
    ///   unless the failure came after Redis ran the script: a timeout cannot tell).
    nonisolated(nonsending) func append(_ payloads: [[UInt8]]) async throws -> (epoch: String, first: UInt64) {
        precondition(!payloads.isEmpty, "an append needs at least one record")
        return try stream.appendResult(try await call(stream.appendCommand(payloads, candidateEpoch: Self.newEpoch())))
    }

    /// Sends one command on the shared connection and returns its reply (an error reply
    /// too: the caller reads it). Every command waiting at one moment goes out in one
    /// pipelined write, in call order: appends, and the presence commands of the hub.
    ///
    /// - Throws: ``RedisError`` when Redis cannot be reached, or did not answer in time.
    nonisolated(nonsending) func call(_ command: [UInt8]) async throws -> RESPValue {
        try await commands.send(encoded: [command])[0]
    }

    /// Reads the log after `cursor` until the task is cancelled, handing `deliver` every record
    /// once and in order, and every failure and recovery. Reconnects after a failure with
    /// jittered backoff (from 50 ms, doubling, at most `maximumBackoff`).
    ///
    /// On each (re)connection the log's state is read first: another epoch, or a sequence
    /// behind the cursor (a failover that lost the newest records), means the cursor's
    /// records are gone. A rolled-back sequence gets a new epoch here (atomically, if nobody
    /// did it first), so that no sequence number is ever reused for a different event.
    nonisolated func tail(
        from cursor: Cursor,
        batchSize: Int = 1000,
        block: Duration = .seconds(5),
        maximumBackoff: Duration = .seconds(5),
        deliver: @Sendable (TailEvent) async -> Void
    ) async {
        var cursor = cursor
        var backoff = Duration.milliseconds(50)
        var isDown = false
        while !Task.isCancelled {
            var connection: RedisConnection?
            do {
                let tail = try await RedisConnection.connect(to: endpoint, timeout: timeout)
                connection = tail
                // Back only once a command worked: a server that accepts connections and then
                // refuses every command (loading, a read-only replica, too many clients) is
                // still down, and the backoff keeps growing.
                try await resynchronize(&cursor, on: tail, deliver: deliver) {
                    if isDown {
                        isDown = false
                        await deliver(.reconnected)
                    }
                    backoff = .milliseconds(50)
                }
                while !Task.isCancelled {
                    let asked = ContinuousClock.now
                    let reply = try await tail.send([stream.tailCommand(after: cursor.sequence, count: batchSize, block: block)], timeout: block + timeout)
                    let records = try stream.tailResult(reply[0])
                    guard let first = records.first else {
                        // A real server answers an empty XREAD BLOCK after `block`; one that
                        // answers at once (not Redis, or broken) must not make this loop spin.
                        if ContinuousClock.now - asked < block / 10 { try await Task.sleep(for: min(block / 10, .milliseconds(100))) }
                        continue
                    }
                    if first.epoch != cursor.epoch {
                        // The log was recreated since this connection read its state.
                        await deliver(.epochChanged(from: cursor.epoch, to: first.epoch))
                        cursor = Cursor(epoch: first.epoch, sequence: 0)
                        try await resynchronize(&cursor, on: tail, deliver: deliver)
                        continue
                    }
                    let sameEpoch = records.prefix { $0.epoch == first.epoch }
                    // Redis answers in increasing order after the cursor; anything else is not
                    // Redis (or not our log), and delivering it would skip or repeat events.
                    guard first.sequence > cursor.sequence, zip(sameEpoch, sameEpoch.dropFirst()).allSatisfy({ $0.sequence < $1.sequence }) else {
                        throw RedisError(.connectionFailed, "tailing \(stream.streamKey): records out of order after \(cursor.sequence)")
                    }
                    if first.sequence != cursor.sequence + 1 {
                        await deliver(.gap(after: cursor.sequence, next: first.sequence))
                    }
                    await deliver(.records(Array(sameEpoch)))
                    cursor.sequence = sameEpoch.last!.sequence
                }
            } catch {
                connection?.close()
                guard !Task.isCancelled else { return }
                let failure = error as? RedisError ?? RedisError(.connectionFailed, "\(error)")
                if !isDown {
                    isDown = true
                    await deliver(.disconnected(failure))
                }
                let jittered = backoff * Double.random(in: 0.5...1)
                try? await Task.sleep(for: jittered)
                backoff = min(backoff * 2, maximumBackoff)
            }
            connection?.close()
        }
    }

    /// The records after `sequence` up to `last`, in order (fewer if the log no longer holds
    /// them all: the caller checks).
    ///
    /// Reads share one connection of their own (a replay must not wait behind appends, nor
    /// they behind it), and the reads asked for while one is under way are served together
    /// by one `XRANGE` over their union: ten thousand clients reconnecting at once cost a
    /// handful of reads, not ten thousand connections.
    func range(after sequence: UInt64, through last: UInt64) async throws -> [RedisEventStream.Record] {
        guard last > sequence else { return [] }
        let result = await withCheckedContinuation { continuation in
            rangesWaiting.append((sequence, last, continuation))
            guard !isReadingRanges else { return }
            isReadingRanges = true
            // Ends when no read is waiting; every waiting read is resumed before it does.
            Task { await self.readRanges() }
        }
        return try result.get()
    }

    /// The most records one read may span: a replay longer than this is a gap (the replay's
    /// byte bound would refuse it anyway), and no reply has to hold the whole log.
    static let maxRangeLength: UInt64 = 100_000

    private func readRanges() async {
        while !rangesWaiting.isEmpty {
            let batch = rangesWaiting
            rangesWaiting = []
            // Overlapping reads merge into one XRANGE (a mass reconnect shares one read), as
            // long as a merged read stays within the longest one; the rest go in the same
            // pipelined write.
            var segments: [(after: UInt64, through: UInt64, members: [Int])] = []
            for index in batch.indices.sorted(by: { batch[$0].after < batch[$1].after }) {
                let read = batch[index]
                guard read.through - read.after <= Self.maxRangeLength else {
                    batch[index].continuation.resume(returning: .success([]))
                    continue
                }
                if let last = segments.last, read.after <= last.through, max(last.through, read.through) - last.after <= Self.maxRangeLength {
                    segments[segments.count - 1].through = max(last.through, read.through)
                    segments[segments.count - 1].members.append(index)
                } else {
                    segments.append((read.after, read.through, [index]))
                }
            }
            guard !segments.isEmpty else { continue }
            let replies: Result<[RESPValue], RedisError>
            do throws(RedisError) {
                replies = .success(try await reads.send(encoded: segments.map { stream.rangeCommand(after: $0.after, count: Int($0.through - $0.after)) }))
            } catch {
                replies = .failure(error)
            }
            for (segment, position) in zip(segments, segments.indices) {
                let records = replies.flatMap { replies -> Result<[RedisEventStream.Record], RedisError> in
                    Result { () throws(RedisError) in try stream.rangeResult(replies[position]) }
                }
                for index in segment.members {
                    let read = batch[index]
                    read.continuation.resume(returning: records.map { records in
                        // Sorted by sequence: each read's slice is found by two binary searches.
                        let lower = records.partitioningIndex { $0.sequence > read.after }
                        let upper = records.partitioningIndex { $0.sequence > read.through }
                        return lower < upper ? Array(records[lower..<upper]) : []
                    }.mapError { $0 })
                }
            }
        }
        isReadingRanges = false
    }

    /// The end of the log now (creating its epoch if it has none): where a node that starts
    /// begins to tail.
    func end() async throws -> Cursor {
        let state = try stream.epochResult(try await call(stream.epochCommand(candidate: Self.newEpoch())))
        return Cursor(epoch: state.epoch, sequence: state.last)
    }

    static func newEpoch() -> String {
        String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    /// Compares `cursor` with the log's state and moves it (and says why) when the records it
    /// points into are gone. A log without an epoch gets one here, so the change is known at
    /// once, not at the next append.
    private nonisolated func resynchronize(
        _ cursor: inout Cursor, on connection: RedisConnection, deliver: @Sendable (TailEvent) async -> Void, reachable: () async -> Void = {}
    ) async throws {
        let reply = try await connection.send([stream.epochCommand(candidate: Self.newEpoch())], timeout: timeout)[0]
        let state = try stream.epochResult(reply)
        await reachable()
        if cursor.epoch == nil, cursor.sequence == 0 {
            // A tail from the very start adopts the epoch it finds.
            cursor.epoch = state.epoch
            return
        }
        if state.epoch != cursor.epoch {
            await deliver(.epochChanged(from: cursor.epoch, to: state.epoch))
            cursor = Cursor(epoch: state.epoch, sequence: 0)
            return
        }
        if state.last < cursor.sequence {
            // Rolled back: records this node delivered are gone, and their numbers would be
            // reused. Start a new epoch, unless another node already did.
            let rotated = try await connection.send([stream.epochCommand(candidate: Self.newEpoch(), replacing: state.epoch)], timeout: timeout)[0]
            let epoch = try stream.epochResult(rotated).epoch
            await deliver(.epochChanged(from: cursor.epoch, to: epoch))
            cursor = Cursor(epoch: epoch, sequence: 0)
        }
    }
}

extension RandomAccessCollection {
    /// The first index whose element satisfies `predicate`, which must be false for a prefix
    /// of the collection and true for the rest; `endIndex` if none does.
    func partitioningIndex(where predicate: (Element) -> Bool) -> Index {
        var low = startIndex
        var count = self.count
        while count > 0 {
            let half = count / 2
            let middle = index(low, offsetBy: half)
            if predicate(self[middle]) {
                count = half
            } else {
                low = index(after: middle)
                count -= half + 1
            }
        }
        return low
    }
}
