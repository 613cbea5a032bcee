extension EventServer {
    /// A new subscription to lifecycle events: connects, reconnects, replay gaps, drops and
    /// disconnects, and in a cluster what happens to the link with the log
    /// (``LifecycleEvent/cluster(_:)``), from now on.
    ///
    /// - Parameter bufferSize: Events kept for a subscriber that reads slowly; past it, the
    ///   oldest are discarded. Default: 1,024.
    /// - Returns: The events, until the hub shuts down or the subscriber stops iterating.
    public func lifecycleEvents(bufferSize: Int = 1024) -> AsyncStream<LifecycleEvent<SourceID>> {
        let (stream, continuation) = AsyncStream<LifecycleEvent<SourceID>>.makeStream(bufferingPolicy: .bufferingNewest(bufferSize))
        if phase == .stopped {
            continuation.finish()
        } else {
            nextSubscriberID += 1
            lifecycleSubscribers[nextSubscriberID] = continuation
        }
        return stream
    }

    func emit(_ event: LifecycleEvent<SourceID>) {
        guard !lifecycleSubscribers.isEmpty else { return }
        for (key, subscriber) in lifecycleSubscribers {
            if case .terminated = subscriber.yield(event) { lifecycleSubscribers[key] = nil }
        }
    }
}

extension EventServer {
    /// The number of open streams.
    public var clientCount: Int { registry.count }

    /// The number of open streams of `source`.
    public func clientCount(source: SourceID) -> Int { registry.count(source: source) }

    /// The sources with at least one open stream (seed 004's `Range`).
    public var sources: [SourceID] { registry.sources }

    /// How many sources have at least one open stream: ``sources``'s count without building
    /// the array.
    public var sourceCount: Int { registry.sourceCount }

    /// The open streams of `source`, oldest first.
    public func connections(source: SourceID) -> [EventConnection<SourceID>] {
        registry.ids(source: source).compactMap { registry[$0]?.connection }
    }

    /// The channels with at least one subscriber.
    public var channels: [String] { registry.channels }

    /// The number of streams subscribed to `channel`.
    public func clientCount(channel: String) -> Int { registry.count(channel: channel) }

    /// The ID of the most recent event sent to `channel` while it had subscribers.
    public func lastEventID(channel: String) -> String? { registry.lastEventID(channel: channel) }

    /// How many events the backlog holds now.
    public var backlogCount: Int { backlog.count }

    /// How many events the backlog keeps.
    public var backlogCapacity: Int { backlog.capacity }

    /// Changes how many events the backlog keeps; shrinking it drops the oldest.
    /// ``Configuration/backlogByteLimit`` still applies.
    public func setBacklogCapacity(_ capacity: Int) {
        backlog.resize(to: max(capacity, 0))
    }

    /// Ends every stream of `source` on this hub (kicks a user). Frames already queued are
    /// still written.
    ///
    /// Node-local in a cluster: ``closeEverywhere(source:)`` closes the source's streams on
    /// every node.
    public func close(source: SourceID) {
        for id in registry.ids(source: source) { end(id, reason: .closedByServer, drain: true) }
    }

    /// Closes a channel: every stream subscribed to it ends (``DisconnectReason/channelClosed``),
    /// and the channel is forgotten.
    public func close(channel: String) {
        // Ending its last subscriber forgets the channel and its last event ID.
        for id in registry.ids(channel: channel) { end(id, reason: .channelClosed, drain: true) }
    }

    /// Sends a heartbeat comment to every stream that had no event queued since the last
    /// call. ``run()`` calls this every ``Configuration/heartbeatInterval``.
    ///
    /// A heartbeat for a waiting reader is written by this call (decision 0012), so a round
    /// over 15,000 idle streams is 15,000 writes. It lets other work on the hub (a `send`)
    /// run after every ``heartbeatChunk`` streams, instead of holding the hub for the whole
    /// round; a stream that left meanwhile is skipped.
    func sendHeartbeats() async {
        let plain = Delivery(frame: Self.heartbeatFrame, name: nil, id: nil, isControl: true)
        let ids = Array(registry.ids)
        var sent = 0
        var start = ids.startIndex
        while start < ids.endIndex {
            if start > ids.startIndex { await Task.yield() }
            let end = min(start + Self.heartbeatChunk, ids.endIndex)
            // Once per chunk: the cluster's cursor may have moved while others ran.
            let cluster = clusterHeartbeat()
            var sentInChunk = 0
            for id in ids[start..<end] {
                guard let mailbox = registry[id]?.mailbox, mailbox.quietSinceLastHeartbeatRound() else { continue }
                if case .queued = mailbox.enqueueIfIdle(clusterHeartbeat(cluster, for: id) ?? plain) { sentInChunk += 1 }
            }
            deliveries += sentInChunk
            sent += sentInChunk
            start = end
        }
        if sent > 0 { observer?.heartbeatsSent(count: sent) }
    }

    static var heartbeatFrame: EventFrame { EventFrame(comment: "") }

    /// How many streams a heartbeat round visits before it lets other work on the hub run.
    static var heartbeatChunk: Int { 256 }
}

extension EventServer {
    /// Drives the hub's one timer (heartbeats) until the hub shuts down. Cancelling the task
    /// that runs it shuts the hub down gracefully, and it returns when that is done.
    ///
    /// ```swift
    /// try await withThrowingDiscardingTaskGroup { group in
    ///     group.addTask { await server.run() }
    ///     // … serve requests …
    /// }
    /// ```
    public func run() async {
        guard !isRunning, phase == .running else { return }
        isRunning = true
        let interval = configuration.heartbeatInterval
        await withDiscardingTaskGroup { group in
            if let cluster {
                group.addTask { await self.tailCluster(cluster) }
                group.addTask { await self.writePresence(cluster) }
            }
            if let interval {
                group.addTask {
                    while (try? await Task.sleep(for: interval)) != nil {
                        await self.sendHeartbeats()
                    }
                }
            }
            for await _ in stopSignal {}  // ends at shutdown, or when this task is cancelled
            group.cancelAll()
        }
        if phase != .stopped {
            // Cancelled: shut down gracefully. A fresh task, because this one is cancelled
            // and the grace period must still be waited for; it is awaited right here.
            await Task { await self.shutdown() }.value
        }
    }

    /// Shuts the hub down gracefully: no new connections; each stream is sent what it has
    /// queued, then a `retry` spread with jitter (so that clients do not all reconnect at
    /// once), then ends. After ``Configuration/shutdownGracePeriod`` whatever is still
    /// queued is dropped and counted. Returns when every stream has ended.
    public func shutdown() async {
        switch phase {
        case .stopped: return
        case .stopping: return await waitUntilEmpty(for: nil)
        case .running: break
        }
        phase = .stopping
        closeAll(reason: .shutdown, forgetting: false)
        await waitUntilEmpty(for: configuration.shutdownGracePeriod)
        for id in Array(registry.ids) { end(id, reason: .shutdown, drain: false) }
        phase = .stopped
        stopContinuation.finish()
        for subscriber in lifecycleSubscribers.values { subscriber.finish() }
        lifecycleSubscribers.removeAll()
        for subscriber in teeSubscribers.values { subscriber.finish() }
        teeSubscribers.removeAll()
    }

    /// Ends every stream, as ``shutdown()`` does, and keeps accepting new connections:
    /// clients reconnect after their jittered `retry` and catch up from the backlog (in a
    /// cluster, after the log lost its history, so that they resume in the new epoch).
    public func reconnectAll() {
        guard phase == .running else { return }
        closeAll(reason: .shutdown, forgetting: true)
    }

    /// The wait for a client refused because the hub is shutting down: what the streams it
    /// ended were told (the `retry` in force, else 3 s, plus up to ``Configuration/reconnectSpread``
    /// at random), so that refused clients come back no sooner and no more together.
    package func refusalDelay() -> Duration {
        let spread = configuration.reconnectSpread
        return (retry ?? .seconds(3)) + (spread > .zero ? spread * Double.random(in: 0..<1) : .zero)
    }

    private func closeAll(reason: DisconnectReason, forgetting: Bool) {
        let base = retry ?? .seconds(3)
        let spread = configuration.reconnectSpread
        for (id, entry) in zip(registry.owners, registry.members) {
            let jitter = spread > .zero ? spread * Double.random(in: 0..<1) : .zero
            let last = Self.retryDelivery(base + jitter)
            if forgetting {
                end(id, reason: reason, drain: true, last: last)
            } else {
                noteDropped(entry.mailbox.finish(reason, drain: true, last: last), entry: entry, reason: reason)
            }
        }
    }

    /// Waits until no connection is left, or until `timeout` passes.
    private func waitUntilEmpty(for timeout: Duration?) async {
        guard !registry.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.untilEmpty() }
            if let timeout {
                group.addTask { try? await Task.sleep(for: timeout) }
            }
            await group.next()
            group.cancelAll()
            if timeout != nil { resumeEmptyWaiters() }
        }
    }

    private func untilEmpty() async {
        guard !registry.isEmpty else { return }
        await withCheckedContinuation { emptyWaiters.append($0) }
    }

    private func resumeEmptyWaiters() {
        for waiter in emptyWaiters { waiter.resume() }
        emptyWaiters.removeAll()
    }
}
