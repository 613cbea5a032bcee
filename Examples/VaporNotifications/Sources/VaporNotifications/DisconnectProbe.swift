import Synchronization
import Vapor

/// One timer for all the app's event streams, to notice clients that have left.
///
/// Vapor 4 tells a streaming response body nothing when its client goes away: it runs the
/// body's closure in a task it never cancels, and a route cannot reach the connection's
/// channel ([vapor/vapor#3354](https://github.com/vapor/vapor/issues/3354)). Only the next
/// write fails. So every `period` the probe writes an empty buffer to each stream it watches
/// (NIO's chunked encoder frames nothing for it: nothing reaches the wire), and a write that
/// fails calls that stream's `onGone`.
///
/// One task wakes per period for the whole app, and hands each event loop one batch. A
/// stream has no task or timer of its own: it costs a dictionary entry, and one empty write
/// per period on its event loop.
final class DisconnectProbe: Sendable {
    /// How often every stream is probed: a client that left is noticed within one period.
    /// The default, 500 ms, is the built-in server's sweep period (Docs/Decisions/0003).
    let period: Duration

    private struct Watched: Sendable {
        let writer: any BodyStreamWriter
        let onGone: @Sendable () -> Void
    }

    private let watched = Mutex<(next: Int, streams: [Int: Watched])>((0, [:]))

    init(period: Duration = .milliseconds(500)) {
        self.period = period
    }

    /// Starts probing `writer`; `onGone` runs on its event loop when a probe fails.
    /// - Returns: The ticket for ``unwatch(_:)``; `nil` if the writer cannot be written from an
    ///   event loop (Vapor's own writer can), and then only the stream's own writes notice.
    func watch(_ writer: any AsyncBodyStreamWriter, onGone: @escaping @Sendable () -> Void) -> Int? {
        guard let writer = writer as? any BodyStreamWriter else { return nil }
        return watched.withLock { state in
            state.next += 1
            state.streams[state.next] = Watched(writer: writer, onGone: onGone)
            return state.next
        }
    }

    /// Stops probing a stream, before its body writes `.end`.
    func unwatch(_ ticket: Int?) {
        guard let ticket else { return }
        _ = watched.withLock { $0.streams.removeValue(forKey: ticket) }
    }

    /// Probes every ``period`` until the calling task is cancelled.
    func run() async {
        while (try? await Task.sleep(for: period)) != nil {
            probe()
        }
    }

    private func probe() {
        let streams = watched.withLock { Array($0.streams.values) }
        for batch in Dictionary(grouping: streams, by: { ObjectIdentifier($0.writer.eventLoop) }).values {
            let loop = batch[0].writer.eventLoop
            loop.execute {
                for stream in batch {
                    let written = loop.makePromise(of: Void.self)
                    written.futureResult.whenFailure { _ in stream.onGone() }
                    stream.writer.write(.buffer(ByteBuffer()), promise: written)
                }
            }
        }
    }
}
