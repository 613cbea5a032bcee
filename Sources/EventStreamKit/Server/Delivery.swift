/// One frame on its way to one connection, with what the queue needs to know about it.
struct Delivery: Sendable {
    /// The shared, already encoded bytes.
    let frame: EventFrame
    /// The event's name (`nil` for `message`), which the coalescing policy keys on.
    let name: String?
    /// The event's ID, if it has one: delivering it ends the client's replay window
    /// (the connection's ``EventConnection/clientLastEventID`` is cleared).
    let id: String?
    /// Heartbeats and other comments: never coalesced with events, and they do not
    /// count as activity.
    let isComment: Bool

    init(frame: EventFrame, name: String?, id: String?, isComment: Bool = false) {
        self.frame = frame
        self.name = name
        self.id = id
        self.isComment = isComment
    }
}

extension Delivery {
    /// What a dropped queue slot holds until the slot is cut off: no frame, no name, no ID,
    /// so that a dropped frame's bytes are freed at once, not at the next compaction.
    static let vacated = Delivery(frame: EventFrame(encodedBytes: []), name: nil, id: nil, isComment: true)
}
