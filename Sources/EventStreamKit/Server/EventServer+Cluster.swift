extension EventServer {
    /// How a hub joins a cluster: every hub with the same Redis and `name` shares one event
    /// log, in one order, so a send on any node reaches every node's connections and any node
    /// can replay after any node's event ID.
    ///
    /// Work in progress (issue 15): sends and delivery go through the log, and replay works
    /// from each node's cache of the log; replay of IDs older than the cache, clients ahead of
    /// a node's tail, and ID-carrying heartbeats are not done yet.
    public struct Cluster: Sendable {
        /// `redis://[[user]:password@]host[:port][/database]`.
        public var redisURL: String
        /// The log's name: hubs with the same name share it.
        public var name: String
        /// About how many events Redis keeps (`XADD … MAXLEN ~`): the replay window.
        public var logLength: Int
        /// How long a send waits for Redis before it throws.
        public var timeout: Duration
        let encodeSource: @Sendable (SourceID) -> String
        let decodeSource: @Sendable (String) -> SourceID?

        /// A cluster whose source IDs travel through the log as `encodeSource` writes them.
        public init(
            redisURL: String,
            name: String = "events",
            logLength: Int = 10_000,
            timeout: Duration = .seconds(2),
            encodeSource: @escaping @Sendable (SourceID) -> String,
            decodeSource: @escaping @Sendable (String) -> SourceID?
        ) {
            self.redisURL = redisURL
            self.name = name
            self.logLength = logLength
            self.timeout = timeout
            self.encodeSource = encodeSource
            self.decodeSource = decodeSource
        }
    }

    /// The cluster's log as this hub uses it.
    struct ClusterLink: Sendable {
        let log: RedisEventLog
        let encodeSource: @Sendable (SourceID) -> String
        let decodeSource: @Sendable (String) -> SourceID?
    }

    /// Appends events to the cluster's log; they are delivered when the tail reads them
    /// back, on this node as on every other.
    func appendToCluster(_ link: ClusterLink, _ records: [ClusterRecord]) async throws -> [String] {
        do {
            let (epoch, first) = try await link.log.append(records.map(\.bytes))
            return records.indices.map { "\(epoch)-\(first + UInt64($0))" }
        } catch {
            throw EventServerError(.logUnavailable, "the cluster's event log is unavailable; nothing was sent: \(error)")
        }
    }

    /// Reads the cluster's log until cancelled: from its end when the hub starts (retrying
    /// until Redis answers), then every record in order.
    nonisolated func tailCluster(_ link: ClusterLink) async {
        var start: RedisEventLog.Cursor?
        var wait = Duration.milliseconds(100)
        while start == nil, !Task.isCancelled {
            do {
                start = try await link.log.end()
            } catch {
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
    }

    private func handleCluster(_ event: RedisEventLog.TailEvent, link: ClusterLink) async {
        switch event {
        case .records(let records):
            for record in records { await deliver(record, link: link) }
        case .epochChanged(_, let epoch):
            // What this node's clients hold is from a log that is gone: they reconnect, and
            // their old IDs get the gap signal, once each.
            clusterEpoch = epoch
            clusterCursor = 0
            backlog = Backlog(capacity: backlog.capacity, byteLimit: backlog.byteLimit)
            clusterEpochChanges += 1
            restart()
        case .gap:
            clusterGaps += 1
            restart()
        case .disconnected:
            clusterOutages += 1
        case .reconnected:
            break
        }
    }

    /// Delivers one record of the log to this node's connections, once.
    private func deliver(_ stored: RedisEventStream.Record, link: ClusterLink) async {
        guard stored.sequence > clusterCursor || stored.epoch != clusterEpoch else { return }
        clusterEpoch = stored.epoch
        clusterCursor = stored.sequence
        guard let decoded = try? ClusterRecord(bytes: stored.payload) else {
            clusterMalformedRecords += 1
            return
        }
        let id = "\(stored.epoch)-\(stored.sequence)"
        guard let event = try? ServerSentEvent(id: id, event: decoded.name, bytes: decoded.data, retry: decoded.retry, comments: decoded.comments) else {
            clusterMalformedRecords += 1
            return
        }
        let recipients: Recipients<SourceID> = decoded.recipients(decode: link.decodeSource)
        let frame = EventFrame(event)
        record(Backlog.Entry(sequence: stored.sequence, id: id, name: decoded.name, recipients: recipients, frame: frame, frames: [:]))
        await fanOut(Delivery(frame: frame, name: decoded.name, id: id), to: recipients)
    }
}

extension EventServer.Cluster where SourceID: LosslessStringConvertible {
    /// A cluster whose source IDs travel through the log as their `description`.
    public init(redisURL: String, name: String = "events", logLength: Int = 10_000, timeout: Duration = .seconds(2)) {
        self.init(redisURL: redisURL, name: name, logLength: logLength, timeout: timeout, encodeSource: { $0.description }, decodeSource: { SourceID($0) })
    }
}
