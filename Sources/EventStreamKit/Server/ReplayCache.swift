/// Events read back from the cluster's log for replays, decoded and encoded once per node:
/// when many clients replay the same stretch of the log at once (the clients of a node that
/// died, reconnecting to this one), they share one frame per event instead of each holding
/// its own copy. A pure value, bounded in bytes; the oldest entries go first.
struct ReplayCache<SourceID: Hashable & Sendable> {
    /// One record of the log: the event to replay and who it is for, or `nil` for a record
    /// that is not replayed (a control record, or one that could not be read).
    struct Entry {
        var event: (delivery: Delivery, recipients: Recipients<SourceID>)?
        var bytes: Int { event?.delivery.frame.count ?? 0 }
    }

    let byteLimit: Int
    private(set) var epoch: String?
    private var entries: [UInt64: Entry] = [:]
    /// Sequence numbers in the order they were added: the eviction order.
    private var order: [UInt64] = []
    private var head = 0
    private(set) var bytes = 0

    init(byteLimit: Int) {
        self.byteLimit = byteLimit
    }

    var count: Int { entries.count }

    /// The entry of record `sequence` of `epoch`, if cached.
    func entry(_ sequence: UInt64, epoch: String) -> Entry? {
        self.epoch == epoch ? entries[sequence] : nil
    }

    /// Caches `entry` as record `sequence` of `epoch` (a new epoch empties the cache), then
    /// forgets the oldest entries until the cache is within its byte limit again.
    mutating func insert(_ entry: Entry, sequence: UInt64, epoch: String) {
        if self.epoch != epoch {
            self = ReplayCache(byteLimit: byteLimit)
            self.epoch = epoch
        }
        guard entries[sequence] == nil else { return }
        entries[sequence] = entry
        order.append(sequence)
        bytes += entry.bytes
        while bytes > byteLimit, head < order.count {
            if let evicted = entries.removeValue(forKey: order[head]) { bytes -= evicted.bytes }
            head += 1
        }
        if head > 1024, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
