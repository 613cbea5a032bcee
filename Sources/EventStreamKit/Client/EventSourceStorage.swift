import Dispatch
import Synchronization

/// What an ``EventSource`` shares between its iterator and other threads, behind a lock:
/// the observable state, the state-change subscribers, and the means to interrupt whatever
/// the iterator waits for (an attempt to connect, a read, a reconnection wait) — for
/// ``EventSource/close()``, ``EventSource/reconnectNow()`` and the timeouts.
final class EventSourceStorage: Sendable {
    /// Why the current wait was interrupted, if it was.
    enum Interruption: Equatable, Sendable {
        case closed
        case reconnectNow
        case connectTimeout
        case readTimeout
    }

    private struct State {
        var readyState = EventSource.ReadyState.connecting
        var lastEventID: String
        var isClosed = false
        var isIterated = false
        /// Ends what the iterator waits for now: the connecting task, or the open
        /// connection's read. Set only while there is one.
        var interrupt: (@Sendable () -> Void)?
        var interruption: Interruption?
        var sleeper: CheckedContinuation<Void, any Error>?
        /// Tells timers and interrupts of an earlier wait from the current one.
        var generation = 0
        /// When the open stream last received bytes, while a read timeout is armed.
        var lastActivity: ContinuousClock.Instant?
        var subscribers: [Int: AsyncStream<EventSource.StateChange>.Continuation] = [:]
        var nextSubscriber = 0
        var isFinished = false
    }

    private let state: Mutex<State>

    init(lastEventID: String) {
        state = Mutex(State(lastEventID: lastEventID))
    }

    var readyState: EventSource.ReadyState { state.withLock { $0.readyState } }
    var lastEventID: String { state.withLock { $0.lastEventID } }
    var isClosed: Bool { state.withLock { $0.isClosed } }

    /// Claims the single iteration; `false` if it was claimed before.
    func claimIteration() -> Bool {
        state.withLock { state in
            defer { state.isIterated = true }
            return !state.isIterated
        }
    }

    func update(lastEventID: String) {
        state.withLock { $0.lastEventID = lastEventID }
    }

    // MARK: State changes

    /// A new subscriber's sequence; it ends when the source is closed.
    func stateChanges() -> AsyncStream<EventSource.StateChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: EventSource.StateChange.self, bufferingPolicy: .bufferingNewest(64))
        let key = state.withLock { state -> Int? in
            guard !state.isFinished else { return nil }
            defer { state.nextSubscriber += 1 }
            state.subscribers[state.nextSubscriber] = continuation
            return state.nextSubscriber
        }
        guard let key else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: key) }
        }
        return stream
    }

    /// Sets the ready state and tells every subscriber.
    func report(_ change: EventSource.StateChange) {
        let subscribers = state.withLock { state -> [AsyncStream<EventSource.StateChange>.Continuation] in
            switch change {
            case .connecting, .retrying: if !state.isClosed { state.readyState = .connecting }
            case .open: if !state.isClosed { state.readyState = .open }
            case .closed: state.readyState = .closed
            }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.yield(change) }
    }

    /// Marks the source closed (the iterator ended), reports `change` and ends every
    /// subscriber's sequence. Idempotent.
    func finish(_ change: EventSource.StateChange = .closed(failure: nil)) {
        let subscribers = state.withLock { state -> [AsyncStream<EventSource.StateChange>.Continuation] in
            state.readyState = .closed
            state.interrupt = nil
            guard !state.isFinished else { return [] }
            state.isFinished = true
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers {
            subscriber.yield(change)
            subscriber.finish()
        }
    }

    // MARK: Interrupting waits

    /// Ends the source: a pending attempt, read or reconnection wait ends now.
    func close() {
        interrupt(.closed)
    }

    /// Ends the current attempt, stream or wait, so that the iterator connects again now.
    func reconnectNow() {
        interrupt(.reconnectNow)
    }

    private func interrupt(_ reason: Interruption, generation: Int? = nil) {
        let sleeper = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if let generation, generation != state.generation { return nil }
            guard !state.isClosed else { return nil }
            if reason == .closed {
                state.isClosed = true
                state.readyState = .closed
            }
            state.interruption = reason
            // Under the lock: the iterator detaches (under the lock) before closing the socket.
            state.interrupt?()
            state.interrupt = nil
            defer { state.sleeper = nil }
            return state.sleeper
        }
        sleeper?.resume()
    }

    /// Why the last wait was interrupted, if it was; clears it (`closed` stays in
    /// ``isClosed``).
    func takeInterruption() -> Interruption? {
        state.withLock { state in
            defer { state.interruption = nil }
            return state.interruption
        }
    }

    /// Runs one attempt to connect (`operation`, on a task of its own) so that
    /// ``close()``, ``reconnectNow()`` and `timeout` can end it in any phase: DNS, TCP,
    /// TLS, the request, the response head. Cancelling the calling task cancels it too.
    ///
    /// - Throws: `operation`'s error, or `CancellationError` when it was interrupted (see
    ///   ``takeInterruption()``).
    func connect<Value: Sendable>(timeout: Duration?, _ operation: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task = Task { try await operation() }
        let generation = state.withLock { state -> Int in
            state.generation += 1
            state.interruption = nil
            if state.isClosed {
                task.cancel()
            } else {
                state.interrupt = { task.cancel() }
            }
            return state.generation
        }
        if let timeout { after(timeout) { [self] in interrupt(.connectTimeout, generation: generation) } }
        defer { state.withLock { if $0.generation == generation { $0.interrupt = nil } } }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }

    /// Installs the interrupt of a newly opened stream and arms its read timeout.
    ///
    /// - Returns: `false` if the source was closed or told to reconnect meanwhile.
    func attach(_ interrupt: @escaping @Sendable () -> Void, readTimeout: Duration?) -> Bool {
        let generation = state.withLock { state -> Int? in
            guard !state.isClosed, state.interruption == nil else { return nil }
            state.generation += 1
            state.interrupt = interrupt
            state.lastActivity = readTimeout == nil ? nil : .now
            return state.generation
        }
        guard let generation else { return false }
        if let readTimeout { watchReads(timeout: readTimeout, generation: generation, after: readTimeout) }
        return true
    }

    /// Bytes arrived on the open stream: the read timeout starts again.
    func noteActivity() {
        state.withLock { if $0.lastActivity != nil { $0.lastActivity = .now } }
    }

    /// One timer per open stream, moved forward lazily: when it fires it checks how long the
    /// stream has been silent, and either interrupts it or sleeps for what is left.
    private func watchReads(timeout: Duration, generation: Int, after delay: Duration) {
        after(delay) { [self] in
            let remaining = state.withLock { state -> Duration? in
                guard state.generation == generation, let last = state.lastActivity else { return nil }
                let silent = last.duration(to: .now)
                return silent >= timeout ? .zero : timeout - silent
            }
            guard let remaining else { return }
            if remaining == .zero {
                interrupt(.readTimeout, generation: generation)
            } else {
                watchReads(timeout: timeout, generation: generation, after: remaining)
            }
        }
    }

    /// Removes the interrupt before its connection is released, so that a late
    /// ``close()`` cannot touch a descriptor number that was reused.
    func detach() {
        state.withLock { state in
            state.interrupt = nil
            state.lastActivity = nil
            state.generation += 1
        }
    }

    /// Waits `delay` before reconnecting; returns early when the source is closed or told
    /// to reconnect now.
    ///
    /// - Throws: `CancellationError` as soon as the task is cancelled.
    func sleep(for delay: Duration) async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let generation = state.withLock { state -> Int? in
                    guard !state.isClosed, state.interruption == nil else { return nil }
                    state.generation += 1
                    state.sleeper = continuation
                    return state.generation
                }
                guard let generation else { return continuation.resume() }
                if Task.isCancelled {
                    wake(generation: nil, throwing: CancellationError())
                } else {
                    after(delay) { [self] in wake(generation: generation, throwing: nil) }
                }
            }
        } onCancel: {
            wake(generation: nil, throwing: CancellationError())
        }
    }

    /// Resumes the sleeper: the one of `generation` (a timer), or any (cancellation).
    private func wake(generation: Int?, throwing error: (any Error)?) {
        let sleeper = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard generation == nil || generation == state.generation else { return nil }
            defer { state.sleeper = nil }
            return state.sleeper
        }
        if let error { sleeper?.resume(throwing: error) } else { sleeper?.resume() }
    }

    /// Runs `work` after `delay` on a Dispatch queue. The delay saturates (at about 30
    /// years): no duration can overflow the conversion to nanoseconds.
    private func after(_ delay: Duration, _ work: @escaping @Sendable () -> Void) {
        let seconds = min(max(0, delay.inSeconds), 1e9)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(seconds * 1e9)), execute: work)
    }
}
