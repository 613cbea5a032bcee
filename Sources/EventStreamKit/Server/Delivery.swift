/// One frame on its way to one connection, with what the queue needs to know about it.
struct Delivery: Sendable {
    /// The shared, already encoded bytes.
    let frame: EventFrame
    /// The event's name (`nil` for `message`), which the coalescing policy keys on.
    let name: String?
    /// The event's ID, if it has one: delivering it ends the client's replay window
    /// (the connection's ``EventConnection/clientLastEventID`` is cleared).
    let id: String?
    /// A frame that carries no event: a comment (heartbeats), a `retry` field, the
    /// cluster's ID-only heartbeat, a vacated slot. Never coalesced with events, and not
    /// counted as activity.
    let isControl: Bool

    init(frame: EventFrame, name: String?, id: String?, isControl: Bool = false) {
        self.frame = frame
        self.name = name
        self.id = id
        self.isControl = isControl
    }
}

extension Delivery {
    /// What a dropped queue slot holds until the slot is cut off: no frame, no name, no ID,
    /// so that a dropped frame's bytes are freed at once, not at the next compaction.
    static let vacated = Delivery(frame: EventFrame(encodedBytes: []), name: nil, id: nil, isControl: true)
}
