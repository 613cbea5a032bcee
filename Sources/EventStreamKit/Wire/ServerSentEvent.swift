/// One event as a server sends it: optional `id`, `event` name, `data`, `retry`
/// interval and comment lines.
///
/// A `ServerSentEvent` is valid by construction: the initialisers throw a ``WireError``
/// for a name or ID that would break the stream, so no value of this type can inject a
/// field or end an event early. `data` may contain any text, line breaks included: the
/// encoder writes one `data:` line per line of it, and a client joins them again with LF.
///
/// ```swift
/// let event = try ServerSentEvent(id: "42", event: "greeting", data: "hello\nworld")
/// let frame = EventFrame(event)
/// // id: 42
/// // event: greeting
/// // data: hello
/// // data: world
/// //
/// ```
public struct ServerSentEvent: Hashable, Sendable {
    /// The event ID, which a client sends back as `Last-Event-ID` when it reconnects.
    /// An empty ID resets the client's last event ID.
    public let id: String?
    /// The event name (the `event` field). A client dispatches an event with no name as
    /// `message`.
    public let event: String?
    /// The payload bytes, UTF-8 text on the wire, or `nil` for an event with no `data`
    /// field. Empty data (`[]`) is one empty `data:` line, which a client does dispatch.
    public let data: [UInt8]?
    /// The reconnection time to tell the client, written in whole milliseconds.
    public let retry: Duration?
    /// Comment lines, written before the fields. A client ignores them; they keep idle
    /// connections alive through proxies.
    public let comments: [String]

    /// Creates an event whose data is text.
    ///
    /// - Parameters:
    ///   - id: The event ID. Must not contain CR, LF or NUL.
    ///   - event: The event name. Must not contain CR or LF.
    ///   - data: The payload. Any text: CR, LF and CRLF split it into several `data:` lines.
    ///   - retry: The reconnection time to send. Must not be negative.
    ///   - comments: Comment lines. A comment with a line break becomes several comment lines.
    /// - Throws: ``WireError`` with code ``WireError/Code/invalidID``,
    ///   ``WireError/Code/invalidEventName`` or ``WireError/Code/invalidRetry``.
    public init(
        id: String? = nil,
        event: String? = nil,
        data: String?,
        retry: Duration? = nil,
        comments: [String] = []
    ) throws(WireError) {
        try self.init(id: id, event: event, bytes: data.map { Array($0.utf8) }, retry: retry, comments: comments)
    }

    /// Creates an event whose data is raw bytes, for payloads that are already encoded
    /// (by a marshal closure, say). Clients decode the bytes as UTF-8.
    ///
    /// - Parameters:
    ///   - id: The event ID. Must not contain CR, LF or NUL.
    ///   - event: The event name. Must not contain CR or LF.
    ///   - bytes: The payload bytes. CR, LF and CRLF split it into several `data:` lines.
    ///   - retry: The reconnection time to send. Must not be negative.
    ///   - comments: Comment lines. A comment with a line break becomes several comment lines.
    /// - Throws: ``WireError`` with code ``WireError/Code/invalidID``,
    ///   ``WireError/Code/invalidEventName`` or ``WireError/Code/invalidRetry``.
    public init(
        id: String? = nil,
        event: String? = nil,
        bytes: [UInt8]?,
        retry: Duration? = nil,
        comments: [String] = []
    ) throws(WireError) {
        if let id { try Self.validate(id: id) }
        if let event { try Self.validate(event: event) }
        if let retry, retry < .zero { throw .invalidRetry(retry) }
        self.id = id
        self.event = event
        self.data = bytes
        self.retry = retry
        self.comments = comments
    }

    /// An event that carries only comment lines: a heartbeat, say. Comments cannot
    /// break the stream, so this does not throw.
    public static func comment(_ text: String) -> ServerSentEvent {
        ServerSentEvent(unchecked: nil, event: nil, data: nil, retry: nil, comments: [text])
    }

    /// The payload as text, decoding invalid UTF-8 as U+FFFD, or `nil` if there is none.
    public var text: String? { data.map { String(decoding: $0, as: UTF8.self) } }

    private init(unchecked id: String?, event: String?, data: [UInt8]?, retry: Duration?, comments: [String]) {
        self.id = id
        self.event = event
        self.data = data
        self.retry = retry
        self.comments = comments
    }

    /// Checks that `id` can be written as an `id` field that a client will keep.
    ///
    /// - Throws: ``WireError/Code/invalidID`` if it contains CR, LF or NUL (a client
    ///   ignores an `id` with NUL, so sending one would silently lose it).
    public static func validate(id: String) throws(WireError) {
        if id.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) { throw .invalidID(id) }
    }

    /// Checks that `event` can be written as an `event` field.
    ///
    /// - Throws: ``WireError/Code/invalidEventName`` if it contains CR or LF.
    public static func validate(event: String) throws(WireError) {
        if event.utf8.contains(where: { $0 == 13 || $0 == 10 }) { throw .invalidEventName(event) }
    }
}
