/// The most recent events, already encoded, with whom each was addressed to: what a
/// reconnecting client is replayed from. A ring bounded in entries and in bytes; the
/// oldest entries go first, until both limits hold. The newest entry is always kept (if
/// the capacity is not 0), however large: the bytes held are at most `byteLimit` plus one
/// entry. Pure value, owned by the hub actor.
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

        /// The bytes this entry keeps alive: its frame, or every per-recipient frame.
        var byteCount: Int {
            if let frame { return frame.count }
            return frames.values.reduce(0) { $0 + $1.count }
        }

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
    /// The bytes of the entries held.
    private(set) var byteCount = 0
    /// The most bytes held before the oldest entries are evicted (the newest stays).
    let byteLimit: Int
    private var sequenceByID: [String: UInt64] = [:]

    init(capacity: Int, byteLimit: Int) {
        ring = Array(repeating: nil, count: max(capacity, 0))
        self.byteLimit = max(byteLimit, 0)
    }

    var capacity: Int { ring.count }

    mutating func append(_ entry: Entry) {
        guard capacity > 0 else { return }
        if count == capacity { evictOldest() }
        ring[(head + count) % capacity] = entry
        count += 1
        byteCount += entry.byteCount
        sequenceByID[entry.id] = entry.sequence
        while byteCount > byteLimit && count > 1 { evictOldest() }
    }

    private mutating func evictOldest() {
        guard let oldest = ring[head] else { return }
        // A supplied ID may repeat: only forget it if it still points at this entry.
        if sequenceByID[oldest.id] == oldest.sequence { sequenceByID[oldest.id] = nil }
        byteCount -= oldest.byteCount
        ring[head] = nil
        head = (head + 1) % capacity
        count -= 1
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

    /// Changes the capacity, keeping the newest entries that fit; the byte limit stays.
    mutating func resize(to newCapacity: Int) {
        let kept = entries(after: 0).suffix(max(newCapacity, 0))
        self = Backlog(capacity: newCapacity, byteLimit: byteLimit)
        for entry in kept { append(entry) }
    }
}
