import Synchronization
/// The hub: holds every open event stream, keyed by a source ID of your choosing (a user
/// ID, a session ID), and sends events to them.
///
/// Sends go to one source, some sources, everyone but some, a channel, or everyone. Each
/// event is encoded once, gets the next ID, is kept in a bounded backlog, and is queued for
/// every recipient as the same shared frame. A client that reconnects with `Last-Event-ID`
/// gets what it missed from the backlog, exactly once and in order, before live events.
///
/// ```swift
/// let server = EventServer<String>()
/// let notification = try EventType<String>("notification", marshal: .text)
///
/// // In the request handler, after authenticating the user:
/// let connection = try await server.connect(source: userID, lastEventID: request.lastEventID)
/// // stream `connection.body` as the response body, or:
/// let reason = try await connection.run(writingTo: sink)  // why it ended
///
/// // Anywhere else:
/// try await server.send("You have mail", as: notification, to: .source(userID))
/// ```
///
/// Call ``run()`` once, in a task that lives as long as the server: it drives heartbeats,
/// and when cancelled it shuts the hub down gracefully.
///
/// - Note: Every connection's queue is bounded (``Configuration/queueCapacity``). A client
///   that does not keep up is handled by ``Configuration/overflowPolicy`` and never delays
///   delivery to the others.
public actor EventServer<SourceID: Hashable & Sendable> {
    /// What the registry keeps per connection.
    struct Entry {
        let connection: EventConnection<SourceID>
        /// The connection's mailbox, held here too so that a fan-out touches one object per
        /// recipient, not two.
        let mailbox: Mailbox

        init(connection: EventConnection<SourceID>) {
            self.connection = connection
            self.mailbox = connection.mailbox
        }
    }

    enum Phase { case running, stopping, stopped }

    /// The configuration the hub was created with. The retry interval and the backlog
    /// capacity can change at run time; ``retry`` and ``backlogCapacity`` have the current values.
    public nonisolated let configuration: Configuration

    /// Every open connection, by ID, source and channel.
    var registry = Registry<SourceID, Entry>()
    /// ``Configuration/observer``, if any: every hook is behind one `nil` check of it.
    nonisolated let observer: (any EventServerObserver<SourceID>)?
    /// ``Configuration/totalQueueByteLimit``, shared by every connection's mailbox.
    nonisolated let queueBudget: QueueBudget
    /// ``Configuration/welcomeEvent`` without its ID, encoded once.
    let welcome: Delivery?
    /// The cluster's log, if the hub is in one.
    nonisolated let cluster: ClusterLink?
    /// The cluster log's epoch and the last sequence this node delivered.
    var clusterEpoch: String?
    var clusterCursor: UInt64 = 0
    /// Connections whose client has seen the log further than this node has delivered (it
    /// came from a node further ahead): records up to their floor are not delivered to them.
    var clusterFloors: [ConnectionID: UInt64] = [:]
    /// Records read back from the log for replays, shared by the clients that replay them.
    var replayCache: ReplayCache<SourceID>
    /// Counted once each, reported by ``clusterStatus``.
    var clusterEpochChanges = 0
    var clusterGaps = 0
    var clusterOutages = 0
    var clusterMalformedRecords = 0
    var clusterAppendFailures = 0
    /// The highest sequence of this epoch this node knows exists (its appends, its tail's reads).
    var clusterKnownEnd: UInt64 = 0
    /// Whether the tail is connected, and since when it is not (while it is in an outage).
    var clusterIsReachable = false
    var clusterOutageStart: ContinuousClock.Instant?
    /// This node's most recent append, until its tail delivers it: the round trip's start.
    var clusterPendingRoundTrip: (epoch: String, sequence: UInt64, appended: ContinuousClock.Instant)?
    var clusterLastRoundTrip: Duration?
    /// Sources whose count changed since the presence writer last took them (cluster only).
    var presenceChanged: Set<SourceID> = []
    var backlog: Backlog<SourceID>
    var sequence: UInt64 = 0
    var nextConnectionID: UInt64 = 0
    var phase = Phase.running
    var lifecycleSubscribers: [Int: AsyncStream<LifecycleEvent<SourceID>>.Continuation] = [:]
    var teeSubscribers: [Int: AsyncStream<PublishedEvent<SourceID>>.Continuation] = [:]
    var nextSubscriberID = 0
    var emptyWaiters: [CheckedContinuation<Void, Never>] = []
    var isRunning = false
    nonisolated let stopSignal: AsyncStream<Void>
    let stopContinuation: AsyncStream<Void>.Continuation

    /// The reconnection time sent to new streams, if any.
    public internal(set) var retry: Duration?
    /// The ID of the most recent event sent, if any.
    public internal(set) var lastEventID: String?
    /// Events sent since the hub was created (each send counts once, however many recipients).
    public internal(set) var eventsSent = 0
    /// Frames queued for clients (a send to 100 connections counts 100).
    public internal(set) var deliveries = 0
    /// Frames dropped by overflow policies, closes and shutdown.
    public internal(set) var droppedFrames = 0
    /// Bytes written by every connection, counted as they are written: reading it costs
    /// the same with 10 streams or 10,000 (a `/stats` flood used to walk them all).
    nonisolated let writtenTotal = Atomic<Int>(0)

    /// Bytes every connection's queue holds now, frames being written included: what
    /// ``Configuration/totalQueueByteLimit`` bounds.
    public nonisolated var queuedBytes: Int { queueBudget.usedBytes }

    /// Bytes written to clients since the hub was created, by every connection, open or
    /// ended. O(1): a running total, not a walk over the streams.
    public var bytesWritten: Int {
        writtenTotal.load(ordering: .relaxed)
    }

    /// Creates a hub.
    ///
    /// - Parameter configuration: Limits and policies; see ``Configuration``.
    public init(configuration: Configuration = Configuration()) {
        self.init(configuration: configuration, link: nil)
    }

    /// Creates a hub that is one node of a cluster: its sends go through the cluster's event
    /// log in Redis, and it delivers what the log gives back, its own sends included, while
    /// ``run()`` runs.
    ///
    /// - Throws: ``EventServerError`` with ``EventServerError/Code/invalidCluster`` for a
    ///   malformed `redisURL`. Nothing connects yet: ``run()`` does.
    public init(configuration: Configuration = Configuration(), cluster: Cluster) throws(EventServerError) {
        let endpoint: RedisEndpoint
        do {
            endpoint = try RedisEndpoint(url: cluster.redisURL)
        } catch {
            throw EventServerError(.invalidCluster, error.message)
        }
        let log = RedisEventLog(endpoint: endpoint, stream: RedisEventStream(name: cluster.name, maxLength: cluster.logLength), timeout: cluster.timeout)
        let presence = ClusterPresence(name: cluster.name, interval: cluster.presenceInterval)
        let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.init(configuration: configuration, link: ClusterLink(
            log: log, presence: presence, presenceInterval: cluster.presenceInterval, presenceWakes: wakes, presenceWake: wake,
            encodeSource: cluster.encodeSource, decodeSource: cluster.decodeSource
        ))
    }

    private init(configuration: Configuration, link: ClusterLink?) {
        cluster = link
        precondition(configuration.queueCapacity > 0, "queueCapacity must be at least 1")
        precondition(configuration.queueByteLimit > 0, "queueByteLimit must be at least 1")
        precondition(configuration.totalQueueByteLimit > 0, "totalQueueByteLimit must be at least 1")
        self.configuration = configuration
        observer = configuration.observer
        queueBudget = QueueBudget(limit: configuration.totalQueueByteLimit)
        self.retry = configuration.retry
        welcome = configuration.welcomeEvent.flatMap { event in
            (try? ServerSentEvent(event: event.event, bytes: event.data, retry: event.retry, comments: event.comments))
                .map { Delivery(frame: EventFrame($0), name: $0.event, id: nil) }
        }
        self.backlog = Backlog(capacity: configuration.backlogCapacity, byteLimit: configuration.backlogByteLimit)
        replayCache = ReplayCache(byteLimit: configuration.backlogByteLimit)
        (stopSignal, stopContinuation) = AsyncStream.makeStream()
    }

    /// The response headers for an event stream: the content type, no caching or
    /// transforming by proxies, no buffering by nginx, and ``Configuration/extraHeaders``.
    public nonisolated var responseHeaders: [(name: String, value: String)] {
        [
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("Cache-Control", "no-cache, no-transform"),
            ("X-Accel-Buffering", "no"),
        ] + configuration.extraHeaders
    }

    /// Opens a stream for a client.
    ///
    /// The returned connection is registered at once: events sent from now on are queued
    /// for it. If `lastEventID` is in the backlog, every later event addressed to this
    /// source or its channels is queued first, in order; if it is not, the gap is reported
    /// (``LifecycleEvent/replayGap(source:connection:lastEventID:)``), the
    /// ``Configuration/gapEvent`` and the ``Configuration/recovery`` hook's events are queued
    /// first, and the client continues live.
    ///
    /// Read the stream with ``EventConnection/body`` or ``EventConnection/run(writingTo:)``.
    ///
    /// - Parameters:
    ///   - source: Who the client is. Authenticate before you call this.
    ///   - channels: Channels to subscribe to.
    ///   - lastEventID: The client's `Last-Event-ID` header, if any.
    /// - Returns: The connection.
    /// In a cluster, a node that does not read the log yet (it started while Redis was
    /// unreachable) waits for it, at most ``Cluster/timeout``: a stream opened before would
    /// miss what other nodes send until then.
    ///
    /// - Throws: ``EventServerError`` with code ``EventServerError/Code/shutDown`` or
    ///   ``EventServerError/Code/duplicateSource``; in a cluster also
    ///   ``EventServerError/Code/logUnavailable``.
    public func connect(source: SourceID, channels: Set<String> = [], lastEventID: String? = nil) async throws -> EventConnection<SourceID> {
        if let cluster { try await awaitClusterTail(cluster) }
        guard phase == .running else { throw EventServerError.shutDown }
        try applyDuplicatePolicy(for: source)

        let lastEventID = lastEventID.flatMap { $0.isEmpty ? nil : $0 }
        nextConnectionID += 1
        let id = ConnectionID(value: nextConnectionID)
        let mailbox = Mailbox(
            capacity: configuration.queueCapacity,
            byteLimit: configuration.queueByteLimit,
            policy: configuration.overflowPolicy,
            clientLastEventID: lastEventID,
            budget: queueBudget
        )
        let connection = EventConnection(
            id: id, source: source, channels: channels, lastEventID: lastEventID, mailbox: mailbox, server: self,
            openedAt: observer == nil ? nil : .now
        )

        var first: [Delivery] = []
        if let welcome { first.append(welcome) }
        if let retry { first.append(Self.retryDelivery(retry)) }
        var hasGap = false
        var replayed = 0
        var clusterFetch: (UInt64, UInt64)?
        var clusterClaim: UInt64?
        if let lastEventID {
            switch backlog.position(of: lastEventID) {
            case .after(let sequence):
                for entry in backlog.entries(after: sequence) {
                    if let frame = entry.frame(for: source, channels: channels) {
                        first.append(Delivery(frame: frame, name: entry.name, id: entry.id))
                        replayed += 1
                    }
                }
            case .gap:
                switch clusterReplay(of: lastEventID) {
                case .none: hasGap = true
                case .ahead(let floor):
                    clusterFloors[id] = floor
                    clusterClaim = floor
                case .fetch(let after, let through): clusterFetch = (after, through)
                }
            }
        }
        // Registered and primed in one actor turn: no send can slip between replay and live.
        if clusterFetch == nil { mailbox.prepend(first) }
        registry.insert(Entry(connection: connection), id: id, source: source, channels: channels)
        if let cluster { notePresenceChange(source, link: cluster) }
        if let (after, through) = clusterFetch, let cluster {
            // Older than this node's cache: from the log itself. Live records queue behind
            // meanwhile; the fetched ones go in front, as nobody reads before connect returns.
            if let fetched = await replayFromCluster(cluster, after: after, through: through, source: source, channels: channels) {
                mailbox.prepend(fetched)
                replayed = fetched.count
            } else {
                hasGap = true
            }
            mailbox.prepend(first)
        }
        if let claim = clusterClaim, let cluster, await !clusterLogHolds(claim, cluster) {
            // An ID the log never had (forged, or from before a rollback): the client gets the
            // gap signal and live events, instead of waiting for the log to reach its claim.
            clusterFloors[id] = nil
            hasGap = true
        }

        if let lastEventID {
            emit(.reconnected(source: source, connection: id, lastEventID: lastEventID))
        } else {
            emit(.connected(source: source, connection: id))
        }
        if let observer {
            observer.connectionOpened(source: source, connection: id, lastEventID: lastEventID)
            if let lastEventID {
                if hasGap {
                    observer.replayGap(source: source, connection: id, lastEventID: lastEventID)
                } else {
                    observer.replayServed(source: source, connection: id, lastEventID: lastEventID, events: replayed)
                }
            }
        }
        if hasGap, let lastEventID {
            emit(.replayGap(source: source, connection: id, lastEventID: lastEventID))
            await recoverGap(for: connection, lastEventID: lastEventID)
        }
        return connection
    }

    private func recoverGap(for connection: EventConnection<SourceID>, lastEventID: String) async {
        var recovered: [Delivery] = []
        if let gapEvent = configuration.gapEvent {
            recovered.append(Delivery(frame: EventFrame(gapEvent), name: gapEvent.event, id: gapEvent.id))
        }
        if let recovery = configuration.recovery {
            // Live sends during this await queue behind; the recovered events go in front,
            // which is safe because nobody reads the connection before connect() returns.
            for event in await recovery(connection.source, lastEventID) {
                recovered.append(Delivery(frame: EventFrame(event), name: event.event, id: event.id))
            }
        }
        connection.mailbox.prepend(recovered)
    }

    private func applyDuplicatePolicy(for source: SourceID) throws {
        let existing = registry.ids(source: source)
        guard !existing.isEmpty else { return }
        switch configuration.duplicateSourcePolicy.kind {
        case .allowMultiple:
            break
        case .refuseNew:
            throw EventServerError.duplicateSource(source)
        case .replaceExisting:
            for id in existing { end(id, reason: .replaced, drain: true) }
        case .limit(let count):
            for id in existing.prefix(max(0, existing.count - count + 1)) { end(id, reason: .evicted, drain: true) }
        }
    }

    /// Ends a connection from the server side and forgets it at once.
    func end(_ id: ConnectionID, reason: DisconnectReason, drain: Bool, last: Delivery? = nil) {
        guard let entry = registry[id] else { return }
        let dropped = entry.mailbox.finish(reason, drain: drain, last: last)
        noteDropped(dropped, entry: entry, reason: reason)
        forget(id, reason: reason)
    }

    /// Called by a connection's reader when its stream is over.
    func connectionEnded(_ id: ConnectionID) {
        guard let entry = registry[id] else { return }
        forget(id, reason: entry.mailbox.endReason ?? .clientGone)
    }

    private func forget(_ id: ConnectionID, reason: DisconnectReason) {
        guard let (entry, record) = registry.remove(id) else { return }
        if let cluster {
            clusterFloors[id] = nil
            notePresenceChange(record.source, link: cluster)
        }
        emit(.disconnected(source: record.source, connection: id, reason: reason))
        if let observer {
            let duration = entry.connection.openedAt.map { .now - $0 } ?? .zero
            observer.connectionClosed(source: record.source, connection: id, reason: reason, duration: duration, bytesWritten: entry.connection.bytesWritten)
        }
        if registry.isEmpty {
            for waiter in emptyWaiters { waiter.resume() }
            emptyWaiters.removeAll()
        }
    }

    /// Called by a connection's reader whose write failed, with the frames it took from its
    /// queue but could not write: counted even when the hub has already ended and forgotten
    /// the connection.
    func noteWriteFailed(_ error: any Error, unwritten count: Int, connection id: ConnectionID, source: SourceID) {
        observer?.writeFailed(source: source, connection: id, error: error)
        guard count > 0 else { return }
        droppedFrames += count
        emit(.droppedEvents(source: source, connection: id, count: count))
        observer?.framesDropped(source: source, connection: id, count: count, policy: configuration.overflowPolicy, reason: .clientGone)
    }

    /// Counts frames a connection's queue discarded: by its overflow policy (`reason` `nil`),
    /// or because it ended (`reason`).
    func noteDropped(_ count: Int, entry: Entry, reason: DisconnectReason?) {
        guard count > 0 else { return }
        droppedFrames += count
        emit(.droppedEvents(source: entry.connection.source, connection: entry.connection.id, count: count))
        observer?.framesDropped(source: entry.connection.source, connection: entry.connection.id, count: count, policy: configuration.overflowPolicy, reason: reason)
    }

    static func retryDelivery(_ interval: Duration) -> Delivery {
        var writer: [UInt8] = []
        // A retry field alone: a valid event that cannot fail to build.
        if let event = try? ServerSentEvent(bytes: nil, retry: max(interval, .zero)) { event.encode(into: &writer) }
        return Delivery(frame: EventFrame(encodedBytes: writer), name: nil, id: nil, isControl: true)
    }
}
