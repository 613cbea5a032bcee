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
    ///   ID generator makes an invalid ID.
    @discardableResult
    public nonisolated func send<Value>(_ value: Value, as type: EventType<Value>, to recipients: Recipients<SourceID> = .everyone) async throws(WireError) -> String {
        let payload = try type.marshal.encode(value)
        return try await publish(name: type.name, payload: payload, comments: [], to: recipients)
    }

    /// Sends an untyped event to `recipients`. It gets the next ID unless it has one.
    ///
    /// - Parameters:
    ///   - event: The event. An event without `data` is sent too (to set the ID or retry),
    ///     though a client dispatches nothing for it.
    ///   - recipients: Who gets it. Default: everyone.
    /// - Returns: The event's ID.
    /// - Throws: ``WireError`` if a custom ID generator makes an invalid ID.
    @discardableResult
    public func send(_ event: ServerSentEvent, to recipients: Recipients<SourceID> = .everyone) async throws(WireError) -> String {
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
    @discardableResult
    public func send<Value>(
        as type: EventType<Value>,
        to recipients: Recipients<SourceID> = .everyone,
        payload: (SourceID, String?) throws -> Value
    ) async throws -> String {
        let id = try stamp(nil)
        var frames: [(ConnectionID, EventFrame)] = []
        var framesBySource: [SourceID: EventFrame] = [:]
        for connectionID in recipientIDs(recipients) {
            guard let entry = connections[connectionID] else { continue }
            let value = try payload(entry.source, entry.mailbox.clientLastEventID)
            let frame = EventFrame(try type.marshal.event(value, id: id, event: type.name))
            frames.append((connectionID, frame))
            if framesBySource[entry.source] == nil { framesBySource[entry.source] = frame }
        }
        record(Backlog.Entry(sequence: sequence, id: id, name: type.name, recipients: recipients, frame: nil, frames: framesBySource))
        var waits: [(ConnectionID, Mailbox, UInt64)] = []
        for (connectionID, frame) in frames {
            deliver(Delivery(frame: frame, name: type.name, id: id), to: connectionID, waits: &waits)
        }
        await awaitSuspendedSends(waits)
        return id
    }

    /// Sends comment lines (no ID, not kept in the backlog): a keep-alive, or a note for
    /// someone reading the raw stream.
    public func comment(_ text: String, to recipients: Recipients<SourceID> = .everyone) async {
        let delivery = Delivery(frame: EventFrame(comment: text), name: nil, id: nil, isComment: true)
        var waits: [(ConnectionID, Mailbox, UInt64)] = []
        for id in recipientIDs(recipients) { deliver(delivery, to: id, waits: &waits) }
        await awaitSuspendedSends(waits)
    }

    /// Changes the reconnection time: sent now to every open stream, and to new ones when
    /// they open (seed 002's `EventRetry`).
    public func setRetry(_ interval: Duration) async {
        retry = interval
        let delivery = Self.retryDelivery(interval)
        var waits: [(ConnectionID, Mailbox, UInt64)] = []
        for id in Array(connections.keys) { deliver(delivery, to: id, waits: &waits) }
        await awaitSuspendedSends(waits)
    }

    // MARK: - Internals

    private func publish(name: String?, payload: [UInt8], comments: [String], to recipients: Recipients<SourceID>) async throws(WireError) -> String {
        let id = try stamp(nil)
        let event = try ServerSentEvent(id: id, event: name, bytes: payload, comments: comments)
        return await publish(event, id: id, to: recipients)
    }

    private func publish(_ event: ServerSentEvent, id: String, to recipients: Recipients<SourceID>) async -> String {
        let frame = EventFrame(event)
        record(Backlog.Entry(sequence: sequence, id: id, name: event.event, recipients: recipients, frame: frame, frames: [:]))
        let delivery = Delivery(frame: frame, name: event.event, id: id)
        var waits: [(ConnectionID, Mailbox, UInt64)] = []
        for connectionID in recipientIDs(recipients) { deliver(delivery, to: connectionID, waits: &waits) }
        await awaitSuspendedSends(waits)
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
    private func record(_ entry: Backlog<SourceID>.Entry) {
        backlog.append(entry)
        emitToTees(entry)
        eventsSent += 1
        lastEventID = entry.id
        switch entry.recipients.kind {
        case .channel(let channel):
            if connectionsByChannel[channel] != nil { lastEventIDByChannel[channel] = entry.id }
        case .everyChannel:
            for channel in connectionsByChannel.keys { lastEventIDByChannel[channel] = entry.id }
        case .everyone, .only, .except:
            break
        }
    }

    /// The connections a send reaches, each once.
    func recipientIDs(_ recipients: Recipients<SourceID>) -> [ConnectionID] {
        switch recipients.kind {
        case .everyone:
            return Array(connections.keys)
        case .only(let sources):
            return sources.flatMap { connectionsBySource[$0] ?? [] }
        case .except(let sources):
            return connections.compactMap { sources.contains($0.value.source) ? nil : $0.key }
        case .channel(let channel):
            return Array(connectionsByChannel[channel] ?? [])
        case .everyChannel:
            return connections.compactMap { $0.value.connection.channels.isEmpty ? nil : $0.key }
        }
    }

    /// Queues one frame for one connection and applies what its overflow policy decided.
    func deliver(_ delivery: Delivery, to id: ConnectionID, waits: inout [(ConnectionID, Mailbox, UInt64)]) {
        guard let entry = connections[id] else { return }
        switch entry.mailbox.enqueue(delivery) {
        case .queued:
            deliveries += 1
        case .dropped(let count):
            deliveries += 1
            noteDropped(count, entry: entry)
        case .disconnected(let dropped):
            noteDropped(dropped, entry: entry)
            connectionEnded(id)
        case .mustWait(let ticket):
            deliveries += 1
            waits.append((id, entry.mailbox, ticket))
        case .rejected:
            break
        }
    }

    /// Waits for the senders that a full queue suspended (``OverflowPolicy/suspendSender(timeout:)``);
    /// a client that did not make room in time is disconnected.
    func awaitSuspendedSends(_ waits: [(ConnectionID, Mailbox, UInt64)]) async {
        guard !waits.isEmpty, case .suspendSender(let timeout) = configuration.overflowPolicy.kind else { return }
        let timedOut = await withTaskGroup(of: ConnectionID?.self) { group in
            for (id, mailbox, ticket) in waits {
                group.addTask { await mailbox.waitForSpace(ticket: ticket, timeout: timeout) ? nil : id }
            }
            var timedOut: [ConnectionID] = []
            for await id in group { if let id { timedOut.append(id) } }
            return timedOut
        }
        for id in timedOut {
            if let entry = connections[id] { noteDropped(entry.mailbox.droppedCount, entry: entry) }
            connectionEnded(id)
        }
    }
}
