import EventStreamKit

/// What a ``LogWriter`` keeps between the tasks that log and the thread that writes, as a
/// pure value that the writer holds under its lock: the queue, bounded in bytes; a token
/// bucket per level; the counts of dropped and suppressed lines and the lines that report
/// them; and who waits for a flush. Time is passed in.
///
/// Lines are queued in one byte buffer, so that the writer takes all of them at once and
/// writes them with one `write(2)`. The bytes of that batch stay counted against the bound
/// until the write has returned: the queue and the batch in flight together never hold more
/// than ``LogLimits/byteLimit`` bytes.
///
/// - A line over its level's rate is *suppressed*: counted, and reported by one line once
///   ``LogLimits/summaryInterval`` has passed since the first one the report counts.
/// - A line that does not fit in the queue is *dropped*: counted, and reported by one line
///   as soon as the writer has caught up (has written everything queued).
///
/// The report lines are not counted against the bound; there is at most one of each kind in
/// flight.
struct LogWriterStateMachine<Waiter> {
    /// What became of a line handed to ``enqueue(_:level:now:)``.
    struct Admission: Equatable {
        enum Outcome: Equatable {
            case queued, suppressed, dropped
        }

        var outcome: Outcome
        /// The writer sleeps and must be woken (outside the lock).
        var wakeWriter: Bool
    }

    /// What the writer thread does next.
    enum WriterAction: Equatable {
        /// Write these bytes, then call ``finishedWrite(succeeded:)``.
        case write([UInt8])
        /// Nothing to write: sleep until woken, or until this instant if there is one.
        case sleep(until: ContinuousClock.Instant?)
        /// Stopped, and everything written: end the thread.
        case exit
    }

    /// What the writer has seen so far, for tests and for anybody who asks.
    struct Counters: Sendable, Equatable {
        /// Lines dropped: the queue was full, the writer had stopped, or `write(2)` failed.
        var dropped = 0
        /// Lines over their level's rate.
        var suppressed = 0
        /// Bytes queued or being written.
        var queuedBytes = 0
        /// The most ``queuedBytes`` ever held.
        var peakQueuedBytes = 0
        /// Lines whose write has returned, written or failed.
        var writtenLines = 0
    }

    let limits: LogLimits
    private(set) var counters = Counters()
    private var queue: [UInt8] = []
    private var queuedLines = 0
    private var acceptedLines = 0
    private var batchLines = 0
    private var batchBytes = 0
    private var isWriting = false
    private var writerSleeps = false
    private var isStopping = false
    private(set) var hasExited = false
    private var buckets: [TokenBucket]
    private var unreportedDrops = 0
    private var unreportedSuppressions = 0
    private var summaryDue: ContinuousClock.Instant?
    private var flushes: [(ticket: Int, target: Int, waiter: Waiter)] = []
    private var nextTicket = 0

    init(limits: LogLimits) {
        self.limits = limits
        buckets = limits.rate.map { rate in HTTPLogger.Level.ordered.map { _ in TokenBucket(rate: rate) } } ?? []
    }

    /// Queues `line` (its bytes, as they are to be written), unless it is over its level's
    /// rate or does not fit.
    mutating func enqueue(_ line: String, level: HTTPLogger.Level, now: ContinuousClock.Instant) -> Admission {
        guard !isStopping else {
            counters.dropped += 1
            return Admission(outcome: .dropped, wakeWriter: false)
        }
        if !buckets.isEmpty && !buckets[level.index].take(now: now) {
            counters.suppressed += 1
            unreportedSuppressions += 1
            // Only the first suppression of a report wakes the writer, to set its alarm: a
            // flood of suppressed lines costs no wake-ups.
            guard summaryDue == nil else { return Admission(outcome: .suppressed, wakeWriter: false) }
            summaryDue = now + limits.summaryInterval
            return Admission(outcome: .suppressed, wakeWriter: wakeIfSleeping())
        }
        let size = line.utf8.count
        guard size <= limits.byteLimit - counters.queuedBytes else {
            counters.dropped += 1
            unreportedDrops += 1
            return Admission(outcome: .dropped, wakeWriter: wakeIfSleeping())
        }
        queue.append(contentsOf: line.utf8)
        queuedLines += 1
        acceptedLines += 1
        counters.queuedBytes += size
        counters.peakQueuedBytes = max(counters.peakQueuedBytes, counters.queuedBytes)
        return Admission(outcome: .queued, wakeWriter: wakeIfSleeping())
    }

    /// The writer's next step, at `now`: everything queued as one batch (with a report of
    /// suppressed lines appended when one is due), else the report of dropped lines, else
    /// sleep.
    mutating func nextAction(now: ContinuousClock.Instant) -> WriterAction {
        precondition(!isWriting, "the writer asked for more before finishing its write")
        writerSleeps = false
        var batch: [UInt8] = []
        if !queue.isEmpty {
            swap(&batch, &queue)
            batchLines = queuedLines
            batchBytes = counters.queuedBytes
            queuedLines = 0
        } else if unreportedDrops > 0 {
            batch = Array(Self.dropReport(unreportedDrops, limits: limits).utf8)
            unreportedDrops = 0
        }
        if let due = summaryDue, now >= due || isStopping {
            batch += Self.suppressionReport(unreportedSuppressions, limits: limits).utf8
            unreportedSuppressions = 0
            summaryDue = nil
        }
        if !batch.isEmpty {
            isWriting = true
            return .write(batch)
        }
        if isStopping {
            hasExited = true
            return .exit
        }
        writerSleeps = true
        return .sleep(until: summaryDue)
    }

    /// The write of the last batch has returned.
    ///
    /// - Returns: The flushes it completed, to be resumed outside the lock.
    mutating func finishedWrite(succeeded: Bool) -> [Waiter] {
        isWriting = false
        counters.queuedBytes -= batchBytes
        counters.writtenLines += batchLines
        if !succeeded { counters.dropped += batchLines }
        batchBytes = 0
        batchLines = 0
        let written = counters.writtenLines
        let done = flushes.filter { $0.target <= written }.map(\.waiter)
        flushes.removeAll { $0.target <= written }
        return done
    }

    /// Waits, with `waiter`, until every line queued so far has been written.
    ///
    /// - Returns: A ticket to cancel the wait with, or `nil` when there is nothing to wait for.
    mutating func flush(_ waiter: Waiter) -> Int? {
        guard counters.writtenLines < acceptedLines, !hasExited else { return nil }
        nextTicket += 1
        flushes.append((nextTicket, acceptedLines, waiter))
        return nextTicket
    }

    /// Gives up the flush wait `ticket` (it timed out).
    mutating func cancelFlush(_ ticket: Int) {
        flushes.removeAll { $0.ticket == ticket }
    }

    /// Stops the writer once it has written everything queued. Lines queued from now on are
    /// dropped.
    ///
    /// - Returns: Whether the writer sleeps and must be woken.
    mutating func stop() -> Bool {
        isStopping = true
        return wakeIfSleeping()
    }

    private mutating func wakeIfSleeping() -> Bool {
        defer { writerSleeps = false }
        return writerSleeps
    }

    static func dropReport(_ count: Int, limits: LogLimits) -> String {
        "[EventStreamKit] warning: \(count) log \(count == 1 ? "line" : "lines") dropped: the log's destination was slower than the log (at most \(limits.byteLimit) bytes wait to be written)\n"
    }

    static func suppressionReport(_ count: Int, limits: LogLimits) -> String {
        let rate = limits.rate.map { " (over \(Self.number($0.linesPerSecond)) a second at one level, bursts of \(Self.number($0.burst)))" } ?? ""
        return "[EventStreamKit] warning: \(count) log \(count == 1 ? "line" : "lines") suppressed\(rate)\n"
    }

    private static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
