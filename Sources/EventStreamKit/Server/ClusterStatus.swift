/// Where a node of a cluster stands: how far it has delivered the cluster's log, whether it
/// can reach it, and what happened to it so far (``EventServer/clusterStatus``).
///
/// A snapshot, taken in one turn of the hub's actor: the values agree with each other.
public struct ClusterStatus: Sendable, Equatable {
    /// The log's epoch as this node knows it; `nil` until the node first read the log.
    public var epoch: String?
    /// The sequence number of the last record this node delivered (0: none in this epoch).
    public var deliveredSequence: UInt64
    /// The highest sequence number this node knows to exist in this epoch: from its own
    /// appends and from what its tail read. At least ``deliveredSequence``.
    public var knownEndSequence: UInt64
    /// Whether the node's tail is connected to Redis now.
    public var isLogReachable: Bool
    /// The tail's latency as this node's own sends measure it: from this node's most recent
    /// append returning to that record being delivered by this node's tail (`.zero` when
    /// the tail had delivered it before the append's reply came). `nil` until it was measured.
    public var lastRoundTrip: Duration?
    /// Outages of the log (``ClusterEvent/logUnavailable(reason:)``), counted once each.
    public var outages: Int
    /// Epoch changes (``ClusterEvent/epochChanged(from:to:)``).
    public var epochChanges: Int
    /// Gaps in what the tail read (``ClusterEvent/gap(after:next:missed:)``).
    public var gaps: Int
    /// Records that could not be read (``ClusterEvent/malformedRecord(id:)``).
    public var malformedRecords: Int
    /// Sends that threw because the log did not take them.
    public var appendFailures: Int

    /// Records the node knows exist and has not delivered yet: ``knownEndSequence`` minus
    /// ``deliveredSequence``.
    public var lag: UInt64 { knownEndSequence >= deliveredSequence ? knownEndSequence - deliveredSequence : 0 }

    /// A status; the hub makes them (``EventServer/clusterStatus``), this is for tests and
    /// for apps that show one.
    public init(
        epoch: String?, deliveredSequence: UInt64, knownEndSequence: UInt64, isLogReachable: Bool, lastRoundTrip: Duration?,
        outages: Int = 0, epochChanges: Int = 0, gaps: Int = 0, malformedRecords: Int = 0, appendFailures: Int = 0
    ) {
        self.epoch = epoch
        self.deliveredSequence = deliveredSequence
        self.knownEndSequence = knownEndSequence
        self.isLogReachable = isLogReachable
        self.lastRoundTrip = lastRoundTrip
        self.outages = outages
        self.epochChanges = epochChanges
        self.gaps = gaps
        self.malformedRecords = malformedRecords
        self.appendFailures = appendFailures
    }
}
