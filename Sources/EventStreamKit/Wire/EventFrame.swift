/// An encoded event: the exact bytes a client receives, immutable and shared.
///
/// Encoding happens once per send, however many connections receive it: every
/// recipient holds the same frame, which costs a reference count, not a copy.
///
/// ```swift
/// let frame = EventFrame(try ServerSentEvent(event: "tick", data: "1"))
/// print(String(decoding: frame.bytes, as: UTF8.self)) // "event: tick\ndata: 1\n\n"
/// ```
public struct EventFrame: Hashable, Sendable {
    /// The bytes in `text/event-stream` format.
    public let bytes: [UInt8]

    /// Encodes `event` once.
    public init(_ event: ServerSentEvent) {
        self.bytes = event.encoded
    }

    /// A frame of comment lines, as used for heartbeats.
    public init(comment: String) {
        self.init(.comment(comment))
    }

    /// Wraps bytes that are already in `text/event-stream` format.
    ///
    /// - Warning: The bytes are sent as they are. Use this only for output of
    ///   ``ServerSentEvent/encode(into:)`` or bytes you have checked yourself.
    public init(encodedBytes: [UInt8]) {
        self.bytes = encodedBytes
    }

    /// The number of bytes on the wire.
    public var count: Int { bytes.count }
}
