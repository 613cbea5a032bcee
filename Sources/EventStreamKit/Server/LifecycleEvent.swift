/// Something that happened to a connection, or to the hub's link with its cluster, as
/// reported by ``EventServer/lifecycleEvents(bufferSize:)``.
public enum LifecycleEvent<SourceID: Hashable & Sendable>: Sendable {
    /// A client connected without `Last-Event-ID`.
    case connected(source: SourceID, connection: ConnectionID)
    /// A client connected with `Last-Event-ID`: it is catching up. If the ID was in the
    /// backlog, what it missed is already queued for it.
    case reconnected(source: SourceID, connection: ConnectionID, lastEventID: String)
    /// A client's `Last-Event-ID` was unknown or older than the backlog: events it missed
    /// could not be replayed (unless the recovery hook supplied them).
    case replayGap(source: SourceID, connection: ConnectionID, lastEventID: String)
    /// A client was too slow and its overflow policy discarded `count` frames.
    case droppedEvents(source: SourceID, connection: ConnectionID, count: Int)
    /// A connection ended.
    case disconnected(source: SourceID, connection: ConnectionID, reason: DisconnectReason)
    /// In a cluster: the link with the cluster's log changed (an outage, an epoch change, a
    /// gap, a malformed record), reported once each.
    case cluster(ClusterEvent)
}

extension LifecycleEvent: Equatable where SourceID: Equatable {}
