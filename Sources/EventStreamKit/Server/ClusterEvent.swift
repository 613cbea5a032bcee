/// Something that happened to a hub's link with its cluster, as reported by
/// ``EventServer/lifecycleEvents(bufferSize:)`` in ``LifecycleEvent/cluster(_:)``.
///
/// Each is reported once, when it happens (an outage once when it starts and once when it
/// ends, however many reconnection attempts it took), and counted in ``ClusterStatus``.
public enum ClusterEvent: Sendable, Equatable {
    /// The node lost the cluster's log (Redis): it cannot read it, so it delivers nothing
    /// until ``logRestored(after:)``. Sends fail meanwhile (``EventServerError/Code/logUnavailable``).
    /// Also reported when Redis cannot be reached as the node starts.
    case logUnavailable(reason: String)
    /// The node reads the log again, `after` the outage began; it resumes where it was.
    case logRestored(after: Duration)
    /// The log's epoch changed (Redis lost its data, or a failover rolled it back): events of
    /// the old epoch cannot be replayed, so the node restarted its streams. `from` is `nil`
    /// when the node had not seen an epoch yet.
    case epochChanged(from: String?, to: String)
    /// Events were trimmed from the log before this node could read them: the events after
    /// the ID `after` up to, not including, the ID `next` were not delivered by this node
    /// (`missed` of them), and the node restarted its streams.
    case gap(after: String, next: String, missed: UInt64)
    /// A record in the log that this node cannot read (written by something else, or by a
    /// newer version): it was skipped.
    case malformedRecord(id: String)
}
