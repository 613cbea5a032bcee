/// One event as a client receives it, after the parser dispatched it: the same three
/// values a browser's `MessageEvent` carries for an `EventSource`.
public struct MessageEvent: Hashable, Sendable {
    /// The event type: the last `event` field's value, or `message` if there was none.
    public var type: String
    /// The `data` fields' values joined with LF.
    public var data: String
    /// The stream's last event ID when this event was dispatched: the most recent `id`
    /// field seen so far, in this event or an earlier one, or empty if there was none.
    public var lastEventID: String

    /// Creates an event value, as the parser does; useful in tests.
    public init(type: String = "message", data: String, lastEventID: String = "") {
        self.type = type
        self.data = data
        self.lastEventID = lastEventID
    }
}
