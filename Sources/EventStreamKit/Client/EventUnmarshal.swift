public import Foundation

/// How an event's `data` becomes a value: the client's mirror of ``EventMarshal``.
///
/// Built in: ``json(decoder:)`` for `Decodable` values and ``text`` for strings and
/// `LosslessStringConvertible` values. Anything else is a closure:
///
/// ```swift
/// let cents = EventUnmarshal<Int> { data in
///     guard let dollars = Double(data.dropFirst()) else { throw CocoaError(.formatting) }
///     return Int((dollars * 100).rounded())  // 19.99 * 100 is 1998.999…
/// }
/// let value = try MessageEvent(data: "$19.99").decode(cents) // 1999
/// ```
public struct EventUnmarshal<Value>: Sendable {
    private let body: @Sendable (String) throws -> Value

    /// Wraps a closure that decodes an event's data (its `data` lines joined with LF).
    public init(_ body: @escaping @Sendable (String) throws -> Value) {
        self.body = body
    }

    /// Decodes the data of `event`.
    ///
    /// - Throws: ``WireError`` with code ``WireError/Code/unmarshalFailed``, wrapping the
    ///   closure's error in ``WireError/underlying``.
    public func decode(_ event: MessageEvent) throws(WireError) -> Value {
        do {
            return try body(event.data)
        } catch {
            throw .unmarshalFailed(Value.self, eventType: event.type, error)
        }
    }
}

extension EventUnmarshal where Value: Decodable & Sendable {
    /// Decodes JSON.
    ///
    /// - Parameter decoder: The decoder to use; configure dates and keys on it.
    public static func json(decoder: JSONDecoder = JSONDecoder()) -> EventUnmarshal {
        EventUnmarshal { data in try decoder.decode(Value.self, from: Data(data.utf8)) }
    }
}

extension EventUnmarshal where Value: LosslessStringConvertible & Sendable {
    /// Decodes the data as the value's description: strings as they are, numbers in decimal.
    public static var text: EventUnmarshal {
        EventUnmarshal { data in
            guard let value = Value(data) else { throw TextDecodingError(text: data) }
            return value
        }
    }
}

/// The data did not read as a value of the expected type.
struct TextDecodingError: Error, CustomStringConvertible {
    let text: String
    var description: String { "\(text.prefix(80).debugDescription) is not a valid value" }
}

extension MessageEvent {
    /// Decodes this event's data with `unmarshal`.
    ///
    /// - Throws: ``WireError`` with code ``WireError/Code/unmarshalFailed``.
    public func decode<Value>(_ unmarshal: EventUnmarshal<Value>) throws(WireError) -> Value {
        try unmarshal.decode(self)
    }
}

extension EventSource {
    /// The events of one type, decoded: the client's mirror of sending with an ``EventType``.
    ///
    /// ```swift
    /// struct Notification: Codable, Sendable { var title: String }
    /// for try await note in source.values(of: "notification", as: .json(Notification.self)) {
    ///     print(note.title)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - type: The event type to keep (others are skipped); `nil` keeps every event.
    ///   - unmarshal: How to decode each event's data.
    /// - Returns: A sequence that throws, and ends, at the first event that fails to decode
    ///   (a ``WireError``); decode ``MessageEvent``s yourself to skip bad ones instead.
    public func values<Value>(of type: String? = "message", as unmarshal: EventUnmarshal<Value>) -> DecodedEvents<Value> {
        DecodedEvents(source: self, type: type, unmarshal: unmarshal)
    }
}

/// The decoded events of one type from an ``EventSource``; see ``EventSource/values(of:as:)``.
public struct DecodedEvents<Value>: AsyncSequence, Sendable {
    public typealias Element = Value
    public typealias Failure = any Error

    let source: EventSource
    let type: String?
    let unmarshal: EventUnmarshal<Value>

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(events: source.makeAsyncIterator(), type: type, unmarshal: unmarshal)
    }

    /// Reads events and decodes those of the wanted type.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var events: EventSource.AsyncIterator
        let type: String?
        let unmarshal: EventUnmarshal<Value>

        /// The next decoded value, or `nil` at the end of the stream.
        ///
        /// - Throws: ``WireError`` if an event fails to decode, or what the stream throws.
        public mutating func next(isolation actor: isolated (any Actor)? = #isolation) async throws -> Value? {
            while let event = try await events.next(isolation: actor) {
                if type == nil || event.type == type { return try unmarshal.decode(event) }
            }
            return nil
        }

        public mutating func next() async throws -> Value? {
            try await next(isolation: nil)
        }
    }
}

extension EventUnmarshal {
    /// Decodes JSON as `type`; the same as ``json(decoder:)``, with the type spelled out.
    public static func json(_ type: Value.Type, decoder: JSONDecoder = JSONDecoder()) -> EventUnmarshal where Value: Decodable & Sendable {
        .json(decoder: decoder)
    }
}
