/// Receives what happens in a hub as it happens, for your own logging and metrics: streams
/// opened and closed, events published, frames dropped, replays and gaps, heartbeats and
/// failed writes.
///
/// Set one as ``EventServer/Configuration/observer``. Every method has an empty default
/// implementation: implement the ones you need. With no observer set the hub does no work
/// for them beyond one `nil` check per event, per connection or per heartbeat tick, never
/// one per recipient or per frame (Docs/Decisions/0010-observer-hooks.md).
///
/// ```swift
/// final class StreamMetrics: EventServerObserver {
///     let open = Atomic<Int>(0)
///     let published = Atomic<Int>(0)
///
///     func connectionOpened(source: String, connection: ConnectionID, lastEventID: String?) {
///         open.add(1, ordering: .relaxed)
///     }
///     func connectionClosed(source: String, connection: ConnectionID, reason: DisconnectReason, duration: Duration, bytesWritten: Int) {
///         open.subtract(1, ordering: .relaxed)
///     }
///     func eventPublished(name: String?, id: String, recipients: Int) {
///         published.add(1, ordering: .relaxed)
///     }
/// }
///
/// var configuration = EventServer<String>.Configuration()
/// configuration.observer = StreamMetrics()
/// let hub = EventServer<String>(configuration: configuration)
/// ```
///
/// - Warning: The methods are called synchronously on the hub's actor (``writeFailed(source:connection:error:)``
///   too: it is reported to the hub first), in the order things happen. While one runs, the
///   hub sends nothing to anyone: do only quick, non-blocking work, such as bumping an
///   `Atomic` or a counter under a `Mutex`, or yielding to an `AsyncStream` with a bounded
///   buffer that another task drains. Never wait for I/O, a lock held across I/O, or the hub
///   itself (the methods are synchronous, so they cannot `await` it).
public protocol EventServerObserver<SourceID>: Sendable {
    /// The hub's source ID type.
    associatedtype SourceID: Hashable & Sendable

    /// A client's stream was registered (``EventServer/connect(source:channels:lastEventID:)``).
    ///
    /// - Parameters:
    ///   - source: Who the client is.
    ///   - connection: The stream's ID in the hub.
    ///   - lastEventID: The client's `Last-Event-ID`, if it sent one (a reconnection).
    func connectionOpened(source: SourceID, connection: ConnectionID, lastEventID: String?)

    /// A stream ended and the hub forgot it.
    ///
    /// - Parameters:
    ///   - source: Who the client was.
    ///   - connection: The stream's ID in the hub.
    ///   - reason: Why it ended.
    ///   - duration: From ``connectionOpened(source:connection:lastEventID:)`` to now.
    ///   - bytesWritten: What the stream wrote to its client by now. A stream the server ended
    ///     with a final flush (a close, a replacement) may still be writing its last frames,
    ///     which are not counted here.
    func connectionClosed(source: SourceID, connection: ConnectionID, reason: DisconnectReason, duration: Duration, bytesWritten: Int)

    /// An event was queued for its recipients: once per event (a send of several values
    /// reports each), once per node in a cluster (each node reports the events it delivers,
    /// whoever sent them).
    ///
    /// - Parameters:
    ///   - name: The event's `event` field, if any.
    ///   - id: The event's ID.
    ///   - recipients: The streams it was queued for on this hub (0 when nobody was listening).
    func eventPublished(name: String?, id: String, recipients: Int)

    /// Frames meant for a stream were discarded.
    ///
    /// - Parameters:
    ///   - source: Who the client is.
    ///   - connection: The stream's ID in the hub.
    ///   - count: How many frames.
    ///   - policy: The hub's ``EventServer/Configuration/overflowPolicy``.
    ///   - reason: `nil` when the overflow policy discarded them and the stream goes on
    ///     (``OverflowPolicy/dropOldest``, ``OverflowPolicy/coalesce``); otherwise why the
    ///     stream ended with these frames unwritten (``DisconnectReason/slowClient`` under
    ///     ``OverflowPolicy/disconnect`` or a suspended sender's timeout,
    ///     ``DisconnectReason/clientGone`` after a failed write, ``DisconnectReason/shutdown``…).
    func framesDropped(source: SourceID, connection: ConnectionID, count: Int, policy: OverflowPolicy, reason: DisconnectReason?)

    /// A reconnecting client's `Last-Event-ID` was found: what it missed was queued for it
    /// before live events.
    ///
    /// - Parameters:
    ///   - source: Who the client is.
    ///   - connection: The stream's ID in the hub.
    ///   - lastEventID: The ID it sent.
    ///   - events: The events replayed to it (0 when it had missed nothing).
    func replayServed(source: SourceID, connection: ConnectionID, lastEventID: String, events: Int)

    /// A reconnecting client's `Last-Event-ID` could not be replayed (unknown, or older than
    /// the backlog): it gets ``EventServer/Configuration/gapEvent`` and
    /// ``EventServer/Configuration/recovery``'s events, if any, then live events.
    ///
    /// - Parameters:
    ///   - source: Who the client is.
    ///   - connection: The stream's ID in the hub.
    ///   - lastEventID: The ID it sent.
    func replayGap(source: SourceID, connection: ConnectionID, lastEventID: String)

    /// The heartbeat timer queued a keep-alive for the streams that had been silent: once
    /// per tick of ``EventServer/Configuration/heartbeatInterval`` that sent any.
    ///
    /// - Parameter count: The streams that got one.
    func heartbeatsSent(count: Int)

    /// Writing to a stream's client failed (``EventConnection/run(writingTo:)``'s sink threw);
    /// the stream ends with ``DisconnectReason/clientGone``.
    ///
    /// - Parameters:
    ///   - source: Who the client is.
    ///   - connection: The stream's ID in the hub.
    ///   - error: What the sink threw.
    func writeFailed(source: SourceID, connection: ConnectionID, error: any Error)
}

/// Empty defaults: an observer implements only what it needs.
extension EventServerObserver {
    /// Does nothing.
    public func connectionOpened(source: SourceID, connection: ConnectionID, lastEventID: String?) {}
    /// Does nothing.
    public func connectionClosed(source: SourceID, connection: ConnectionID, reason: DisconnectReason, duration: Duration, bytesWritten: Int) {}
    /// Does nothing.
    public func eventPublished(name: String?, id: String, recipients: Int) {}
    /// Does nothing.
    public func framesDropped(source: SourceID, connection: ConnectionID, count: Int, policy: OverflowPolicy, reason: DisconnectReason?) {}
    /// Does nothing.
    public func replayServed(source: SourceID, connection: ConnectionID, lastEventID: String, events: Int) {}
    /// Does nothing.
    public func replayGap(source: SourceID, connection: ConnectionID, lastEventID: String) {}
    /// Does nothing.
    public func heartbeatsSent(count: Int) {}
    /// Does nothing.
    public func writeFailed(source: SourceID, connection: ConnectionID, error: any Error) {}
}
