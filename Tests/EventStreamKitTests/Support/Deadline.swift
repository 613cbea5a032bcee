import Dispatch
import Synchronization

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Runs `body`, failing with ``TimedOut`` if it has not finished within `timeout`. The timer
/// is a Dispatch timer whose wait is cancelled with the task, so a body that finishes early
/// costs no waiting.
func withDeadline<T: Sendable>(
    _ timeout: Duration = .seconds(10),
    _ what: String = "a condition",
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await expire(after: timeout)
            throw TimedOut(what: what)
        }
        defer { group.cancelAll() }
        return try await group.next()!!
    }
}

/// Returns after `timeout`, or throws `CancellationError` as soon as the task is cancelled.
func expire(after timeout: Duration) async throws {
    struct State {
        var fired = false
        var continuation: CheckedContinuation<Void, any Error>?
    }
    let state = Mutex(State())
    let (seconds, attoseconds) = timeout.components
    let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
    @Sendable func fire(_ error: (any Error)?) {
        let waiting = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            state.fired = true
            defer { state.continuation = nil }
            return state.continuation
        }
        if let error { waiting?.resume(throwing: error) } else { waiting?.resume() }
    }
    try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let fired = state.withLock { state -> Bool in
                guard !state.fired else { return true }
                state.continuation = continuation
                return false
            }
            if fired {
                continuation.resume(throwing: CancellationError())
            } else {
                // Firing after cancellation finds no continuation and does nothing.
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { fire(nil) }
            }
        }
    } onCancel: {
        fire(CancellationError())
    }
}

/// Waits until `condition` holds, checking every millisecond, for at most `timeout`.
///
/// It sleeps between checks rather than yielding: the cooperative pool has one thread per
/// core (two here), and dozens of parallel tests each spinning on `Task.yield()` kept those
/// threads busy asking instead of letting the awaited work run. Under load (a load average of
/// 10 on two cores) that made waits of a few milliseconds time out after 10 s.
func waitUntil(
    _ what: String,
    timeout: Duration = .seconds(10),
    _ condition: @escaping @Sendable () async -> Bool
) async throws {
    try await withDeadline(timeout, what) {
        while await !condition() {
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}
