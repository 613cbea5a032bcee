/// An event as the hub sent it, for in-process consumers of ``EventServer/tee(after:bufferSize:)``.
public struct PublishedEvent<SourceID: Hashable & Sendable>: Sendable {
    /// The event's ID.
    public let id: String
    /// The event's name, or `nil` for `message`.
    public let name: String?
    /// Whom it was sent to.
    public let recipients: Recipients<SourceID>
    /// The encoded event every recipient got; `nil` for per-recipient payloads.
    public let frame: EventFrame?
}

extension EventServer {
    /// Every event the hub sends, as one sequence: first those in the backlog after
    /// `lastEventID`, then live ones, with no gap or duplicate between the two (seed 003's
    /// tee). For in-process consumers: an audit log, a bridge to another bus.
    ///
    /// - Parameters:
    ///   - lastEventID: Start after this event, if it is still in the backlog. `nil`, or an
    ///     ID no longer in the backlog, starts with live events.
    ///   - bufferSize: Events kept for a consumer that reads slowly; past it the oldest are
    ///     discarded. Default: 256.
    /// - Returns: The events, until the hub shuts down or the consumer stops iterating.
    public func tee(after lastEventID: String? = nil, bufferSize: Int = 256) -> AsyncStream<PublishedEvent<SourceID>> {
        let (stream, continuation) = AsyncStream<PublishedEvent<SourceID>>.makeStream(bufferingPolicy: .bufferingNewest(max(bufferSize, 1)))
        guard phase != .stopped else {
            continuation.finish()
            return stream
        }
        if let lastEventID, case .after(let sequence) = backlog.position(of: lastEventID) {
            for entry in backlog.entries(after: sequence) { continuation.yield(Self.published(entry)) }
        }
        nextSubscriberID += 1
        teeSubscribers[nextSubscriberID] = continuation
        return stream
    }

    func emitToTees(_ entry: Backlog<SourceID>.Entry) {
        guard !teeSubscribers.isEmpty else { return }
        let event = Self.published(entry)
        for (key, subscriber) in teeSubscribers {
            if case .terminated = subscriber.yield(event) { teeSubscribers[key] = nil }
        }
    }

    static func published(_ entry: Backlog<SourceID>.Entry) -> PublishedEvent<SourceID> {
        PublishedEvent(id: entry.id, name: entry.name, recipients: entry.recipients, frame: entry.frame)
    }
}
