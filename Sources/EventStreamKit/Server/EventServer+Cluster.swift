extension EventServer {
    /// How a hub joins a cluster: every hub with the same Redis and `name` shares one event
    /// log, in one order, so a send on any node reaches every node's connections and any node
    /// can replay after any node's event ID.
    ///
    /// Sends and delivery go through the log; replay works from each node's cache of the
    /// log, from the log itself, and for clients ahead of a node's tail; heartbeats carry the
    /// log's ID. Each node also keeps its connection counts in Redis
    /// (``EventServer/clusterClientCount(source:)``), reports its link with the log in
    /// ``EventServer/lifecycleEvents(bufferSize:)`` and ``EventServer/clusterStatus``, and
    /// acts on close records (``EventServer/closeEverywhere(source:)``).
    public struct Cluster: Sendable {
        /// `redis://[[user]:password@]host[:port][/database]`.
        public var redisURL: String
        /// The log's name: hubs with the same name share it.
        public var name: String
        /// About how many events Redis keeps (`XADD … MAXLEN ~`): the replay window.
        public var logLength: Int
        /// How long a send waits for Redis before it throws.
        public var timeout: Duration
        /// How often a node refreshes its presence in Redis (its liveness and its
        /// connection counts, for ``EventServer/clusterClientCount(source:)``); a node that
        /// stops refreshing stops counting after three intervals. Changes are written as they
        /// happen, coalesced, besides. Default: 1 s.
        public var presenceInterval: Duration
        let encodeSource: @Sendable (SourceID) -> String
        let decodeSource: @Sendable (String) -> SourceID?

        /// A cluster whose source IDs travel through the log as `encodeSource` writes them.
        public init(
            redisURL: String,
            name: String = "events",
            logLength: Int = 10_000,
            timeout: Duration = .seconds(2),
            presenceInterval: Duration = .seconds(1),
            encodeSource: @escaping @Sendable (SourceID) -> String,
            decodeSource: @escaping @Sendable (String) -> SourceID?
        ) {
            self.redisURL = redisURL
            self.name = name
            self.logLength = logLength
            self.timeout = timeout
            self.presenceInterval = max(presenceInterval, .milliseconds(10))
            self.encodeSource = encodeSource
            self.decodeSource = decodeSource
        }
    }

    /// The cluster's log as this hub uses it.
    struct ClusterLink: Sendable {
        let log: RedisEventLog
        let presence: ClusterPresence
        let presenceInterval: Duration
        /// Wakes the presence writer: a change to write, or the interval's refresh.
        let presenceWakes: AsyncStream<Void>
        let presenceWake: AsyncStream<Void>.Continuation
        let encodeSource: @Sendable (SourceID) -> String
        let decodeSource: @Sendable (String) -> SourceID?
    }

    /// Appends events to the cluster's log; they are delivered when the tail reads them
    /// back, on this node as on every other.
    func appendToCluster(_ link: ClusterLink, _ records: [ClusterRecord]) async throws -> [String] {
        try await awaitClusterTail(link)
        let epoch: String
        let first: UInt64
        do {
            (epoch, first) = try await link.log.append(records.map(\.bytes))
        } catch {
            clusterAppendFailures += 1
            throw EventServerError(.logUnavailable, "the cluster's event log did not confirm the event (\(error)): most likely it was not sent, but a failure after Redis received it cannot tell, and a retry may then deliver it twice")
        }
        let last = first + UInt64(records.count - 1)
        if epoch == clusterEpoch {
            clusterKnownEnd = max(clusterKnownEnd, last)
            if clusterCursor >= last {
                clusterLastRoundTrip = .zero  // the tail was quicker than the append's reply
                clusterPendingRoundTrip = nil
            } else {
                clusterPendingRoundTrip = (epoch, last, ContinuousClock.now)
            }
        }
        return records.indices.map { "\(epoch)-\(first + UInt64($0))" }
    }

    /// Where this node stands in its cluster; `nil` for a hub that is not in one.
    ///
    /// ```swift
    /// if let status = await hub.clusterStatus, !status.isLogReachable || status.lag > 1_000 {
    ///     // report the node unhealthy
    /// }
    /// ```
    public var clusterStatus: ClusterStatus? {
        guard cluster != nil else { return nil }
        return ClusterStatus(
            epoch: clusterEpoch, deliveredSequence: clusterCursor, knownEndSequence: max(clusterKnownEnd, clusterCursor),
            isLogReachable: clusterIsReachable, lastRoundTrip: clusterLastRoundTrip, outages: clusterOutages,
            epochChanges: clusterEpochChanges, gaps: clusterGaps, malformedRecords: clusterMalformedRecords, appendFailures: clusterAppendFailures
        )
    }

    /// Waits, at most the cluster's timeout, until this node reads the log (its tail has a
    /// starting point). Before that, an event appended would lie before the point the tail
    /// starts from, and this node's own clients would never get it; and a stream opened would
    /// miss what other nodes append until then.
    /// - Throws: ``EventServerError/Code/logUnavailable`` if the tail has not started in time.
    func awaitClusterTail(_ link: ClusterLink) async throws(EventServerError) {
        guard clusterEpoch == nil else { return }
        let deadline = ContinuousClock.now + link.log.timeout
        // Polled: only a node that started while Redis was unreachable ever waits here.
        while clusterEpoch == nil {
            guard ContinuousClock.now < deadline, !Task.isCancelled else {
                throw EventServerError(.logUnavailable, "this node does not read the cluster's event log yet (Redis was unreachable when it started); nothing was sent")
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Reads the cluster's log until cancelled: from its end when the hub starts (retrying
    /// until Redis answers), then every record in order.
    nonisolated func tailCluster(_ link: ClusterLink) async {
        var start: RedisEventLog.Cursor?
        var wait = Duration.milliseconds(100)
        var isDown = false
        while start == nil, !Task.isCancelled {
            do {
                start = try await link.log.end()
            } catch {
                if !isDown {
                    isDown = true
                    await logWentDown("\(error)")
                }
                try? await Task.sleep(for: wait)
                wait = min(wait * 2, .seconds(5))
            }
        }
        guard let start else { return }
        await clusterStarted(at: start)
        await link.log.tail(from: start) { event in await self.handleCluster(event, link: link) }
    }

    private func clusterStarted(at cursor: RedisEventLog.Cursor) {
        clusterEpoch = cursor.epoch
        clusterCursor = cursor.sequence
        clusterKnownEnd = cursor.sequence
        logCameBack()
    }

    private func logWentDown(_ reason: String) {
        clusterIsReachable = false
        guard clusterOutageStart == nil else { return }
        clusterOutages += 1
        clusterOutageStart = .now
        emit(.cluster(.logUnavailable(reason: reason)))
    }

    private func logCameBack() {
        clusterIsReachable = true
        guard let start = clusterOutageStart else { return }
        clusterOutageStart = nil
        emit(.cluster(.logRestored(after: .now - start)))
    }

    private func handleCluster(_ event: RedisEventLog.TailEvent, link: ClusterLink) async {
        switch event {
        case .records(let records):
            if let last = records.last?.sequence { clusterKnownEnd = max(clusterKnownEnd, last) }
            await deliver(records, link: link)
        case .epochChanged(let from, let epoch):
            // What this node's clients hold is from a log that is gone: they reconnect, and
            // their old IDs get the gap signal, once each.
            clusterEpoch = epoch
            clusterCursor = 0
            clusterKnownEnd = 0
            clusterPendingRoundTrip = nil
            backlog = Backlog(capacity: backlog.capacity, byteLimit: backlog.byteLimit)
            clusterEpochChanges += 1
            emit(.cluster(.epochChanged(from: from, to: epoch)))
            reconnectAll()
        case .gap(let after, let next):
            clusterGaps += 1
            let epoch = clusterEpoch ?? ""
            emit(.cluster(.gap(after: "\(epoch)-\(after)", next: "\(epoch)-\(next)", missed: next > after ? next - after - 1 : 0)))
            reconnectAll()
        case .disconnected(let error):
            logWentDown(error.description)
        case .reconnected:
            logCameBack()
        }
    }

    /// One record of the log, read and decoded, before it is delivered.
    private struct DecodedRecord {
        let stored: RedisEventStream.Record
        let id: String
        /// The record, or `nil` if it could not be read.
        let record: ClusterRecord?
        /// The event to deliver: `nil` for a control record, or one that could not be read.
        let event: (frame: EventFrame, name: String?)?
    }

    private static func decode(_ stored: RedisEventStream.Record) -> DecodedRecord {
        let id = "\(stored.epoch)-\(stored.sequence)"
        guard let record = try? ClusterRecord(bytes: stored.payload) else { return DecodedRecord(stored: stored, id: id, record: nil, event: nil) }
        guard record.kind == .event else { return DecodedRecord(stored: stored, id: id, record: record, event: nil) }
        let event = try? ServerSentEvent(id: id, event: record.name, bytes: record.data, retry: record.retry, comments: record.comments)
        return DecodedRecord(stored: stored, id: id, record: record, event: event.map { (EventFrame($0), record.name) })
    }

    /// Delivers the records of one read of the log to this node's connections, once each, in
    /// order. Consecutive events for the same audience go out as one fan-out (each recipient
    /// gets them in one step, as a burst sent with `send(contentsOf:)` does), which is what
    /// keeps a node up with a busy log; anything else ends the run.
    ///
    /// A run is recorded (backlog, cursor) and enqueued in one actor turn: a client that
    /// connects between two runs finds in the backlog exactly what was already queued for the
    /// others, so nothing is replayed and then delivered again.
    private func deliver(_ records: [RedisEventStream.Record], link: ClusterLink) async {
        var run: [DecodedRecord] = []
        for stored in records {
            let decoded = Self.decode(stored)
            if decoded.event != nil, let first = run.first, first.record?.audience == decoded.record?.audience {
                run.append(decoded)
                continue
            }
            await deliverRun(run, link: link)
            run = []
            if decoded.event != nil {
                run = [decoded]
            } else {
                await deliverOther(decoded, link: link)
            }
        }
        await deliverRun(run, link: link)
    }

    /// Moves the cursor to `stored`, unless this node delivered it already.
    private func advance(to stored: RedisEventStream.Record) -> Bool {
        guard stored.sequence > clusterCursor || stored.epoch != clusterEpoch else { return false }
        clusterEpoch = stored.epoch
        clusterCursor = stored.sequence
        if let pending = clusterPendingRoundTrip, pending.epoch == stored.epoch, stored.sequence >= pending.sequence {
            clusterLastRoundTrip = .now - pending.appended
            clusterPendingRoundTrip = nil
        }
        return true
    }

    /// Delivers events for one audience.
    private func deliverRun(_ run: [DecodedRecord], link: ClusterLink) async {
        guard let audience = run.first?.record else { return }
        let recipients: Recipients<SourceID> = audience.recipients(decode: link.decodeSource)
        // Records a decoded event (backlog, cursor) and returns its delivery; what the caller
        // does with it must follow in the same actor turn.
        func take(_ decoded: DecodedRecord) -> Delivery? {
            guard advance(to: decoded.stored), let event = decoded.event else { return nil }
            record(Backlog.Entry(sequence: decoded.stored.sequence, id: decoded.id, name: event.name, recipients: recipients, frame: event.frame, frames: [:]))
            return Delivery(frame: event.frame, name: event.name, id: decoded.id)
        }
        if clusterFloors.isEmpty {
            let deliveries = run.compactMap(take)
            guard !deliveries.isEmpty else { return }
            let reached = await fanOut(deliveries, to: recipients)
            if let observer {
                for delivery in deliveries { observer.eventPublished(name: delivery.name, id: delivery.id ?? "", recipients: reached) }
            }
            return
        }
        // Some clients have seen part of the log already (they came from a node ahead of
        // this one): each event skips them up to their floor, one event at a time, since a
        // client may connect with a floor during any of these fan-outs.
        for decoded in run {
            guard let delivery = take(decoded) else { continue }
            let sequence = decoded.stored.sequence
            let floors = clusterFloors
            let reached = await fanOut(delivery, to: recipients) { floors[$0].map { $0 >= sequence } ?? false }
            observer?.eventPublished(name: delivery.name, id: decoded.id, recipients: reached)
            clusterFloors = clusterFloors.filter { $0.value > sequence }
        }
    }

    /// A record that is not an event: a control record, or one that could not be read.
    private func deliverOther(_ decoded: DecodedRecord, link: ClusterLink) async {
        guard advance(to: decoded.stored) else { return }
        guard let record = decoded.record, decoded.event == nil, record.kind != .event else {
            return noteMalformed(decoded.id)
        }
        switch record.kind {
        case .event:
            break
        case .close:
            // A control record: never delivered to a client, nor kept for replay.
            let recipients: Recipients<SourceID> = record.recipients(decode: link.decodeSource)
            for connection in registry.ids(recipients) { end(connection, reason: .closedByServer, drain: true) }
        }
    }

}

extension EventServer {
    /// How to replay after a `Last-Event-ID` that this node's cache does not hold.
    enum ClusterReplay {
        /// Not an ID of the log's current epoch: the gap signal.
        case none
        /// The client has seen the log up to this sequence, beyond what this node delivered.
        case ahead(UInt64)
        /// Read the log after `after`, up to what this node delivered.
        case fetch(after: UInt64, through: UInt64)
    }

    private func noteMalformed(_ id: String) {
        clusterMalformedRecords += 1
        emit(.cluster(.malformedRecord(id: id)))
    }

    func clusterReplay(of lastEventID: String) -> ClusterReplay {
        guard cluster != nil, let epoch = clusterEpoch, let dash = lastEventID.lastIndex(of: "-"),
              lastEventID[..<dash] == epoch, let sequence = UInt64(lastEventID[lastEventID.index(after: dash)...]) else { return .none }
        if sequence >= clusterCursor { return .ahead(sequence) }
        return .fetch(after: sequence, through: clusterCursor)
    }

    /// The records after `after` through `through` addressed to this client, from the log;
    /// `nil` if they cannot all be had (trimmed, or Redis unreachable): the gap signal then.
    func replayFromCluster(_ link: ClusterLink, after: UInt64, through: UInt64, source: SourceID, channels: Set<String>) async -> [Delivery]? {
        guard let records = try? await link.log.range(after: after, through: through),
              records.first?.sequence == after + 1, records.last?.sequence == through else { return nil }
        var deliveries: [Delivery] = []
        var bytes = 0
        for stored in records {
            let entry = replayCache.entry(stored.sequence, epoch: stored.epoch) ?? {
                let entry = Self.replayEntry(stored, link: link)
                replayCache.insert(entry, sequence: stored.sequence, epoch: stored.epoch)
                return entry
            }()
            guard let event = entry.event, event.recipients.includes(source: source, channels: channels) else { continue }
            // A replay is owed to the client beyond its queue's limits: bounded here as the
            // backlog bounds a local one, more is a gap, not memory without bound.
            bytes += event.delivery.frame.count
            guard bytes <= configuration.backlogByteLimit else { return nil }
            deliveries.append(event.delivery)
        }
        // Owed frames count against the limit shared by every queue, as queued ones do: past
        // it (a mass reconnect far back, or clients that replay and never read), a gap.
        guard bytes <= queueBudget.room else { return nil }
        return deliveries
    }

    /// A record of the log as a replay needs it: decoded and encoded once.
    private static func replayEntry(_ stored: RedisEventStream.Record, link: ClusterLink) -> ReplayCache<SourceID>.Entry {
        guard let decoded = try? ClusterRecord(bytes: stored.payload), decoded.kind == .event,
              let event = try? ServerSentEvent(id: "\(stored.epoch)-\(stored.sequence)", event: decoded.name, bytes: decoded.data, retry: decoded.retry, comments: decoded.comments)
        else { return ReplayCache.Entry(event: nil) }
        return ReplayCache.Entry(event: (Delivery(frame: EventFrame(event), name: decoded.name, id: event.id), decoded.recipients(decode: link.decodeSource)))
    }

    /// Whether the log has a record `sequence` in the current epoch: whether a client that
    /// claims to have seen it, beyond what this node delivered, can have. One read of one
    /// record (shared with other replays); `true` if Redis cannot say, so that a real claim
    /// never costs a false gap.
    func clusterLogHolds(_ sequence: UInt64, _ link: ClusterLink) async -> Bool {
        guard sequence > 0 else { return true }
        let epoch = clusterEpoch
        do {
            let records = try await link.log.range(after: sequence - 1, through: sequence)
            return records.first.map { $0.sequence == sequence && $0.epoch == epoch } ?? false
        } catch {
            return true
        }
    }

    /// The heartbeat of a connection in a cluster: an event with only the log's current ID
    /// (it dispatches nothing, but moves the client's last event ID forward), so that a
    /// client addressed rarely does not fall out of the log's window. One frame, shared by
    /// every connection it suits (see ``clusterHeartbeat(_:for:)``); `nil` outside a cluster.
    func clusterHeartbeat() -> Delivery? {
        guard cluster != nil, let epoch = clusterEpoch, clusterCursor > 0 else { return nil }
        guard let event = try? ServerSentEvent(id: "\(epoch)-\(clusterCursor)", bytes: nil) else { return nil }
        return Delivery(frame: EventFrame(event), name: nil, id: nil, isControl: true)
    }

    /// `shared` (from ``clusterHeartbeat()``) for connection `id`, or `nil` (a plain comment)
    /// for a client that has seen further than this node.
    func clusterHeartbeat(_ shared: Delivery?, for id: ConnectionID) -> Delivery? {
        guard let shared else { return nil }
        if let floor = clusterFloors[id], floor > clusterCursor { return nil }
        return shared
    }
}

extension EventServer.Cluster where SourceID: LosslessStringConvertible {
    /// A cluster whose source IDs travel through the log as their `description`.
    public init(redisURL: String, name: String = "events", logLength: Int = 10_000, timeout: Duration = .seconds(2), presenceInterval: Duration = .seconds(1)) {
        self.init(
            redisURL: redisURL, name: name, logLength: logLength, timeout: timeout, presenceInterval: presenceInterval,
            encodeSource: { $0.description }, decodeSource: { SourceID($0) }
        )
    }
}
