import Dispatch
import Synchronization

/// What an ``EventSource`` shares between its iterator and other threads, behind a lock:
/// the observable state, and the means to interrupt a read or a reconnection wait.
final class EventSourceStorage: Sendable {
    private struct State {
        var readyState = EventSource.ReadyState.connecting
        var lastEventID: String
        var isClosed = false
        var isIterated = false
        /// Ends the current connection's pending read; set while a connection is open.
        var interrupt: (@Sendable () -> Void)?
        var sleeper: CheckedContinuation<Void, any Error>?
        var sleepGeneration = 0
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

    func update(readyState: EventSource.ReadyState) {
        state.withLock { $0.readyState = readyState }
    }

    func update(lastEventID: String) {
        state.withLock { $0.lastEventID = lastEventID }
    }

    /// Installs the interrupt of a newly opened connection and marks the source open.
    ///
    /// - Returns: `false` if the source was closed meanwhile.
    func attach(_ interrupt: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { state in
            guard !state.isClosed else { return false }
            state.interrupt = interrupt
            state.readyState = .open
            return true
        }
    }

    /// Removes the interrupt before its connection is released, so that a late
    /// ``close()`` cannot touch a descriptor number that was reused.
    func detach() {
        state.withLock { $0.interrupt = nil }
    }

    /// Ends the source: a pending read returns end of body, a reconnection wait ends now.
    func close() {
        let sleeper = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            state.isClosed = true
            state.readyState = .closed
            // Under the lock: the iterator detaches (under the lock) before closing the socket.
            state.interrupt?()
            state.interrupt = nil
            defer { state.sleeper = nil }
            return state.sleeper
        }
        sleeper?.resume()
    }

    /// Marks the source closed without interrupting anything (the iterator ended).
    func finish() {
        state.withLock { state in
            state.readyState = .closed
            state.interrupt = nil
        }
    }

    /// Waits `delay` before reconnecting; returns early when the source is closed.
    ///
    /// - Throws: `CancellationError` as soon as the task is cancelled.
    func sleep(for delay: Duration) async throws {
        let nanoseconds = Int(max(0, delay.inSeconds) * 1e9)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let generation = state.withLock { state -> Int? in
                    guard !state.isClosed else { return nil }
                    state.sleepGeneration += 1
                    state.sleeper = continuation
                    return state.sleepGeneration
                }
                guard let generation else { return continuation.resume() }
                if Task.isCancelled {
                    wake(generation: nil, throwing: CancellationError())
                } else {
                    DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
                        wake(generation: generation, throwing: nil)
                    }
                }
            }
        } onCancel: {
            wake(generation: nil, throwing: CancellationError())
        }
    }

    /// Resumes the sleeper: the one of `generation` (a timer), or any (cancellation).
    private func wake(generation: Int?, throwing error: (any Error)?) {
        let sleeper = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard generation == nil || generation == state.sleepGeneration else { return nil }
            defer { state.sleeper = nil }
            return state.sleeper
        }
        if let error { sleeper?.resume(throwing: error) } else { sleeper?.resume() }
    }
}
