extension EventServer {
    /// Sends a typed value to `recipients`.
    ///
    /// The marshal closure runs once, in the caller's task; the frame is encoded once and
    /// shared by every recipient. The event gets the next ID and goes into the backlog.
    ///
    /// - Parameters:
    ///   - value: The payload.
    ///   - type: The event type: its name and marshal closure.
    ///   - recipients: Who gets it. Default: everyone.
    /// - Returns: The event's ID.
    /// - Throws: ``WireError`` if the marshal closure fails (nothing is sent) or a custom
    ///   ID generator makes an invalid ID; in a cluster, ``EventServerError`` with
    ///   ``EventServerError/Code/logUnavailable`` when Redis did not take the event.
    @discardableResult
    public nonisolated func send<Value>(_ value: Value, as type: EventType<Value>, to recipients: Recipients<SourceID> = .everyone) async throws -> String {
        let payload = try type.marshal.encode(value)
        return try await publish(name: type.name, payload: payload, comments: [], to: recipients)
    }

    /// Sends several typed values to `recipients` at once, in order, each as its own event
    /// with its own ID.
    ///
    /// All of them are queued for each recipient in one step, so a connection wakes once
    /// and writes the whole burst with one write: for tickers and other bursts this is much
    /// cheaper than one `send` per value.
    ///
    /// - Parameters:
    ///   - values: The payloads, in order.
    ///   - type: The event type: its name and marshal closure.
    ///   - recipients: Who gets them. Default: everyone.
    /// - Returns: The events' IDs, in order.
    /// - Throws: ``WireError`` if the marshal closure fails for any value (nothing is sent)
    ///   or a custom ID generator makes an invalid ID; in a cluster, ``EventServerError``
    ///   with ``EventServerError/Code/logUnavailable`` when Redis did not take them.
    @discardableResult
    public nonisolated func send<Value>(
        contentsOf values: some Sequence<Value>,
        as type: EventType<Value>,
        to recipients: Recipients<SourceID> = .everyone
    ) async throws -> [String] {
        var payloads: [[UInt8]] = []
        for value in values { payloads.append(try type.marshal.encode(value)) }
        return try await publish(name: type.name, payloads: payloads, to: recipients)
    }

    /// Sends an untyped event to `recipients`. It gets the next ID unless it has one.
    ///
    /// - Parameters:
    ///   - event: The event. An event without `data` is sent too (to set the ID or retry),
    ///     though a client dispatches nothing for it.
    ///   - recipients: Who gets it. Default: everyone.
    /// - Returns: The event's ID.
    /// - Throws: ``WireError`` if a custom ID generator makes an invalid ID; in a cluster,
    ///   ``EventServerError``: ``EventServerError/Code/logUnavailable`` when Redis did not
    ///   take the event, ``EventServerError/Code/unsupportedInCluster`` for an event with an
    ///   ID of its own (the log numbers every event).
    @discardableResult
    public func send(_ event: ServerSentEvent, to recipients: Recipients<SourceID> = .everyone) async throws -> String {
        if let cluster {
            guard event.id == nil else { throw EventServerError.unsupportedInCluster("an event with its own ID (the cluster's log numbers every event)") }
            return try await appendToCluster(cluster, [ClusterRecord(recipients: recipients, name: event.event, data: event.data, retry: event.retry, comments: event.comments, encode: cluster.encodeSource)])[0]
        }
        let id = try stamp(event.id)
        let stamped = try ServerSentEvent(id: id, event: event.event, bytes: event.data, retry: event.retry, comments: event.comments)
        return await publish(stamped, id: id, to: recipients)
    }

    /// Sends a typed value computed for each recipient connection from its source and its
    /// client's `Last-Event-ID` (until a newer event reached it), as seed 004's
    /// `Sent(func(sid, lastEventID) any)`.
    ///
    /// Every payload is computed before anything is sent: if the closure or the marshal
    /// throws for one recipient, nobody gets the event. All recipients share one event ID;
    /// the backlog keeps, per source, the payload of that source's first connection.
    ///
    /// - Parameters:
    ///   - type: The event type.
    ///   - recipients: Who gets it. Default: everyone.
    ///   - payload: Makes the value for one connection.
    /// - Returns: The event's ID.
    /// - Throws: What `payload` or the marshal closure throws (nothing is sent); in a
    ///   cluster, ``EventServerError/Code/unsupportedInCluster``: each node computes
    ///   payloads from its own connections, so they have no place in the shared log.
    @discardableResult
    public func send<Value>(
        as type: EventType<Value>,
        to recipients: Recipients<SourceID> = .everyone,
        payload: (SourceID, String?) throws -> Value
    ) async throws -> String {
        guard cluster == nil else { throw EventServerError.unsupportedInCluster("per-recipient payloads (they are computed from each node's own connections)") }
        let id = try stamp(nil)
        var frames: [(ConnectionID, EventFrame)] = []
        var framesBySource: [SourceID: EventFrame] = [:]
        for connectionID in registry.ids(recipients) {
            guard let entry = registry[connectionID] else { continue }
            let source = entry.connection.source
            let value = try payload(source, entry.mailbox.clientLastEventID)
            let frame = EventFrame(try type.marshal.event(value, id: id, event: type.name))
            frames.append((connectionID, frame))
            if framesBySource[source] == nil { framesBySource[source] = frame }
        }
        record(Backlog.Entry(sequence: sequence, id: id, name: type.name, recipients: recipients, frame: nil, frames: framesBySource))
        var outcomes = FanOutOutcomes()
        for (connectionID, frame) in frames {
            guard let entry = registry[connectionID] else { continue }
            outcomes.note(entry.mailbox.enqueue(Delivery(frame: frame, name: type.name, id: id)), for: connectionID)
        }
        observer?.eventPublished(name: type.name, id: id, recipients: outcomes.delivered)
        await settle(outcomes)
        return id
    }

    /// Sends comment lines (no ID, not kept in the backlog): a keep-alive, or a note for
    /// someone reading the raw stream.
    public func comment(_ text: String, to recipients: Recipients<SourceID> = .everyone) async {
        await fanOut(Delivery(frame: EventFrame(comment: text), name: nil, id: nil, isControl: true), to: recipients)
    }

    /// Changes the reconnection time: sent now to every open stream, and to new ones when
    /// they open (seed 002's `EventRetry`).
    public func setRetry(_ interval: Duration) async {
        retry = interval
        await fanOut(Self.retryDelivery(interval), to: .everyone)
    }

    // MARK: - Internals

    private func publish(name: String?, payload: [UInt8], comments: [String], to recipients: Recipients<SourceID>) async throws -> String {
        if let cluster {
            return try await appendToCluster(cluster, [ClusterRecord(recipients: recipients, name: name, data: payload, comments: comments, encode: cluster.encodeSource)])[0]
        }
        let id = try stamp(nil)
        let event = try ServerSentEvent(id: id, event: name, bytes: payload, comments: comments)
        return await publish(event, id: id, to: recipients)
    }

    private func publish(name: String?, payloads: [[UInt8]], to recipients: Recipients<SourceID>) async throws -> [String] {
        if let cluster {
            return try await appendToCluster(cluster, payloads.map { ClusterRecord(recipients: recipients, name: name, data: $0, encode: cluster.encodeSource) })
        }
        var events: [(id: String, frame: EventFrame)] = []
        for payload in payloads {
            let id = try stamp(nil)
            events.append((id, EventFrame(try ServerSentEvent(id: id, event: name, bytes: payload))))
        }
        // Recorded only once every event was built: a failure above sends nothing.
        for (offset, event) in events.enumerated() {
            let sequence = sequence - UInt64(events.count - 1 - offset)
            record(Backlog.Entry(sequence: sequence, id: event.id, name: name, recipients: recipients, frame: event.frame, frames: [:]))
        }
        let reached = await fanOut(events.map { Delivery(frame: $0.frame, name: name, id: $0.id) }, to: recipients)
        if let observer {
            for event in events { observer.eventPublished(name: name, id: event.id, recipients: reached) }
        }
        return events.map(\.id)
    }

    private func publish(_ event: ServerSentEvent, id: String, to recipients: Recipients<SourceID>) async -> String {
        let frame = EventFrame(event)
        record(Backlog.Entry(sequence: sequence, id: id, name: event.event, recipients: recipients, frame: frame, frames: [:]))
        let reached = await fanOut(Delivery(frame: frame, name: event.event, id: id), to: recipients)
        observer?.eventPublished(name: event.event, id: id, recipients: reached)
        return id
    }

    /// Takes the next sequence number and returns the event's ID: `supplied`, or a new one.
    private func stamp(_ supplied: String?) throws(WireError) -> String {
        sequence += 1
        guard let supplied else {
            let id = configuration.idGenerator.id(for: sequence)
            try ServerSentEvent.validate(id: id)
            return id
        }
        return supplied
    }

    /// Keeps the event for replay and notes it as the latest, overall and per channel.
    func record(_ entry: Backlog<SourceID>.Entry) {
        backlog.append(entry)
        emitToTees(entry)
        eventsSent += 1
        lastEventID = entry.id
        registry.noteSent(entry.id, to: entry.recipients)
    }

    /// Queues one shared frame for every recipient, then settles what the overflow
    /// policies decided. The common sends walk the registry's entries directly: the hot
    /// loop touches one mailbox per recipient and nothing else.
    ///
    /// - Returns: The recipients it was queued for (see ``FanOutOutcomes/delivered``).
    @discardableResult
    func fanOut(_ delivery: Delivery, to recipients: Recipients<SourceID>, skipping skip: ((ConnectionID) -> Bool)? = nil) async -> Int {
        await fanOut(recipients, frames: 1, skipping: skip) { $0.enqueue(delivery) }
    }

    /// Queues several frames for every recipient, each recipient's in one step.
    ///
    /// - Returns: The recipients they were queued for.
    @discardableResult
    func fanOut(_ deliveries: [Delivery], to recipients: Recipients<SourceID>) async -> Int {
        if deliveries.count == 1 { return await fanOut(deliveries[0], to: recipients) }
        return await fanOut(recipients, frames: deliveries.count) { $0.enqueue(contentsOf: deliveries) }
    }

    private func fanOut(_ recipients: Recipients<SourceID>, frames: Int, skipping skip: ((ConnectionID) -> Bool)? = nil, _ enqueue: (Mailbox) -> Mailbox.EnqueueOutcome) async -> Int {
        var outcomes = FanOutOutcomes(framesPerRecipient: frames)
        if let skip {
            registry.forEach(recipients) { id, entry in if !skip(id) { outcomes.note(enqueue(entry.mailbox), for: id) } }
        } else {
            registry.forEach(recipients) { id, entry in outcomes.note(enqueue(entry.mailbox), for: id) }
        }
        await settle(outcomes)
        return outcomes.delivered
    }

    /// What one fan-out left to do: counts, and the rare outcomes handled after the loop.
    struct FanOutOutcomes {
        var framesPerRecipient = 1
        /// Recipients that got the frames queued (some perhaps by dropping older ones);
        /// not those disconnected or already closed.
        var delivered = 0
        var dropped: [(ConnectionID, Int)] = []
        var disconnected: [(ConnectionID, Int)] = []
        var waits: [(ConnectionID, UInt64)] = []

        mutating func note(_ outcome: Mailbox.EnqueueOutcome, for id: ConnectionID) {
            switch outcome {
            case .queued: delivered += 1
            case .dropped(let count):
                delivered += 1
                dropped.append((id, count))
            case .disconnected(let count): disconnected.append((id, count))
            case .mustWait(let ticket):
                delivered += 1
                waits.append((id, ticket))
            case .rejected: break
            }
        }
    }

    func settle(_ outcomes: FanOutOutcomes) async {
        deliveries += outcomes.delivered * outcomes.framesPerRecipient
        for (id, count) in outcomes.dropped {
            if let entry = registry[id] { noteDropped(count, entry: entry, reason: nil) }
        }
        for (id, count) in outcomes.disconnected {
            if let entry = registry[id] { noteDropped(count, entry: entry, reason: .slowClient) }
            connectionEnded(id)
        }
        await awaitSuspendedSends(outcomes.waits)
    }

    /// Waits for the senders that a full queue suspended (``OverflowPolicy/suspendSender(timeout:)``);
    /// a client that did not make room in time is disconnected.
    func awaitSuspendedSends(_ waits: [(ConnectionID, UInt64)]) async {
        guard !waits.isEmpty, case .suspendSender(let timeout) = configuration.overflowPolicy.kind else { return }
        let timedOut = await withTaskGroup(of: ConnectionID?.self) { group in
            for (id, ticket) in waits {
                guard let mailbox = registry[id]?.mailbox else { continue }
                group.addTask { await mailbox.waitForSpace(ticket: ticket, timeout: timeout) ? nil : id }
            }
            var timedOut: [ConnectionID] = []
            for await id in group { if let id { timedOut.append(id) } }
            return timedOut
        }
        for id in timedOut {
            if let entry = registry[id] { noteDropped(entry.mailbox.droppedCount, entry: entry, reason: .slowClient) }
            connectionEnded(id)
        }
    }
}
