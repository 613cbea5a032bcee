public import Foundation

/// How values of one type become an event's `data` bytes: a pluggable marshal closure.
///
/// Built in: ``json(encoder:)`` for `Encodable` values, ``text`` for strings and
/// `LosslessStringConvertible` values (numbers included), and ``bytes`` for raw bytes.
/// Anything else is a closure:
///
/// ```swift
/// struct Price: Sendable { var cents: Int }
/// let dollars = EventMarshal<Price> { price in Array("$\(price.cents / 100)".utf8) }
/// let event = try dollars.event(Price(cents: 1999), event: "price")
/// ```
///
/// The bytes may contain line breaks: the encoder turns each line into its own `data:`
/// line, so a marshal closure cannot break the stream.
public struct EventMarshal<Value>: Sendable {
    private let body: @Sendable (Value) throws -> [UInt8]

    /// Wraps a closure that encodes a value as bytes (UTF-8 text on the wire).
    ///
    /// - Parameter body: Encodes one value. An error it throws reaches the sender as a
    ///   ``WireError`` with code ``WireError/Code/marshalFailed``.
    public init(_ body: @escaping @Sendable (Value) throws -> [UInt8]) {
        self.body = body
    }

    /// Encodes `value`.
    ///
    /// - Returns: The payload bytes.
    /// - Throws: ``WireError`` with code ``WireError/Code/marshalFailed``, wrapping the
    ///   closure's error in ``WireError/underlying``.
    public func encode(_ value: Value) throws(WireError) -> [UInt8] {
        do {
            return try body(value)
        } catch {
            throw .marshalFailed(Value.self, error)
        }
    }

    /// Encodes `value` as the data of an event.
    ///
    /// - Parameters:
    ///   - value: The payload value.
    ///   - id: The event ID. Must not contain CR, LF or NUL.
    ///   - event: The event name. Must not contain CR or LF.
    /// - Returns: The event, ready to encode.
    /// - Throws: ``WireError`` if the closure fails or the ID or name is invalid.
    public func event(_ value: Value, id: String? = nil, event: String? = nil) throws(WireError) -> ServerSentEvent {
        try ServerSentEvent(id: id, event: event, bytes: encode(value))
    }
}

extension EventMarshal where Value: Encodable & Sendable {
    /// Encodes values as JSON.
    ///
    /// - Parameter encoder: The encoder to use; configure dates, keys and formatting on it.
    ///   Pretty-printed output is fine: each line becomes its own `data:` line.
    public static func json(encoder: JSONEncoder = JSONEncoder()) -> EventMarshal {
        EventMarshal { value in Array(try encoder.encode(value)) }
    }
}

extension EventMarshal where Value: LosslessStringConvertible & Sendable {
    /// Encodes values as their `description`: strings as they are, numbers in decimal.
    public static var text: EventMarshal {
        EventMarshal { value in Array(value.description.utf8) }
    }
}

extension EventMarshal where Value == [UInt8] {
    /// Sends bytes as they are. Clients decode them as UTF-8 (invalid sequences as U+FFFD).
    public static var bytes: EventMarshal {
        EventMarshal { $0 }
    }
}
