/// An error from the wire layer: an event that cannot be encoded safely, a payload
/// that a marshal closure could not encode, or a stream that breaks the parser's limits.
///
/// Match on ``code``; the ``description`` says what was wrong and, for a limit, what the
/// limit was.
///
/// ```swift
/// do {
///     _ = try ServerSentEvent(event: "bad\nname", data: "x")
/// } catch where error.code == .invalidEventName {  // typed throws: `error` is a WireError
///     print(error) // invalid event name "bad\nname": an event name must not contain CR or LF
/// }
/// ```
public struct WireError: Error, CustomStringConvertible, Sendable {
    /// What kind of wire error this is. New codes may be added in later versions.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case invalidEventName, invalidID, invalidRetry, marshalFailed, unmarshalFailed, lineTooLong, eventTooLarge
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// An event name contained CR or LF.
        public static let invalidEventName = Code(.invalidEventName)
        /// An event ID contained CR, LF or NUL.
        public static let invalidID = Code(.invalidID)
        /// A retry interval was negative.
        public static let invalidRetry = Code(.invalidRetry)
        /// A marshal closure threw; ``WireError/underlying`` holds its error.
        public static let marshalFailed = Code(.marshalFailed)
        /// An unmarshal closure threw; ``WireError/underlying`` holds its error.
        public static let unmarshalFailed = Code(.unmarshalFailed)
        /// The parser met a line longer than ``EventStreamParser/Limits/maxLineLength``.
        public static let lineTooLong = Code(.lineTooLong)
        /// The parser met an event whose data exceeded ``EventStreamParser/Limits/maxEventSize``.
        public static let eventTooLarge = Code(.eventTooLarge)

        public var description: String { String(describing: base) }
    }

    /// What kind of error this is.
    public let code: Code
    /// The error a marshal or unmarshal closure threw, for ``Code/marshalFailed`` and
    /// ``Code/unmarshalFailed``.
    public let underlying: (any Error)?
    private let message: String

    private init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }

    static func invalidEventName(_ name: String) -> WireError {
        WireError(.invalidEventName, "invalid event name \(name.debugDescription): an event name must not contain CR or LF")
    }

    static func invalidID(_ id: String) -> WireError {
        WireError(.invalidID, "invalid event ID \(id.debugDescription): an event ID must not contain CR, LF or NUL")
    }

    static func invalidRetry(_ retry: Duration) -> WireError {
        WireError(.invalidRetry, "invalid retry interval \(retry): it must not be negative")
    }

    static func marshalFailed(_ type: Any.Type, _ error: any Error) -> WireError {
        WireError(
            .marshalFailed,
            "marshalling a value of type \(type) failed: \(error)",
            underlying: error
        )
    }

    static func unmarshalFailed(_ type: Any.Type, eventType: String, _ error: any Error) -> WireError {
        WireError(
            .unmarshalFailed,
            "decoding a \(eventType.debugDescription) event as \(type) failed: \(error)",
            underlying: error
        )
    }

    static func lineTooLong(limit: Int) -> WireError {
        WireError(.lineTooLong, "event stream line longer than the limit of \(limit) bytes")
    }

    static func eventTooLarge(limit: Int) -> WireError {
        WireError(.eventTooLarge, "event data larger than the limit of \(limit) bytes")
    }
}
