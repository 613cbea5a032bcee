extension EventServer {
    /// How a hub behaves. Every limit has a default; see each property.
    ///
    /// ```swift
    /// var configuration = EventServer<String>.Configuration()
    /// configuration.retry = .seconds(5)
    /// configuration.overflowPolicy = .coalesce
    /// configuration.extraHeaders = [("Access-Control-Allow-Origin", "*")]
    /// let server = EventServer<String>(configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// What happens when a source connects while it already has streams.
        /// Default: ``DuplicateSourcePolicy/allowMultiple``.
        public var duplicateSourcePolicy = DuplicateSourcePolicy.allowMultiple

        /// Frames one connection may have queued before its overflow policy applies.
        /// Default: 256.
        ///
        /// The queue is also bounded by ``queueByteLimit``: the policy applies to whichever
        /// limit, frames or bytes, is hit first.
        public var queueCapacity = 256

        /// Bytes one connection may have queued (encoded frames, including those of senders
        /// suspended by ``OverflowPolicy/suspendSender(timeout:)``) before its overflow
        /// policy applies. Default: 1 MiB. Must be at least 1.
        ///
        /// The policy applies to whichever limit, ``queueCapacity`` or this, is hit first.
        /// A frame larger than the limit is still queued when the queue is empty, so that it
        /// can be delivered: a connection's queue holds at most this many bytes, or that one
        /// frame, never more than this plus one frame. Replayed events and the `retry` field sent on connect go beyond the limit;
        /// the backlog's limits bound them.
        ///
        /// Frames are shared between connections, so this bounds what one stalled client can
        /// keep alive, not a copy per client.
        public var queueByteLimit = 1 << 20

        /// The most bytes all connections' queues may hold together, counting each
        /// connection's frames until its client has them (queued, or taken and being
        /// written). Past it, a frame for a connection that has frames waiting overflows its
        /// queue (``overflowPolicy`` applies, as if the queue were full); a connection whose
        /// queue is empty always takes one frame. Default: 256 MiB. Must be at least 1.
        ///
        /// Without it, each connection is bounded but the process is not: clients that read
        /// just often enough to beat `HTTPServer`'s write timeout each keep two full
        /// queues alive (an outside attack held 1.3 GiB with 1,100 such streams). With it,
        /// what the queues hold is at most this plus one frame per connection. Shared frames
        /// count once per connection that holds them, so the bound is conservative.
        public var totalQueueByteLimit = 256 << 20

        /// What happens to a client whose queue is full, in frames or in bytes.
        /// Default: ``OverflowPolicy/dropOldest``.
        public var overflowPolicy = OverflowPolicy.dropOldest

        /// How many recent events are kept, encoded, to replay to reconnecting clients.
        /// Default: 256 (seed 003). Change it at run time with ``EventServer/setBacklogCapacity(_:)``.
        ///
        /// The backlog is also bounded by ``backlogByteLimit``: the oldest events are evicted
        /// until both limits hold.
        public var backlogCapacity = 256

        /// The most bytes of encoded events the backlog keeps for replay. Default: 4 MiB.
        ///
        /// The oldest events are evicted until both this and ``backlogCapacity`` hold, except
        /// the newest event, which is kept even if it alone is larger: the backlog holds at
        /// most this many bytes plus one event. An event sent with per-recipient payloads
        /// counts the bytes of every payload. A client whose `Last-Event-ID` was evicted gets
        /// the same treatment as any unknown ID (``LifecycleEvent/replayGap(source:connection:lastEventID:)``,
        /// ``gapEvent``, ``recovery``).
        ///
        /// In a cluster it also bounds a replay read from the cluster's log: a client owed
        /// more than this many bytes of events gets the gap signal instead. Default: 4 MiB.
        public var backlogByteLimit = 4 << 20

        /// The reconnection time sent as `retry` when a stream opens, if any. Default: none
        /// (clients keep their own, about 3 s in browsers). Change it at run time with
        /// ``EventServer/setRetry(_:)``.
        public var retry: Duration?

        /// A stream that has sent no event for this long gets a comment line, so that proxies
        /// keep it open and a vanished client is noticed at the write. One timer for the
        /// whole hub, driven by ``EventServer/run()``. Default: 15 s; `nil` turns heartbeats off.
        public var heartbeatInterval: Duration? = .seconds(15)

        /// Makes event IDs. Default: ``EventIDGenerator/epochSequence(epoch:)`` with a random epoch.
        public var idGenerator = EventIDGenerator.epochSequence()

        /// Response headers added to the standard event-stream ones (CORS, say).
        public var extraHeaders: [(name: String, value: String)] = []

        /// Sent first on every new stream, before the retry interval and any replay: which
        /// node serves it, say, or the server's version. Default: none. It is sent without its
        /// ID, if it has one: an ID would replace the client's last event ID, and its next
        /// reconnection would replay from the wrong place.
        public var welcomeEvent: ServerSentEvent?

        /// Sent in-stream to a client whose `Last-Event-ID` could not be replayed, before
        /// anything else, so that it can reload its state. Default: none. A common choice:
        /// `try ServerSentEvent(event: "reset", data: "")`.
        public var gapEvent: ServerSentEvent?

        /// Called when a client's `Last-Event-ID` could not be replayed from the backlog,
        /// with the source and that ID: the events it returns are sent to the client first,
        /// before live ones (seed 002's reconnect recovery). Default: none.
        public var recovery: (@Sendable (SourceID, String) async -> [ServerSentEvent])?

        /// How long ``EventServer/shutdown()`` waits for queued frames to be written before it
        /// drops what is left. Default: 5 s.
        public var shutdownGracePeriod: Duration = .seconds(5)

        /// On shutdown or ``EventServer/reconnectAll()``, each stream is sent `retry` = the configured retry (or 3 s)
        /// plus a random share of this spread, so that clients do not all reconnect in the
        /// same instant. Default: 5 s.
        public var reconnectSpread: Duration = .seconds(5)

        /// Whether a sender may write a frame for an idle stream itself, without waking the
        /// stream's reader, when the stream is written by ``EventConnection/run(writingTo:)``
        /// to the built-in server's sockets. Default: `true`.
        ///
        /// Each event then costs each idle connection one non-blocking `sendmsg` on the
        /// sending task's thread, and no task wake-up: at low rates a wake-up per connection
        /// per event was most of the hub's CPU. What the client's socket does not take at once
        /// (it is reading slowly) goes to the connection's reader, which waits for it; order,
        /// the queue's limits and the overflow policy are as before. Set it to `false` to have
        /// every write done by the connections' own tasks, spread over the executor's threads:
        /// on a many-core machine a large fan-out then writes in parallel, where with this on
        /// it writes from the one sending thread.
        public var immediateWrites = true

        /// Receives what happens in the hub, for logging and metrics: streams opened and
        /// closed, events published, drops, replays and gaps, heartbeats, failed writes.
        /// Default: none, and then the hub does no work for it beyond a `nil` check per event,
        /// connection or heartbeat tick.
        ///
        /// Its methods run synchronously on the hub's actor and must be quick; see
        /// ``EventServerObserver``.
        public var observer: (any EventServerObserver<SourceID>)?

        /// Creates the default configuration.
        public init() {}
    }
}
