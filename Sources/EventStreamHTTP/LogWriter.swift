import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EventStreamKit

/// Writes log lines to one file descriptor from a thread of its own, so that whoever logs
/// never waits for the destination: a pipe nobody reads, a paused terminal or a busy
/// journal blocks this thread and nothing else. (Docs/Decisions/0006-non-blocking-log.md)
///
/// ``enqueue(_:level:)`` takes a lock for the time it takes to append a line and never
/// waits for the writer: it wakes it with a semaphore, whose signal cannot block. What
/// happens to a line that arrives faster than it can be written, and how it is reported,
/// is ``LogWriterStateMachine``'s to decide, within ``LogLimits``.
///
/// The thread lives as long as the writer, which lives until ``stop()`` (the standard
/// streams' writers never stop). The descriptor is not the writer's: it does not close it.
final class LogWriter: Sendable {
    /// The descriptor written to.
    let descriptor: Int32
    private let state: Mutex<LogWriterStateMachine<DispatchSemaphore>>
    private let wake = DispatchSemaphore(value: 0)
    private let now: @Sendable () -> ContinuousClock.Instant

    /// Starts a writer thread for `descriptor`.
    ///
    /// - Parameters:
    ///   - descriptor: Where lines go; blocking or not (the thread waits with `poll(2)` when
    ///     a non-blocking one is full).
    ///   - limits: The queue's bound and the rate of each level.
    ///   - now: The time that the rate limit and the reports of suppressed lines go by;
    ///     tests inject their own.
    init(descriptor: Int32, limits: LogLimits = .standard, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.descriptor = descriptor
        state = Mutex(LogWriterStateMachine(limits: limits))
        self.now = now
        let thread = Thread { [self] in self.run() }
        thread.name = "EventStreamKit.LogWriter(\(descriptor))"
        thread.start()
    }

    /// The queue's bound and the rates the writer was created with.
    var limits: LogLimits { state.withLock { $0.limits } }

    /// Dropped and suppressed lines so far, the bytes waiting and their peak.
    var counters: LogWriterStateMachine<DispatchSemaphore>.Counters { state.withLock { $0.counters } }

    /// Whether the thread has ended after ``stop()``.
    var hasExited: Bool { state.withLock { $0.hasExited } }

    /// Queues `line`, which ends with its own newline, to be written as soon as the writer
    /// gets to it; or drops or suppresses it. Never blocks.
    ///
    /// - Returns: What became of the line.
    @discardableResult
    func enqueue(_ line: String, level: HTTPLogger.Level) -> LogWriterStateMachine<DispatchSemaphore>.Admission.Outcome {
        let instant = now()
        let admission = state.withLock { $0.enqueue(line, level: level, now: instant) }
        if admission.wakeWriter { wake.signal() }
        return admission.outcome
    }

    /// Waits until every line queued before the call has been written, for at most
    /// `timeout`. Blocks the calling thread.
    ///
    /// - Returns: `false` if the timeout passed first.
    @discardableResult
    func flush(timeout: Duration) -> Bool {
        let done = DispatchSemaphore(value: 0)
        guard let ticket = state.withLock({ $0.flush(done) }) else { return true }
        if done.wait(timeout: Self.dispatchTime(after: timeout)) == .success { return true }
        state.withLock { $0.cancelFlush(ticket) }
        return false
    }

    /// Ends the thread once everything queued is written (which is never if the
    /// destination never drains). Lines queued afterwards are dropped.
    func stop() {
        if state.withLock({ $0.stop() }) { wake.signal() }
    }

    private func run() {
        // A destination whose reader went away (`| head`, a restarted log shipper) makes
        // write(2) raise SIGPIPE, whose default action ends the process: any client could
        // then kill the server with one request that logs. Blocked on this thread, it stays
        // pending here, and the write fails with EPIPE instead (the line is lost and counted).
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
        while true {
            let instant = now()
            switch state.withLock({ $0.nextAction(now: instant) }) {
            case .write(let bytes):
                let succeeded = Self.writeAll(bytes, to: descriptor)
                for waiter in state.withLock({ $0.finishedWrite(succeeded: succeeded) }) { waiter.signal() }
            case .sleep(until: let deadline?):
                _ = wake.wait(timeout: Self.dispatchTime(after: deadline - now()))
            case .sleep(until: nil):
                wake.wait()
            case .exit:
                return
            }
        }
    }

    /// Writes all of `bytes`, however long the destination takes.
    ///
    /// - Returns: `false` if the descriptor failed (closed, a broken pipe): the rest is lost.
    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written >= 0 {
                    offset += written
                } else if errno == EAGAIN || errno == EWOULDBLOCK {
                    var entry = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&entry, 1, -1)
                } else if errno != EINTR {
                    return false
                }
            }
            return true
        }
    }

    private static func dispatchTime(after duration: Duration) -> DispatchTime {
        let nanoseconds = max(duration, .zero).inSeconds * 1e9
        return .now() + .nanoseconds(Int(min(nanoseconds, Double(Int32.max) * 1e9)))
    }
}
