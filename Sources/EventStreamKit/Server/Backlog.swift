/// The most recent events, already encoded, with whom each was addressed to: what a
/// reconnecting client is replayed from. A ring of bounded capacity; the oldest entry
/// goes first. Pure value, owned by the hub actor.
struct Backlog<SourceID: Hashable & Sendable> {
    struct Entry {
        let sequence: UInt64
        let id: String
        let name: String?
        let recipients: Recipients<SourceID>
        /// The frame every recipient got, or `nil` for per-recipient payloads.
        let frame: EventFrame?
        /// Per-recipient payloads: the frame each source got.
        let frames: [SourceID: EventFrame]

        func frame(for source: SourceID, channels: Set<String>) -> EventFrame? {
            if let frame { return recipients.includes(source: source, channels: channels) ? frame : nil }
            return frames[source]
        }
    }

    /// Where a `Last-Event-ID` stands in the backlog.
    enum Position: Equatable {
        /// Found: replay what came after this sequence number.
        case after(UInt64)
        /// Unknown or evicted: the events since cannot be replayed.
        case gap
    }

    private var ring: [Entry?]
    private var head = 0
    private(set) var count = 0
    private var sequenceByID: [String: UInt64] = [:]

    init(capacity: Int) {
        ring = Array(repeating: nil, count: max(capacity, 0))
    }

    var capacity: Int { ring.count }

    mutating func append(_ entry: Entry) {
        guard capacity > 0 else { return }
        if count == capacity {
            if let oldest = ring[head] { sequenceByID[oldest.id] = nil }
            ring[head] = entry
            head = (head + 1) % capacity
        } else {
            ring[(head + count) % capacity] = entry
            count += 1
        }
        sequenceByID[entry.id] = entry.sequence
    }

    func position(of lastEventID: String) -> Position {
        sequenceByID[lastEventID].map(Position.after) ?? .gap
    }

    /// The entries after `sequence`, oldest first.
    func entries(after sequence: UInt64) -> [Entry] {
        var result: [Entry] = []
        for offset in 0..<count {
            if let entry = ring[(head + offset) % capacity], entry.sequence > sequence { result.append(entry) }
        }
        return result
    }

    /// Changes the capacity, keeping the newest entries that fit.
    mutating func resize(to newCapacity: Int) {
        let kept = entries(after: 0).suffix(max(newCapacity, 0))
        self = Backlog(capacity: newCapacity)
        for entry in kept { append(entry) }
    }
}
