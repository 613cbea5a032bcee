import EventStreamKit
import Synchronization

/// A sink that keeps every chunk it is given, and can be told to fail.
final class RecordingSink: EventStreamSink {
    struct Closed: Error {}

    private let state = Mutex<(chunks: [[UInt8]], failing: Bool)>(([], false))

    var chunks: [[UInt8]] { state.withLock { $0.chunks } }
    var bytes: [UInt8] { chunks.flatMap { $0 } }
    var text: String { String(decoding: bytes, as: UTF8.self) }

    func fail() { state.withLock { $0.failing = true } }

    func write(_ chunk: [UInt8]) async throws {
        try state.withLock { state in
            if state.failing { throw Closed() }
            state.chunks.append(chunk)
        }
    }
}
