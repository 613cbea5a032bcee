/// Where an event stream's bytes go: a socket, an HTTP response body, a test buffer.
///
/// Implementations must write chunks in the order they are given, and should throw
/// once the peer is gone, so that the writer's owner can stop.
///
/// The requirements are `nonisolated(nonsending)`: a conforming `write` marked so runs on the
/// caller's executor, and a connection actor writing to it does not hop per write. A plain
/// `async` implementation conforms too.
public protocol EventStreamSink: Sendable {
    /// Writes one chunk of stream bytes.
    ///
    /// - Parameter chunk: Bytes in `text/event-stream` format, never empty.
    /// - Throws: Any error once the stream cannot be written any more.
    nonisolated(nonsending) func write(_ chunk: [UInt8]) async throws

    /// Writes several encoded frames, in order, as if they were one chunk.
    ///
    /// ``EventConnection/run(writingTo:)`` calls this once per wake-up with everything that
    /// was queued. The default implementation joins the frames into one array and calls
    /// ``write(_:)`` (a single frame's bytes are passed on as they are, not copied).
    /// Implement it to write frames without joining them, e.g. with `writev`: a frame is
    /// shared by every connection it was sent to, and a joined copy costs memory per
    /// connection for as long as the write takes.
    ///
    /// - Parameter frames: Frames in `text/event-stream` format, in the order they must be
    ///   written. A frame may be empty (write nothing for it); the array is never empty.
    /// - Throws: Any error once the stream cannot be written any more.
    nonisolated(nonsending) func write(contentsOf frames: [EventFrame]) async throws
}

extension EventStreamSink {
    /// Joins `frames` into one chunk and writes it with ``write(_:)``; a single frame goes
    /// as it is, without a copy. Writes nothing if every frame is empty.
    ///
    /// - Parameter frames: Frames in `text/event-stream` format, in order.
    /// - Throws: The error of ``write(_:)``.
    public nonisolated(nonsending) func write(contentsOf frames: [EventFrame]) async throws {
        if frames.count == 1 {
            guard frames[0].count > 0 else { return }
            try await write(frames[0].bytes)
            return
        }
        var chunk: [UInt8] = []
        chunk.reserveCapacity(frames.reduce(0) { $0 + $1.count })
        for frame in frames { chunk.append(contentsOf: frame.bytes) }
        guard !chunk.isEmpty else { return }
        try await write(chunk)
    }
}

/// Writes one event stream to a sink: the low-level building block under the hub and
/// the HTTP server, also usable on its own.
///
/// Every `send` only appends to a buffer; ``flush()`` hands everything buffered to the
/// sink in one write. So a burst costs one write, not one per event.
///
/// ```swift
/// var writer = EventStreamWriter(sink: sink)
/// writer.retry(.seconds(5))
/// try writer.send(42, as: .text, id: "1", event: "answer")
/// writer.comment("still here")
/// try await writer.flush()
/// try await writer.close()   // a final empty `close` event, flushed
/// ```
public struct EventStreamWriter<Sink: EventStreamSink>: Sendable {
    /// The sink the bytes go to.
    public let sink: Sink
    private var buffer: [UInt8] = []

    /// Creates a writer with an empty buffer.
    public init(sink: Sink) {
        self.sink = sink
    }

    /// The number of bytes buffered and not yet flushed.
    public var bufferedByteCount: Int { buffer.count }

    /// Buffers an event.
    public mutating func send(_ event: ServerSentEvent) {
        event.encode(into: &buffer)
    }

    /// Buffers an already encoded frame.
    public mutating func send(_ frame: EventFrame) {
        buffer.append(contentsOf: frame.bytes)
    }

    /// Buffers a value encoded by a marshal closure.
    ///
    /// - Parameters:
    ///   - value: The payload value.
    ///   - marshal: How to encode it.
    ///   - id: The event ID. Must not contain CR, LF or NUL.
    ///   - event: The event name. Must not contain CR or LF.
    /// - Throws: ``WireError`` if the closure fails or the ID or name is invalid;
    ///   nothing is buffered then.
    public mutating func send<Value>(
        _ value: Value,
        as marshal: EventMarshal<Value>,
        id: String? = nil,
        event: String? = nil
    ) throws(WireError) {
        send(try marshal.event(value, id: id, event: event))
    }

    /// Buffers a comment (several comment lines if `text` has line breaks).
    public mutating func comment(_ text: String) {
        send(.comment(text))
    }

    /// Buffers a `retry` field that sets the client's reconnection time.
    ///
    /// - Parameter interval: Sent in whole milliseconds; a negative interval is sent as 0.
    public mutating func retry(_ interval: Duration) {
        // Cannot throw: the interval is clamped to zero, and there is no ID or name.
        if let event = try? ServerSentEvent(bytes: nil, retry: max(interval, .zero)) { send(event) }
    }

    /// Writes everything buffered to the sink in one write, if anything is buffered.
    ///
    /// - Throws: The sink's error. The buffer is emptied either way.
    public mutating func flush() async throws {
        guard !buffer.isEmpty else { return }
        let chunk = buffer
        buffer.removeAll(keepingCapacity: true)
        try await sink.write(chunk)
    }

    /// Sends a final event with empty data (named `close` unless you choose another
    /// name), then flushes.
    ///
    /// - Parameter event: The final event's name. Must not contain CR or LF.
    /// - Throws: ``WireError`` for an invalid name, or the sink's error.
    public mutating func close(event: String = "close") async throws {
        send(try ServerSentEvent(event: event, bytes: []))
        try await flush()
    }
}
