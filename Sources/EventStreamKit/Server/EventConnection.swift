import Synchronization

/// One client's event stream: an actor that consumes its queue of encoded events and
/// writes them out, everything queued in one write per wake-up.
///
/// Its queue is bounded by ``EventServer/Configuration/queueCapacity`` frames and
/// ``EventServer/Configuration/queueByteLimit`` bytes, and the frames in it are the ones the
/// hub encoded once for every recipient: a stalled client pins shared frames, not copies.
///
/// Get one from ``EventServer/connect(source:channels:lastEventID:)``, then read it in one
/// of two ways, once:
/// - ``run(writingTo:)`` writes to an ``EventStreamSink`` until the stream ends;
/// - ``body`` is an `AsyncSequence` of byte chunks for a host server's streaming response
///   body (Hummingbird, Vapor). Cancelling the task that iterates it, or dropping the
///   iterator, ends the connection.
///
/// Either way the connection leaves the hub by itself when the client goes away (a write
/// fails), the server closes it, or the reading task is cancelled.
public actor EventConnection<SourceID: Hashable & Sendable> {
    /// This stream's ID in its hub.
    public nonisolated let id: ConnectionID
    /// Who the client is.
    public nonisolated let source: SourceID
    /// The channels it subscribed to.
    public nonisolated let channels: Set<String>
    /// The `Last-Event-ID` the client connected with, if any.
    public nonisolated let requestedLastEventID: String?

    package nonisolated let mailbox: Mailbox
    nonisolated let server: EventServer<SourceID>
    private nonisolated let isConsumed = Atomic<Bool>(false)
    /// Whether ``clientLeft()`` has told the hub.
    private nonisolated let leftReported = Atomic<Bool>(false)

    private nonisolated let written = Atomic<Int>(0)
    /// When the hub registered it, if the hub has an observer (which is told the duration).
    nonisolated let openedAt: ContinuousClock.Instant?

    /// Bytes written to the sink by ``run(writingTo:)`` or handed out by ``body``.
    public nonisolated var bytesWritten: Int { written.load(ordering: .relaxed) }

    init(id: ConnectionID, source: SourceID, channels: Set<String>, lastEventID: String?, mailbox: Mailbox, server: EventServer<SourceID>, openedAt: ContinuousClock.Instant? = nil) {
        self.id = id
        self.source = source
        self.channels = channels
        self.requestedLastEventID = lastEventID
        self.mailbox = mailbox
        self.server = server
        self.openedAt = openedAt
    }

    /// The client's `Last-Event-ID` until an event with an ID has been queued for it, then
    /// `nil` (seed 004's `Source.LastEventID`).
    public nonisolated var clientLastEventID: String? { mailbox.clientLastEventID }

    /// Frames this connection's overflow policy, or its end, discarded.
    public nonisolated var droppedCount: Int { mailbox.droppedCount }

    /// Writes the stream to `sink` until it ends, then leaves the hub.
    ///
    /// Each wake-up takes everything queued and writes it with one call to
    /// ``EventStreamSink/write(contentsOf:)``, which gets the shared frames themselves: no
    /// per-connection copy is made unless the sink joins them (as the default implementation
    /// does). The stream ends when a write throws (the client is gone), the server closes it,
    /// or the calling task is cancelled. The frames of a write that throws count as dropped
    /// (``droppedCount``), like those still queued when the stream ends.
    ///
    /// - Parameter sink: Where the bytes go.
    /// - Returns: Why the stream ended.
    /// - Throws: ``EventServerError`` with code ``EventServerError/Code/alreadyConsumed`` if
    ///   the stream is already being read.
    @discardableResult
    public func run(writingTo sink: some EventStreamSink) async throws -> DisconnectReason {
        try claim()
        var unwritten = 0
        var failure: (any Error)?
        await withTaskCancellationHandler {
            var batch: [Delivery] = []
            // Reused across wake-ups: no array is allocated per write unless the sink keeps it.
            var frames: [EventFrame] = []
            // Senders write for this reader while it waits, once the head is out, on a socket.
            let socketSink = server.configuration.immediateWrites ? sink as? SocketSink : nil
            var immediate = false
            while true {
                if !immediate, let socketSink, socketSink.headSent {
                    immediate = true
                    mailbox.allowImmediateWrites(ImmediateWriter { [self] deliveries in
                        let result = socketSink.writeNow(deliveries)
                        addWritten(Self.bytesWritten(by: result, of: deliveries))
                        return result
                    })
                }
                guard await mailbox.next(into: &batch) else { break }
                var count = 0
                for delivery in batch {
                    frames.append(delivery.frame)
                    count += delivery.unwrittenCount
                }
                do {
                    // After a sender's write cut a frame part-way, the batch starts with its rest
                    // (only ever first, and only on a socket: senders write only there).
                    if let skip = batch.first?.skip, skip > 0, let socketSink {
                        try await socketSink.write(contentsOf: frames, skippingFirst: skip)
                    } else {
                        try await sink.write(contentsOf: frames)
                    }
                } catch {
                    mailbox.finish(.clientGone, drain: false)
                    // The frames of the batch that did not go out whole are lost: count them,
                    // like the ones still queued, so that every frame is written or counted.
                    let written = (error as? UnfinishedWrite)?.framesWritten ?? 0
                    unwritten = batch.count - min(written, batch.count)
                    mailbox.noteUnwritten(unwritten)
                    failure = error
                    break
                }
                // Released now, not at the next wake-up: an idle stream pins no frame.
                frames.removeAll(keepingCapacity: true)
                addWritten(count)
            }
        } onCancel: {
            mailbox.finish(.cancelled, drain: false)
        }
        // The stream is over, so no sender writes any more: let go of the socket and of this
        // actor, which the writer holds.
        mailbox.endImmediateWrites()
        if failure == nil, let immediateFailure = mailbox.takeImmediateFailure() {
            (failure, unwritten) = immediateFailure
        }
        if let failure, unwritten > 0 || server.observer != nil {
            await server.noteWriteFailed(failure, unwritten: unwritten, connection: id, source: source)
        }
        await server.connectionEnded(id)
        return mailbox.endReason ?? .clientGone
    }

    /// Ends this stream from the server side. Frames already queued are still written.
    public nonisolated func close() async {
        await server.end(id, reason: .closedByServer, drain: true)
    }

    /// Ends this stream because its client has gone, for a host that learns so other than by
    /// a failed write or a cancelled reader: a close callback, or a probe such as the Vapor
    /// example's `DisconnectProbe`. Nothing more is written; what is queued counts as dropped.
    /// The connection leaves the hub with ``DisconnectReason/clientGone`` at once, whatever its
    /// reader does: a reader waiting for frames (``body`` or ``run(writingTo:)``) ends, one in
    /// the middle of a host's write sees the end at its next call, and a body the host never
    /// runs (its channel closed before the response began) leaves nothing behind. It does not
    /// wait and may be called from any thread, any number of times, also after the stream
    /// ended (then it does nothing).
    public nonisolated func clientLeft() {
        mailbox.finish(.clientGone, drain: false)
        guard !leftReported.exchange(true, ordering: .relaxed) else { return }
        // The hub forgets it now, not when the reader next looks: the reader may be stuck in
        // the host's write, or never start. One actor call, then the task ends.
        let server = server, id = id
        Task { await server.connectionEnded(id) }
    }

    nonisolated func claim() throws(EventServerError) {
        guard !isConsumed.exchange(true, ordering: .relaxed) else { throw .alreadyConsumed }
    }

    /// Counts bytes handed out; an atomic, so the body's reader does not hop onto the actor.
    nonisolated func addWritten(_ count: Int) {
        written.add(count, ordering: .relaxed)
        server.writtenTotal.add(count, ordering: .relaxed)
    }

    /// The bytes a sender's write for this stream put out.
    private nonisolated static func bytesWritten(by result: ImmediateWriter.Result, of deliveries: [Delivery]) -> Int {
        switch result {
        case .written:
            return bytes(of: deliveries[...])
        case .partial(let framesWritten, let remainder):
            return bytes(of: deliveries[..<framesWritten]) + remainder.skip - deliveries[framesWritten].skip
        case .failed(_, let framesWritten):
            return bytes(of: deliveries[..<framesWritten])
        }
    }

    private nonisolated static func bytes(of deliveries: ArraySlice<Delivery>) -> Int {
        var total = 0
        for delivery in deliveries { total += delivery.unwrittenCount }
        return total
    }

    /// One chunk for a batch, for ``body``, whose host needs one buffer: a single frame is
    /// passed on as it is, shared, not copied.
    nonisolated static func join(_ batch: [Delivery]) -> [UInt8] {
        if batch.count == 1 { return batch[0].frame.bytes }
        var chunk: [UInt8] = []
        chunk.reserveCapacity(batch.reduce(0) { $0 + $1.frame.count })
        for delivery in batch { chunk.append(contentsOf: delivery.frame.bytes) }
        return chunk
    }
}
