import Synchronization
import EventStreamKit

/// An event stream whose request was served, ready for a task of its own.
struct StreamHandoff: Sendable {
    let connection: any EventStreamConnection
    let sink: SocketSink
    let socket: Socket
    let handle: HTTPServer.Handle
}

/// Event streams waiting for their own task (see ``HTTPServer/run()``): connection tasks hand
/// them in, one loop takes them out. It ends only when closed and empty: cancellation does
/// not drop what it holds, so no stream is left without a task and a socket without an owner.
/// (Docs/Decisions/0002-stream-handoff.md)
final class StreamHandoffs: Sendable {
    private struct State {
        var pending: [StreamHandoff] = []
        var waiter: CheckedContinuation<[StreamHandoff], Never>?
        var isClosed = false
    }

    private let state = Mutex(State())

    /// Queues `handoff` for the loop. Returns `false` if the queue is closed: the caller
    /// keeps the stream.
    func hand(_ handoff: StreamHandoff) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<[StreamHandoff], Never>?) in
            guard !state.isClosed else { return (false, nil) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (true, waiter)
            }
            state.pending.append(handoff)
            return (true, nil)
        }
        waiter?.resume(returning: [handoff])
        return accepted
    }

    /// Everything handed in since the last call, waiting for at least one; empty once the
    /// queue is closed and drained. One caller at a time.
    func next() async -> [StreamHandoff] {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [StreamHandoff]? in
                if !state.pending.isEmpty || state.isClosed {
                    defer { state.pending = [] }
                    return state.pending
                }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// No more hand-offs: the loop ends once it has taken what is pending.
    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<[StreamHandoff], Never>? in
            state.isClosed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: [])
    }
}
