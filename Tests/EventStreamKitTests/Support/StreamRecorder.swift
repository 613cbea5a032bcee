@testable import EventStreamKit
import Synchronization

/// Reads one connection's ``EventConnection/body`` in a task of its own, parses it with our
/// parser, and lets a test wait for a number of events.
final class StreamRecorder: Sendable {
    private struct State {
        var events: [MessageEvent] = []
        var comments = 0
        var retries: [Duration] = []
        /// The parser's last event ID: also moved by events that dispatch nothing (an ID alone).
        var lastEventID = ""
        var ended = false
        var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)

    init<SourceID>(_ connection: EventConnection<SourceID>) {
        let reading = Task { [self] in
            var parser = EventStreamParser()
            for await chunk in connection.body {
                let elements = (try? parser.parse(chunk)) ?? []
                let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    state.lastEventID = parser.lastEventID
                    for element in elements {
                        switch element {
                        case .event(let event): state.events.append(event)
                        case .comment: state.comments += 1
                        case .retry(let interval): state.retries.append(interval)
                        }
                    }
                    return Self.takeReady(&state)
                }
                for waiter in ready { waiter.resume() }
            }
            let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.ended = true
                defer { state.waiters.removeAll() }
                return state.waiters.map(\.continuation)
            }
            for waiter in ready { waiter.resume() }
        }
        task.withLock { $0 = reading }
    }

    var events: [MessageEvent] { state.withLock { $0.events } }
    var data: [String] { events.map(\.data) }
    var comments: Int { state.withLock { $0.comments } }
    var retries: [Duration] { state.withLock { $0.retries } }
    var ended: Bool { state.withLock { $0.ended } }
    var lastEventID: String { state.withLock { $0.lastEventID } }

    /// Waits until at least `count` events arrived (or the stream ended), then returns them all.
    @discardableResult
    func waitForEvents(_ count: Int, timeout: Duration = .seconds(10)) async throws -> [MessageEvent] {
        try await withDeadline(timeout, "\(count) events") { [self] in
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.events.count >= count || state.ended { return true }
                    state.waiters.append((count, continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        }
        return events
    }

    /// Waits for the stream to end.
    func waitForEnd(timeout: Duration = .seconds(10)) async throws {
        _ = try await waitForEvents(.max, timeout: timeout)
    }

    /// Stops reading: cancels the task, which ends the connection.
    func cancel() async {
        let reading = task.withLock { $0 }
        reading?.cancel()
        await reading?.value
    }

    private static func takeReady(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        var ready: [CheckedContinuation<Void, Never>] = []
        state.waiters.removeAll { waiter in
            guard state.events.count >= waiter.count else { return false }
            ready.append(waiter.continuation)
            return true
        }
        return ready
    }
}
