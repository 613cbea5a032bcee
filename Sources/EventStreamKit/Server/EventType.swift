/// A kind of event declared once, a name and a marshal closure, then sent as values
/// (seed 004's `NewEvent(name, marshal)`).
///
/// ```swift
/// struct Notification: Codable, Sendable { var title: String; var body: String }
///
/// extension EventType<Notification> {
///     static let notification = try! EventType("notification", marshal: .json())
/// }
///
/// try await server.send(Notification(title: "Hi", body: "…"), as: .notification, to: .source(userID))
/// ```
public struct EventType<Value>: Sendable {
    /// The event name, or `nil` for unnamed events (clients see them as `message`).
    public let name: String?
    /// How values become `data` bytes.
    public let marshal: EventMarshal<Value>

    /// Declares an event type.
    ///
    /// - Parameters:
    ///   - name: The event name. Must not contain CR or LF.
    ///   - marshal: How values become `data` bytes.
    /// - Throws: ``WireError`` with code ``WireError/Code/invalidEventName``.
    public init(_ name: String?, marshal: EventMarshal<Value>) throws(WireError) {
        if let name { try ServerSentEvent.validate(event: name) }
        self.name = name
        self.marshal = marshal
    }
}
