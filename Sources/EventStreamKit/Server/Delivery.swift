/// One frame on its way to one connection, with what the queue needs to know about it.
struct Delivery: Sendable {
    /// One reference for the four fields: a delivery is copied into every recipient's queue
    /// and out again, and one retain per copy is cheaper than three (the frame's bytes, the
    /// name, the ID).
    private final class Storage: Sendable {
        let frame: EventFrame
        let name: String?
        let id: String?
        let isControl: Bool

        init(frame: EventFrame, name: String?, id: String?, isControl: Bool) {
            self.frame = frame
            self.name = name
            self.id = id
            self.isControl = isControl
        }
    }

    private let storage: Storage
    /// Bytes at the start of the frame already written: only the rest of a frame that a
    /// sender's write for an idle stream cut part-way, which the reader writes from here, so
    /// that it shares the frame instead of copying its tail (a client that stops reading would
    /// pin the copy until its write times out).
    let skip: Int

    /// The shared, already encoded bytes.
    var frame: EventFrame { storage.frame }
    /// The event's name (`nil` for `message`), which the coalescing policy keys on.
    var name: String? { storage.name }
    /// The event's ID, if it has one: delivering it ends the client's replay window
    /// (the connection's ``EventConnection/clientLastEventID`` is cleared).
    var id: String? { storage.id }
    /// A frame that carries no event: a comment (heartbeats), a `retry` field, the
    /// cluster's ID-only heartbeat, a vacated slot. Never coalesced with events, and not
    /// counted as activity.
    var isControl: Bool { storage.isControl }

    init(frame: EventFrame, name: String?, id: String?, isControl: Bool = false) {
        storage = Storage(frame: frame, name: name, id: id, isControl: isControl)
        skip = 0
    }

    private init(storage: Storage, skip: Int) {
        self.storage = storage
        self.skip = skip
    }

    /// The same frame with its first `count` bytes written: what is left to write of it.
    func skipping(_ count: Int) -> Delivery {
        Delivery(storage: storage, skip: count)
    }

    /// The bytes still to write.
    var unwrittenCount: Int { storage.frame.count - skip }
}

extension Delivery {
    /// What a dropped queue slot holds until the slot is cut off: no frame, no name, no ID,
    /// so that a dropped frame's bytes are freed at once, not at the next compaction.
    static let vacated = Delivery(frame: EventFrame(encodedBytes: []), name: nil, id: nil, isControl: true)
}
